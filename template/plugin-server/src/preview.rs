//! `<plugin> preview`: runs the generator once, as the server would for one
//! request, and prints the reply Argo CD would receive. No token, no server.
//! With `--file`, it takes ApplicationSets as authors keep them in Git (YAML
//! or JSON) and prints what their templates see.

use actix_web::ResponseError;
use serde_json::{Map, Value};

use crate::cli::Plugin;
use crate::config::Config;
use crate::generator::{self, Generator};
use crate::protocol::{GetParamsRequest, ParameterMap};
use crate::template_values::{self, go_print, go_print_nested};

pub const HELP: &str = "preview runs the generator once and prints the reply Argo CD would receive:
  PARAMETERS            input.parameters as a JSON object, e.g. '{\"key\":\"value\"}'
                        (none: the project's example request)
  --application-set N   the ApplicationSet's name (default: preview)
  --namespace NS        the ApplicationSet's namespace (default: none sent)
  --file F              ApplicationSets as YAML or JSON, one or several documents ('-':
                        standard input), e.g. deploy/examples/applicationset.yaml or
                        `kubectl get applicationset NAME -o yaml` (a build without the
                        `yaml` feature, as in the image, reads JSON only). Runs this plugin's
                        generators in them (also inside matrix and merge) and prints,
                        per parameter set, what the ApplicationSet's template sees
  --config-map NAME     with --file: the plugin ConfigMap that names this plugin
                        (default: the plugin's name)
  --set KEY=VALUE       with --file: a value of the other generator of a matrix
                        (e.g. --set number=42 for a pull request generator): input
                        parameters templated from it are rendered with it, as
                        Argo CD does, and the template sees it
  --request             print the request body instead of running it
Values Argo CD's templates print differently from what the generator returned
(numbers of a million and more, null) are reported on standard error.
It exits non-zero with Argo CD's error message when the generator fails.";

/// Runs `preview` with its arguments.
pub fn run<G: Generator>(
    plugin: &Plugin,
    args: &[String],
    config: Config,
    new_generator: impl FnOnce() -> Result<G, String>,
) -> Result<(), String> {
    let options = Options::parse(args)?;
    let Some(file) = &options.file else {
        let request = options.request_body(plugin);
        if options.show_request {
            println!("{request}");
            return Ok(());
        }
        let parsed: GetParamsRequest = serde_json::from_str(&request)
            .map_err(|e| format!("the request is not a valid plugin request: {e}\n{request}"))?;
        let generator = new_generator()?;
        let (sets, body) = answer(&generator, parsed, &config)?;
        report_surprises(&sets);
        // The reply the server sends, pretty for people.
        let reply: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        println!("{}", pretty(&reply));
        return Ok(());
    };
    let config_map = options.config_map.as_deref().unwrap_or(plugin.name);
    let found = plugin_generators(&read(file)?, config_map).map_err(|e| format!("{file}: {e}"))?;
    let found: Vec<Found> = found
        .into_iter()
        .map(|found| found.with_other_generator(&options.other))
        .collect();
    if options.show_request {
        for generator in &found {
            println!("{}", generator.request_body());
        }
        return Ok(());
    }
    let generator = new_generator()?;
    for found in &found {
        let parsed: GetParamsRequest = serde_json::from_str(&found.request_body())
            .map_err(|e| format!("ApplicationSet {}: {e}", found.application_set))?;
        let (sets, _) = answer(&generator, parsed, &config).map_err(|e| {
            let hint = match found.templated_parameters().as_slice() {
                [] => String::new(),
                keys => format!(
                    "\n(input.parameters {} were sent as written: give the matrix's other \
                     generator's values with --set KEY=VALUE)",
                    keys.join(", ")
                ),
            };
            format!("ApplicationSet {}: {e}{hint}", found.application_set)
        })?;
        eprintln!(
            "ApplicationSet {} ({}): {} parameter sets, as its template sees them",
            found.application_set,
            if found.go_template {
                "goTemplate"
            } else {
                "flat mode"
            },
            sets.len()
        );
        for note in found.notes() {
            eprintln!("  note: {note}");
        }
        report_surprises(&sets);
        let (views, notes) = found.template_view(&sets);
        for note in notes {
            eprintln!("  note: {note}");
        }
        println!("{}", pretty(&Value::Array(views)));
    }
    Ok(())
}

/// The generator's answer under the server's deadline and limits, and the
/// reply body the server would send; or the message Argo CD would show.
fn answer<G: Generator>(
    generator: &G,
    request: GetParamsRequest,
    config: &Config,
) -> Result<(Vec<ParameterMap>, Vec<u8>), String> {
    let result = actix_web::rt::System::new().block_on(generator::run(
        generator,
        request,
        config.generator_timeout,
    ));
    let checked = result.and_then(|sets| generator::reply(&sets, config).map(|body| (sets, body)));
    checked.map_err(|error| {
        format!(
            "Argo CD would show: API error with status code {}: {error}",
            error.status_code().as_u16()
        )
    })
}

fn report_surprises(sets: &[ParameterMap]) {
    for surprise in template_values::surprises(sets) {
        eprintln!("  warning: {surprise}");
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// The command line of `preview`.
#[derive(Debug, Default)]
struct Options {
    parameters: Option<Value>,
    name: Option<String>,
    namespace: Option<String>,
    file: Option<String>,
    config_map: Option<String>,
    /// `--set`: the other generator's values.
    other: Map<String, Value>,
    show_request: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |flag: &str| {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value\n{HELP}"))
            };
            match arg.as_str() {
                "--request" => options.show_request = true,
                "--application-set" => options.name = Some(value(arg)?),
                "--namespace" => options.namespace = Some(value(arg)?),
                "--file" => options.file = Some(value(arg)?),
                "--config-map" => options.config_map = Some(value(arg)?),
                "--set" => {
                    let pair = value(arg)?;
                    let (key, value) = pair
                        .split_once('=')
                        .ok_or_else(|| format!("--set takes KEY=VALUE, got {pair:?}"))?;
                    options.other.insert(key.into(), value.into());
                }
                flag if flag.starts_with("--") => {
                    return Err(format!("unknown flag {flag}\n{HELP}"));
                }
                json if options.parameters.is_none() => {
                    let value: Value = serde_json::from_str(json)
                        .map_err(|e| format!("PARAMETERS is not JSON ({e}): {json}"))?;
                    if !value.is_object() {
                        return Err(format!("PARAMETERS must be a JSON object, got {json}"));
                    }
                    options.parameters = Some(value);
                }
                extra => return Err(format!("unexpected argument {extra:?}\n{HELP}")),
            }
        }
        if options.file.is_some()
            && (options.parameters.is_some()
                || options.name.is_some()
                || options.namespace.is_some())
        {
            return Err(format!(
                "--file takes the name, namespace and parameters from the file\n{HELP}"
            ));
        }
        if (options.config_map.is_some() || !options.other.is_empty()) && options.file.is_none() {
            return Err(format!("--config-map and --set need --file\n{HELP}"));
        }
        Ok(options)
    }

    /// The request body to preview without `--file`.
    fn request_body(&self, plugin: &Plugin) -> String {
        if self.parameters.is_none() && self.name.is_none() && self.namespace.is_none() {
            return plugin.example_request.trim().to_owned();
        }
        request_body(
            self.name.as_deref().unwrap_or("preview"),
            self.namespace.as_deref(),
            self.parameters.as_ref(),
        )
    }
}

/// The body the controller sends.
fn request_body(name: &str, namespace: Option<&str>, parameters: Option<&Value>) -> String {
    let mut body = Map::new();
    body.insert("applicationSetName".into(), name.into());
    if let Some(namespace) = namespace {
        body.insert("applicationSetNamespace".into(), namespace.into());
    }
    let mut input = Map::new();
    if let Some(parameters) = parameters {
        input.insert("parameters".into(), parameters.clone());
    }
    body.insert("input".into(), input.into());
    Value::Object(body).to_string()
}

fn read(file: &str) -> Result<String, String> {
    if file == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("standard input: {e}"))
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))
    }
}

