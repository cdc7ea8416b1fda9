//! Checks every template file with the `liquid` crate alone, without
//! rendering the project: syntax errors and variables that are neither a
//! placeholder, a hook-derived value nor a cargo-generate built-in.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Variables cargo-generate defines itself.
const BUILT_INS: [&str; 8] = [
    "project-name",
    "crate_name",
    "crate_type",
    "authors",
    "username",
    "os-arch",
    "is_init",
    "within_cargo_project",
];

/// What the lint knows about the template.
pub struct Template {
    pub root: PathBuf,
    /// Files copied verbatim (`[template] exclude`), relative to `root`.
    pub verbatim: Vec<String>,
    /// String placeholders with their defaults, and boolean ones.
    pub strings: Vec<(String, String)>,
    pub booleans: Vec<String>,
    /// Values the Rhai hooks set (`variable::set("name", ...)`).
    pub derived: Vec<String>,
}

impl Template {
    pub fn load(repo: &Path) -> Result<Self, String> {
        let config_path = repo.join("cargo-generate.toml");
        let config: toml::Table = fs_err::read_to_string(&config_path)
            .map_err(|e| e.to_string())?
            .parse()
            .map_err(|e| format!("{}: {e}", config_path.display()))?;
        let verbatim = config
            .get("template")
            .and_then(|t| t.get("exclude"))
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let mut strings = Vec::new();
        let mut booleans = Vec::new();
        for (name, spec) in config
            .get("placeholders")
            .and_then(toml::Value::as_table)
            .into_iter()
            .flatten()
        {
            match spec.get("type").and_then(toml::Value::as_str) {
                Some("bool") => booleans.push(name.clone()),
                _ => {
                    let default = spec
                        .get("default")
                        .and_then(toml::Value::as_str)
                        .unwrap_or("x");
                    strings.push((name.clone(), default.to_owned()));
                }
            }
        }
        let mut derived = Vec::new();
        for entry in fs_err::read_dir(repo.join("hooks")).map_err(|e| e.to_string())? {
            let text = fs_err::read_to_string(entry.map_err(|e| e.to_string())?.path())
                .map_err(|e| e.to_string())?;
            for piece in text.split("variable::set(\"").skip(1) {
                if let Some((name, _)) = piece.split_once('"') {
                    derived.push(name.to_owned());
                }
            }
        }
        Ok(Self {
            root: repo.join("template"),
            verbatim,
            strings,
            booleans,
            derived,
        })
    }

    /// Every file cargo-generate renders, relative to the template root.
    pub fn rendered_files(&self) -> Vec<PathBuf> {
        crate::files_under(&self.root)
            .into_iter()
            .map(|path| {
                path.strip_prefix(&self.root)
                    .expect("under root")
                    .to_path_buf()
            })
            .filter(|relative| !self.is_verbatim(relative))
            .collect()
    }

    /// Whether `[template] exclude` copies `relative` verbatim (exact paths
    /// and `folder/**` patterns).
    pub fn is_verbatim(&self, relative: &Path) -> bool {
        self.verbatim
            .iter()
            .any(|pattern| match pattern.strip_suffix("/**") {
                Some(folder) => relative.starts_with(folder),
                None => relative == Path::new(pattern),
            })
    }

    /// Parses `file` and renders it with every combination of the boolean
    /// placeholders; returns the problems found, each naming the file.
    pub fn check(&self, file: &Path) -> Vec<String> {
        let path = self.root.join(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return vec![format!(
                "{}: not UTF-8 text; add it to [template] exclude",
                file.display()
            )];
        };
        let parser = match liquid::ParserBuilder::with_stdlib().build() {
            Ok(parser) => parser,
            Err(e) => return vec![e.to_string()],
        };
        let template = match parser.parse(&text) {
            Ok(template) => template,
            Err(e) => {
                return vec![format!(
                    "{}: {}",
                    file.display(),
                    locate(&e.to_string(), &text)
                )];
            }
        };
        let mut problems = BTreeSet::new();
        for combination in 0..(1u32 << self.booleans.len()) {
            let mut globals = liquid::Object::new();
            for name in BUILT_INS
                .iter()
                .map(|s| s.to_string())
                .chain(self.derived.iter().cloned())
            {
                globals.insert(name.into(), liquid::model::Value::scalar("x"));
            }
            for (name, default) in &self.strings {
                globals.insert(
                    name.clone().into(),
                    liquid::model::Value::scalar(default.clone()),
                );
            }
            for (i, name) in self.booleans.iter().enumerate() {
                let on = combination & (1 << i) != 0;
                globals.insert(name.clone().into(), liquid::model::Value::scalar(on));
            }
            if let Err(e) = template.render(&globals) {
                problems.insert(format!(
                    "{}: {}",
                    file.display(),
                    locate(&e.to_string(), &text)
                ));
            }
        }
        problems.into_iter().collect()
    }
}

/// Adds the line of the offending text, which liquid's messages lack for
/// unknown variables.
fn locate(message: &str, text: &str) -> String {
    let requested = message
        .lines()
        .find_map(|line| line.trim().strip_prefix("requested variable="))
        .map(str::trim);
    match requested {
        Some(variable) => {
            let line = text
                .lines()
                .position(|line| line.contains(variable))
                .map_or(String::new(), |n| format!("line {}: ", n + 1));
            format!(
                "{line}unknown variable `{variable}` (not a placeholder, hook value or built-in)"
            )
        }
        None => message.replace('\n', " "),
    }
}
