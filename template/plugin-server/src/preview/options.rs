//! `preview`'s command line.

use serde_json::Value;

use super::HELP;
use crate::cli::Plugin;
use crate::protocol::{GetParamsRequest, ParameterMap};

/// The command line of `preview`.
#[derive(Debug, Default)]
pub(super) struct Options {
    pub parameters: Option<ParameterMap>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub file: Option<String>,
    pub config_map: Option<String>,
    /// `--set`: the other generator's values.
    pub other: ParameterMap,
    pub show_request: bool,
}

impl Options {
    pub(super) fn parse(args: &[String]) -> Result<Self, String> {
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
                    let Value::Object(parameters) = value else {
                        return Err(format!("PARAMETERS must be a JSON object, got {json}"));
                    };
                    options.parameters = Some(parameters);
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

    /// The request to preview without `--file`: the project's example
    /// request when given nothing, else the one the options describe.
    pub(super) fn request(&self, plugin: &Plugin) -> Result<GetParamsRequest, String> {
        if self.parameters.is_none() && self.name.is_none() && self.namespace.is_none() {
            let example = plugin.example_request.trim();
            return serde_json::from_str(example).map_err(|e| {
                format!(
                    "the project's EXAMPLE_REQUEST is not a valid plugin request: {e}\n{example}"
                )
            });
        }
        Ok(GetParamsRequest::new(
            self.name.as_deref().unwrap_or("preview"),
            self.namespace.clone(),
            self.parameters.clone().unwrap_or_default(),
        ))
    }
}