/// One plugin generator of this plugin in an ApplicationSet.
#[derive(Debug, Clone, PartialEq)]
struct Found {
    application_set: String,
    namespace: Option<String>,
    go_template: bool,
    /// `input.parameters`, an object (empty when absent).
    parameters: Value,
    /// The generator's `values`: templates rendered against each set.
    values: Map<String, Value>,
    /// Inside a matrix or merge generator.
    nested: bool,
    /// The first generator of its matrix (its keys win over the other's).
    first: bool,
    /// `--set`: the other generator's values, for one of its elements.
    other: Map<String, Value>,
    /// The ApplicationSet's template reads `generator.input.parameters`
    /// other than through `.Raw`.
    template_reads_input: bool,
}

/// YAML or JSON documents (YAML is a superset of JSON).
#[cfg(feature = "yaml")]
fn documents(text: &str) -> Result<Vec<Value>, String> {
    serde_saphyr::from_multiple(text).map_err(|e| format!("not YAML or JSON: {e}"))
}

/// JSON documents, one after another, in a build without YAML.
#[cfg(not(feature = "yaml"))]
fn documents(text: &str) -> Result<Vec<Value>, String> {
    serde_json::Deserializer::from_str(text)
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "not JSON: {e}. This build reads ApplicationSets as JSON only: give it \
                 `kubectl get applicationset NAME -o json`, or build with the `yaml` \
                 feature (the default of `cargo run`)"
            )
        })
}

