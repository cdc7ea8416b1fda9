//! Progress of the harness's long commands (`check`, `dev`, `upgrade`,
//! `bench`): a line when each step starts, naming it and, where its first
//! run is long, how long that usually takes; a line when it ends, with the
//! time it took, or the path of a log holding why it failed. On a terminal
//! a step that runs on says so once a minute; elsewhere (CI logs) nothing
//! but those lines. No spinners.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a step still running says so, on a terminal.
const HEARTBEAT: Duration = Duration::from_secs(60);

/// One step of a long command; ends with [`Step::end`].
#[derive(Debug)]
pub struct Step {
    what: String,
    started: Instant,
    heartbeat: Option<(Sender<()>, JoinHandle<()>)>,
}

/// Starts a step: `what` it does and, for a step whose first run is long,
/// `first_time` (e.g. "about 4 minutes on 2 cores").
pub fn step(what: &str, first_time: Option<&str>) -> Step {
    match first_time {
        Some(first_time) => say(&format!("==> {what} (first time: {first_time})")),
        None => say(&format!("==> {what}")),
    }
    let started = Instant::now();
    let heartbeat = std::io::stderr().is_terminal().then(|| {
        let (stop, stopped) = mpsc::channel::<()>();
        let what = what.to_owned();
        let thread = std::thread::spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT) {
                say(&format!("    still {what}: {}", elapsed(started.elapsed())));
            }
        });
        (stop, thread)
    });
    Step {
        what: what.to_owned(),
        started,
        heartbeat,
    }
}

impl Step {
    /// Ends the step with `result`: on failure the error goes to a log
    /// file whose path is printed (the caller still returns the error).
    pub fn end<T>(mut self, result: Result<T, String>) -> Result<T, String> {
        self.stop_heartbeat();
        let took = elapsed(self.started.elapsed());
        match &result {
            Ok(_) => say(&format!("    done in {took}")),
            Err(error) => match write_log(&self.what, error) {
                Some(log) => say(&format!("    failed after {took}; log: {}", log.display())),
                None => say(&format!("    failed after {took}")),
            },
        }
        result
    }

    fn stop_heartbeat(&mut self) {
        if let Some((stop, thread)) = self.heartbeat.take() {
            drop(stop);
            let _ = thread.join();
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}

/// Runs `work` as one step.
pub fn run<T>(
    what: &str,
    first_time: Option<&str>,
    work: impl FnOnce() -> Result<T, String>,
) -> Result<T, String> {
    let step = step(what, first_time);
    step.end(work())
}

fn say(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}

/// `42 s`, `3 min 5 s`.
pub fn elapsed(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds < 60 {
        format!("{:.1} s", duration.as_secs_f64())
    } else {
        format!("{} min {} s", seconds / 60, seconds % 60)
    }
}

/// Writes why a step failed to `target/harness/failed-<step>.log`.
fn write_log(what: &str, error: &str) -> Option<PathBuf> {
    let name: String = what
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let dir = crate::repo_root().join("target").join("harness");
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(format!("failed-{}.log", name.trim_matches('-')));
    std::fs::write(&path, error).ok()?;
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        assert_eq!(elapsed(Duration::from_millis(4200)), "4.2 s");
        assert_eq!(elapsed(Duration::from_secs(185)), "3 min 5 s");
    }

    #[test]
    fn a_failed_step_leaves_its_error_in_a_log() {
        let result: Result<(), String> =
            run(
                "a test step / failing",
                None,
                || Err("why it failed".into()),
            );
        assert_eq!(result.unwrap_err(), "why it failed");
        let log = crate::repo_root().join("target/harness/failed-a-test-step---failing.log");
        assert_eq!(std::fs::read_to_string(log).unwrap(), "why it failed");
    }
}
