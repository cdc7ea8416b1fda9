//! preview's options, its search of ApplicationSets and its view of the template.

use serde_json::{Value, json};

use super::application_sets::plugin_generators;
use super::options::Options;
use crate::cli::Plugin;

const PLUGIN: Plugin = Plugin {
    name: "my-plugin",
    version: "0.1.0",
    default_port: 4355,
    example_request: r#"{"applicationSetName":"example","input":{}}"#,
};

fn options(args: &[&str]) -> Result<Options, String> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    Options::parse(&args)
}

fn body(args: &[&str]) -> Value {
    serde_json::to_value(options(args).unwrap().request(&PLUGIN).unwrap()).unwrap()
}

#[test]
fn no_arguments_preview_the_example_request() {
    assert_eq!(
        body(&[]),
        json!({"applicationSetName": "example", "input": {"parameters": {}}})
    );
}

#[test]
fn parameters_name_and_namespace_make_the_controllers_body() {
    assert_eq!(
        body(&[
            r#"{"a":[1]}"#,
            "--application-set",
            "shop",
            "--namespace",
            "team"
        ]),
        json!({
            "applicationSetName": "shop",
            "applicationSetNamespace": "team",
            "input": {"parameters": {"a": [1]}},
        })
    );
}

#[cfg(feature = "yaml")]
const YAML: &str = r#"
# As kept in Git, two documents.
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: previews
  namespace: argocd
spec:
  goTemplate: true
  generators:
    - matrix:
        generators:
          - pullRequest: {}
          - plugin:
              configMapRef:
                name: my-plugin
              input:
                parameters:
                  branch: "{{ .branch }}"
                  n: 3
              values:
                link: "https://x/{{ .name }}/{{ .n }}"
                other: "{{ .name | upper }}"
  template:
    metadata:
      name: '{{ index .generator.input.parameters "branch" }}'
---
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: flat
spec:
  generators:
    - plugin:
        configMapRef:
          name: my-plugin
        values:
          link: "https://x/{{name}}/{{ missing }}"
"#;

#[test]
#[cfg(feature = "yaml")]
fn finds_this_plugins_generators_in_yaml_documents() {
    let found = plugin_generators(YAML, "my-plugin").unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].application_set, "previews");
    assert_eq!(found[0].namespace.as_deref(), Some("argocd"));
    assert!(found[0].go_template && found[0].nested && found[0].template_reads_input);
    assert_eq!(
        Value::Object(found[0].parameters.clone()),
        json!({"branch": "{{ .branch }}", "n": 3})
    );
    assert_eq!(
        serde_json::to_value(found[0].request()).unwrap(),
        json!({"applicationSetName": "previews", "applicationSetNamespace": "argocd",
               "input": {"parameters": {"branch": "{{ .branch }}", "n": 3}}})
    );
    assert!(!found[1].go_template && !found[1].nested);
    assert!(found[1].parameters.is_empty());
    let notes = found[0].notes().join("\n");
    assert!(
        notes.contains("input.parameters `branch` is sent as written"),
        "{notes}"
    );
    assert!(!notes.contains("first generator"), "{notes}");
    assert!(notes.contains("{[34 ...]}"), "{notes}");
}

/// Without the `yaml` feature (the image's build): JSON, one document
/// after another; YAML refused, saying how to get JSON or YAML.
#[test]
#[cfg(not(feature = "yaml"))]
fn without_yaml_json_is_read_and_yaml_refused_saying_how() {
    let set = json!({"kind": "ApplicationSet", "metadata": {"name": "a"}, "spec": {
        "generators": [{"plugin": {"configMapRef": {"name": "my-plugin"}}}]}});
    let found = plugin_generators(&format!("{set}\n{set}"), "my-plugin").unwrap();
    assert_eq!(found.len(), 2);
    let error = plugin_generators("kind: ApplicationSet\n", "my-plugin").unwrap_err();
    assert!(
        error.contains("-o json") && error.contains("`yaml` feature"),
        "{error}"
    );
}

