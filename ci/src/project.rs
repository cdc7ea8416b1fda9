//! A rendered project on disk, and the tools the harness runs in it.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::argocd::Controller;
use crate::command::{own_cargo_environment, run_command};
use crate::example::Example;
use crate::render::Render;

/// A project rendered by the `template-ci` binary (a separate process, so
/// cargo-generate's environment needs are met without touching ours).
#[derive(Debug)]
pub struct Project {
    pub name: String,
    pub dir: PathBuf,
    /// Environment the plugin needs to start: its generator's settings
    /// (none for most), and with `tls` the certificate files.
    pub env: Vec<(String, String)>,
    /// With `tls`: the certificate the plugin serves, from the run's CA.
    pub tls: Option<crate::tls::Pair>,
    release: OnceLock<Result<PathBuf, String>>,
    example: OnceLock<Result<Example, String>>,
}

impl Project {
    /// Renders `render` with the `template-ci` binary at `binary`, into this
    /// run's folder.
    pub fn render(binary: &str, render: &Render) -> Result<Self, String> {
        let parent = crate::run_dir().join("projects");
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
        Self::open(&parent.join(&render.name))
    }

    /// A project rendered earlier into `dir`, as its `.template.toml`
    /// records it.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let recorded = crate::upgrade::Recorded::read(dir)?;
        let http_client = recorded
            .answers
            .iter()
            .any(|(key, value)| key == "http_client" && value == "true");
        let mut env = if http_client {
            crate::upstream::http_client_env()
        } else {
            Vec::new()
        };
        let tls = if plugin_server_features(dir).contains(&"tls".to_owned()) {
            let files = crate::run_dir().join("tls").join(&recorded.name);
            let pair = crate::tls::TestCa::get().issue(&files, "plugin")?;
            env.push((
                "PLUGIN_TLS_CERT_FILE".into(),
                pair.cert.display().to_string(),
            ));
            env.push(("PLUGIN_TLS_KEY_FILE".into(), pair.key.display().to_string()));
            Some(pair)
        } else {
            None
        };
        Ok(Self {
            name: recorded.name,
            dir: dir.to_path_buf(),
            env,
            tls,
            release: OnceLock::new(),
            example: OnceLock::new(),
        })
    }

    /// Whether the project serves `/metrics` (the option turns on the
    /// plugin-server feature).
    pub fn metrics(&self) -> bool {
        plugin_server_features(&self.dir).contains(&"metrics".to_owned())
    }

    /// `cargo <args>` in the project, building into the shared target dir
    /// (each project is a package of its own name there), one at a time.
    pub fn cargo(&self, args: &[&str]) -> Result<Output, String> {
        cargo_in_shared_target(&self.dir, args)
    }

    /// Builds the release binary the way the Dockerfile does (once), and
    /// returns a copy of its own: the shared target folder's file is rebuilt
    /// by the Dockerfile replay while tests may still be running this one.
    pub fn release_binary(&self) -> Result<PathBuf, String> {
        self.release
            .get_or_init(|| {
                self.cargo(&["build", "--release", "--locked"])?;
                let built = crate::rendered_target_dir()
                    .join("release")
                    .join(&self.name);
                let copy = crate::run_dir().join("release").join(&self.name);
                fs_err::create_dir_all(crate::run_dir().join("release"))
                    .map_err(|e| e.to_string())?;
                fs_err::copy(&built, &copy).map_err(|e| e.to_string())?;
                Ok(copy)
            })
            .clone()
    }

    /// The debug binary (`cargo build`), for checks whose verdict does not
    /// depend on how the binary was optimised.
    pub fn debug_binary(&self) -> Result<PathBuf, String> {
        self.cargo(&["build", "--locked"])?;
        Ok(crate::rendered_target_dir().join("debug").join(&self.name))
    }

    /// The project's example request and its answer (see [`Example`]).
    pub fn example(&self) -> Result<Example, String> {
        self.example
            .get_or_init(|| Example::from_binary(&self.release_binary()?, &self.env))
            .clone()
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.dir.join(path))
            .unwrap_or_else(|e| panic!("{}/{path}: {e}", self.dir.display()))
    }
}

