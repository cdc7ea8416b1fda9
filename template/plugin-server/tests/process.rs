//! The plugin as Kubernetes runs it: a process configured from the
//! environment, refusing to start without a token, logging, and stopping on
//! SIGTERM. The process is this test binary itself, re-run in "child" mode
//! to serve `Plugin::main` with the template's test generator, so these
//! tests need no particular generator. They speak plain HTTP on loopback,
//! as a sidecar does (`PLUGIN_TLS=off`); `tls.rs` runs the HTTPS process.

#[path = "common/child.rs"]
mod child;
mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use child::{EXAMPLE, free_port, plugin, refused, run_to_exit, stderr};
use plugin_server::testing::{
    TOKEN, TempDir, connect, controller_request, exchange, read_response, request_body,
    try_exchange,
};
use serde_json::json;

/// Not a test: the body of the child process (see the module comment),
/// which the tests below run with `--ignored`.
#[test]
#[ignore = "the plugin process the tests below start"]
fn child_process() {
    child::main();
}

/// Starts the plugin and waits until it answers its liveness probe.
fn start(token_file: &std::path::Path) -> (Child, SocketAddr) {
    start_with(token_file, &[])
}

/// Like [`start`], with more environment variables.
fn start_with(token_file: &std::path::Path, env: &[(&str, &str)]) -> (Child, SocketAddr) {
    let addr = free_port();
    let mut child = plugin(&[], token_file, addr)
        .envs(env.iter().copied())
        .spawn()
        .expect("starting the plugin");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = try_exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n");
        if probe.is_ok_and(|response| response.status == 200) {
            return (child, addr);
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the plugin exited at start-up: {status}");
        }
        assert!(Instant::now() < deadline, "the plugin never became healthy");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn terminate(child: &Child) {
    signal(child, "-TERM");
}

/// Sends `signal`, waits for the exit; its status and everything it logged.
fn stop(mut child: Child, signal_name: &str) -> (std::process::ExitStatus, String) {
    signal(&child, signal_name);
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut log)
        .expect("reading the log");
    (child.wait().expect("waiting for the plugin"), log)
}

fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn refuses_to_start_without_a_token_file() {
    let dir = TempDir::new();
    let missing = dir.path().join("no-such-token");
    let message = refused(&mut plugin(&[], &missing, free_port()));
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(message.contains("PLUGIN_TOKEN_FILE"), "{message}");
}

#[test]
fn refuses_to_start_with_an_empty_token_file() {
    let dir = TempDir::new();
    let empty = dir.file("token", " \n");
    let message = refused(&mut plugin(&[], &empty, free_port()));
    assert!(message.contains("is empty"), "{message}");
    assert!(message.contains(&empty.display().to_string()), "{message}");
}

#[test]
fn refuses_to_start_with_invalid_settings() {
    let dir = TempDir::new();
    let token = dir.file("token", TOKEN);
    let message = refused(plugin(&[], &token, free_port()).env("PLUGIN_MAX_BODY_BYTES", "lots"));
    assert!(message.contains("PLUGIN_MAX_BODY_BYTES"), "{message}");
}

#[test]
fn a_generator_that_cannot_be_set_up_stops_the_plugin_with_its_message() {
    let dir = TempDir::new();
    let token = dir.file("token", TOKEN);
    let message = refused(
        plugin(&[], &token, free_port()).env("TEST_GENERATOR_FAILS", "UPSTREAM_URL is not set"),
    );
    assert!(
        message.contains("cannot set up the generator: UPSTREAM_URL is not set"),
        "{message}"
    );
}

#[test]
fn unknown_commands_are_refused_with_the_usage() {
    let dir = TempDir::new();
    let message = refused(&mut plugin(&["serv"], &dir.path().join("t"), free_port()));
    assert!(message.contains("usage:"), "{message}");
}

