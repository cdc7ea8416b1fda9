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

/// The process beside its requests: build, token reloads, connections,
/// requests in flight; every family with HELP and TYPE.
#[test]
fn reports_the_build_token_reloads_and_connections() {
    let server = TestServer::start(Scripted);
    let body = request_body("shop", json!({}));
    for _ in 0..3 {
        assert_eq!(server.post(Some(TOKEN), &body).status, 200);
    }
    let text = scrape(&server);
    for line in [
        "plugin_build_info{version=\"0.0.0-test\",features=\"metrics",
        "plugin_requests_in_flight 0\n",
        "plugin_token_reloads_total{result=\"failure\"} 0\n",
        "plugin_connections_closed_total{reason=\"cap\"} 0\n",
        "plugin_connections_closed_total{reason=\"deadline\"} 0\n",
        "plugin_connections_closed_total{reason=\"stopping\"} 0\n",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    // Three requests, each on a connection of its own.
    assert!(value("plugin_connections_accepted_total") >= 3.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let loaded = value("plugin_token_last_success_timestamp_seconds");
    assert!(now - loaded < 600.0 && loaded <= now, "{loaded}");
    for family in [
        "plugin_build_info",
        "plugin_requests_in_flight",
        "plugin_token_reloads_total",
        "plugin_token_last_success_timestamp_seconds",
        "plugin_connections_open",
        "plugin_connections_accepted_total",
        "plugin_connections_closed_total",
    ] {
        assert!(text.contains(&format!("# HELP {family} ")), "{family}");
        assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
    }
}

/// A request being served is in flight until its answer is written.
#[test]
fn counts_requests_in_flight() {
    let server = TestServer::start(Scripted);
    let slow = request_body("slow", json!({"sleep_ms": 1500}));
    let addr = server.addr;
    let waiting = std::thread::spawn(move || {
        exchange(
            addr,
            &plugin_server::testing::controller_request(Some(TOKEN), &slow),
        )
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !scrape(&server).contains("plugin_requests_in_flight 1\n") {
        assert!(std::time::Instant::now() < deadline, "{}", scrape(&server));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(waiting.join().unwrap().status, 200);
    assert!(scrape(&server).contains("plugin_requests_in_flight 0\n"));
}
