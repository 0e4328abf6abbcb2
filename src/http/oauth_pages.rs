//! The authorization endpoint: a signed-in person sees which client asks, where it will be
//! sent, what for, and picks the workspace to grant; sign-in comes first when needed. And
//! the workspace's AI clients page, which lists grants and revokes them.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use askama::Template;
use serde::Deserialize;

use super::ApiError;
use super::extract::{Form, Query};
use super::headers::allow_forms_to;
use super::pages::{Chrome, CsrfOnly, Ctx, format_date, render, require, see_other};
use super::workspace_pages::{
    Refusal, Refused, SECTIONS, Section, respond, viewer, workspace_post,
};
use crate::ids::WorkspaceId;
use crate::oauth::{AuthorizeCheck, AuthorizeParams, OAuthError, OAuthService, ValidRequest};
use crate::workspace::{Action, WorkspaceService};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth/authorize", web::get().to(authorize))
        .route("/oauth/authorize", web::post().to(decide))
        .route("/w/{id}/ai-clients", web::get().to(ai_clients))
        .route(
            "/w/{id}/ai-clients/{grant}/revoke",
            web::post().to(revoke_grant),
        );
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage {
    chrome: Chrome,
    client_name: String,
    /// The host of the client's metadata document, for a client named by one.
    document_host: Option<String>,
    redirect_host: String,
    scopes: Vec<&'static str>,
    workspaces: Vec<(String, String)>,
    /// The request's parameters, carried through the form unchanged.
    params: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "message.html")]
struct RefusedPage {
    chrome: Chrome,
    heading: &'static str,
    text: &'static str,
    next_href: &'static str,
    next_label: &'static str,
}

#[derive(Deserialize)]
struct Decision {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    workspace: String,
    #[serde(flatten)]
    params: AuthorizeParams,
}

/// What each scope means, in words.
fn scope_words(scope: &str) -> Vec<&'static str> {
    scope
        .split(' ')
        .filter_map(|s| match s {
            "mcp:read" => Some("read the workspace's records, masked"),
            "offline_access" => Some("stay connected until you revoke it"),
            _ => None,
        })
        .collect()
}

fn carried(params: &AuthorizeParams) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("response_type", params.response_type.clone()),
        ("client_id", params.client_id.clone()),
        ("redirect_uri", params.redirect_uri.clone()),
        ("code_challenge", params.code_challenge.clone()),
        (
            "code_challenge_method",
            params.code_challenge_method.clone(),
        ),
    ];
    for (name, value) in [
        ("state", &params.state),
        ("scope", &params.scope),
        ("resource", &params.resource),
    ] {
        if let Some(value) = value {
            fields.push((name, value.clone()));
        }
    }
    fields
}

/// The consent form may go on to the client's redirect URI: that one target is allowed
/// for forms (see `allow_forms_to`).
fn consent_target(request: &ValidRequest) -> String {
    match request.redirect.scheme() {
        "http" | "https" => request.redirect.origin().ascii_serialization(),
        scheme => format!("{scheme}:"),
    }
}

async fn authorize(
    (req, csrf, current, _): Ctx,
    oauth: web::Data<OAuthService>,
    workspaces: web::Data<WorkspaceService>,
    query: Query<AuthorizeParams>,
) -> Result<HttpResponse, ApiError> {
    let params = query.into_inner();
    let request = match checked(&oauth, params.clone()).await? {
        Ok(request) => request,
        Err(response) => return Ok(response(Chrome::new(&req, &csrf, &current))),
    };
    let Some(signed_in) = require(&current) else {
        let here = format!("/oauth/authorize?{}", req.query_string());
        let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
        return Ok(see_other(&format!("/sign-in?next={next}")));
    };
    let list = workspaces
        .list(signed_in.user.id)
        .await
        .map_err(ApiError::from)?;
    let page = ConsentPage {
        chrome: Chrome::new(&req, &csrf, &current),
        client_name: request.client.name.clone(),
        document_host: request.document_host.clone(),
        redirect_host: request.redirect_host(),
        scopes: scope_words(&request.scope),
        workspaces: list
            .into_iter()
            .map(|w| (w.id.to_string(), w.name))
            .collect(),
        params: carried(&params),
    };
    let mut response = render(StatusCode::OK, page)?;
    allow_forms_to(&mut response, &[consent_target(&request)]);
    Ok(response)
}

