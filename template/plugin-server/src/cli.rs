//! The plugin binary's command line: serve (the default), `healthcheck` for
//! the image, and `preview` to run the generator once without a server.

use std::fmt::Display;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::rt::signal::unix::{SignalKind, signal};

use crate::auth::TokenStore;
use crate::cache::Cached;
use crate::config::Config;
use crate::generator::Generator;
use crate::server::{Listeners, Reported};
use crate::{healthcheck, logging, memory, preview, server};

/// What a project's `src/main.rs` tells the server about its plugin.
#[derive(Debug, Clone, Copy)]
pub struct Plugin {
    /// The binary's name, for messages.
    pub name: &'static str,
    /// The binary's version (`env!("CARGO_PKG_VERSION")`), for the metrics.
    pub version: &'static str,
    /// The port to listen on when `PLUGIN_LISTEN_ADDR` is unset.
    pub default_port: u16,
    /// A request body the generator answers with success: `preview` runs it
    /// when given no parameters, and the template's checks send it.
    pub example_request: &'static str,
}

impl Plugin {
    /// Runs the command line of the process. `new_generator` builds the
    /// generator (reading its own settings) when one is needed; its error
    /// stops the plugin with that message.
    pub fn main<G, E>(&self, new_generator: impl FnOnce() -> Result<G, E>) -> ExitCode
    where
        G: Generator,
        E: Display,
    {
        self.main_with_args(std::env::args().skip(1).collect(), new_generator)
    }

    /// Like [`Plugin::main`] with the given arguments (without the program name).
    pub fn main_with_args<G, E>(
        &self,
        args: Vec<String>,
        new_generator: impl FnOnce() -> Result<G, E>,
    ) -> ExitCode
    where
        G: Generator,
        E: Display,
    {
        let (format, format_error) = match logging::Format::from_env() {
            Ok(format) => (format, None),
            Err(error) => (logging::Format::Text, Some(error)),
        };
        logging::init(format);
        let result = match format_error {
            Some(error) => Err(error),
            None => self.dispatch(&args, new_generator),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                // Not through `log`: RUST_LOG must not be able to hide why we stopped.
                eprintln!("{}", logging::fatal(format, &error));
                ExitCode::FAILURE
            }
        }
    }

    fn usage(&self) -> String {
        let name = self.name;
        format!(
            "usage:
  {name}               serve Argo CD (settings: PLUGIN_* environment variables)
  {name} healthcheck   ask the running plugin's /healthz (the image's health check)
  {name} preview [PARAMETERS] [--application-set NAME] [--namespace NAMESPACE]
  {name} preview --file APPLICATIONSET.yaml
  {name} preview --request   print the request preview sends
{}",
            preview::HELP
        )
    }

    fn dispatch<G, E>(
        &self,
        args: &[String],
        new_generator: impl FnOnce() -> Result<G, E>,
    ) -> Result<(), String>
    where
        G: Generator,
        E: Display,
    {
        let config = || Config::from_env(Config::with_port(self.default_port));
        let generator = || new_generator().map_err(|e| format!("cannot set up the generator: {e}"));
        match args.first().map(String::as_str) {
            None | Some("serve") if args.len() <= 1 => {
                let config = config()?;
                actix_web::rt::System::new().block_on(serve(self.version, config, generator))
            }
            Some("healthcheck") if args.len() == 1 => {
                let config = config()?;
                healthcheck::check(config.listen_addr, config.tls.as_ref())
            }
            Some("preview") => preview::run(self, &args[1..], config()?, generator),
            Some("help" | "-h" | "--help") => {
                println!("{}", self.usage());
                Ok(())
            }
            _ => Err(format!("unknown arguments {args:?}\n{}", self.usage())),
        }
    }
}

/// Serves until SIGTERM or SIGINT. The token is checked first, so an
/// unusable one stops the plugin before anything else happens.
async fn serve<G: Generator>(
    version: &'static str,
    config: Config,
    new_generator: impl FnOnce() -> Result<G, String>,
) -> Result<(), String> {
    let tokens = Arc::new(TokenStore::load(&config.token_file).map_err(|e| e.to_string())?);
    let generator = new_generator()?;
    let listeners = Listeners::bind(&config)?;
    tokens.watch(config.token_reload_interval);
    #[cfg(feature = "tls")]
    if let Some(certificates) = &listeners.tls {
        certificates.watch(config.token_reload_interval);
    }
    memory::trim_every(Duration::from_secs(5));
    log::info!(
        "listening on {}{}{} (token from {})",
        if listeners.https() {
            "https://"
        } else {
            "http://"
        },
        config.listen_addr,
        match listeners.metrics.as_ref().map(|l| l.local_addr()) {
            Some(Ok(addr)) => format!(", metrics on {addr}"),
            _ => String::new(),
        },
        config.token_file.display()
    );
    let reported = Reported {
        version,
        cache: None,
    };
    let result = match config.cache_ttl {
        Some(ttl) => {
            let cached = Cached::new(generator, ttl);
            let reported = Reported {
                cache: Some(cached.stats()),
                ..reported
            };
            run(listeners, config, tokens, cached, reported).await
        }
        None => run(listeners, config, tokens, generator, reported).await,
    };
    log::info!("stopped");
    result
}

async fn run<G: Generator>(
    listeners: Listeners,
    config: Config,
    tokens: Arc<TokenStore>,
    generator: G,
    reported: Reported,
) -> Result<(), String> {
    let drain = config.drain;
    let draining = Arc::new(AtomicBool::new(false));
    let server = server::build(
        listeners,
        config,
        tokens,
        Arc::new(generator),
        Arc::clone(&draining),
        reported,
    )
    .map_err(|e| e.to_string())?;
    // Kubernetes sends SIGTERM once the pod has left the Service's
    // endpoints, but clients still hold kept-alive connections to it, and
    // Go's transport does not retry a POST on a connection the server
    // closed. So the plugin first drains: it keeps serving, every answer
    // saying `Connection: close`, and only then stops (in-flight requests
    // finish; connections kept alive are closed). SIGINT, from a terminal,
    // stops at once.
    for (kind, name, drain) in [
        (SignalKind::terminate(), "SIGTERM", drain),
        (SignalKind::interrupt(), "SIGINT", Duration::ZERO),
    ] {
        let mut signals = signal(kind).map_err(|e| format!("cannot handle {name}: {e}"))?;
        let handle = server.handle();
        let draining = Arc::clone(&draining);
        actix_web::rt::spawn(async move {
            if signals.recv().await.is_some() {
                if !drain.is_zero() {
                    log::info!(
                        "{name} received: draining for {} s (answers say Connection: close)",
                        drain.as_secs()
                    );
                    draining.store(true, Ordering::Relaxed);
                    actix_web::rt::time::sleep(drain).await;
                }
                log::info!("{name} received: finishing in-flight requests, then stopping");
                handle.stop(true).await;
            }
        });
    }
    server.await.map_err(|e| e.to_string())
}
