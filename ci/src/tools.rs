//! Linters and validators from PyPI (`ci/requirements.txt`), installed on
//! first use into a virtualenv under `target/`, so `cargo test` needs no
//! manual set-up beyond Python 3.

use std::fs::File;
use std::path::PathBuf;
use std::process::Command;

use crate::command::{own_cargo_environment, run_command};

const REQUIREMENTS: &str = include_str!("../requirements.txt");

fn tools_dir() -> PathBuf {
    crate::repo_root().join("target").join("ci-tools")
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

/// `cargo deny`, built from crates.io on first use into `target/ci-tools/`.
pub const CARGO_DENY: (&str, &str) = ("cargo-deny", "0.20.2");

/// The path of the binary `name` of crate `krate` at `version`, installed
/// with `cargo install --locked` on first use (a few minutes, once per clone).
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
                    "--quiet",
                    "--root",
                ])
                .arg(&root),
        )?;
    }
    Ok(binary)
}