/// The features the project's Cargo.toml turns on in plugin-server.
fn plugin_server_features(dir: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
    manifest
        .lines()
        .find(|line| line.starts_with("plugin-server = "))
        .and_then(|line| line.split_once("features = [")?.1.split_once(']'))
        .map(|(features, _)| {
            features
                .split(',')
                .map(|feature| feature.trim().trim_matches('"').to_owned())
                .filter(|feature| !feature.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs cargo in `project` with the shared target dir; see [`Project::cargo`].
/// Debug builds carry line tables only: backtraces keep their lines, and
/// the many test builds compile and link faster.
pub fn cargo_in_shared_target(project: &Path, args: &[&str]) -> Result<Output, String> {
    let _lock = lock_shared_target()?;
    run_command(
        own_cargo_environment(&mut Command::new("cargo"))
            .args(args)
            .env("CARGO_TARGET_DIR", crate::rendered_target_dir())
            .env("CARGO_PROFILE_DEV_DEBUG", "line-tables-only")
            .current_dir(project),
    )
}

/// Holds the shared target folder for one build at a time (released on drop).
pub fn lock_shared_target() -> Result<File, String> {
    let target = crate::rendered_target_dir();
    fs_err::create_dir_all(&target).map_err(|e| e.to_string())?;
    let lock = File::create(target.join(".harness-lock")).map_err(|e| e.to_string())?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", target.display()))?;
    Ok(lock)
}

/// A port that was free a moment ago.
///
/// Chosen below Linux's ephemeral range (32768 and up), where the kernel
/// never hands it to another socket of its own accord between now and the
/// moment the plugin binds it.
pub fn free_port() -> SocketAddr {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new();
    (0u64..)
        .map(|attempt| 20_000 + (random.hash_one(attempt) % 12_000) as u16)
        .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
        .take(1000)
        .find(|addr| TcpListener::bind(addr).is_ok())
        .expect("a free loopback port")
}

/// A running plugin binary.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
    /// Where it serves `GET /metrics` (when the project has metrics).
    pub metrics_addr: SocketAddr,
    /// With `tls`: a client that trusts the plugin's certificate.
    pub https: Option<Arc<rustls::ClientConfig>>,
}

impl Running {
    /// Starts the project's release binary on a free loopback port and
    /// waits until it listens.
    pub fn start(project: &Project, token_file: &Path) -> Result<Self, String> {
        let mut command = Command::new(project.release_binary()?);
        command.current_dir(&project.dir);
        Self::start_command(project, command, token_file)
    }

    /// Like [`Running::start`], for a command that ends up executing the plugin.
    pub fn start_command(
        project: &Project,
        mut command: Command,
        token_file: &Path,
    ) -> Result<Self, String> {
        let addr = free_port();
        let metrics_addr = free_port();
        let line = crate::command::describe(&command);
        let child = command
            .envs(project.env.iter().map(|(k, v)| (k, v)))
            .env("PLUGIN_TOKEN_FILE", token_file)
            .env("PLUGIN_LISTEN_ADDR", addr.to_string())
            .env("PLUGIN_METRICS_ADDR", metrics_addr.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {line}: {e}"))?;
        let https = project
            .tls
            .as_ref()
            .map(|_| crate::tls::TestCa::get().client());
        let mut running = Self {
            child,
            addr,
            metrics_addr,
            https,
        };
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

    /// Argo CD's controller calling this plugin (over HTTPS with `tls`).
    pub fn controller(&self, token: &str) -> Controller {
        match &self.https {
            Some(tls) => Controller::https(self.addr, token, Arc::clone(tls)),
            None => Controller::new(self.addr, token),
        }
    }

    /// A new connection to the plugin's port, over TLS with `tls`.
    pub fn connect(&self, timeout: Duration) -> Result<Box<dyn crate::tls::Stream>, String> {
        crate::tls::connect(self.addr, self.https.as_ref(), timeout)
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
