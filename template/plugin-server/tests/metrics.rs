//! `GET /metrics` over real HTTP (with the `metrics` feature).
#![cfg(feature = "metrics")]

mod common;

use std::io::{Read, Write};

use common::Scripted;
use plugin_server::testing::{GET_PARAMS, TOKEN, TestServer, connect, exchange, request_body};
use serde_json::json;

/// The metrics page of `server`.
fn scrape(server: &TestServer) -> String {
    let metrics_addr = server.metrics_addr.expect("a metrics socket");
    let response = exchange(metrics_addr, b"GET /metrics HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(response.status, 200);
    String::from_utf8(response.body).unwrap()
}

/// A 403 answered to `Expect: 100-continue`, before the app sees the
/// request, is counted like any other 403.
#[test]
fn a_refused_expect_continue_is_counted() {
    let server = TestServer::start(Scripted);
    let mut stream = connect(server.addr);
    let head = format!(
        "POST {GET_PARAMS} HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer wrong\r\n\
         Expect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut status = [0u8; 12];
    stream.read_exact(&mut status).unwrap();
    assert_eq!(&status, b"HTTP/1.1 403");
    let text = scrape(&server);
    assert!(
        text.contains("plugin_requests_total{application_set=\"\",status=\"403\"} 1\n"),
        "{text}"
    );
}

#[test]
fn counts_requests_by_application_set_and_status() {
    let server = TestServer::start(Scripted);
    let body = request_body("shop", json!({"environment": "dev"}));
    assert_eq!(server.post(Some(TOKEN), &body).status, 200);
    assert_eq!(server.post(Some(TOKEN), &body).status, 200);
    assert_eq!(server.post(Some("wrong"), &body).status, 403);

    let metrics_addr = server.metrics_addr.expect("a metrics socket");
    let response = exchange(metrics_addr, b"GET /metrics HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(response.body).unwrap();
    assert!(
        text.contains("plugin_requests_total{application_set=\"shop\",status=\"200\"} 2\n"),
        "{text}"
    );
    // A request refused before its body was read has no ApplicationSet.
    assert!(
        text.contains("plugin_requests_total{application_set=\"\",status=\"403\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("plugin_request_duration_seconds_count{status=\"200\"} 2\n"));
    assert!(
        !text.contains("/metrics") && !text.contains("healthz"),
        "only getparams is counted"
    );
}

#[test]
fn metrics_are_served_on_their_own_socket_only() {
    let server = TestServer::start(Scripted);
    let metrics_addr = server.metrics_addr.expect("a metrics socket");
    let on_plugin_socket = server.send(b"GET /metrics HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(on_plugin_socket.status, 404);
    for other in ["/healthz", "/api/v1/getparams.execute", "/"] {
        let request = format!("GET {other} HTTP/1.1\r\nHost: p\r\n\r\n");
        let response = exchange(metrics_addr, request.as_bytes());
        assert_eq!(response.status, 404, "{other} on the metrics socket");
    }
}