async fn decide(
    (req, csrf, current, _): Ctx,
    oauth: web::Data<OAuthService>,
    form: Form<Decision>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    let form = form.into_inner();
    let request = match checked(&oauth, form.params).await? {
        Ok(request) => request,
        Err(response) => return Ok(response(Chrome::new(&req, &csrf, &current))),
    };
    if form.decision != "approve" {
        return Ok(see_other(oauth.deny(&request).as_str()));
    }
    let workspace = form.workspace.parse().map_err(|_| ApiError::NotFound)?;
    match oauth.approve(signed_in.user.id, workspace, request).await {
        Ok(redirect) => Ok(see_other(redirect.as_str())),
        Err(OAuthError::AccessDenied) => Err(ApiError::NotFound),
        Err(e) => Err(ApiError::internal(crate::telemetry::error_chain(&e))),
    }
}

/// The response that ends a request which cannot go on, given the page chrome.
type EndRequest = Box<dyn FnOnce(Chrome) -> HttpResponse>;

/// The request, or the response that ends it: a redirect of the error to the client, or
/// a page when the client or its redirect URI cannot be trusted.
async fn checked(
    oauth: &OAuthService,
    params: AuthorizeParams,
) -> Result<Result<ValidRequest, EndRequest>, ApiError> {
    let check = oauth
        .check_authorize(params)
        .await
        .map_err(|e| ApiError::internal(crate::telemetry::error_chain(&e)))?;
    Ok(match check {
        AuthorizeCheck::Valid(request) => Ok(request),
        AuthorizeCheck::Redirect(url) => Err(Box::new(move |_| see_other(url.as_str()))),
        AuthorizeCheck::Refuse(error) => Err(Box::new(move |chrome| {
            let page = RefusedPage {
                chrome: chrome.with_error(error.description()),
                heading: "This sign-in request cannot be used",
                text: "The application that sent you here is not registered with this \
                       server, or asked to send you somewhere it did not register.",
                next_href: "/",
                next_label: "Back to Strongbox",
            };
            render(StatusCode::BAD_REQUEST, page).unwrap_or_else(|e| e.error_response())
        })),
    })
}

impl Refused for OAuthError {
    fn refusal(&self) -> Refusal {
        match self {
            OAuthError::NotFound => Refusal::NotFound,
            _ => Refusal::Api(ApiError::internal(crate::telemetry::error_chain(self))),
        }
    }
}

#[derive(Template)]
#[template(path = "ai_clients.html")]
struct AiClientsPage {
    chrome: Chrome,
    sections: &'static [Section],
    id: WorkspaceId,
    name: String,
    mcp_url: String,
    show_person: bool,
    grants: Vec<GrantRow>,
    /// Registered clients never granted anything, for those who manage members.
    unused_clients: Option<i64>,
    unused_client_days: u32,
}

struct GrantRow {
    id: String,
    client: String,
    person: String,
    scope: String,
    created_on: String,
    last_used: String,
}

async fn ai_clients(
    (req, csrf, current, _): Ctx,
    oauth: web::Data<OAuthService>,
    workspaces: web::Data<WorkspaceService>,
    settings: web::Data<crate::config::OAuth>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (user, workspace) = match viewer((&req, &csrf, &current), &workspaces, &path).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let id = workspace.id;
    let overview = match oauth.grants(user, id).await {
        Ok(overview) => overview,
        Err(e) => return respond(&req, &csrf, &current, e),
    };
    let grants = overview
        .grants
        .into_iter()
        .map(|view| GrantRow {
            id: view.grant.id,
            client: view.grant.client_name,
            person: view.email,
            scope: view.grant.scope,
            created_on: format_date(view.grant.created_at),
            last_used: view
                .grant
                .last_used_at
                .map_or_else(|| "never".into(), format_date),
        })
        .collect();
    render(
        StatusCode::OK,
        AiClientsPage {
            chrome: Chrome::new(&req, &csrf, &current),
            sections: SECTIONS,
            id,
            show_person: workspace.role.may(Action::ManageMembers),
            name: workspace.name,
            mcp_url: oauth.endpoints().resource.clone(),
            grants,
            unused_clients: overview.unused_clients,
            unused_client_days: settings.unused_client_days,
        },
    )
}

async fn revoke_grant(
    (req, csrf, current, _): Ctx,
    oauth: web::Data<OAuthService>,
    path: web::Path<(String, String)>,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, ApiError> {
    let grant = path.1.clone();
    let hex_ok = grant.len() == 32 && grant.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex_ok {
        return Err(ApiError::NotFound);
    }
    workspace_post(
        (&req, &csrf, &current),
        &path.0,
        &form.csrf,
        "/w/{id}/ai-clients",
        |user, id| oauth.revoke_grant(user, id, grant),
    )
    .await
}
