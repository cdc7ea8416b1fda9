//! HTTPS on the plugin's port (the `tls` feature), over real sockets: what
//! Argo CD's client gets, what plain HTTP and old TLS get, rotation as the
//! kubelet does it, and a slow handshake bounded like a slow head.
#![cfg(feature = "tls")]

#[path = "common/child.rs"]
mod child;
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Scripted;
use plugin_server::testing::{
    Response, TOKEN, TempDir, TestServer, TlsFiles, controller_request, read_response,
    request_body, tls_1_1_client_hello, try_exchange,
};
use rcgen::{CertificateParams, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::json;

/// A CA, as cert-manager's bootstrap makes one, issuing certificates for 127.0.0.1.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A certificate for 127.0.0.1 and its key, in PEM.
    fn issue(&self) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A client that trusts this CA alone, speaking `versions`.
    fn client(&self, versions: &[&'static rustls::SupportedProtocolVersion]) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        // As Go's transport: no resumption (which would hide a rotation:
        // a resumed session shows the certificate it began with), h2 offered.
        config.resumption = rustls::client::Resumption::disabled();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A Secret volume as the kubelet writes it: `tls.crt` and `tls.key` are
/// links through `..data`, which is swapped in one rename.
struct SecretVolume {
    dir: TempDir,
    version: usize,
}

impl SecretVolume {
    fn new((cert, key): &(String, String)) -> Self {
        let mut volume = Self {
            dir: TempDir::new(),
            version: 0,
        };
        volume.write(cert, key);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(
                Path::new("..data").join(name),
                volume.dir.path().join(name),
            )
            .unwrap();
        }
        volume
    }

    fn write(&mut self, cert: &str, key: &str) {
        self.version += 1;
        let version = format!("..2026_12_07_{}", self.version);
        let folder = self.dir.path().join(&version);
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("tls.crt"), cert).unwrap();
        std::fs::write(folder.join("tls.key"), key).unwrap();
        let link = self.dir.path().join("..data_tmp");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&version, &link).unwrap();
        std::fs::rename(&link, self.dir.path().join("..data")).unwrap();
    }

    fn files(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join("tls.crt"),
            self.dir.path().join("tls.key"),
        )
    }
}

fn https_server(volume: &SecretVolume, header_timeout: Duration) -> TestServer {
    let (cert, key) = volume.files();
    TestServer::start_with(Scripted, |config| {
        config.tls = Some(TlsFiles { cert, key });
        config.header_timeout = header_timeout;
    })
}

/// A TLS connection to the plugin, handshake done.
fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> StreamOwned<ClientConnection, TcpStream> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = ServerName::from(addr.ip());
    let mut stream = StreamOwned::new(ClientConnection::new(config, name).unwrap(), tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).unwrap();
    }
    stream
}

fn served_certificate(addr: SocketAddr, config: Arc<ClientConfig>) -> Vec<u8> {
    let stream = connect(addr, config);
    stream.conn.peer_certificates().unwrap()[0].to_vec()
}

fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

fn post(stream: &mut StreamOwned<ClientConnection, TcpStream>, token: Option<&str>) -> Response {
    let body = request_body("tls", json!({"sets": [{"over": "https"}]}));
    stream.write_all(&controller_request(token, &body)).unwrap();
    read_response(stream).unwrap()
}

/// Argo CD's request over TLS 1.3 and 1.2, on one kept-alive connection
/// each; HTTP/1.1 chosen although the client offers h2; the token still
/// checked.
#[test]
fn answers_argo_cds_request_over_tls_1_2_and_1_3() {
    let ca = TestCa::new();
    let volume = SecretVolume::new(&ca.issue());
    let server = https_server(&volume, Duration::from_secs(10));
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let mut stream = connect(server.addr, ca.client(&[version]));
        assert_eq!(stream.conn.protocol_version(), Some(version.version));
        assert_eq!(stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        for _ in 0..2 {
            let response = post(&mut stream, Some(TOKEN));
            assert_eq!(response.status, 200, "{response:?}");
            assert_eq!(response.json()["output"]["parameters"][0]["over"], "https");
        }
        assert_eq!(post(&mut stream, Some("wrong")).status, 403);
    }
}

