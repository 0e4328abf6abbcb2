//! Browser sessions at the edge: the session cookie, its rotation, and CSRF tokens.
//!
//! The middleware resolves the session cookie once per request, so every handler sees the
//! same answer, and writes the renewed or cleared cookie onto whatever response goes out.

use std::rc::Rc;

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use url::Url;

use super::ApiError;
use crate::auth::{AuthError, AuthService, Authenticated, SessionStage};
use crate::crypto::random_bytes;
use crate::crypto::token::SecretHash;

pub const SESSION_COOKIE: &str = "__Host-sbx_session";
/// Anonymous visitors' CSRF anchor, so sign-in and sign-up forms are protected too.
pub const PRE_SESSION_COOKIE: &str = "__Host-sbx_pre";
/// The signed-in person for this request, when there is one.
#[derive(Clone)]
pub struct CurrentSession(pub Option<Rc<Authenticated>>);

/// A session whose password was right and whose second factor is still owed. It is good
/// for nothing but the second-factor page.
#[derive(Clone)]
pub struct PendingSecondFactor(pub Option<Rc<Authenticated>>);

/// What the response must do with the session cookie.
enum CookieAction {
    Keep,
    Set(String),
    Clear,
}

pub async fn resolve_session(
    auth: web::Data<AuthService>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    // Assets must never carry a cookie into a shared cache; probes and APIs (which
    // authenticate their own way) need none, and get no session cookie either.
    if req.path().starts_with("/static/") || super::is_machine_path(req.path()) {
        req.extensions_mut().insert(CurrentSession(None));
        req.extensions_mut().insert(PendingSecondFactor(None));
        return next.call(req).await;
    }
    let cookie = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string());
    let mut action = CookieAction::Keep;
    let mut current = None;
    let mut pending = None;
    if let Some(value) = cookie {
        match auth.authenticate(value).await {
            Ok(mut authenticated) => {
                if let Some(token) = authenticated.renewed_token.take() {
                    action = CookieAction::Set(token.to_string());
                }
                super::record_actor(authenticated.user.id);
                match authenticated.session.stage {
                    SessionStage::Active => current = Some(Rc::new(authenticated)),
                    SessionStage::MfaPending => pending = Some(Rc::new(authenticated)),
                }
            }
            Err(AuthError::SessionEnded) => action = CookieAction::Clear,
            Err(e) => return Err(ApiError::internal(crate::telemetry::error_chain(&e)).into()),
        }
    }
    let needs_pre_cookie =
        current.is_none() && pending.is_none() && req.cookie(PRE_SESSION_COOKIE).is_none();
    let pre_value = needs_pre_cookie.then(|| URL_SAFE_NO_PAD.encode(*random_bytes::<32>()));
    if let Some(value) = &pre_value {
        // Handlers rendering a form this very request sign this value.
        req.extensions_mut().insert(PreSession(value.clone()));
    }
    req.extensions_mut().insert(CurrentSession(current));
    req.extensions_mut().insert(PendingSecondFactor(pending));
    let mut response = next.call(req).await?;
    let headers = response.response_mut();
    // A handler that signed someone in or out has already decided the cookie.
    if headers.cookies().any(|c| c.name() == SESSION_COOKIE) {
        action = CookieAction::Keep;
    }
    match action {
        CookieAction::Keep => {}
        CookieAction::Set(token) => headers
            .add_cookie(&session_cookie(token))
            .map_err(ApiError::internal)?,
        CookieAction::Clear => headers
            .add_cookie(&expired(SESSION_COOKIE))
            .map_err(ApiError::internal)?,
    }
    if let Some(value) = pre_value {
        headers
            .add_cookie(&host_cookie(PRE_SESSION_COOKIE, value))
            .map_err(ApiError::internal)?;
    }
    Ok(response)
}

/// The pre-session value minted for this request (before the browser has the cookie).
#[derive(Clone)]
struct PreSession(String);

