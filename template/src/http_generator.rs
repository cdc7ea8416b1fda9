//! Your generator: the one file of this project you are meant to edit, with
//! its tests and its example request. Everything else (protocol, token,
//! limits, errors, health, logs, shutdown) is the template's, in
//! `plugin-server/`.
//!
//! This example asks a JSON API which images CI built for a branch, the
//! classic use of a plugin beside a pull request generator:
//!
//! ```text
//! input.parameters: {"branch": "feature-1"}
//! GET {UPSTREAM_URL}/builds?branch=feature-1
//!   -> {"builds": [{"component": "front", "digest": "sha256:…"}, …]}
//! output: [{"branch": "feature-1", "component": "front", "digest": "sha256:…"}, …]
//! ```
//!
//! Settings: `UPSTREAM_URL` (required) and `UPSTREAM_TIMEOUT_SECS` (default
//! 10, below the server's 25 s generator deadline).

use std::time::Duration;

use plugin_server::{Generator, GeneratorError, GetParamsRequest, ParameterMap};
use serde::Deserialize;
use serde_json::Value;

/// A request this generator answers with success. `{{project-name}} preview`
/// runs it when given no parameters, and the template's checks send it to the
/// built plugin: keep it answerable when you change the generator.
pub const EXAMPLE_REQUEST: &str =
    r#"{"applicationSetName":"previews","input":{"parameters":{"branch":"main"}}}"#;

/// Built once at start-up and shared by all requests: one HTTP client, so
/// connections to the upstream are reused.
#[derive(Debug)]
pub struct PluginGenerator {
    client: reqwest::Client,
    upstream: reqwest::Url,
}

impl PluginGenerator {
    /// Reads the generator's settings; an error stops the plugin at start-up
    /// with this message.
    pub fn from_env() -> Result<Self, String> {
        let upstream = std::env::var("UPSTREAM_URL")
            .map_err(|_| "UPSTREAM_URL is not set: the API to ask for builds")?;
        let timeout = match std::env::var("UPSTREAM_TIMEOUT_SECS") {
            Ok(secs) => secs
                .parse()
                .map_err(|e| format!("UPSTREAM_TIMEOUT_SECS={secs:?}: {e}"))?,
            Err(_) => 10,
        };
        Self::new(&upstream, Duration::from_secs(timeout))
    }

    pub fn new(upstream: &str, timeout: Duration) -> Result<Self, String> {
        let upstream = reqwest::Url::parse(upstream)
            .map_err(|e| format!("UPSTREAM_URL {upstream:?} is not a URL: {e}"))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3))
            .user_agent(concat!(
                env!("CARGO_PKG_NAME"),
                "/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self { client, upstream })
    }
}

/// The upstream's reply.
#[derive(Debug, Deserialize)]
struct Builds {
    builds: Vec<Build>,
}

#[derive(Debug, Deserialize)]
struct Build {
    component: String,
    digest: String,
}

impl Generator for PluginGenerator {
    async fn generate(
        &self,
        request: GetParamsRequest,
    ) -> Result<Vec<ParameterMap>, GeneratorError> {
        let branch = match request.input.parameters.get("branch") {
            Some(Value::String(branch)) if !branch.is_empty() => branch,
            _ => {
                return Err(GeneratorError::invalid_input(
                    "input.parameters: `branch` is required, e.g. \"main\"",
                ));
            }
        };
        let mut url = self.upstream.clone();
        url.path_segments_mut()
            .map_err(|()| GeneratorError::failed("UPSTREAM_URL cannot have a path"))?
            .pop_if_empty()
            .push("builds");
        url.query_pairs_mut().append_pair("branch", branch);

        // Any failure is an error, never an empty list: Argo CD would delete
        // the Applications.
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| GeneratorError::failed(format!("upstream unreachable: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(GeneratorError::failed(format!(
                "upstream answered {status} for branch {branch}"
            )));
        }
        let builds: Builds = response
            .json()
            .await
            .map_err(|e| GeneratorError::failed(format!("upstream reply: {e}")))?;
        Ok(builds
            .builds
            .into_iter()
            .map(|build| {
                let mut set = ParameterMap::new();
                set.insert("branch".into(), branch.clone().into());
                set.insert("component".into(), build.component.into());
                set.insert("digest".into(), build.digest.into());
                set
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_server::ErrorKind;
    use plugin_server::testing::{self, TestServer};
    use serde_json::json;
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    /// A fake upstream on a loopback port, answering `reply` for `branch`.
    fn upstream(branch: &str, reply: ResponseTemplate) -> MockServer {
        testing::block_on(async {
            let server = MockServer::start().await;
            Mock::given(method("GET"))
                .and(path("/builds"))
                .and(query_param("branch", branch))
                .respond_with(reply)
                .mount(&server)
                .await;
            server
        })
    }

    fn generator(upstream: &MockServer) -> PluginGenerator {
        PluginGenerator::new(&upstream.uri(), Duration::from_secs(2)).unwrap()
    }

    fn builds() -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({"builds": [
            {"component": "front", "digest": "sha256:aa"},
            {"component": "back", "digest": "sha256:bb"},
        ]}))
    }

    fn generate(
        generator: &PluginGenerator,
        parameters: Value,
    ) -> Result<Vec<ParameterMap>, GeneratorError> {
        testing::generate(generator, testing::request("previews", parameters))
    }

    #[test]
    fn one_set_per_build_of_the_branch() {
        let upstream = upstream("feature-1", builds());
        let sets = generate(&generator(&upstream), json!({"branch": "feature-1"})).unwrap();
        assert_eq!(
            Value::from(sets),
            json!([
                {"branch": "feature-1", "component": "front", "digest": "sha256:aa"},
                {"branch": "feature-1", "component": "back", "digest": "sha256:bb"},
            ])
        );
    }

    #[test]
    fn upstream_failures_are_errors_never_an_empty_list() {
        for reply in [
            ResponseTemplate::new(503),
            ResponseTemplate::new(200).set_body_string("not json"),
            ResponseTemplate::new(200).set_delay(Duration::from_secs(5)),
        ] {
            let upstream = upstream("main", reply);
            let error = generate(&generator(&upstream), json!({"branch": "main"})).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Failed, "{error}");
        }
    }

    #[test]
    fn a_missing_branch_is_invalid_input() {
        let upstream = upstream("main", builds());
        let error = generate(&generator(&upstream), json!({})).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn settings_are_checked_at_start_up() {
        assert!(PluginGenerator::new("not a url", Duration::from_secs(1)).is_err());
    }

    /// Through the real server, as Argo CD calls it.
    #[test]
    fn over_http() {
        let upstream = upstream("main", builds());
        let server = TestServer::start(generator(&upstream));
        let sets = server
            .get_params("previews", json!({"branch": "main"}))
            .unwrap();
        assert_eq!(sets.len(), 2);
        let (status, message) = server
            .get_params("previews", json!({"branch": "gone"}))
            .unwrap_err();
        assert_eq!(status, 500);
        assert!(message.contains("404"), "{message}");
    }
}
