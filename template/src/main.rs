//! Wires the plugin together; your code lives in `src/generator.rs`.

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::Arc;

use plugin::auth::TokenStore;
use plugin::cache::Cached;
use plugin::config::Config;
use plugin::generator::PluginGenerator;
use plugin::plugin::Generator;
use plugin::{healthcheck, server};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let result = match std::env::args().nth(1).as_deref() {
        None => actix_web::rt::System::new().block_on(run()),
        Some("healthcheck") => Config::from_env()
            .and_then(|config| healthcheck::check(config.listen_addr))
            .map_err(Into::into),
        Some(other) => {
            Err(format!("unknown argument {other:?}; the only one is `healthcheck`").into())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Not through `log`: RUST_LOG must not be able to hide why we stopped.
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    let tokens = Arc::new(TokenStore::load(&config.token_file)?);
    tokens.watch(config.token_reload_interval);
    let listener = TcpListener::bind(config.listen_addr)
        .map_err(|error| format!("cannot listen on {}: {error}", config.listen_addr))?;
    log::info!(
        "listening on {} (token from {})",
        config.listen_addr,
        config.token_file.display()
    );

    let generator = PluginGenerator::new();
    match config.cache_ttl {
        Some(ttl) => serve(listener, config, tokens, Cached::new(generator, ttl)).await,
        None => serve(listener, config, tokens, generator).await,
    }
}

async fn serve<G: Generator>(
    listener: TcpListener,
    config: Config,
    tokens: Arc<TokenStore>,
    generator: G,
) -> Result<(), Box<dyn std::error::Error>> {
    server::build(listener, config, tokens, Arc::new(generator))?.await?;
    log::info!("stopped");
    Ok(())
}