/// This plugin's generators in YAML or JSON documents (ApplicationSets, or a
/// `kind: List` of them), searched through matrix and merge generators.
fn plugin_generators(text: &str, config_map: &str) -> Result<Vec<Found>, String> {
    let documents = documents(text)?;
    let mut application_sets = Vec::new();
    for document in &documents {
        match document["kind"].as_str() {
            Some("List") => {
                application_sets.extend(document["items"].as_array().into_iter().flatten())
            }
            _ => application_sets.push(document),
        }
    }
    let mut found = Vec::new();
    let mut others = Vec::new();
    for application_set in application_sets {
        if application_set["kind"] != "ApplicationSet" {
            continue;
        }
        let spec = &application_set["spec"];
        let mut generators = Vec::new();
        plugin_generators_in(&spec["generators"], false, &mut generators);
        for (generator, nested, first) in generators {
            let name = generator["configMapRef"]["name"].as_str().unwrap_or("");
            if name != config_map {
                others.push(name.to_owned());
                continue;
            }
            let metadata = &application_set["metadata"];
            found.push(Found {
                application_set: metadata["name"].as_str().unwrap_or("preview").to_owned(),
                namespace: metadata["namespace"].as_str().map(str::to_owned),
                go_template: spec["goTemplate"] == true,
                parameters: match &generator["input"]["parameters"] {
                    Value::Null => Value::Object(Map::new()),
                    parameters => parameters.clone(),
                },
                values: generator["values"].as_object().cloned().unwrap_or_default(),
                nested,
                first,
                other: Map::new(),
                template_reads_input: {
                    let template = spec["template"].to_string();
                    template.contains("generator.input.parameters") && !template.contains(".Raw")
                },
            });
        }
    }
    if found.is_empty() {
        others.sort();
        others.dedup();
        return Err(match others.as_slice() {
            [] => "no ApplicationSet with a plugin generator".into(),
            names => format!(
                "no plugin generator with configMapRef {config_map} (this plugin's); the file \
                 names {}: another plugin's, or pass --config-map NAME",
                names.join(", ")
            ),
        });
    }
    Ok(found)
}

/// Plugin generators, whether nested, and whether first of their list.
type Located<'a> = (&'a Value, bool, bool);

fn plugin_generators_in<'a>(generators: &'a Value, nested: bool, found: &mut Vec<Located<'a>>) {
    for (index, generator) in generators.as_array().into_iter().flatten().enumerate() {
        if generator["plugin"].is_object() {
            found.push((&generator["plugin"], nested, index == 0));
        }
        for combining in ["matrix", "merge"] {
            plugin_generators_in(&generator[combining]["generators"], true, found);
        }
    }
}

