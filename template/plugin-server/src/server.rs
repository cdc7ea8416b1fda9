//! The HTTP server: limits, timeouts, the access log and graceful shutdown.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use actix_http::body::BoxBody;
use actix_http::error::DispatchError;
use actix_http::{Extensions, HttpService, Request, Response};
use actix_server::{GracefulShutdownSignal, Server, ServerServiceFactory};
use actix_service::{
    IntoServiceFactory, ServiceFactory, ServiceFactoryExt, fn_service, map_config,
};
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{ConnectionType, Method, StatusCode};
use actix_web::middleware::{Next, from_fn};
use actix_web::rt::net::TcpStream;
use actix_web::{App, HttpMessage, ResponseError, web};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::auth::TokenStore;
use crate::cache::CacheStats;
use crate::config::Config;
use crate::connection::{Connection, ConnectionStats, Connections, Guarded, Timeouts};
use crate::generator::Generator;
use crate::handlers::{self, ApplicationSetName};
#[cfg(feature = "metrics")]
use crate::metrics;
use crate::request_body::{HeldBody, SharedPayload};
use crate::template_values;
#[cfg(feature = "tls")]
use crate::tls::Certificates;

/// The sockets the server serves: the plugin's, and (with the `metrics`
/// feature) a separate one for `GET /metrics`, so that a NetworkPolicy can
/// admit Prometheus to the metrics alone; and, with `config.tls`, the
/// certificates the plugin's socket serves HTTPS with (metrics stay HTTP).
#[derive(Debug)]
pub struct Listeners {
    pub plugin: TcpListener,
    pub metrics: Option<TcpListener>,
    #[cfg(feature = "tls")]
    pub tls: Option<Arc<Certificates>>,
}

impl Listeners {
    /// Loads the certificates of `config.tls` (an unusable pair stops the
    /// plugin here), then binds `config.listen_addr` and, with metrics,
    /// `config.metrics_addr`.
    pub fn bind(config: &Config) -> Result<Self, String> {
        #[cfg(feature = "tls")]
        let tls = match &config.tls {
            Some(files) => Some(Arc::new(
                Certificates::load(files).map_err(|error| error.to_string())?,
            )),
            None => None,
        };
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
            #[cfg(feature = "tls")]
            tls,
        })
    }

    /// Whether the plugin's socket serves HTTPS.
    pub fn https(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }
}

/// What the metrics report about the process (with the `metrics` feature).
#[derive(Debug, Clone, Default)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub struct Reported {
    /// The plugin's version.
    pub version: &'static str,
    /// The cache's counts, when it is on.
    pub cache: Option<Arc<CacheStats>>,
}

/// Connections of the metrics socket per worker: Prometheus needs one.
const METRICS_CONNECTIONS: usize = 16;

