//! Template upgrades for rendered projects, like cruft's and copier's: the
//! project records the template's version and its answers in
//! `.template.toml`; `template-ci upgrade` renders the template at that
//! version and at this checkout's with the same answers, and applies the
//! difference to the project as a three-way merge, file by file.
//!
//! The version is a stamp over the template's inputs (`template/`, `hooks/`,
//! `cargo-generate.toml`), written into `template/.template.toml` by
//! `template-ci stamp` and checked by the tests, so that every commit of the
//! template carries the version of what it renders and an old version can
//! be found in the template's Git history.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::command::run_command;

/// The record a rendered project carries, relative to its root.
pub const RECORD: &str = ".template.toml";
/// The version line of the record in the template.
const VERSION_PREFIX: &str = "version = \"";

/// The template's inputs, relative to `repo`, sorted.
fn inputs(repo: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["template", "hooks"]
        .iter()
        .flat_map(|part| crate::files_under(&repo.join(part)))
        .chain([repo.join("cargo-generate.toml")])
        .filter_map(|path| path.strip_prefix(repo).ok().map(Path::to_path_buf))
        .collect();
    files.sort();
    files
}

/// The stamp of the template in `repo`: a hash of every input, the record's
/// own version line left out.
pub fn stamp(repo: &Path) -> Result<String, String> {
    let record = Path::new("template").join(RECORD);
    let mut all = Vec::new();
    for file in inputs(repo) {
        let mut content =
            std::fs::read(repo.join(&file)).map_err(|e| format!("{}: {e}", file.display()))?;
        if file == record {
            content = without_version(&String::from_utf8_lossy(&content)).into_bytes();
        }
        all.extend_from_slice(file.to_string_lossy().as_bytes());
        all.push(0);
        all.extend_from_slice(&content);
        all.push(0);
    }
    let hash = crate::fnv1a(&all);
    Ok(format!("{hash:016x}"))
}

fn without_version(record: &str) -> String {
    record
        .lines()
        .map(|line| {
            if line.starts_with(VERSION_PREFIX) {
                "version"
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The version written in a record's text.
fn version_in(record: &str) -> Option<String> {
    record
        .lines()
        .find_map(|line| line.strip_prefix(VERSION_PREFIX)?.strip_suffix('"'))
        .map(str::to_owned)
}

/// Writes the current stamp into `repo`'s `template/.template.toml`; returns
/// it and whether it changed.
pub fn write_stamp(repo: &Path) -> Result<(String, bool), String> {
    let path = repo.join("template").join(RECORD);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let stamp = stamp(repo)?;
    let old = version_in(&text).ok_or_else(|| format!("{}: no version line", path.display()))?;
    if old == stamp {
        return Ok((stamp, false));
    }
    let updated = text.replacen(
        &format!("{VERSION_PREFIX}{old}\""),
        &format!("{VERSION_PREFIX}{stamp}\""),
        1,
    );
    fs_err::write(&path, updated).map_err(|e| e.to_string())?;
    Ok((stamp, true))
}

/// What a project recorded: the template version and the answers.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub version: String,
    pub name: String,
    /// Every other answer, as `-d key=value` would give it.
    pub answers: Vec<(String, String)>,
}

impl Recorded {
    pub fn read(project: &Path) -> Result<Self, String> {
        let path = project.join(RECORD);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "{}: {e}. Projects rendered from this template carry it; without it, \
                 upgrade cannot tell which version the project came from",
                path.display()
            )
        })?;
        let table: toml::Table = text
            .parse()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let version = table
            .get("template")
            .and_then(|t| t.get("version"))
            .and_then(toml::Value::as_str)
            .ok_or_else(|| format!("{}: no [template] version", path.display()))?
            .to_owned();
        let mut name = None;
        let mut answers = Vec::new();
        for (key, value) in table
            .get("answers")
            .and_then(toml::Value::as_table)
            .into_iter()
            .flatten()
        {
            let value = match value {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if key == "project-name" {
                name = Some(value);
            } else {
                answers.push((key.clone(), value));
            }
        }
        let name = name.ok_or_else(|| format!("{}: no answers.project-name", path.display()))?;
        Ok(Self {
            version,
            name,
            answers,
        })
    }
}

/// `git <args>` in `dir`; its standard output.
fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = run_command(Command::new("git").args(args).current_dir(dir))?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned())
}

