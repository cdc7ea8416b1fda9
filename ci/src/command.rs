//! Running tools with output a failing test can show.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

/// Runs `command` in `dir`; on failure the error holds the command line and
/// both output streams.
pub fn run(dir: &Path, program: &str, args: &[&str]) -> Result<Output, String> {
    run_command(Command::new(program).args(args).current_dir(dir))
}

pub fn run_command(command: &mut Command) -> Result<Output, String> {
    let line = describe(command);
    let started = Instant::now();
    let output = command
        .output()
        .map_err(|e| format!("cannot run `{line}`: {e}"))?;
    record_time(started, &line);
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "`{line}` failed ({})\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Appends how long a command took to `target/harness/commands.log`, the
/// file that shows where a run's time goes (`sort -n` it).
fn record_time(started: Instant, line: &str) {
    let seconds = started.elapsed().as_secs_f64();
    if seconds < 1.0 {
        return;
    }
    let dir = crate::repo_root().join("target").join("harness");
    let _ = std::fs::create_dir_all(&dir);
    let opened = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("commands.log"));
    let ended = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if let Ok(mut file) = opened {
        let _ = writeln!(file, "{seconds:8.1}\t{ended}\t{line}");
    }
}

pub fn describe(command: &Command) -> String {
    let mut line = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    if let Some(dir) = command.get_current_dir() {
        line = format!("{line}  (in {})", dir.display());
    }
    line
}

/// Clears what steers cargo and rustc from the caller's environment
/// (`CARGO_TARGET_DIR`, `CARGO_BUILD_*`, the variables cargo sets for the
/// tests that run us, `RUSTFLAGS`, wrappers), keeping `CARGO_HOME`: a child
/// build sees what a fresh shell or a Docker build stage would.
pub fn own_cargo_environment(command: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let steers = (key.starts_with("CARGO_") && key != "CARGO_HOME")
            || key == "CARGO"
            || key.starts_with("RUSTC")
            || key.starts_with("RUSTDOC")
            || key == "RUSTFLAGS";
        if steers {
            command.env_remove(key.as_ref());
        }
    }
    command
}
