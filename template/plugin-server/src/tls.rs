//! HTTPS on the plugin's port (the `tls` feature): rustls with TLS 1.2 and
//! 1.3 and HTTP/1.1 only, serving the certificate and key of two PEM files.
//! Like the token, the files are re-read: a certificate cert-manager renews
//! in the mounted Secret is served to new handshakes within seconds; an
//! unusable pair is refused, naming the file, at start and on every re-read
//! (the previous pair then stays).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::net::{SocketAddr, TcpStream};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::pki_types::{ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, ServerConfig, SignatureScheme,
    StreamOwned,
};

use crate::config::TlsFiles;

/// Why a certificate and key cannot be served.
#[derive(Debug)]
pub enum TlsError {
    Unreadable { path: PathBuf, error: io::Error },
    NoCertificate { path: PathBuf },
    BadCertificate { path: PathBuf, problem: String },
    NoKey { path: PathBuf, problem: String },
    BadKey { path: PathBuf, problem: String },
    KeyMismatch { cert: PathBuf, key: PathBuf },
    Expired { path: PathBuf, not_after: String },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable { path, error } => write!(
                f,
                "cannot read {}: {error}. Mount the plugin's TLS Secret there or point \
                 PLUGIN_TLS_CERT_FILE and PLUGIN_TLS_KEY_FILE at PEM files",
                path.display()
            ),
            Self::NoCertificate { path } => write!(
                f,
                "the certificate file {} holds no PEM CERTIFICATE block",
                path.display()
            ),
            Self::BadCertificate { path, problem } => write!(
                f,
                "the certificate file {} is unusable: {problem}",
                path.display()
            ),
            Self::NoKey { path, problem } => write!(
                f,
                "the key file {} holds no PEM private key ({problem})",
                path.display()
            ),
            Self::BadKey { path, problem } => {
                write!(f, "the key file {} is unusable: {problem}", path.display())
            }
            Self::KeyMismatch { cert, key } => write!(
                f,
                "the key in {} does not match the certificate in {}",
                key.display(),
                cert.display()
            ),
            Self::Expired { path, not_after } => write!(
                f,
                "the certificate in {} expired on {not_after}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for TlsError {}

/// How the re-reads went, and the served certificate's end, for the metrics.
#[derive(Debug, Default)]
pub struct TlsStats {
    pub reloads_succeeded: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// The served certificate's notAfter, in seconds since the Unix epoch.
    pub not_after: AtomicU64,
    /// Connections whose handshake failed (a client that does not trust the
    /// certificate, plain HTTP on the HTTPS port, a slow or broken client).
    pub handshakes_failed: AtomicU64,
}

/// A certificate and key that belong together, and the files they came from.
struct Loaded {
    key: Arc<CertifiedKey>,
    not_after: u64,
    files: (Vec<u8>, Vec<u8>),
}

/// The pair being served; implements rustls' certificate choice.
pub struct Certificates {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Loaded>,
    stats: TlsStats,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        Some(Arc::clone(&current.key))
    }
}

/// What a re-read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Rotated,
}

impl Certificates {
    /// Reads and checks the pair; refuses what clients could not use.
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        // Nothing is served yet, so the files always give a pair.
        let loaded = load(files, &provider, None)?.ok_or_else(|| TlsError::NoCertificate {
            path: files.cert.clone(),
        })?;
        let stats = TlsStats::default();
        stats.not_after.store(loaded.not_after, Ordering::Relaxed);
        Ok(Self {
            files: files.clone(),
            provider,
            current: RwLock::new(loaded),
            stats,
        })
    }

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub fn stats(&self) -> &TlsStats {
        &self.stats
    }

    /// Re-reads the files; on error the previous pair stays in force.
    pub fn reload(&self) -> Result<Reload, TlsError> {
        let served = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .files
            .clone();
        let outcome = match load(&self.files, &self.provider, Some(&served)) {
            Ok(None) => Ok(Reload::Unchanged),
            Ok(Some(loaded)) => {
                self.stats
                    .not_after
                    .store(loaded.not_after, Ordering::Relaxed);
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = loaded;
                Ok(Reload::Rotated)
            }
            Err(error) => Err(error),
        };
        let counter = match outcome {
            Ok(_) => &self.stats.reloads_succeeded,
            Err(_) => &self.stats.reloads_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        outcome
    }

    /// Re-reads the files every `interval` on a background thread, which
    /// ends once the certificates are dropped.
    pub fn watch(self: &Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("tls-reload".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(interval);
                    let Some(certificates) = weak.upgrade() else {
                        return;
                    };
                    match certificates.reload() {
                        Ok(Reload::Rotated) => log::info!(
                            "certificate rotated: re-read {}",
                            certificates.files.cert.display()
                        ),
                        Ok(Reload::Unchanged) => {}
                        Err(error) => log::error!("{error}; keeping the previous certificate"),
                    }
                }
            })
            .expect("spawning the certificate reload thread")
    }

    /// rustls' settings for the plugin's port: TLS 1.3 and 1.2, no client
    /// certificate (Argo CD cannot send one), HTTP/1.1 (Go's client would
    /// otherwise ask for HTTP/2, which the plugin does not serve), no
    /// session resumption.
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let resolver: Arc<dyn ResolvesServerCert> = Arc::clone(self) as _;
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("aws-lc-rs supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Go's client keeps no sessions unless told to, and Argo CD does not:
        // no tickets to send, no session cache to hold.
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Arc::new(config)
    }
}

