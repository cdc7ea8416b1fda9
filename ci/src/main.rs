//! `template-ci`: render the template and try the result
//! (`cargo run -p template-ci -- --help` lists the commands).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};
use template_ci::progress;
use template_ci::project::cargo_in_shared_target;
use template_ci::render::{Render, ensure_author};
use template_ci::{rendered_target_dir, repo_root};

/// Renders the template and tries the result.
#[derive(Parser)]
#[command(name = "template-ci")]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Render a plugin with the defaults, build it and run it on loopback
    Dev {
        #[arg(long, default_value = "my-plugin")]
        name: String,
        #[arg(long, default_value = "4355")]
        port: String,
    },
    /// Benchmark the default plugin against nginx and Python
    Bench {
        #[arg(long)]
        seconds: Option<u64>,
        #[arg(long)]
        connections: Option<u32>,
        /// A short run that must work; its numbers are not judged
        #[arg(long)]
        smoke: bool,
    },
    /// Render the template into DIR/NAME
    Render {
        #[arg(long)]
        name: String,
        #[arg(long, value_name = "DIR")]
        into: PathBuf,
        /// The template repository (default: this checkout)
        #[arg(long, value_name = "REPO")]
        template: Option<PathBuf>,
        /// An answer, KEY=VALUE
        #[arg(short = 'd', long = "define", value_name = "KEY=VALUE", value_parser = key_value)]
        defines: Vec<(String, String)>,
    },
    /// Every check the template's CI runs on a rendered project
    Check { project: PathBuf },
    /// Print the path of a harness tool (cargo-deny, cargo-generate),
    /// installing it first if it is missing
    Tool {
        #[arg(value_parser = template_ci::tools::CARGO_TOOLS.map(|(name, _)| name))]
        name: String,
    },
    /// Rewrite template/Cargo.lock.liquid after a dependency change
    Lock,
    /// Rewrite the version in template/.template.toml
    Stamp,
    /// Bring the template's changes into a rendered project
    Upgrade {
        project: PathBuf,
        /// Only say whether the project is behind (exit 1 when it is)
        #[arg(long)]
        check: bool,
        /// Run with uncommitted changes
        #[arg(long)]
        force: bool,
        /// The template commit to upgrade from
        #[arg(long, value_name = "REV")]
        from: Option<String>,
        /// The template repository (default: this checkout)
        #[arg(long, value_name = "REPO")]
        template: Option<PathBuf>,
    },
}

fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected key=value, got {text:?}"))
}

