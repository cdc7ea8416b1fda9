//! `template-ci upgrade` on a throw-away copy of the template: a project
//! rendered at commit A and edited by its author is upgraded to commit B,
//! which fixed a template-owned file and changed a generator line the author
//! had changed too.

use std::path::Path;
use std::process::{Command, Output};

use template_ci::checks;
use template_ci::command::run_command;
use template_ci::project::Project;
use template_ci::render::{Render, copy_template};
use template_ci::upgrade::{RECORD, stamp, write_stamp};

const CI: &str = env!("CARGO_BIN_EXE_template-ci");

fn git(dir: &Path, args: &[&str]) -> String {
    let output = run_command(
        Command::new("git")
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
            .args([
                "-c",
                "init.defaultBranch=main",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(dir),
    )
    .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

fn upgrade(template: &Path, args: &[&str]) -> Output {
    Command::new(CI)
        .arg("upgrade")
        .args(args)
        .arg("--template")
        .arg(template)
        .output()
        .unwrap()
}

/// A project rendered from `template`, in a Git repository of its own.
fn render_committed(template: &Path, name: &str) -> Project {
    let mut render = Render::new(name);
    render.repo = template.to_path_buf();
    let project = Project::render(CI, &render).unwrap();
    git(&project.dir, &["init", "-q"]);
    commit_all(&project.dir, "rendered");
    project
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

const FIX: &str = "// Fixed at commit B: a template-owned change every project should get.";
/// A line of the generator both the author and the template change: the
/// test's own, so any generator (a fork's too) has it.
const NOTE_A: &str = "// The template's note, as of commit A.";

fn append(path: &Path, line: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, format!("{text}{line}\n")).unwrap();
}

fn prepend(path: &Path, line: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, format!("{line}\n{text}")).unwrap();
}

#[test]
fn upgrades_keep_the_authors_changes_bring_template_fixes_and_report_conflicts() {
    // Commit A of a template repository.
    let template = copy_template("upgrade-template").unwrap();
    let template_generator = template.join("template/src/generator.rs");
    append(&template_generator, NOTE_A);
    write_stamp(&template).unwrap();
    git(&template, &["init", "-q"]);
    let a = commit_all(&template, "A");

    // Two projects rendered at A, committed; the author edits one.
    let edited = render_committed(&template, "upgrade-edited");
    let clean = render_committed(&template, "upgrade-clean");
    let generator = edited.dir.join("src/generator.rs");
    edit(&generator, NOTE_A, "// The team's note.");
    prepend(&generator, "// Team A's generator.");
    commit_all(&edited.dir, "the author's generator");

    // Commit B: a fix in plugin-server, and the generator's message changed.
    edit(
        &template.join("template/plugin-server/src/error.rs"),
        "use std::fmt;",
        &format!("{FIX}\nuse std::fmt;"),
    );
    edit(
        &template_generator,
        NOTE_A,
        "// The template's note, as of commit B.",
    );
    let (version_b, changed) = write_stamp(&template).unwrap();
    assert!(changed, "the stamp follows the template");
    commit_all(&template, "B");

    // Behind, then refused while the project has uncommitted changes.
    let check = upgrade(&template, &["--check", clean.dir.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&check.stdout).contains("behind the template by 1 commit"));
    std::fs::write(clean.dir.join("scratch.txt"), "wip").unwrap();
    let refused = upgrade(&template, &[clean.dir.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("uncommitted changes"));
    std::fs::remove_file(clean.dir.join("scratch.txt")).unwrap();

    // The edited project: the fix lands, the author's other change stays,
    // the line both changed is a conflict, named.
    let output = upgrade(&template, &[edited.dir.to_str().unwrap(), "--from", &a]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "conflicts exit non-zero");
    assert!(stdout.contains("CONFLICT src/generator.rs"), "{stdout}");
    assert!(
        stdout.contains("updated  plugin-server/src/error.rs"),
        "{stdout}"
    );
    assert!(edited.read("plugin-server/src/error.rs").contains(FIX));
    let merged = edited.read("src/generator.rs");
    assert!(merged.contains("// Team A's generator."));
    assert!(merged.contains("<<<<<<< yours") && merged.contains(">>>>>>> template now"));
    assert!(merged.contains("The team's note.") && merged.contains("as of commit B"));
    assert!(
        edited.read(RECORD).contains(&version_b),
        "the recorded version moves"
    );

    // The clean project upgrades without conflict (found by its recorded
    // version) and passes its tests.
    let output = upgrade(&template, &[clean.dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0));
    assert!(clean.read("src/generator.rs").contains("as of commit B"));
    assert!(clean.read("plugin-server/src/error.rs").contains(FIX));
    checks::rust(&clean).unwrap();
    commit_all(&clean.dir, "upgraded");
    let check = upgrade(&template, &["--check", clean.dir.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "up to date after the upgrade");
}

#[test]
fn the_templates_version_stamp_is_current() {
    let repo = template_ci::repo_root();
    let recorded = std::fs::read_to_string(repo.join("template").join(RECORD)).unwrap();
    let current = stamp(&repo).unwrap();
    assert!(
        recorded.contains(&format!("version = \"{current}\"")),
        "template/{RECORD} does not carry the template's version {current}: \
         run `cargo run -p template-ci -- stamp` and commit it"
    );
}

#[test]
fn the_record_holds_every_placeholder() {
    let repo = template_ci::repo_root();
    let record = std::fs::read_to_string(repo.join("template").join(RECORD)).unwrap();
    let config: toml::Table = std::fs::read_to_string(repo.join("cargo-generate.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let placeholders = config["placeholders"].as_table().unwrap();
    for name in placeholders
        .keys()
        .map(String::as_str)
        .chain(["project-name"])
    {
        assert!(
            record.contains(&format!("\n{name} = ")),
            "template/{RECORD} does not record the answer {name}"
        );
    }
}

/// The rendered template-update workflow's script against a throw-away
/// template repository with a new commit: one branch pushed and one pull
/// request (gh stubbed), its description listing the changes and the
/// workflow file held back; a current project is left alone.
#[test]
fn the_template_update_script_opens_one_pull_request_or_does_nothing() {
    let template = copy_template("update-template").unwrap();
    write_stamp(&template).unwrap();
    git(&template, &["init", "-q"]);
    commit_all(&template, "A");
    let behind = render_committed(&template, "update-behind");
    let origin = behind.dir.with_file_name("update-behind-origin.git");
    git(
        &behind.dir,
        &["init", "-q", "--bare", origin.to_str().unwrap()],
    );
    git(
        &behind.dir,
        &["remote", "add", "origin", origin.to_str().unwrap()],
    );
    git(&behind.dir, &["push", "-q", "origin", "main"]);

    // Commit B: a plugin-server fix and a workflow change.
    edit(
        &template.join("template/plugin-server/src/error.rs"),
        "use std::fmt;",
        &format!("{FIX}\nuse std::fmt;"),
    );
    edit(
        &template.join("template/.github/workflows/ci.yml"),
        "name: ci\n",
        "name: ci\n# Changed at commit B.\n",
    );
    write_stamp(&template).unwrap();
    commit_all(&template, "B");
    let current = render_committed(&template, "update-current");

    let stub = template_ci::run_dir().join("gh-stub");
    std::fs::create_dir_all(&stub).unwrap();
    let (log, body) = (stub.join("gh.log"), stub.join("body.md"));
    std::fs::write(
        stub.join("gh"),
        format!(
            "#!/bin/sh\necho \"$*\" >> {log}\nwhile [ $# -gt 0 ]; do\n  \
             [ \"$1\" = --body-file ] && cp \"$2\" {body}\n  shift\ndone\n",
            log = log.display(),
            body = body.display()
        ),
    )
    .unwrap();
    run_command(Command::new("chmod").arg("+x").arg(stub.join("gh"))).unwrap();
    let script = |project: &Project| {
        let path = format!("{}:{}", stub.display(), std::env::var("PATH").unwrap());
        Command::new(".github/template-update.sh")
            .arg(&template)
            .current_dir(&project.dir)
            .env("PATH", path)
            .env("TEMPLATE_CI", CI)
            .env_remove("GITHUB_REPOSITORY")
            .env_remove("GH_TOKEN")
            .env_remove("WORKFLOWS")
            .output()
            .unwrap()
    };

    let output = script(&current);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("is up to date"), "{stdout}");
    assert!(!log.exists(), "no pull request for a current project");
    assert_eq!(
        git(&current.dir, &["branch", "--list", "template-update"]),
        ""
    );

    let output = script(&behind);
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let at = |path: &str| {
        git(
            &behind.dir,
            &[
                "--git-dir",
                origin.to_str().unwrap(),
                "show",
                &format!("template-update:{path}"),
            ],
        )
    };
    assert!(at("plugin-server/src/error.rs").contains(FIX));
    assert!(
        !at(".github/workflows/ci.yml").contains("Changed at commit B"),
        "a workflow change is held back"
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.contains("pr create --head template-update"),
        "{calls}"
    );
    let description = std::fs::read_to_string(&body).unwrap();
    for expected in [
        "updated  plugin-server/src/error.rs",
        "- .github/workflows/ci.yml",
        "+# Changed at commit B.",
    ] {
        assert!(description.contains(expected), "{expected}: {description}");
    }
}