#[test]
fn finishes_in_flight_requests_on_sigterm_and_exits_0() {
    let dir = TempDir::new();
    let token = dir.file("token", &format!("{TOKEN}\n"));
    let (child, addr) = start(&token);

    // A request whose body is still arriving when SIGTERM comes.
    let request = controller_request(Some(TOKEN), &request_body("shop", json!({"a": "b"})));
    let (first, rest) = request.split_at(request.len() - 10);
    let mut stream = connect(addr);
    stream.write_all(first).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    terminate(&child);
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(rest).unwrap();
    let response = read_response(&mut stream).expect("the in-flight request is answered");
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["output"]["parameters"][0]["a"], "b");

    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn sigterm_drains_kept_alive_connections_before_stopping() {
    let dir = TempDir::new();
    let token = dir.file("token", &format!("{TOKEN}\n"));
    let (child, addr) = start_with(&token, &[("PLUGIN_DRAIN_SECS", "2")]);
    let request = controller_request(Some(TOKEN), &request_body("shop", json!({"a": "b"})));
    let mut kept_alive = connect(addr);
    kept_alive.write_all(&request).unwrap();
    let before = read_response(&mut kept_alive).unwrap();
    assert_eq!((before.status, before.header("connection")), (200, None));

    terminate(&child);
    let signalled = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    // The kept-alive connection is still served, and told to close.
    kept_alive.write_all(&request).unwrap();
    let during = read_response(&mut kept_alive).unwrap();
    assert_eq!(
        (during.status, during.header("connection")),
        (200, Some("close"))
    );
    // So is a new one (in a cluster, the Service has stopped sending them),
    // and readiness is withdrawn.
    let fresh = exchange(addr, &request);
    assert_eq!(
        (fresh.status, fresh.header("connection")),
        (200, Some("close"))
    );
    let ready = exchange(addr, b"GET /readyz HTTP/1.1\r\nHost: p\r\n\r\n");
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["status"], "draining");

    let (status, log) = stop(child, "-TERM");
    let stopped = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("SIGTERM received: draining for 2 s"), "{log}");
    assert!(
        stopped >= Duration::from_millis(1900) && stopped < Duration::from_secs(6),
        "stopped {stopped:?} after SIGTERM"
    );
}

#[test]
fn sigint_stops_as_gracefully_as_sigterm() {
    let dir = TempDir::new();
    let token = dir.file("token", &format!("{TOKEN}\n"));
    let (child, addr) = start(&token);
    let request = controller_request(Some(TOKEN), &request_body("shop", json!({"sleep_ms": 500})));
    let mut stream = connect(addr);
    stream.write_all(&request).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let stopping = std::thread::spawn(move || stop(child, "-INT"));
    let response = read_response(&mut stream).expect("the in-flight request is answered");
    assert_eq!(response.status, 200);
    let (status, log) = stopping.join().unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.contains("SIGINT received: finishing in-flight requests"),
        "{log}"
    );
    assert!(!log.contains("forced shutdown"), "{log}");
}

#[test]
fn what_clients_send_cannot_forge_a_log_line() {
    let dir = TempDir::new();
    let token = dir.file("token", TOKEN);
    let (child, addr) = start(&token);
    let forged = "shop\n[2026-01-01T00:00:00Z INFO  plugin_server::server] POST /forged 200";
    let body = serde_json::json!({"applicationSetName": forged, "input": {}}).to_string();
    assert_eq!(
        exchange(addr, &controller_request(Some(TOKEN), &body)).status,
        200
    );
    let (_, log) = stop(child, "-TERM");
    assert!(
        !log.lines().any(|line| line.starts_with("[2026-01-01")),
        "{log}"
    );
    assert!(log.contains("applicationSet=shop\\n[2026"), "{log}");
}

