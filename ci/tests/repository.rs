//! The template repository itself: its scripts, its workflow, and the two
//! commands its README promises.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use template_ci::command::{run, run_command};
use template_ci::project::free_port;
use template_ci::repo_root;
use template_ci::tools::python_tool;

const CI: &str = env!("CARGO_BIN_EXE_template-ci");
const SCRIPTS: [&str; 4] = [
    ".ci/run",
    "ci/compat.sh",
    "ci/e2e/run.sh",
    "ci/e2e/image-smoke.sh",
];

#[test]
fn scripts_parse_and_pass_shellcheck() {
    let shellcheck = python_tool("shellcheck").unwrap();
    for script in SCRIPTS {
        run(&repo_root(), "bash", &["-n", script]).unwrap();
        run(&repo_root(), shellcheck.to_str().unwrap(), &[script]).unwrap();
    }
}

/// The Go module that runs Argo CD's code: formatted, vetted, its go.sum
/// complete (`-mod=readonly` fails on a missing line).
#[test]
fn argocd_judge_passes_gofmt_and_go_vet() {
    let module = repo_root().join("ci").join("argocd");
    let unformatted = run(&module, "gofmt", &["-l", "."]).unwrap();
    assert!(
        unformatted.stdout.is_empty(),
        "gofmt would change: {}",
        String::from_utf8_lossy(&unformatted.stdout)
    );
    let mut vet = vec!["vet"];
    vet.extend(template_ci::judge::GO_FLAGS);
    vet.push("./...");
    run(&module, "go", &vet).unwrap();
}

#[test]
fn workflow_passes_actionlint_and_zizmor() {
    template_ci::checks::lint_workflows(&repo_root(), &[".github/workflows/template.yml"]).unwrap();
}

#[test]
fn workflow_matches_the_github_schema() {
    let check = python_tool("check-jsonschema").unwrap();
    run(
        &repo_root(),
        check.to_str().unwrap(),
        &[
            "--builtin-schema",
            "vendor.github-workflows",
            ".github/workflows/template.yml",
        ],
    )
    .unwrap();
}

#[test]
fn ci_runs_the_readme_test_command() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let ci = std::fs::read_to_string(repo_root().join(".ci/run")).unwrap();
    assert!(
        readme.contains("\ncargo test                        #"),
        "README's test command"
    );
    assert!(
        ci.contains("\nstage \"cargo test\" cargo test\n"),
        ".ci/run runs it"
    );
    assert!(
        readme.contains("\ncargo run -p template-ci -- dev   #"),
        "README's run command"
    );
}

/// README command one: render, build and run a plugin, print a curl that works.
#[test]
fn dev_command_runs_a_plugin_and_prints_a_working_curl() {
    let log = template_ci::run_dir().join("dev.log");
    let port = free_port().port().to_string();
    let mut child = Command::new(CI)
        .args(["dev", "--name", "plugin-dev", "--port", &port])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let group = child.id().to_string();
    let stop = || {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{group}")])
            .status();
    };

    let mut curl = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.trim_start().starts_with("curl") || !curl.is_empty() {
            curl.push_str(&line);
            curl.push('\n');
            if !line.ends_with('\\') {
                break;
            }
        }
    }
    // Keep reading, as a terminal would: a closed pipe would end the command.
    std::thread::spawn(move || lines.for_each(drop));
    assert!(
        curl.contains(&format!("127.0.0.1:{port}")),
        "printed: {curl}"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    let reply = loop {
        match run_command(Command::new("bash").args(["-c", &format!("set -o pipefail; {curl}")])) {
            Ok(output) => break String::from_utf8(output.stdout).unwrap(),
            Err(error) => {
                let exited = child.try_wait().unwrap();
                if exited.is_some() || Instant::now() > deadline {
                    stop();
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    panic!(
                        "the printed curl never worked ({exited:?}): {error}\n--- dev's log\n{log}"
                    );
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    stop();
    let status = child.wait().unwrap();
    // The generator's example request, answered with parameter sets.
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert!(
        reply["output"]["parameters"]
            .as_array()
            .is_some_and(|sets| !sets.is_empty()),
        "{reply}"
    );
    assert!(
        status.success(),
        "Ctrl-C ends the dev command cleanly: {status}"
    );
}
