//! The conformance run: what Argo CD's own code (`judge.rs`) cannot
//! exercise, on the release binary: raw requests, limits, the metrics
//! socket, token rotation, the README's curl.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::argocd::{Controller, GET_PARAMS_PATH};
use crate::command::run_command;
use crate::project::{Project, Running};
use crate::tls_checks;
use plugin_server::testing::{Response, read_response};

/// A token file in this run's folder.
pub fn token_file(name: &str, content: &str) -> PathBuf {
    let dir = crate::run_dir().join("tokens");
    std::fs::create_dir_all(&dir).expect("a token folder");
    let path = dir.join(name);
    std::fs::write(&path, content).expect("writing a token file");
    path
}

/// Runs every protocol check against the project's release binary. Where a
/// successful answer is needed it sends the project's example request and
/// expects what `preview` printed for it: the checks hold for any generator.
pub fn run(project: &Project) -> Result<(), String> {
    let name = project.name.as_str();
    let example = project.example()?;
    let token = "conformance-token-7f3a9c";
    let file = token_file(&format!("conformance-{name}"), &format!("{token}\n"));
    let plugin = Running::start(project, &file)?;
    let mut controller = plugin.controller(token);
    let fail = |what: &str, detail: String| format!("{name}: {what}: {detail}");
    // With `tls`, a handshake that stalls is bounded like a slow head
    // (10 s); measured beside the other checks.
    let slow_handshake = plugin
        .https
        .is_some()
        .then(|| tls_checks::slow_handshake(plugin.addr));

    // Argo CD's own client sends the example request and the wrong token
    // (`judge.rs`); what follows is what it cannot exercise.

    // A request that is not the protocol's is an error the operator can
    // read, never an empty success.
    let mut wrong_shape = example.request.clone();
    wrong_shape["input"]["parameters"] = json!(["not", "a", "map"]);
    let bad = controller.post(&wrong_shape);
    ensure!(
        bad.as_ref()
            .is_err_and(|e| e.starts_with("API error with status code 400: invalid request body")),
        "{name}: parameters that are not a map gave {bad:?}"
    );

    // No token: Argo CD sends no header when its Secret holds an empty one.
    let absent = plugin.controller("").get_params("shop", &json!({}));
    ensure!(
        absent
            .as_ref()
            .is_err_and(|e| e.starts_with("API error with status code 403: missing")),
        "{name}: no token gave {absent:?}"
    );

    // The token is checked before the body is read: a body announced and
    // never sent still gets its 403 at once.
    let early = token_before_body(&plugin).map_err(|e| fail("403 before the body", e))?;
    ensure!(
        early == 403,
        "{name}: a wrong token with an unsent body answered {early}"
    );

    // Broken bodies, unknown paths, wrong methods, probes: all JSON.
    let truncated = format!(
        "POST {GET_PARAMS_PATH} HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer {token}\r\nContent-Length: 5\r\n\r\n{{\"a\":"
    );
    for (request, status) in [
        (truncated, 400),
        ("GET /nope HTTP/1.1\r\nHost: p\r\n\r\n".to_owned(), 404),
        (
            format!("GET {GET_PARAMS_PATH} HTTP/1.1\r\nHost: p\r\n\r\n"),
            405,
        ),
        ("GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n".to_owned(), 200),
        ("GET /readyz HTTP/1.1\r\nHost: p\r\n\r\n".to_owned(), 200),
    ] {
        let reply = controller
            .send(request.as_bytes())
            .map_err(|e| fail("request", e))?;
        let first_line = request.lines().next().unwrap_or_default().to_owned();
        ensure!(
            reply.status == status,
            "{name}: {first_line} answered {} {}",
            reply.status,
            reply.text()
        );
        ensure!(
            reply.header("content-type") == Some("application/json")
                && serde_json::from_slice::<Value>(&reply.body).is_ok(),
            "{name}: {first_line} did not answer JSON: {}",
            reply.text()
        );
    }

    // A 20 MB body is refused with 413, and the plugin keeps serving.
    oversized_body(&plugin, token).map_err(|e| fail("20 MB body", e))?;
    let after = controller.post(&example.request);
    ensure!(
        after.as_ref() == Ok(&example.sets),
        "{name}: after a 413: {after:?}"
    );

    // The README's curl: no JSON Content-Type (with `tls`, trusting the CA).
    let mut curl = Command::new("curl");
    let scheme = match &project.tls {
        Some(_) => {
            curl.arg("--cacert")
                .arg(crate::tls::TestCa::get().ca_file());
            "https"
        }
        None => "http",
    };
    let output = run_command(curl.args([
        "-sS",
        "-w",
        "\n%{http_code}",
        &format!("{scheme}://{}{GET_PARAMS_PATH}", plugin.addr),
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-d",
        &example.request.to_string(),
    ]))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = stdout.rsplit_once('\n').unwrap_or_default();
    let curl_sets = serde_json::from_str::<Value>(body)
        .ok()
        .map(|b| b["output"]["parameters"].clone());
    ensure!(
        status == "200" && curl_sets == Some(Value::from(example.sets.clone())),
        "{name}: curl got {stdout}"
    );

    if project.metrics() {
        // On the metrics socket only: the plugin's answers 404.
        let on_plugin_socket = controller
            .send(b"GET /metrics HTTP/1.1\r\nHost: p\r\n\r\n")
            .map_err(|e| fail("/metrics", e))?;
        ensure!(
            on_plugin_socket.status == 404,
            "{name}: /metrics on the plugin's port answered {}",
            on_plugin_socket.status
        );
        let reply = Controller::new(plugin.metrics_addr, token)
            .send(b"GET /metrics HTTP/1.1\r\nHost: p\r\n\r\n")
            .map_err(|e| fail("/metrics", e))?;
        let text = reply.text();
        let labels = format!(
            r#"application_set="{}",status="200""#,
            example.application_set()
        );
        ensure!(
            // The example request succeeded twice (after the 413, curl).
            reply.status == 200
                && text.contains(&format!("plugin_requests_total{{{labels}}} 2\n"))
                && text.contains(
                    "plugin_request_duration_seconds_bucket{status=\"200\",le=\"+Inf\"} 2\n"
                ),
            "{name}: /metrics answered {} {text}",
            reply.status
        );
        // A generator that records its upstream calls shows them (the
        // example request was answered twice, each after one call).
        if project
            .read("src/generator.rs")
            .contains("record_upstream_call")
        {
            ensure!(
                text.contains("plugin_upstream_requests_total{result=\"2xx\"} ")
                    && text.contains("plugin_upstream_request_duration_seconds_count "),
                "{name}: the generator records its upstream calls, /metrics shows none: {text}"
            );
        }
        lint_metrics(name, &text)?;
    }

    // A rotated token file is followed without a restart.
    fs_err::write(&file, "rotated-token-41b2\n").map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut rotated = plugin.controller("rotated-token-41b2");
    while rotated.post(&example.request).is_err() {
        ensure!(
            Instant::now() < deadline,
            "{name}: the rotated token was not accepted within 6 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let old = plugin.controller(token).post(&example.request);
    ensure!(
        old.as_ref()
            .is_err_and(|e| e.starts_with("API error with status code 403")),
        "{name}: the old token after rotation gave {old:?}, not a 403"
    );

    if let Some(pair) = &project.tls {
        tls_checks::run(
            project,
            &plugin,
            pair,
            "rotated-token-41b2",
            &example.request,
        )?;
        if let Some(check) = slow_handshake {
            check
                .join()
                .map_err(|_| format!("{name}: the slow handshake check panicked"))?
                .map_err(|e| fail("a stalled TLS handshake", e))?;
        }
    }

    // SIGTERM: a clean exit.
    let status = plugin.terminate()?;
    ensure!(
        status.code() == Some(0),
        "{name}: SIGTERM ended it with {status}"
    );
    Ok(())
}

fn token_before_body(plugin: &Running) -> Result<u16, String> {
    let mut stream = plugin.connect(Duration::from_secs(3))?;
    let head = format!(
        "POST {GET_PARAMS_PATH} HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer wrong\r\nContent-Length: 1000\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .map_err(|e| e.to_string())?;
    let reply = read_response(&mut BufReader::new(stream))
        .map_err(|e| format!("no answer within 3 s: {e}"))?;
    Ok(reply.status)
}

fn oversized_body(plugin: &Running, token: &str) -> Result<(), String> {
    if plugin.https.is_some() {
        return announced_oversized_body(plugin, token);
    }
    let stream = TcpStream::connect(plugin.addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let head = oversized_head(token);
    writer
        .write_all(head.as_bytes())
        .map_err(|e| e.to_string())?;
    // Keep sending, as a real client would, while the reply is read.
    let sender = std::thread::spawn(move || {
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..305 {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let reply = read_response(&mut BufReader::new(stream)).map_err(|e| e.to_string())?;
    let _ = sender.join();
    refused_as_too_large(&reply)
}

/// Over TLS, where one connection cannot be read and written from two
/// threads: 20 MB announced, none of it sent, answered 413 at once.
fn announced_oversized_body(plugin: &Running, token: &str) -> Result<(), String> {
    let mut stream = plugin.connect(Duration::from_secs(10))?;
    let head = oversized_head(token);
    stream
        .write_all(head.as_bytes())
        .map_err(|e| e.to_string())?;
    let reply = read_response(&mut BufReader::new(stream)).map_err(|e| e.to_string())?;
    refused_as_too_large(&reply)
}

/// The head of a request announcing a 20 MB body.
fn oversized_head(token: &str) -> String {
    format!(
        "POST {GET_PARAMS_PATH} HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 20000000\r\n\r\n"
    )
}

fn refused_as_too_large(reply: &Response) -> Result<(), String> {
    ensure!(
        reply.status == 413
            && reply
                .text()
                .contains("larger than the limit of 1048576 bytes"),
        "answered {} {}",
        reply.status,
        reply.text()
    );
    Ok(())
}

/// `promtool check metrics` on a live scrape: Prometheus' own lint of names,
/// types and help (Debian's `prometheus` package has promtool).
fn lint_metrics(name: &str, text: &str) -> Result<(), String> {
    let file = crate::run_dir().join(format!("metrics-{name}.txt"));
    fs_err::write(&file, text).map_err(|e| e.to_string())?;
    let input = std::fs::File::open(&file).map_err(|e| e.to_string())?;
    let output = crate::command::run_command(
        Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(input),
    )
    .map_err(|e| format!("{e}\n(promtool is in Debian's prometheus package)"))?;
    let findings = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    ensure!(
        findings.is_empty(),
        "{name}: promtool check metrics: {findings}\n{text}"
    );
    Ok(())
}
