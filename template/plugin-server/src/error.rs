//! Every way a request can fail, and the status and JSON body each one gets.

use std::fmt;
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};

use crate::generator::{ErrorKind, GeneratorError};
use crate::protocol::ErrorBody;

#[derive(Debug)]
pub enum PluginError {
    /// No `Authorization: Bearer <token>` header.
    MissingToken,
    /// A bearer token that is not the configured one.
    WrongToken,
    /// The body is not a JSON request of the expected shape.
    BadRequest(String),
    /// The body is larger than the configured limit.
    PayloadTooLarge {
        limit: usize,
    },
    /// The client did not send its body in time.
    BodyTimeout,
    /// The body could not be read from the connection.
    BodyRead(String),
    NotFound,
    MethodNotAllowed {
        allow: &'static str,
    },
    /// The generator returned an error.
    Generator(GeneratorError),
    /// The generator panicked.
    GeneratorPanicked,
    /// The generator did not finish before the deadline.
    GeneratorTimeout(Duration),
    /// The generator answered more parameter sets than allowed.
    TooManyParameterSets {
        count: usize,
        limit: usize,
    },
    /// The reply would be larger than allowed.
    ReplyTooLarge {
        bytes: usize,
        limit: usize,
    },
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingToken => {
                f.write_str("missing or malformed Authorization header: expected `Bearer <token>`")
            }
            Self::WrongToken => f.write_str("invalid bearer token"),
            Self::BadRequest(reason) => write!(f, "invalid request body: {reason}"),
            Self::PayloadTooLarge { limit } => {
                write!(f, "request body is larger than the limit of {limit} bytes")
            }
            Self::BodyTimeout => f.write_str("timed out reading the request body"),
            Self::BodyRead(reason) => write!(f, "could not read the request body: {reason}"),
            Self::NotFound => {
                f.write_str("not found: the plugin serves POST /api/v1/getparams.execute")
            }
            Self::MethodNotAllowed { allow } => write!(f, "method not allowed: use {allow}"),
            Self::Generator(error) => match error.kind() {
                ErrorKind::InvalidInput => write!(f, "{error}"),
                ErrorKind::Failed => write!(f, "generator failed: {error}"),
            },
            Self::GeneratorPanicked => {
                f.write_str("generator failed: it panicked (see the plugin's log)")
            }
            Self::TooManyParameterSets { count, limit } => write!(
                f,
                "the generator answered {count} parameter sets, more than the limit of {limit} \
                 (PLUGIN_MAX_PARAMETER_SETS)"
            ),
            Self::ReplyTooLarge { bytes, limit } => write!(
                f,
                "the reply would be {bytes} bytes, more than the limit of {limit} \
                 (PLUGIN_MAX_REPLY_BYTES)"
            ),
            Self::GeneratorTimeout(deadline) => {
                write!(
                    f,
                    "generator did not finish within {}s",
                    deadline.as_secs_f64()
                )
            }
        }
    }
}

impl std::error::Error for PluginError {}

impl ResponseError for PluginError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::WrongToken => StatusCode::FORBIDDEN,
            Self::BadRequest(_) | Self::BodyRead(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Generator(error) => match error.kind() {
                ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
                ErrorKind::Failed => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::GeneratorPanicked
            | Self::TooManyParameterSets { .. }
            | Self::ReplyTooLarge { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::GeneratorTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = self.to_string();
        let mut response = HttpResponse::build(self.status_code());
        if let Self::MethodNotAllowed { allow } = self {
            response.insert_header((header::ALLOW, *allow));
        }
        if matches!(
            self,
            Self::PayloadTooLarge { .. } | Self::BodyTimeout | Self::BodyRead(_)
        ) {
            // The rest of the body is unread: do not reuse the connection.
            response.force_close();
        }
        response.json(ErrorBody { message: &message })
    }
}
