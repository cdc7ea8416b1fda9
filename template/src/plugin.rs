//! The contract between your generator and the server.
//!
//! Fail closed: Argo CD treats any 2xx reply as the complete list and prunes the
//! Applications it no longer contains. So a generator returns `Ok` only with the
//! full answer (an empty list only when there is truly nothing), and an `Err`
//! for anything else; the server turns every `Err`, panic or overrun deadline
//! into a non-2xx reply, which leaves existing Applications untouched.

use std::fmt;
use std::future::Future;

use crate::protocol::{GetParamsRequest, ParameterMap};

/// Turns one request from the ApplicationSet controller into parameter sets.
///
/// One value is built at start-up and shared by all requests, so it can hold
/// clients, caches or configuration.
pub trait Generator: Send + Sync + 'static {
    fn generate(
        &self,
        request: GetParamsRequest,
    ) -> impl Future<Output = Result<Vec<ParameterMap>, GeneratorError>>;
}

/// Why a generator could not produce the complete list of parameter sets.
///
/// Any `std::error::Error` converts into it, so `?` works on your own calls.
#[derive(Debug, Clone)]
pub struct GeneratorError {
    kind: ErrorKind,
    message: String,
}

/// Whose fault the failure is: it decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The ApplicationSet's `input.parameters` are wrong (400).
    InvalidInput,
    /// The generator itself failed, e.g. an upstream API is down (500).
    Failed,
}

impl GeneratorError {
    /// The generator failed (HTTP 500).
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Failed,
            message: message.into(),
        }
    }

    /// The input parameters are invalid (HTTP 400).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidInput,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for GeneratorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for GeneratorError {
    fn from(error: E) -> Self {
        Self::failed(error.to_string())
    }
}
