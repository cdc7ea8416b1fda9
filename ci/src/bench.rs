//! `template-ci bench`: the rendered plugin under `wrk`, beside a plain
//! Python `http.server` version of the contract and nginx answering a fixed
//! body, with the same load in the same run. Prints a Markdown table and
//! writes it, with an SVG chart, to `target/bench/`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::argocd::Controller;
use crate::command::run_command;
use crate::example::Example;
use crate::load::{peak_rss_kib, rss_kib};
use crate::project::free_port;

pub const TOKEN: &str = "bench-token-5b0f8e2d61c94a7f";

#[derive(Debug, Clone)]
pub struct Options {
    pub seconds: u64,
    pub connections: u32,
    pub out: PathBuf,
}

/// One server's numbers under `wrk`.
#[derive(Debug, Clone, Default)]
pub struct Load {
    pub name: String,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    pub errors: u64,
    pub non_2xx: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub loads: Vec<Load>,
    pub idle_rss_kib: u64,
    pub peak_rss_kib: u64,
    pub ready_ms: f64,
    pub binary_bytes: u64,
    /// The same plugin with `tls`.
    pub tls_idle_rss_kib: u64,
    pub tls_peak_rss_kib: u64,
    pub tls_binary_bytes: u64,
    pub dependencies: usize,
    pub machine: String,
    pub options: String,
}

/// A server process, ended on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(command: &mut Command) -> Result<Server, String> {
    let line = crate::command::describe(command);
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Server)
        .map_err(|e| format!("cannot start {line}: {e}"))
}

