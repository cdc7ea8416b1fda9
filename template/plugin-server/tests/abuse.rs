//! What one client can cost: bodies nobody reads, slow heads on any request
//! of a connection, floods of connections, `Expect: 100-continue` without
//! the token, and connections open when the server stops. Real sockets
//! against the real server, bounded in time and bytes.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::Scripted;
use plugin_server::testing::{
    GET_PARAMS, TOKEN, TestServer, connect, controller_request, read_response, request_body,
};
use serde_json::json;

/// More than any client should get to send once the answer is out.
const SENT_AT_MOST: usize = 16 * 1024 * 1024;

/// Streams a chunked body after `head` until the server stops taking it
/// (or 64 MiB, or 10 s); returns the answer's status and the bytes sent.
fn stream_chunked_body(addr: SocketAddr, head: &str) -> (u16, usize) {
    let mut stream = connect(addr);
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = [
            format!("{:x}\r\n", 64 * 1024).as_bytes(),
            &[b' '; 64 * 1024],
            b"\r\n",
        ]
        .concat();
        let (started, mut sent) = (Instant::now(), 0);
        while sent < 64 * 1024 * 1024 && started.elapsed() < Duration::from_secs(10) {
            if writer.write_all(&chunk).is_err() {
                return sent;
            }
            sent += chunk.len();
        }
        panic!("the server took {sent} bytes of a body it does not read and kept going");
    });
    let status = read_response(&mut stream).map_or(0, |response| response.status);
    let sent = sender.join().unwrap();
    (status, sent)
}

#[test]
fn an_unread_chunked_body_is_cut_off_after_the_answer() {
    let server = TestServer::start_with(Scripted, |config| config.max_body_bytes = 1024);
    let cases = [
        (format!("POST {GET_PARAMS} HTTP/1.1\r\nHost: p\r\n"), 403),
        (
            format!("POST {GET_PARAMS} HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer {TOKEN}\r\n"),
            413,
        ),
        ("POST /elsewhere HTTP/1.1\r\nHost: p\r\n".to_owned(), 404),
        ("PUT /healthz HTTP/1.1\r\nHost: p\r\n".to_owned(), 405),
    ];
    for (head, expected) in cases {
        let head = format!("{head}Transfer-Encoding: chunked\r\n\r\n");
        let (status, sent) = stream_chunked_body(server.addr, &head);
        assert_eq!(status, expected, "{head:?}");
        assert!(sent < SENT_AT_MOST, "{head:?}: {sent} bytes taken");
    }
    assert_eq!(
        server
            .post(Some(TOKEN), &request_body("shop", json!({})))
            .status,
        200
    );
}

#[test]
fn a_small_unread_body_still_gets_its_answer() {
    let server = scripted_with_short_timeouts();
    let mut stream = connect(server.addr);
    stream
        .write_all(
            format!(
                "POST {GET_PARAMS} HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n\
                 5\r\nhello\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let response = read_response(&mut stream).unwrap();
    assert_eq!(response.status, 403);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(response.message().contains("Bearer"));
}

fn scripted_with_short_timeouts() -> TestServer {
    TestServer::start_with(Scripted, |config| {
        config.header_timeout = Duration::from_millis(1000);
        config.body_timeout = Duration::from_millis(500);
    })
}

/// Writes `bytes` one at a time, 50 ms apart, until the server closes the
/// connection; returns how long that took (at most `limit`).
fn trickle(stream: &mut TcpStream, bytes: &[u8], limit: Duration) -> Duration {
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let started = Instant::now();
    for byte in bytes.iter().cycle() {
        if started.elapsed() > limit || stream.write_all(&[*byte]).is_err() {
            break;
        }
        let mut buffer = [0; 1024];
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Ok(_) | Err(_) => break,
        }
    }
    started.elapsed()
}

#[test]
fn slow_heads_are_cut_off_on_every_request_of_a_connection() {
    let server = scripted_with_short_timeouts();
    let mut stream = connect(server.addr);
    for _ in 0..2 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut stream).unwrap().status, 200);
    }
    // The third request's head never ends: the keep-alive timeout (120 s)
    // does not apply, the 1 s header timeout does.
    let took = trickle(
        &mut stream,
        b"POST /api/v1/getparams.execute HTTP/1.1\r\nX-Slow: aaaaaaaa",
        Duration::from_secs(20),
    );
    assert!(
        took > Duration::from_millis(900) && took < Duration::from_secs(4),
        "closed after {took:?}"
    );
}