#[test]
fn json_and_lists_as_kubectl_prints_them() {
    let list = json!({"kind": "List", "items": [
        {"kind": "ApplicationSet", "metadata": {"name": "a"},
         "spec": {"generators": [{"plugin": {"configMapRef": {"name": "my-plugin"}}}]}},
    ]});
    let found = plugin_generators(&list.to_string(), "my-plugin").unwrap();
    assert_eq!(found[0].application_set, "a");
}

#[test]
#[cfg(feature = "yaml")]
fn says_when_the_file_names_another_plugin() {
    let error = plugin_generators(YAML, "their-plugin").unwrap_err();
    assert!(
        error.contains("configMapRef their-plugin") && error.contains("names my-plugin"),
        "{error}"
    );
    let error = plugin_generators("kind: ApplicationSet\nspec: {}\n", "p").unwrap_err();
    assert!(
        error.contains("no ApplicationSet with a plugin generator"),
        "{error}"
    );
    assert!(
        plugin_generators("{", "p")
            .unwrap_err()
            .contains("not YAML")
    );
}

#[test]
#[cfg(feature = "yaml")]
fn the_template_sees_the_set_the_input_and_rendered_values() {
    let found = plugin_generators(YAML, "my-plugin").unwrap();
    let sets = [json!({"name": "web", "n": 1234567, "deep": {"a": [null]}})
        .as_object()
        .cloned()
        .unwrap()];
    let (views, notes) = found[0].template_view(&sets);
    assert_eq!(
        views[0],
        json!({
            "name": "web", "n": 1234567, "deep": {"a": [null]},
            "values": {"link": "https://x/web/1.234567e+06", "other": "{{ .name | upper }}"},
        })
    );
    assert!(
        notes[0].contains("values.other is shown as written"),
        "{notes:?}"
    );

    let (views, notes) = found[1].template_view(&sets);
    assert_eq!(
        views[0],
        json!({
            "name": "web", "n": "1.234567e+06", "deep.a.0": "<nil>",
            "values.link": "https://x/web/{{ missing }}",
        })
    );
    assert!(notes.is_empty());
}

#[test]
#[cfg(feature = "yaml")]
fn the_matrix_s_other_generator_renders_the_input_and_joins_the_set() {
    let other = json!({"branch": "feature-1", "name": "pr"});
    let other = other.as_object().unwrap();
    let found = plugin_generators(YAML, "my-plugin").unwrap();
    let matrix = found[0].clone().with_other_generator(other);
    assert_eq!(
        Value::Object(matrix.parameters.clone()),
        json!({"branch": "feature-1", "n": 3})
    );
    assert!(matrix.templated_parameters().is_empty());
    // The pull request generator comes first: its `name` wins, and
    // preview says so; without a clash, no such note.
    let sets = [json!({"name": "web", "n": 3}).as_object().cloned().unwrap()];
    let (views, notes) = matrix.template_view(&sets);
    assert_eq!(views[0]["name"], "pr");
    let clash = "both generators of the matrix yield `name`: the other generator comes \
                 first, so Argo CD keeps its values, silently";
    assert!(notes.iter().any(|note| note == clash), "{notes:?}");
    let apart = [json!({"site": "web"}).as_object().cloned().unwrap()];
    let notes = matrix.template_view(&apart).1;
    assert!(
        !notes.iter().any(|note| note.contains("both generators")),
        "{notes:?}"
    );
    assert_eq!(views[0]["branch"], "feature-1");
    assert_eq!(views[0]["values"]["link"], "https://x/pr/3");
    // A generator that is not nested is left alone.
    assert_eq!(found[1].clone().with_other_generator(other), found[1]);
}

#[test]
fn bad_arguments_say_what_is_wrong() {
    let error = |args: &[&str]| options(args).unwrap_err();
    assert!(error(&["{not json"]).contains("PARAMETERS is not JSON"));
    assert!(error(&["[1]"]).contains("must be a JSON object"));
    assert!(error(&["--namespace"]).contains("needs a value"));
    assert!(error(&["--bogus"]).contains("unknown flag"));
    assert!(error(&["--file", "x", "{}"]).contains("from the file"));
    assert!(error(&["--config-map", "x"]).contains("need --file"));
    assert!(error(&["--file", "f", "--set", "x"]).contains("KEY=VALUE"));
}
