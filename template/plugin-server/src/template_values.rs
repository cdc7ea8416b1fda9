//! What Argo CD's templates print for the values a generator returns.
//!
//! The controller decodes the reply without `UseNumber`, so every JSON
//! number becomes a Go `float64`, which templates print with `%v`:
//! `1234567` as `1.234567e+06`, `12345678901234567` as
//! `1.2345678901234568e+16`; `null` prints as `<no value>` (goTemplate) or
//! `<nil>` (flat mode). Such values are reported, never changed: a
//! generator that means an ID returns a string.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::go_print::go_print;
use crate::protocol::ParameterMap;

/// How often the server logs the same key of the same ApplicationSet.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(600);
/// How many (ApplicationSet, key) pairs the server remembers.
pub const WARNING_CAPACITY: usize = 1024;
/// At most this many distinct keys are reported per reply.
const MAX_PER_REPLY: usize = 16;

/// A value that Argo CD's templates do not see as the generator returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Surprise {
    /// Printed differently: a number through float64, or null.
    Printed {
        /// Where it is in the parameter set, list positions as `[]`: `build.id`.
        key: String,
        /// The value as the generator returned it (JSON).
        returned: String,
        /// What `{{ .key }}` prints in a goTemplate ApplicationSet.
        rendered: String,
        /// Whether Go's float64 cannot hold the integer exactly.
        precision_lost: bool,
    },
    /// A top-level key Argo CD sets itself: `generator` always, `values`
    /// when the ApplicationSet's generator has `values`.
    Reserved { key: String },
}

impl Surprise {
    pub fn key(&self) -> &str {
        match self {
            Self::Printed { key, .. } | Self::Reserved { key } => key,
        }
    }
}

impl fmt::Display for Surprise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (key, returned, rendered, precision_lost) = match self {
            Self::Reserved { key } if key == "generator" => {
                return write!(
                    f,
                    "`generator` is Argo CD's: it replaces the returned value with the \
                     ApplicationSet's input (generator.input.parameters)"
                );
            }
            Self::Reserved { key } => {
                return write!(
                    f,
                    "`{key}` is replaced by the ApplicationSet's own `{key}` when its plugin \
                     generator sets them, and reaches the template otherwise"
                );
            }
            Self::Printed {
                key,
                returned,
                rendered,
                precision_lost,
            } => (key, returned, rendered, *precision_lost),
        };
        if returned == "null" {
            return write!(
                f,
                "`{key}` is null: Argo CD's template prints <no value> (goTemplate) or <nil> \
                 (flat mode); leave the key out or return a string"
            );
        }
        write!(
            f,
            "`{key}` is {returned}: Argo CD decodes numbers as float64 and its template prints {rendered}"
        )?;
        if precision_lost {
            f.write_str(" (the integer does not survive float64)")?;
        }
        write!(f, "; return \"{returned}\" (a string) if it is an ID")
    }
}

/// The values of `sets` that Argo CD's templates do not see as the generator
/// returned them, one per key (at most [`MAX_PER_REPLY`] keys).
pub fn surprises<'a>(sets: impl IntoIterator<Item = &'a ParameterMap>) -> Vec<Surprise> {
    let mut found = BTreeMap::new();
    let mut path = String::new();
    for set in sets {
        for (key, value) in set {
            if matches!(key.as_str(), "generator" | "values") {
                found
                    .entry(key.clone())
                    .or_insert_with(|| Surprise::Reserved { key: key.clone() });
                continue;
            }
            walk(key, value, &mut path, &mut found);
        }
    }
    found.into_values().collect()
}

fn walk(segment: &str, value: &Value, path: &mut String, found: &mut BTreeMap<String, Surprise>) {
    let len = path.len();
    if !path.is_empty() && segment != "[]" {
        path.push('.');
    }
    path.push_str(segment);
    match value {
        Value::Array(items) => {
            for item in items {
                walk("[]", item, path, found);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                walk(key, item, path, found);
            }
        }
        Value::Null | Value::Number(_) => {
            if found.len() < MAX_PER_REPLY
                && !found.contains_key(path.as_str())
                && let Some(surprise) = surprise(path, value)
            {
                found.insert(path.clone(), surprise);
            }
        }
        Value::Bool(_) | Value::String(_) => {}
    }
    path.truncate(len);
}

