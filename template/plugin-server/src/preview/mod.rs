//! `<plugin> preview`: runs the generator once, as the server would for one
//! request, and prints the reply Argo CD would receive. No token, no server.
//! With `--file`, it takes ApplicationSets as authors keep them in Git (YAML
//! or JSON) and prints what their templates see.

mod application_sets;
mod options;
mod template_view;

use actix_web::ResponseError;
use serde_json::Value;

use crate::cli::Plugin;
use crate::config::Config;
use crate::generator::{self, Generator};
use crate::protocol::{GetParamsRequest, ParameterMap};
use crate::template_values;
use application_sets::{Found, plugin_generators, read};
use options::Options;

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

/// Runs `preview` with its arguments: the generator is built and run on one
/// actix runtime, as when serving.
pub fn run<G: Generator>(
    plugin: &Plugin,
    args: &[String],
    config: Config,
    new_generator: impl FnOnce() -> Result<G, String>,
) -> Result<(), String> {
    let options = Options::parse(args)?;
    let Some(file) = &options.file else {
        let request = options.request(plugin)?;
        if options.show_request {
            println!("{}", json(&request));
            return Ok(());
        }
        return actix_web::rt::System::new().block_on(async {
            let generator = new_generator()?;
            let (sets, body) = answer(&generator, request, &config).await?;
            report_surprises(&sets);
            // The reply the server sends, pretty for people.
            let reply: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            println!("{}", pretty(&reply));
            Ok(())
        });
    };
    let config_map = options.config_map.as_deref().unwrap_or(plugin.name);
    let found = plugin_generators(&read(file)?, config_map).map_err(|e| format!("{file}: {e}"))?;
    let found: Vec<Found> = found
        .into_iter()
        .map(|found| found.with_other_generator(&options.other))
        .collect();
    if options.show_request {
        for generator in &found {
            println!("{}", json(&generator.request()));
        }
        return Ok(());
    }
    actix_web::rt::System::new().block_on(async {
        let generator = new_generator()?;
        for found in &found {
            print_template_view(&generator, found, &config).await?;
        }
        Ok(())
    })
}

/// One plugin generator of `--file`: its sets as the template sees them on
/// standard output, what Argo CD adds or does differently on standard error.
async fn print_template_view<G: Generator>(
    generator: &G,
    found: &Found,
    config: &Config,
) -> Result<(), String> {
    let (sets, _) = answer(generator, found.request(), config)
        .await
        .map_err(|e| {
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
    // The same for every set: said once, not repeated in each.
    eprintln!(
        "  each set also has generator.input.parameters: {}",
        json(&found.parameters)
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
    Ok(())
}

/// The generator's answer under the server's deadline and limits, and the
/// reply body the server would send; or the message Argo CD would show.
async fn answer<G: Generator>(
    generator: &G,
    request: GetParamsRequest,
    config: &Config,
) -> Result<(Vec<ParameterMap>, Vec<u8>), String> {
    let result = generator::run(generator, request, config.generator_timeout).await;
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

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests;
