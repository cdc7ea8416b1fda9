//! The server over real HTTP on a loopback port: every status the plugin
//! promises, with the controller's exact request bytes.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::Scripted;
use plugin_server::testing::{
    GET_PARAMS, TOKEN, TestServer, connect, controller_request, read_response, request_body,
};
use plugin_server::{Generator, GeneratorError, GetParamsRequest, ParameterMap};
use serde_json::{Value, json};

/// A generator whose answer a test chooses.
struct Answer<F>(F);

impl<F> Generator for Answer<F>
where
    F: Fn(GetParamsRequest) -> Result<Vec<ParameterMap>, GeneratorError> + Send + Sync + 'static,
{
    async fn generate(
        &self,
        request: GetParamsRequest,
    ) -> Result<Vec<ParameterMap>, GeneratorError> {
        (self.0)(request)
    }
}

fn scripted() -> TestServer {
    TestServer::start(Scripted)
}

/// A request whose answer is one set per name: `{"environment": name}`.
fn environments(names: &[&str]) -> String {
    let sets: Vec<Value> = names.iter().map(|n| json!({"environment": n})).collect();
    request_body("shop", json!({"sets": sets}))
}

#[test]
fn answers_the_controller_with_parameter_sets() {
    let server = scripted();
    let response = server.post(Some(TOKEN), &environments(&["dev", "prod"]));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        response.json(),
        json!({"output": {"parameters": [{"environment": "dev"}, {"environment": "prod"}]}})
    );
}

/// The value check of a reply must survive any number a generator passes
/// through: `i64::MIN` once made it panic (debug builds) and drop the
/// connection unanswered.
#[test]
fn the_extreme_integers_in_a_reply_are_answered() {
    let server = scripted();
    for n in [
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(-1e308),
    ] {
        let sets = server.get_params("numbers", json!({"n": n})).unwrap();
        assert_eq!(sets[0]["n"], n);
    }
}

#[test]
fn accepts_the_documented_curl_without_json_content_type() {
    let server = scripted();
    let body = environments(&["dev"]);
    let request = format!(
        "POST {GET_PARAMS} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\
         Authorization: Bearer {TOKEN}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let response = server.send(request.as_bytes());
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json()["output"]["parameters"][0]["environment"],
        "dev"
    );
}

#[test]
fn tolerates_fields_a_newer_controller_may_add_and_null_parameters() {
    let server = TestServer::start(Answer(|request: GetParamsRequest| {
        assert!(request.input.parameters.is_empty());
        Ok(vec![ParameterMap::new()])
    }));
    for body in [
        r#"{"applicationSetName":"a","input":{"parameters":null},"newField":{"x":1}}"#,
        r#"{"applicationSetName":"a","input":{}}"#,
    ] {
        let response = server.post(Some(TOKEN), body);
        assert_eq!(response.status, 200, "{body}");
        assert_eq!(response.json(), json!({"output": {"parameters": [{}]}}));
    }
}

