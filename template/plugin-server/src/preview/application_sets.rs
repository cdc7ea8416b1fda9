//! This plugin's generators in ApplicationSets as kept in Git (YAML or
//! JSON), and what an author should know about each.

use serde_json::{Map, Value};

use crate::protocol::{GetParamsRequest, ParameterMap};

pub(super) fn read(file: &str) -> Result<String, String> {
    if file == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("standard input: {e}"))
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))
    }
}

/// One plugin generator of this plugin in an ApplicationSet.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Found {
    pub application_set: String,
    pub namespace: Option<String>,
    pub go_template: bool,
    /// `input.parameters` (empty when absent).
    pub parameters: ParameterMap,
    /// The generator's `values`: templates rendered against each set.
    pub values: Map<String, Value>,
    /// Inside a matrix or merge generator.
    pub nested: bool,
    /// The first generator of its matrix (its keys win over the other's).
    pub first: bool,
    /// `--set`: the other generator's values, for one of its elements.
    pub other: ParameterMap,
    /// The ApplicationSet's template reads `generator.input.parameters`
    /// other than through `.Raw`.
    pub template_reads_input: bool,
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
pub(super) fn plugin_generators(text: &str, config_map: &str) -> Result<Vec<Found>, String> {
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
            let name = metadata["name"].as_str().unwrap_or("preview");
            let parameters = match &generator["input"]["parameters"] {
                Value::Null => ParameterMap::new(),
                Value::Object(parameters) => parameters.clone(),
                other => {
                    return Err(format!(
                        "ApplicationSet {name}: input.parameters must be an object, got {}",
                        crate::handlers::cut(&other.to_string(), 64)
                    ));
                }
            };
            found.push(Found {
                application_set: name.to_owned(),
                namespace: metadata["namespace"].as_str().map(str::to_owned),
                go_template: spec["goTemplate"] == true,
                parameters,
                values: generator["values"].as_object().cloned().unwrap_or_default(),
                nested,
                first,
                other: ParameterMap::new(),
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
    /// The request Argo CD sends for this generator.
    pub(super) fn request(&self) -> GetParamsRequest {
        GetParamsRequest::new(
            self.application_set.clone(),
            self.namespace.clone(),
            self.parameters.clone(),
        )
    }

    /// Input parameters still holding a `{{` template.
    pub(super) fn templated_parameters(&self) -> Vec<&str> {
        self.parameters
            .iter()
            .filter(|(_, value)| value.to_string().contains("{{"))
            .map(|(key, _)| key.as_str())
            .collect()
    }

    /// What an author should know about this generator before reading its sets.
    pub(super) fn notes(&self) -> Vec<String> {
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
}
