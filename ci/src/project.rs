//! A rendered project on disk, and the tools the harness runs in it.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use crate::command::run_command;
use crate::render::Render;

/// A project rendered by the `template-ci` binary (a separate process, so
/// cargo-generate's environment needs are met without touching ours).
#[derive(Debug)]
pub struct Project {
    pub name: String,
    pub dir: PathBuf,
    release: OnceLock<Result<PathBuf, String>>,
}

impl Project {
    /// Renders `render` with the `template-ci` binary at `binary`.
    pub fn render(binary: &str, render: &Render) -> Result<Self, String> {
        let parent = std::env::temp_dir().join("template-ci");
        let mut command = Command::new(binary);
        command
            .args(["render", "--name", &render.name, "--into"])
            .arg(&parent)
            .arg("--template")
            .arg(&render.repo);
        for (key, value) in &render.defines {
            command.args(["-d", &format!("{key}={value}")]);
        }
        run_command(&mut command)?;
        Ok(Self {
            name: render.name.clone(),
            dir: parent.join(&render.name),
            release: OnceLock::new(),
        })
    }

    /// `cargo <args>` in the project, building into the shared target dir.
    ///
    /// Every rendered project is the package `plugin` 0.1.0 at its workspace
    /// root, so cargo gives their artifacts the same names in the shared
    /// target dir and judges freshness by modification times. So one cargo
    /// command at a time, with this project's sources made newest first.
    pub fn cargo(&self, args: &[&str]) -> Result<Output, String> {
        cargo_in_shared_target(&self.dir, args)
    }

    /// Builds the release binary the way the Dockerfile does (once).
    pub fn release_binary(&self) -> Result<PathBuf, String> {
        self.release
            .get_or_init(|| {
                self.cargo(&["build", "--release", "--locked"])?;
                Ok(crate::rendered_target_dir()
                    .join("release")
                    .join(&self.name))
            })
            .clone()
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.dir.join(path))
            .unwrap_or_else(|e| panic!("{}/{path}: {e}", self.dir.display()))
    }
}

/// Runs cargo in `project` with the shared target dir; see [`Project::cargo`].
pub fn cargo_in_shared_target(project: &Path, args: &[&str]) -> Result<Output, String> {
    let target = crate::rendered_target_dir();
    std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    let lock = File::create(target.join(".harness-lock")).map_err(|e| e.to_string())?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", target.display()))?;
    touch_sources(project)?;
    run_command(
        Command::new("cargo")
            .args(args)
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(project),
    )
}

fn touch_sources(dir: &Path) -> Result<(), String> {
    let now = SystemTime::now();
    let sources = [dir.join("src"), dir.join("tests")];
    for path in sources.iter().flat_map(|folder| crate::files_under(folder)) {
        File::options()
            .write(true)
            .open(&path)
            .and_then(|file| file.set_modified(now))
            .map_err(|e| format!("touching {}: {e}", path.display()))?;
    }
    Ok(())
}

/// A port that was free a moment ago.
pub fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
}

/// A running plugin binary.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Running {
    /// Starts `binary` on a free loopback port and waits until it listens.
    pub fn start(binary: &Path, token_file: &Path, workdir: &Path) -> Result<Self, String> {
        let mut command = Command::new(binary);
        command.current_dir(workdir);
        Self::start_command(command, token_file)
    }

    /// Like [`Running::start`], for a command that ends up executing the plugin.
    pub fn start_command(mut command: Command, token_file: &Path) -> Result<Self, String> {
        let addr = free_port();
        let line = crate::command::describe(&command);
        let child = command
            .env("PLUGIN_TOKEN_FILE", token_file)
            .env("PLUGIN_LISTEN_ADDR", addr.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {line}: {e}"))?;
        let mut running = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if let Some(status) = running.child.try_wait().map_err(|e| e.to_string())? {
                let mut stderr = String::new();
                if let Some(mut pipe) = running.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                return Err(format!("{line} exited at start-up: {status}\n{stderr}"));
            }
            if Instant::now() > deadline {
                return Err(format!("{line} never listened on {addr}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(running)
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self) -> Result<std::process::ExitStatus, String> {
        run_command(Command::new("kill").args(["-TERM", &self.child.id().to_string()]))?;
        self.child.wait().map_err(|e| e.to_string())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