fn main() -> ExitCode {
    ensure_author();
    let result = match Cli::parse().command {
        Commands::Dev { name, port } => dev(&name, &port),
        Commands::Render {
            name,
            into,
            template,
            defines,
        } => render(&name, &into, template, defines),
        Commands::Bench {
            seconds,
            connections,
            smoke,
        } => bench(seconds, connections, smoke),
        Commands::Tool { name } => tool(&name),
        Commands::Lock => lock(),
        Commands::Stamp => stamp(),
        Commands::Check { project } => check(&project),
        Commands::Upgrade {
            project,
            check,
            force,
            from,
            template,
        } => {
            let options = template_ci::upgrade::Options { force, from };
            return upgrade(
                &project,
                check,
                &template.unwrap_or_else(repo_root),
                &options,
            );
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn render(
    name: &str,
    into: &Path,
    template: Option<PathBuf>,
    defines: Vec<(String, String)>,
) -> Result<(), String> {
    let mut render = Render::new(name);
    render.defines = defines;
    if let Some(repo) = template {
        render.repo = repo;
    }
    let project = render.into_dir(into)?;
    println!("{}", project.display());
    Ok(())
}

/// Every check the template's CI runs on a rendered project, building in
/// the harness's shared target folder.
fn check(dir: &Path) -> Result<(), String> {
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let project = template_ci::project::Project::open(&dir)?;
    let started = std::time::Instant::now();
    template_ci::checks::all(&project)?;
    eprintln!(
        "{}: every check passed in {}",
        project.name,
        template_ci::progress::elapsed(started.elapsed())
    );
    Ok(())
}

/// Renders a plugin with the defaults, builds it, and runs it on loopback
/// with a fresh development token.
fn dev(name: &str, port: &str) -> Result<(), String> {
    let dev_dir = repo_root().join("target").join("dev");
    let project = Render::new(name)
        .define("plugin_port", port)
        .into_dir(&dev_dir)?;
    eprintln!("rendered {}", project.display());

    let token_file = dev_dir.join(format!("{name}.token"));
    write_token(&token_file)?;

    let target_dir = rendered_target_dir();
    progress::run(
        &format!("building {name}"),
        Some(template_ci::tools::FIRST_USE.debug_build),
        || cargo_in_shared_target(&project, &["build", "--locked", "--quiet"]),
    )?;

    let binary = target_dir.join("debug").join(name);
    // The generator's own example request (`EXAMPLE_REQUEST` in src/generator.rs).
    let output =
        template_ci::command::run_command(Command::new(&binary).args(["preview", "--request"]))?;
    let request = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let url = format!("http://127.0.0.1:{port}/api/v1/getparams.execute");
    let message = format!(
        "\nThe plugin {name} runs on 127.0.0.1:{port}; its code is in {}.\n\
         Its token is in {}. Talk to it from another shell:\n\n  \
         curl -s {url} \\\n    -H \"Authorization: Bearer $(cat {})\" \\\n    \
         -d '{request}'\n\n\
         Or run the generator once, without a server: {} preview [PARAMETERS]\n\
         Stop it with Ctrl-C.\n",
        project.display(),
        token_file.display(),
        token_file.display(),
        binary.display(),
    );
    // One write, and no panic if whoever reads it has gone.
    let mut stdout = std::io::stdout();
    let _ = std::io::Write::write_all(&mut stdout, message.as_bytes());
    let _ = std::io::Write::flush(&mut stdout);
    // Become the plugin, so Ctrl-C reaches it and it shuts down gracefully.
    let error = Command::new(&binary)
        .env("PLUGIN_TOKEN_FILE", &token_file)
        .env("PLUGIN_LISTEN_ADDR", format!("127.0.0.1:{port}"))
        // Any free port: its address is in the first log line.
        .env("PLUGIN_METRICS_ADDR", "127.0.0.1:0")
        .exec();
    Err(format!("cannot start the plugin: {error}"))
}

fn tool(name: &str) -> Result<(), String> {
    use template_ci::tools::{CARGO_TOOLS, cargo_tool};
    let pin = CARGO_TOOLS
        .into_iter()
        .find(|(krate, _)| *krate == name)
        .ok_or_else(|| format!("no tool {name}"))?;
    println!("{}", cargo_tool(pin)?.display());
    Ok(())
}

/// Renders the default plugin, builds it for release and benchmarks it.
fn bench(seconds: Option<u64>, connections: Option<u32>, smoke: bool) -> Result<(), String> {
    let options = template_ci::bench::Options {
        seconds: seconds.unwrap_or(if smoke { 1 } else { 10 }),
        connections: connections.unwrap_or(if smoke { 8 } else { 64 }),
        out: repo_root().join("target").join("bench"),
    };
    let project = Render::new("plugin-bench").into_dir(&options.out)?;
    progress::run(
        &format!("building {} for release", project.display()),
        Some(template_ci::tools::FIRST_USE.release_build),
        || cargo_in_shared_target(&project, &["build", "--release", "--locked", "--quiet"]),
    )?;
    let binary = rendered_target_dir().join("release").join("plugin-bench");
    let tls_project = Render::new("plugin-bench-tls")
        .define("tls", "true")
        .into_dir(&options.out)?;
    progress::run(
        &format!("building {} for release", tls_project.display()),
        Some(template_ci::tools::FIRST_USE.release_build),
        || cargo_in_shared_target(&tls_project, &["build", "--release", "--locked", "--quiet"]),
    )?;
    let tls_binary = rendered_target_dir()
        .join("release")
        .join("plugin-bench-tls");
    let python = repo_root()
        .join("ci")
        .join("bench")
        .join("python_plugin.py");
    let report = progress::run(
        &format!(
            "measuring the plugin (HTTP and HTTPS), nginx and Python, {} s each with {} connections",
            options.seconds, options.connections
        ),
        None,
        || template_ci::bench::run(&binary, &tls_binary, &project, &python, &options),
    )?;
    println!("{}", template_ci::bench::markdown(&report));
    let target = |name: &str, ok: bool| println!("- {name}: {}", if ok { "met" } else { "MISSED" });
    println!("Targets:");
    target(
        "plugin ≥ 0.7 × nginx (no access log)",
        report.ratio("nginx, fixed body, no access log") >= 0.7,
    );
    target(
        "plugin ≥ 0.7 × nginx (access log, like the plugin)",
        report.ratio("nginx, fixed body, access log") >= 0.7,
    );
    target("plugin ≥ 20 × Python", report.ratio("Python") >= 20.0);
    target(
        "HTTPS ≥ 0.6 × HTTP, kept alive",
        report.between("plugin over HTTPS (tls)", "plugin (Rust") >= 0.6,
    );
    target("idle RSS ≤ 8 MiB", report.idle_rss_kib <= 8 * 1024);
    target("ready ≤ 50 ms after exec", report.ready_ms <= 50.0);
    let clean = |load: &template_ci::bench::Load| {
        load.requests > 0 && load.errors == 0 && load.non_2xx == 0
    };
    let plugins: Vec<_> = report
        .loads
        .iter()
        .filter(|load| load.name.starts_with("plugin"))
        .collect();
    target(
        "plugin (HTTP and HTTPS): zero errors and zero non-2xx",
        plugins.iter().all(|load| clean(load)),
    );
    println!(
        "
Written: {0}/results.md and {0}/results.svg",
        options.out.display()
    );
    if smoke && !plugins.iter().all(|load| clean(load)) {
        return Err("smoke run: the plugin did not answer the benchmark cleanly".into());
    }
    Ok(())
}

/// Rewrites `template/Cargo.lock.liquid` after a dependency change: renders
/// both dependency variants, lets cargo update their locks (keeping every
/// pin it can), and merges them (see `template_ci::lockfile`).
fn lock() -> Result<(), String> {
    use template_ci::lockfile::{PLACEHOLDER, PROBE, write};
    let dir = repo_root().join("target").join("lock");
    let mut projects = Vec::new();
    for on in [false, true] {
        let parent = dir.join(format!("{PLACEHOLDER}-{on}"));
        let project = Render::new(PROBE)
            .define(PLACEHOLDER, &on.to_string())
            .into_dir(&parent)?;
        template_ci::command::run(&project, "cargo", &["metadata", "--format-version", "1"])?;
        projects.push(project);
    }
    write(&repo_root(), &projects[0], &projects[1])?;
    eprintln!("wrote template/Cargo.lock.liquid");
    Ok(())
}

/// Writes the template's current version into `template/.template.toml`.
fn stamp() -> Result<(), String> {
    let (stamp, changed) = template_ci::upgrade::write_stamp(&repo_root())?;
    if changed {
        eprintln!("template version is now {stamp}: commit template/.template.toml");
    } else {
        eprintln!("template version {stamp} is current");
    }
    Ok(())
}

/// `upgrade`: exit 0 when done (or up to date), 1 on conflicts, on being
/// behind (`--check`) and on errors.
fn upgrade(
    project: &Path,
    check: bool,
    template: &Path,
    options: &template_ci::upgrade::Options,
) -> ExitCode {
    use template_ci::upgrade::{Change, behind, upgrade};
    if check {
        return match behind(template, project) {
            Ok(None) => {
                println!("{} is up to date with the template", project.display());
                ExitCode::SUCCESS
            }
            Ok(Some(commits)) => {
                println!(
                    "{} is behind the template by {commits} commit(s) that change it; \
                     upgrade with: cargo run -p template-ci -- upgrade {}",
                    project.display(),
                    project.display()
                );
                ExitCode::FAILURE
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let report = match upgrade(template, project, options) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "upgraded {} from template version {} to {}",
        project.display(),
        report.from,
        report.to
    );
    for (path, change) in &report.changes {
        let what = match change {
            Change::Updated => "updated ",
            Change::Merged => "merged  ",
            Change::Conflict => "CONFLICT",
            Change::Added => "added   ",
            Change::Removed => "removed ",
            Change::KeptChanged => "kept     (the template removed it; you had changed it)",
            Change::KeptDeleted => "skipped  (the template changed it; you had deleted it)",
        };
        println!("  {what} {path}");
    }
    let conflicts = report.conflicts();
    if conflicts.is_empty() {
        println!("no conflicts: review with `git diff`, run `cargo test --workspace`, commit");
        ExitCode::SUCCESS
    } else {
        println!(
            "{} conflict(s), marked <<<<<<< yours / ======= / >>>>>>> template now in: {}\n\
             resolve them, run `cargo test --workspace`, commit",
            conflicts.len(),
            conflicts.join(", ")
        );
        ExitCode::FAILURE
    }
}

/// A random 256-bit token, hex-encoded, readable only by its owner.
fn write_token(path: &PathBuf) -> Result<(), String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, token.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
