//! A real Prometheus (Debian's `prometheus` package) scraping a rendered
//! plugin under a short load of refused tokens, failing and good requests,
//! with the rendered alerts loaded (evaluation every second, in this test's
//! own configuration only): the queries the alerts, the README's runbooks
//! and every dashboard panel use return data, and the token alert reaches
//! pending.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::argocd::Controller;
use crate::command::run_command;
use crate::manifests::{one, parse_yaml};
use crate::project::{Project, Running, free_port};

/// Queries of the alerts (their expressions before the threshold) and of
/// the README's runbooks; `JOB` stands for the scrape job.
const QUERIES: [&str; 8] = [
    r#"sum(up{job="JOB"})"#,
    r#"sum(rate(plugin_requests_total{job="JOB",status="403"}[1m]))"#,
    r#"sum(rate(plugin_requests_total{job="JOB",status=~"5.."}[1m])) / sum(rate(plugin_requests_total{job="JOB"}[1m]))"#,
    r#"histogram_quantile(0.99, sum by (le) (rate(plugin_request_duration_seconds_bucket{job="JOB"}[1m])))"#,
    r#"time() - plugin_token_last_success_timestamp_seconds{job="JOB"}"#,
    r#"sum by (application_set, status) (rate(plugin_requests_total{status=~"5.."}[1m]))"#,
    r#"plugin_requests_in_flight"#,
    r#"plugin_token_reloads_total{result="failure"}"#,
];

/// The queries of every panel of the component's Grafana dashboard (the
/// ConfigMap's `dashboard.json`).
pub fn dashboard_queries(config_map: &Value) -> Result<Vec<String>, String> {
    let text = config_map["data"]["dashboard.json"]
        .as_str()
        .ok_or("the dashboard's ConfigMap has no dashboard.json")?;
    let dashboard: Value =
        serde_json::from_str(text).map_err(|e| format!("dashboard.json: {e}"))?;
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        let targets = panel["targets"].as_array().filter(|t| !t.is_empty());
        let targets = targets.ok_or_else(|| format!("panel {} has no query", panel["title"]))?;
        for target in targets {
            let expr = target["expr"]
                .as_str()
                .ok_or("a panel query without expr")?;
            queries.push(expr.to_owned());
        }
    }
    Ok(queries)
}

/// The alert the load must bring to pending (its `for` keeps it there).
const TOKEN_ALERT: &str = "ArgoCDPluginTokenRejected";

/// Kills Prometheus when the check ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the check on a project rendered with metrics; what it saw.
pub fn run(project: &Project) -> Result<String, String> {
    let name = &project.name;
    let dir = crate::run_dir().join(format!("prometheus-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    fs_err::create_dir_all(dir.join("data")).map_err(|e| e.to_string())?;

    let token = "prometheus-token-0123456789";
    let token_file = crate::conformance::token_file(&format!("prometheus-{name}"), token);
    // Every answer over one byte is refused with a 500: the generator's
    // failures, whatever the generator.
    let mut command = Command::new(project.debug_binary()?);
    command.env("PLUGIN_MAX_REPLY_BYTES", "1");
    let plugin = Running::start_command(project, command, &token_file)?;

    let rule = parse_yaml(&project.read("deploy/components/alerts/prometheusrule.yaml"))?;
    let rule = one(&rule, "PrometheusRule", name)?;
    let namespace = rule["metadata"]["namespace"].as_str().unwrap_or_default();
    let job = format!("{namespace}/{name}");
    // JSON is YAML: the rule groups as the PrometheusRule holds them.
    fs_err::write(dir.join("rules.json"), rule["spec"].to_string()).map_err(|e| e.to_string())?;
    let config = serde_json::json!({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.json"],
        "scrape_configs": [{
            "job_name": job,
            "static_configs": [{
                "targets": [plugin.metrics_addr.to_string()],
                "labels": {"namespace": namespace, "pod": format!("{name}-0")},
            }],
        }],
    });
    fs_err::write(dir.join("prometheus.json"), config.to_string()).map_err(|e| e.to_string())?;
    let web = free_port();
    let _server = Server(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.json").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .arg("--log.level=warn")
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot start prometheus (Debian: apt-get install prometheus): {e}")
            })?,
    );
    let api = |path: &str, query: Option<&str>| -> Result<Value, String> {
        let mut curl = Command::new("curl");
        curl.args(["-s", "--max-time", "5", "--get"]);
        if let Some(query) = query {
            curl.arg("--data-urlencode").arg(format!("query={query}"));
        }
        let output = run_command(curl.arg(format!("http://{web}{path}")))?;
        serde_json::from_slice(&output.stdout).map_err(|e| format!("{path}: {e}"))
    };

    let component = parse_yaml(&crate::checks::with_component(project, "alerts")?)?;
    let dashboard = dashboard_queries(one(&component, "ConfigMap", &format!("{name}-dashboard"))?)?;

    // The load: refused tokens, failing answers, a few seconds long.
    let example = project.example()?;
    let mut argocd = Controller::new(plugin.addr, token);
    let mut stranger = Controller::new(plugin.addr, "not-the-token-0123456789");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let failed = argocd.post(&example.request).unwrap_err();
        ensure!(failed.contains("status code 500"), "{name}: {failed}");
        let refused = stranger.post(&example.request).unwrap_err();
        ensure!(refused.contains("status code 403"), "{name}: {refused}");
        std::thread::sleep(Duration::from_millis(200));
        if started.elapsed() < Duration::from_secs(5) {
            continue;
        }
        let Ok(ready) = api("/api/v1/alerts", None) else {
            continue;
        };
        let pending = ready["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|alert| {
                alert["labels"]["alertname"] == TOKEN_ALERT && alert["state"] == "pending"
            });
        seen.clear();
        let queries = QUERIES
            .iter()
            .map(|query| query.replace("JOB", &job))
            .chain(dashboard.iter().cloned());
        for query in queries {
            let answer = api("/api/v1/query", Some(&query))?;
            let results = answer["data"]["result"].as_array().map_or(0, Vec::len);
            seen.push((query, results));
        }
        if pending && seen.iter().all(|(_, results)| *results > 0) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "{name}: after 60 s of load, {TOKEN_ALERT} pending: {pending}; queries and their series: {seen:?}"
        );
    }
    let _ = plugin.terminate();
    Ok(format!(
        "{name}: Prometheus scraped it and {TOKEN_ALERT} was pending after {:.0} s; \
         {} queries (alerts, runbooks, dashboard) answered",
        started.elapsed().as_secs_f64(),
        seen.len()
    ))
}
