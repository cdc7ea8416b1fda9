//! The CI job on every combination of the template's optional parts: each is
//! rendered, formatted, linted, tested, its manifests and Dockerfile
//! validated, and its release binary driven over HTTP as Argo CD drives it.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use template_ci::argocd::Controller;
use template_ci::checks;
use template_ci::conformance::token_file;
use template_ci::load;
use template_ci::project::{Project, Running};
use template_ci::render::Render;

const CI: &str = env!("CARGO_BIN_EXE_template-ci");

/// The four combinations of `metrics` and `github_actions` (the first is the
/// default rendering), the HTTP client example, whose name sorts after
/// every dependency in the lock file, and HTTPS (with metrics).
const VARIANTS: [(&str, &[(&str, &str)]); 6] = [
    ("plugin-default", &[]),
    (
        "plugin-m1-g0",
        &[("metrics", "true"), ("github_actions", "false")],
    ),
    (
        "plugin-m0-g1",
        &[("metrics", "false"), ("github_actions", "true")],
    ),
    (
        "plugin-m0-g0",
        &[("metrics", "false"), ("github_actions", "false")],
    ),
    ("zz-http-plugin", &[("http_client", "true")]),
    ("plugin-tls", &[("tls", "true")]),
];

fn project(index: usize) -> &'static Project {
    static PROJECTS: [OnceLock<Project>; VARIANTS.len()] =
        [const { OnceLock::new() }; VARIANTS.len()];
    PROJECTS[index].get_or_init(|| {
        let (name, defines) = VARIANTS[index];
        let mut render = Render::new(name);
        for (key, value) in defines {
            render = render.define(key, value);
        }
        Project::render(CI, &render).unwrap()
    })
}

/// `key` of variant `index`, the template's default where it sets none.
fn option(index: usize, key: &str, default: bool) -> bool {
    VARIANTS[index]
        .1
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(default, |(_, v)| *v == "true")
}

/// What changes the release binary (`github_actions` adds files only).
fn build(index: usize) -> (bool, bool, bool) {
    (
        option(index, "metrics", true),
        option(index, "http_client", false),
        option(index, "tls", false),
    )
}

fn check_variant(index: usize) {
    let metrics = option(index, "metrics", true);
    let github_actions = option(index, "github_actions", true);
    let http_client = option(index, "http_client", false);
    let tls = option(index, "tls", false);
    let project = project(index);
    let has = |path: &str| project.dir.join(path).exists();
    assert_eq!(project.tls.is_some(), tls);
    assert_eq!(has("deploy/base/certificate.yaml"), tls);
    assert_eq!(has("deploy/components/argocd-trust"), tls);
    assert_eq!(
        project
            .read("deploy/base/argocd-configmap.yaml")
            .contains("baseUrl: \"https://"),
        tls
    );
    assert_eq!(project.metrics(), metrics);
    assert_eq!(
        project
            .read("deploy/base/deployment.yaml")
            .contains("prometheus.io/scrape"),
        metrics
    );
    assert_eq!(has(".github/workflows/image.yml"), github_actions);
    assert_eq!(has(".github/dependabot.yml"), github_actions);
    assert_eq!(
        project.read("src/generator.rs").contains("reqwest::Client"),
        http_client
    );
    assert!(!has("src/http_generator.rs"));
    checks::no_template_syntax(&project.dir).unwrap();
    checks::rust(project).unwrap();
    checks::deploy(project).unwrap();
    // The binary, its dependencies and the Dockerfile's build are checked
    // once per distinct build: an earlier variant that builds the same code
    // has checked them.
    if (0..index).all(|earlier| build(earlier) != build(index)) {
        checks::dependencies(project).unwrap();
        checks::release(project).unwrap();
    }
    if index == 0 {
        template_ci::docker::replay(project).unwrap();
    }
}

#[test]
fn default_metrics_and_github_actions() {
    check_variant(0);
}

/// plugin-server's own suite with its features on (the workspace's `cargo
/// test` runs it without), in the default rendering, whose build has them.
#[test]
fn plugin_server_suite_with_its_features() {
    project(0)
        .cargo(&["test", "--locked", "-p", "plugin-server", "--all-features"])
        .unwrap();
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

#[test]
fn http_client_example() {
    check_variant(4);
}

#[test]
fn https_on_the_plugins_port() {
    check_variant(5);
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
            None => template_ci::run_dir().join("no-such-token"),
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
    let plugin = Running::start_command(project(0), command, &file).unwrap();
    let example = project(0).example().unwrap();
    let sets = Controller::new(plugin.addr, token)
        .post(&example.request)
        .unwrap();
    assert_eq!(sets, example.sets);
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
    let plugin = Running::start(project(0), &file).unwrap();
    let seconds = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let report = load::soak(
        plugin.addr,
        token,
        plugin.child.id(),
        &project(0).example().unwrap(),
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
    let plugin = Running::start_command(project(0), command, &file).unwrap();
    // The plugin reads a request's head within 10 s, or drops the client.
    let example = project(0).example().unwrap();
    let report = load::slowloris(
        plugin.addr,
        token,
        &example,
        1000,
        50,
        Duration::from_secs(16),
    );
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
