//! The HTTP edge: app assembly in one place, middleware, extractors and the API error type.

mod activity_pages;
mod agent_api;
mod agent_pages;
mod client_ip;
mod data_pages;
mod error;
mod error_pages;
mod extract;
mod headers;
mod health;
mod mcp_api;
mod oauth_api;
mod oauth_pages;
mod oidc_pages;
mod pages;
mod privacy_pages;
mod rate_limit;
mod reports;
mod request_context;
mod rest_api;
mod security_txt;
mod session;
mod token_pages;
mod workspace_pages;

pub use workspace_pages::WORKSPACE_ROUTES;

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

use crate::agent::{AgentService, AgentSettings};
use crate::app::StartupError;
use crate::audit::AuditLog;
use crate::auth::{AuthService, AuthSettings};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::crypto::KeyPurpose;
use crate::mail::Mailer;
use crate::mcp::{Cursors, McpService};
use crate::oauth::{Endpoints, MetadataDocuments, OAuthService};
use crate::oidc::OidcService;
use crate::store::{BlockingPool, Store};
use crate::tokens::TokenService;
use crate::workspace::WorkspaceService;
use crate::workspace::records::RecordRules;
use headers::SecurityHeaders;
use request_context::TrustedProxies;
use security_txt::SecurityTxt;
use session::Csrf;

/// Everything the request handlers share.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub pool: BlockingPool,
    pub limiters: Arc<RateLimiters>,
    pub auth: AuthService,
    pub workspaces: WorkspaceService,
    pub agents: AgentService,
    pub tokens: TokenService,
    pub oauth: OAuthService,
    pub mcp: McpService,
    pub oidc: OidcService,
    pub audit: AuditLog,
    csrf: Arc<Csrf>,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        store: Arc<Store>,
        clock: SharedClock,
    ) -> Result<Self, StartupError> {
        let pool = BlockingPool::new(config.storage.db_threads);
        let limiters = Arc::new(RateLimiters::new(&config.rate_limits));
        let mailer = Arc::new(Mailer::start(&config)?);
        let audit = AuditLog::new(Arc::clone(&store), clock.clone());
        let auth = AuthService::new(
            Arc::clone(&store),
            pool.clone(),
            clock.clone(),
            Arc::clone(&mailer),
            AuthSettings::from(config.as_ref()),
            audit.clone(),
        );
        let records =
            RecordRules::from_config(&config.records).ok_or(StartupError::Settings("records"))?;
        let workspaces = WorkspaceService::new(
            Arc::clone(&store),
            pool.clone(),
            clock.clone(),
            mailer,
            config.public_url.clone(),
            records.clone(),
            audit.clone(),
        );
        let agent_settings = AgentSettings::from_config(&config, records);
        let agents = AgentService::new(
            Arc::clone(&store),
            pool.clone(),
            clock.clone(),
            agent_settings,
            audit.clone(),
        );
        let tokens = TokenService::new(
            Arc::clone(&store),
            pool.clone(),
            clock.clone(),
            audit.clone(),
        );
        let documents = MetadataDocuments::new(
            &config.oauth.client_metadata_allowed_networks,
            config.oauth.client_metadata_trusted_certificate.as_deref(),
            clock.clone(),
        )
        .map_err(|_| StartupError::Settings("oauth.client_metadata_trusted_certificate"))?;
        let oauth = OAuthService::new(
            Arc::clone(&store),
            pool.clone(),
            clock.clone(),
            Endpoints::new(&config.public_url),
            audit.clone(),
            documents,
        );
        let oidc = OidcService::new(
            &config.oidc,
            &config.public_url,
            Arc::clone(&store),
            pool.clone(),
            clock.clone(),
            auth.clone(),
            audit.clone(),
        )
        .map_err(|_| StartupError::Settings("oidc"))?;
        let cursor_key = store.derive_key(KeyPurpose::McpCursor, 1);
        let mcp = McpService::new(
            Arc::clone(&store),
            pool.clone(),
            clock,
            workspaces.clone(),
            Cursors::new(cursor_key.expose()),
        );
        let csrf_key = store.derive_key(KeyPurpose::CsrfToken, 1);
        let csrf = Arc::new(Csrf::new(csrf_key.expose(), &config.public_url));
        Ok(Self {
            config,
            store,
            pool,
            limiters,
            auth,
            workspaces,
            agents,
            tokens,
            oauth,
            mcp,
            oidc,
            audit,
            csrf,
        })
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
    let max_batch_bytes = state.config.agents.max_batch_bytes;
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
        .app_data(web::Data::new(state.auth.clone()))
        .app_data(web::Data::new(state.workspaces.clone()))
        .app_data(web::Data::new(state.agents.clone()))
        .app_data(web::Data::new(state.tokens.clone()))
        .app_data(web::Data::new(state.oauth.clone()))
        .app_data(web::Data::new(state.mcp.clone()))
        .app_data(web::Data::new(state.oidc.clone()))
        .app_data(web::Data::from(Arc::clone(&state.csrf)))
        .app_data(web::Data::new(state.config.accounts.signup))
        .app_data(web::Data::new(state.config.oauth.clone()))
        .app_data(web::Data::new(privacy_pages::Retention::from_config(
            &state.config,
        )))
        .app_data(web::Data::new(SecurityTxt::new(
            &state.config.security_txt,
            &state.config.public_url,
        )))
        .app_data(json_config(body_limit))
        .app_data(web::PayloadConfig::new(body_limit))
        .service(only(Method::GET, "/healthz", health::healthz))
        .service(only(Method::GET, "/readyz", health::readyz))
        .service(only(
            Method::GET,
            "/.well-known/security.txt",
            security_txt::serve,
        ))
        .service(only(
            Method::POST,
            "/api/v1/csp-reports",
            reports::receive_csp_report,
        ))
        .configure(|cfg| agent_api::routes(cfg, max_batch_bytes))
        .configure(rest_api::routes)
        .configure(oauth_api::routes)
        .configure(oauth_pages::routes)
        .configure(mcp_api::routes)
        .configure(pages::routes)
        .configure(oidc_pages::routes)
        .configure(privacy_pages::routes)
        .configure(workspace_pages::routes)
        .configure(agent_pages::routes)
        .configure(data_pages::routes)
        .configure(token_pages::routes)
        .configure(activity_pages::routes)
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::NotFound)
        }))
        .wrap(from_fn(session::resolve_session))
        .wrap(from_fn(rate_limit::enforce_rate_limit))
        .wrap(from_fn(error_pages::render_for_browsers))
        .wrap(from_fn(request_context::with_request_context))
        .wrap(from_fn(headers::add_security_headers))
}

