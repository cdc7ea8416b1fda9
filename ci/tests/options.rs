//! Template values: custom values reach every file and still build; bad
//! names and values are refused at render time. (Every combination of the
//! optional parts is in `variants.rs`.)

use std::path::Path;
use std::process::Command;

use template_ci::checks;
use template_ci::manifests::{kustomize, one, parse_yaml, string};
use template_ci::project::Project;
use template_ci::render::Render;

const CI: &str = env!("CARGO_BIN_EXE_template-ci");

fn all_files(dir: &Path) -> Vec<(String, String)> {
    template_ci::files_under(dir)
        .into_iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(&path).ok()?;
            Some((path.strip_prefix(dir).unwrap().display().to_string(), text))
        })
        .collect()
}

#[test]
fn custom_values_reach_code_dockerfile_manifests_and_readme() {
    let render = Render::new("plugin-custom")
        .define("plugin_port", "8088")
        .define("plugin_namespace", "team-a")
        .define("argocd_namespace", "gitops")
        .define("image_repository", "registry.example.com/team/x")
        .define("github_owner", "team-org");
    let project = Project::render(CI, &render).unwrap();

    // No default is left behind anywhere (plugin-server/ is the same in every
    // project: no placeholder reaches it).
    for (file, text) in all_files(&project.dir) {
        if file.starts_with("plugin-server/") {
            continue;
        }
        for default in [
            "4355",
            "argocd-plugins",
            "ghcr.io",
            "my-org",
            "namespace: argocd\n",
        ] {
            // The image workflow derives ghcr.io/<owner>/<repository> at run
            // time when the configured image is on ghcr.io.
            if file == ".github/workflows/image.yml" && default == "ghcr.io" {
                continue;
            }
            assert!(
                !text.contains(default),
                "{file} still holds the default {default:?}"
            );
        }
    }
    assert!(
        project
            .read("src/main.rs")
            .contains("DEFAULT_PORT: u16 = 8088;")
    );
    let dockerfile = project.read("Dockerfile");
    assert!(dockerfile.contains("EXPOSE 8088") && dockerfile.contains("release/plugin-custom "));
    let readme = project.read("README.md");
    for value in [
        "127.0.0.1:8088",
        "team-a",
        "gitops",
        "registry.example.com/team/x:0.1.0",
    ] {
        assert!(readme.contains(value), "README lacks {value}");
    }
    let image_workflow = project.read(".github/workflows/image.yml");
    assert!(image_workflow.contains("DEFAULT_IMAGE: registry.example.com/team/x\n"));

    let objects = parse_yaml(&kustomize(&project.dir.join("deploy")).unwrap()).unwrap();
    let configmap = one(&objects, "ConfigMap", "plugin-custom").unwrap();
    assert_eq!(string(configmap, "/metadata/namespace").unwrap(), "gitops");
    assert_eq!(
        string(configmap, "/data/baseUrl").unwrap(),
        "http://plugin-custom.team-a.svc:8088"
    );
    let deployment = one(&objects, "Deployment", "plugin-custom").unwrap();
    assert_eq!(string(deployment, "/metadata/namespace").unwrap(), "team-a");
    assert_eq!(
        string(deployment, "/spec/template/spec/containers/0/image").unwrap(),
        "registry.example.com/team/x:0.1.0"
    );
    let policy = one(&objects, "NetworkPolicy", "plugin-custom").unwrap();
    assert_eq!(
        string(
            policy,
            "/spec/ingress/0/from/0/namespaceSelector/matchLabels/kubernetes.io~1metadata.name"
        )
        .unwrap(),
        "gitops"
    );
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], 8088);
    let secrets = checks::token_secrets(&project).unwrap();
    assert_eq!(
        string(&secrets[0], "/metadata/namespace").unwrap(),
        "team-a"
    );
    assert_eq!(
        string(&secrets[1], "/metadata/namespace").unwrap(),
        "gitops"
    );

    checks::deploy(&project).unwrap();
    checks::rust(&project).unwrap();
}