/// A request the generator takes `ms` to answer, under way on return.
fn slow_request(server: &TestServer, ms: u64) -> TcpStream {
    let mut stream = connect(server.addr);
    let body = request_body("shop", json!({"sleep_ms": ms}));
    stream
        .write_all(&controller_request(Some(TOKEN), &body))
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    stream
}

#[test]
fn a_full_server_sheds_idle_connections_for_new_ones() {
    let server = TestServer::start_with(Scripted, |config| config.max_connections = 8);
    // A request in progress is never shed.
    let mut serving = slow_request(&server, 1500);
    // Idle connections and half-sent heads, far more than the cap.
    let flood: Vec<TcpStream> = (0..64)
        .map(|i| {
            let mut stream = connect(server.addr);
            if i % 2 == 0 {
                stream.write_all(b"POST /api/v1/getp").unwrap();
            }
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));

    let started = Instant::now();
    let response = server.post(Some(TOKEN), &request_body("shop", json!({})));
    assert_eq!(response.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    let open = flood.into_iter().filter(still_open).count();
    assert!(open <= 8, "{open} of 64 flooding connections still open");
    assert_eq!(read_response(&mut serving).unwrap().status, 200);
}

/// Argo CD's kept-alive connection, which has served requests, survives a
/// flood of connections that never send a request at the cap: strangers
/// cannot push it out (Go does not retry a POST that fails on a reused
/// connection).
#[test]
fn a_kept_alive_connection_outlives_a_flood_of_strangers() {
    let server = TestServer::start_with(Scripted, |config| config.max_connections = 4);
    let body = request_body("shop", json!({}));
    let mut argocd = connect(server.addr);
    for _ in 0..2 {
        argocd
            .write_all(&controller_request(Some(TOKEN), &body))
            .unwrap();
        assert_eq!(read_response(&mut argocd).unwrap().status, 200);
    }
    let flood: Vec<TcpStream> = (0..64).map(|_| connect(server.addr)).collect();
    std::thread::sleep(Duration::from_millis(200));
    argocd
        .write_all(&controller_request(Some(TOKEN), &body))
        .unwrap();
    assert_eq!(read_response(&mut argocd).unwrap().status, 200);
    let open = flood.iter().filter(|stream| still_open(stream)).count();
    assert!(
        open <= 3,
        "{open} of 64 strangers still open beside Argo CD's"
    );
}

/// Whether the server has neither closed nor answered `stream`.
fn still_open(stream: &TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buffer = [0; 64];
    matches!(
        (&*stream).read(&mut buffer),
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
    )
}

/// Sends a head with `Expect: 100-continue` and returns the first line the
/// server answers with.
fn expect_continue(stream: &mut TcpStream, token: Option<&str>, body: &str) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "POST {GET_PARAMS} HTTP/1.1\r\nHost: p\r\n{auth}Expect: 100-continue\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut line = Vec::new();
    let mut byte = [0];
    while !line.ends_with(b"\r\n") && stream.read(&mut byte).unwrap() == 1 {
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).trim_end().to_owned()
}

#[test]
fn continue_is_sent_only_for_the_right_token() {
    let server = TestServer::start(Scripted);
    let body = request_body("shop", json!({}));
    for token in [None, Some("wrong")] {
        let mut stream = connect(server.addr);
        assert_eq!(
            expect_continue(&mut stream, token, &body),
            "HTTP/1.1 403 Forbidden"
        );
    }
    let mut stream = connect(server.addr);
    assert_eq!(
        expect_continue(&mut stream, Some(TOKEN), &body),
        "HTTP/1.1 100 Continue"
    );
    // The blank line after `100 Continue`, then the real answer.
    let mut blank = [0; 2];
    stream.read_exact(&mut blank).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    assert_eq!(read_response(&mut stream).unwrap().status, 200);
}

#[test]
fn stopping_finishes_requests_in_flight_and_closes_idle_connections() {
    let server = TestServer::start(Scripted);
    let mut idle = connect(server.addr);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut idle).unwrap().status, 200);
    let mut serving = slow_request(&server, 500);

    let started = Instant::now();
    server.stop_gracefully();
    let response = read_response(&mut serving).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.header("connection"), Some("close"));
    idle.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    match idle.read(&mut [0; 16]) {
        Ok(0) => {}
        Err(error) if error.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("the idle connection is still open: {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}
