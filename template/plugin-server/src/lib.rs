//! The server an Argo CD ApplicationSet plugin generator plugs into.
//!
//! Owned by the template: the project's own code is its generator (in the
//! project's `src/generator.rs`), which implements [`Generator`] and is handed
//! to [`Plugin::main`] by `src/main.rs`. That, the protocol's types and, for
//! tests, `testing` (a real server on a loopback port; the `testing` feature,
//! which the project's `[dev-dependencies]` turn on) are all it exports.
//! Inside: `protocol` (the wire format), `auth` (the bearer token),
//! `handlers` (HTTP endpoints and their JSON errors), `server` (sockets,
//! limits, timeouts, access log, shutdown; `connection` and `request_body`
//! bound what one client can cost), `config` (environment variables),
//! `tls` (HTTPS, with the `tls` feature), `cache`, `preview` (one run without a server), `template_values` and
//! `go_print` (what Argo CD's templates print for a reply's values).

mod auth;
mod cache;
mod cli;
mod config;
mod connection;
mod error;
mod generator;
mod go_print;
mod handlers;
mod healthcheck;
mod logging;
mod memory;
#[cfg(feature = "metrics")]
mod metrics;
mod preview;
mod protocol;
mod request_body;
mod server;
mod template_values;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "tls")]
mod tls;

pub use cli::Plugin;
pub use generator::{ErrorKind, Generator, GeneratorError};
pub use protocol::{GetParamsRequest, ParameterMap};

/// Records one call of the generator to another service (an HTTP API, a
/// database): how long it took to the answer's head, and the answer's HTTP
/// status, `None` when there was no answer (refused, timed out). With the
/// `metrics` feature they are `plugin_upstream_requests_total{result}` and
/// `plugin_upstream_request_duration_seconds` at `/metrics`, shown once a
/// call is recorded; without it, nothing is kept.
pub fn record_upstream_call(elapsed: std::time::Duration, status: Option<u16>) {
    #[cfg(feature = "metrics")]
    metrics::record_upstream_call(elapsed, status);
    #[cfg(not(feature = "metrics"))]
    let _ = (elapsed, status);
}
