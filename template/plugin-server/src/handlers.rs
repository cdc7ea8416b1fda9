//! The HTTP endpoints: `POST /api/v1/getparams.execute`, the probes, and JSON
//! errors for everything else.

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::header::ContentType;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use crate::auth::TokenStore;
use crate::config::Config;
use crate::error::PluginError;
use crate::generator::{self, Generator};
use crate::protocol::GetParamsRequest;
use crate::template_values;

/// The path the ApplicationSet controller posts to.
pub const GET_PARAMS_PATH: &str = "/api/v1/getparams.execute";

/// The ApplicationSet a request came from, recorded for the access log and
/// the metrics: at most [`ApplicationSetName::MAX_LEN`] bytes (Kubernetes
/// names are no longer), as the client sent it. Escape it before logging.
#[derive(Debug, Clone)]
pub struct ApplicationSetName(pub String);

impl ApplicationSetName {
    pub const MAX_LEN: usize = 253;

    pub fn new(name: &str) -> Self {
        Self(cut(name, Self::MAX_LEN).to_owned())
    }
}

/// At most `max` bytes of `text`, cut on a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    &text[..text.floor_char_boundary(max)]
}

pub fn routes<G: Generator>(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource(GET_PARAMS_PATH)
                .route(web::post().to(get_params::<G>))
                .default_service(web::to(|| method_not_allowed("POST"))),
        )
        .service(
            web::resource("/healthz")
                .route(web::get().to(healthz))
                .default_service(web::to(|| method_not_allowed("GET"))),
        )
        .service(
            web::resource("/readyz")
                .route(web::get().to(readyz))
                .default_service(web::to(|| method_not_allowed("GET"))),
        )
        .default_service(web::to(not_found));
}

async fn get_params<G: Generator>(
    request: HttpRequest,
    payload: web::Payload,
    config: web::Data<Config>,
    tokens: web::Data<TokenStore>,
    generator: web::Data<G>,
    value_warnings: web::Data<template_values::Warnings>,
) -> Result<HttpResponse, PluginError> {
    // Authenticate before reading a single byte of the body.
    tokens.authorize(request.headers())?;
    let body = read_body(&request, payload, &config).await?;
    // Whatever the Content-Type: `curl -d` sends form encoding.
    let params: GetParamsRequest = serde_json::from_slice(&body)
        .map_err(|error| PluginError::BadRequest(error.to_string()))?;
    let name = ApplicationSetName::new(&params.application_set_name);
    request.extensions_mut().insert(name.clone());

    let sets = generator::run(generator.get_ref(), params, config.generator_timeout).await?;
    // The limits first: a reply they refuse is not walked for warnings.
    let body = generator::reply(&sets, &config)?;
    value_warnings.check(&name.0, &sets);
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(body))
}

async fn read_body(
    request: &HttpRequest,
    payload: web::Payload,
    config: &Config,
) -> Result<web::Bytes, PluginError> {
    let limit = config.max_body_bytes;
    let too_large = PluginError::PayloadTooLarge { limit };
    let declared = request
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large);
    }
    match actix_web::rt::time::timeout(config.body_timeout, payload.to_bytes_limited(limit)).await {
        Err(_elapsed) => Err(PluginError::BodyTimeout),
        Ok(Err(_limit_exceeded)) => Err(too_large),
        Ok(Ok(Err(error))) => Err(PluginError::BodyRead(error.to_string())),
        Ok(Ok(Ok(body))) => Ok(body),
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Ready once the server runs (start-up already refused to go on without a
/// token), until SIGTERM starts the drain: then 503, so that Kubernetes takes
/// the pod out of the Service even without a `preStop` hook.
async fn readyz(tokens: web::Data<TokenStore>, draining: web::Data<AtomicBool>) -> HttpResponse {
    if draining.load(Ordering::Relaxed) {
        return HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "draining"}));
    }
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ready",
        "tokenFile": tokens.path(),
    }))
}

async fn method_not_allowed(allow: &'static str) -> Result<HttpResponse, PluginError> {
    Err(PluginError::MethodNotAllowed { allow })
}

pub(crate) async fn not_found() -> Result<HttpResponse, PluginError> {
    Err(PluginError::NotFound)
}
