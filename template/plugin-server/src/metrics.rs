//! Prometheus metrics at `GET /metrics`: request counts by ApplicationSet
//! and status, and latency histograms by status; and the process: its
//! build, token reloads, connections, requests in flight, and the cache.
//! In the text exposition format. No client library: a few counters behind
//! a mutex are all a plugin needs.
//!
//! Bounded whatever clients send: at most [`MAX_APPLICATION_SETS`]
//! ApplicationSet label values (the rest are counted under [`OTHER`]), each
//! at most [`MAX_LABEL_LEN`] bytes; latency is by status alone.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServiceResponse;
use actix_web::http::header::ContentType;
use actix_web::{HttpMessage, HttpResponse, web};

use crate::auth::TokenStore;
use crate::cache::CacheStats;
use crate::connection::{Closed, ConnectionStats};
use crate::handlers::{ApplicationSetName, GET_PARAMS_PATH, cut};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 25.0,
];

/// The most ApplicationSet label values kept.
pub const MAX_APPLICATION_SETS: usize = 200;
/// The label value counting every ApplicationSet beyond the first
/// [`MAX_APPLICATION_SETS`].
pub const OTHER: &str = "__other__";
/// The longest ApplicationSet label value, in bytes; longer names are cut.
pub const MAX_LABEL_LEN: usize = 100;

#[derive(Debug, Default, Clone)]
struct Series {
    /// Requests by ApplicationSet, then status: looked up by `&str`, so a
    /// request allocates only for an ApplicationSet never seen before.
    counts: BTreeMap<String, BTreeMap<u16, u64>>,
    latency: BTreeMap<u16, Histogram>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<Series>,
    in_flight: AtomicU64,
    process: Option<Process>,
}

/// What the metrics say about the process beyond its requests.
#[derive(Debug, Clone)]
pub struct Process {
    /// The plugin's version (its Cargo.toml's).
    pub version: &'static str,
    pub connections: Arc<ConnectionStats>,
    pub tokens: Arc<TokenStore>,
    /// With `PLUGIN_CACHE_TTL_SECS`.
    pub cache: Option<Arc<CacheStats>>,
    /// With HTTPS on the plugin's port.
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<crate::tls::Certificates>>,
}

/// A `getparams` request being served, counted while it lives.
pub struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        self.count += 1;
        self.sum += seconds;
        for (bucket, bound) in self.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// Its samples; `labels` is empty or ends with a comma.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (count, bound) in self.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {count}");
        }
        let count = self.count;
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
        let labels = match labels.trim_end_matches(',') {
            "" => String::new(),
            labels => format!("{{{labels}}}"),
        };
        let _ = writeln!(out, "{name}_sum{labels} {}", self.sum);
        let _ = writeln!(out, "{name}_count{labels} {count}");
    }
}

/// The generator's calls to other services, as it records them
/// ([`crate::record_upstream_call`]): by result, and their latency.
#[derive(Debug, Default)]
struct UpstreamCalls {
    /// By [`UPSTREAM_RESULTS`].
    results: [u64; 5],
    latency: Histogram,
}

/// The `result` label of an upstream call: its status class, or `error`
/// for a call that got no answer.
const UPSTREAM_RESULTS: [&str; 5] = ["2xx", "3xx", "4xx", "5xx", "error"];

static UPSTREAM: Mutex<Option<UpstreamCalls>> = Mutex::new(None);

/// Records one call of the generator to another service.
pub fn record_upstream_call(elapsed: Duration, status: Option<u16>) {
    let result = match status {
        Some(200..=299) => 0,
        Some(300..=399) => 1,
        Some(400..=499) => 2,
        Some(500..=599) => 3,
        _ => 4,
    };
    let mut calls = UPSTREAM.lock().unwrap_or_else(|e| e.into_inner());
    let calls = calls.get_or_insert_with(UpstreamCalls::default);
    calls.results[result] += 1;
    calls.latency.observe(elapsed.as_secs_f64());
}

/// The upstream families, once the generator has recorded a call.
fn render_upstream(out: &mut String) {
    let calls = UPSTREAM.lock().unwrap_or_else(|e| e.into_inner());
    let Some(calls) = calls.as_ref() else {
        return;
    };
    out.push_str(
        "# HELP plugin_upstream_requests_total The generator's calls to other services, by \
         status class (error: no answer).\n# TYPE plugin_upstream_requests_total counter\n",
    );
    for (result, count) in UPSTREAM_RESULTS.iter().zip(calls.results) {
        let _ = writeln!(
            out,
            "plugin_upstream_requests_total{{result=\"{result}\"}} {count}"
        );
    }
    out.push_str(
        "# HELP plugin_upstream_request_duration_seconds The generator's calls to other \
         services: time to the answer's head.\n\
         # TYPE plugin_upstream_request_duration_seconds histogram\n",
    );
    calls
        .latency
        .render(out, "plugin_upstream_request_duration_seconds", "");
}