#[test]
fn refuses_missing_malformed_and_wrong_tokens_with_403() {
    let server = scripted();
    let body = environments(&["dev"]);
    let missing = server.post(None, &body);
    assert_eq!(missing.status, 403);
    assert!(
        missing.message().contains("Authorization"),
        "{}",
        missing.message()
    );
    for token in [
        "wrong",
        "test-token-012345678",
        "test-token-01234567890",
        "",
    ] {
        let response = server.post(Some(token), &body);
        assert_eq!(response.status, 403, "token {token:?}");
        assert!(!response.message().contains(TOKEN));
    }
    let basic = format!(
        "POST {GET_PARAMS} HTTP/1.1\r\nHost: p\r\nAuthorization: Basic {TOKEN}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(server.send(basic.as_bytes()).status, 403);
}

#[test]
fn checks_the_token_before_reading_the_body() {
    let server = scripted();
    // Announce a body and never send it: the answer must not wait for it.
    let mut stream = connect(server.addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let head = format!(
        "POST {GET_PARAMS} HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer wrong\r\nContent-Length: 1000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let response = read_response(&mut stream).expect("403 without the body");
    assert_eq!(response.status, 403);
}

#[test]
fn malformed_or_wrong_shaped_bodies_are_400_saying_what_is_wrong() {
    let server = scripted();
    let cases = [
        ("{not json", "key must be a string"),
        ("", "EOF while parsing"),
        (r#"{"input":{}}"#, "missing field `applicationSetName`"),
        (
            r#"{"applicationSetName":"a","input":{"parameters":[1]}}"#,
            "invalid type",
        ),
        (
            r#"{"applicationSetName":"a","input":{}} {"x":1}"#,
            "trailing characters",
        ),
        (
            r#"{"applicationSetName":"a","input":{}}garbage"#,
            "trailing characters",
        ),
    ];
    for (body, expected) in cases {
        let response = server.post(Some(TOKEN), body);
        assert_eq!(response.status, 400, "{body}");
        let message = response.message();
        assert!(message.starts_with("invalid request body: "), "{message}");
        assert!(message.contains(expected), "{body}: {message}");
    }
}

/// What a client sent is echoed in a bounded excerpt: a 500 KB string where
/// an object belongs, or a generator message repeating a huge input, never
/// fills the reply (nor the log, nor Argo CD's status).
#[test]
fn messages_echo_a_bounded_excerpt_of_what_clients_sent() {
    let server = scripted();
    let huge = "\u{1F600}".repeat(125_000);
    let body = format!(r#"{{"applicationSetName":"a","input":"{huge}"}}"#);
    let response = server.post(Some(TOKEN), &body);
    assert_eq!(response.status, 400);
    let message = response.message();
    assert!(message.len() < 300, "{} bytes: {message}", message.len());
    assert!(message.contains("invalid type: string") && message.contains("expected"));
    let (status, message) = server
        .get_params("a", json!({"invalid": format!("got {huge}")}))
        .unwrap_err();
    assert_eq!(status, 400);
    assert!(message.len() <= 1024 + 3, "{} bytes", message.len());
}

#[test]
fn invalid_input_parameters_are_400_from_the_generator() {
    let server = scripted();
    let response = server.post(
        Some(TOKEN),
        &request_body(
            "shop",
            json!({"invalid": "input.parameters: `x` is required"}),
        ),
    );
    assert_eq!(response.status, 400);
    assert_eq!(response.message(), "input.parameters: `x` is required");
}

#[test]
fn the_applicationset_namespace_reaches_the_generator_when_sent() {
    let server = TestServer::start(Answer(|request: GetParamsRequest| {
        let mut set = ParameterMap::new();
        set.insert("namespace".into(), request.application_set_namespace.into());
        Ok(vec![set])
    }));
    let with = r#"{"applicationSetName":"a","applicationSetNamespace":"team-a","input":{}}"#;
    let without = r#"{"applicationSetName":"a","input":{}}"#;
    for (body, namespace) in [(with, json!("team-a")), (without, Value::Null)] {
        let response = server.post(Some(TOKEN), body);
        assert_eq!(
            response.json()["output"]["parameters"][0]["namespace"],
            namespace
        );
    }
}

#[test]
fn unknown_paths_are_404_and_wrong_methods_405_in_json() {
    let server = scripted();
    let not_found = server.send(b"GET /nope HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(not_found.status, 404);
    assert!(
        not_found
            .message()
            .contains("POST /api/v1/getparams.execute")
    );
    let prefixed = String::from_utf8(controller_request(Some(TOKEN), "{}"))
        .unwrap()
        .replace(GET_PARAMS, "/prefix/api/v1/getparams.execute");
    assert_eq!(server.send(prefixed.as_bytes()).status, 404);

    let get = server.send(format!("GET {GET_PARAMS} HTTP/1.1\r\nHost: p\r\n\r\n").as_bytes());
    assert_eq!(get.status, 405);
    assert_eq!(get.header("allow"), Some("POST"));
    assert!(get.message().contains("use POST"));
    let post_health =
        server.send(b"POST /healthz HTTP/1.1\r\nHost: p\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(post_health.status, 405);
    assert_eq!(post_health.header("allow"), Some("GET"));
}

#[test]
fn oversized_bodies_are_413_and_the_server_keeps_serving() {
    let server = TestServer::start_with(Scripted, |config| config.max_body_bytes = 1024);
    let ok = environments(&["dev"]);

    // Declared too large: refused from the headers alone.
    let mut stream = connect(server.addr);
    let head = format!(
        "POST {GET_PARAMS} HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 20000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let response = read_response(&mut stream).unwrap();
    assert_eq!(response.status, 413);
    assert!(response.message().contains("1024 bytes"));

    // Undeclared (chunked) and too large: refused once the limit is crossed.
    let mut stream = connect(server.addr);
    let head = format!(
        "POST {GET_PARAMS} HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let chunk = format!("800\r\n{}\r\n", " ".repeat(0x800));
    let _ = stream.write_all(chunk.as_bytes());
    let response = read_response(&mut stream).unwrap();
    assert_eq!(response.status, 413);

    assert_eq!(server.post(Some(TOKEN), &ok).status, 200);
    // Exactly at the limit is accepted; one byte more is not (the
    // controller's encoder adds a newline to the body).
    let at_limit = format!("{ok:<1023}");
    assert_eq!(server.post(Some(TOKEN), &at_limit).status, 200);
    assert_eq!(
        server.post(Some(TOKEN), &format!("{at_limit} ")).status,
        413
    );
}

#[test]
fn a_failing_generator_is_500_with_its_message_never_an_empty_success() {
    let server = TestServer::start(Answer(|_| {
        Err(GeneratorError::failed("registry unreachable"))
    }));
    let response = server.post(Some(TOKEN), &environments(&["dev"]));
    assert_eq!(response.status, 500);
    assert_eq!(response.message(), "generator failed: registry unreachable");
}

#[test]
fn errors_from_other_libraries_convert_with_question_mark() {
    fn parse(request: GetParamsRequest) -> Result<Vec<ParameterMap>, GeneratorError> {
        let _: u32 = request.application_set_name.parse()?;
        Ok(vec![])
    }
    let server = TestServer::start(Answer(parse));
    let response = server.post(Some(TOKEN), &request_body("not-a-number", json!({})));
    assert_eq!(response.status, 500);
    assert!(
        response.message().contains("invalid digit"),
        "{}",
        response.message()
    );
}

#[test]
fn a_panicking_generator_is_500_and_the_server_keeps_serving() {
    let server = TestServer::start(Answer(|request: GetParamsRequest| {
        if request.application_set_name == "boom" {
            panic!("generator bug");
        }
        Ok(vec![ParameterMap::new()])
    }));
    let response = server.post(Some(TOKEN), &request_body("boom", json!({})));
    assert_eq!(response.status, 500);
    assert!(response.message().contains("panicked"));
    assert_eq!(
        server
            .post(Some(TOKEN), &request_body("fine", json!({})))
            .status,
        200
    );
}

#[test]
fn a_generator_over_its_deadline_is_504() {
    let server = TestServer::start_with(Scripted, |config| {
        config.generator_timeout = Duration::from_millis(200)
    });
    let started = Instant::now();
    let response = server.post(
        Some(TOKEN),
        &request_body("slow", json!({"sleep_ms": 5000})),
    );
    assert_eq!(response.status, 504);
    assert!(
        response.message().contains("0.2s"),
        "{}",
        response.message()
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn only_a_true_empty_answer_is_an_empty_200() {
    let server = scripted();
    let response = server.post(Some(TOKEN), &environments(&[]));
    assert_eq!(response.status, 200);
    assert_eq!(response.json(), json!({"output": {"parameters": []}}));
}

#[test]
fn health_and_readiness_probes() {
    let server = scripted();
    let health = server.send(b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );
    let ready = server.send(b"GET /readyz HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ready");
}

#[test]
fn a_rotated_token_file_takes_effect_without_restart() {
    let server = scripted();
    let body = environments(&["dev"]);
    let next = "rotated-token-9876543210";
    std::fs::write(&server.token_file, format!("  {next}\n")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.post(Some(next), &body).status != 200 {
        assert!(
            Instant::now() < deadline,
            "the rotated token was never accepted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.post(Some(TOKEN), &body).status, 403);

    // An empty file is a mistake, not a way to open the door: keep the old token.
    std::fs::write(&server.token_file, "").unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(server.post(Some(next), &body).status, 200);
    assert_eq!(server.post(Some(""), &body).status, 403);
    assert_eq!(server.post(None, &body).status, 403);
}

#[test]
fn keeps_connections_alive_like_the_go_client_expects() {
    let server = scripted();
    let mut stream = connect(server.addr);
    for environment in ["a", "b", "c"] {
        stream
            .write_all(&controller_request(
                Some(TOKEN),
                &environments(&[environment]),
            ))
            .unwrap();
        let response = read_response(&mut stream).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(
            response.json()["output"]["parameters"][0]["environment"],
            environment
        );
    }
}

#[test]
fn slow_clients_are_cut_off() {
    let server = TestServer::start_with(Scripted, |config| {
        config.header_timeout = Duration::from_millis(1000);
        config.body_timeout = Duration::from_millis(300);
    });

    // Headers that never finish: the connection is closed.
    let mut stream = connect(server.addr);
    stream
        .write_all(b"POST /api/v1/getparams.execute HTTP/1.1\r\nHost: p\r\n")
        .unwrap();
    let started = Instant::now();
    let outcome = read_response(&mut stream);
    let elapsed = started.elapsed();
    // Not before the header timeout, and well before the client's 30 s.
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(5)).contains(&elapsed),
        "cut off after {elapsed:?}"
    );
    // A 408, or the connection closed: not a read that timed out.
    match outcome {
        Ok(response) => assert_eq!(response.status, 408),
        Err(error) => assert!(
            matches!(
                error.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
            ),
            "{error}"
        ),
    }

    // A body that never finishes: 408 with a message.
    let mut stream = connect(server.addr);
    let head = format!(
        "POST {GET_PARAMS} HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(b"[").unwrap();
    let response = read_response(&mut stream).unwrap();
    assert_eq!(response.status, 408);
    assert!(response.message().contains("timed out"));

    assert_eq!(
        server.post(Some(TOKEN), &environments(&["dev"])).status,
        200
    );
}

#[test]
fn parameter_values_of_every_json_type_reach_the_generator() {
    let server = TestServer::start(Answer(|request: GetParamsRequest| {
        Ok(vec![request.input.parameters])
    }));
    let parameters = json!({"s": "<a&b>", "n": 3, "f": 1.5, "b": true, "l": ["x", 1], "m": {"k": "v"}, "z": null});
    let response = server.post(Some(TOKEN), &request_body("echo", parameters.clone()));
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json()["output"]["parameters"],
        Value::from(vec![parameters])
    );
}

#[test]
fn answers_over_the_output_limits_are_500_never_a_cut_off_list() {
    let server = TestServer::start_with(Scripted, |config| {
        config.max_parameter_sets = 2;
        config.max_reply_bytes = 200;
    });
    let sets = |n: usize, pad: usize| {
        let sets: Vec<Value> = (0..n)
            .map(|i| json!({"i": i, "pad": "x".repeat(pad)}))
            .collect();
        request_body("shop", json!({"sets": sets}))
    };
    assert_eq!(server.post(Some(TOKEN), &sets(2, 1)).status, 200);
    let many = server.post(Some(TOKEN), &sets(3, 1));
    assert_eq!(many.status, 500);
    assert!(
        many.message().contains("3 parameter sets")
            && many.message().contains("PLUGIN_MAX_PARAMETER_SETS"),
        "{}",
        many.message()
    );
    let large = server.post(Some(TOKEN), &sets(1, 300));
    assert_eq!(large.status, 500);
    assert!(
        large.message().contains("PLUGIN_MAX_REPLY_BYTES"),
        "{}",
        large.message()
    );
}
