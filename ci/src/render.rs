//! Rendering the template with the cargo-generate library, exactly as
//! `cargo generate --path <repo> template --name <name> --silent -d k=v` does.

use std::path::{Path, PathBuf};

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
        let args = GenerateArgs {
            template_path: TemplatePath {
                path: Some(self.repo.display().to_string()),
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
        cargo_generate::generate(args).map_err(|e| {
            // A refused render can leave the project folder behind.
            let _ = std::fs::remove_dir_all(&project);
            format!("{}: {e:#}", self.command_line())
        })
    }
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
    let _ = std::fs::remove_dir_all(&copy);
    let root = crate::repo_root();
    for part in ["template", "hooks"] {
        for file in crate::files_under(&root.join(part)) {
            let target = copy.join(file.strip_prefix(&root).expect("under the root"));
            std::fs::create_dir_all(target.parent().expect("a parent"))
                .and_then(|()| std::fs::copy(&file, &target))
                .map_err(|e| format!("copying {}: {e}", file.display()))?;
        }
    }
    fs_err::copy(
        root.join("cargo-generate.toml"),
        copy.join("cargo-generate.toml"),
    )
    .map_err(|e| e.to_string())?;
    Ok(copy)
}