impl Metrics {
    pub fn new(process: Process) -> Self {
        Self {
            process: Some(process),
            ..Self::default()
        }
    }

    /// Counts a `getparams` request in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(&self.in_flight)
    }

    /// Records one `getparams` request.
    pub fn record(&self, application_set: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let label = cut(application_set, MAX_LABEL_LEN);
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let key = if series.counts.contains_key(label) || series.counts.len() < MAX_APPLICATION_SETS
        {
            label
        } else {
            OTHER
        };
        let by_status = match series.counts.get_mut(key) {
            Some(by_status) => by_status,
            None => series.counts.entry(key.to_owned()).or_default(),
        };
        *by_status.entry(status).or_default() += 1;
        series.latency.entry(status).or_default().observe(seconds);
    }

    /// The metrics in Prometheus' text format, rendered from a copy so that
    /// requests never wait for a scrape.
    pub fn render(&self) -> String {
        let series = self
            .series
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut out = String::new();
        out.push_str(
            "# HELP plugin_requests_total getparams requests by ApplicationSet and status.\n",
        );
        out.push_str("# TYPE plugin_requests_total counter\n");
        for (application_set, by_status) in &series.counts {
            let application_set = escape(application_set);
            for (status, count) in by_status {
                let _ = writeln!(
                    out,
                    "plugin_requests_total{{application_set=\"{application_set}\",status=\"{status}\"}} {count}"
                );
            }
        }
        out.push_str("# HELP plugin_request_duration_seconds getparams latency by status.\n");
        out.push_str("# TYPE plugin_request_duration_seconds histogram\n");
        for (status, histogram) in &series.latency {
            let labels = format!("status=\"{status}\",");
            histogram.render(&mut out, "plugin_request_duration_seconds", &labels);
        }
        self.render_process(&mut out);
        render_upstream(&mut out);
        out
    }

    fn render_process(&self, out: &mut String) {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        family(
            "plugin_requests_in_flight",
            "gauge",
            "getparams requests being served.",
            &[("", load(&self.in_flight))],
        );
        let Some(process) = &self.process else {
            return;
        };
        let features: Vec<&str> = [
            ("metrics", true),
            ("tls", cfg!(feature = "tls")),
            ("yaml", cfg!(feature = "yaml")),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        let build = format!(
            "{{version=\"{}\",features=\"{}\"}}",
            escape(process.version),
            features.join(",")
        );
        family(
            "plugin_build_info",
            "gauge",
            "The plugin's version and plugin-server's features; always 1.",
            &[(&build, 1)],
        );
        let reloads = process.tokens.reloads();
        family(
            "plugin_token_reloads_total",
            "counter",
            "Re-reads of the token file, by result (on failure the previous token stays).",
            &[
                ("{result=\"success\"}", load(&reloads.succeeded)),
                ("{result=\"failure\"}", load(&reloads.failed)),
            ],
        );
        family(
            "plugin_token_last_success_timestamp_seconds",
            "gauge",
            "When a usable token was last read from the token file (Unix time).",
            &[("", load(&reloads.last_success))],
        );
        let connections = &process.connections;
        family(
            "plugin_connections_open",
            "gauge",
            "Open connections of the plugin's port.",
            &[("", load(&connections.open))],
        );
        family(
            "plugin_connections_accepted_total",
            "counter",
            "Connections accepted on the plugin's port.",
            &[("", load(&connections.accepted))],
        );
        let closed: Vec<(String, u64)> = Closed::ALL
            .iter()
            .map(|why| {
                (
                    format!("{{reason=\"{}\"}}", why.label()),
                    load(&connections.closed[*why as usize]),
                )
            })
            .collect();
        let closed: Vec<(&str, u64)> = closed.iter().map(|(l, v)| (l.as_str(), *v)).collect();
        family(
            "plugin_connections_closed_total",
            "counter",
            "Connections the plugin closed: for a newcomer at the cap, on a deadline, on stopping.",
            &closed,
        );
        #[cfg(feature = "tls")]
        if let Some(certificates) = &process.tls {
            let stats = certificates.stats();
            family(
                "plugin_tls_certificate_expiry_timestamp_seconds",
                "gauge",
                "When the certificate the plugin's port serves expires (notAfter, Unix time).",
                &[("", load(&stats.not_after))],
            );
            family(
                "plugin_tls_reloads_total",
                "counter",
                "Re-reads of the certificate and key files, by result (on failure the previous \
                 pair stays).",
                &[
                    ("{result=\"success\"}", load(&stats.reloads_succeeded)),
                    ("{result=\"failure\"}", load(&stats.reloads_failed)),
                ],
            );
            family(
                "plugin_tls_handshake_failures_total",
                "counter",
                "Connections whose TLS handshake failed: a client that does not trust the \
                 certificate, plain HTTP, a slow or broken client.",
                &[("", load(&stats.handshakes_failed))],
            );
        }
        if let Some(cache) = &process.cache {
            family(
                "plugin_cache_requests_total",
                "counter",
                "getparams requests by how the cache met them.",
                &[
                    ("{result=\"hit\"}", load(&cache.hits)),
                    ("{result=\"miss\"}", load(&cache.misses)),
                    ("{result=\"coalesced\"}", load(&cache.coalesced)),
                ],
            );
        }
    }
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Records a finished `getparams` request, from the access log middleware.
pub fn observe<B>(response: &ServiceResponse<B>, elapsed: Duration) {
    let request = response.request();
    if request.path() != GET_PARAMS_PATH {
        return;
    }
    if let Some(metrics) = request.app_data::<web::Data<Metrics>>() {
        let extensions = request.extensions();
        let application_set = extensions
            .get::<ApplicationSetName>()
            .map_or("", |name| name.0.as_str());
        metrics.record(application_set, response.status().as_u16(), elapsed);
    }
}

pub async fn endpoint(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ContentType(
            "text/plain; version=0.0.4; charset=utf-8"
                .parse()
                .expect("a valid mime type"),
        ))
        .body(metrics.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generator's calls are counted by status class and timed; the
    /// families appear once a call is recorded (the only test that records).
    #[test]
    fn upstream_calls_by_result_and_latency() {
        crate::record_upstream_call(Duration::from_millis(3), Some(200));
        crate::record_upstream_call(Duration::from_millis(30), Some(503));
        crate::record_upstream_call(Duration::from_secs(2), None);
        let text = Metrics::default().render();
        for line in [
            "plugin_upstream_requests_total{result=\"2xx\"} 1\n",
            "plugin_upstream_requests_total{result=\"4xx\"} 0\n",
            "plugin_upstream_requests_total{result=\"5xx\"} 1\n",
            "plugin_upstream_requests_total{result=\"error\"} 1\n",
            "plugin_upstream_request_duration_seconds_bucket{le=\"0.005\"} 1\n",
            "plugin_upstream_request_duration_seconds_bucket{le=\"0.05\"} 2\n",
            "plugin_upstream_request_duration_seconds_bucket{le=\"+Inf\"} 3\n",
            "plugin_upstream_request_duration_seconds_count 3\n",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }

    #[test]
    fn counts_by_application_set_and_latency_by_status() {
        let metrics = Metrics::default();
        metrics.record("shop", 200, Duration::from_millis(3));
        metrics.record("shop", 200, Duration::from_millis(30));
        metrics.record("a\"b\nc", 500, Duration::from_secs(30));
        let text = metrics.render();
        assert!(
            text.contains("plugin_requests_total{application_set=\"shop\",status=\"200\"} 2\n")
        );
        assert!(
            text.contains(
                "plugin_requests_total{application_set=\"a\\\"b\\nc\",status=\"500\"} 1\n"
            )
        );
        assert!(
            text.contains(
                "plugin_request_duration_seconds_bucket{status=\"200\",le=\"0.005\"} 1\n"
            )
        );
        assert!(
            text.contains("plugin_request_duration_seconds_bucket{status=\"200\",le=\"0.05\"} 2\n")
        );
        assert!(
            text.contains("plugin_request_duration_seconds_bucket{status=\"500\",le=\"25\"} 0\n")
        );
        assert!(text.contains("plugin_request_duration_seconds_count{status=\"500\"} 1\n"));
    }

    #[test]
    fn application_sets_beyond_the_cap_share_one_series_and_names_are_cut() {
        let metrics = Metrics::default();
        for i in 0..MAX_APPLICATION_SETS + 100 {
            metrics.record(&format!("set-{i}"), 200, Duration::from_millis(1));
        }
        metrics.record("set-0", 200, Duration::from_millis(1));
        let text = metrics.render();
        let series = text
            .lines()
            .filter(|line| line.starts_with("plugin_requests_total{"))
            .count();
        assert_eq!(series, MAX_APPLICATION_SETS + 1);
        assert!(text.contains(&format!(
            "plugin_requests_total{{application_set=\"{OTHER}\",status=\"200\"}} 100\n"
        )));
        assert!(
            text.contains("plugin_requests_total{application_set=\"set-0\",status=\"200\"} 2\n")
        );

        let metrics = Metrics::default();
        metrics.record(&"é".repeat(200), 200, Duration::from_millis(1));
        let label = format!("application_set=\"{}\"", "é".repeat(MAX_LABEL_LEN / 2));
        assert!(metrics.render().contains(&label));
    }
}
