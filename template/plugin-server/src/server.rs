//! The HTTP server: limits, timeouts, the access log and graceful shutdown.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpMessage, HttpServer, web};

use crate::auth::TokenStore;
use crate::config::Config;
use crate::error::PluginError;
use crate::generator::Generator;
use crate::handlers::{self, ApplicationSetName};
#[cfg(feature = "metrics")]
use crate::metrics;

/// The sockets the server serves: the plugin's, and (with the `metrics`
/// feature) a separate one for `GET /metrics`, so that a NetworkPolicy can
/// admit Prometheus to the metrics alone.
#[derive(Debug)]
pub struct Listeners {
    pub plugin: TcpListener,
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    /// Binds `config.listen_addr` and, with metrics, `config.metrics_addr`.
    pub fn bind(config: &Config) -> Result<Self, String> {
        let bind = |addr: SocketAddr| {
            TcpListener::bind(addr).map_err(|error| format!("cannot listen on {addr}: {error}"))
        };
        let metrics = if cfg!(feature = "metrics") {
            Some(bind(config.metrics_addr)?)
        } else {
            None
        };
        Ok(Self {
            plugin: bind(config.listen_addr)?,
            metrics,
        })
    }
}

/// The metrics socket's address, to tell its requests from the plugin's.
#[derive(Debug, Clone, Copy)]
struct MetricsAddr(Option<SocketAddr>);

/// Builds the server on bound listeners. Await the returned [`Server`] to
/// run it; stop it with its handle (`cli` does on SIGTERM and SIGINT),
/// which lets in-flight requests finish and closes idle connections.
pub fn build<G: Generator>(
    listeners: Listeners,
    config: Config,
    tokens: Arc<TokenStore>,
    generator: Arc<G>,
) -> io::Result<Server> {
    let workers = config.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    // actix counts connections per worker.
    let max_connections = config.max_connections.div_ceil(workers).max(1);
    let header_timeout = config.header_timeout;
    let keep_alive = config.keep_alive;
    let shutdown_timeout = config.shutdown_timeout();

    let config = web::Data::new(config);
    let tokens = web::Data::from(tokens);
    let generator = web::Data::from(generator);
    let metrics_addr = match &listeners.metrics {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
    let metrics_addr = web::Data::new(MetricsAddr(metrics_addr));
    #[cfg(feature = "metrics")]
    let metrics = web::Data::new(metrics::Metrics::default());
    let mut server = HttpServer::new(move || {
        let app = App::new()
            .app_data(config.clone())
            .app_data(tokens.clone())
            .app_data(generator.clone())
            .app_data(metrics_addr.clone());
        #[cfg(feature = "metrics")]
        let app = app
            .app_data(metrics.clone())
            .route("/metrics", web::get().to(metrics::endpoint));
        app.wrap(from_fn(by_listener))
            .wrap(from_fn(access_log))
            .configure(handlers::routes::<G>)
    })
    .workers(workers)
    .max_connections(max_connections)
    .client_request_timeout(header_timeout)
    .client_disconnect_timeout(Duration::from_secs(1))
    .keep_alive(keep_alive)
    .shutdown_timeout(shutdown_timeout.as_secs())
    // SIGTERM and SIGINT are handled in `cli`: both stop gracefully.
    .disable_signals()
    .listen(listeners.plugin)?;
    if let Some(listener) = listeners.metrics {
        server = server.listen(listener)?;
    }
    Ok(server.run())
}

/// The metrics socket serves `/metrics` alone, and the plugin's socket
/// everything but `/metrics`.
async fn by_listener(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics_addr = request
        .app_data::<web::Data<MetricsAddr>>()
        .and_then(|addr| addr.0);
    let on_metrics_socket = metrics_addr == Some(request.app_config().local_addr());
    if on_metrics_socket != (request.path() == "/metrics") {
        return Err(PluginError::NotFound.into());
    }
    next.call(request).await
}

/// One line per request: method, path, status, duration, ApplicationSet and,
/// for errors, the message. Never a header, so never the token.
async fn access_log(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let response = next.call(request).await?;
    #[cfg(feature = "metrics")]
    metrics::observe(&response, started.elapsed());
    let status = response.status();
    let path = response.request().path();
    let level = if status.is_server_error() {
        log::Level::Warn
    } else if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        log::Level::Debug
    } else {
        log::Level::Info
    };
    if log::log_enabled!(level) {
        // What clients send is escaped, so it cannot forge a log line.
        let application_set = response
            .request()
            .extensions()
            .get::<ApplicationSetName>()
            .map(|name| name.0.escape_debug().to_string())
            .unwrap_or_else(|| "-".into());
        let path = path.escape_debug();
        let error = response
            .response()
            .error()
            .map(|error| format!(" error={:?}", error.to_string()))
            .unwrap_or_default();
        log::log!(
            level,
            "{} {path} {} {:.1}ms applicationSet={application_set}{error}",
            response.request().method(),
            status.as_u16(),
            started.elapsed().as_secs_f64() * 1000.0,
        );
    }
    Ok(response)
}