/// A TLS client to `addr` over `stream` that trusts exactly the
/// certificate in `files.cert` (for `healthcheck`, which runs beside the
/// plugin and reads the same file): no CA, no name check.
pub fn pinned_client(
    files: &TlsFiles,
    addr: SocketAddr,
    stream: TcpStream,
) -> Result<StreamOwned<ClientConnection, TcpStream>, String> {
    let cert_pem = read_file(&files.cert).map_err(|error| error.to_string())?;
    let pinned = CertificateDer::pem_slice_iter(&cert_pem)
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| TlsError::NoCertificate {
            path: files.cert.clone(),
        })
        .map_err(|error| error.to_string())?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(Pinned {
        certificate: pinned,
        provider: Arc::clone(&provider),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let connection = ClientConnection::new(Arc::new(config), ServerName::from(addr.ip()))
        .map_err(|error| error.to_string())?;
    Ok(StreamOwned::new(connection, stream))
}

/// Trusts one certificate, byte for byte; checks the handshake's signatures.
#[derive(Debug)]
struct Pinned {
    certificate: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.certificate.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the plugin serves another certificate than its certificate file holds".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Unreadable {
        path: path.to_owned(),
        error,
    })
}

fn read_files(files: &TlsFiles) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    Ok((read_file(&files.cert)?, read_file(&files.key)?))
}

/// Reads and checks the pair of `files`; `None` when they still hold the
/// `served` one.
fn load(
    files: &TlsFiles,
    provider: &CryptoProvider,
    served: Option<&(Vec<u8>, Vec<u8>)>,
) -> Result<Option<Loaded>, TlsError> {
    let read = || {
        let pair = read_files(files)?;
        if served == Some(&pair) {
            return Ok(None);
        }
        parse(files, pair, provider, now_unix()).map(Some)
    };
    // Kubernetes swaps a Secret volume's files at once, but the two reads
    // can fall on either side of a swap: a mismatch is read once more.
    match read() {
        Err(TlsError::KeyMismatch { .. }) => read(),
        other => other,
    }
}

fn parse(
    files: &TlsFiles,
    (cert_pem, key_pem): (Vec<u8>, Vec<u8>),
    provider: &CryptoProvider,
    now: u64,
) -> Result<Loaded, TlsError> {
    let bad_cert = |problem: String| TlsError::BadCertificate {
        path: files.cert.clone(),
        problem,
    };
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| bad_cert(pem_problem(error)))?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    };
    let validity = validity(leaf).map_err(|problem| bad_cert(format!("not X.509: {problem}")))?;
    if validity.not_after < now {
        return Err(TlsError::Expired {
            path: files.cert.clone(),
            not_after: validity.shown,
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| TlsError::NoKey {
        path: files.key.clone(),
        problem: pem_problem(error),
    })?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| TlsError::BadKey {
            path: files.key.clone(),
            problem: error.to_string(),
        })?;
    let key = CertifiedKey::new(chain, signing);
    match key.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::KeyMismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
            });
        }
        Err(error) => return Err(bad_cert(error.to_string())),
    }
    Ok(Loaded {
        key: Arc::new(key),
        not_after: validity.not_after,
        files: (cert_pem, key_pem),
    })
}

fn pem_problem(error: pem::Error) -> String {
    match error {
        pem::Error::NoItemsFound => "no PEM block of that kind".into(),
        other => format!("{other:?}"),
    }
}

/// When a certificate stops being valid.
#[derive(Debug, PartialEq, Eq)]
pub struct Validity {
    /// notAfter, in seconds since the Unix epoch.
    pub not_after: u64,
    /// notAfter as `YYYY-MM-DD HH:MM:SS UTC`.
    pub shown: String,
}

/// The notAfter of a DER certificate: Certificate ::= SEQUENCE { tbs
/// SEQUENCE { [0] version OPTIONAL, serial, signature, issuer, validity
/// SEQUENCE { notBefore, notAfter }, ... }, ... }.
pub fn validity(der: &[u8]) -> Result<Validity, &'static str> {
    let (certificate, _) = element(der, 0x30)?;
    let (tbs, _) = element(certificate, 0x30)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = element(rest, 0xa0)?.1;
    }
    for tag in [0x02, 0x30, 0x30] {
        rest = element(rest, tag)?.1;
    }
    let (validity, _) = element(rest, 0x30)?;
    let (_, after_before) = any_time(validity)?;
    let (not_after, _) = any_time(after_before)?;
    Ok(not_after)
}