impl Found {
    fn request_body(&self) -> String {
        request_body(
            &self.application_set,
            self.namespace.as_deref(),
            Some(&self.parameters),
        )
    }

    /// Renders input parameters templated from the matrix's other generator
    /// with its values (`--set`), as Argo CD does, into strings.
    fn with_other_generator(mut self, other: &Map<String, Value>) -> Self {
        if !self.nested || other.is_empty() {
            return self;
        }
        let other_params = if self.go_template {
            other.clone()
        } else {
            let mut flat = Map::new();
            flatten("", &Value::Object(other.clone()), &mut flat);
            flat
        };
        if let Some(parameters) = self.parameters.as_object_mut() {
            for value in parameters.values_mut() {
                if let Some(text) = value.as_str()
                    && let Some(rendered) = interpolate(text, &other_params, self.go_template)
                {
                    *value = rendered.into();
                }
            }
        }
        self.other = other_params;
        self
    }

    /// Input parameters still holding a `{{` template.
    fn templated_parameters(&self) -> Vec<&str> {
        self.parameters
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, value)| value.to_string().contains("{{"))
            .map(|(key, _)| key.as_str())
            .collect()
    }

    /// What an author should know about this generator before reading its sets.
    fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let templated = self.templated_parameters();
        if self.nested && !templated.is_empty() {
            let (names, verb) = match templated.as_slice() {
                [one] => (format!("`{one}`"), "is"),
                many => (
                    many.iter()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    "are",
                ),
            };
            notes.push(format!(
                "input.parameters {names} {verb} sent as written here; inside a matrix Argo CD \
                 first renders them with the other generator's values, and sends them as \
                 strings (give those values with --set KEY=VALUE)"
            ));
        }
        if self.template_reads_input {
            notes.push(
                "the template reads generator.input.parameters: Argo CD hands them to templates as \
                 raw JSON, so `{{ index .generator.input.parameters \"k\" }}` prints bytes such \
                 as {[34 ...]}; write `{{ (index .generator.input.parameters \"k\").Raw | toString \
                 | fromJson }}`, or have the generator return what the template needs"
                    .into(),
            );
        }
        notes
    }

    /// Each set as the ApplicationSet's template sees it: the set (flattened
    /// to strings in flat mode), `generator.input.parameters`, and `values`
    /// rendered against the set. Also notes on values preview cannot render.
    fn template_view(&self, sets: &[ParameterMap]) -> (Vec<Value>, Vec<String>) {
        let mut notes = Vec::new();
        // Keys both generators of the matrix yield (known from --set only).
        let mut clashes: Vec<&str> = self
            .other
            .keys()
            .filter(|key| sets.iter().any(|set| set.contains_key(*key)))
            .map(String::as_str)
            .collect();
        clashes.sort_unstable();
        if !clashes.is_empty() {
            let keys = clashes
                .iter()
                .map(|key| format!("`{key}`"))
                .collect::<Vec<_>>()
                .join(", ");
            notes.push(if !self.go_template {
                format!("both generators of the matrix yield {keys}: without goTemplate Argo CD fails it")
            } else if self.first {
                format!("both generators of the matrix yield {keys}: this plugin comes first, so Argo CD keeps its values")
            } else {
                format!("both generators of the matrix yield {keys}: the other generator comes first, so Argo CD keeps its values, silently")
            });
        }
        let views = sets
            .iter()
            .map(|set| {
                let mut params = if self.go_template {
                    set.clone()
                } else {
                    let mut flat = Map::new();
                    flatten("", &Value::Object(set.clone()), &mut flat);
                    flat
                };
                // The matrix's other generator: the first one's keys win.
                for (key, value) in &self.other {
                    if !self.first || !params.contains_key(key) {
                        params.insert(key.clone(), value.clone());
                    }
                }
                params.insert(
                    "generator".into(),
                    serde_json::json!({"input": {"parameters": self.parameters}}),
                );
                let mut rendered = Map::new();
                for (key, template) in &self.values {
                    let text = template
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| template.to_string());
                    let value = match interpolate(&text, &params, self.go_template) {
                        Some(value) => value,
                        None => {
                            let note = format!(
                                "values.{key} is shown as written: preview renders only \
                                 {{{{ .key }}}} forms of keys the set has; Argo CD renders it \
                                 with Go templates"
                            );
                            if !notes.contains(&note) {
                                notes.push(note);
                            }
                            text
                        }
                    };
                    rendered.insert(key.clone(), value.into());
                }
                if !rendered.is_empty() {
                    if self.go_template {
                        params.insert("values".into(), Value::Object(rendered));
                    } else {
                        for (key, value) in rendered {
                            params.insert(format!("values.{key}"), value);
                        }
                    }
                }
                Value::Object(params)
            })
            .collect();
        (views, notes)
    }
}

