//! The author's journey: the generator is rewritten, and nothing of the
//! template's breaks. A fork replaces `template/src/generator.rs`; a rendered
//! project renames its generator's keys; both build beside other projects in
//! one shared target folder, each running its own code.

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

/// A fork whose only change is its generator, rendered.
fn fork() -> &'static Project {
    static PROJECT: OnceLock<Project> = OnceLock::new();
    PROJECT.get_or_init(|| {
        let copy = copy_template("fork-tenants").unwrap();
        std::fs::write(copy.join("template/src/generator.rs"), TENANTS).unwrap();
        let mut render = Render::new("tenants-plugin");
        render.repo = copy;
        Project::render(CI, &render).unwrap()
    })
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
    let renamed = TENANTS
        .replace("\"tenant\"", "\"customer\"")
        .replace("\"cluster\"", "\"target-cluster\"")
        .replace("region", "zone");
    std::fs::write(project.dir.join("src/generator.rs"), renamed).unwrap();
    format(&project);
    checks::rust(&project).unwrap();
    // Its own answer, not another project's from the shared target folder
    // (the fork's is its release binary's).
    let example = Example::from_binary(&project.debug_binary().unwrap(), &project.env).unwrap();
    assert_eq!(
        example.sets[0].keys().collect::<Vec<_>>(),
        ["customer", "target-cluster"]
    );
    assert_eq!(
        fork().example().unwrap().sets[0].keys().collect::<Vec<_>>(),
        ["cluster", "tenant"]
    );
}
