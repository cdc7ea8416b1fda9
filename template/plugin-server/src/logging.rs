//! Where log lines go and how they look: text for people (`cargo run`, the
//! default), or with `PLUGIN_LOG_FORMAT=json` one JSON object per line for
//! log pipelines (the Deployment sets it): `time` (RFC 3339, UTC),
//! `level`, `target`, `message`, and the fields a line carries (the access
//! log's `method`, `path`, `status`, `duration_ms`, `applicationSet`,
//! `error`). `RUST_LOG` filters either, as env_logger reads it.

use std::fmt::Write as _;
use std::io::Write;

use log::kv::{Key, Value, VisitSource};

/// The variable that chooses the format.
pub const FORMAT_VARIABLE: &str = "PLUGIN_LOG_FORMAT";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl Format {
    /// `PLUGIN_LOG_FORMAT`: `text` (or unset, or blank) or `json`.
    pub fn from_env() -> Result<Self, String> {
        Self::parse(std::env::var(FORMAT_VARIABLE).ok().as_deref())
    }

    fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim) {
            None | Some("" | "text") => Ok(Self::Text),
            Some("json") => Ok(Self::Json),
            Some(other) => Err(format!(
                "{FORMAT_VARIABLE}={other:?} is invalid: it must be text or json"
            )),
        }
    }
}

/// Starts logging to stderr in `format`, filtered by `RUST_LOG` (default
/// `info`). Does nothing when a logger is already set (several runs in one
/// test process).
pub fn init(format: Format) {
    let env = env_logger::Env::default().default_filter_or("info");
    let mut builder = env_logger::Builder::from_env(env);
    if format == Format::Json {
        builder.format(|buf, record| {
            let line = json_line(
                &buf.timestamp_millis().to_string(),
                record.level().as_str(),
                record.target(),
                &record.args().to_string(),
                record.key_values(),
            );
            writeln!(buf, "{line}")
        });
        // A panic (a generator's, caught and answered with a 500) is
        // reported through the log, as one more JSON line.
        std::panic::set_hook(Box::new(|info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            let location = info.location().map(ToString::to_string).unwrap_or_default();
            log::error!(target: "panic", location = location.as_str(); "panicked: {message}");
        }));
    }
    let _ = builder.try_init();
}

/// A line with no fields.
const NO_FIELDS: [(&str, &str); 0] = [];

/// A line written outside `log` (why the plugin stopped: `RUST_LOG` must
/// not hide it), in `format`.
pub fn fatal(format: Format, message: &str) -> String {
    match format {
        Format::Text => format!("error: {message}"),
        Format::Json => json_line(
            &rfc3339_millis(std::time::SystemTime::now()),
            "ERROR",
            "plugin_server",
            message,
            &NO_FIELDS,
        ),
    }
}

/// `2026-12-07T17:25:01.123Z`, as env_logger writes its timestamps.
fn rfc3339_millis(time: std::time::SystemTime) -> String {
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (days, rest) = (since.as_secs() / 86_400, since.as_secs() % 86_400);
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// One JSON object; strings escaped by serde_json, so no client text can
/// end the line or forge a field.
fn json_line(
    time: &str,
    level: &str,
    target: &str,
    message: &str,
    fields: &dyn log::kv::Source,
) -> String {
    let mut line = String::from("{");
    for (key, value) in [
        ("time", time),
        ("level", level),
        ("target", target),
        ("message", message),
    ] {
        push_pair(&mut line, key, &serde_json::Value::from(value));
    }
    let mut visitor = Fields(&mut line);
    let _ = fields.visit(&mut visitor);
    line.push('}');
    line
}

fn push_pair(line: &mut String, key: &str, value: &serde_json::Value) {
    if line.len() > 1 {
        line.push(',');
    }
    let _ = write!(line, "{}:{value}", serde_json::Value::from(key));
}

/// Writes a line's fields as JSON members, numbers as numbers.
struct Fields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let json = if let Some(n) = value.to_u64() {
            serde_json::Value::from(n)
        } else if let Some(n) = value.to_i64() {
            serde_json::Value::from(n)
        } else if let Some(x) = value.to_f64() {
            serde_json::Value::from(x)
        } else if let Some(b) = value.to_bool() {
            serde_json::Value::from(b)
        } else {
            serde_json::Value::from(value.to_string())
        };
        push_pair(self.0, key.as_str(), &json);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_format_is_text_unless_json_is_asked_for() {
        assert_eq!(Format::parse(None), Ok(Format::Text));
        assert_eq!(Format::parse(Some(" ")), Ok(Format::Text));
        assert_eq!(Format::parse(Some("text")), Ok(Format::Text));
        assert_eq!(Format::parse(Some("json")), Ok(Format::Json));
        let error = Format::parse(Some("xml")).unwrap_err();
        assert!(error.contains("PLUGIN_LOG_FORMAT=\"xml\""), "{error}");
    }

    #[test]
    fn a_line_is_one_object_whatever_the_client_sent() {
        let forged = "x\"}\n{\"level\":\"ERROR\",\"message\":\"forged";
        let fields: &[(&str, Value)] = &[
            ("status", Value::from(403u16)),
            ("duration_ms", Value::from(1.5f64)),
            ("applicationSet", Value::from(forged)),
        ];
        let line = json_line(
            "2026-12-07T00:00:00.000Z",
            "INFO",
            "t",
            "m \"quoted\"",
            &fields,
        );
        assert!(!line.contains('\n'), "{line}");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            parsed,
            json!({"time": "2026-12-07T00:00:00.000Z", "level": "INFO", "target": "t",
                   "message": "m \"quoted\"", "status": 403, "duration_ms": 1.5,
                   "applicationSet": forged})
        );
    }

    #[test]
    fn times_are_rfc_3339_in_utc() {
        let at = |secs: u64, millis: u64| {
            rfc3339_millis(
                std::time::UNIX_EPOCH
                    + std::time::Duration::from_secs(secs)
                    + std::time::Duration::from_millis(millis),
            )
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_796_663_103, 123), "2026-12-07T17:05:03.123Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
    }

    #[test]
    fn a_fatal_line_is_json_too() {
        let line = fatal(Format::Json, "cannot read \"token\"\nat all");
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["level"], "ERROR");
        assert_eq!(parsed["message"], "cannot read \"token\"\nat all");
        assert_eq!(fatal(Format::Text, "x"), "error: x");
    }
}