/// Plain HTTP on the HTTPS port gets no HTTP answer at all, let alone
/// parameters.
#[test]
fn plain_http_on_the_port_gets_no_answer() {
    let ca = TestCa::new();
    let server = https_server(&SecretVolume::new(&ca.issue()), Duration::from_secs(10));
    let body = request_body("plain", json!({}));
    match try_exchange(server.addr, &controller_request(Some(TOKEN), &body)) {
        Ok(response) => panic!("plain HTTP was answered: {response:?}"),
        Err(error) => assert_ne!(error.kind(), ErrorKind::WouldBlock, "{error}"),
    }
}

/// A TLS 1.1 ClientHello (version 3.2, no supported_versions extension) is
/// refused with an alert or a close, never a ServerHello.
#[test]
fn tls_1_1_is_refused() {
    let ca = TestCa::new();
    let server = https_server(&SecretVolume::new(&ca.issue()), Duration::from_secs(10));
    let record = tls_1_1_client_hello();
    let mut tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(&record).unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "TLS 1.1 got {answer:02x?}"
    );
}

/// The kubelet swaps the Secret's files: new handshakes get the new
/// certificate within seconds, without a restart; a swap to a key that does
/// not match keeps the one served.
#[test]
fn serves_a_rotated_certificate_without_a_restart() {
    let ca = TestCa::new();
    let first = ca.issue();
    let mut volume = SecretVolume::new(&first);
    let server = https_server(&volume, Duration::from_secs(10));
    let client = ca.client(&[&rustls::version::TLS13]);
    let mut kept = connect(server.addr, Arc::clone(&client));
    assert_eq!(
        served_certificate(server.addr, Arc::clone(&client)),
        der_of(&first.0)
    );

    let second = ca.issue();
    volume.write(&second.0, &second.1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while served_certificate(server.addr, Arc::clone(&client)) != der_of(&second.0) {
        assert!(
            Instant::now() < deadline,
            "the rotated certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // A connection from before the rotation goes on.
    assert_eq!(post(&mut kept, Some(TOKEN)).status, 200);

    let third = ca.issue();
    volume.write(&third.0, &first.1);
    std::thread::sleep(Duration::from_secs(1)); // ten re-reads
    assert_eq!(served_certificate(server.addr, client), der_of(&second.0));
}

/// A client that stops in the middle of its handshake is closed when the
/// head deadline passes, as one that stops in the middle of a head.
#[test]
fn a_slow_handshake_is_closed_as_a_slow_head() {
    let ca = TestCa::new();
    let server = https_server(&SecretVolume::new(&ca.issue()), Duration::from_secs(1));
    let mut tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "closed after {waited:?}"
    );
}

/// Not a test: the plugin process the tests below start.
#[test]
#[ignore = "the plugin process the tests below start"]
fn child_process() {
    child::main();
}

/// The plugin process with the token and `volume`'s files.
fn plugin_process(args: &[&str], dir: &TempDir, files: &TlsFiles, addr: SocketAddr) -> Command {
    let token = dir.file("token", TOKEN);
    let mut command = child::plugin(args, &token, addr);
    command
        .env("PLUGIN_TLS", "on")
        .env("PLUGIN_TLS_CERT_FILE", &files.cert)
        .env("PLUGIN_TLS_KEY_FILE", &files.key);
    command
}

/// At start, a missing file, a file that is no certificate and a key of
/// another certificate each stop the plugin with the file named.
#[test]
fn the_plugin_refuses_to_start_on_an_unusable_certificate_naming_the_file() {
    let dir = TempDir::new();
    let ca = TestCa::new();
    let (cert, key) = ca.issue();
    let (_, other_key) = ca.issue();
    let cert = dir.file("tls.crt", &cert);
    let cases = [
        (
            dir.path().join("absent.crt"),
            dir.file("tls.key", &key),
            "cannot read",
        ),
        (
            dir.file("token.crt", TOKEN),
            dir.file("tls.key", &key),
            "holds no PEM CERTIFICATE",
        ),
        (
            cert.clone(),
            dir.file("other.key", &other_key),
            "does not match the certificate",
        ),
    ];
    for (cert, key, problem) in cases {
        let named = if problem.contains("match") {
            &key
        } else {
            &cert
        };
        let named = named.display().to_string();
        let files = TlsFiles { cert, key };
        let message = child::refused(&mut plugin_process(&[], &dir, &files, child::free_port()));
        assert!(
            message.contains(problem) && message.contains(&named),
            "{message}"
        );
    }
}

/// The image's health check speaks TLS to the plugin, trusting exactly the
/// certificate of its file; another certificate fails it.
#[test]
fn healthcheck_asks_the_plugin_over_tls() {
    let dir = TempDir::new();
    let ca = TestCa::new();
    let volume = SecretVolume::new(&ca.issue());
    let (cert, key) = volume.files();
    let files = TlsFiles { cert, key };
    let addr = child::free_port();
    let mut server = plugin_process(&[], &dir, &files, addr).spawn().unwrap();
    let client = ca.client(&[&rustls::version::TLS13]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the plugin never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stream = connect(addr, client);
    assert_eq!(post(&mut stream, Some(TOKEN)).status, 200);

    let healthy = child::run_to_exit(&mut plugin_process(&["healthcheck"], &dir, &files, addr));
    let other = TlsFiles {
        cert: dir.file("other.crt", &ca.issue().0),
        key: files.key.clone(),
    };
    let unhealthy = child::run_to_exit(&mut plugin_process(&["healthcheck"], &dir, &other, addr));
    server.kill().unwrap();
    let log = child::stderr(&server.wait_with_output().unwrap());
    assert!(healthy.status.success(), "{}", child::stderr(&healthy));
    assert!(!unhealthy.status.success());
    assert!(
        child::stderr(&unhealthy).contains("another certificate"),
        "{}",
        child::stderr(&unhealthy)
    );
    assert!(
        log.contains(&format!("listening on https://{addr}")),
        "{log}"
    );
}

/// After the handshake, a head that stalls is closed at the head deadline
/// (counted from the handshake's first byte), and a body that stalls gets
/// the JSON 408, as over plain HTTP.
#[test]
fn a_slow_head_or_body_over_tls_is_bounded() {
    let ca = TestCa::new();
    let volume = SecretVolume::new(&ca.issue());
    let (cert, key) = volume.files();
    let server = TestServer::start_with(Scripted, |config| {
        config.tls = Some(TlsFiles { cert, key });
        config.header_timeout = Duration::from_secs(1);
        config.body_timeout = Duration::from_secs(1);
    });
    let client = ca.client(&[&rustls::version::TLS13]);

    let mut stalled_head = connect(server.addr, Arc::clone(&client));
    let started = Instant::now();
    stalled_head
        .write_all(b"POST /api/v1/getparams.execute HTTP/1.1\r\nHost: p\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let _ = stalled_head.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(4),
        "a stalled head lived {waited:?}"
    );
    assert!(!rest.starts_with(b"HTTP/1.1 200"), "{rest:?}");

    let mut stalled_body = connect(server.addr, client);
    let head = format!(
        "POST /api/v1/getparams.execute HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    stalled_body.write_all(head.as_bytes()).unwrap();
    let response = read_response(&mut stalled_body).unwrap();
    assert_eq!(response.status, 408, "{response:?}");
    assert!(response.message().contains("body"), "{response:?}");
}
