//! Kubernetes manifests of a rendered project, as JSON values.

use std::path::Path;

use serde_json::Value;

use crate::command::run;

/// `kubectl kustomize <dir>`: the YAML of a whole install.
pub fn kustomize(dir: &Path) -> Result<String, String> {
    let output = run(dir, "kubectl", &["kustomize", "."])?;
    String::from_utf8(output.stdout).map_err(|e| e.to_string())
}

/// Parses a multi-document YAML stream; empty documents are dropped.
pub fn parse_yaml(yaml: &str) -> Result<Vec<Value>, String> {
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(yaml).map_err(|e| format!("not YAML: {e}"))?;
    Ok(documents.into_iter().filter(|d| !d.is_null()).collect())
}

/// The one object of `kind` named `name`.
pub fn one<'a>(objects: &'a [Value], kind: &str, name: &str) -> Result<&'a Value, String> {
    let found: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .collect();
    ensure!(
        found.len() == 1,
        "the install has {} {kind} named {name}, not 1",
        found.len()
    );
    Ok(found[0])
}

/// The string at `pointer` in an object (or a part of one).
pub fn string<'a>(value: &'a Value, pointer: &str) -> Result<&'a str, String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(
            || match (value["kind"].as_str(), value["metadata"]["name"].as_str()) {
                (Some(kind), Some(name)) => format!("{kind} {name} has no string at {pointer}"),
                _ => format!("no string at {pointer} in {value}"),
            },
        )
}