/// Builds the server on bound listeners. Await the returned [`Server`] to
/// run it; stop it with its handle (`cli` does on SIGTERM and SIGINT), which
/// lets in-flight requests finish with `Connection: close` and closes idle
/// connections. While `draining` is set, every answer says `Connection: close`
/// and `/readyz` answers 503.
pub fn build<G: Generator>(
    listeners: Listeners,
    config: Config,
    tokens: Arc<TokenStore>,
    generator: Arc<G>,
    draining: Arc<AtomicBool>,
    reported: Reported,
) -> io::Result<Server> {
    let workers = config.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    // Caps are per worker thread.
    let plugin_cap = config.max_connections.div_ceil(workers).max(1);
    let limits = Limits {
        timeouts: Timeouts {
            header: config.header_timeout,
            keep_alive: config.keep_alive,
            request: config.body_timeout + config.generator_timeout + config.header_timeout,
        },
        cap: plugin_cap,
    };
    let builder = Server::build()
        .workers(workers)
        // Above the caps: shed connections still count until they are gone.
        .max_concurrent_connections(plugin_cap + plugin_cap / 4 + 2 * METRICS_CONNECTIONS)
        .shutdown_timeout(config.shutdown_timeout().as_secs())
        // SIGTERM and SIGINT are handled in `cli`: both stop gracefully.
        .disable_signals();
    let shutdown = builder.graceful_shutdown_signal();

    let metrics_listener = listeners.metrics;
    #[cfg(feature = "tls")]
    let tls = listeners.tls;
    let config = web::Data::new(config);
    let tokens = web::Data::from(tokens);
    let generator = web::Data::from(generator);
    let value_warnings = web::Data::new(template_values::Warnings::new(
        template_values::WARNING_INTERVAL,
        template_values::WARNING_CAPACITY,
    ));
    let connection_stats = Arc::new(ConnectionStats::default());
    #[cfg(feature = "metrics")]
    let metrics = web::Data::new(metrics::Metrics::new(metrics::Process {
        version: reported.version,
        connections: Arc::clone(&connection_stats),
        tokens: tokens.clone().into_inner(),
        cache: reported.cache,
        #[cfg(feature = "tls")]
        tls: tls.clone(),
    }));
    #[cfg(not(feature = "metrics"))]
    let _ = reported;
    let drain_flag = web::Data::from(Arc::clone(&draining));

    let plugin_app = {
        let (config, tokens) = (config.clone(), tokens.clone());
        #[cfg(feature = "metrics")]
        let metrics = metrics.clone();
        move || {
            let app = App::new()
                .app_data(config.clone())
                .app_data(tokens.clone())
                .app_data(generator.clone())
                .app_data(value_warnings.clone())
                .app_data(drain_flag.clone());
            #[cfg(feature = "metrics")]
            let app = app.app_data(metrics.clone());
            app.configure(handlers::routes::<G>)
                .wrap(from_fn(access_log))
                .wrap(from_fn(track_request))
        }
    };
    let refusals = Refusals {
        #[cfg(feature = "metrics")]
        metrics: Some(metrics.clone()),
    };
    let plugin = Socket {
        limits,
        shutdown: shutdown.clone(),
        tokens: tokens.clone().into_inner(),
        draining: draining.clone(),
        refusals,
        stats: connection_stats,
    };
    #[cfg(feature = "tls")]
    let builder = match tls {
        Some(certificates) => {
            let handshake = Tls {
                acceptor: tokio_rustls::TlsAcceptor::from(certificates.server_config()),
                certificates,
            };
            builder.listen(
                "plugin",
                listeners.plugin,
                plugin.http(plugin_app, handshake),
            )?
        }
        None => builder.listen("plugin", listeners.plugin, plugin.http(plugin_app, Plain))?,
    };
    #[cfg(not(feature = "tls"))]
    let builder = builder.listen("plugin", listeners.plugin, plugin.http(plugin_app, Plain))?;
    #[cfg(feature = "metrics")]
    let builder = match metrics_listener {
        Some(listener) => {
            let metrics_app = move || {
                App::new()
                    .app_data(metrics.clone())
                    .route("/metrics", web::get().to(metrics::endpoint))
                    .default_service(web::to(handlers::not_found))
                    .wrap(from_fn(access_log))
                    .wrap(from_fn(track_request))
            };
            let limits = Limits {
                cap: METRICS_CONNECTIONS,
                ..limits
            };
            let socket = Socket {
                limits,
                shutdown,
                tokens: tokens.into_inner(),
                draining,
                refusals: Refusals { metrics: None },
                stats: Arc::default(),
            };
            builder.listen("metrics", listener, socket.http(metrics_app, Plain))?
        }
        None => builder,
    };
    #[cfg(not(feature = "metrics"))]
    let _ = (metrics_listener, shutdown, draining);
    Ok(builder.run())
}

/// What bounds the connections of one socket.
#[derive(Debug, Clone, Copy)]
struct Limits {
    timeouts: Timeouts,
    /// Open connections per worker.
    cap: usize,
}

/// Where a request answered before the app sees it (a refused `Expect:
/// 100-continue`) is counted and logged like any other.
#[derive(Clone)]
struct Refusals {
    #[cfg(feature = "metrics")]
    metrics: Option<web::Data<metrics::Metrics>>,
}

impl Refusals {
    fn record(&self, method: &Method, path: &str, status: StatusCode, message: &str) {
        #[cfg(feature = "metrics")]
        if let Some(metrics) = &self.metrics {
            // No ApplicationSet: the body was never read.
            metrics.record("", status.as_u16(), Duration::ZERO);
        }
        log_answer(method, path, status, Duration::ZERO, None, Some(message));
    }
}

