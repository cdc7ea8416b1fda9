//! The template's own test generator: it does what the request's parameters
//! say, so the tests never depend on the project's generator.

use std::time::Duration;

use plugin_server::{Generator, GeneratorError, GetParamsRequest, ParameterMap};
use serde_json::Value;

/// - `{"sets": [{...}, ...]}`: answers those parameter sets;
/// - `{"fail": "message"}` / `{"invalid": "message"}`: fails (500 / 400);
/// - `{"panic": true}`: panics;
/// - `{"sleep_ms": N, ...}`: first sleeps N ms;
/// - anything else: answers the parameters themselves as one set.
#[derive(Debug, Default)]
pub struct Scripted;

impl Generator for Scripted {
    async fn generate(
        &self,
        request: GetParamsRequest,
    ) -> Result<Vec<ParameterMap>, GeneratorError> {
        let parameters = request.input.parameters;
        if let Some(ms) = parameters.get("sleep_ms").and_then(Value::as_u64) {
            actix_web::rt::time::sleep(Duration::from_millis(ms)).await;
        }
        let text = |key: &str| parameters.get(key).and_then(Value::as_str);
        if let Some(message) = text("fail") {
            return Err(GeneratorError::failed(message));
        }
        if let Some(message) = text("invalid") {
            return Err(GeneratorError::invalid_input(message));
        }
        if parameters.contains_key("panic") {
            panic!("generator bug");
        }
        match parameters.get("sets") {
            Some(Value::Array(sets)) => sets
                .iter()
                .map(|set| match set {
                    Value::Object(set) => Ok(set.clone()),
                    other => Err(GeneratorError::invalid_input(format!(
                        "sets[] must be objects, got {other}"
                    ))),
                })
                .collect(),
            _ => Ok(vec![parameters]),
        }
    }
}
