//! Test support, for the template's tests and the generator's own: the real
//! server on a loopback port, a raw HTTP/1.1 client that sends exactly the
//! bytes it is given, and a way to call a generator directly.
//!
//! ```no_run
//! # use plugin_server::{Generator, GetParamsRequest, GeneratorError, ParameterMap};
//! # struct MyGenerator;
//! # impl Generator for MyGenerator {
//! #     async fn generate(&self, _: GetParamsRequest) -> Result<Vec<ParameterMap>, GeneratorError> { Ok(vec![]) }
//! # }
//! use plugin_server::testing::TestServer;
//!
//! let server = TestServer::start(MyGenerator);
//! let sets = server.get_params("shop", serde_json::json!({"key": "value"}));
//! ```

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use serde_json::Value;

use crate::auth::TokenStore;
use crate::config::Config;
/// The certificate and key files of a server serving HTTPS (the `tls` feature).
pub use crate::config::TlsFiles;
use crate::generator::{Generator, GeneratorError};
use crate::protocol::{GetParamsRequest, ParameterMap};
use crate::server::{self, Listeners};

/// The token a [`TestServer`] accepts.
pub const TOKEN: &str = "test-token-0123456789";
pub const GET_PARAMS: &str = "/api/v1/getparams.execute";

/// Runs a future to completion on the runtime the server uses.
pub fn block_on<F: Future>(future: F) -> F::Output {
    actix_web::rt::System::new().block_on(future)
}

/// A request as the controller sends it for `application_set` with these
/// `input.parameters` (a JSON object, or `null` for none).
///
/// # Panics
/// When `parameters` is neither an object nor `null`: a test's mistake.
pub fn request(application_set: &str, parameters: Value) -> GetParamsRequest {
    let parameters = match parameters {
        Value::Object(parameters) => parameters,
        Value::Null => ParameterMap::new(),
        other => panic!("input.parameters must be a JSON object, got {other}"),
    };
    GetParamsRequest::new(application_set, None, parameters)
}

/// Calls `generator` once, directly (no server, no deadline).
pub fn generate<G: Generator>(
    generator: &G,
    request: GetParamsRequest,
) -> Result<Vec<ParameterMap>, GeneratorError> {
    block_on(generator.generate(request))
}

/// A fresh, empty folder under the system's temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "plugin-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `content` to `name` in the folder and returns its path.
    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, content).expect("writing a test file");
        path
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The plugin's server, running on its own thread on `127.0.0.1:<free port>`
/// with the token [`TOKEN`]; stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    /// Where `GET /metrics` is served, with the `metrics` feature.
    pub metrics_addr: Option<SocketAddr>,
    pub token_file: PathBuf,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: TempDir,
}

impl TestServer {
    pub fn start<G: Generator>(generator: G) -> Self {
        Self::start_with(generator, |_| {})
    }

