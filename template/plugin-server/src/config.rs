//! Settings, read from environment variables at start-up.

use std::fmt::Display;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The port of Argo CD's reference plugin; a project sets its own in `main.rs`.
pub const DEFAULT_PORT: u16 = 4355;
/// The port of the metrics socket unless `PLUGIN_METRICS_ADDR` says otherwise.
pub const DEFAULT_METRICS_PORT: u16 = 9090;

#[derive(Debug, Clone)]
pub struct Config {
    /// `PLUGIN_LISTEN_ADDR`, default `0.0.0.0:<the project's port>`.
    pub listen_addr: SocketAddr,
    /// `PLUGIN_METRICS_ADDR`, default port 9090 on the host of
    /// `PLUGIN_LISTEN_ADDR` (`0.0.0.0`): the socket serving `GET /metrics`
    /// alone (with the `metrics` feature). A plugin run on 127.0.0.1 keeps
    /// its metrics there too.
    pub metrics_addr: SocketAddr,
    /// `PLUGIN_TOKEN_FILE`, default `/var/run/argo/token`.
    pub token_file: PathBuf,
    /// `PLUGIN_MAX_BODY_BYTES`, default 1 MiB.
    pub max_body_bytes: usize,
    /// `PLUGIN_MAX_PARAMETER_SETS`, default 10,000: a larger answer is a 500,
    /// never a cut-off 2xx.
    pub max_parameter_sets: usize,
    /// `PLUGIN_MAX_REPLY_BYTES`, default 4 MiB: likewise for the reply's size.
    pub max_reply_bytes: usize,
    /// `PLUGIN_MAX_CONNECTIONS`, default 2,048: open connections at most
    /// (split among the workers); when full, an idle one is closed for a new
    /// one (one that never served a request first), and a new one is
    /// refused when all serve.
    pub max_connections: usize,
    /// `PLUGIN_GENERATOR_TIMEOUT_SECS`, default 25: below the controller's 30 s,
    /// so the operator sees our message rather than a client timeout.
    pub generator_timeout: Duration,
    /// `PLUGIN_WORKERS`, default one per CPU.
    pub workers: Option<usize>,
    /// `PLUGIN_CACHE_TTL_SECS`, default 0 (no cache): see `cache.rs`.
    pub cache_ttl: Option<Duration>,
    /// How often the token file is re-read.
    pub token_reload_interval: Duration,
    /// Time allowed to receive a request head: a connection's first from
    /// its opening (actix-http answers an empty 408), every later one from
    /// its first byte (`connection.rs` closes the connection).
    pub header_timeout: Duration,
    /// Time allowed to receive the request body; answered with a JSON 408.
    pub body_timeout: Duration,
    /// How long an idle keep-alive connection is kept: longer than the Go
    /// client's 90 s idle timeout, so the client closes first and never
    /// sends a request on a connection we are closing.
    pub keep_alive: Duration,
    /// `PLUGIN_DRAIN_SECS`, default 5: after SIGTERM, how long the plugin
    /// keeps serving with `Connection: close` on every answer, so clients
    /// leave its kept-alive connections before it closes them.
    pub drain: Duration,
    /// With the `tls` feature: the PEM files the plugin's port serves HTTPS
    /// from (`PLUGIN_TLS_CERT_FILE`, `PLUGIN_TLS_KEY_FILE`), unless
    /// `PLUGIN_TLS=off` on a loopback address (a sidecar of Argo CD's
    /// controller). Without the feature, `None`, and naming a file or
    /// `PLUGIN_TLS=on` stops the plugin: it would serve plain HTTP where
    /// HTTPS was asked for.
    pub tls: Option<TlsFiles>,
}

/// The certificate chain and private key of the plugin's port, in PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `PLUGIN_TLS_CERT_FILE`, default `/var/run/plugin-tls/tls.crt`: the
    /// certificate first, then any intermediates.
    pub cert: PathBuf,
    /// `PLUGIN_TLS_KEY_FILE`, default `/var/run/plugin-tls/tls.key`.
    pub key: PathBuf,
}