#[test]
fn names_that_are_not_kubernetes_service_names_are_refused() {
    let long = "a".repeat(64);
    for (name, reason) in [
        ("9lives", "must start with a lower-case letter"),
        (long.as_str(), "is 64 characters long"),
    ] {
        let parent = template_ci::run_dir().join("refused");
        let output = Command::new(CI)
            .args(["render", "--name", name, "--into"])
            .arg(&parent)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{name} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(reason), "{name}: {stderr}");
        assert!(
            stderr.contains("RFC 1035") || stderr.contains("at most 63"),
            "{stderr}"
        );
    }
    // A 63-character name is fine.
    let longest = "a".repeat(63);
    Project::render(CI, &Render::new(&longest)).unwrap();
}

#[test]
fn namespaces_the_install_must_not_own_are_refused() {
    for (namespace, reason) in [
        ("argocd", "is Argo CD's namespace"),
        ("default", "a namespace Kubernetes itself uses"),
        ("kube-system", "a namespace Kubernetes itself uses"),
    ] {
        let render = Render::new("plugin-refused-ns").define("plugin_namespace", namespace);
        let error = Project::render(CI, &render).unwrap_err();
        assert!(error.contains(reason), "{namespace}: {error}");
        assert!(error.contains("delete"), "{namespace}: {error}");
    }
    // The same rule follows Argo CD's namespace wherever it is.
    let render = Render::new("plugin-refused-ns")
        .define("plugin_namespace", "gitops")
        .define("argocd_namespace", "gitops");
    let error = Project::render(CI, &render).unwrap_err();
    assert!(error.contains("Argo CD's namespace"), "{error}");
}

#[test]
fn values_that_would_break_a_manifest_are_refused() {
    for (key, value) in [
        ("plugin_port", "70000"),
        ("plugin_namespace", "Team_A"),
        ("image_repository", "UPPER/case"),
    ] {
        let render = Render::new("plugin-refused").define(key, value);
        let error = Project::render(CI, &render).unwrap_err();
        assert!(error.contains(key), "{key}={value}: {error}");
    }
}

/// A render reads the template's parts only: a fork's `target/` without
/// cargo's `CACHEDIR.TAG` (cargo writes none there when `CARGO_TARGET_DIR`
/// sends its builds elsewhere) holds the harness's runs and builds, files
/// that come and go. None of it is opened (its access times stay as they
/// were), and a file that vanished (a dangling link) fails nothing.
#[test]
fn renders_read_only_the_template_whatever_target_holds() {
    let repo = template_ci::render::copy_template("fork-with-target").unwrap();
    let busy = repo.join("target/harness/run-1/projects/a/target/debug");
    std::fs::create_dir_all(&busy).unwrap();
    std::os::unix::fs::symlink(repo.join("gone"), busy.join("vanished")).unwrap();
    // Files last read two hours ago (and written then): opening one moves
    // its access time on any file system that records access (relatime).
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    let aged = |path: &Path| {
        std::fs::write(path, [0u8; 512]).unwrap();
        let times = std::fs::FileTimes::new()
            .set_accessed(past)
            .set_modified(past);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_times(times)
            .unwrap();
    };
    let read_since = |path: &Path| std::fs::metadata(path).unwrap().accessed().unwrap() > past;
    let decoys: Vec<_> = (0..200).map(|i| busy.join(format!("f{i}.rlib"))).collect();
    decoys.iter().for_each(|decoy| aged(decoy));
    let probe = repo.join("probe");
    aged(&probe);
    std::fs::read(&probe).unwrap();
    let records_access = read_since(&probe);

    let mut render = Render::new("plugin-beside-target");
    render.repo = repo;
    let project = Project::render(CI, &render).unwrap();
    assert!(!project.dir.join("target").exists());
    assert!(project.dir.join("src/generator.rs").is_file());
    if records_access {
        let opened = decoys.iter().filter(|decoy| read_since(decoy)).count();
        assert_eq!(opened, 0, "the render opened files under target/");
    } else {
        eprintln!("this file system records no access times: not checked whether target/ was read");
    }
}
