//! The plugin as a process: this test binary re-run in "child" mode (its
//! ignored test `child_process`) to serve `Plugin::main` with the template's
//! test generator. Included by the test files that start the plugin.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::{Duration, Instant};

use plugin_server::Plugin;

use crate::common::Scripted;

const CHILD: &str = "PLUGIN_SERVER_TEST_CHILD_ARGS";
pub const EXAMPLE: &str =
    r#"{"applicationSetName":"example","input":{"parameters":{"sets":[{"a":"1"}]}}}"#;

/// The body of the child process: `Plugin::main` with the template's test
/// generator, with the arguments its parent gave. Each test file that runs
/// the plugin as a process calls it from an ignored test `child_process`.
pub fn main() {
    let args = std::env::var(CHILD).expect("run by this file's tests, with their arguments");
    let args: Vec<String> = serde_json::from_str(&args).expect("child args");
    let plugin = Plugin {
        name: "test-plugin",
        version: "0.1.0",
        default_port: 4355,
        example_request: EXAMPLE,
    };
    let code = plugin.main_with_args(args, || match std::env::var("TEST_GENERATOR_FAILS") {
        Ok(message) => Err(message),
        Err(_) => Ok(Scripted),
    });
    std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
}

pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The plugin process with `args`, serving on `addr` with `token_file`.
pub fn plugin(args: &[&str], token_file: &std::path::Path, addr: SocketAddr) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .env(CHILD, serde_json::to_string(args).unwrap())
        .env("PLUGIN_TOKEN_FILE", token_file)
        .env("PLUGIN_LISTEN_ADDR", addr.to_string())
        .env("PLUGIN_METRICS_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        // Plain HTTP on loopback, in a build with `tls` too (as a sidecar).
        .env("PLUGIN_TLS", "off")
        // Stop at once on SIGTERM; `sigterm_drains_...` tests the drain.
        .env("PLUGIN_DRAIN_SECS", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

pub fn run_to_exit(command: &mut Command) -> Output {
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

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `command`, which must fail to start (exit code 1); its error output.
pub fn refused(command: &mut Command) -> String {
    let output = run_to_exit(command);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    stderr(&output)
}
