//! An Argo CD ApplicationSet plugin generator.
//!
//! Your logic lives in [`generator`]; everything else is plumbing you should not
//! need to read: [`protocol`] (the wire format), [`auth`] (the bearer token),
//! [`handlers`] (HTTP endpoints), [`server`] (limits, timeouts, logging) and
//! [`config`] (environment variables).

pub mod auth;
pub mod cache;
pub mod config;
pub mod error;
pub mod generator;
pub mod handlers;
pub mod healthcheck;
{%- if metrics %}
pub mod metrics;
{%- endif %}
pub mod plugin;
pub mod protocol;
pub mod server;
