//! A project's example request (the `EXAMPLE_REQUEST` of its
//! `src/generator.rs`) and its generator's answer, read from the built
//! binary with `preview`. The checks send it and compare; they never assume
//! what any generator answers.

use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value};

use crate::command::run_command;

#[derive(Debug, Clone)]
pub struct Example {
    /// The request body, as JSON.
    pub request: Value,
    /// The parameter sets `preview` printed for it.
    pub sets: Vec<Map<String, Value>>,
}

impl Example {
    /// Runs `binary preview --request` and `binary preview` with `env` (what
    /// the generator needs to start) on top of the inherited environment.
    pub fn from_binary(binary: &Path, env: &[(String, String)]) -> Result<Self, String> {
        let preview = |args: &[&str]| -> Result<Value, String> {
            let output = run_command(
                Command::new(binary)
                    .arg("preview")
                    .args(args)
                    .envs(env.iter().map(|(k, v)| (k, v))),
            )?;
            serde_json::from_slice(&output.stdout).map_err(|e| {
                format!(
                    "{} preview {args:?} printed no JSON ({e}): {}",
                    binary.display(),
                    String::from_utf8_lossy(&output.stdout)
                )
            })
        };
        let request = preview(&["--request"])?;
        let reply = preview(&[])?;
        let sets = serde_json::from_value(reply["output"]["parameters"].clone())
            .map_err(|e| format!("preview printed no parameter sets ({e}): {reply}"))?;
        Ok(Self { request, sets })
    }

    /// The ApplicationSet the example request names.
    pub fn application_set(&self) -> &str {
        self.request["applicationSetName"].as_str().unwrap_or("")
    }
}
