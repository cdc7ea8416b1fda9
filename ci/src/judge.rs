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
fn module() -> PathBuf {
    crate::repo_root().join("ci").join("argocd")
}

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
                    .args(["build", "-mod=readonly", "-o"])
                    .arg(&binary)
                    .arg(".")
                    .current_dir(module()),
            )
            .map_err(|e| format!("building Argo CD's judge (ci/argocd, needs Go): {e}"))?;
            let output = run_command(
                Command::new("go")
                    .args(["list", "-mod=readonly", "-m", "-f", "{{.Dir}}"])
                    .arg("github.com/argoproj/argo-cd/v3")
                    .current_dir(module()),
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

/// [`run_on`] for a rendered project.
pub fn run(project: &Project) -> Result<String, String> {
    run_on(&project.dir, &project.release_binary()?, &project.env)
        .map_err(|e| format!("{}: Argo CD's code: {e}", project.name))
}