/// The server on an already bound listener; await it to run until stopped (SIGINT/SIGTERM
/// stop it gracefully). Must be called inside an actix system.
pub fn server(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let limiters = Arc::clone(&state.limiters);
    let auth = state.auth.clone();
    let oidc = state.oidc.clone();
    actix_web::rt::spawn(async move { oidc.warm_up().await });
    actix_web::rt::spawn(async move {
        let mut every_minute = tokio::time::interval(Duration::from_secs(60));
        loop {
            every_minute.tick().await;
            limiters.forget_idle_clients();
            auth.forget_idle_accounts();
        }
    });
    Ok(HttpServer::new(move || app(state.clone()))
        .listen(listener)?
        .run())
}

/// Runs the server on its own actix system until SIGINT or SIGTERM stops it gracefully.
/// While no account exists, first prints a one-time link that creates the first owner.
pub fn run(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    let workspaces = state.workspaces.clone();
    let served = actix_web::rt::System::new().block_on(async move {
        announce_setup_link(&state.auth).await;
        server(listener, state)?.await
    });
    // The last moments' AI client calls reach the usage table before the process ends.
    workspaces.flush_usage();
    served
}

/// The link goes to standard output for the operator, never into the logs.
async fn announce_setup_link(auth: &AuthService) {
    match auth.first_run_setup_link().await {
        Ok(Some(link)) => {
            println!(
                "\nNo account exists yet. Open this link to create the first owner account\n\
                 (it works once, for 24 hours; restarting prints a new one):\n\n  {}\n",
                link.as_str()
            );
            tracing::info!("first-run setup link printed to standard output");
        }
        Ok(None) => {}
        Err(e) => {
            tracing::error!(error = %crate::telemetry::error_chain(&e), "cannot issue a setup link")
        }
    }
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
            async move {
                Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
                    allow: allow.to_string(),
                })
            }
        }))
}

/// Paths programs call: probes, APIs, OAuth endpoints and `/mcp`. They speak JSON whatever
/// the `Accept` header says, and never look at the browser session.
const MACHINE_PREFIXES: &[&str] = &[
    "/api/",
    "/healthz",
    "/readyz",
    "/.well-known/",
    "/oauth/register",
    "/oauth/token",
    "/oauth/revoke",
    "/mcp",
];

fn is_machine_path(path: &str) -> bool {
    MACHINE_PREFIXES
        .iter()
        .any(|prefix| path.starts_with(prefix))
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