#[test]
fn an_unresolved_argo_cd_token_reference_is_diagnosed_once_without_a_token() {
    // Argo CD sends `$` + the key when its Secret lacks that key.
    for (presented, named) in [("$token", Some("$token")), ("$not a key!", None)] {
        let dir = TempDir::new();
        let token = dir.file("token", TOKEN);
        let (child, addr) = start(&token);
        for _ in 0..3 {
            let reply = exchange(addr, &controller_request(Some(presented), "{}"));
            assert_eq!(reply.status, 403);
        }
        let (_, log) = stop(child, "-TERM");
        let warnings = log
            .matches("exists in Argo CD's namespace but has no key")
            .count();
        assert_eq!(warnings, 1, "{log}");
        match named {
            Some(named) => assert!(
                log.contains(&format!("presented the token {named}:")),
                "{log}"
            ),
            None => assert!(
                !log.contains("not a key") && log.contains("$<key>"),
                "{log}"
            ),
        }
    }
}

#[test]
fn values_argo_cd_prints_differently_are_logged_once_per_application_set_and_key() {
    let dir = TempDir::new();
    let token = dir.file("token", TOKEN);
    let (child, addr) = start(&token);
    let sets = json!({"sets": [{"id": 1234567, "gone": null, "name": "x"}]});
    for application_set in ["shop", "shop", "shop", "other"] {
        let reply = exchange(
            addr,
            &controller_request(Some(TOKEN), &request_body(application_set, sets.clone())),
        );
        assert_eq!(reply.status, 200);
        // The reply is what the generator returned: never converted.
        assert_eq!(reply.json()["output"]["parameters"][0]["id"], 1234567);
    }
    let (_, log) = stop(child, "-TERM");
    let id =
        "`id` is 1234567: Argo CD decodes numbers as float64 and its template prints 1.234567e+06";
    assert_eq!(
        log.matches(&format!("ApplicationSet shop: {id}")).count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches(&format!("ApplicationSet other: {id}")).count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("`gone` is null").count(), 2, "{log}");
}

#[test]
fn token_files_no_header_can_carry_are_refused_at_start_up() {
    for (content, reason) in [("\u{a0}", "non-ASCII"), ("\x0b\x0c\n", "control")] {
        let dir = TempDir::new();
        let token = dir.file("token", content);
        let message = refused(&mut plugin(&[], &token, free_port()));
        assert!(message.contains(reason), "{content:?}: {message}");
        assert!(message.contains(&token.display().to_string()), "{message}");
    }
}

#[test]
fn logs_one_line_per_request_and_never_the_token() {
    let dir = TempDir::new();
    let token = dir.file("token", TOKEN);
    let (child, addr) = start(&token);
    let ok = exchange(
        addr,
        &controller_request(Some(TOKEN), &request_body("shop", json!({}))),
    );
    assert_eq!(ok.status, 200);
    let denied = exchange(addr, &controller_request(Some("guess"), "{}"));
    assert_eq!(denied.status, 403);
    let (status, log) = stop(child, "-TERM");
    assert!(status.success(), "{log}");

    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("/api/v1/getparams.execute"))
        .collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines[0].contains(" 200 ") && lines[0].contains("applicationSet=shop"),
        "{log}"
    );
    assert!(
        lines[1].contains(" 403 ") && lines[1].contains("invalid bearer token"),
        "{log}"
    );
    assert!(!log.contains(TOKEN) && !log.contains("guess"), "{log}");
    assert!(!log.to_lowercase().contains("authorization: "), "{log}");
}

#[test]
fn healthcheck_subcommand_reports_the_running_plugin() {
    let dir = TempDir::new();
    let token = dir.file("token", TOKEN);
    let (child, addr) = start(&token);
    let healthcheck = |addr: SocketAddr| run_to_exit(&mut plugin(&["healthcheck"], &token, addr));
    assert!(healthcheck(addr).status.success());
    // A wildcard listen address is checked on loopback (with `tls` it
    // serves HTTPS alone: tls.rs).
    if !cfg!(feature = "tls") {
        let wildcard = SocketAddr::from(([0, 0, 0, 0], addr.port()));
        assert!(healthcheck(wildcard).status.success());
    }
    terminate(&child);
    let output = healthcheck(free_port());
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cannot connect"),
        "{}",
        stderr(&output)
    );
}

