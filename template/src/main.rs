//! Hands your generator (`src/generator.rs`) to the template's server
//! (`plugin-server/`). Run `{{project-name}} help` for the commands.

mod generator;

use std::process::ExitCode;

/// The port the plugin listens on unless `PLUGIN_LISTEN_ADDR` says otherwise.
const DEFAULT_PORT: u16 = {{plugin_port}};

fn main() -> ExitCode {
    let plugin = plugin_server::Plugin {
        name: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        default_port: DEFAULT_PORT,
        example_request: generator::EXAMPLE_REQUEST,
    };
    plugin.main(generator::PluginGenerator::from_env)
}
