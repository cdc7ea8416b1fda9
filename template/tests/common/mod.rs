//! Test support: a real server on a loopback port and a raw HTTP/1.1 client
//! that sends exactly the bytes we choose.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use plugin::auth::TokenStore;
use plugin::config::Config;
use plugin::plugin::Generator;
use plugin::server;
use serde_json::Value;

pub const TOKEN: &str = "test-token-0123456789";
pub const GET_PARAMS: &str = "/api/v1/getparams.execute";

/// A fresh, empty folder under the system's temp dir.
pub fn temp_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "plugin-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a temp dir");
    dir
}

/// The plugin's server, running on its own thread on `127.0.0.1:<free port>`.
pub struct TestServer {
    pub addr: SocketAddr,
    pub token_file: PathBuf,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start<G: Generator>(generator: G) -> Self {
        Self::start_with(generator, |_| {})
    }

    pub fn start_with<G: Generator>(generator: G, adjust: impl FnOnce(&mut Config)) -> Self {
        let token_file = temp_dir().join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        let mut config = Config {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token_file: token_file.clone(),
            workers: Some(1),
            token_reload_interval: Duration::from_millis(100),
            ..Config::default()
        };
        adjust(&mut config);
        let tokens = Arc::new(TokenStore::load(&config.token_file).unwrap());
        tokens.watch(config.token_reload_interval);
        let listener = TcpListener::bind(config.listen_addr).unwrap();
        let addr = listener.local_addr().unwrap();

        let (sender, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = server::build(listener, config, tokens, Arc::new(generator)).unwrap();
                sender.send(server.handle()).unwrap();
                server.await.unwrap();
            })
        });
        let handle = receiver.recv().expect("server started");
        Self {
            addr,
            token_file,
            handle,
            thread: Some(thread),
        }
    }

    pub fn send(&self, request: &[u8]) -> Response {
        exchange(self.addr, request)
    }

    /// Posts `body` the way the ApplicationSet controller does.
    pub fn post(&self, token: Option<&str>, body: &str) -> Response {
        self.send(&controller_request(token, body))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // `stop` sends its command at once; the future only waits for the result.
        drop(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The request of Argo CD's Go client: its headers, and the body with the
/// trailing newline of Go's `json.Encoder`.
pub fn controller_request(token: Option<&str>, body: &str) -> Vec<u8> {
    let body = format!("{body}\n");
    let mut request = format!(
        "POST {GET_PARAMS} HTTP/1.1\r\nHost: plugin\r\nUser-Agent: argocd-applicationset\r\n\
         Content-Length: {}\r\nContent-Type: application/json\r\nAccept-Encoding: gzip\r\n",
        body.len()
    );
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    request.into_bytes()
}

pub fn request_body(application_set: &str, parameters: Value) -> String {
    serde_json::json!({
        "applicationSetName": application_set,
        "input": {"parameters": parameters},
    })
    .to_string()
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "body is not JSON ({error}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The text Argo CD shows the operator for an error reply.
    pub fn message(&self) -> String {
        assert_eq!(self.header("content-type"), Some("application/json"));
        let body = self.json();
        let object = body.as_object().expect("error body is an object");
        assert_eq!(object.len(), 1, "error body has only `message`: {body}");
        object["message"]
            .as_str()
            .expect("message is a string")
            .to_owned()
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connecting to the plugin");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// Sends one request on a new connection and reads one response.
pub fn exchange(addr: SocketAddr, request: &[u8]) -> Response {
    try_exchange(addr, request).expect("exchanging a request with the plugin")
}

pub fn try_exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(request)?;
    read_response(&mut stream)
}

/// Reads one response: the head, then `Content-Length` bytes of body.
pub fn read_response(stream: &mut TcpStream) -> std::io::Result<Response> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, value)| {
            value.parse().expect("a numeric Content-Length")
        });
    let mut body = vec![0; length];
    stream.read_exact(&mut body)?;
    Ok(Response {
        status,
        headers,
        body,
    })
}