/// The newest commit of `repo` whose template has `version`.
pub fn find_version(repo: &Path, version: &str) -> Result<String, String> {
    let record = format!("template/{RECORD}");
    let commits = git(repo, &["rev-list", "HEAD", "--", &record])?;
    for commit in commits.lines() {
        let text = git(repo, &["show", &format!("{commit}:{record}")]).unwrap_or_default();
        if version_in(&text).as_deref() == Some(version) {
            return Ok(commit.to_owned());
        }
    }
    Err(format!(
        "template version {version} is not in the history of {}: pass --from <the commit the project was rendered from>",
        repo.display()
    ))
}

/// Renders `recorded` from the template in `repo` into `into`, with this
/// program's `render` command in a process of its own, so cargo-generate's
/// messages do not mix with the upgrade's.
fn render(repo: &Path, recorded: &Recorded, into: &Path) -> Result<PathBuf, String> {
    let program = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(program);
    command
        .args(["render", "--name", &recorded.name, "--into"])
        .arg(into)
        .arg("--template")
        .arg(repo);
    for (key, value) in &recorded.answers {
        command.args(["-d", &format!("{key}={value}")]);
    }
    run_command(&mut command)?;
    Ok(into.join(&recorded.name))
}

/// The template's inputs as of `commit`, extracted into `into`.
fn checkout(repo: &Path, commit: &str, into: &Path) -> Result<(), String> {
    fs_err::create_dir_all(into).map_err(|e| e.to_string())?;
    let archive = into.join("template.tar");
    run_command(
        Command::new("git")
            .args(["archive", "--format=tar", "-o"])
            .arg(&archive)
            .args([commit, "template", "hooks", "cargo-generate.toml"])
            .current_dir(repo),
    )?;
    run_command(
        Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(into),
    )?;
    fs_err::remove_file(&archive).map_err(|e| e.to_string())
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Updated,
    Merged,
    Conflict,
    Added,
    Removed,
    /// The template removed it, but the author had changed it.
    KeptChanged,
    /// The template changed it, but the author had deleted it.
    KeptDeleted,
}

/// The outcome of an upgrade.
#[derive(Debug, Default)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub changes: Vec<(String, Change)>,
}

impl Report {
    pub fn conflicts(&self) -> Vec<&str> {
        self.changes
            .iter()
            .filter(|(_, c)| *c == Change::Conflict)
            .map(|(path, _)| path.as_str())
            .collect()
    }
}

/// Options of an upgrade.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The template commit the project was rendered from, instead of the
    /// one its recorded version names.
    pub from: Option<String>,
    /// Upgrade even with uncommitted changes in the project.
    pub force: bool,
}

