//! Every way a request can fail, and the status and JSON body each one gets.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};

use crate::generator::{ErrorKind, GeneratorError};
use crate::handlers::cut;
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
            Self::BadRequest(reason) => write!(f, "invalid request body: {}", bounded(reason)),
            Self::PayloadTooLarge { limit } => {
                write!(f, "request body is larger than the limit of {limit} bytes")
            }
            Self::BodyTimeout => f.write_str("timed out reading the request body"),
            Self::BodyRead(reason) => {
                write!(f, "could not read the request body: {}", bounded(reason))
            }
            Self::NotFound => {
                f.write_str("not found: the plugin serves POST /api/v1/getparams.execute")
            }
            Self::MethodNotAllowed { allow } => write!(f, "method not allowed: use {allow}"),
            // A generator's message may echo its input (`got {value}`).
            Self::Generator(error) => {
                let message = error.to_string();
                match error.kind() {
                    ErrorKind::InvalidInput => write!(f, "{}", bounded(&message)),
                    ErrorKind::Failed => write!(f, "generator failed: {}", bounded(&message)),
                }
            }
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

/// A message that may carry what a client sent is at most this long in a
/// reply, the log and Argo CD's status.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// A double-quoted run inside it keeps at most this much: serde quotes what
/// it could not read (`invalid type: string "…"`), whole.
const MAX_QUOTED_BYTES: usize = 64;

/// `text` with every long double-quoted run cut, and the whole cut to
/// [`MAX_MESSAGE_BYTES`], on character boundaries.
fn bounded(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_QUOTED_BYTES {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE_BYTES + 8));
    let mut rest = text;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        // The closing quote: the next one not escaped with a backslash.
        let mut close = None;
        let mut escaped = false;
        for (index, byte) in rest.bytes().enumerate() {
            match byte {
                b'\\' if !escaped => escaped = true,
                b'"' if !escaped => {
                    close = Some(index);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(close) = close else { break };
        let quoted = &rest[..close];
        if quoted.len() > MAX_QUOTED_BYTES {
            out.push_str(cut(quoted, MAX_QUOTED_BYTES));
            out.push('…');
        } else {
            out.push_str(quoted);
        }
        out.push('"');
        rest = &rest[close + 1..];
        if out.len() > MAX_MESSAGE_BYTES {
            break;
        }
    }
    out.push_str(rest);
    if out.len() > MAX_MESSAGE_BYTES {
        out.truncate(out.floor_char_boundary(MAX_MESSAGE_BYTES));
        out.push('…');
    }
    Cow::Owned(out)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_text_in_messages_is_cut_on_character_boundaries() {
        let serde = format!(
            "invalid type: string \"{}\", expected a map at line 1 column 9",
            "é".repeat(50_000)
        );
        let message = PluginError::BadRequest(serde).to_string();
        assert!(message.len() < 200, "{message}");
        assert!(
            message.ends_with("…\", expected a map at line 1 column 9"),
            "{message}"
        );
        let echoed = format!("got \"{}", "x\\\"".repeat(10_000));
        let message = PluginError::Generator(GeneratorError::invalid_input(echoed)).to_string();
        assert!(
            message.len() <= MAX_MESSAGE_BYTES + '…'.len_utf8(),
            "{}",
            message.len()
        );
        let short = "`name` is required, got \"x\"";
        let message = PluginError::Generator(GeneratorError::invalid_input(short)).to_string();
        assert_eq!(message, short);
        let long = "ü".repeat(2000);
        let message = PluginError::Generator(GeneratorError::failed(long)).to_string();
        let text = message.strip_prefix("generator failed: ").unwrap();
        assert!(text.starts_with('ü') && text.ends_with('…'), "{message}");
        assert!(text.len() <= MAX_MESSAGE_BYTES + '…'.len_utf8());
    }
}
