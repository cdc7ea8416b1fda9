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
//! Settings: `UPSTREAM_URL` (required), `UPSTREAM_TIMEOUT_SECS` (default
//! 10, below the server's 25 s generator deadline) and `UPSTREAM_MAX_BYTES`
//! (default 1 MiB: a larger or endless reply is an error, read no further,
//! so one upstream cannot push the pod past its memory limit).

use std::time::{Duration, Instant};

use plugin_server::{Generator, GeneratorError, GetParamsRequest, ParameterMap};
use serde::Deserialize;
use serde_json::Value;

/// A request this generator answers with success. `{{project-name}} preview`
/// runs it when given no parameters, and the template's checks send it to the
/// built plugin: keep it answerable when you change the generator.
pub const EXAMPLE_REQUEST: &str =
    r#"{"applicationSetName":"previews","input":{"parameters":{"branch":"main"}}}"#;

/// The default most bytes read of one upstream reply.
const DEFAULT_MAX_BYTES: usize = 1024 * 1024;

/// Built once at start-up and shared by all requests: one HTTP client, so
/// connections to the upstream are reused.
#[derive(Debug)]
pub struct PluginGenerator {
    client: reqwest::Client,
    upstream: reqwest::Url,
    /// The upstream as messages name it: no credentials, path or query.
    upstream_name: String,
    timeout: Duration,
    max_bytes: usize,
}

impl PluginGenerator {
    /// Reads the generator's settings; an error stops the plugin at start-up
    /// with this message.
    pub fn from_env() -> Result<Self, String> {
        let upstream = std::env::var("UPSTREAM_URL")
            .map_err(|_| "UPSTREAM_URL is not set: the API to ask for builds")?;
        let number = |name: &str, default: u64| match std::env::var(name) {
            Ok(value) => value.parse().map_err(|e| format!("{name}={value:?}: {e}")),
            Err(_) => Ok(default),
        };
        let timeout = Duration::from_secs(number("UPSTREAM_TIMEOUT_SECS", 10)?);
        let max_bytes = number("UPSTREAM_MAX_BYTES", DEFAULT_MAX_BYTES as u64)?;
        let generator = Self::new(&upstream, timeout)?;
        Ok(generator.with_max_bytes(usize::try_from(max_bytes).map_err(|e| e.to_string())?))
    }

    pub fn new(upstream: &str, timeout: Duration) -> Result<Self, String> {
        // The URL may carry credentials: never echo it.
        let upstream =
            reqwest::Url::parse(upstream).map_err(|e| format!("UPSTREAM_URL is not a URL: {e}"))?;
        let upstream_name = match (upstream.host_str(), upstream.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", upstream.scheme()),
            (Some(host), None) => format!("{}://{host}", upstream.scheme()),
            (None, _) => return Err("UPSTREAM_URL has no host".into()),
        };
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
        Ok(Self {
            client,
            upstream,
            upstream_name,
            timeout,
            max_bytes: DEFAULT_MAX_BYTES,
        })
    }

    pub fn with_max_bytes(self, max_bytes: usize) -> Self {
        Self { max_bytes, ..self }
    }

    /// A failed exchange with the upstream, without its URL (credentials,
    /// query strings) in the message.
    fn failure(&self, error: reqwest::Error) -> GeneratorError {
        let upstream = &self.upstream_name;
        if error.is_timeout() {
            return GeneratorError::failed(format!(
                "upstream {upstream} timed out after {} s",
                self.timeout.as_secs_f32()
            ));
        }
        let what = if error.is_connect() {
            "unreachable"
        } else {
            "failed"
        };
        let error = error.without_url();
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        GeneratorError::failed(format!("upstream {upstream} {what}: {message}"))
    }

    /// The reply's body, at most `max_bytes` of it: a larger or endless reply
    /// is an error before it is parsed, and read no further.
    async fn body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, GeneratorError> {
        let too_large = || {
            GeneratorError::failed(format!(
                "upstream {} replied with more than {} bytes (UPSTREAM_MAX_BYTES)",
                self.upstream_name, self.max_bytes
            ))
        };
        if response
            .content_length()
            .is_some_and(|length| length > self.max_bytes as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.failure(e))? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
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
        let upstream = &self.upstream_name;
        let started = Instant::now();
        let sent = self.client.get(url).send().await;
        // For `/metrics`: the upstream's latency and answers (or none).
        let status = sent.as_ref().ok().map(|r| r.status().as_u16());
        plugin_server::record_upstream_call(started.elapsed(), status);
        let response = sent.map_err(|e| self.failure(e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(GeneratorError::failed(format!(
                "upstream {upstream} answered {status} for branch {branch}"
            )));
        }
        let body = self.body(response).await?;
        let builds: Builds = serde_json::from_slice(&body).map_err(|e| {
            GeneratorError::failed(format!("upstream {upstream} replied unexpected JSON: {e}"))
        })?;
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
        for (reply, message) in [
            (ResponseTemplate::new(503), "answered 503"),
            (
                ResponseTemplate::new(200).set_body_string("not json"),
                "unexpected JSON",
            ),
            (
                ResponseTemplate::new(200).set_delay(Duration::from_secs(5)),
                "timed out after 2 s",
            ),
            (
                ResponseTemplate::new(200).set_body_string(" ".repeat(DEFAULT_MAX_BYTES + 1)),
                "more than 1048576 bytes",
            ),
        ] {
            let upstream = upstream("main", reply);
            let error = generate(&generator(&upstream), json!({"branch": "main"})).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Failed, "{error}");
            assert!(error.message().contains(message), "{error}");
        }
    }

    /// An upstream that answers a JSON array that never ends, chunk by
    /// chunk: returns its URL, and the bytes it sent before the client left.
    fn endless_upstream() -> (String, std::thread::JoinHandle<usize>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let sender = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_write_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let _ = stream.read(&mut [0; 4096]);
            let item = r#"{"component":"front","digest":"sha256:aa"},"#.repeat(100);
            let chunk = format!("{:x}\r\n{item}\r\n", item.len());
            let mut sent = 0;
            let head =
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nb\r\n{\"builds\":[\r\n";
            let mut frame = head.as_bytes();
            // At most 256 MiB, so a client that never stops cannot hang the test.
            while sent < 256 << 20 && stream.write_all(frame).is_ok() {
                sent += frame.len();
                frame = chunk.as_bytes();
            }
            sent
        });
        (url, sender)
    }

    #[test]
    fn an_endless_reply_is_an_error_read_no_further() {
        let (url, sender) = endless_upstream();
        let generator = PluginGenerator::new(&url, Duration::from_secs(20)).unwrap();
        let error = generate(&generator, json!({"branch": "main"})).unwrap_err();
        assert!(
            error.message().contains("more than 1048576 bytes"),
            "{error}"
        );
        let sent = sender.join().unwrap();
        assert!(sent < 32 << 20, "the upstream sent {sent} bytes");
    }

    #[test]
    fn messages_never_carry_credentials_or_query_strings() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://user:hunter2@127.0.0.1:{port}/api?key=sekret");
        let generator = PluginGenerator::new(&url, Duration::from_secs(2)).unwrap();
        let error = generate(&generator, json!({"branch": "main"})).unwrap_err();
        let message = error.message();
        assert!(
            message.contains(&format!("127.0.0.1:{port} unreachable")),
            "{message}"
        );
        for secret in ["user", "hunter2", "sekret"] {
            assert!(!message.contains(secret), "{message}");
        }
        let error =
            PluginGenerator::new("http://user:hunter2@", Duration::from_secs(1)).unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
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
