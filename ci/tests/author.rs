//! The author's journey: the generator is rewritten, with the examples that
//! suit it, and nothing of the template's breaks. A fork replaces
//! `template/src/generator.rs` and `deploy/examples`; a rendered project
//! renames its generator's keys and its examples' with them; both build
//! beside other projects in one shared target folder, each running its own
//! code. Argo CD's judge holds the author to it: an example that reads a
//! key the generator does not return, or prints a number Argo CD mangles,
//! fails naming it.

use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};
use template_ci::checks;
use template_ci::example::Example;
use template_ci::project::Project;
use template_ci::render::{Render, copy_template};

const CI: &str = env!("CARGO_BIN_EXE_template-ci");

/// A different generator, as a team would write it: other input and output
/// keys, another example request, its own tests, a setting of its own.
const TENANTS: &str = r##"//! Tenants of a region, one Application each.

use plugin_server::{Generator, GeneratorError, GetParamsRequest, ParameterMap};
use serde_json::Value;

pub const EXAMPLE_REQUEST: &str =
    r#"{"applicationSetName":"tenants","input":{"parameters":{"region":"eu"}}}"#;

pub struct PluginGenerator {
    tenants: Vec<(String, String)>,
}

impl PluginGenerator {
    pub fn from_env() -> Result<Self, String> {
        let list = std::env::var("TENANTS").unwrap_or_else(|_| "acme:eu,globex:us,initech:eu".into());
        let tenants = list
            .split(',')
            .map(|pair| {
                let (tenant, region) = pair.split_once(':').ok_or(format!("TENANTS: {pair:?} is not tenant:region"))?;
                Ok((tenant.to_owned(), region.to_owned()))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { tenants })
    }
}

impl Generator for PluginGenerator {
    async fn generate(&self, request: GetParamsRequest) -> Result<Vec<ParameterMap>, GeneratorError> {
        let Some(Value::String(region)) = request.input.parameters.get("region") else {
            return Err(GeneratorError::invalid_input("input.parameters: `region` is required"));
        };
        Ok(self
            .tenants
            .iter()
            .filter(|(_, r)| r == region)
            .map(|(tenant, _)| {
                let mut set = ParameterMap::new();
                set.insert("tenant".into(), tenant.clone().into());
                set.insert("cluster".into(), format!("{region}-1").into());
                set
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_server::testing::{self, TestServer};
    use serde_json::json;

    #[test]
    fn tenants_of_the_region() {
        let generator = PluginGenerator::from_env().unwrap();
        let sets = testing::generate(&generator, testing::request("t", json!({"region": "eu"}))).unwrap();
        assert_eq!(Value::from(sets), json!([{"tenant": "acme", "cluster": "eu-1"}, {"tenant": "initech", "cluster": "eu-1"}]));
    }

    #[test]
    fn over_http() {
        let server = TestServer::start(PluginGenerator::from_env().unwrap());
        assert_eq!(server.get_params("t", json!({"region": "us"})).unwrap().len(), 1);
        assert_eq!(server.get_params("t", json!({})).unwrap_err().0, 400);
    }
}
"##;

/// An ApplicationSet for the tenants generator, as its author would keep it
/// in `deploy/examples` (`{{ .tenant }}`, `{{ .cluster }}`: the answer's keys).
const TENANTS_EXAMPLE: &str = r#"# One Application per tenant of a region.
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: tenants
  namespace: argocd
spec:
  goTemplate: true
  goTemplateOptions: ["missingkey=error"]
  generators:
    - plugin:
        configMapRef:
          name: CONFIGMAP
        input:
          parameters:
            REGION: eu
  template:
    metadata:
      name: "TENANT"
      annotations:
        example.cluster: 'CLUSTER'
    spec:
      project: default
      source:
        repoURL: https://github.com/argoproj/argocd-example-apps.git
        targetRevision: HEAD
        path: guestbook
      destination:
        server: https://kubernetes.default.svc
        namespace: "TENANT"
"#;

/// [`TENANTS_EXAMPLE`] for the plugin whose ConfigMap is `configmap`, its
/// input naming the region `region`, its template reading the keys
/// `tenant` and `cluster` as given.
fn tenants_example(configmap: &str, region: &str, tenant: &str, cluster: &str) -> String {
    TENANTS_EXAMPLE
        .replace("CONFIGMAP", configmap)
        .replace("REGION", region)
        .replace("TENANT", tenant)
        .replace("CLUSTER", cluster)
}

/// A fork whose change is its generator and the examples that suit it,
/// rendered.
fn fork() -> &'static Project {
    static PROJECT: OnceLock<Project> = OnceLock::new();
    PROJECT.get_or_init(|| {
        let copy = copy_template("fork-tenants").unwrap();
        std::fs::write(copy.join("template/src/generator.rs"), TENANTS).unwrap();
        let examples = copy.join("template/deploy/examples");
        std::fs::remove_dir_all(&examples).unwrap();
        std::fs::create_dir(&examples).unwrap();
        let example = tenants_example(
            "{{project-name}}",
            "region",
            "{% raw %}{{ .tenant }}{% endraw %}",
            "{% raw %}{{ .cluster }}{% endraw %}",
        );
        std::fs::write(examples.join("tenants.yaml"), example).unwrap();
        let mut render = Render::new("tenants-plugin");
        render.repo = copy;
        Project::render(CI, &render).unwrap()
    })
}

/// Words of the example generator's domain (its keys, its setting, its
/// example request's ApplicationSet).
const EXAMPLE_WORDS: [&str; 5] = [
    "environments",
    "\"environment\"",
    "ALLOWED_ENVIRONMENTS",
    "shop",
    "staging",
];

/// Once the generator is replaced, the text the author cannot edit (the
/// binary's help, the template-owned READMEs, manifests and workflows) holds
/// no word of the example's domain: it must be true for any generator.
fn speaks_of_no_example_generator(project: &Project, binary: &std::path::Path) {
    let help = Command::new(binary).arg("help").output().unwrap();
    assert!(help.status.success());
    let mut texts = vec![(
        "help".to_owned(),
        String::from_utf8_lossy(&help.stdout).into_owned(),
    )];
    for file in template_ci::files_under(&project.dir) {
        let relative = file.strip_prefix(&project.dir).unwrap();
        let text_file = ["md", "yaml", "yml", "sh", "env"]
            .iter()
            .any(|ext| relative.extension().is_some_and(|e| e == *ext))
            || relative.ends_with("Dockerfile");
        let authors = relative.starts_with("deploy/examples") || relative.starts_with("src");
        if text_file && !authors && !relative.starts_with("target") {
            texts.push((
                relative.display().to_string(),
                std::fs::read_to_string(&file).unwrap(),
            ));
        }
    }
    assert!(texts.len() > 10, "{} texts", texts.len());
    for (name, text) in &texts {
        for word in EXAMPLE_WORDS {
            if let Some(line) = text.lines().find(|line| line.contains(word)) {
                panic!("{name} speaks of the example generator ({word}): {line}");
            }
        }
    }
}

/// `cargo fmt` would rewrite the pasted generator; an author runs it.
fn format(project: &Project) {
    project.cargo(&["fmt"]).unwrap();
}

/// Everything the CI runs, as `template-ci check` in a child process whose
/// environment sends cargo's output elsewhere, as a global setting would:
/// the harness's builds, and the Dockerfile's replayed build, must not
/// follow it.
#[test]
fn a_fork_that_rewrites_the_generator_passes_everything_the_ci_runs() {
    let project = fork();
    format(project);
    let elsewhere = template_ci::run_dir().join("global-target-dir");
    let output = Command::new(CI)
        .arg("check")
        .arg(&project.dir)
        .env("CARGO_TARGET_DIR", &elsewhere)
        .env("CARGO_BUILD_TARGET_DIR", &elsewhere)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!elsewhere.exists(), "a build followed CARGO_TARGET_DIR");
    let example = project.example().unwrap();
    assert_eq!(
        Value::from(example.sets),
        json!([{"tenant": "acme", "cluster": "eu-1"}, {"tenant": "initech", "cluster": "eu-1"}])
    );
}

#[test]
fn renaming_the_generators_keys_in_a_rendered_project_breaks_nothing() {
    let project = Project::render(CI, &Render::new("renamed-plugin")).unwrap();
    // Other keys, and a number: a quota Argo CD would print as 1.234567e+06.
    let renamed = TENANTS
        .replace("\"tenant\"", "\"customer\"")
        .replace("\"cluster\"", "\"target-cluster\"")
        .replace("region", "zone")
        .replace(
            "                set\n",
            "                set.insert(\"quota\".into(), 1_234_567.into());\n                set\n",
        )
        .replace(r#""eu-1"}"#, r#""eu-1", "quota": 1_234_567}"#);
    assert!(renamed.contains("quota"));
    std::fs::write(project.dir.join("src/generator.rs"), renamed).unwrap();
    format(&project);
    checks::rust(&project).unwrap();
    // Its own answer, not another project's from the shared target folder
    // (the fork's is its release binary's).
    let binary = project.debug_binary().unwrap();
    let example = Example::from_binary(&binary, &project.env).unwrap();
    assert_eq!(
        example.sets[0].keys().collect::<Vec<_>>(),
        ["customer", "quota", "target-cluster"]
    );
    speaks_of_no_example_generator(&project, &binary);

    // The author's examples follow the generator, and Argo CD's judge
    // passes them; an example left reading the old keys, or printing the
    // number, fails naming what Argo CD got.
    let examples = project.dir.join("deploy/examples");
    std::fs::remove_dir_all(&examples).unwrap();
    std::fs::create_dir(&examples).unwrap();
    let judge = |tenant: &str, cluster: &str| {
        let text = tenants_example(&project.name, "zone", tenant, cluster);
        std::fs::write(examples.join("customers.yaml"), text).unwrap();
        template_ci::judge::run_on(&project.dir, &binary, &project.env)
    };
    let judged = judge("{{ .customer }}", r#"{{ index . "target-cluster" }}"#).unwrap();
    assert!(
        judged.contains("ApplicationSet tenants: Argo CD created acme, initech (valid"),
        "{judged}"
    );
    let stale = judge("{{ .tenant }}", "{{ .cluster }}").unwrap_err();
    for expected in [
        "deploy/examples/customers.yaml: ApplicationSet tenants: Argo CD's status:",
        r#"map has no entry for key "tenant""#,
        "the generator answered parameter sets with the keys customer, quota, target-cluster",
    ] {
        assert!(stale.contains(expected), "{expected:?} not in {stale}");
    }
    let mangled = judge("{{ .customer }}", "{{ .quota }}").unwrap_err();
    assert!(
        mangled.contains(r#"metadata.annotations.example.cluster is "1.234567e+06""#),
        "{mangled}"
    );
    assert_eq!(
        fork().example().unwrap().sets[0].keys().collect::<Vec<_>>(),
        ["cluster", "tenant"]
    );
}
