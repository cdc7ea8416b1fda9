//! The contract between a generator and the server, and how the server runs
//! one.
//!
//! Fail closed: Argo CD treats any 2xx reply as the complete list and prunes the
//! Applications it no longer contains. So a generator returns `Ok` only with the
//! full answer (an empty list only when there is truly nothing), and an `Err`
//! for anything else; the server turns every `Err`, panic or overrun deadline
//! into a non-2xx reply, which leaves existing Applications untouched.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;

use crate::config::Config;
use crate::error::PluginError;
use crate::protocol::{GetParamsRequest, GetParamsResponse, ParameterMap};

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

/// Runs the generator under a deadline, turning a panic into a 500 and an
/// overrun into a 504, never a 2xx. Dropping the future (deadline passed,
/// client gone) stops the generator.
pub async fn run<G: Generator>(
    generator: &G,
    request: GetParamsRequest,
    deadline: Duration,
) -> Result<Vec<ParameterMap>, PluginError> {
    // A panic is an `Err` here (the panic hook has already logged where).
    let generation = AssertUnwindSafe(generator.generate(request)).catch_unwind();
    match actix_web::rt::time::timeout(deadline, generation).await {
        Ok(Ok(result)) => result.map_err(PluginError::Generator),
        Ok(Err(_panic)) => Err(PluginError::GeneratorPanicked),
        Err(_elapsed) => Err(PluginError::GeneratorTimeout(deadline)),
    }
}

/// The reply body for `sets`, within the configured limits: a larger answer
/// is an error (a 500), never a truncated list.
pub fn reply(sets: &[ParameterMap], config: &Config) -> Result<Vec<u8>, PluginError> {
    if sets.len() > config.max_parameter_sets {
        return Err(PluginError::TooManyParameterSets {
            count: sets.len(),
            limit: config.max_parameter_sets,
        });
    }
    let body = serde_json::to_vec(&GetParamsResponse::new(sets))
        .map_err(|e| PluginError::Generator(GeneratorError::failed(e.to_string())))?;
    if body.len() > config.max_reply_bytes {
        return Err(PluginError::ReplyTooLarge {
            bytes: body.len(),
            limit: config.max_reply_bytes,
        });
    }
    Ok(body)
}
