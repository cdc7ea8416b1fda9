//! `<plugin> preview`: runs the generator once, as the server would for one
//! request, and prints the reply Argo CD would receive. No token, no server.

use actix_web::ResponseError;
use serde_json::{Map, Value};

use crate::cli::Plugin;
use crate::config::Config;
use crate::generator::{self, Generator};
use crate::protocol::GetParamsRequest;

pub const HELP: &str = "preview runs the generator once and prints the reply Argo CD would receive:
  PARAMETERS            input.parameters as a JSON object, e.g. '{\"environments\":[\"dev\"]}'
                        (none: the project's example request)
  --application-set N   the ApplicationSet's name (default: preview)
  --namespace NS        the ApplicationSet's namespace (default: none sent)
  --file F              an ApplicationSet as JSON ('-': standard input), e.g. from
                        `kubectl get applicationset NAME -o json`; its plugin
                        generator's input is used
It exits non-zero with Argo CD's error message when the generator fails.";

/// Runs `preview` with its arguments.
pub fn run<G: Generator>(
    plugin: &Plugin,
    args: &[String],
    config: Config,
    new_generator: impl FnOnce() -> Result<G, String>,
) -> Result<(), String> {
    let (request, show_request) = request(plugin, args)?;
    if show_request {
        println!("{request}");
        return Ok(());
    }
    let parsed: GetParamsRequest = serde_json::from_str(&request)
        .map_err(|e| format!("the request is not a valid plugin request: {e}\n{request}"))?;
    let generator = new_generator()?;
    let answer = actix_web::rt::System::new().block_on(generator::run(
        &generator,
        parsed,
        config.generator_timeout,
    ));
    match answer.and_then(|sets| generator::reply(sets, &config)) {
        Ok(body) => {
            // Pretty, for people; the same reply the server sends.
            let reply: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            let reply = serde_json::to_string_pretty(&reply).map_err(|e| e.to_string())?;
            println!("{reply}");
            Ok(())
        }
        Err(error) => Err(format!(
            "Argo CD would show: API error with status code {}: {error}",
            error.status_code().as_u16()
        )),
    }
}

/// The request body to preview, and whether only to print it.
fn request(plugin: &Plugin, args: &[String]) -> Result<(String, bool), String> {
    let mut parameters: Option<Value> = None;
    let mut name: Option<String> = None;
    let mut namespace: Option<String> = None;
    let mut show_request = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{flag} needs a value\n{HELP}"))
        };
        match arg.as_str() {
            "--request" => show_request = true,
            "--application-set" => name = Some(value(arg)?),
            "--namespace" => namespace = Some(value(arg)?),
            "--file" => {
                let file = value(arg)?;
                let found = from_application_set(plugin, &read(&file)?)
                    .map_err(|e| format!("{file}: {e}"))?;
                name = name.or(found.0);
                namespace = namespace.or(found.1);
                parameters = Some(found.2);
            }
            flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}\n{HELP}")),
            json if parameters.is_none() => {
                let value: Value = serde_json::from_str(json)
                    .map_err(|e| format!("PARAMETERS is not JSON ({e}): {json}"))?;
                if !value.is_object() {
                    return Err(format!("PARAMETERS must be a JSON object, got {json}"));
                }
                parameters = Some(value);
            }
            extra => return Err(format!("unexpected argument {extra:?}\n{HELP}")),
        }
    }
    let body = match parameters {
        None if name.is_none() && namespace.is_none() => plugin.example_request.trim().to_owned(),
        parameters => {
            let mut body = Map::new();
            body.insert(
                "applicationSetName".into(),
                name.unwrap_or_else(|| "preview".into()).into(),
            );
            if let Some(namespace) = namespace {
                body.insert("applicationSetNamespace".into(), namespace.into());
            }
            let mut input = Map::new();
            if let Some(parameters) = parameters {
                input.insert("parameters".into(), parameters);
            }
            body.insert("input".into(), input.into());
            Value::Object(body).to_string()
        }
    };
    Ok((body, show_request))
}

