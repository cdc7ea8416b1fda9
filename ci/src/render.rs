//! Rendering the template with the cargo-generate library, exactly as
//! `cargo generate --path <repo> template --name <name> --silent -d k=v` does.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use cargo_generate::{GenerateArgs, TemplatePath, Vcs};

/// One rendering of the template.
#[derive(Debug, Clone)]
pub struct Render {
    /// The repository holding `cargo-generate.toml` and `template/`.
    pub repo: PathBuf,
    pub name: String,
    /// `-d key=value` answers; placeholders not named keep their defaults.
    pub defines: Vec<(String, String)>,
}

impl Render {
    pub fn new(name: &str) -> Self {
        Self {
            repo: crate::repo_root(),
            name: name.to_owned(),
            defines: Vec::new(),
        }
    }

    pub fn define(mut self, key: &str, value: &str) -> Self {
        self.defines.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The command line a user would type for this rendering.
    pub fn command_line(&self) -> String {
        let mut line = format!(
            "cargo generate --path . template --name {} --silent",
            self.name
        );
        for (key, value) in &self.defines {
            line.push_str(&format!(" -d {key}={value}"));
        }
        line
    }

    /// Renders into `parent/<name>`, replacing what was there, and returns
    /// the project folder.
    pub fn into_dir(&self, parent: &Path) -> Result<PathBuf, String> {
        let project = parent.join(&self.name);
        if project.exists() {
            std::fs::remove_dir_all(&project)
                .map_err(|e| format!("cannot clear {}: {e}", project.display()))?;
        }
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        // cargo-generate reads every file under `--path`: give it only what
        // a render reads, never the repository's `target/`, where the harness
        // works and files come and go.
        let sources = sources_of(&self.repo, &self.name)?;
        let args = GenerateArgs {
            template_path: TemplatePath {
                path: Some(sources.display().to_string()),
                auto_path: Some("template".into()),
                ..TemplatePath::default()
            },
            name: Some(self.name.clone()),
            define: self
                .defines
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect(),
            silent: true,
            vcs: Some(Vcs::None),
            destination: Some(parent.to_path_buf()),
            no_workspace: true,
            // Check the template's own formatting, as cargo-generate 0.23 leaves it.
            no_fmt: true,
            bin: true,
            lib: false,
            ..GenerateArgs::default()
        };
        let rendered = cargo_generate::generate(args).map_err(|e| {
            // A refused render can leave the project folder behind.
            let _ = std::fs::remove_dir_all(&project);
            format!("{}: {e:#}", self.command_line())
        });
        let _ = std::fs::remove_dir_all(&sources);
        rendered
    }
}

/// The parts of a template repository a render reads.
const PARTS: [&str; 3] = ["cargo-generate.toml", "hooks", "template"];

/// A fresh copy of [`PARTS`] of `repo` for one render.
fn sources_of(repo: &Path, name: &str) -> Result<PathBuf, String> {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let copy = crate::run_dir()
        .join("sources")
        .join(format!("{name}-{}", COUNT.fetch_add(1, Ordering::Relaxed)));
    copy_parts(repo, &copy)?;
    Ok(copy)
}

/// Copies [`PARTS`] of `repo` into `copy` (regular files only).
fn copy_parts(repo: &Path, copy: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(copy);
    for part in PARTS {
        let from = repo.join(part);
        let files = if from.is_file() {
            vec![from]
        } else {
            crate::files_under(&from)
        };
        for file in files {
            let target = copy.join(file.strip_prefix(repo).expect("under the repository"));
            std::fs::create_dir_all(target.parent().expect("a parent"))
                .and_then(|()| std::fs::copy(&file, &target))
                .map_err(|e| format!("copying {}: {e}", file.display()))?;
        }
    }
    Ok(())
}

/// cargo-generate needs an author and fails without `$USER` and a git
/// identity. Call at the start of `main`, before any thread exists.
pub fn ensure_author() {
    let known = [
        "CARGO_NAME",
        "GIT_AUTHOR_NAME",
        "GIT_COMMITTER_NAME",
        "USER",
        "USERNAME",
        "NAME",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    if !known {
        // SAFETY: called first thing in `main`, while the process has one thread.
        unsafe { std::env::set_var("CARGO_NAME", "plugin-author") };
    }
}

/// A copy of the template repository's rendered parts (`cargo-generate.toml`,
/// `hooks/`, `template/`) in this run's folder `name`, as a fork would have
/// them; returns the copy's root.
pub fn copy_template(name: &str) -> Result<PathBuf, String> {
    let copy = crate::run_dir().join(name);
    copy_parts(&crate::repo_root(), &copy)?;
    Ok(copy)
}
