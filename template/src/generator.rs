//! Your generator: the one file of this project you are meant to edit.
//!
//! It gets the ApplicationSet's name and `input.parameters` and returns the
//! parameter sets the ApplicationSet's template is rendered with, one
//! Application per set. Return `Err` whenever you cannot compute the complete
//! list (see `plugin.rs` for why); the server handles everything else.
//!
//! The example makes one parameter set per environment:
//!
//! ```text
//! input.parameters: {"name": "shop", "environments": ["dev", "prod"]}
//! output:           [{"name": "shop", "environment": "dev",  "namespace": "shop-dev"},
//!                    {"name": "shop", "environment": "prod", "namespace": "shop-prod"}]
//! ```
//!
//! `name` defaults to the ApplicationSet's name; `environments` is required.

use serde_json::Value;

use crate::plugin::{Generator, GeneratorError};
use crate::protocol::{GetParamsRequest, ParameterMap};

/// Built once at start-up (see `main.rs`) and shared by all requests: put
/// your HTTP clients, caches and configuration here.
#[derive(Debug, Default)]
pub struct PluginGenerator;

impl PluginGenerator {
    pub fn new() -> Self {
        Self
    }
}

impl Generator for PluginGenerator {
    async fn generate(
        &self,
        request: GetParamsRequest,
    ) -> Result<Vec<ParameterMap>, GeneratorError> {
        let parameters = &request.input.parameters;
        let name = match parameters.get("name") {
            None => request.application_set_name.as_str(),
            Some(value) => dns_label("name", value)?,
        };
        let environments = match parameters.get("environments") {
            Some(Value::Array(environments)) => environments,
            Some(_) => return Err(invalid("`environments` must be a list of strings")),
            None => {
                return Err(invalid(
                    "`environments` is required, e.g. [\"dev\", \"prod\"]",
                ));
            }
        };

        environments
            .iter()
            .map(|environment| {
                let environment = dns_label("environments[]", environment)?;
                let mut set = ParameterMap::new();
                set.insert("name".into(), name.into());
                set.insert("environment".into(), environment.into());
                set.insert("namespace".into(), format!("{name}-{environment}").into());
                Ok(set)
            })
            .collect()
    }
}

/// Accepts a string usable in a Kubernetes namespace name.
fn dns_label<'a>(field: &str, value: &'a Value) -> Result<&'a str, GeneratorError> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 30
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.ends_with('-')
    };
    match value.as_str() {
        Some(s) if valid(s) => Ok(s),
        _ => Err(invalid(format!(
            "`{field}` must be a lower-case name of at most 30 letters, digits and '-', got {value}"
        ))),
    }
}

fn invalid(message: impl Into<String>) -> GeneratorError {
    GeneratorError::invalid_input(format!("input.parameters: {}", message.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::ErrorKind;
    use serde_json::json;

    fn generate(parameters: Value) -> Result<Vec<ParameterMap>, GeneratorError> {
        let request = serde_json::from_value(json!({
            "applicationSetName": "shop",
            "input": {"parameters": parameters},
        }))
        .expect("valid request");
        actix_web::rt::System::new().block_on(PluginGenerator.generate(request))
    }

    #[test]
    fn one_set_per_environment() {
        let sets = generate(json!({"environments": ["dev", "prod"]})).unwrap();
        assert_eq!(
            Value::from(sets),
            json!([
                {"name": "shop", "environment": "dev", "namespace": "shop-dev"},
                {"name": "shop", "environment": "prod", "namespace": "shop-prod"},
            ])
        );
    }

    #[test]
    fn name_parameter_overrides_the_application_set_name() {
        let sets = generate(json!({"name": "web", "environments": ["qa"]})).unwrap();
        assert_eq!(sets[0]["namespace"], json!("web-qa"));
    }

    #[test]
    fn no_environments_is_an_empty_answer() {
        assert!(generate(json!({"environments": []})).unwrap().is_empty());
    }

    #[test]
    fn bad_input_is_an_error_not_an_empty_list() {
        for parameters in [
            json!({}),
            json!({"environments": "dev"}),
            json!({"environments": ["Dev"]}),
            json!({"environments": [1]}),
            json!({"name": "", "environments": ["dev"]}),
        ] {
            let error = generate(parameters.clone()).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidInput, "{parameters}");
            assert!(error.message().starts_with("input.parameters: "));
        }
    }
}
