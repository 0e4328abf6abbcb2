//! The HTTP edge: app assembly in one place, middleware, extractors and the API error type.

mod client_ip;
mod error;
mod extract;
mod headers;
mod health;
mod rate_limit;
mod reports;
mod request_context;

pub use client_ip::ClientIp;
pub use error::ApiError;
pub use extract::ValidJson;
pub use headers::{CONTENT_SECURITY_POLICY, PERMISSIONS_POLICY, STRICT_TRANSPORT_SECURITY};
pub use rate_limit::{RateClass, RateLimiters};
pub use request_context::{REQUEST_ID_HEADER, RequestId, record_actor, record_workspace};

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::Method;
use actix_web::http::header::HeaderMap;
use actix_web::middleware::from_fn;
use actix_web::{App, Error, Handler, HttpResponse, HttpServer, Resource, Responder, web};

use crate::config::Config;
use crate::store::{BlockingPool, Store};
use headers::SecurityHeaders;
use request_context::TrustedProxies;

/// Everything the request handlers share.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub pool: BlockingPool,
    pub limiters: Arc<RateLimiters>,
}

impl AppState {
    pub fn new(config: Arc<Config>, store: Arc<Store>) -> Self {
        let pool = BlockingPool::new(config.storage.db_threads);
        let limiters = Arc::new(RateLimiters::new(&config.rate_limits));
        Self {
            config,
            store,
            pool,
            limiters,
        }
    }
}

/// Builds the app: shared data, body limits, routes, and middleware, outermost last.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    let body_limit = state.config.limits.json_body_bytes;
    App::new()
        .app_data(web::Data::from(Arc::clone(&state.store)))
        .app_data(web::Data::new(state.pool.clone()))
        .app_data(web::Data::from(Arc::clone(&state.limiters)))
        .app_data(web::Data::new(SecurityHeaders::for_public_url(
            &state.config.public_url,
        )))
        .app_data(web::Data::new(TrustedProxies(
            state.config.trusted_proxies.clone(),
        )))
        .app_data(json_config(body_limit))
        .app_data(web::PayloadConfig::new(body_limit))
        .service(only(Method::GET, "/healthz", health::healthz))
        .service(only(Method::GET, "/readyz", health::readyz))
        .service(only(
            Method::POST,
            "/api/v1/csp-reports",
            reports::receive_csp_report,
        ))
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::NotFound)
        }))
        .wrap(from_fn(rate_limit::enforce_rate_limit))
        .wrap(from_fn(request_context::with_request_context))
        .wrap(from_fn(headers::add_security_headers))
}

/// The server on an already bound listener; await it to run until stopped (SIGINT/SIGTERM
/// stop it gracefully). Must be called inside an actix system.
pub fn server(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let limiters = Arc::clone(&state.limiters);
    actix_web::rt::spawn(async move {
        let mut every_minute = tokio::time::interval(Duration::from_secs(60));
        loop {
            every_minute.tick().await;
            limiters.forget_idle_clients();
        }
    });
    Ok(HttpServer::new(move || app(state.clone()))
        .listen(listener)?
        .run())
}

/// Runs the server on its own actix system until SIGINT or SIGTERM stops it gracefully.
pub fn run(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    actix_web::rt::System::new().block_on(async move { server(listener, state)?.await })
}

/// A resource that answers one method and gives every other a JSON 405 with `Allow`.
fn only<F, Args>(method: Method, path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(web::method(method.clone()).to(handler))
        .default_service(web::to(move || {
            let allow = method.clone();
            async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow }) }
        }))
}

fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        // Browsers send CSP reports as application/csp-report.
        .content_type(|mime| {
            mime == actix_web::mime::APPLICATION_JSON
                || mime.essence_str() == "application/csp-report"
        })
        .content_type_required(true)
        .error_handler(|err, _req| ApiError::from(err).into())
}

/// Lets a middleware change the headers of whatever goes back to the client: the response,
/// or the response an error that escaped the inner services will render as.
fn with_response_headers<B>(
    result: Result<ServiceResponse<B>, Error>,
    decorate: impl FnOnce(&mut HeaderMap),
) -> Result<ServiceResponse<B>, Error> {
    match result {
        Ok(mut response) => {
            decorate(response.headers_mut());
            Ok(response)
        }
        Err(err) => {
            let mut response = err.error_response();
            decorate(response.headers_mut());
            Err(InternalError::from_response(err, response).into())
        }
    }
}
