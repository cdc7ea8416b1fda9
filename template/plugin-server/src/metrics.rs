//! Prometheus metrics at `GET /metrics`: request counts and latency
//! histograms by ApplicationSet and status, in the text exposition format.
//! No client library: a few counters behind a mutex are all a plugin needs.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::dev::ServiceResponse;
use actix_web::http::header::ContentType;
use actix_web::{HttpMessage, HttpResponse, web};

use crate::handlers::{ApplicationSetName, GET_PARAMS_PATH};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 25.0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    /// By ApplicationSet, then status: looked up by `&str`, so a request
    /// allocates only for an ApplicationSet never seen before.
    series: Mutex<BTreeMap<String, BTreeMap<u16, Histogram>>>,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    /// Records one `getparams` request.
    pub fn record(&self, application_set: &str, status: u16, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let by_status = match series.get_mut(application_set) {
            Some(by_status) => by_status,
            None => series.entry(application_set.to_owned()).or_default(),
        };
        let histogram = by_status.entry(status).or_default();
        histogram.count += 1;
        histogram.sum += seconds;
        for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        out.push_str(
            "# HELP plugin_requests_total getparams requests by ApplicationSet and status.\n",
        );
        out.push_str("# TYPE plugin_requests_total counter\n");
        let all = || {
            series.iter().flat_map(|(application_set, by_status)| {
                by_status
                    .iter()
                    .map(move |(status, histogram)| (labels(application_set, *status), histogram))
            })
        };
        for (labels, histogram) in all() {
            let _ = writeln!(out, "plugin_requests_total{{{labels}}} {}", histogram.count);
        }
        out.push_str("# HELP plugin_request_duration_seconds getparams latency by ApplicationSet and status.\n");
        out.push_str("# TYPE plugin_request_duration_seconds histogram\n");
        for (labels, histogram) in all() {
            for (count, bound) in histogram.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "plugin_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "plugin_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "plugin_request_duration_seconds_sum{{{labels}}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "plugin_request_duration_seconds_count{{{labels}}} {}",
                histogram.count
            );
        }
        out
    }
}

fn labels(application_set: &str, status: u16) -> String {
    let escaped = application_set
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("application_set=\"{escaped}\",status=\"{status}\"")
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

    #[test]
    fn counts_and_buckets() {
        let metrics = Metrics::default();
        metrics.record("shop", 200, Duration::from_millis(3));
        metrics.record("shop", 200, Duration::from_millis(30));
        metrics.record("a\"b", 500, Duration::from_secs(30));
        let text = metrics.render();
        assert!(
            text.contains("plugin_requests_total{application_set=\"shop\",status=\"200\"} 2\n")
        );
        assert!(
            text.contains("plugin_requests_total{application_set=\"a\\\"b\",status=\"500\"} 1\n")
        );
        assert!(text.contains(
            "plugin_request_duration_seconds_bucket{application_set=\"shop\",status=\"200\",le=\"0.005\"} 1\n"
        ));
        assert!(text.contains(
            "plugin_request_duration_seconds_bucket{application_set=\"shop\",status=\"200\",le=\"0.05\"} 2\n"
        ));
        assert!(text.contains(
            "plugin_request_duration_seconds_bucket{application_set=\"a\\\"b\",status=\"500\",le=\"25\"} 0\n"
        ));
        assert!(text.contains(
            "plugin_request_duration_seconds_count{application_set=\"a\\\"b\",status=\"500\"} 1\n"
        ));
    }
}
