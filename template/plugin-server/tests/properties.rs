//! Properties over arbitrary input, against the real server: it never
//! panics, never lets a wrong token in, always answers errors in JSON, and
//! never answers 2xx when the generator fails or panics.

mod common;

use common::Scripted;
use plugin_server::testing::{
    GET_PARAMS, TOKEN, TestServer, controller_request, request_body, try_exchange,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Any JSON value, nested a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// An error reply: a JSON object with a `message`.
fn is_json_error(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|body| body["message"].is_string())
}

#[test]
fn arbitrary_bytes_are_answered_200_or_a_json_400() {
    let server = TestServer::start(Scripted);
    runner()
        .run(&prop::collection::vec(any::<u8>(), 0..300), |body| {
            let mut request = format!(
                "POST {GET_PARAMS} HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            request.extend_from_slice(&body);
            let response = try_exchange(server.addr, &request).expect("an answer");
            prop_assert!(response.status == 200 || response.status == 400, "{}", response.status);
            if response.status == 400 {
                prop_assert!(is_json_error(&response.body));
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn arbitrary_parameters_and_names_are_answered_200_or_a_json_400() {
    let server = TestServer::start(Scripted);
    runner()
        .run(&(".{0,20}", json()), |(name, parameters)| {
            let body = serde_json::json!({"applicationSetName": name, "input": {"parameters": parameters}});
            let response = server.post(Some(TOKEN), &body.to_string());
            match response.status {
                200 => prop_assert!(response.json()["output"]["parameters"].is_array()),
                400 => prop_assert!(is_json_error(&response.body)),
                other => prop_assert!(false, "status {other} for {body}"),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn no_wrong_token_is_ever_let_in() {
    let server = TestServer::start(Scripted);
    let body = request_body("shop", serde_json::json!({"environment": "dev"}));
    runner()
        .run(&"[!-~]{0,40}", |token| {
            prop_assume!(token != TOKEN);
            let response = try_exchange(server.addr, &controller_request(Some(&token), &body))
                .expect("an answer");
            prop_assert_eq!(response.status, 403);
            prop_assert!(is_json_error(&response.body));
            Ok(())
        })
        .unwrap();
}

#[test]
fn arbitrary_extra_headers_do_not_change_the_answer() {
    let server = TestServer::start(Scripted);
    let body = request_body("shop", serde_json::json!({"environment": "dev"}));
    let headers = prop::collection::vec(("x-[a-z0-9-]{1,15}", "[ -~]{0,40}"), 0..8);
    runner()
        .run(&headers, |headers| {
            let mut request = String::from_utf8(controller_request(Some(TOKEN), &body)).unwrap();
            let extra: String = headers
                .iter()
                .map(|(name, value)| format!("{name}: {}\r\n", value.trim()))
                .collect();
            request = request.replacen("\r\n", &format!("\r\n{extra}"), 1);
            let response = try_exchange(server.addr, request.as_bytes()).expect("an answer");
            prop_assert_eq!(response.status, 200);
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_failing_or_panicking_generator_is_never_a_2xx() {
    let server = TestServer::start(Scripted);
    let modes = prop_oneof![Just("fail"), Just("invalid"), Just("panic"), Just("ok")];
    runner()
        .run(&(modes, json()), |(mode, extra)| {
            let body = request_body("shop", serde_json::json!({mode: "down", "extra": extra}));
            let response = server.post(Some(TOKEN), &body);
            let expected = match mode {
                "fail" | "panic" => 500,
                "invalid" => 400,
                _ => 200,
            };
            prop_assert_eq!(response.status, expected);
            if expected != 200 {
                prop_assert!(is_json_error(&response.body));
            }
            Ok(())
        })
        .unwrap();
    let health = try_exchange(server.addr, b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n").unwrap();
    assert_eq!(health.status, 200, "still serving after the panics");
}