fn surprise(key: &str, value: &Value) -> Option<Surprise> {
    // The common case first, without formatting: small integers print as written.
    // unsigned_abs: `i64::MIN.abs()` overflows (a panic in debug builds),
    // and a generator may pass any input number through.
    if value.as_i64().is_some_and(|n| n.unsigned_abs() < 1_000_000) {
        return None;
    }
    let returned = value.to_string();
    let rendered = go_print(value);
    if returned == rendered {
        return None;
    }
    let precision_lost = match value {
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.unsigned_abs() > 1 << 53,
            (None, Some(u)) => u > 1 << 53,
            (None, None) => false,
        },
        _ => false,
    };
    Some(Surprise::Printed {
        key: key.to_owned(),
        returned,
        rendered,
        precision_lost,
    })
}

/// Logs [`surprises`] in a reply, once per ApplicationSet and key per
/// `interval`, remembering at most `capacity` of them.
#[derive(Debug)]
pub struct Warnings {
    interval: Duration,
    capacity: usize,
    last: Mutex<HashMap<(String, String), Instant>>,
}

impl Warnings {
    pub fn new(interval: Duration, capacity: usize) -> Self {
        Self {
            interval,
            capacity,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Warns about the surprises in `sets`, returned for `application_set`
    /// (already cut to a bounded length by the caller).
    pub fn check(&self, application_set: &str, sets: &[ParameterMap]) {
        let found = surprises(sets);
        if found.is_empty() {
            return;
        }
        for surprise in self.due(application_set, found, Instant::now()) {
            log::warn!(
                "ApplicationSet {}: {}",
                application_set.escape_debug(),
                surprise.to_string().escape_debug()
            );
        }
    }

    /// Those of `found` not warned about for `application_set` within the
    /// interval before `now`, remembered as warned at `now`; none once
    /// `capacity` pairs are remembered and none has aged out.
    fn due(&self, application_set: &str, found: Vec<Surprise>, now: Instant) -> Vec<Surprise> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let mut due = Vec::new();
        for surprise in found {
            let id = (application_set.to_owned(), surprise.key().to_owned());
            if last
                .get(&id)
                .is_some_and(|at| now.duration_since(*at) < self.interval)
            {
                continue;
            }
            if last.len() >= self.capacity && !last.contains_key(&id) {
                last.retain(|_, at| now.duration_since(*at) < self.interval);
                if last.len() >= self.capacity {
                    break;
                }
            }
            last.insert(id, now);
            due.push(surprise);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(value: Value) -> ParameterMap {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn flags_what_argo_cd_prints_differently_once_per_key() {
        let sets = [
            set(
                json!({"id": 1234567, "name": "a", "n": 42, "build": {"ids": [12345678901234567u64]}}),
            ),
            set(json!({"id": 7654321, "nothing": null, "ratio": 0.5})),
        ];
        let found = surprises(&sets);
        let keys: Vec<&str> = found.iter().map(Surprise::key).collect();
        assert_eq!(keys, ["build.ids[]", "id", "nothing"]);
        let Surprise::Printed {
            rendered,
            precision_lost,
            ..
        } = &found[1]
        else {
            panic!("{found:?}")
        };
        assert_eq!(
            (rendered.as_str(), *precision_lost),
            ("1.234567e+06", false)
        );
        assert!(matches!(
            found[0],
            Surprise::Printed {
                precision_lost: true,
                ..
            }
        ));
        let message = found[1].to_string();
        assert!(
            message.contains("1.234567e+06") && message.contains("\"1234567\""),
            "{message}"
        );
        assert!(found[2].to_string().contains("<no value>"));
    }

    /// The extremes of every integer type: flagged, never an overflow.
    #[test]
    fn the_extreme_integers_are_flagged_without_overflow() {
        let found = surprises(&[set(
            json!({"min": i64::MIN, "max": i64::MAX, "umax": u64::MAX, "small": -999_999}),
        )]);
        let keys: Vec<&str> = found.iter().map(Surprise::key).collect();
        assert_eq!(keys, ["max", "min", "umax"]);
        assert!(found.iter().all(|surprise| matches!(
            surprise,
            Surprise::Printed {
                precision_lost: true,
                ..
            }
        )));
        assert_eq!(go_print(&json!(i64::MIN)), "-9.223372036854776e+18");
    }

    /// The edges: a million is the first integer printed in `%e` form;
    /// 2^53 is the last that float64 holds exactly.
    #[test]
    fn the_edges_of_printing_and_of_precision() {
        let keys = |value: Value| -> Vec<String> {
            surprises([&set(json!({ "v": value }))])
                .iter()
                .map(|s| s.key().to_owned())
                .collect()
        };
        assert!(keys(json!(999_999)).is_empty());
        assert!(keys(json!(-999_999)).is_empty());
        assert_eq!(keys(json!(1_000_000)), ["v"]);
        assert_eq!(keys(json!(-1_000_000)), ["v"]);
        let lost = |value: Value| match &surprises([&set(json!({ "v": value }))])[0] {
            Surprise::Printed { precision_lost, .. } => *precision_lost,
            other => panic!("{other:?}"),
        };
        assert!(!lost(json!(9_007_199_254_740_992_u64)));
        assert!(lost(json!(9_007_199_254_740_993_u64)));
        assert!(!lost(json!(-9_007_199_254_740_992_i64)));
        assert!(lost(json!(-9_007_199_254_740_993_i64)));
    }

    #[test]
    fn flags_the_keys_argo_cd_sets_itself() {
        let found = surprises([&set(json!({"generator": 1, "values": {"a": 1234567}}))]);
        assert_eq!(
            found,
            [
                Surprise::Reserved {
                    key: "generator".into()
                },
                Surprise::Reserved {
                    key: "values".into()
                },
            ]
        );
        assert!(
            found[1]
                .to_string()
                .contains("when its plugin generator sets them")
        );
        assert!(
            found[0]
                .to_string()
                .contains("it replaces the returned value with the ApplicationSet's input")
        );
    }

    #[test]
    fn reports_a_bounded_number_of_keys() {
        let many: ParameterMap = (0..100)
            .map(|i| (format!("k{i:03}"), json!(5_000_000 + i)))
            .collect();
        assert_eq!(surprises([&many]).len(), MAX_PER_REPLY);
    }

    /// Once per ApplicationSet and key per interval: again only when the
    /// interval has passed, to the nanosecond.
    #[test]
    fn warnings_come_once_per_application_set_and_key_per_interval() {
        let interval = Duration::from_secs(600);
        let warnings = Warnings::new(interval, 10);
        let found = || surprises([&set(json!({"id": 1234567, "n": null}))]);
        let start = Instant::now();
        let keys = |due: Vec<Surprise>| due.iter().map(|s| s.key().to_owned()).collect::<Vec<_>>();
        assert_eq!(keys(warnings.due("shop", found(), start)), ["id", "n"]);
        assert!(warnings.due("shop", found(), start).is_empty());
        let almost = start + interval - Duration::from_nanos(1);
        assert!(warnings.due("shop", found(), almost).is_empty());
        assert_eq!(warnings.due("other", found(), almost).len(), 2);
        assert_eq!(warnings.due("shop", found(), start + interval).len(), 2);
    }

    /// At capacity, pairs that have aged out make room; fresh ones do not.
    #[test]
    fn a_full_memory_forgets_only_aged_pairs() {
        let interval = Duration::from_secs(600);
        let warnings = Warnings::new(interval, 2);
        let found = || surprises([&set(json!({"id": 1234567}))]);
        let start = Instant::now();
        assert_eq!(warnings.due("a", found(), start).len(), 1);
        assert_eq!(warnings.due("b", found(), start).len(), 1);
        assert!(warnings.due("c", found(), start).is_empty());
        let later = start + interval;
        assert_eq!(warnings.due("c", found(), later).len(), 1);
        assert_eq!(warnings.last.lock().unwrap().len(), 1);
    }

    #[test]
    fn warnings_remember_a_bounded_number_of_keys() {
        let warnings = Warnings::new(Duration::from_secs(600), 3);
        for name in ["a", "b", "c", "d", "e"] {
            warnings.check(name, &[set(json!({"id": 1234567}))]);
        }
        assert_eq!(warnings.last.lock().unwrap().len(), 3);
    }
}