    /// Like [`TestServer::start`], with settings changed by `adjust`.
    pub fn start_with<G: Generator>(generator: G, adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = TempDir::new();
        let token_file = dir.file("token", &format!("{TOKEN}\n"));
        let mut config = Config {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token_file: token_file.clone(),
            workers: Some(1),
            token_reload_interval: Duration::from_millis(100),
            // Plain HTTP, whatever the build: a generator's tests are about
            // its answers (the template's own tests cover HTTPS).
            tls: None,
            ..Config::default()
        };
        adjust(&mut config);
        let tokens = Arc::new(TokenStore::load(&config.token_file).unwrap());
        tokens.watch(config.token_reload_interval);
        let listeners = Listeners::bind(&config).unwrap();
        #[cfg(feature = "tls")]
        if let Some(certificates) = &listeners.tls {
            certificates.watch(config.token_reload_interval);
        }
        let addr = listeners.plugin.local_addr().unwrap();
        let metrics_addr = listeners.metrics.as_ref().map(|l| l.local_addr().unwrap());

        let (sender, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = server::build(
                    listeners,
                    config,
                    tokens,
                    Arc::new(generator),
                    Arc::default(),
                    server::Reported {
                        version: "0.0.0-test",
                        cache: None,
                    },
                )
                .unwrap();
                sender.send(server.handle()).unwrap();
                server.await.unwrap();
            })
        });
        let handle = receiver.recv().expect("server started");
        Self {
            addr,
            metrics_addr,
            token_file,
            handle,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// One request as the controller makes it, with the right token: the
    /// parameter sets, or the status and message of the error reply.
    pub fn get_params(
        &self,
        application_set: &str,
        parameters: Value,
    ) -> Result<Vec<ParameterMap>, (u16, String)> {
        let response = self.post(Some(TOKEN), &request_body(application_set, parameters));
        if response.status == 200 {
            let body = response.json();
            serde_json::from_value(body["output"]["parameters"].clone())
                .map_err(|e| (200, format!("not a plugin reply ({e}): {body}")))
        } else {
            Err((response.status, response.message()))
        }
    }

    /// Sends raw bytes on a new connection and reads one response.
    pub fn send(&self, request: &[u8]) -> Response {
        exchange(self.addr, request)
    }

    /// Posts `body` the way the ApplicationSet controller does.
    pub fn post(&self, token: Option<&str>, body: &str) -> Response {
        self.send(&controller_request(token, body))
    }

    /// Starts the graceful stop SIGTERM starts, without waiting for it.
    pub fn stop_gracefully(&self) {
        drop(self.handle.stop(true));
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

/// A TLS 1.1 ClientHello (record and hello version 3.2, two CBC suites of
/// that version, no extensions), which a server speaking TLS 1.2 and 1.3
/// alone must refuse.
pub fn tls_1_1_client_hello() -> Vec<u8> {
    let mut hello = vec![0x03, 0x02];
    hello.extend([7u8; 32]); // random
    hello.push(0); // no session id
    hello.extend([0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]);
    hello.extend([0x01, 0x00]); // no compression
    let mut handshake = vec![0x01, 0x00, 0x00, hello.len() as u8];
    handshake.extend(&hello);
    let mut record = vec![0x16, 0x03, 0x02, 0x00, handshake.len() as u8];
    record.extend(&handshake);
    record
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

/// The controller's body for `application_set` with these `input.parameters`.
pub fn request_body(application_set: &str, parameters: Value) -> String {
    serde_json::to_string(&request(application_set, parameters)).expect("a request serializes")
}

/// A response as read off the wire.
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

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
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

/// A connection to `addr` with a 30 s read timeout.
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

/// Like [`exchange`], returning the error instead of panicking.
pub fn try_exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(request)?;
    read_response(&mut stream)
}

/// Reads one response (a `Content-Length` or chunked body) off a stream,
/// byte by byte in its head, so nothing of the next response is consumed.
pub fn read_response(stream: &mut impl Read) -> std::io::Result<Response> {
    fn line(stream: &mut impl Read) -> std::io::Result<String> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            if stream.read(&mut byte)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            line.push(byte[0]);
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let status_line = line(stream)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let mut response = Response {
        status,
        headers: Vec::new(),
        body: Vec::new(),
    };
    loop {
        let header = line(stream)?;
        if header.is_empty() {
            break;
        }
        if let Some((key, value)) = header.split_once(':') {
            response
                .headers
                .push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    if response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let size = line(stream)?;
            let size = usize::from_str_radix(size.split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad(format!("bad chunk size {size:?}")))?;
            let mut chunk = vec![0; size + 2];
            stream.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            response.body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = response.header("content-length") {
        let length = length
            .parse()
            .map_err(|_| bad(format!("bad Content-Length {length:?}")))?;
        response.body.resize(length, 0);
        stream.read_exact(&mut response.body)?;
    }
    Ok(response)
}
