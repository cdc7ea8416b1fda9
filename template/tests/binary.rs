//! The compiled binary as Kubernetes runs it: configuration from the
//! environment, refusal to start without a token, logs, and SIGTERM.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{
    TOKEN, connect, controller_request, exchange, read_response, request_body, temp_dir,
    try_exchange,
};
use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_{{project-name}}");

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn plugin(token_file: &std::path::Path, addr: SocketAddr) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env_clear()
        .env("PLUGIN_TOKEN_FILE", token_file)
        .env("PLUGIN_LISTEN_ADDR", addr.to_string())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

fn run_to_exit(command: &mut Command) -> Output {
    let mut child = command.spawn().expect("starting the plugin");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the plugin did not stop by itself");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Starts the plugin and waits until it answers its liveness probe.
fn start(token_file: &std::path::Path) -> (Child, SocketAddr) {
    let addr = free_port();
    let mut child = plugin(token_file, addr)
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
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn refuses_to_start_without_a_token_file() {
    let missing = temp_dir().join("no-such-token");
    let output = run_to_exit(&mut plugin(&missing, free_port()));
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(message.contains("PLUGIN_TOKEN_FILE"), "{message}");
}

#[test]
fn refuses_to_start_with_an_empty_token_file() {
    let empty = temp_dir().join("token");
    std::fs::write(&empty, " \n").unwrap();
    let output = run_to_exit(&mut plugin(&empty, free_port()));
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("is empty"), "{message}");
    assert!(message.contains(&empty.display().to_string()), "{message}");
}

#[test]
fn refuses_to_start_with_invalid_settings() {
    let token = temp_dir().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let output = run_to_exit(plugin(&token, free_port()).env("PLUGIN_MAX_BODY_BYTES", "lots"));
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("PLUGIN_MAX_BODY_BYTES"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn finishes_in_flight_requests_on_sigterm_and_exits_0() {
    let token = temp_dir().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let (child, addr) = start(&token);

    // A request whose body is still arriving when SIGTERM comes.
    let request = controller_request(
        Some(TOKEN),
        &request_body("shop", json!({"environments": ["dev"]})),
    );
    let (first, rest) = request.split_at(request.len() - 10);
    let mut stream = connect(addr);
    stream.write_all(first).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    terminate(&child);
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(rest).unwrap();
    let response = read_response(&mut stream).expect("the in-flight request is answered");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json()["output"]["parameters"][0]["namespace"],
        "shop-dev"
    );

    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn logs_one_line_per_request_and_never_the_token() {
    let token = temp_dir().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let (mut child, addr) = start(&token);
    let ok = exchange(
        addr,
        &controller_request(
            Some(TOKEN),
            &request_body("shop", json!({"environments": ["dev"]})),
        ),
    );
    assert_eq!(ok.status, 200);
    let denied = exchange(addr, &controller_request(Some("guess"), "{}"));
    assert_eq!(denied.status, 403);
    terminate(&child);
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(child.wait().unwrap().success());

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
    let token = temp_dir().join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let (child, addr) = start(&token);
    let healthcheck = |addr: SocketAddr| {
        Command::new(BINARY)
            .arg("healthcheck")
            .env_clear()
            .env("PLUGIN_LISTEN_ADDR", addr.to_string())
            .output()
            .unwrap()
    };
    assert!(healthcheck(addr).status.success());
    // A wildcard listen address is checked on loopback.
    let wildcard = SocketAddr::from(([0, 0, 0, 0], addr.port()));
    assert!(healthcheck(wildcard).status.success());
    terminate(&child);
    let output = healthcheck(free_port());
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cannot connect"),
        "{}",
        stderr(&output)
    );
}