/// Flat mode: nested keys joined with dots, list items by position, every
/// value printed as Go's `%v` does (`null` as `<nil>`); empty maps and lists
/// vanish.
fn flatten(prefix: &str, value: &Value, flat: &mut Map<String, Value>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        Value::Object(map) => map.iter().for_each(|(k, v)| flatten(&key(k), v, flat)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| flatten(&key(&i.to_string()), v, flat)),
        // `%v` of a scalar inside a map: null is `<nil>`.
        scalar => {
            flat.insert(prefix.to_owned(), go_print_nested(scalar).into());
        }
    }
}

/// Renders a `values` template against `params` where preview can do it as
/// Argo CD does: `{{ .a.b }}` in goTemplate, `{{a.b}}` in flat mode (where
/// unknown keys stay as written). `None` for anything else.
fn interpolate(template: &str, params: &Map<String, Value>, go_template: bool) -> Option<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let end = start + rest[start..].find("}}")?;
        out.push_str(&rest[..start]);
        let tag = &rest[start + 2..end];
        let key = tag.trim();
        if go_template {
            let path = key.strip_prefix('.')?;
            let valid = |s: &str| {
                s.chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                    && s.chars().all(|c| c.is_alphanumeric() || c == '_')
            };
            if !path.split('.').all(valid) {
                return None;
            }
            if path.starts_with("generator.") {
                return None;
            }
            let mut segments = path.split('.');
            let first = params.get(segments.next()?)?;
            let value = segments.try_fold(first, |value, segment| value.get(segment))?;
            out.push_str(&go_print(value));
        } else {
            match params.get(key).and_then(Value::as_str) {
                Some(value) if !key.is_empty() => out.push_str(value),
                _ => {
                    out.push_str("{{");
                    out.push_str(tag);
                    out.push_str("}}");
                }
            }
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PLUGIN: Plugin = Plugin {
        name: "my-plugin",
        default_port: 4355,
        example_request: r#"{"applicationSetName":"example","input":{}}"#,
    };

    fn options(args: &[&str]) -> Result<Options, String> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Options::parse(&args)
    }

    fn body(args: &[&str]) -> Value {
        serde_json::from_str(&options(args).unwrap().request_body(&PLUGIN)).unwrap()
    }

    #[test]
    fn no_arguments_preview_the_example_request() {
        assert_eq!(
            body(&[]),
            json!({"applicationSetName": "example", "input": {}})
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
            found[0].parameters,
            json!({"branch": "{{ .branch }}", "n": 3})
        );
        assert_eq!(
            serde_json::from_str::<Value>(&found[0].request_body()).unwrap(),
            json!({"applicationSetName": "previews", "applicationSetNamespace": "argocd",
                   "input": {"parameters": {"branch": "{{ .branch }}", "n": 3}}})
        );
        assert!(!found[1].go_template && !found[1].nested);
        assert_eq!(found[1].parameters, json!({}));
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
                "generator": {"input": {"parameters": {"branch": "{{ .branch }}", "n": 3}}},
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
                "generator": {"input": {"parameters": {}}},
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
        assert_eq!(matrix.parameters, json!({"branch": "feature-1", "n": 3}));
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
}
