//! The template's test harness: renders `template/` with cargo-generate and
//! checks what comes out, as a user and as Argo CD would.

/// Fails with `message` unless `condition` holds: the checks' `assert!`,
/// returning the message instead of panicking.
macro_rules! ensure {
    ($condition:expr, $($message:tt)+) => {
        if !$condition {
            return Err(format!($($message)+));
        }
    };
}

pub mod argocd;
pub mod bench;
pub mod checks;
pub mod command;
pub mod conformance;
pub mod liquid_lint;
pub mod load;
pub mod manifests;
pub mod project;
pub mod render;
pub mod tools;

use std::path::{Path, PathBuf};

/// The repository root (the folder holding `cargo-generate.toml`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("ci/ has a parent")
        .to_path_buf()
}

/// Every file below `dir` (following no symlinks), sorted; empty when `dir`
/// does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => stack.push(entry.path()),
                Ok(kind) if kind.is_file() => files.push(entry.path()),
                _ => {}
            }
        }
    }
    files.sort();
    files
}

/// Where every rendered project builds, so dependencies compile once.
pub fn rendered_target_dir() -> PathBuf {
    repo_root().join("target").join("rendered")
}