/// Runs `preview` with `args`: the exit code and stdout.
fn preview(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = TempDir::new();
    let mut all = vec!["preview"];
    all.extend_from_slice(args);
    let mut command = plugin(&all, &dir.path().join("no-token-needed"), free_port());
    for (key, value) in env {
        command.env(key, value);
    }
    run_to_exit(&mut command)
}

/// Runs `preview` with `args` and `input` on its standard input.
fn preview_stdin(args: &[&str], input: &str) -> Output {
    let dir = TempDir::new();
    let mut all = vec!["preview"];
    all.extend_from_slice(args);
    let mut child = plugin(&all, &dir.path().join("no-token-needed"), free_port())
        .stdin(Stdio::piped())
        .spawn()
        .expect("starting the plugin");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "preview did not stop by itself");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// What the child printed, without the test harness's own lines.
fn printed(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let start = stdout.find(['{', '[']).expect("JSON on stdout");
    let end = stdout.rfind(['}', ']']).expect("JSON on stdout");
    serde_json::from_str(&stdout[start..=end]).unwrap()
}

#[test]
fn preview_runs_the_example_request_without_token_or_server() {
    let output = preview(&[], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        printed(&output),
        json!({"output": {"parameters": [{"a": "1"}]}})
    );
    let request = preview(&["--request"], &[]);
    assert_eq!(
        printed(&request),
        serde_json::from_str::<serde_json::Value>(EXAMPLE).unwrap()
    );
}