fn host_cookie(name: &'static str, value: String) -> Cookie<'static> {
    // `__Host-`: Secure, Path=/, no Domain, so no subdomain can set or read it.
    Cookie::build(name, value)
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        .finish()
}

pub fn session_cookie(token: String) -> Cookie<'static> {
    host_cookie(SESSION_COOKIE, token)
}

pub fn expired(name: &'static str) -> Cookie<'static> {
    let mut cookie = host_cookie(name, String::new());
    cookie.set_max_age(CookieDuration::ZERO);
    cookie
}

/// The session the request's browser holds: signed in, or awaiting its second factor.
pub fn held_session(req: &HttpRequest) -> Option<Rc<Authenticated>> {
    let extensions = req.extensions();
    let current = extensions.get::<CurrentSession>().and_then(|c| c.0.clone());
    current.or_else(|| {
        extensions
            .get::<PendingSecondFactor>()
            .and_then(|p| p.0.clone())
    })
}

/// Both session extractors read what the middleware stored for this request.
fn from_extensions<T: Clone + 'static>(
    req: &HttpRequest,
) -> std::future::Ready<Result<T, ApiError>> {
    let value = req.extensions().get::<T>().cloned();
    std::future::ready(value.ok_or_else(|| ApiError::internal("session middleware not applied")))
}

impl FromRequest for CurrentSession {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        from_extensions(req)
    }
}

impl FromRequest for PendingSecondFactor {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        from_extensions(req)
    }
}

/// Signs and checks CSRF tokens: an HMAC of the session (or pre-session) id under a key
/// derived for this purpose, so tokens need no storage and die with their session.
pub struct Csrf {
    key: Hmac<Sha256>,
    origin: String,
}

impl Csrf {
    pub fn new(key: &[u8], public_url: &Url) -> Self {
        let key = Hmac::new_from_slice(key).expect("HMAC accepts any key length");
        Self {
            key,
            origin: public_url.origin().ascii_serialization(),
        }
    }

    fn sign(&self, anchor: &[u8]) -> String {
        let mut mac = self.key.clone();
        mac.update(anchor);
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// The anchor a request's token is bound to: the session, or else the pre-session.
    fn anchor(req: &HttpRequest) -> Option<Vec<u8>> {
        if let Some(auth) = held_session(req) {
            return Some([b"session:".as_slice(), &auth.session.csrf_anchor[..]].concat());
        }
        let pre = req
            .extensions()
            .get::<PreSession>()
            .map(|p| p.0.clone())
            .or_else(|| {
                req.cookie(PRE_SESSION_COOKIE)
                    .map(|c| c.value().to_string())
            })?;
        Some([b"pre:".as_slice(), pre.as_bytes()].concat())
    }

    /// A hash naming this browser (its session, or else its pre-session) for a flow that
    /// must come back to the browser that started it, such as a provider sign-in.
    pub fn browser_binding(req: &HttpRequest) -> Option<SecretHash> {
        Self::anchor(req).map(|anchor| SecretHash::of(&URL_SAFE_NO_PAD.encode(anchor)))
    }

    /// The token to embed in this request's forms.
    pub fn token_for(&self, req: &HttpRequest) -> String {
        Self::anchor(req).map(|a| self.sign(&a)).unwrap_or_default()
    }

    /// Refuses a state-changing request whose Origin is foreign or whose token does not
    /// match its session. Nothing has been changed when this fails.
    pub fn verify(&self, req: &HttpRequest, presented: &str) -> Result<(), ApiError> {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        if origin != Some(self.origin.as_str()) {
            tracing::warn!("form post refused: origin missing or foreign");
            return Err(ApiError::Forbidden);
        }
        let expected = Self::anchor(req).map(|a| self.sign(&a)).unwrap_or_default();
        let matches: bool = expected.as_bytes().ct_eq(presented.as_bytes()).into();
        if expected.is_empty() || !matches {
            tracing::warn!("form post refused: CSRF token missing or wrong");
            return Err(ApiError::Forbidden);
        }
        Ok(())
    }
}
