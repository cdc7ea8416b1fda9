//! The rendered project's `Cargo.lock`, kept as the Liquid template
//! `template/Cargo.lock.liquid`: the lock cargo itself writes, with the
//! project's own package entry placed where cargo sorts it (by name), and the
//! packages only one value of a boolean placeholder needs behind that
//! placeholder. So every project builds `--locked` from its first commit, and
//! a plain `cargo build` leaves its lock unchanged.
//!
//! `template-ci lock` writes the template from real lock files: it renders
//! the template with the placeholder off and on, lets cargo bring each lock
//! up to date (keeping the pinned versions it can), and merges the two.

use std::collections::BTreeMap;
use std::path::Path;

/// The boolean placeholder whose value changes the dependency graph.
pub const PLACEHOLDER: &str = "http_client";
/// The project name the template is rendered with to read its lock.
pub const PROBE: &str = "lock-probe";

/// One `[[package]]` entry, its text without the separating blank line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    version: String,
    text: String,
}

/// The header (comments and `version = N`) and the entries of a lock file.
fn parse(lock: &str) -> Result<(String, Vec<Entry>), String> {
    let mut parts = lock.split("\n[[package]]\n");
    let header = parts.next().unwrap_or_default().to_owned();
    let mut entries = Vec::new();
    for part in parts {
        let text = format!("[[package]]\n{}", part.trim_end_matches('\n'));
        let field = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("{key} = \"")))
                .and_then(|rest| rest.strip_suffix('"'))
                .map(str::to_owned)
                .ok_or_else(|| format!("a lock entry without {key}: {text}"))
        };
        entries.push(Entry {
            name: field("name")?,
            version: field("version")?,
            text: text.clone(),
        });
    }
    Ok((header, entries))
}

/// The text of `entries` in one variant, keyed by name and version.
fn by_key(entries: Vec<Entry>) -> BTreeMap<(String, String), String> {
    entries
        .into_iter()
        .map(|e| ((e.name, e.version), e.text))
        .collect()
}

/// Merges the lock files rendered with the placeholder off and on into the
/// Liquid template; `probe` is the project name they were rendered with.
pub fn template(off: &str, on: &str, probe: &str) -> Result<String, String> {
    let (header, off) = parse(off)?;
    let (header_on, on) = parse(on)?;
    if header != header_on {
        return Err("the two lock files have different headers".into());
    }
    let (mut off, mut on) = (by_key(off), by_key(on));
    let own_off = take_own(&mut off, probe)?;
    let own_on = take_own(&mut on, probe)?;
    // `rename` keeps the two the same when they were.
    let own = one_of(&rename(&own_off, probe), &rename(&own_on, probe));

    let mut keys: Vec<&(String, String)> = off.keys().chain(on.keys()).collect();
    keys.sort();
    keys.dedup();
    // Each entry is "\n" + its text + "\n", as cargo writes it; the tags
    // around them add no whitespace of their own.
    let mut out = header;
    out.push_str(&format!(
        "{{% assign placed = false %}}{{% capture own %}}{own}{{% endcapture %}}"
    ));
    for key in keys {
        // Cargo sorts entries by name: the project's goes before the first
        // entry whose name sorts after it.
        out.push_str(&format!(
            "{{% if placed == false and project-name < \"{}\" %}}\n{{{{ own }}}}\n{{% assign placed = true %}}{{% endif %}}",
            key.0
        ));
        let entry = match (off.get(key), on.get(key)) {
            (Some(a), Some(b)) => format!("\n{}\n", one_of(a, b)),
            (Some(a), None) => format!("{{% unless {PLACEHOLDER} %}}\n{a}\n{{% endunless %}}"),
            (None, Some(b)) => format!("{{% if {PLACEHOLDER} %}}\n{b}\n{{% endif %}}"),
            (None, None) => unreachable!("every key comes from one of them"),
        };
        out.push_str(&entry);
    }
    out.push_str("{% if placed == false %}\n{{ own }}\n{% endif %}");
    Ok(out)
}

/// `off` when both variants have the same text, else both behind the placeholder.
fn one_of(off: &str, on: &str) -> String {
    if off == on {
        off.to_owned()
    } else {
        format!("{{% if {PLACEHOLDER} %}}{on}{{% else %}}{off}{{% endif %}}")
    }
}

fn take_own(
    entries: &mut BTreeMap<(String, String), String>,
    probe: &str,
) -> Result<String, String> {
    let key = entries
        .keys()
        .find(|(name, _)| name == probe)
        .cloned()
        .ok_or_else(|| format!("no entry for the project {probe}"))?;
    Ok(entries.remove(&key).expect("found above"))
}

fn rename(own: &str, probe: &str) -> String {
    own.replacen(
        &format!("name = \"{probe}\""),
        "name = \"{{project-name}}\"",
        1,
    )
}

/// Writes `template/Cargo.lock.liquid` of `repo` from the two rendered
/// projects' (already updated) lock files.
pub fn write(repo: &Path, off_project: &Path, on_project: &Path) -> Result<(), String> {
    let read = |dir: &Path| {
        std::fs::read_to_string(dir.join("Cargo.lock"))
            .map_err(|e| format!("{}/Cargo.lock: {e}", dir.display()))
    };
    let text = template(&read(off_project)?, &read(on_project)?, PROBE)?;
    let path = repo.join("template").join("Cargo.lock.liquid");
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "# This file is automatically @generated by Cargo.\nversion = 4\n";

    fn lock(entries: &[(&str, &str)]) -> String {
        let mut text = HEADER.to_owned();
        for (name, deps) in entries {
            text.push_str(&format!(
                "\n[[package]]\nname = \"{name}\"\nversion = \"1.0.0\"\ndependencies = [{deps}]\n"
            ));
        }
        text
    }

    fn render(template: &str, name: &str, on: bool) -> String {
        let parser = liquid::ParserBuilder::with_stdlib().build().unwrap();
        let mut globals = liquid::Object::new();
        globals.insert(
            "project-name".into(),
            liquid::model::Value::scalar(name.to_owned()),
        );
        globals.insert(PLACEHOLDER.into(), liquid::model::Value::scalar(on));
        parser.parse(template).unwrap().render(&globals).unwrap()
    }

    #[test]
    fn renders_the_lock_cargo_would_write_for_any_name_and_variant() {
        let off = lock(&[
            ("b-dep", ""),
            ("lock-probe", "\"b-dep\""),
            ("shared", "\"x\""),
        ]);
        let on = lock(&[
            ("b-dep", ""),
            ("http", ""),
            ("lock-probe", "\"b-dep\", \"http\""),
            ("shared", "\"y\""),
        ]);
        let template = template(&off, &on, PROBE).unwrap();
        for name in ["a-plugin", "c-plugin", "i-plugin", "zz-plugin"] {
            for (on_, source) in [(false, &off), (true, &on)] {
                let (_, mut entries) = parse(source).unwrap();
                for entry in &mut entries {
                    entry.text = entry.text.replace("lock-probe", name);
                    entry.name = entry.name.replace("lock-probe", name);
                }
                entries.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
                let mut expected = HEADER.to_owned();
                for entry in entries {
                    expected.push_str(&format!("\n{}\n", entry.text));
                }
                assert_eq!(render(&template, name, on_), expected, "{name} {on_}");
            }
        }
    }
}
