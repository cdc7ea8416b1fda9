//! Conformance of a plugin rendered with `tls`, beyond the checks that run
//! over HTTPS like the rest: plain HTTP and TLS 1.1 on its port get
//! nothing, a renewed certificate is served without a restart, an unusable
//! one stops it at start naming the file, a stalled handshake is closed
//! like a slow head, and its metrics date the certificate.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::argocd::Controller;
use crate::project::{Project, Running};
use crate::tls::{Pair, TestCa, certificate_der, served_certificate};

/// The plugin's deadline for a request head (and so for a handshake).
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a client that sends the first bytes of a ClientHello and stops;
/// the plugin must close it after about [`HEAD_TIMEOUT`].
pub fn slow_handshake(addr: SocketAddr) -> JoinHandle<Result<(), String>> {
    std::thread::spawn(move || {
        let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(HEAD_TIMEOUT * 3))
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .map_err(|e| e.to_string())?;
        let _ = tcp.read_to_end(&mut Vec::new());
        let waited = started.elapsed();
        ensure!(
            waited >= HEAD_TIMEOUT - Duration::from_millis(500) && waited < HEAD_TIMEOUT * 2,
            "the plugin closed it after {waited:?}, not after its {HEAD_TIMEOUT:?} head deadline"
        );
        Ok(())
    })
}

/// Everything a raw client gets from `addr` for `request` within 10 s.
fn answer(addr: SocketAddr, request: &[u8]) -> Result<Vec<u8>, String> {
    let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    tcp.write_all(request).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    Ok(answer)
}

/// The checks of a running `tls` plugin, which serves `pair` and accepts
/// `token`; `request` is its example.
pub fn run(
    project: &Project,
    plugin: &Running,
    pair: &Pair,
    token: &str,
    request: &Value,
) -> Result<(), String> {
    let name = &project.name;
    // Plain HTTP on the HTTPS port: no HTTP answer, let alone parameters.
    let plain = Controller::new(plugin.addr, token).request_for(request);
    let answer_to_plain = answer(plugin.addr, &plain)?;
    ensure!(
        !answer_to_plain.starts_with(b"HTTP/"),
        "{name}: plain HTTP on the HTTPS port was answered: {}",
        String::from_utf8_lossy(&answer_to_plain)
    );
    // TLS 1.1: an alert or a close, never a ServerHello.
    let hello = plugin_server::testing::tls_1_1_client_hello();
    let answer_to_old = answer(plugin.addr, &hello)?;
    ensure!(
        answer_to_old.first().is_none_or(|&kind| kind == 0x15),
        "{name}: a TLS 1.1 ClientHello got {answer_to_old:02x?}"
    );

    // cert-manager renews the certificate: new handshakes get it.
    let client = TestCa::get().client();
    let renewed = TestCa::get().issue(&crate::run_dir().join("tls").join(name), "renewed")?;
    for (from, to) in [(&renewed.cert, &pair.cert), (&renewed.key, &pair.key)] {
        fs_err::copy(from, to).map_err(|e| e.to_string())?;
    }
    let expected = certificate_der(&pair.cert)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while served_certificate(plugin.addr, &client)? != expected {
        ensure!(
            Instant::now() < deadline,
            "{name}: the renewed certificate was not served within 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    plugin
        .controller(token)
        .post(request)
        .map_err(|e| format!("{name}: after the renewal: {e}"))?;

    if project.metrics() {
        let reply = Controller::new(plugin.metrics_addr, token)
            .send(b"GET /metrics HTTP/1.1\r\nHost: p\r\n\r\n")?;
        let text = reply.text();
        let value = |series: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
                .unwrap_or(-1.0)
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        ensure!(
            value("plugin_tls_certificate_expiry_timestamp_seconds ") > now
                && value("plugin_tls_handshake_failures_total ") >= 2.0
                && value("plugin_tls_reloads_total{result=\"success\"} ") >= 1.0,
            "{name}: the TLS metrics do not show the certificate, the refused handshakes and \
             the renewal:\n{text}"
        );
    }

    // A key that is not the certificate's stops the plugin at start.
    let stranger = TestCa::get().issue(&crate::run_dir().join("tls").join(name), "stranger")?;
    let output = Command::new(project.release_binary()?)
        .envs(project.env.iter().map(|(k, v)| (k, v)))
        .env("PLUGIN_TLS_KEY_FILE", &stranger.key)
        .env(
            "PLUGIN_TOKEN_FILE",
            crate::conformance::token_file("tls-start", "t\n"),
        )
        .env(
            "PLUGIN_LISTEN_ADDR",
            crate::project::free_port().to_string(),
        )
        .env(
            "PLUGIN_METRICS_ADDR",
            crate::project::free_port().to_string(),
        )
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    let said = String::from_utf8_lossy(&output.stderr);
    ensure!(
        output.status.code() == Some(1)
            && said.contains("does not match the certificate")
            && said.contains(&stranger.key.display().to_string()),
        "{name}: started with a key of another certificate: {} {said}",
        output.status
    );
    Ok(())
}
