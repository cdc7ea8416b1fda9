//! The CI job on every combination of the template's optional parts: each is
//! rendered, formatted, linted, tested, its manifests and Dockerfile
//! validated, and its release binary driven over HTTP as Argo CD drives it.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::json;
use template_ci::argocd::Controller;
use template_ci::checks;
use template_ci::conformance::token_file;
use template_ci::load;
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

/// Raises this process's open-file limit for the thousand connections below
/// (with util-linux `prlimit`, as std has no setrlimit).
fn allow_open_files(count: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft: u64 = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(0);
    if soft < count {
        let pid = std::process::id().to_string();
        let limit = format!("--nofile={count}:{count}");
        template_ci::command::run_command(Command::new("prlimit").args(["--pid", &pid, &limit]))
            .unwrap();
    }
}

#[test]
fn soak_keeps_memory_flat_and_every_request_succeeds() {
    let token = "soak-token-0c71";
    let file = token_file("soak", token);
    let plugin = Running::start(default_release_binary(), &file, &project(0).dir).unwrap();
    let seconds = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let report = load::soak(
        plugin.addr,
        token,
        plugin.child.id(),
        4,
        Duration::from_secs(seconds),
    );
    let growth = report.growth_after_warm_up_kib();
    let rss: Vec<u64> = report.rss.iter().map(|(_, kib)| *kib).collect();
    eprintln!(
        "soak: {} requests in {seconds}s, {} errors, RSS {}..{} KiB, growth after warm-up {growth} KiB",
        report.requests,
        report.errors,
        rss.iter().min().unwrap_or(&0),
        rss.iter().max().unwrap_or(&0),
    );
    assert_eq!(report.errors, 0);
    assert!(
        report.requests > 1000,
        "the soak ran: {} requests",
        report.requests
    );
    assert!(growth <= 1024, "RSS grew by {growth} KiB after warm-up");
    assert_eq!(plugin.terminate().unwrap().code(), Some(0));
}

#[test]
fn slow_clients_are_dropped_while_others_are_served() {
    allow_open_files(4096);
    let token = "slowloris-token-9a2e";
    let file = token_file("slowloris", token);
    let mut command = Command::new("sh");
    command
        .args(["-c", r#"ulimit -n 4096 && exec "$0""#])
        .arg(default_release_binary())
        .current_dir(&project(0).dir);
    let plugin = Running::start_command(command, &file).unwrap();
    // The plugin reads a request's head within 10 s, or drops the client.
    let report = load::slowloris(plugin.addr, token, 1000, 50, Duration::from_secs(16));
    let (before, during) = (
        load::percentile(&report.before_ms, 50.0),
        load::percentile(&report.during_ms, 50.0),
    );
    eprintln!(
        "slowloris: {} idle keep-alive + {} slow clients; well-behaved p50 {before:.2} ms before, {during:.2} ms during \
         (p99 {:.2} ms); {} slow clients dropped, the last after {:.1}s",
        report.idle_connections,
        report.slow_clients,
        load::percentile(&report.during_ms, 99.0),
        report.slow_dropped,
        report.slowest_drop.as_secs_f64(),
    );
    assert_eq!(report.failed_requests, 0);
    assert!(
        report.idle_still_served,
        "idle keep-alive connections stay usable"
    );
    assert_eq!(
        report.slow_dropped, report.slow_clients,
        "every slow client is cut off"
    );
    assert!(
        report.slowest_drop >= Duration::from_secs(9),
        "not before the header timeout"
    );
    // Served within its normal latency: not queued behind the attackers.
    assert!(load::percentile(&report.during_ms, 99.0) < 1000.0);
    assert_eq!(plugin.terminate().unwrap().code(), Some(0));
}
