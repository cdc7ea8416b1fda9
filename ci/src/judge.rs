//! Argo CD's own code as the judge: every rendered project carries it in
//! `argocd-judge/` (a Go program on `github.com/argoproj/argo-cd/v3`) and
//! runs it with `argocd-judge/judge.sh`; the harness runs that same command
//! on each project, with the release binary it built.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use crate::command::{own_cargo_environment, run_command};
use crate::project::Project;

/// The author's command, relative to the project's root.
pub const COMMAND: &str = "argocd-judge/judge.sh";

/// How `judge.sh` builds the judge, for `go vet` (the same flags, so it
/// reuses the compiled packages; a test holds the script to them).
pub const GO_FLAGS: [&str; 3] = ["-mod=readonly", "-gcflags=all=-N -l", "-ldflags=-s -w"];

/// Compiles the template's judge once per process, before any project's
/// `judge.sh` runs: tests run in parallel, and Go's build cache does not
/// stop two builds from compiling Argo CD's packages at the same time.
/// Every project's copy is the same, so theirs then only compile their own
/// package and link.
fn warm_go_cache() -> Result<(), String> {
    static WARM: OnceLock<Result<(), String>> = OnceLock::new();
    WARM.get_or_init(|| {
        let module = crate::repo_root().join("template").join("argocd-judge");
        let binary = crate::repo_root()
            .join("target")
            .join("argocd-judge")
            .join("warm");
        run_command(
            Command::new("go")
                .arg("build")
                .args(GO_FLAGS)
                .arg("-o")
                .arg(binary)
                .arg(".")
                .current_dir(module),
        )
        .map(drop)
        .map_err(|e| format!("compiling Argo CD's judge (needs Go): {e}"))
    })
    .clone()
}

/// `argocd-judge/judge.sh ARGS` in the project in `dir`: what Argo CD did,
/// or why it failed.
fn judge(dir: &Path, args: &[&str], env: &[(String, String)]) -> Result<String, String> {
    warm_go_cache()?;
    let output = run_command(
        Command::new(dir.join(COMMAND))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v))),
    )?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs Argo CD's code against the project in `dir` whose release binary is
/// `binary`, with `env` for its generator.
pub fn run_on(dir: &Path, binary: &Path, env: &[(String, String)]) -> Result<String, String> {
    let binary = binary.display().to_string();
    judge(dir, &["--binary", &binary], env)
}

/// Only the check of `deploy/argocd/application.yaml` (part of [`run_on`]):
/// valid against Argo CD's Application CRD and accepted by its validation.
pub fn application(dir: &Path) -> Result<String, String> {
    judge(dir, &["application"], &[])
}

/// Only the check of `deploy/components/external-secrets` (part of
/// [`run_on`]): valid against the operator's CRD, Argo CD's token template
/// rendered as the operator renders it.
pub fn external_secrets(dir: &Path) -> Result<String, String> {
    judge(dir, &["external-secrets"], &[])
}

/// The project's CI job that runs the judge, and its steps.
const CI_WORKFLOW: &str = ".github/workflows/ci.yml";
const CI_JOB: &str = "argocd";

/// Runs the judge as the project's CI does: the `run` steps of its
/// workflow's `argocd` job as written, each as GitHub runs it, or the
/// command alone where the project has no workflows. With nothing of the
/// harness's: the judge builds the release binary itself (into the shared
/// target folder, where it is built already), and the plugin starts with
/// the project's own settings (`deploy/examples/judge.env`).
pub fn run(project: &Project) -> Result<String, String> {
    let steps = if project.dir.join(CI_WORKFLOW).exists() {
        ci_steps(&project.read(CI_WORKFLOW))?
    } else {
        vec![COMMAND.to_owned()]
    };
    warm_go_cache()?;
    let mut said = String::new();
    for step in steps {
        let output = run_command(
            own_cargo_environment(&mut Command::new("bash"))
                .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &step])
                .env("CARGO_TARGET_DIR", crate::rendered_target_dir())
                .current_dir(&project.dir),
        )
        .map_err(|e| format!("{}: Argo CD's code: {e}", project.name))?;
        said.push_str(&String::from_utf8_lossy(&output.stdout));
    }
    Ok(said)
}

/// The `run` steps of the workflow's judge job, which must run as written
/// on any machine (no `${{ }}` expression in them) and run the command.
fn ci_steps(workflow: &str) -> Result<Vec<String>, String> {
    let workflow = crate::manifests::parse_yaml(workflow)?;
    let steps = workflow
        .first()
        .and_then(|w| w["jobs"][CI_JOB]["steps"].as_array())
        .ok_or_else(|| format!("{CI_WORKFLOW} has no job {CI_JOB} with steps"))?;
    let runs: Vec<String> = steps
        .iter()
        .filter_map(|step| step["run"].as_str().map(str::to_owned))
        .collect();
    ensure!(
        runs.iter().all(|run| !run.contains("${{")),
        "{CI_WORKFLOW}: job {CI_JOB} has a run step with a ${{{{ }}}} expression: {runs:?}"
    );
    ensure!(
        runs.iter().any(|run| run.contains(COMMAND)),
        "{CI_WORKFLOW}: job {CI_JOB} does not run {COMMAND}: {runs:?}"
    );
    Ok(runs)
}
