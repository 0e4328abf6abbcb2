//! Sign-in with OpenID Connect providers in the dashboard: the sign-in buttons' target, the
//! provider's return, and linking and unlinking providers under Account. Starting is a
//! form post (with its CSRF token) answered by a redirect to the provider; the pages that
//! hold those forms allow them to go there (`form-action`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::ApiError;
use super::extract::{Form, Query};
use super::pages::{
    Chrome, CsrfOnly, Ctx, MessagePage, device, form_error, render, require, see_other,
};
use super::session::Csrf;
use crate::oidc::{Callback, Completed, OidcError, OidcService, Purpose};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sign-in/oidc/{provider}", web::post().to(start_sign_in))
        .route("/sign-in/oidc/{provider}/callback", web::get().to(callback))
        .route(
            "/account/sign-in-methods/{provider}/link",
            web::post().to(start_link),
        )
        .route(
            "/account/sign-in-methods/{provider}/unlink",
            web::post().to(unlink),
        );
}

#[derive(Deserialize)]
struct StartForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// The browser's binding, which every page request has once the session middleware ran.
fn browser(req: &HttpRequest) -> Result<crate::crypto::token::SecretHash, ApiError> {
    Csrf::browser_binding(req).ok_or_else(|| ApiError::internal("no browser binding"))
}

async fn start_sign_in(
    ctx: Ctx,
    oidc: web::Data<OidcService>,
    provider: web::Path<String>,
    form: Form<StartForm>,
) -> Result<HttpResponse, ApiError> {
    if require(&ctx.2).is_some() {
        return Ok(see_other("/"));
    }
    let next = super::pages::local_next(&form.next).to_string();
    start(ctx, &oidc, &provider, &form.csrf, Purpose::SignIn, next).await
}

async fn start_link(
    ctx: Ctx,
    oidc: web::Data<OidcService>,
    provider: web::Path<String>,
    form: Form<StartForm>,
) -> Result<HttpResponse, ApiError> {
    let Some(signed_in) = require(&ctx.2) else {
        return Ok(see_other("/sign-in"));
    };
    let purpose = Purpose::Link(signed_in.user.id);
    start(
        ctx,
        &oidc,
        &provider,
        &form.csrf,
        purpose,
        "/account".into(),
    )
    .await
}

/// Checks the form's token, stores the login for this browser, and sends it to the
/// provider's page.
async fn start(
    (req, csrf, current, _): Ctx,
    oidc: &OidcService,
    provider: &str,
    token: &str,
    purpose: Purpose,
    next: String,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, token)?;
    match oidc.begin(provider, browser(&req)?, purpose, next).await {
        Ok(url) => Ok(see_other(url.as_str())),
        Err(e) => failed(Chrome::new(&req, &csrf, &current), e, purpose),
    }
}

async fn callback(
    (req, csrf, current, _): Ctx,
    oidc: web::Data<OidcService>,
    provider: web::Path<String>,
    query: Query<Callback>,
) -> Result<HttpResponse, ApiError> {
    let device = device(&req)?;
    let purpose = match require(&current) {
        Some(signed_in) => Purpose::Link(signed_in.user.id),
        None => Purpose::SignIn,
    };
    match oidc
        .complete(&provider, query.into_inner(), browser(&req)?, device)
        .await
    {
        Ok(Completed::SignedIn { session, next }) => Ok(super::pages::signed_in_as(session, &next)),
        Ok(Completed::Linked { label }) => {
            let mut chrome = Chrome::new(&req, &csrf, &current);
            chrome.notice = Some(format!("You can now sign in with {label}."));
            render(
                StatusCode::OK,
                MessagePage::new(
                    chrome,
                    "Sign-in method added",
                    "/account",
                    "Back to account",
                ),
            )
        }
        Err(e) => failed(Chrome::new(&req, &csrf, &current), e, purpose),
    }
}

async fn unlink(
    (req, csrf, current, auth): Ctx,
    provider: web::Path<String>,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    match auth
        .unlink_provider(signed_in.user.id, provider.into_inner())
        .await
    {
        Ok(()) => Ok(see_other("/account")),
        Err(e) => failed(
            Chrome::new(&req, &csrf, &current),
            e.into(),
            Purpose::Link(signed_in.user.id),
        ),
    }
}

/// The page for a sign-in or link that did not happen: the reason, category-level, and
/// the way back.
fn failed(chrome: Chrome, e: OidcError, purpose: Purpose) -> Result<HttpResponse, ApiError> {
    let (status, text) = match e {
        OidcError::Auth(auth) => form_error(auth)?,
        OidcError::Store(store) => {
            return Err(ApiError::internal(crate::telemetry::error_chain(&store)));
        }
        OidcError::UnknownProvider => (StatusCode::NOT_FOUND, e.to_string()),
        OidcError::LoginInvalid | OidcError::Cancelled | OidcError::Refused => {
            (StatusCode::BAD_REQUEST, e.to_string())
        }
        OidcError::TokenRejected(_) => (StatusCode::UNAUTHORIZED, e.to_string()),
        OidcError::ProviderUnavailable => (StatusCode::BAD_GATEWAY, e.to_string()),
    };
    let chrome = chrome.with_error(text);
    let page = match purpose {
        Purpose::SignIn => MessagePage::new(chrome, "Not signed in", "/sign-in", "Back to sign in"),
        Purpose::Link(_) => {
            MessagePage::new(chrome, "Nothing was changed", "/account", "Back to account")
        }
    };
    render(status, page)
}
