//! What an ApplicationSet's template sees of each parameter set, rendered
//! the way Argo CD renders it where preview can (`{{ .key }}` forms): the
//! matrix's other generator (`--set`) and the generator's `values`.

use serde_json::{Map, Value};

use super::application_sets::Found;
use crate::go_print::{flatten, go_print};
use crate::protocol::ParameterMap;

impl Found {
    /// Renders input parameters templated from the matrix's other generator
    /// with its values (`--set`), as Argo CD does, into strings.
    pub(super) fn with_other_generator(mut self, other: &ParameterMap) -> Self {
        if !self.nested || other.is_empty() {
            return self;
        }
        let other_params = if self.go_template {
            other.clone()
        } else {
            let mut flat = Map::new();
            flatten("", &Value::Object(other.clone()), &mut flat);
            flat
        };
        for value in self.parameters.values_mut() {
            if let Some(text) = value.as_str()
                && let Some(rendered) = interpolate(text, &other_params, self.go_template)
            {
                *value = rendered.into();
            }
        }
        self.other = other_params;
        self
    }

    /// Each set as the ApplicationSet's template sees it: the set (flattened
    /// to strings in flat mode) and `values` rendered against the set (the
    /// template also sees `generator.input.parameters`, the same for every
    /// set: `run` prints it once). Also notes on values preview cannot render.
    pub(super) fn template_view(&self, sets: &[ParameterMap]) -> (Vec<Value>, Vec<String>) {
        let mut notes = Vec::new();
        // Keys both generators of the matrix yield (known from --set only).
        let mut clashes: Vec<&str> = self
            .other
            .keys()
            .filter(|key| sets.iter().any(|set| set.contains_key(*key)))
            .map(String::as_str)
            .collect();
        clashes.sort_unstable();
        if !clashes.is_empty() {
            let keys = clashes
                .iter()
                .map(|key| format!("`{key}`"))
                .collect::<Vec<_>>()
                .join(", ");
            notes.push(if !self.go_template {
                format!("both generators of the matrix yield {keys}: without goTemplate Argo CD fails it")
            } else if self.first {
                format!("both generators of the matrix yield {keys}: this plugin comes first, so Argo CD keeps its values")
            } else {
                format!("both generators of the matrix yield {keys}: the other generator comes first, so Argo CD keeps its values, silently")
            });
        }
        let views = sets
            .iter()
            .map(|set| {
                let mut params = if self.go_template {
                    set.clone()
                } else {
                    let mut flat = Map::new();
                    flatten("", &Value::Object(set.clone()), &mut flat);
                    flat
                };
                // The matrix's other generator: the first one's keys win.
                for (key, value) in &self.other {
                    if !self.first || !params.contains_key(key) {
                        params.insert(key.clone(), value.clone());
                    }
                }
                let mut rendered = Map::new();
                for (key, template) in &self.values {
                    let text = template
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| template.to_string());
                    let value = match interpolate(&text, &params, self.go_template) {
                        Some(value) => value,
                        None => {
                            let note = format!(
                                "values.{key} is shown as written: preview renders only \
                                 {{{{ .key }}}} forms of keys the set has; Argo CD renders it \
                                 with Go templates"
                            );
                            if !notes.contains(&note) {
                                notes.push(note);
                            }
                            text
                        }
                    };
                    rendered.insert(key.clone(), value.into());
                }
                if !rendered.is_empty() {
                    if self.go_template {
                        params.insert("values".into(), Value::Object(rendered));
                    } else {
                        for (key, value) in rendered {
                            params.insert(format!("values.{key}"), value);
                        }
                    }
                }
                Value::Object(params)
            })
            .collect();
        (views, notes)
    }
}

/// Renders a `values` template against `params` where preview can do it as
/// Argo CD does: `{{ .a.b }}` in goTemplate, `{{a.b}}` in flat mode (where
/// unknown keys stay as written). `None` for anything else.
pub(super) fn interpolate(
    template: &str,
    params: &Map<String, Value>,
    go_template: bool,
) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let end = start + rest[start..].find("}}")?;
        out.push_str(&rest[..start]);
        let tag = &rest[start + 2..end];
        let key = tag.trim();
        if go_template {
            let path = key.strip_prefix('.')?;
            let valid = |s: &str| {
                s.chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                    && s.chars().all(|c| c.is_alphanumeric() || c == '_')
            };
            if !path.split('.').all(valid) {
                return None;
            }
            if path.starts_with("generator.") {
                return None;
            }
            let mut segments = path.split('.');
            let first = params.get(segments.next()?)?;
            let value = segments.try_fold(first, |value, segment| value.get(segment))?;
            out.push_str(&go_print(value));
        } else {
            match params.get(key).and_then(Value::as_str) {
                Some(value) if !key.is_empty() => out.push_str(value),
                _ => {
                    out.push_str("{{");
                    out.push_str(tag);
                    out.push_str("}}");
                }
            }
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Some(out)
}
