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
pub mod docker;
pub mod example;
pub mod judge;
pub mod liquid_lint;
pub mod load;
pub mod lockfile;
pub mod manifests;
pub mod progress;
pub mod project;
pub mod prometheus;
pub mod render;
pub mod tls;
pub mod tls_checks;
pub mod tls_manifests;
pub mod tools;
pub mod upgrade;
pub mod upstream;

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

/// A stable 64-bit hash (FNV-1a): the same bytes give the same value on
/// every machine and in every version of Rust.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where every rendered project builds, so dependencies compile once.
pub fn rendered_target_dir() -> PathBuf {
    repo_root().join("target").join("rendered")
}

/// This process's scratch folder, `target/harness/run-<pid>` of this clone:
/// rendered projects, token files, validation output. Folders of earlier
/// runs whose process is gone are removed on first use, so runs neither
/// collide nor pile up.
pub fn run_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let parent = repo_root().join("target").join("harness");
        for entry in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let gone = name
                .strip_prefix("run-")
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
            if gone {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = parent.join(format!("run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the harness's run folder");
        dir
    })
}
