//! The server an Argo CD ApplicationSet plugin generator plugs into.
//!
//! Owned by the template: the project's own code is its generator (in the
//! project's `src/generator.rs`), which implements [`Generator`] and is handed
//! to [`Plugin::main`] by `src/main.rs`. Everything else lives here:
//! [`protocol`] (the wire format), [`auth`] (the bearer token), [`handlers`]
//! (HTTP endpoints and their JSON errors), [`server`] (sockets, limits,
//! timeouts, access log, shutdown; `connection` and `request_body` bound
//! what one client can cost), [`config`] (environment variables),
//! [`cache`], [`preview`] (one run without a server), and [`testing`] (a
//! real server for tests).

pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
mod connection;
pub mod error;
pub mod generator;
pub mod handlers;
pub mod healthcheck;
pub mod memory;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod preview;
pub mod protocol;
mod request_body;
pub mod server;
pub mod template_values;
pub mod testing;

pub use cli::Plugin;
pub use generator::{ErrorKind, Generator, GeneratorError};
pub use protocol::{GetParamsRequest, ParameterMap};