#[test]
fn preview_takes_parameters_and_applicationset_files() {
    let output = preview(&[r#"{"x":[1,2]}"#, "--application-set", "shop"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        printed(&output),
        json!({"output": {"parameters": [{"x": [1, 2]}]}})
    );

    // An ApplicationSet as kept in Git: what its template sees, per set,
    // and a warning for a number Argo CD prints as 1.234567e+06.
    let yaml = "\
# kept in Git
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata: {name: shop, namespace: argocd}
spec:
  goTemplate: true
  generators:
    - plugin:
        configMapRef: {name: test-plugin}
        input:
          parameters:
            sets: [{k: v, id: 1234567}, {k: w}]
        values: {link: 'x/{{ .k }}'}
";
    // A build without the `yaml` feature reads the same ApplicationSet as
    // JSON (as `kubectl get -o json` prints it), and refuses the YAML.
    let json = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
        "metadata": {"name": "shop", "namespace": "argocd"},
        "spec": {"goTemplate": true, "generators": [{"plugin": {
            "configMapRef": {"name": "test-plugin"},
            "input": {"parameters": {"sets": [{"k": "v", "id": 1234567}, {"k": "w"}]}},
            "values": {"link": "x/{{ .k }}"},
        }}]},
    })
    .to_string();
    let yaml = if cfg!(feature = "yaml") {
        yaml
    } else {
        let dir = TempDir::new();
        let file = dir.file("appset.yaml", yaml);
        let output = preview(&["--file", file.to_str().unwrap()], &[]);
        assert_eq!(output.status.code(), Some(1));
        assert!(stderr(&output).contains("-o json"), "{}", stderr(&output));
        json.as_str()
    };
    let sees = json!([
        {"k": "v", "id": 1234567, "values": {"link": "x/v"}},
        {"k": "w", "values": {"link": "x/w"}},
    ]);
    let dir = TempDir::new();
    let file = dir.file("appset.yaml", yaml);
    let output = preview(&["--file", file.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(printed(&output), sees);
    assert!(
        stderr(&output).contains("`id` is 1234567: Argo CD decodes numbers as float64 and its template prints 1.234567e+06"),
        "{}",
        stderr(&output)
    );
    // The input, the same for every set, is said once per ApplicationSet.
    let input = r#"generator.input.parameters: {"sets":[{"id":1234567,"k":"v"},{"k":"w"}]}"#;
    assert_eq!(
        stderr(&output).matches(input).count(),
        1,
        "{}",
        stderr(&output)
    );
    let output = preview_stdin(&["--file", "-"], yaml);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(printed(&output), sees);
    let output = preview(
        &["--file", file.to_str().unwrap(), "--config-map", "other"],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("names test-plugin"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn preview_exits_non_zero_with_argo_cds_message() {
    let output = preview(
        &[r#"{"invalid":"input.parameters: `env` is required"}"#],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "Argo CD would show: API error with status code 400: input.parameters: `env` is required"
        ),
        "{}",
        stderr(&output)
    );
    let output = preview(&["{not json"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("PARAMETERS is not JSON"));
}

/// With `PLUGIN_LOG_FORMAT=json` every line of a run is one JSON object:
/// start, requests (refused, failing, panicking, forged), value warnings,
/// the drain and the stop; and a refusal to start.
#[test]
fn json_logs_are_one_object_per_line_for_a_whole_run() {
    let dir = TempDir::new();
    let token = dir.file("token", TOKEN);
    let env = [("PLUGIN_LOG_FORMAT", "json"), ("PLUGIN_DRAIN_SECS", "1")];
    let (child, addr) = start_with(&token, &env);
    let forged = "shop\"}\n{\"level\":\"ERROR\",\"message\":\"forged";
    let sets = json!({"sets": [{"id": 1234567}]});
    for (token, name, parameters, status) in [
        (Some(TOKEN), forged, sets.clone(), 200),
        (Some("wrong-token-0123456789"), "shop", sets.clone(), 403),
        (Some(TOKEN), "bug", json!({"panic": true}), 500),
    ] {
        let body = request_body(name, parameters);
        let reply = exchange(addr, &controller_request(token, &body));
        assert_eq!(reply.status, status);
    }
    assert_eq!(
        exchange(addr, b"GET /nope HTTP/1.1\r\nHost: p\r\n\r\n").status,
        404
    );
    let (status, log) = stop(child, "-TERM");
    assert!(status.success(), "{log}");

    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?} in\n{log}"))
        })
        .collect();
    for line in &lines {
        for key in ["time", "level", "target", "message"] {
            assert!(line[key].is_string(), "{key} in {line}");
        }
        assert!(line["time"].as_str().unwrap().ends_with('Z'), "{line}");
    }
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    for expected in ["listening on", "draining for 1 s", "stopped"] {
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "{expected}: {log}"
        );
    }
    let access = |status: u64| {
        lines
            .iter()
            .find(|line| line["status"] == status)
            .unwrap_or_else(|| panic!("no access line with status {status}: {log}"))
    };
    let served = access(200);
    assert_eq!(served["applicationSet"], forged);
    assert_eq!(served["method"], "POST");
    assert_eq!(served["path"], "/api/v1/getparams.execute");
    assert!(served["duration_ms"].is_number(), "{served}");
    assert_eq!(access(403)["level"], "INFO");
    assert_eq!(access(500)["level"], "WARN");
    assert_eq!(access(404)["path"], "/nope");
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "WARN" && l["message"].as_str().unwrap().contains("1234567")),
        "the value warning: {log}"
    );
    let panicked = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .expect("the panic");
    assert!(
        panicked["message"] == "panicked: generator bug" && panicked["location"].is_string(),
        "{panicked}"
    );
    assert!(access(200).get("error").is_none(), "{log}");

    let refusal = refused(
        plugin(&[], &dir.path().join("missing"), free_port()).env("PLUGIN_LOG_FORMAT", "json"),
    );
    let line: serde_json::Value = serde_json::from_str(refusal.trim()).unwrap();
    assert_eq!(line["level"], "ERROR");
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .contains("PLUGIN_TOKEN_FILE"),
        "{line}"
    );
    let invalid = refused(plugin(&[], &token, free_port()).env("PLUGIN_LOG_FORMAT", "xml"));
    assert!(
        invalid.contains("PLUGIN_LOG_FORMAT=\"xml\" is invalid"),
        "{invalid}"
    );
}