impl Default for TlsFiles {
    fn default() -> Self {
        // Where cert-manager's Secret is mounted (`tls.crt`, `tls.key`).
        Self {
            cert: PathBuf::from("/var/run/plugin-tls/tls.crt"),
            key: PathBuf::from("/var/run/plugin-tls/tls.key"),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            metrics_addr: SocketAddr::from(([0, 0, 0, 0], DEFAULT_METRICS_PORT)),
            token_file: PathBuf::from("/var/run/argo/token"),
            max_body_bytes: 1024 * 1024,
            max_parameter_sets: 10_000,
            max_reply_bytes: 4 * 1024 * 1024,
            max_connections: 2048,
            generator_timeout: Duration::from_secs(25),
            workers: None,
            cache_ttl: None,
            token_reload_interval: Duration::from_secs(2),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(5),
            keep_alive: Duration::from_secs(120),
            drain: Duration::from_secs(5),
            tls: cfg!(feature = "tls").then(TlsFiles::default),
        }
    }
}

impl Config {
    /// The defaults, listening on `0.0.0.0:<port>`.
    pub fn with_port(port: u16) -> Self {
        Self {
            listen_addr: SocketAddr::from(([0, 0, 0, 0], port)),
            ..Self::default()
        }
    }

    /// Time a graceful shutdown waits for in-flight requests: the longest a
    /// request may take. Keep `terminationGracePeriodSeconds` above it.
    pub fn shutdown_timeout(&self) -> Duration {
        self.body_timeout + self.generator_timeout
    }

    /// Reads the `PLUGIN_*` environment variables over `defaults`.
    pub fn from_env(defaults: Self) -> Result<Self, String> {
        Self::from_lookup(defaults, |name| std::env::var(name).ok())
    }

    /// Like [`Config::from_env`], with the variables coming from `lookup`.
    pub fn from_lookup(
        defaults: Self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let mut config = defaults;
        if let Some(addr) = parse::<SocketAddr>(&lookup, "PLUGIN_LISTEN_ADDR")? {
            config.listen_addr = addr;
            config.metrics_addr.set_ip(addr.ip());
        }
        if let Some(addr) = parse(&lookup, "PLUGIN_METRICS_ADDR")? {
            config.metrics_addr = addr;
        }
        if let Some(path) = lookup("PLUGIN_TOKEN_FILE").filter(|p| !p.is_empty()) {
            config.token_file = PathBuf::from(path);
        }
        // Every number has a range: the server adds and multiplies them
        // (deadlines, connection caps), and none may overflow.
        if let Some(bytes) = bounded(&lookup, "PLUGIN_MAX_BODY_BYTES", 1..=GIB)? {
            config.max_body_bytes = bytes;
        }
        if let Some(sets) = bounded(&lookup, "PLUGIN_MAX_PARAMETER_SETS", 1..=10_000_000)? {
            config.max_parameter_sets = sets;
        }
        if let Some(bytes) = bounded(&lookup, "PLUGIN_MAX_REPLY_BYTES", 1..=GIB)? {
            config.max_reply_bytes = bytes;
        }
        if let Some(connections) = bounded(&lookup, "PLUGIN_MAX_CONNECTIONS", 1..=1_000_000)? {
            config.max_connections = connections;
        }
        if let Some(secs) = bounded(&lookup, "PLUGIN_GENERATOR_TIMEOUT_SECS", 1..=HOUR)? {
            config.generator_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = bounded(&lookup, "PLUGIN_DRAIN_SECS", 0..=HOUR)? {
            config.drain = Duration::from_secs(secs);
        }
        config.workers = bounded(&lookup, "PLUGIN_WORKERS", 1..=1024)?;
        config.cache_ttl = bounded(&lookup, "PLUGIN_CACHE_TTL_SECS", 0..=24 * HOUR)?
            .filter(|secs| *secs > 0)
            .map(Duration::from_secs);
        let tls_file = |name: &str| lookup(name).filter(|path| !path.trim().is_empty());
        let (cert, key) = (
            tls_file("PLUGIN_TLS_CERT_FILE"),
            tls_file("PLUGIN_TLS_KEY_FILE"),
        );
        let switch = lookup("PLUGIN_TLS").map(|value| value.trim().to_owned());
        match switch.as_deref() {
            None | Some("" | "on") => {}
            // A sidecar: Argo CD calls it over the pod's loopback.
            Some("off") if config.tls.is_none() || config.listen_addr.ip().is_loopback() => {
                config.tls = None;
            }
            Some("off") => {
                return Err(format!(
                    "PLUGIN_TLS=off serves plain HTTP, which only a loopback address may \
                     (PLUGIN_LISTEN_ADDR={}): the token would cross the network in clear",
                    config.listen_addr
                ));
            }
            Some(other) => return Err(format!("PLUGIN_TLS={other:?} is invalid: on or off")),
        }
        match &mut config.tls {
            Some(files) => {
                files.cert = cert.map_or_else(|| files.cert.clone(), PathBuf::from);
                files.key = key.map_or_else(|| files.key.clone(), PathBuf::from);
            }
            None if cfg!(feature = "tls") => {}
            None if cert.is_some() || key.is_some() || switch.as_deref() == Some("on") => {
                return Err(
                    "PLUGIN_TLS_CERT_FILE, PLUGIN_TLS_KEY_FILE or PLUGIN_TLS=on is set, \
                            but this plugin was built without TLS (plugin-server's `tls` \
                            feature) and would serve plain HTTP. Render the project with \
                            tls=true, or unset them"
                        .into(),
                );
            }
            None => {}
        }
        Ok(config)
    }
}

const GIB: usize = 1 << 30;
const HOUR: u64 = 3600;

/// [`parse`], refused outside `range` with a message naming the variable.
fn bounded<T: FromStr + PartialOrd + Display>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    range: RangeInclusive<T>,
) -> Result<Option<T>, String>
where
    T::Err: Display,
{
    match parse(lookup, name)? {
        Some(value) if !range.contains(&value) => Err(format!(
            "{name}={value} is out of range: it must be from {} to {}",
            range.start(),
            range.end()
        )),
        value => Ok(value),
    }
}

