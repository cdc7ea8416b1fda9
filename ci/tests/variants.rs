//! The CI job on every combination of the template's optional parts: each is
//! rendered, formatted, linted, tested, its manifests and Dockerfile
//! validated, and its release binary driven over HTTP as Argo CD drives it.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::json;
use template_ci::argocd::Controller;
use template_ci::checks;
use template_ci::conformance::token_file;
use template_ci::project::{Project, Running};
use template_ci::render::Render;

const CI: &str = env!("CARGO_BIN_EXE_template-ci");

/// The four combinations of `metrics` and `github_actions`; the first is
/// the default rendering.
const VARIANTS: [(bool, bool); 4] = [(true, true), (true, false), (false, true), (false, false)];

fn project(index: usize) -> &'static Project {
    static PROJECTS: [OnceLock<Project>; 4] = [const { OnceLock::new() }; 4];
    PROJECTS[index].get_or_init(|| {
        let (metrics, github_actions) = VARIANTS[index];
        let render = if index == 0 {
            Render::new("plugin-default")
        } else {
            Render::new(&format!(
                "plugin-m{}-g{}",
                u8::from(metrics),
                u8::from(github_actions)
            ))
            .define("metrics", &metrics.to_string())
            .define("github_actions", &github_actions.to_string())
        };
        Project::render(CI, &render).unwrap()
    })
}

fn check_variant(index: usize) {
    let (metrics, github_actions) = VARIANTS[index];
    let project = project(index);
    let has = |path: &str| project.dir.join(path).exists();
    assert_eq!(has("src/metrics.rs"), metrics);
    assert_eq!(has("tests/metrics.rs"), metrics);
    assert_eq!(
        project.read("src/lib.rs").contains("pub mod metrics;"),
        metrics
    );
    assert_eq!(
        project
            .read("deploy/deployment.yaml")
            .contains("prometheus.io/scrape"),
        metrics
    );
    assert_eq!(has(".github/workflows/image.yml"), github_actions);
    assert_eq!(has(".github/dependabot.yml"), github_actions);
    checks::no_template_syntax(&project.dir).unwrap();
    checks::all(project, metrics).unwrap();
}

#[test]
fn default_metrics_and_github_actions() {
    check_variant(0);
}

#[test]
fn metrics_without_github_actions() {
    check_variant(1);
}

#[test]
fn github_actions_without_metrics() {
    check_variant(2);
}

#[test]
fn neither_metrics_nor_github_actions() {
    check_variant(3);
}

fn default_release_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| project(0).release_binary().unwrap())
}

#[test]
fn release_binary_refuses_an_empty_or_missing_token_file() {
    for (name, content) in [("empty", Some("\n")), ("missing", None)] {
        let path = match content {
            Some(content) => token_file(name, content),
            None => std::env::temp_dir().join("template-ci-no-such-token"),
        };
        let output = Command::new(default_release_binary())
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
        .arg(default_release_binary())
        .current_dir(&project(0).dir);
    let plugin = Running::start_command(command, &file).unwrap();
    let sets = Controller::new(plugin.addr, token)
        .get_params("shop", &json!({"environments": ["dev"]}))
        .unwrap();
    assert_eq!(sets.len(), 1);
    assert_eq!(plugin.terminate().unwrap().code(), Some(0));
}
