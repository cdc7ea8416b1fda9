//! How Go's `fmt` prints the values of a reply once Argo CD has decoded it:
//! the controller reads JSON without `UseNumber` into `any`, so every number
//! is a `float64`, and templates print values with `%v`. The plugin's value
//! warnings and `preview`'s view of the template both print with this.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// How Go's `fmt` prints a JSON value decoded into `any` (`%v`), as Argo CD's
/// goTemplate renderer does for `{{ .key }}`.
pub fn go_print(value: &Value) -> String {
    match value {
        Value::Null => "<no value>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_print_nested).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            // Go prints maps with their keys sorted.
            let sorted: BTreeMap<_, _> = map.iter().collect();
            let items: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", go_print_nested(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// Inside a map or slice Go prints a nil interface as `<nil>`.
pub fn go_print_nested(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        other => go_print(other),
    }
}

/// Go's `%v` of a float64: the shortest digits that read back, in `%e` form
/// when the exponent is below -4 or at least 6 (strconv's 'g', precision -1).
pub fn go_float(x: f64) -> String {
    if !x.is_finite() || x == 0.0 {
        return format!("{x}");
    }
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        format!("{x}")
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs())
    }
}

/// Flat mode: nested keys joined with dots, list items by position, every
/// value printed as Go's `%v` does (`null` as `<nil>`); empty maps and lists
/// vanish.
pub fn flatten(prefix: &str, value: &Value, flat: &mut Map<String, Value>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| flatten(&key(k), v, flat)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| flatten(&key(&i.to_string()), v, flat)),
        // `%v` of a scalar inside a map: null is `<nil>`.
        scalar => {
            flat.insert(prefix.to_owned(), go_print_nested(scalar).into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What Argo CD's plugin generator and renderer print for each value
    /// returned: the table `argocd-judge/printed_test.go` checks against
    /// Argo CD's code.
    const PRINTED: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../argocd-judge/testdata/printed.json"
    ));

    #[test]
    fn prints_as_argo_cd_does() {
        let table: Vec<Value> = serde_json::from_str(PRINTED).unwrap();
        assert!(table.len() > 10);
        for row in table {
            let returned = &row["returned"];
            assert_eq!(go_print(returned), row["goTemplate"], "{returned}");
            if let Some(flat) = row.get("flat") {
                let mut params = Map::new();
                flatten("v", returned, &mut params);
                assert_eq!(params["v"], *flat, "{returned} (flat mode)");
            }
        }
    }

    #[test]
    fn flat_mode_joins_keys_and_prints_scalars() {
        let mut flat = Map::new();
        flatten(
            "",
            &json!({"a": {"b": [1234567, null]}, "e": {}, "s": "x"}),
            &mut flat,
        );
        assert_eq!(
            Value::Object(flat),
            json!({"a.b.0": "1.234567e+06", "a.b.1": "<nil>", "s": "x"})
        );
    }
}