fn parse<T: FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<T>, String>
where
    T::Err: Display,
{
    match lookup(name) {
        None => Ok(None),
        Some(value) if value.trim().is_empty() => Ok(None),
        Some(value) => value
            .trim()
            .parse()
            .map(Some)
            .map_err(|error| format!("{name}={value:?} is invalid: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Config, String> {
        Config::from_lookup(Config::with_port(8088), |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn defaults() {
        let config = from(&[]).unwrap();
        assert_eq!(config.listen_addr, "0.0.0.0:8088".parse().unwrap());
        assert_eq!(config.token_file, PathBuf::from("/var/run/argo/token"));
        assert_eq!(config.max_body_bytes, 1 << 20);
        assert_eq!(config.generator_timeout, Duration::from_secs(25));
        assert_eq!(config.cache_ttl, None);
    }

    #[test]
    fn reads_the_environment() {
        let config = from(&[
            ("PLUGIN_LISTEN_ADDR", "127.0.0.1:9000"),
            ("PLUGIN_METRICS_ADDR", "127.0.0.1:9001"),
            ("PLUGIN_TOKEN_FILE", "/tmp/t"),
            ("PLUGIN_MAX_BODY_BYTES", "10"),
            ("PLUGIN_GENERATOR_TIMEOUT_SECS", "3"),
            ("PLUGIN_WORKERS", "2"),
            ("PLUGIN_CACHE_TTL_SECS", "30"),
        ])
        .unwrap();
        assert_eq!(config.listen_addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(config.metrics_addr, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(config.token_file, PathBuf::from("/tmp/t"));
        assert_eq!(config.max_body_bytes, 10);
        assert_eq!(config.generator_timeout, Duration::from_secs(3));
        assert_eq!(config.workers, Some(2));
        assert_eq!(config.cache_ttl, Some(Duration::from_secs(30)));
    }

    /// Every numeric setting, at any value a `u64` or more can spell: in
    /// range it is taken, out of range it is refused naming the variable and
    /// its range, and what is taken never overflows where the server adds
    /// and multiplies it.
    #[test]
    fn numbers_out_of_range_are_refused_naming_the_variable() {
        let names = [
            "PLUGIN_MAX_BODY_BYTES",
            "PLUGIN_MAX_PARAMETER_SETS",
            "PLUGIN_MAX_REPLY_BYTES",
            "PLUGIN_MAX_CONNECTIONS",
            "PLUGIN_GENERATOR_TIMEOUT_SECS",
            "PLUGIN_DRAIN_SECS",
            "PLUGIN_WORKERS",
            "PLUGIN_CACHE_TTL_SECS",
        ];
        let values = [
            "0",
            "1",
            "3600",
            "1000000",
            "9223372036854775000",
            "18446744073709551615",
            "18446744073709551616",
            "-1",
        ];
        for name in names {
            for value in values {
                match from(&[(name, value)]) {
                    Ok(config) => {
                        let _ = config.shutdown_timeout() + config.header_timeout + config.drain;
                        let cap = config.max_connections;
                        let _ = cap + cap / 4 + config.max_body_bytes.max(config.max_reply_bytes);
                    }
                    Err(error) => {
                        assert!(error.starts_with(&format!("{name}=")), "{error}");
                        assert!(
                            error.contains("out of range: it must be from")
                                || error.contains("is invalid"),
                            "{error}"
                        );
                    }
                }
            }
            // The largest value of any of them is refused.
            assert!(from(&[(name, "18446744073709551615")]).is_err(), "{name}");
        }
        let error = from(&[("PLUGIN_GENERATOR_TIMEOUT_SECS", "18446744073709551615")]).unwrap_err();
        assert_eq!(
            error,
            "PLUGIN_GENERATOR_TIMEOUT_SECS=18446744073709551615 is out of range: \
             it must be from 1 to 3600"
        );
        assert!(from(&[("PLUGIN_DRAIN_SECS", "0")]).is_ok());
        assert!(
            from(&[("PLUGIN_CACHE_TTL_SECS", "0")])
                .unwrap()
                .cache_ttl
                .is_none()
        );
        assert!(from(&[("PLUGIN_WORKERS", "0")]).is_err());
    }

    /// Each range ends where the README says, both ends accepted and kept.
    #[test]
    fn each_number_is_kept_up_to_the_end_of_its_range() {
        let ends: [(&str, u64, u64); 8] = [
            ("PLUGIN_MAX_BODY_BYTES", 1, 1 << 30),
            ("PLUGIN_MAX_PARAMETER_SETS", 1, 10_000_000),
            ("PLUGIN_MAX_REPLY_BYTES", 1, 1 << 30),
            ("PLUGIN_MAX_CONNECTIONS", 1, 1_000_000),
            ("PLUGIN_GENERATOR_TIMEOUT_SECS", 1, 3600),
            ("PLUGIN_DRAIN_SECS", 0, 3600),
            ("PLUGIN_WORKERS", 1, 1024),
            ("PLUGIN_CACHE_TTL_SECS", 0, 86_400),
        ];
        let kept = |config: &Config, name: &str| -> u64 {
            match name {
                "PLUGIN_MAX_BODY_BYTES" => config.max_body_bytes as u64,
                "PLUGIN_MAX_PARAMETER_SETS" => config.max_parameter_sets as u64,
                "PLUGIN_MAX_REPLY_BYTES" => config.max_reply_bytes as u64,
                "PLUGIN_MAX_CONNECTIONS" => config.max_connections as u64,
                "PLUGIN_GENERATOR_TIMEOUT_SECS" => config.generator_timeout.as_secs(),
                "PLUGIN_DRAIN_SECS" => config.drain.as_secs(),
                "PLUGIN_WORKERS" => config.workers.unwrap_or(0) as u64,
                _ => config.cache_ttl.map_or(0, |ttl| ttl.as_secs()),
            }
        };
        for (name, low, high) in ends {
            for value in [low, high] {
                let config = from(&[(name, &value.to_string())]).unwrap();
                assert_eq!(kept(&config, name), value, "{name}={value}");
            }
            assert!(from(&[(name, &(high + 1).to_string())]).is_err(), "{name}");
            if low > 0 {
                assert!(from(&[(name, &(low - 1).to_string())]).is_err(), "{name}");
            }
        }
    }

    /// A graceful stop waits as long as the longest request may take.
    #[test]
    fn shutdown_waits_for_the_longest_request() {
        let config = from(&[("PLUGIN_GENERATOR_TIMEOUT_SECS", "7")]).unwrap();
        assert_eq!(
            config.shutdown_timeout(),
            config.body_timeout + Duration::from_secs(7)
        );
    }

    #[test]
    fn metrics_listen_on_the_plugins_host_unless_told_otherwise() {
        let local = from(&[("PLUGIN_LISTEN_ADDR", "127.0.0.1:4355")]).unwrap();
        assert_eq!(local.metrics_addr, "127.0.0.1:9090".parse().unwrap());
        let v6 = from(&[("PLUGIN_LISTEN_ADDR", "[::1]:4355")]).unwrap();
        assert_eq!(v6.metrics_addr, "[::1]:9090".parse().unwrap());
        let told = from(&[
            ("PLUGIN_LISTEN_ADDR", "127.0.0.1:4355"),
            ("PLUGIN_METRICS_ADDR", "0.0.0.0:9100"),
        ])
        .unwrap();
        assert_eq!(told.metrics_addr, "0.0.0.0:9100".parse().unwrap());
        assert_eq!(
            from(&[]).unwrap().metrics_addr,
            "0.0.0.0:9090".parse().unwrap()
        );
    }

    /// Set but blank is unset: the default stays.
    #[test]
    fn a_blank_variable_keeps_the_default() {
        let config = from(&[("PLUGIN_MAX_BODY_BYTES", "  "), ("PLUGIN_LISTEN_ADDR", "")]).unwrap();
        let defaults = Config::with_port(8088);
        assert_eq!(config.max_body_bytes, defaults.max_body_bytes);
        assert_eq!(config.listen_addr, defaults.listen_addr);
    }

    /// With `tls` the files have defaults and the variables name others;
    /// without it, naming a file stops the plugin rather than serve HTTP.
    #[test]
    fn tls_files_are_read_only_by_a_build_that_serves_tls() {
        let named = from(&[
            ("PLUGIN_TLS_CERT_FILE", "/certs/c.pem"),
            ("PLUGIN_TLS_KEY_FILE", ""),
        ]);
        if cfg!(feature = "tls") {
            assert_eq!(from(&[]).unwrap().tls, Some(TlsFiles::default()));
            let files = named.unwrap().tls.unwrap();
            assert_eq!(files.cert, PathBuf::from("/certs/c.pem"));
            assert_eq!(files.key, TlsFiles::default().key);
        } else {
            assert_eq!(from(&[]).unwrap().tls, None);
            let error = named.unwrap_err();
            assert!(error.contains("built without TLS"), "{error}");
            let error = from(&[("PLUGIN_TLS", "on")]).unwrap_err();
            assert!(error.contains("built without TLS"), "{error}");
        }
        // Off, on loopback alone, in either build.
        let sidecar = from(&[
            ("PLUGIN_TLS", "off"),
            ("PLUGIN_LISTEN_ADDR", "127.0.0.1:4355"),
        ]);
        assert_eq!(sidecar.unwrap().tls, None);
        let off = from(&[("PLUGIN_TLS", "off")]);
        if cfg!(feature = "tls") {
            let error = off.unwrap_err();
            assert!(error.contains("only a loopback address may"), "{error}");
        } else {
            assert_eq!(off.unwrap().tls, None);
        }
        let error = from(&[("PLUGIN_TLS", "yes")]).unwrap_err();
        assert!(error.contains("PLUGIN_TLS=\"yes\" is invalid"), "{error}");
    }

    #[test]
    fn names_the_bad_variable() {
        let error = from(&[("PLUGIN_MAX_BODY_BYTES", "lots")]).unwrap_err();
        assert!(error.contains("PLUGIN_MAX_BODY_BYTES"), "{error}");
        assert!(from(&[("PLUGIN_WORKERS", "0")]).is_err());
        assert!(from(&[("PLUGIN_LISTEN_ADDR", "1234")]).is_err());
    }
}