/// One DER element of `tag`: its content and what follows it.
fn element(der: &[u8], tag: u8) -> Result<(&[u8], &[u8]), &'static str> {
    let (&found, rest) = der.split_first().ok_or("truncated")?;
    if found != tag {
        return Err("unexpected element");
    }
    let (&first, rest) = rest.split_first().ok_or("truncated")?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err("bad length");
        }
        let (bytes, rest) = rest.split_at(count);
        let length = bytes
            .iter()
            .fold(0usize, |length, &byte| (length << 8) | usize::from(byte));
        (length, rest)
    };
    if rest.len() < length {
        return Err("truncated");
    }
    Ok(rest.split_at(length))
}

/// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
fn any_time(der: &[u8]) -> Result<(Validity, &[u8]), &'static str> {
    let (text, rest, year_digits) = match der.first() {
        Some(0x17) => element(der, 0x17).map(|(text, rest)| (text, rest, 2))?,
        Some(0x18) => element(der, 0x18).map(|(text, rest)| (text, rest, 4))?,
        _ => return Err("no time"),
    };
    if text.len() != year_digits + 11
        || text.last() != Some(&b'Z')
        || !text[..text.len() - 1].iter().all(u8::is_ascii_digit)
    {
        return Err("bad time");
    }
    let number = |from: usize, len: usize| {
        text[from..from + len]
            .iter()
            .fold(0u64, |n, digit| n * 10 + u64::from(digit - b'0'))
    };
    let mut year = number(0, year_digits);
    if year_digits == 2 {
        // RFC 5280: 50 to 99 are 19xx.
        year += if year < 50 { 2000 } else { 1900 };
    }
    let at = year_digits;
    let (month, day) = (number(at, 2), number(at + 2, 2));
    let (hour, minute, second) = (number(at + 4, 2), number(at + 6, 2), number(at + 8, 2));
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return Err("bad time");
    }
    let days = days_since_epoch(year, month, day).ok_or("a time before 1970")?;
    Ok((
        Validity {
            not_after: days * 86_400 + hour * 3600 + minute * 60 + second.min(60),
            shown: format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC"),
        },
        rest,
    ))
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
fn days_since_epoch(year: u64, month: u64, day: u64) -> Option<u64> {
    // Years start in March, so that the leap day is the last of a year.
    let (year, month) = if month <= 2 {
        (year.checked_sub(1)?, month + 9)
    } else {
        (year, month - 3)
    };
    let (era, of_era) = (year / 400, year % 400);
    let day_of_year = (153 * month + 2) / 5 + day - 1;
    let day_of_era = of_era * 365 + of_era / 4 - of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use rcgen::{CertificateParams, KeyPair, date_time_ymd};

    /// A self-signed certificate for 127.0.0.1 valid until `year`, and its key.
    fn pair(year: i32) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.not_after = date_time_ymd(year, 6, 30);
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    fn files(dir: &TempDir, (cert, key): &(String, String)) -> TlsFiles {
        TlsFiles {
            cert: dir.file("tls.crt", cert),
            key: dir.file("tls.key", key),
        }
    }

    fn refusal(files: &TlsFiles) -> String {
        Certificates::load(files).unwrap_err().to_string()
    }

    #[test]
    fn a_pair_is_served_until_its_not_after() {
        let dir = TempDir::new();
        let certificates = Certificates::load(&files(&dir, &pair(2090))).unwrap();
        // `date -ud 2090-06-30 +%s`
        let expiry = certificates.stats().not_after.load(Ordering::Relaxed);
        assert_eq!(expiry, 3_802_464_000);
    }

    /// Each unusable pair is refused with the file and the problem.
    #[test]
    fn an_unusable_pair_is_refused_naming_the_file() {
        let dir = TempDir::new();
        let good = pair(2090);
        let mut broken = files(&dir, &good);
        broken.cert = dir.path().join("missing.crt");
        let message = refusal(&broken);
        assert!(
            message.contains("cannot read") && message.contains("missing.crt"),
            "{message}"
        );

        let swapped = files(&dir, &(good.1.clone(), good.0.clone()));
        let message = refusal(&swapped);
        assert!(
            message.contains("tls.crt holds no PEM CERTIFICATE"),
            "{message}"
        );

        let other = pair(2090);
        let message = refusal(&files(&dir, &(good.0.clone(), other.1.clone())));
        assert!(
            message.contains("the key in") && message.contains("does not match the certificate"),
            "{message}"
        );

        let message = refusal(&files(&dir, &(good.0.clone(), good.0.clone())));
        assert!(
            message.contains("tls.key holds no PEM private key"),
            "{message}"
        );

        let message = refusal(&files(&dir, &pair(2020)));
        assert!(
            message.contains("expired on 2020-06-30 00:00:00 UTC"),
            "{message}"
        );

        let cut = good.0.replace("\n-----END", "AAAA\n-----END");
        let message = refusal(&files(&dir, &(cut, good.1.clone())));
        assert!(message.contains("tls.crt is unusable"), "{message}");
    }

    /// A re-read serves a new pair, and keeps the served one when the new
    /// is unusable, counting both.
    #[test]
    fn a_reload_rotates_or_keeps_the_served_pair() {
        let dir = TempDir::new();
        let first = pair(2090);
        let files = files(&dir, &first);
        let certificates = Certificates::load(&files).unwrap();
        assert_eq!(certificates.reload().unwrap(), Reload::Unchanged);
        let second = pair(2091);
        std::fs::write(&files.cert, &second.0).unwrap();
        assert!(
            certificates.reload().is_err(),
            "a certificate without its key"
        );
        let stats = certificates.stats();
        assert_eq!(stats.not_after.load(Ordering::Relaxed), 3_802_464_000);
        std::fs::write(&files.key, &second.1).unwrap();
        assert_eq!(certificates.reload().unwrap(), Reload::Rotated);
        assert_eq!(stats.not_after.load(Ordering::Relaxed), 3_834_000_000);
        assert_eq!(stats.reloads_succeeded.load(Ordering::Relaxed), 2);
        assert_eq!(stats.reloads_failed.load(Ordering::Relaxed), 1);
    }

    /// A DER certificate whose validity holds the given times (the parts
    /// `validity` skips are minimal).
    fn certificate(not_before: &[u8], not_after: &[u8], version: bool) -> Vec<u8> {
        let wrap = |tag: u8, content: &[u8]| {
            let mut out = vec![tag];
            if content.len() < 0x80 {
                out.push(content.len() as u8);
            } else {
                out.extend([0x82, (content.len() >> 8) as u8, content.len() as u8]);
            }
            out.extend(content);
            out
        };
        let mut tbs = Vec::new();
        if version {
            tbs.extend(wrap(0xa0, &wrap(0x02, &[2])));
        }
        tbs.extend(wrap(0x02, &[1; 20]));
        tbs.extend(wrap(0x30, &[]));
        tbs.extend(wrap(0x30, &[0; 200]));
        tbs.extend(wrap(0x30, &[not_before, not_after].concat()));
        wrap(0x30, &wrap(0x30, &tbs))
    }

    #[test]
    fn reads_not_after_in_both_time_forms() {
        let utc = |text: &str| [&[0x17, text.len() as u8][..], text.as_bytes()].concat();
        let general = |text: &str| [&[0x18, text.len() as u8][..], text.as_bytes()].concat();
        let der = certificate(&utc("240101000000Z"), &utc("270307120001Z"), true);
        let validity = validity(&der).unwrap();
        assert_eq!(validity.shown, "2027-03-07 12:00:01 UTC");
        // `date -ud 2027-03-07T12:00:01 +%s`
        assert_eq!(validity.not_after, 1_804_420_801);
        let der = certificate(&utc("240101000000Z"), &general("20500229235959Z"), false);
        // 2050 is no leap year, but DER does not check the calendar: the day after.
        assert_eq!(validity_of(&der), 2_529_791_999);
        let der = certificate(&utc("490101000000Z"), &utc("991231235959Z"), true);
        assert_eq!(validity_of(&der), 946_684_799);
    }

    fn validity_of(der: &[u8]) -> u64 {
        validity(der).unwrap().not_after
    }

    #[test]
    fn refuses_what_is_no_certificate() {
        for der in [
            &b""[..],
            b"\x30",
            b"\x30\x05\x30\x03",
            b"\x30\x84\xff\xff\xff\xff",
            b"-----BEGIN",
        ] {
            assert!(validity(der).is_err(), "{der:?}");
        }
        let utc = |text: &str| [&[0x17, text.len() as u8][..], text.as_bytes()].concat();
        for bad in [
            "241301000000Z",
            "2401010000Z",
            "24010100000aZ",
            "240101000000+",
        ] {
            let der = certificate(&utc("240101000000Z"), &utc(bad), true);
            assert!(validity(&der).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_since_epoch_matches_the_calendar() {
        assert_eq!(days_since_epoch(1970, 1, 1), Some(0));
        assert_eq!(days_since_epoch(2000, 3, 1), Some(11_017));
        assert_eq!(days_since_epoch(2024, 2, 29), Some(19_782));
        assert_eq!(days_since_epoch(1969, 12, 31), None);
    }
}
