//! Argo CD's own code as the judge: `ci/argocd/`, a Go program on
//! `github.com/argoproj/argo-cd/v3`, runs Argo CD's proxy selection, plugin
//! generator, template renderer and ApplicationSet reconciler against a
//! project's release binary, and a rolling restart with Argo CD's client.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::command::run_command;
use crate::project::Project;

/// The Go module, and what it is built into (once per run; Go caches the rest).
fn module_dir() -> PathBuf {
    crate::repo_root().join("ci").join("argocd")
}

/// How the judge is built, and vetted (the same flags, so `go vet` reuses
/// the compiled packages): go.sum must be complete; no optimisation, no
/// inlining and no symbol tables, since Argo CD's dependency tree is
/// compiled cold on a fresh machine and the judge runs for seconds.
pub const GO_FLAGS: [&str; 3] = ["-mod=readonly", "-gcflags=all=-N -l", "-ldflags=-s -w"];

/// The judge's binary and Argo CD's CRDs (from the argo-cd module).
fn judge() -> Result<&'static (PathBuf, PathBuf), String> {
    static JUDGE: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    JUDGE
        .get_or_init(|| {
            let binary = crate::repo_root()
                .join("target")
                .join("argocd-judge")
                .join("argocd-judge");
            run_command(
                Command::new("go")
                    .arg("build")
                    .args(GO_FLAGS)
                    .arg("-o")
                    .arg(&binary)
                    .arg(".")
                    .current_dir(module_dir()),
            )
            .map_err(|e| format!("building Argo CD's judge (ci/argocd, needs Go): {e}"))?;
            let output = run_command(
                Command::new("go")
                    .args(["list", "-mod=readonly", "-m", "-f", "{{.Dir}}"])
                    .arg("github.com/argoproj/argo-cd/v3")
                    .current_dir(module_dir()),
            )?;
            let dir = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            Ok((binary, Path::new(&dir).join("manifests").join("crds")))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Runs Argo CD's code against the project in `dir` whose release binary is
/// `binary`, with `env` for its generator; what Argo CD did, or why it
/// failed.
pub fn run_on(dir: &Path, binary: &Path, env: &[(String, String)]) -> Result<String, String> {
    let (judge, crds) = judge()?;
    let output = run_command(
        Command::new(judge)
            .arg("project")
            .arg("--dir")
            .arg(dir)
            .arg("--binary")
            .arg(binary)
            .arg("--crds")
            .arg(crds)
            .envs(env.iter().map(|(k, v)| (k, v))),
    )?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The External Secrets Operator release whose CRDs the ExternalSecrets are
/// validated against: its Go module carries them (`config/crds/bases`), and
/// the module proxy serves it with this checksum. Never committed here.
const EXTERNAL_SECRETS: (&str, &str) = (
    "github.com/external-secrets/external-secrets@v0.16.2",
    "h1:iNY+gIgSyL5higXTfnz+hdPCaiB/43UiHLqE7HBpj68=",
);

/// The ExternalSecret CRD of [`EXTERNAL_SECRETS`], downloaded once.
pub fn external_secret_crd() -> Result<&'static Path, String> {
    static CRD: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    CRD.get_or_init(|| {
        let (module, sum) = EXTERNAL_SECRETS;
        let output = run_command(
            Command::new("go")
                .args(["mod", "download", "-json", module])
                .current_dir(module_dir()),
        )?;
        let download: serde_json::Value =
            serde_json::from_slice(&output.stdout).map_err(|e| format!("{module}: {e}"))?;
        ensure!(
            download["Sum"] == sum,
            "{module}: checksum {}, expected {sum}",
            download["Sum"]
        );
        let dir = download["Dir"].as_str().unwrap_or_default();
        Ok(Path::new(dir).join("config/crds/bases/external-secrets.io_externalsecrets.yaml"))
    })
    .as_deref()
    .map_err(Clone::clone)
}

/// `argocd-judge ARGS...`: its standard output.
pub fn command(args: &[&str]) -> Result<String, String> {
    let (judge, _) = judge()?;
    let output = run_command(Command::new(judge).args(args))?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Only the check of `deploy/argocd/application.yaml` (part of [`run_on`]):
/// valid against Argo CD's Application CRD and accepted by its validation.
pub fn application(dir: &Path) -> Result<String, String> {
    let (judge, crds) = judge()?;
    let output = run_command(
        Command::new(judge)
            .arg("application")
            .arg("--dir")
            .arg(dir)
            .arg("--crds")
            .arg(crds),
    )?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// [`run_on`] for a rendered project.
pub fn run(project: &Project) -> Result<String, String> {
    run_on(&project.dir, &project.release_binary()?, &project.env)
        .map_err(|e| format!("{}: Argo CD's code: {e}", project.name))
}
