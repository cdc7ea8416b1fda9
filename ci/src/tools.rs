//! The harness's tools, installed on first use so `cargo test` needs no
//! manual set-up beyond Rust, Go and Python 3: linters and validators from
//! PyPI (`ci/requirements.txt`) in a virtualenv, cargo-deny and the oldest
//! supported cargo-generate CLI from crates.io. They live in a cache shared
//! by every clone on the machine (see [`tools_dir`]), so a fresh clone does
//! not build them again.

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;

use crate::command::{own_cargo_environment, run_command};

const REQUIREMENTS: &str = include_str!("../requirements.txt");

/// How long the first run of each long step takes on 2 cores, from empty
/// caches (measured 2026-12-07); later runs take seconds to a minute.
#[derive(Debug, Clone, Copy)]
pub struct FirstUse {
    /// A rendered project's dependencies, for clippy and its tests.
    pub debug_build: &'static str,
    /// `cargo install cargo-deny` (unoptimised).
    pub cargo_deny: &'static str,
    /// The linters' virtualenv from PyPI.
    pub linters: &'static str,
    /// The release build, and Go compiling Argo CD's code for the judge.
    pub release_and_judge: &'static str,
    /// A release build of the plugin alone.
    pub release_build: &'static str,
}

pub const FIRST_USE: FirstUse = FirstUse {
    debug_build: "about 3 minutes on 2 cores",
    cargo_deny: "installs cargo-deny, about 4 minutes on 2 cores",
    linters: "installs the linters from PyPI, about 3 minutes",
    release_and_judge: "a release build and Go compiling Argo CD's code, 5 to 10 minutes on 2 cores",
    release_build: "about 3 minutes on 2 cores",
};

/// `$TEMPLATE_CI_TOOLS`; else `argocd-plugin-template` in the user's cache
/// folder (`$XDG_CACHE_HOME`, or `~/.cache`); else `target/ci-tools`. Each
/// tool's folder is named by its version (the virtualenv's marker by its
/// pins), so a change of pin installs beside the old one.
pub fn tools_dir() -> PathBuf {
    let set = |key: &str| {
        std::env::var_os(key)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    set("TEMPLATE_CI_TOOLS")
        .or_else(|| set("XDG_CACHE_HOME").map(|dir| dir.join("argocd-plugin-template")))
        .or_else(|| set("HOME").map(|dir| dir.join(".cache").join("argocd-plugin-template")))
        .unwrap_or_else(|| crate::repo_root().join("target").join("ci-tools"))
}

/// The path of `name` in the virtualenv, installing the virtualenv first if
/// it is missing or out of date. Safe to call from parallel tests and processes.
pub fn python_tool(name: &str) -> Result<PathBuf, String> {
    let dir = tools_dir();
    let venv = dir.join("venv");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let lock = File::create(dir.join(".lock")).map_err(|e| e.to_string())?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", dir.display()))?;

    // Reinstall when the pins change.
    // The marker's name follows the requirements' content.
    let marker = dir.join(format!(
        "installed-{:016x}",
        crate::fnv1a(REQUIREMENTS.as_bytes())
    ));
    if !marker.exists() {
        let requirements = dir.join("requirements.txt");
        fs_err::write(&requirements, REQUIREMENTS).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&venv);
        run_command(Command::new("python3").args(["-m", "venv"]).arg(&venv)).map_err(|e| {
            format!("{e}\nThe manifest and Dockerfile checks need Python 3 with venv (Debian: apt-get install python3-venv).")
        })?;
        run_command(
            Command::new(venv.join("bin").join("pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(&requirements),
        )?;
        fs_err::write(&marker, "").map_err(|e| e.to_string())?;
    }
    Ok(venv.join("bin").join(name))
}

/// `cargo deny`, for the rendered projects' dependency checks.
pub const CARGO_DENY: (&str, &str) = ("cargo-deny", "0.20.2");

/// The oldest cargo-generate CLI the template supports (the newest that
/// installs on rustc 1.95); `ci/compat.sh` renders with it.
pub const CARGO_GENERATE: (&str, &str) = ("cargo-generate", "0.23.7");

/// `cargo minimal-versions` (with `cargo hack`, which it drives): builds
/// plugin-server with each direct dependency at the floor its manifest
/// names, on stable Rust; `ci/compat.sh` runs it.
pub const CARGO_MINIMAL_VERSIONS: (&str, &str) = ("cargo-minimal-versions", "0.1.38");
pub const CARGO_HACK: (&str, &str) = ("cargo-hack", "0.6.46");

/// Every tool [`cargo_tool`] installs, for `template-ci tool NAME`.
pub const CARGO_TOOLS: [(&str, &str); 4] = [
    CARGO_DENY,
    CARGO_GENERATE,
    CARGO_MINIMAL_VERSIONS,
    CARGO_HACK,
];

/// The path of the binary `name` of crate `krate` at `version`, installed
/// with `cargo install --locked --debug` on first use (once per machine):
/// unoptimised, it compiles in less than half the time, and what the
/// harness runs with it takes seconds either way.
pub fn cargo_tool((krate, version): (&str, &str)) -> Result<PathBuf, String> {
    let root = tools_dir().join(format!("{krate}-{version}"));
    let binary = root.join("bin").join(krate);
    fs_err::create_dir_all(tools_dir()).map_err(|e| e.to_string())?;
    let lock =
        File::create(tools_dir().join(format!(".{krate}.lock"))).map_err(|e| e.to_string())?;
    lock.lock().map_err(|e| e.to_string())?;
    if !binary.exists() {
        run_command(
            own_cargo_environment(&mut Command::new("cargo"))
                .args([
                    "install",
                    krate,
                    "--version",
                    version,
                    "--locked",
                    "--debug",
                    "--quiet",
                    "--root",
                ])
                .arg(&root),
        )?;
    }
    Ok(binary)
}