/// What serves one socket's connections, but for its app.
struct Socket {
    limits: Limits,
    shutdown: GracefulShutdownSignal,
    tokens: Arc<TokenStore>,
    draining: Arc<AtomicBool>,
    refusals: Refusals,
    stats: Arc<ConnectionStats>,
}

/// How an admitted connection's bytes reach HTTP: as they are, or through TLS.
trait Handshake: Clone + Send + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + 'static;
    fn accept(self, io: Guarded<TcpStream>) -> impl Future<Output = io::Result<Self::Io>>;
    /// The connection's state, for its requests.
    fn connection(io: &Self::Io) -> Rc<Connection>;
}

/// Plain HTTP.
#[derive(Clone)]
struct Plain;

impl Handshake for Plain {
    type Io = Guarded<TcpStream>;
    fn accept(self, io: Guarded<TcpStream>) -> impl Future<Output = io::Result<Self::Io>> {
        std::future::ready(Ok(io))
    }
    fn connection(io: &Self::Io) -> Rc<Connection> {
        io.connection()
    }
}

/// HTTPS: the handshake reads through [`Guarded`], so its bytes count as
/// the head of the first request (a slow handshake is a slow head).
#[cfg(feature = "tls")]
#[derive(Clone)]
struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    certificates: Arc<Certificates>,
}

#[cfg(feature = "tls")]
impl Handshake for Tls {
    type Io = tokio_rustls::server::TlsStream<Guarded<TcpStream>>;
    async fn accept(self, io: Guarded<TcpStream>) -> io::Result<Self::Io> {
        self.acceptor.accept(io).await.inspect_err(|error| {
            let stats = self.certificates.stats();
            stats
                .handshakes_failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            log::debug!("TLS handshake failed: {error}");
        })
    }
    fn connection(io: &Self::Io) -> Rc<Connection> {
        io.get_ref().0.connection()
    }
}

impl Socket {
    /// The socket's connections: each admitted by [`Connections`], through
    /// `handshake`, then served by actix-http (HTTP/1.1) with the app
    /// `new_app` makes.
    fn http<F, I, S, B, H>(self, new_app: F, handshake: H) -> impl ServerServiceFactory<TcpStream>
    where
        F: Fn() -> I + Send + Clone + 'static,
        I: IntoServiceFactory<S, Request>,
        S: ServiceFactory<Request, Config = AppConfig> + 'static,
        S::Error: Into<actix_web::Error>,
        S::InitError: std::fmt::Debug,
        S::Response: Into<Response<B>>,
        B: MessageBody + 'static,
        H: Handshake,
    {
        let Self {
            limits,
            shutdown,
            tokens,
            draining,
            refusals,
            stats,
        } = self;
        move || {
            let connections = Connections::start(
                limits.cap,
                limits.timeouts,
                shutdown.clone(),
                Arc::clone(&draining),
                Arc::clone(&stats),
            );
            let tokens = Arc::clone(&tokens);
            let refusals = refusals.clone();
            let handshake = handshake.clone();
            // A handshake per connection: cloning is two reference counts.
            let admit = fn_service(move |stream: TcpStream| {
                let peer = stream.peer_addr().ok();
                let accepted = handshake.clone().accept(connections.admit(stream));
                async move {
                    let io = accepted.await.map_err(DispatchError::Io)?;
                    Ok::<_, DispatchError>((io, peer))
                }
            });
            let expect = fn_service(move |request: Request| {
                let refusal = continue_refusal(&tokens, &refusals, request);
                async move { refusal }
            });
            let app = new_app()
                .into_factory()
                .map_err(|error| error.into().error_response());
            let http = HttpService::build()
                .keep_alive(limits.timeouts.keep_alive)
                // actix-http answers a slow first head with a 408; `Connections`
                // bounds the heads of later requests.
                .client_request_timeout(limits.timeouts.header)
                .client_disconnect_timeout(Duration::from_secs(1))
                .on_connect_ext(|io: &H::Io, data: &mut Extensions| {
                    data.insert(H::connection(io));
                })
                .expect(expect)
                .h1(map_config(app, |_| AppConfig::default()));
            admit.and_then(http)
        }
    }
}

