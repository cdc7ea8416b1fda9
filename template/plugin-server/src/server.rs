//! The HTTP server: limits, timeouts, the access log and graceful shutdown.

use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpMessage, HttpServer, web};

use crate::auth::TokenStore;
use crate::config::Config;
use crate::generator::Generator;
use crate::handlers::{self, ApplicationSetName};
#[cfg(feature = "metrics")]
use crate::metrics;

/// Builds the server on a bound listener. Await the returned [`Server`] to
/// run it; it stops gracefully on SIGTERM or SIGINT, letting in-flight
/// requests finish.
pub fn build<G: Generator>(
    listener: TcpListener,
    config: Config,
    tokens: Arc<TokenStore>,
    generator: Arc<G>,
) -> io::Result<Server> {
    let workers = config.workers;
    let header_timeout = config.header_timeout;
    let keep_alive = config.keep_alive;
    let shutdown_timeout = config.shutdown_timeout();

    let config = web::Data::new(config);
    let tokens = web::Data::from(tokens);
    let generator = web::Data::from(generator);
    #[cfg(feature = "metrics")]
    let metrics = web::Data::new(metrics::Metrics::default());
    let mut server = HttpServer::new(move || {
        let app = App::new()
            .app_data(config.clone())
            .app_data(tokens.clone())
            .app_data(generator.clone());
        #[cfg(feature = "metrics")]
        let app = app
            .app_data(metrics.clone())
            .route("/metrics", web::get().to(metrics::endpoint));
        app.wrap(from_fn(access_log))
            .configure(handlers::routes::<G>)
    })
    .client_request_timeout(header_timeout)
    .client_disconnect_timeout(Duration::from_secs(1))
    .keep_alive(keep_alive)
    .shutdown_timeout(shutdown_timeout.as_secs())
    .listen(listener)?;
    if let Some(workers) = workers {
        server = server.workers(workers);
    }
    Ok(server.run())
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
        let application_set = response
            .request()
            .extensions()
            .get::<ApplicationSetName>()
            .map(|name| name.0.clone())
            .unwrap_or_else(|| "-".into());
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
