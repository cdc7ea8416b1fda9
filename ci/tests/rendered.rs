//! Renders the template with its defaults and proves the result: its own
//! checks pass, and its release binary speaks Argo CD's protocol to an
//! independent client.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use template_ci::argocd::{Controller, GET_PARAMS_PATH, read_reply};
use template_ci::command::run_command;
use template_ci::project::{Project, Running};
use template_ci::render::Render;

const CI: &str = env!("CARGO_BIN_EXE_template-ci");

fn project() -> &'static Project {
    static PROJECT: OnceLock<Project> = OnceLock::new();
    PROJECT.get_or_init(|| Project::render(CI, &Render::new("plugin-default")).unwrap())
}

fn release_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| project().release_binary().unwrap())
}

fn token_file(name: &str, content: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("template-ci-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

#[test]
fn default_project_is_formatted_lint_free_and_passes_its_tests() {
    let project = project();
    project.cargo(&["fmt", "--check"]).unwrap();
    project
        .cargo(&[
            "clippy",
            "--locked",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
        .unwrap();
    project.cargo(&["test", "--locked"]).unwrap();
}

#[test]
fn no_template_syntax_is_left_in_the_rendered_project() {
    let project = project();
    let mut stack = vec![project.dir.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for leftover in [
                "{%",
                "{{project-name",
                "{{ project-name",
                "{{plugin_",
                "{{crate_name",
            ] {
                assert!(
                    !text.contains(leftover),
                    "{} still holds {leftover}",
                    path.display()
                );
            }
        }
    }
    assert!(
        project
            .read("Cargo.toml")
            .contains("name = \"plugin-default\"")
    );
    assert!(
        project
            .read("src/config.rs")
            .contains("DEFAULT_PORT: u16 = 4355;")
    );
}

#[test]
fn release_binary_speaks_the_argocd_protocol() {
    let token = "conformance-token-7f3a9c";
    let file = token_file("conformance", &format!("{token}\n"));
    let plugin = Running::start(release_binary(), &file, &project().dir).unwrap();
    let mut controller = Controller::new(plugin.addr, token);

    // The documented request, and the answer the controller decodes.
    let sets = controller
        .get_params("shop", &json!({"environments": ["dev", "prod"]}))
        .unwrap();
    assert_eq!(
        Value::from(sets),
        json!([
            {"name": "shop", "environment": "dev", "namespace": "shop-dev"},
            {"name": "shop", "environment": "prod", "namespace": "shop-prod"},
        ])
    );
    // Every JSON type in the parameters, on the same kept-alive connection.
    let err = controller
        .get_params(
            "shop",
            &json!({"environments": "dev", "n": 3, "b": true, "z": null, "m": {"k": "<&>"}}),
        )
        .unwrap_err();
    assert_eq!(
        err,
        "API error with status code 400: input.parameters: `environments` must be a list of strings"
    );
    assert!(
        controller
            .get_params("shop", &json!({"environments": []}))
            .unwrap()
            .is_empty()
    );

    // Authentication, as the operator would read it in the ApplicationSet status.
    let wrong = Controller::new(plugin.addr, "not-the-token").get_params("shop", &json!({}));
    assert_eq!(
        wrong.unwrap_err(),
        "API error with status code 403: invalid bearer token"
    );
    let empty = Controller::new(plugin.addr, "").get_params("shop", &json!({}));
    assert!(
        empty.unwrap_err().starts_with(
            "API error with status code 403: missing or malformed Authorization header"
        ),
    );

    // Broken bodies, paths and methods.
    let reply = controller
        .send(format!("POST {GET_PARAMS_PATH} HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer {token}\r\nContent-Length: 5\r\n\r\n{{\"a\":").as_bytes())
        .unwrap();
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("invalid request body"));
    for (request, status) in [
        ("GET /nope HTTP/1.1\r\nHost: p\r\n\r\n".to_string(), 404),
        (
            format!("GET {GET_PARAMS_PATH} HTTP/1.1\r\nHost: p\r\n\r\n"),
            405,
        ),
        ("GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n".to_string(), 200),
        ("GET /readyz HTTP/1.1\r\nHost: p\r\n\r\n".to_string(), 200),
    ] {
        let reply = controller.send(request.as_bytes()).unwrap();
        assert_eq!(reply.status, status, "{request}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{request}"
        );
        serde_json::from_slice::<Value>(&reply.body).unwrap();
    }

    // A 20 MB body is refused with 413, and the plugin keeps serving.
    oversized_body_is_refused(plugin.addr, token);
    assert_eq!(
        controller
            .get_params("shop", &json!({"environments": ["qa"]}))
            .unwrap()
            .len(),
        1
    );

    // The curl of the README, which sends application/x-www-form-urlencoded.
    let output = run_command(Command::new("curl").args([
        "-sS",
        "-w",
        "\n%{http_code}",
        &format!("http://{}{GET_PARAMS_PATH}", plugin.addr),
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-d",
        r#"{"applicationSetName":"demo","input":{"parameters":{"environments":["dev","prod"]}}}"#,
    ]))
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let (body, status) = stdout.rsplit_once('\n').unwrap();
    assert_eq!(status, "200", "{stdout}");
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap()["output"]["parameters"][1]["namespace"],
        "demo-prod"
    );

    // A rotated token file is followed without a restart.
    std::fs::write(&file, "rotated-token-41b2\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut rotated = Controller::new(plugin.addr, "rotated-token-41b2");
    while rotated
        .get_params("shop", &json!({"environments": ["dev"]}))
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the rotated token was not picked up within 6 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        Controller::new(plugin.addr, token)
            .get_params("shop", &json!({"environments": ["dev"]}))
            .is_err()
    );

    // SIGTERM: a clean exit.
    let status = plugin.terminate().unwrap();
    assert_eq!(status.code(), Some(0));
}

fn oversized_body_is_refused(addr: std::net::SocketAddr, token: &str) {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let head = format!(
        "POST {GET_PARAMS_PATH} HTTP/1.1\r\nHost: p\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 20000000\r\n\r\n"
    );
    writer.write_all(head.as_bytes()).unwrap();
    // Keep sending, as a real client would, while the reply is read.
    let sender = std::thread::spawn(move || {
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..305 {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let reply = read_reply(&mut BufReader::new(stream)).unwrap();
    assert_eq!(reply.status, 413);
    assert!(
        reply
            .text()
            .contains("larger than the limit of 1048576 bytes"),
        "{}",
        reply.text()
    );
    sender.join().unwrap();
}

#[test]
fn release_binary_refuses_an_empty_or_missing_token_file() {
    for (name, content) in [("empty", Some("\n")), ("missing", None)] {
        let path = match content {
            Some(content) => token_file(name, content),
            None => std::env::temp_dir().join("template-ci-no-such-token"),
        };
        let output = Command::new(release_binary())
            .env("PLUGIN_TOKEN_FILE", &path)
            .env("PLUGIN_LISTEN_ADDR", "127.0.0.1:0")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&path.display().to_string()),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn release_binary_needs_no_writable_filesystem() {
    // As with `readOnlyRootFilesystem: true`: the whole filesystem read-only,
    // in a mount namespace of the plugin's own.
    let token = "read-only-token-5d1e";
    let file = token_file("read-only", token);
    let mut command = Command::new("unshare");
    command
        .args(["--map-root-user", "--mount", "--", "sh", "-c"])
        .arg(r#"mount -o remount,bind,ro / && exec "$0""#)
        .arg(release_binary())
        .current_dir(&project().dir);
    let plugin = Running::start_command(command, &file).unwrap();
    let sets = Controller::new(plugin.addr, token)
        .get_params("shop", &json!({"environments": ["dev"]}))
        .unwrap();
    assert_eq!(sets.len(), 1);
    assert_eq!(plugin.terminate().unwrap().code(), Some(0));
}
