//! HTTPS to a project rendered with `tls`: a CA of the run's own and
//! certificates for 127.0.0.1 it issues (as cert-manager issues the
//! Service's), and a client that trusts that CA alone, as Argo CD's
//! controller does with the `argocd-trust` component.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A byte stream to a plugin: plain TCP, or TLS over it.
pub trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// The run's CA, its PEM in `ca.crt`.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    pub dir: PathBuf,
}

/// A certificate and key in PEM files.
#[derive(Debug, Clone)]
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// The run's CA (made once), in `<run dir>/tls`.
    pub fn get() -> &'static Self {
        static CA: OnceLock<TestCa> = OnceLock::new();
        CA.get_or_init(|| {
            let dir = crate::run_dir().join("tls");
            std::fs::create_dir_all(&dir).expect("a folder for the test CA");
            let key = KeyPair::generate().expect("a CA key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            // Names of their own: OpenSSL (curl) takes a certificate whose
            // subject is its issuer's for a self-signed one.
            params
                .distinguished_name
                .push(DnType::CommonName, "template-ci test CA");
            let pem = params.self_signed(&key).expect("the CA").pem();
            std::fs::write(dir.join("ca.crt"), &pem).expect("writing ca.crt");
            Self {
                issuer: Issuer::new(params, key),
                pem,
                dir,
            }
        })
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// A new certificate for 127.0.0.1 and `localhost`, written to
    /// `<name>.crt` and `<name>.key` in `dir`.
    pub fn issue(&self, dir: &Path, name: &str) -> Result<Pair, String> {
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .map_err(|e| e.to_string())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| e.to_string())?;
        fs_err::create_dir_all(dir).map_err(|e| e.to_string())?;
        let pair = Pair {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
        };
        fs_err::write(&pair.cert, cert.pem()).map_err(|e| e.to_string())?;
        fs_err::write(&pair.key, key.serialize_pem()).map_err(|e| e.to_string())?;
        Ok(pair)
    }

    /// A client that trusts this CA alone, offering h2 and HTTP/1.1 as Go's
    /// transport does, never resuming a session (Go's does not either).
    pub fn client(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.pem.as_bytes()).flatten() {
            roots.add(cert).expect("the test CA");
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.resumption = rustls::client::Resumption::disabled();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// Connects to `addr`, over TLS when `tls` is given (handshake done), with
/// reads and writes bounded by `timeout`.
pub fn connect(
    addr: SocketAddr,
    tls: Option<&Arc<ClientConfig>>,
    timeout: Duration,
) -> Result<Box<dyn Stream>, String> {
    let tcp = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(timeout))
        .and_then(|()| tcp.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    Ok(match tls {
        Some(config) => Box::new(handshake(tcp, addr, config)?),
        None => Box::new(tcp),
    })
}

fn handshake(
    tcp: TcpStream,
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
) -> Result<StreamOwned<ClientConnection, TcpStream>, String> {
    let connection = ClientConnection::new(Arc::clone(config), ServerName::from(addr.ip()))
        .map_err(|e| e.to_string())?;
    let mut stream = StreamOwned::new(connection, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
    }
    Ok(stream)
}

/// The first certificate `addr` serves to a new handshake, in DER.
pub fn served_certificate(addr: SocketAddr, config: &Arc<ClientConfig>) -> Result<Vec<u8>, String> {
    let tcp = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let stream = handshake(tcp, addr, config)?;
    stream
        .conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|cert| cert.to_vec())
        .ok_or_else(|| format!("{addr} served no certificate"))
}

/// The DER of the first certificate of a PEM file.
pub fn certificate_der(file: &Path) -> Result<Vec<u8>, String> {
    let pem = fs_err::read(file).map_err(|e| e.to_string())?;
    CertificateDer::pem_slice_iter(&pem)
        .next()
        .and_then(Result::ok)
        .map(|cert| cert.to_vec())
        .ok_or_else(|| format!("{}: no certificate", file.display()))
}