/// Outermost on every request: tells its connection a request is being
/// served, and holds the request body until the answer is written.
async fn track_request(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<HeldBody<BoxBody>>, actix_web::Error> {
    let connection = request.conn_data::<Rc<Connection>>().cloned();
    if let Some(connection) = &connection {
        connection.request_started();
    }
    let request_body = match request.take_payload() {
        Payload::None => None,
        payload => {
            let shared = SharedPayload::new(payload);
            request.set_payload(shared.reader());
            Some(shared)
        }
    };
    let mut response = match next.call(request).await {
        Ok(response) => response.map_into_boxed_body(),
        Err(error) => {
            // Handlers answer their errors themselves; should one escape,
            // its connection is closed as if the body were unread.
            if let Some(connection) = &connection {
                connection.response_finished(true);
            }
            return Err(error);
        }
    };
    if connection.as_ref().is_some_and(|c| c.stopping()) {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response.map_body(|_, body| HeldBody::new(body, request_body, connection)))
}

/// `Expect: 100-continue` on the plugin's path is answered only once the
/// token is right; otherwise the error, holding the unread body so that the
/// connection is closed rather than drained.
fn continue_refusal(
    tokens: &TokenStore,
    refusals: &Refusals,
    mut request: Request,
) -> Result<Request, Response<BoxBody>> {
    if request.path() != handlers::GET_PARAMS_PATH {
        return Ok(request);
    }
    let Err(error) = tokens.authorize(request.headers()) else {
        return Ok(request);
    };
    refusals.record(
        request.method(),
        request.path(),
        error.status_code(),
        &error.to_string(),
    );
    let connection = request.conn_data::<Rc<Connection>>().cloned();
    let request_body = SharedPayload::new(request.take_payload());
    let response: Response<BoxBody> = error.error_response().into();
    Err(response
        .map_body(|_, body| BoxBody::new(HeldBody::new(body, Some(request_body), connection))))
}

/// One line per request: method, path, status, duration, ApplicationSet and,
/// for errors, the message. Never a header, so never the token.
async fn access_log(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    // getparams requests count as in flight until their answer is built.
    #[cfg(feature = "metrics")]
    let metrics = (request.path() == handlers::GET_PARAMS_PATH)
        .then(|| request.app_data::<web::Data<metrics::Metrics>>().cloned())
        .flatten();
    #[cfg(feature = "metrics")]
    let _in_flight = metrics.as_ref().map(|metrics| metrics.in_flight());
    let response = next.call(request).await?;
    #[cfg(feature = "metrics")]
    metrics::observe(&response, started.elapsed());
    let application_set = response
        .request()
        .extensions()
        .get::<ApplicationSetName>()
        .map(|name| name.0.clone());
    let error = response.response().error().map(ToString::to_string);
    log_answer(
        response.request().method(),
        response.request().path(),
        response.status(),
        started.elapsed(),
        application_set.as_deref(),
        error.as_deref(),
    );
    Ok(response)
}

/// The access log's line for one answer.
fn log_answer(
    method: &Method,
    path: &str,
    status: StatusCode,
    elapsed: Duration,
    application_set: Option<&str>,
    error: Option<&str>,
) {
    let level = if status.is_server_error() {
        log::Level::Warn
    } else if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        log::Level::Debug
    } else {
        log::Level::Info
    };
    if log::log_enabled!(level) {
        // The text escapes what clients send, so it cannot forge a line; the
        // fields (PLUGIN_LOG_FORMAT=json) carry it as received, cut, and the
        // JSON writer escapes them.
        let shown_set =
            application_set.map_or_else(|| "-".into(), |name| name.escape_debug().to_string());
        let shown_error = error
            .map(|error| format!(" error={error:?}"))
            .unwrap_or_default();
        let duration_ms = (elapsed.as_secs_f64() * 1000.0 * 10.0).round() / 10.0;
        let line = format_args!(
            "{method} {} {} {duration_ms:.1}ms applicationSet={shown_set}{shown_error}",
            path.escape_debug(),
            status.as_u16()
        );
        let (method, status) = (method.as_str(), status.as_u16());
        let application_set = application_set.unwrap_or("-");
        match error {
            Some(error) => log::log!(level, method, path, status, duration_ms,
                applicationSet = application_set, error; "{line}"),
            None => log::log!(level, method, path, status, duration_ms,
                applicationSet = application_set; "{line}"),
        }
    }
}