/// Waits until `addr` answers the example request with the example's
/// answer (over HTTPS when `tls` is given).
fn wait_ready(
    addr: SocketAddr,
    server: &mut Server,
    example: &Example,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        let mut controller = match tls {
            Some(config) => Controller::https(addr, TOKEN, Arc::clone(config)),
            None => Controller::new(addr, TOKEN),
        };
        if controller
            .post(&example.request)
            .is_ok_and(|sets| sets == example.sets)
        {
            return Ok(started.elapsed());
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            return Err(format!("the server on {addr} exited: {status}"));
        }
        if started.elapsed() > Duration::from_secs(10) {
            return Err(format!("nothing answered on {addr} within 10 s"));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Runs `wrk` against `url` and parses its report.
fn wrk(name: &str, url: &str, script: &Path, options: &Options) -> Result<Load, String> {
    let output = run_command(Command::new("wrk").args([
        "-t1",
        &format!("-c{}", options.connections),
        &format!("-d{}s", options.seconds),
        "--latency",
        "-s",
        &script.display().to_string(),
        url,
    ]))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let number_after = |label: &str| -> Option<f64> {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.trim_end_matches(',').parse().ok())
    };
    let latency = |label: &str| -> f64 {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .map(str::trim)
            .map_or(0.0, parse_duration_ms)
    };
    let socket_errors: u64 = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("Socket errors:"))
        .map_or(0, |rest| {
            rest.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        });
    let requests = text
        .lines()
        .find(|line| line.contains(" requests in "))
        .and_then(|line| line.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Ok(Load {
        name: name.to_owned(),
        requests_per_second: number_after("Requests/sec:")
            .ok_or_else(|| format!("wrk printed no rate:\n{text}"))?,
        p50_ms: latency("50%"),
        p99_ms: latency("99%"),
        requests,
        errors: socket_errors,
        non_2xx: number_after("Non-2xx or 3xx responses:").unwrap_or(0.0) as u64,
    })
}

/// `250.00us`, `1.20ms`, `2.00s` in milliseconds.
fn parse_duration_ms(text: &str) -> f64 {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let value: f64 = text[..split].parse().unwrap_or(0.0);
    match &text[split..] {
        "us" => value / 1000.0,
        "ms" => value,
        "s" => value * 1000.0,
        "m" => value * 60_000.0,
        _ => value,
    }
}

fn nginx_config(dir: &Path, port: u16, access_log: bool, answer: &str) -> String {
    let log = if access_log {
        format!("access_log {}/access.log;", dir.display())
    } else {
        "access_log off;".to_owned()
    };
    format!(
        "worker_processes auto;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  {log}\n  client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n\
           fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
           server {{\n    listen 127.0.0.1:{port};\n    location = /api/v1/getparams.execute {{\n\
               if ($http_authorization != \"Bearer {TOKEN}\") {{ return 403; }}\n\
               default_type application/json;\n      return 200 '{answer}';\n    }}\n  }}\n}}\n",
        dir = dir.display()
    )
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}/api/v1/getparams.execute")
}

/// Runs the whole benchmark against the plugin `binary` built from
/// `project`, loading each server with the project's example request; and
/// with `tls_binary` (the same plugin rendered with `tls`) HTTPS against
/// HTTP, kept alive and with a new connection per request.
pub fn run(
    binary: &Path,
    tls_binary: &Path,
    project: &Path,
    python_plugin: &Path,
    options: &Options,
) -> Result<Report, String> {
    let example = Example::from_binary(binary, &[])?;
    // The answer nginx and the Python server return, as the plugin writes it.
    let answer = serde_json::json!({"output": {"parameters": example.sets}}).to_string();
    let body = example.request.to_string();
    for tool in ["wrk", "nginx", "python3"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            return Err(format!(
                "{tool} is not installed (Debian: apt-get install wrk nginx-light python3)"
            ));
        }
    }
    let dir = &options.out;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let token_file = dir.join("token");
    fs_err::write(&token_file, TOKEN).map_err(|e| e.to_string())?;
    let script = dir.join("post.lua");
    let post = format!(
        "wrk.method = \"POST\"\nwrk.body = '{body}\\n'\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"Authorization\"] = \"Bearer {TOKEN}\"\n\
         wrk.headers[\"User-Agent\"] = \"argocd-applicationset\"\n\
         wrk.headers[\"Accept-Encoding\"] = \"gzip\"\n"
    );
    fs_err::write(&script, &post).map_err(|e| e.to_string())?;
    // A new connection per request: with TLS, a full handshake each.
    let storm = dir.join("post-close.lua");
    fs_err::write(
        &storm,
        format!("{post}wrk.headers[\"Connection\"] = \"close\"\n"),
    )
    .map_err(|e| e.to_string())?;

    let mut report = Report {
        binary_bytes: fs_err::metadata(binary).map_err(|e| e.to_string())?.len(),
        dependencies: dependency_count(project)?,
        machine: machine(),
        options: format!(
            "wrk -t1 -c{} -d{}s, on the same machine as the servers",
            options.connections, options.seconds
        ),
        ..Report::default()
    };

    // The plugin, as deployed: default workers, RUST_LOG=info (one log line a request).
    let plugin = |binary: &Path, addr: SocketAddr| {
        let mut command = Command::new(binary);
        command
            .env("PLUGIN_TOKEN_FILE", &token_file)
            .env("PLUGIN_LISTEN_ADDR", addr.to_string())
            .env("PLUGIN_METRICS_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "info");
        command
    };
    let mut ready = Vec::new();
    for _ in 0..9 {
        let addr = free_port();
        let mut server = spawn(&mut plugin(binary, addr))?;
        ready.push(wait_ready(addr, &mut server, &example, None)?.as_secs_f64() * 1000.0);
    }
    report.ready_ms = crate::load::percentile(&ready, 50.0);

    let addr = free_port();
    let mut server = spawn(&mut plugin(binary, addr))?;
    wait_ready(addr, &mut server, &example, None)?;
    std::thread::sleep(Duration::from_millis(300));
    report.idle_rss_kib = rss_kib(server.0.id()).unwrap_or(0);
    report.loads.push(wrk(
        "plugin (Rust, this template)",
        &url(addr),
        &script,
        options,
    )?);
    report.peak_rss_kib = peak_rss_kib(server.0.id()).unwrap_or(0);
    report.loads.push(wrk(
        "plugin, a new connection per request",
        &url(addr),
        &storm,
        options,
    )?);
    drop(server);

    // The same plugin rendered with `tls`, serving a certificate of a test CA.
    let ca = crate::tls::TestCa::get();
    let pair = ca.issue(dir, "bench")?;
    let addr = free_port();
    let mut server = spawn(
        plugin(tls_binary, addr)
            .env("PLUGIN_TLS_CERT_FILE", &pair.cert)
            .env("PLUGIN_TLS_KEY_FILE", &pair.key),
    )?;
    let https = format!("https://{addr}/api/v1/getparams.execute");
    wait_ready(addr, &mut server, &example, Some(&ca.client()))?;
    std::thread::sleep(Duration::from_millis(300));
    report.tls_idle_rss_kib = rss_kib(server.0.id()).unwrap_or(0);
    report
        .loads
        .push(wrk("plugin over HTTPS (tls)", &https, &script, options)?);
    report.loads.push(wrk(
        "plugin over HTTPS, a new connection (handshake) per request",
        &https,
        &storm,
        options,
    )?);
    report.tls_peak_rss_kib = peak_rss_kib(server.0.id()).unwrap_or(0);
    report.tls_binary_bytes = fs_err::metadata(tls_binary)
        .map_err(|e| e.to_string())?
        .len();
    drop(server);

    for (name, access_log) in [
        ("nginx, fixed body, no access log", false),
        ("nginx, fixed body, access log", true),
    ] {
        let nginx_dir = dir.join(if access_log { "nginx-log" } else { "nginx" });
        fs_err::create_dir_all(&nginx_dir).map_err(|e| e.to_string())?;
        let addr = free_port();
        let config = nginx_dir.join("nginx.conf");
        fs_err::write(
            &config,
            nginx_config(&nginx_dir, addr.port(), access_log, &answer),
        )
        .map_err(|e| e.to_string())?;
        let mut server = spawn(
            Command::new("nginx")
                .arg("-c")
                .arg(&config)
                .args(["-g", "daemon off;"]),
        )?;
        wait_ready(addr, &mut server, &example, None)?;
        report.loads.push(wrk(name, &url(addr), &script, options)?);
    }

    let addr = free_port();
    let answer_file = dir.join("answer.json");
    fs_err::write(&answer_file, &answer).map_err(|e| e.to_string())?;
    let mut server = spawn(
        Command::new("python3")
            .arg(python_plugin)
            .arg(addr.port().to_string())
            .arg(&token_file)
            .arg(&answer_file),
    )?;
    wait_ready(addr, &mut server, &example, None)?;
    report.loads.push(wrk(
        "Python http.server (upstream approach)",
        &url(addr),
        &script,
        options,
    )?);
    drop(server);

    fs_err::write(dir.join("results.md"), markdown(&report)).map_err(|e| e.to_string())?;
    fs_err::write(dir.join("results.svg"), svg(&report)).map_err(|e| e.to_string())?;
    Ok(report)
}

/// `cargo tree --prefix none | sort -u | wc -l` in the project.
fn dependency_count(project: &Path) -> Result<usize, String> {
    let output = run_command(
        Command::new("cargo")
            .args(["tree", "--prefix", "none", "--locked"])
            .current_dir(project),
    )?;
    let lines: std::collections::BTreeSet<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    Ok(lines.len())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|name| name.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({cpu}), Linux, loopback")
}

impl Report {
    fn load(&self, prefix: &str) -> Option<&Load> {
        self.loads.iter().find(|l| l.name.starts_with(prefix))
    }

    /// One load's requests/s over another's, from the same run.
    pub fn between(&self, load: &str, other: &str) -> f64 {
        match (self.load(load), self.load(other)) {
            (Some(load), Some(other)) if other.requests_per_second > 0.0 => {
                load.requests_per_second / other.requests_per_second
            }
            _ => 0.0,
        }
    }

    /// The plugin's requests/s over another server's, from the same run.
    pub fn ratio(&self, other: &str) -> f64 {
        match (
            self.load("plugin"),
            self.loads
                .iter()
                .find(|l| l.name == other || l.name.starts_with(other)),
        ) {
            (Some(plugin), Some(other)) if other.requests_per_second > 0.0 => {
                plugin.requests_per_second / other.requests_per_second
            }
            _ => 0.0,
        }
    }
}

pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {}. Load: {}.\n",
        report.machine, report.options
    );
    out.push_str(
        "| server | requests/s | p50 | p99 | requests | errors | non-2xx | plugin ÷ this |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    let plugin_rate = report.load("plugin").map_or(0.0, |l| l.requests_per_second);
    for load in &report.loads {
        let ratio = if load.requests_per_second > 0.0 {
            plugin_rate / load.requests_per_second
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {} | {} | {} | {ratio:.2}× |",
            load.name,
            load.requests_per_second,
            load.p50_ms,
            load.p99_ms,
            load.requests,
            load.errors,
            load.non_2xx
        );
    }
    let _ = writeln!(
        out,
        "\n| plugin | value |\n|---|---:|\n| idle RSS | {:.1} MiB |\n| peak RSS under load | {:.1} MiB |\n\
         | exec to ready (median of 9) | {:.1} ms |\n| release binary | {:.2} MiB |\n\
         | dependencies (`cargo tree --prefix none \\| sort -u`) | {} |\n\
         | with `tls`: idle RSS | {:.1} MiB |\n| with `tls`: peak RSS under load | {:.1} MiB |\n\
         | with `tls`: release binary | {:.2} MiB |\n\
         | HTTPS ÷ HTTP, kept alive | {:.2}× |\n| HTTPS ÷ HTTP, a new connection per request | {:.2}× |",
        report.idle_rss_kib as f64 / 1024.0,
        report.peak_rss_kib as f64 / 1024.0,
        report.ready_ms,
        report.binary_bytes as f64 / (1024.0 * 1024.0),
        report.dependencies,
        report.tls_idle_rss_kib as f64 / 1024.0,
        report.tls_peak_rss_kib as f64 / 1024.0,
        report.tls_binary_bytes as f64 / (1024.0 * 1024.0),
        report.between("plugin over HTTPS (tls)", "plugin (Rust"),
        report.between("plugin over HTTPS, a new", "plugin, a new"),
    );
    out
}

/// A horizontal bar chart of requests/s.
pub fn svg(report: &Report) -> String {
    let width = 760.0;
    let bar_left = 300.0;
    let max = report
        .loads
        .iter()
        .map(|l| l.requests_per_second)
        .fold(1.0, f64::max);
    let height = 40 + 34 * report.loads.len();
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <text x=\"10\" y=\"22\" font-weight=\"bold\">Requests per second, same load, same run ({})</text>\n",
        escape(&report.options)
    );
    for (i, load) in report.loads.iter().enumerate() {
        let y = 40 + 34 * i;
        let length = (width - bar_left - 90.0) * load.requests_per_second / max;
        let colour = if load.name.starts_with("plugin") {
            "#c0392b"
        } else {
            "#7f8c8d"
        };
        let _ = writeln!(
            out,
            "<text x=\"10\" y=\"{}\">{}</text><rect x=\"{bar_left}\" y=\"{y}\" width=\"{length:.1}\" height=\"22\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{}\">{:.0}</text>",
            y + 16,
            escape(&load.name),
            bar_left + length + 6.0,
            y + 16,
            load.requests_per_second
        );
    }
    out.push_str("</svg>\n");
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_durations() {
        assert_eq!(parse_duration_ms("250.00us"), 0.25);
        assert_eq!(parse_duration_ms("1.50ms"), 1.5);
        assert_eq!(parse_duration_ms("2.00s"), 2000.0);
    }

    #[test]
    fn writes_a_table_and_a_chart() {
        let report = Report {
            loads: vec![
                Load {
                    name: "plugin (Rust)".into(),
                    requests_per_second: 80.0,
                    ..Load::default()
                },
                Load {
                    name: "nginx".into(),
                    requests_per_second: 100.0,
                    ..Load::default()
                },
            ],
            ..Report::default()
        };
        assert!((report.ratio("nginx") - 0.8).abs() < 1e-9);
        assert!(markdown(&report).contains("| nginx | 100 |"));
        assert!(markdown(&report).contains("0.80×"));
        assert_eq!(svg(&report).matches("<rect").count(), 2);
    }
}