/// Brings the template changes between the project's version and `repo`'s
/// working tree into `project`.
pub fn upgrade(repo: &Path, project: &Path, options: &Options) -> Result<Report, String> {
    let recorded = Recorded::read(project)?;
    if !options.force {
        let status = git(project, &["status", "--porcelain"]).map_err(|e| {
            format!(
                "{e}\n{} is not a Git work tree: commit the project first, or pass --force",
                project.display()
            )
        })?;
        if !status.is_empty() {
            return Err(format!(
                "{} has uncommitted changes; commit or stash them first (or pass --force):\n{status}",
                project.display()
            ));
        }
    }
    let base = match &options.from {
        Some(from) => git(
            repo,
            &["rev-parse", "--verify", &format!("{from}^{{commit}}")],
        )?,
        None => find_version(repo, &recorded.version)?,
    };
    let scratch = std::env::temp_dir().join(format!("template-upgrade-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let result = (|| {
        let short = &base[..base.len().min(12)];
        let old = crate::progress::run(
            &format!("rendering the template at the project's version (commit {short})"),
            None,
            || {
                checkout(repo, &base, &scratch.join("old-template"))?;
                render(
                    &scratch.join("old-template"),
                    &recorded,
                    &scratch.join("old"),
                )
            },
        )?;
        let new = crate::progress::run("rendering the template as it is now", None, || {
            render(repo, &recorded, &scratch.join("new"))
        })?;
        let mut report =
            crate::progress::run("merging the difference into the project", None, || {
                merge_trees(&old, &new, project)
            })?;
        report.from = format!(
            "{} (commit {})",
            recorded.version,
            &base[..base.len().min(12)]
        );
        report.to = stamp(repo)?;
        Ok(report)
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn relative_files(dir: &Path) -> BTreeSet<String> {
    crate::files_under(dir)
        .into_iter()
        .filter_map(|p| Some(p.strip_prefix(dir).ok()?.to_string_lossy().into_owned()))
        .collect()
}

/// Applies the change from `old` to `new` (two renderings) to `project`.
pub fn merge_trees(old: &Path, new: &Path, project: &Path) -> Result<Report, String> {
    let read = |dir: &Path, path: &str| std::fs::read(dir.join(path)).ok();
    let write = |path: &str, content: &[u8]| -> Result<(), String> {
        let target = project.join(path);
        if let Some(parent) = target.parent() {
            fs_err::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::write(&target, content).map_err(|e| format!("{path}: {e}"))
    };
    let mut report = Report::default();
    let paths: BTreeSet<String> = relative_files(old)
        .union(&relative_files(new))
        .cloned()
        .collect();
    for path in paths {
        let (base, theirs, ours) = (read(old, &path), read(new, &path), read(project, &path));
        let change = match (base, theirs, ours) {
            (base, theirs, _) if base == theirs => continue,
            // Added by the template.
            (None, Some(theirs), None) => {
                write(&path, &theirs)?;
                Change::Added
            }
            (None, Some(theirs), Some(ours)) if theirs == ours => continue,
            (None, Some(theirs), Some(ours)) => merge_file(project, &path, &ours, b"", &theirs)?,
            // Removed by the template.
            (Some(_), None, None) => continue,
            (Some(base), None, Some(ours)) if base == ours => {
                std::fs::remove_file(project.join(&path)).map_err(|e| format!("{path}: {e}"))?;
                Change::Removed
            }
            (Some(_), None, Some(_)) => Change::KeptChanged,
            // Changed by the template.
            (Some(_), Some(_), None) => Change::KeptDeleted,
            (Some(base), Some(theirs), Some(ours)) if base == ours => {
                write(&path, &theirs)?;
                Change::Updated
            }
            (Some(_), Some(theirs), Some(ours)) if theirs == ours => continue,
            (Some(base), Some(theirs), Some(ours)) => {
                merge_file(project, &path, &ours, &base, &theirs)?
            }
            (None, None, _) => continue,
        };
        report.changes.push((path, change));
    }
    Ok(report)
}

/// `git merge-file` of one file: the author's version, the old and the new
/// rendering; writes the result (with conflict markers where both changed
/// the same lines) into the project.
fn merge_file(
    project: &Path,
    path: &str,
    ours: &[u8],
    base: &[u8],
    theirs: &[u8],
) -> Result<Change, String> {
    let scratch = std::env::temp_dir().join(format!("template-merge-{}", std::process::id()));
    fs_err::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let files = [("ours", ours), ("base", base), ("theirs", theirs)];
    for (name, content) in files {
        fs_err::write(scratch.join(name), content).map_err(|e| e.to_string())?;
    }
    let output = Command::new("git")
        .args([
            "merge-file",
            "-p",
            "-L",
            "yours",
            "-L",
            "template before",
            "-L",
            "template now",
        ])
        .args(["ours", "base", "theirs"])
        .current_dir(&scratch)
        .output()
        .map_err(|e| format!("git merge-file: {e}"))?;
    let _ = std::fs::remove_dir_all(&scratch);
    // The exit code is the number of conflicts; negative on error.
    let conflicts = match output.status.code() {
        Some(code) if (0..128).contains(&code) => code,
        _ => {
            return Err(format!(
                "git merge-file failed on {path}: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    };
    let target = project.join(path);
    if let Some(parent) = target.parent() {
        fs_err::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    std::fs::write(&target, &output.stdout).map_err(|e| format!("{path}: {e}"))?;
    Ok(if conflicts == 0 {
        Change::Merged
    } else {
        Change::Conflict
    })
}

/// How far `project` is behind the template in `repo`: `None` when it is
/// up to date, else the number of template commits since its version.
pub fn behind(repo: &Path, project: &Path) -> Result<Option<usize>, String> {
    let recorded = Recorded::read(project)?;
    if recorded.version == stamp(repo)? {
        return Ok(None);
    }
    let base = find_version(repo, &recorded.version)?;
    let count = git(
        repo,
        &[
            "rev-list",
            "--count",
            &format!("{base}..HEAD"),
            "--",
            "template",
            "hooks",
            "cargo-generate.toml",
        ],
    )?;
    // Uncommitted template changes count as one more.
    Ok(Some(count.parse::<usize>().unwrap_or(0).max(1)))
}
