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

/// The Go module that runs Argo CD's code (one copy, in the template):
/// formatted, vetted with the flags `judge.sh` builds it with, its go.sum
/// complete (`-mod=readonly` fails on a missing line), and its tests pass:
/// `printed_test.go` holds the table of what Argo CD prints for returned
/// values, which plugin-server's Go printing and the README follow.
#[test]
fn argocd_judge_passes_gofmt_go_vet_and_its_tests() {
    let module = repo_root().join("template").join("argocd-judge");
    let unformatted = run(&module, "gofmt", &["-l", "."]).unwrap();
    assert!(
        unformatted.stdout.is_empty(),
        "gofmt would change: {}",
        String::from_utf8_lossy(&unformatted.stdout)
    );
    let script = std::fs::read_to_string(module.join("judge.sh")).unwrap();
    for flag in template_ci::judge::GO_FLAGS {
        assert!(script.contains(flag), "judge.sh builds without {flag}");
    }
    let mut vet = vec!["vet"];
    vet.extend(template_ci::judge::GO_FLAGS);
    vet.push("./...");
    run(&module, "go", &vet).unwrap();
    let mut test = vec!["test"];
    test.extend(template_ci::judge::GO_FLAGS);
    test.extend(["-count=1", "./..."]);
    let tested = run(&module, "go", &test).unwrap();
    assert!(
        String::from_utf8_lossy(&tested.stdout).contains("ok"),
        "{}",
        String::from_utf8_lossy(&tested.stdout)
    );
}

/// Without Go, or with one older than go.mod asks for, the judge's command
/// says which Go it needs and exits 2 (before building anything).
#[test]
fn the_judge_names_the_go_it_needs() {
    let script = repo_root().join("template/argocd-judge/judge.sh");
    let module = std::fs::read_to_string(repo_root().join("template/argocd-judge/go.mod")).unwrap();
    let required = module
        .lines()
        .find_map(|line| line.strip_prefix("go "))
        .unwrap();
    // A PATH with bash and coreutils but no Go; then one whose go is 1.25.
    let bin = template_ci::run_dir().join("no-go-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["bash", "sed", "sort", "dirname"] {
        let found = run(&repo_root(), "bash", &["-c", &format!("command -v {tool}")]).unwrap();
        let path = String::from_utf8_lossy(&found.stdout).trim().to_owned();
        let link = bin.join(tool);
        if !link.exists() {
            std::os::unix::fs::symlink(path, link).unwrap();
        }
    }
    let judge = |path: &std::path::Path| {
        Command::new(bin.join("bash"))
            .arg(&script)
            .env("PATH", path)
            .output()
            .unwrap()
    };
    let without = judge(&bin);
    assert_eq!(without.status.code(), Some(2));
    let said = String::from_utf8_lossy(&without.stderr);
    assert!(
        said.contains(&format!("needs Go {required} or newer on PATH")),
        "{said}"
    );

    let old = template_ci::run_dir().join("old-go-bin");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("go"), "#!/bin/sh\necho go1.25.0\n").unwrap();
    run(&old, "chmod", &["+x", "go"]).unwrap();
    let path = std::env::join_paths([&old, &bin]).unwrap();
    let older = judge(std::path::Path::new(&path));
    assert_eq!(older.status.code(), Some(2));
    let said = String::from_utf8_lossy(&older.stderr);
    assert!(
        said.contains(&format!("needs Go {required} or newer; this is go1.25.0")),
        "{said}"
    );
}

/// One Go module on argo-cd in the repository: the one every project gets.
#[test]
fn one_go_module_on_argo_cd() {
    let files = run(&repo_root(), "git", &["ls-files", "*go.mod"]).unwrap();
    let modules: Vec<String> = String::from_utf8_lossy(&files.stdout)
        .lines()
        .filter(|path| {
            std::fs::read_to_string(repo_root().join(path))
                .is_ok_and(|text| text.contains("github.com/argoproj/argo-cd/"))
        })
        .map(str::to_owned)
        .collect();
    assert_eq!(modules, ["template/argocd-judge/go.mod"]);
}

#[test]
fn workflow_passes_actionlint_and_zizmor() {
    template_ci::checks::lint_workflows(&repo_root(), &[".github/workflows/template.yml"]).unwrap();
}

/// The workflow's test jobs, together, run what `cargo test` runs: every
/// unit and doc test, plugin-server's suite, and each harness test binary.
#[test]
fn workflow_shards_cover_every_test() {
    let text = std::fs::read_to_string(repo_root().join(".github/workflows/template.yml")).unwrap();
    let workflow = template_ci::manifests::parse_yaml(&text).unwrap();
    let shards: Vec<&str> = workflow[0]["jobs"]["test"]["strategy"]["matrix"]["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|shard| shard.as_str().unwrap())
        .collect();
    let mut expected = vec![
        "--workspace --lib --bins".to_owned(),
        "--workspace --doc".to_owned(),
        "-p plugin-server --tests".to_owned(),
    ];
    for file in template_ci::files_under(&repo_root().join("ci").join("tests")) {
        if file.extension().is_some_and(|e| e == "rs") {
            let name = file.file_stem().unwrap().to_string_lossy();
            expected.push(format!("--test {name}"));
        }
    }
    expected.sort();
    let mut shards: Vec<String> = shards.into_iter().map(str::to_owned).collect();
    shards.sort();
    assert_eq!(shards, expected);
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
        ci.contains("\nstage test \"cargo test\" cargo test\n"),
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