fn read(file: &str) -> Result<String, String> {
    if file == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("standard input: {e}"))
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))
    }
}

/// The name, namespace and plugin input parameters of an ApplicationSet
/// (its one plugin generator, or the one whose ConfigMap is named after the
/// plugin), searched through matrix and merge generators.
fn from_application_set(
    plugin: &Plugin,
    text: &str,
) -> Result<(Option<String>, Option<String>, Value), String> {
    let application_set: Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "not JSON ({e}); convert YAML first, e.g. `kubectl get applicationset NAME -o json` \
             or `yq -o json FILE`"
        )
    })?;
    let mut generators = Vec::new();
    find_plugin_generators(&application_set["spec"]["generators"], &mut generators);
    let chosen = match generators.as_slice() {
        [] => return Err("no plugin generator under spec.generators".into()),
        [one] => *one,
        several => several
            .iter()
            .copied()
            .find(|g| g["configMapRef"]["name"] == plugin.name)
            .ok_or_else(|| {
                format!(
                    "{} plugin generators, none with configMapRef.name {}",
                    several.len(),
                    plugin.name
                )
            })?,
    };
    let metadata = &application_set["metadata"];
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let parameters = match &chosen["input"]["parameters"] {
        Value::Null => Value::Object(Map::new()),
        parameters => parameters.clone(),
    };
    Ok((
        text(&metadata["name"]),
        text(&metadata["namespace"]),
        parameters,
    ))
}

fn find_plugin_generators<'a>(generators: &'a Value, found: &mut Vec<&'a Value>) {
    for generator in generators.as_array().into_iter().flatten() {
        if generator["plugin"].is_object() {
            found.push(&generator["plugin"]);
        }
        for nested in ["matrix", "merge"] {
            find_plugin_generators(&generator[nested]["generators"], found);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLUGIN: Plugin = Plugin {
        name: "my-plugin",
        default_port: 4355,
        example_request: r#"{"applicationSetName":"example","input":{}}"#,
    };

    fn body(args: &[&str]) -> Value {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        serde_json::from_str(&request(&PLUGIN, &args).unwrap().0).unwrap()
    }

    #[test]
    fn no_arguments_preview_the_example_request() {
        assert_eq!(
            body(&[]),
            serde_json::json!({"applicationSetName": "example", "input": {}})
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
            serde_json::json!({
                "applicationSetName": "shop",
                "applicationSetNamespace": "team",
                "input": {"parameters": {"a": [1]}},
            })
        );
    }

    #[test]
    fn finds_the_plugin_generator_inside_a_matrix() {
        let application_set = serde_json::json!({
            "metadata": {"name": "previews", "namespace": "argocd"},
            "spec": {"generators": [{"matrix": {"generators": [
                {"pullRequest": {}},
                {"plugin": {"configMapRef": {"name": "my-plugin"}, "input": {"parameters": {"branch": "x"}}}},
            ]}}]},
        });
        let (name, namespace, parameters) =
            from_application_set(&PLUGIN, &application_set.to_string()).unwrap();
        assert_eq!(name.as_deref(), Some("previews"));
        assert_eq!(namespace.as_deref(), Some("argocd"));
        assert_eq!(parameters, serde_json::json!({"branch": "x"}));
    }

    #[test]
    fn bad_arguments_say_what_is_wrong() {
        let error = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            request(&PLUGIN, &args).unwrap_err()
        };
        assert!(error(&["{not json"]).contains("PARAMETERS is not JSON"));
        assert!(error(&["[1]"]).contains("must be a JSON object"));
        assert!(error(&["--namespace"]).contains("needs a value"));
        assert!(error(&["--bogus"]).contains("unknown flag"));
        let no_plugin = from_application_set(&PLUGIN, r#"{"spec":{"generators":[]}}"#);
        assert!(no_plugin.unwrap_err().contains("no plugin generator"));
        assert!(
            from_application_set(&PLUGIN, "kind: ApplicationSet")
                .unwrap_err()
                .contains("not JSON")
        );
    }
}
