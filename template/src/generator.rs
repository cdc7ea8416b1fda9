//! Your generator: the one file of this project you are meant to edit, with
//! its tests and its example request. Everything else (protocol, token,
//! limits, errors, health, logs, shutdown) is the template's, in
//! `plugin-server/`.
//!
//! It gets the ApplicationSet's name and `input.parameters` and returns the
//! parameter sets the ApplicationSet's template is rendered with, one
//! Application per set. Return `Err` whenever you cannot compute the complete
//! list: Argo CD takes any success as the whole truth and deletes the
//! Applications it no longer contains.
//!
//! The example makes one parameter set per environment:
//!
//! ```text
//! input.parameters: {"name": "shop", "environments": ["dev", "prod"]}
//! output:           [{"name": "shop", "environment": "dev",  "namespace": "shop-dev"},
//!                    {"name": "shop", "environment": "prod", "namespace": "shop-prod"}]
//! ```
//!
//! `name` defaults to the ApplicationSet's name; `environments` is required
//! and each must be one of `ALLOWED_ENVIRONMENTS`
//! (default `dev,staging,prod,preview`).

use plugin_server::{Generator, GeneratorError, GetParamsRequest, ParameterMap};
use serde_json::Value;

/// A request this generator answers with success. `{{project-name}} preview`
/// runs it when given no parameters, and the template's checks send it to the
/// built plugin: keep it answerable when you change the generator.
pub const EXAMPLE_REQUEST: &str =
    r#"{"applicationSetName":"shop","input":{"parameters":{"environments":["dev","prod"]}}}"#;

/// The most environments one request may ask for.
const MAX_ENVIRONMENTS: usize = 1000;

/// Built once at start-up and shared by all requests: put your settings,
/// HTTP clients and caches here.
#[derive(Debug)]
pub struct PluginGenerator {
    allowed_environments: Vec<String>,
}

impl PluginGenerator {
    /// Reads the generator's settings; an error stops the plugin at start-up
    /// with this message.
    pub fn from_env() -> Result<Self, String> {
        let allowed = std::env::var("ALLOWED_ENVIRONMENTS")
            .unwrap_or_else(|_| "dev,staging,prod,preview".into());
        Self::new(allowed.split(',').map(str::trim))
    }

    pub fn new<'a>(allowed: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let allowed_environments: Vec<String> = allowed
            .into_iter()
            .filter(|environment| !environment.is_empty())
            .map(str::to_owned)
            .collect();
        if allowed_environments.is_empty() {
            return Err("ALLOWED_ENVIRONMENTS names no environment".into());
        }
        Ok(Self {
            allowed_environments,
        })
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
        // Bound the fan-out before building it: the answer grows with the input.
        if environments.len() > MAX_ENVIRONMENTS {
            return Err(invalid(format!(
                "at most {MAX_ENVIRONMENTS} `environments`, got {}",
                environments.len()
            )));
        }

        environments
            .iter()
            .map(|environment| {
                let environment = dns_label("environments[]", environment)?;
                if !self.allowed_environments.iter().any(|a| a == environment) {
                    return Err(invalid(format!(
                        "environment `{environment}` is not one of {}",
                        self.allowed_environments.join(", ")
                    )));
                }
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
    use plugin_server::ErrorKind;
    use plugin_server::testing::{self, TestServer};
    use serde_json::json;

    fn example() -> PluginGenerator {
        PluginGenerator::new(["dev", "staging", "prod"]).unwrap()
    }

    fn generate(parameters: Value) -> Result<Vec<ParameterMap>, GeneratorError> {
        testing::generate(&example(), testing::request("shop", parameters))
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
        let sets = generate(json!({"name": "web", "environments": ["dev"]})).unwrap();
        assert_eq!(sets[0]["namespace"], json!("web-dev"));
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
            json!({"environments": ["qa"]}),
            json!({"environments": vec!["dev"; MAX_ENVIRONMENTS + 1]}),
            json!({"name": "", "environments": ["dev"]}),
        ] {
            let error = generate(parameters.clone()).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidInput, "{parameters}");
            assert!(error.message().starts_with("input.parameters: "));
        }
    }

    #[test]
    fn settings_without_an_environment_are_refused() {
        assert!(PluginGenerator::new(["", ""]).is_err());
    }

    #[test]
    fn the_example_request_succeeds() {
        let request = serde_json::from_str(EXAMPLE_REQUEST).unwrap();
        assert!(!testing::generate(&example(), request).unwrap().is_empty());
    }

    /// Through the real server, as Argo CD calls it.
    #[test]
    fn over_http() {
        let server = TestServer::start(example());
        let sets = server
            .get_params("shop", json!({"environments": ["staging"]}))
            .unwrap();
        assert_eq!(sets[0]["namespace"], json!("shop-staging"));
        let (status, message) = server
            .get_params("shop", json!({"environments": "dev"}))
            .unwrap_err();
        assert_eq!(status, 400);
        assert_eq!(
            message,
            "input.parameters: `environments` must be a list of strings"
        );
    }
}
