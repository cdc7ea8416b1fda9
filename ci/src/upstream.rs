//! A fake of the JSON API the `http_client` example generator calls
//! (`GET /builds?branch=B`), on a loopback port, so that variant's built
//! plugin can be started and driven like any other.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::OnceLock;
use std::time::Duration;

/// The address of this process's fake builds API, started on first use.
pub fn builds_api() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut reader = BufReader::new(stream);
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let branch = line
                        .split_whitespace()
                        .nth(1)
                        .and_then(|target| target.split_once("branch="))
                        .map_or(String::new(), |(_, branch)| branch.to_owned());
                    // The rest of the head; the API needs nothing from it.
                    let mut header = String::new();
                    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                        header.clear();
                    }
                    let body = serde_json::json!({"builds": [
                        {"component": "front", "digest": format!("sha256:front-{branch}")},
                        {"component": "back", "digest": format!("sha256:back-{branch}")},
                    ]})
                    .to_string();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = reader.get_mut().write_all(reply.as_bytes());
                });
            }
        });
        addr
    })
}

/// The environment the `http_client` example's plugin needs.
pub fn http_client_env() -> Vec<(String, String)> {
    vec![("UPSTREAM_URL".into(), format!("http://{}", builds_api()))]
}
