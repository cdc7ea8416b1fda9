//! The job catches a broken template and says where: a copy of the
//! template is broken on purpose, rendered, and checked.

use std::path::{Path, PathBuf};

use template_ci::checks;
use template_ci::liquid_lint::Template;
use template_ci::project::Project;
use template_ci::render::{Render, copy_template};

const CI: &str = env!("CARGO_BIN_EXE_template-ci");

/// A copy of the template repository with `edit` applied to one file.
fn broken_copy(name: &str, file: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let copy = copy_template(&format!("broken-{name}")).unwrap();
    let path = copy.join("template").join(file);
    let original = std::fs::read_to_string(&path).unwrap();
    let edited = edit(&original);
    assert_ne!(original, edited, "the edit changed {file}");
    std::fs::write(&path, edited).unwrap();
    copy
}

/// Gives a copy's changed `plugin-server` a version of its own, so that in
/// the shared target folder (where cargo tells path packages apart by name,
/// version and relative path) no other project links it, nor it theirs.
fn own_plugin_server(copy: &Path, tag: &str) {
    for (file, from, to) in [
        (
            "template/plugin-server/Cargo.toml",
            "version = \"0.1.0\"",
            format!("version = \"0.1.0-{tag}\""),
        ),
        (
            "template/Cargo.lock.liquid",
            "name = \"plugin-server\"\nversion = \"0.1.0\"",
            format!("name = \"plugin-server\"\nversion = \"0.1.0-{tag}\""),
        ),
    ] {
        let path = copy.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} lacks {from}");
        std::fs::write(&path, text.replacen(from, &to, 1)).unwrap();
    }
}

/// What Argo CD's judge says of a broken project's (debug) binary.
fn judge(project: &Project) -> String {
    let binary = project.debug_binary().unwrap();
    template_ci::judge::run_on(&project.dir, &binary, &project.env).unwrap_err()
}

fn render(repo: PathBuf, name: &str) -> Project {
    let mut render = Render::new(name);
    render.repo = repo;
    Project::render(CI, &render).unwrap()
}

#[test]
fn a_syntax_error_in_main_rs_fails_naming_the_file() {
    let repo = broken_copy("syntax", "src/main.rs", |text| {
        text.replacen(
            "fn main() -> ExitCode {",
            "fn main() -> ExitCode {\n    let broken = ;",
            1,
        )
    });
    let project = render(repo, "plugin-broken-syntax");
    let error = checks::rust(&project).unwrap_err();
    assert!(error.contains("src/main.rs"), "{error}");
    assert!(
        error.contains("cargo fmt --all --check") || error.contains("cargo clippy"),
        "{error}"
    );
}

#[test]
fn a_wrong_port_in_the_configmap_fails_naming_both_ends() {
    let repo = broken_copy("port", "deploy/base/argocd-configmap.yaml", |text| {
        text.replace(".svc:{{plugin_port}}", ".svc:8080")
    });
    let project = render(repo, "plugin-broken-port");
    let error = checks::deploy(&project).unwrap_err();
    assert_eq!(
        error,
        "ConfigMap plugin-broken-port: baseUrl is \
         http://plugin-broken-port.argocd-plugins.svc:8080, \
         but the Service is at http://plugin-broken-port.argocd-plugins.svc:4355"
    );
}

#[test]
fn a_liquid_mistake_fails_the_lint_naming_file_and_line() {
    let repo = broken_copy("liquid", "deploy/base/service.yaml", |text| {
        text.replace("port: {{plugin_port}}", "port: {{plugin_prot}}")
    });
    let template = Template::load(&repo).unwrap();
    let problems: Vec<String> = template
        .rendered_files()
        .iter()
        .flat_map(|file| template.check(file))
        .collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .starts_with("deploy/base/service.yaml: line 18: unknown variable `plugin_prot`"),
        "{problems:?}"
    );
}

#[test]
fn a_dockerignore_that_leaves_out_a_crate_fails_naming_the_path() {
    let repo = broken_copy("dockerignore", ".dockerignore", |text| {
        text.replace("!plugin-server/src/\n", "")
    });
    let project = render(repo, "plugin-broken-docker");
    let error = template_ci::docker::replay(&project).unwrap_err();
    assert!(
        error.contains("COPY plugin-server/src plugin-server/src")
            && error.contains("plugin-server/src is not in the build context"),
        "{error}"
    );
}

/// Argo CD's own code judges the plugin: a reply in another shape is an
/// empty list to Argo CD, which then creates nothing.
#[test]
fn a_reply_argo_cd_cannot_read_fails_argo_cds_judge() {
    let repo = broken_copy("params", "plugin-server/src/protocol.rs", |text| {
        text.replacen(
            "pub struct Output<'a> {",
            "pub struct Output<'a> {\n    #[serde(rename = \"params\")]",
            1,
        )
    });
    own_plugin_server(&repo, "params");
    let project = render(repo, "plugin-broken-params");
    let error = judge(&project);
    assert!(
        error.contains(
            "Argo CD created no Application: the plugin's 2xx reply held no parameter sets"
        ),
        "{error}"
    );
}

/// A plugin that answers its failures with a 2xx makes Argo CD delete the
/// Applications: the judge says so.
#[test]
fn failures_answered_2xx_fail_argo_cds_judge() {
    let repo = broken_copy("ok-failures", "plugin-server/src/error.rs", |text| {
        text.replacen(
            "Self::MissingToken | Self::WrongToken => StatusCode::FORBIDDEN,",
            "Self::MissingToken | Self::WrongToken => StatusCode::OK,",
            1,
        )
    });
    own_plugin_server(&repo, "ok-failures");
    let project = render(repo, "plugin-broken-ok-failures");
    let error = judge(&project);
    assert!(
        error.contains("the plugin answered a failure with a 2xx"),
        "{error}"
    );
}
