//! Dashboard pages for people: first-run setup, sign-up, sign-in and out, email links and
//! account settings. Forms post back here; every post checks Origin and its CSRF token.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::extract::{Form, Query};
use super::headers::allow_forms_to;
use super::session::{
    Csrf, CurrentSession, PendingSecondFactor, SESSION_COOKIE, expired, held_session,
    session_cookie,
};
use super::{ApiError, ClientIp};
use crate::auth::{
    AuthError, AuthService, Authenticated, Device, LinkPurpose, LinkedIdentity, NewSession,
};
use crate::clock;
use crate::config::SignupMode;
use crate::oidc::{OidcService, ProviderChoice};
use crate::workspace::{WorkspaceError, WorkspaceService};

/// What every page's frame needs: who is signed in, the form token and a message.
pub struct Chrome {
    pub(super) signed_in: Option<String>,
    pub(super) csrf: String,
    pub(super) notice: Option<String>,
    pub(super) error: Option<String>,
}

impl Chrome {
    pub(super) fn new(req: &HttpRequest, csrf: &Csrf, current: &CurrentSession) -> Self {
        Self {
            signed_in: current.0.as_ref().map(|a| a.user.email.to_string()),
            csrf: csrf.token_for(req),
            notice: None,
            error: None,
        }
    }

    pub(super) fn with_error(mut self, error: impl ToString) -> Self {
        self.error = Some(error.to_string());
        self
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    chrome: Chrome,
    signup_open: bool,
    providers: Vec<ProviderChoice>,
    /// Where to go once signed in, when sign-in interrupted something (empty: home).
    next: String,
}

#[derive(Template)]
#[template(path = "sign_up.html")]
struct SignUpPage {
    chrome: Chrome,
    heading: &'static str,
    action: &'static str,
    button: &'static str,
    token: String,
}

#[derive(Template)]
#[template(path = "request_link.html")]
struct RequestLinkPage {
    chrome: Chrome,
    heading: &'static str,
    action: &'static str,
}

#[derive(Template)]
#[template(path = "confirm_link.html")]
struct ConfirmLinkPage {
    chrome: Chrome,
    heading: &'static str,
    action: &'static str,
    button: &'static str,
    token: String,
    usable: bool,
    new_password: bool,
}

#[derive(Template)]
#[template(path = "message.html")]
pub(super) struct MessagePage {
    chrome: Chrome,
    heading: &'static str,
    text: &'static str,
    next_href: &'static str,
    next_label: &'static str,
}

impl MessagePage {
    /// A page whose message is the error in its chrome, with one link onward.
    pub(super) fn new(
        chrome: Chrome,
        heading: &'static str,
        next_href: &'static str,
        next_label: &'static str,
    ) -> Self {
        Self {
            chrome,
            heading,
            text: "",
            next_href,
            next_label,
        }
    }
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    email: String,
    has_password: bool,
    methods: Vec<MethodRow>,
    sessions: Vec<SessionRow>,
    closes_on: Option<String>,
}

/// A provider under "Sign-in methods": configured, linked, or both.
struct MethodRow {
    name: String,
    label: String,
    linked: Option<LinkedRow>,
}

struct LinkedRow {
    email: String,
    linked_on: String,
    last_used: String,
}

struct SessionRow {
    device: String,
    ip: String,
    last_seen: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "second_factor.html")]
struct SecondFactorPage {
    chrome: Chrome,
    next: String,
}

#[derive(Template)]
#[template(path = "mfa.html")]
struct MfaPage {
    chrome: Chrome,
    state: MfaState,
}

/// Where the person stands with the second factor.
enum MfaState {
    Off,
    Enrolling(EnrolmentView),
    On,
}

struct EnrolmentView {
    qr_svg: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "backup_codes.html")]
struct BackupCodesPage {
    chrome: Chrome,
    codes: Vec<String>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/app.css", web::get().to(stylesheet))
        .route("/static/masking.js", web::get().to(masking_script))
        .route("/setup", web::get().to(setup_form))
        .route("/setup", web::post().to(setup_submit))
        .route("/sign-in", web::get().to(sign_in_form))
        .route("/sign-in", web::post().to(sign_in_submit))
        .route("/sign-up", web::get().to(sign_up_form))
        .route("/sign-up", web::post().to(sign_up_submit))
        .route("/sign-out", web::post().to(sign_out))
        .route("/verify", web::get().to(verify_form))
        .route("/verify", web::post().to(verify_submit))
        .route("/forgot-password", web::get().to(forgot_form))
        .route("/forgot-password", web::post().to(forgot_submit))
        .route("/reset-password", web::get().to(reset_form))
        .route("/reset-password", web::post().to(reset_submit))
        .route("/magic-link", web::get().to(magic_form))
        .route("/magic-link", web::post().to(magic_submit))
        .route("/magic-link/confirm", web::get().to(magic_confirm_form))
        .route("/magic-link/confirm", web::post().to(magic_confirm_submit))
        .route("/account", web::get().to(account))
        .route(
            "/account/sign-out-everywhere",
            web::post().to(sign_out_everywhere),
        )
        .route("/account/password", web::post().to(change_password))
        .route("/sign-in/second-factor", web::get().to(second_factor_form))
        .route(
            "/sign-in/second-factor",
            web::post().to(second_factor_submit),
        )
        .route("/account/close", web::post().to(close_account))
        .route("/account/reopen", web::post().to(reopen_account))
        .route("/account/mfa", web::get().to(mfa_page))
        .route("/account/mfa/setup", web::post().to(mfa_setup))
        .route("/account/mfa/enable", web::post().to(mfa_enable))
        .route(
            "/account/mfa/backup-codes",
            web::post().to(mfa_backup_codes),
        )
        .route("/account/mfa/disable", web::post().to(mfa_disable));
}

/// The shared inputs of every page handler.
pub(super) type Ctx = (
    HttpRequest,
    web::Data<Csrf>,
    CurrentSession,
    web::Data<AuthService>,
);

pub(super) fn render(status: StatusCode, page: impl Template) -> Result<HttpResponse, ApiError> {
    let html = page.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(html))
}

pub(super) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// Sets the new session cookie and sends the person on to `next`, or first to the
/// second-factor page (which carries `next` on).
pub(super) fn signed_in_as(session: NewSession, next: &str) -> HttpResponse {
    let location = match (session.needs_second_factor, next) {
        (false, next) => next.to_string(),
        (true, "/") => "/sign-in/second-factor".to_string(),
        (true, next) => {
            let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
            format!("/sign-in/second-factor?next={next}")
        }
    };
    let mut response = see_other(&location);
    response
        .add_cookie(&session_cookie(session.token.to_string()))
        .expect("a session cookie is a valid header");
    response
}

/// The browser making the request: its address, user agent and the session it holds
/// (signed in, or awaiting its second factor).
pub(super) fn device(req: &HttpRequest) -> Result<Device, ApiError> {
    let ip = ClientIp::of(req)?.0;
    let agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let held = held_session(req).map(|auth| auth.session.id_hash);
    Ok(Device::new(ip, agent).holding(held))
}

pub(super) fn require(current: &CurrentSession) -> Option<&Authenticated> {
    current.0.as_deref()
}

/// Maps a domain error on a form to the status and the message shown above the form. A spent
/// attempt budget becomes the rate-limit page, with `Retry-After`; anything unexpected a
/// logged 500.
pub(super) fn form_error(e: AuthError) -> Result<(StatusCode, String), ApiError> {
    let status = match &e {
        AuthError::InvalidCredentials => StatusCode::UNAUTHORIZED,
        AuthError::Throttled { retry_after_secs } => {
            return Err(ApiError::RateLimited {
                retry_after_secs: *retry_after_secs,
            });
        }
        AuthError::EmailNotVerified
        | AuthError::SignupClosed
        | AuthError::ProviderEmailUnverified => StatusCode::FORBIDDEN,
        AuthError::AccountExists
        | AuthError::ProviderAccountExists
        | AuthError::IdentityLinkedElsewhere
        | AuthError::ProviderAlreadyLinked
        | AuthError::LastSignInMethod => StatusCode::CONFLICT,
        AuthError::InvalidEmail
        | AuthError::WeakPassword(_)
        | AuthError::LinkInvalid
        | AuthError::InvalidCode
        | AuthError::MfaAlreadyEnabled
        | AuthError::MfaNotEnabled => StatusCode::UNPROCESSABLE_ENTITY,
        AuthError::SessionEnded => StatusCode::UNAUTHORIZED,
        AuthError::Store(_) => {
            return Err(ApiError::internal(crate::telemetry::error_chain(&e)));
        }
    };
    Ok((status, e.to_string()))
}

#[derive(Deserialize)]
pub(super) struct TokenQuery {
    #[serde(default)]
    pub(super) token: String,
}

#[derive(Deserialize)]
pub(super) struct CsrfOnly {
    #[serde(default)]
    pub(super) csrf: String,
}

#[derive(Deserialize)]
struct CredentialsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

#[derive(Deserialize)]
pub(super) struct LinkForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) token: String,
    #[serde(default)]
    pub(super) password: String,
}

#[derive(Deserialize)]
struct PasswordChangeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../static/app.css"))
}

async fn masking_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../static/masking.js"))
}

/// A page to return to after signing in, sent along by the page that asked for sign-in.
#[derive(Deserialize)]
struct NextQuery {
    #[serde(default)]
    next: String,
}

/// `next` if it is a path on this server (never another origin: `//host`, `/\host` or a
/// full URL would make sign-in an open redirect), else home.
pub(super) fn local_next(raw: &str) -> &str {
    let safe = raw.starts_with('/')
        && !raw.starts_with("//")
        && raw.len() <= 4096
        && !raw.chars().any(|c| c == '\\' || c.is_control());
    if safe { raw } else { "/" }
}

async fn sign_in_form(
    (req, csrf, current, _): Ctx,
    signup: web::Data<SignupMode>,
    oidc: web::Data<OidcService>,
    query: Query<NextQuery>,
) -> Result<HttpResponse, ApiError> {
    let chrome = Chrome::new(&req, &csrf, &current);
    let next = local_next(&query.next).to_string();
    sign_in_page(chrome, StatusCode::OK, &signup, &oidc, next).await
}

async fn sign_in_submit(
    (req, csrf, current, auth): Ctx,
    signup: web::Data<SignupMode>,
    oidc: web::Data<OidcService>,
    form: Form<CredentialsForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let form = form.into_inner();
    let next = local_next(&form.next).to_string();
    match auth
        .sign_in(form.email, Zeroizing::new(form.password), device(&req)?)
        .await
    {
        Ok(session) => Ok(signed_in_as(session, &next)),
        Err(e) => {
            let (status, message) = form_error(e)?;
            let chrome = Chrome::new(&req, &csrf, &current).with_error(message);
            sign_in_page(chrome, status, &signup, &oidc, next).await
        }
    }
}

/// The sign-in form, with a button for each configured provider; those buttons' forms may
/// go on to the providers' pages.
async fn sign_in_page(
    chrome: Chrome,
    status: StatusCode,
    signup: &SignupMode,
    oidc: &OidcService,
    next: String,
) -> Result<HttpResponse, ApiError> {
    let page = SignInPage {
        chrome,
        signup_open: *signup == SignupMode::Open,
        providers: oidc.providers(),
        next,
    };
    let mut response = render(status, page)?;
    allow_forms_to(&mut response, &oidc.form_targets());
    Ok(response)
}

fn setup_page(chrome: Chrome, token: String) -> SignUpPage {
    SignUpPage {
        chrome,
        heading: "Create the first owner account",
        action: "/setup",
        button: "Create account",
        token,
    }
}

async fn setup_form(
    (req, csrf, current, auth): Ctx,
    query: Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let token = query.into_inner().token;
    let usable = auth
        .link_is_usable(LinkPurpose::Setup, token.clone())
        .await
        .unwrap_or(false);
    if !usable {
        return Err(ApiError::NotFound);
    }
    render(
        StatusCode::OK,
        setup_page(Chrome::new(&req, &csrf, &current), token),
    )
}

async fn setup_submit(
    (req, csrf, current, auth): Ctx,
    form: Form<CredentialsForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let form = form.into_inner();
    let token = form.token.clone();
    match auth
        .complete_setup(
            form.token,
            form.email,
            Zeroizing::new(form.password),
            device(&req)?,
        )
        .await
    {
        Ok(session) => Ok(signed_in_as(session, "/")),
        Err(e) => {
            let (status, message) = form_error(e)?;
            let chrome = Chrome::new(&req, &csrf, &current).with_error(message);
            render(status, setup_page(chrome, token))
        }
    }
}

fn sign_up_page(chrome: Chrome) -> SignUpPage {
    SignUpPage {
        chrome,
        heading: "Create an account",
        action: "/sign-up",
        button: "Create account",
        token: String::new(),
    }
}

async fn sign_up_form((req, csrf, current, _): Ctx) -> Result<HttpResponse, ApiError> {
    render(
        StatusCode::OK,
        sign_up_page(Chrome::new(&req, &csrf, &current)),
    )
}

async fn sign_up_submit(
    (req, csrf, current, auth): Ctx,
    form: Form<CredentialsForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let form = form.into_inner();
    match auth
        .sign_up(form.email, Zeroizing::new(form.password))
        .await
    {
        Ok(()) => message(
            &req,
            &csrf,
            &current,
            "Check your email",
            "We sent a message to that address. Open its link to continue.",
            "/sign-in",
            "Sign in",
        ),
        Err(e) => {
            let (status, text) = form_error(e)?;
            render(
                status,
                sign_up_page(Chrome::new(&req, &csrf, &current).with_error(text)),
            )
        }
    }
}

pub(super) fn message(
    req: &HttpRequest,
    csrf: &Csrf,
    current: &CurrentSession,
    heading: &'static str,
    text: &'static str,
    next_href: &'static str,
    next_label: &'static str,
) -> Result<HttpResponse, ApiError> {
    let chrome = Chrome::new(req, csrf, current);
    render(
        StatusCode::OK,
        MessagePage {
            chrome,
            heading,
            text,
            next_href,
            next_label,
        },
    )
}

async fn sign_out(
    (req, csrf, current, auth): Ctx,
    pending: PendingSecondFactor,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    // Signing out at the second-factor step ends that half-made session too.
    let session = current.0.as_ref().or(pending.0.as_ref());
    if let Some(session) = session {
        auth.sign_out(&session.session)
            .await
            .map_err(|e| ApiError::internal(crate::telemetry::error_chain(&e)))?;
    }
    let mut response = see_other("/sign-in");
    response
        .add_cookie(&expired(SESSION_COOKIE))
        .map_err(ApiError::internal)?;
    Ok(response)
}

/// A GET on an emailed link only shows a button: mail scanners open links, and only the
/// person's POST may use them.
async fn confirm_page(
    (req, csrf, current, auth): Ctx,
    purpose: LinkPurpose,
    token: String,
) -> Result<HttpResponse, ApiError> {
    let usable = auth
        .link_is_usable(purpose, token.clone())
        .await
        .unwrap_or(false);
    let (heading, action, button) = match purpose {
        LinkPurpose::Verify => ("Verify your email address", "/verify", "Verify"),
        LinkPurpose::Reset => ("Choose a new password", "/reset-password", "Set password"),
        LinkPurpose::Magic => ("Sign in", "/magic-link/confirm", "Sign in"),
        LinkPurpose::Setup => ("Set up Strongbox", "/setup", "Continue"),
    };
    let chrome = Chrome::new(&req, &csrf, &current);
    let page = ConfirmLinkPage {
        chrome,
        heading,
        action,
        button,
        token,
        usable,
        new_password: purpose == LinkPurpose::Reset,
    };
    render(
        if usable {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        },
        page,
    )
}

async fn verify_form(ctx: Ctx, query: Query<TokenQuery>) -> Result<HttpResponse, ApiError> {
    confirm_page(ctx, LinkPurpose::Verify, query.into_inner().token).await
}

async fn verify_submit(
    (req, csrf, current, auth): Ctx,
    form: Form<LinkForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    match auth.verify_email(form.into_inner().token).await {
        Ok(()) => message(
            &req,
            &csrf,
            &current,
            "Email verified",
            "Your email address is verified.",
            "/",
            "Continue",
        ),
        Err(e) => link_failed(&req, &csrf, &current, e),
    }
}

fn link_failed(
    req: &HttpRequest,
    csrf: &Csrf,
    current: &CurrentSession,
    e: AuthError,
) -> Result<HttpResponse, ApiError> {
    let (status, text) = form_error(e)?;
    let chrome = Chrome::new(req, csrf, current).with_error(text);
    render(
        status,
        MessagePage {
            chrome,
            heading: "That did not work",
            text: "Ask for a new link and try again.",
            next_href: "/sign-in",
            next_label: "Sign in",
        },
    )
}

async fn forgot_form((req, csrf, current, _): Ctx) -> Result<HttpResponse, ApiError> {
    let chrome = Chrome::new(&req, &csrf, &current);
    render(
        StatusCode::OK,
        RequestLinkPage {
            chrome,
            heading: "Reset your password",
            action: "/forgot-password",
        },
    )
}

async fn magic_form((req, csrf, current, _): Ctx) -> Result<HttpResponse, ApiError> {
    let chrome = Chrome::new(&req, &csrf, &current);
    render(
        StatusCode::OK,
        RequestLinkPage {
            chrome,
            heading: "Email me a sign-in link",
            action: "/magic-link",
        },
    )
}

async fn forgot_submit(
    (req, csrf, current, auth): Ctx,
    form: Form<EmailForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    match auth.request_password_reset(form.into_inner().email).await {
        Ok(()) => link_sent(&req, &csrf, &current),
        Err(e) => link_failed(&req, &csrf, &current, e),
    }
}

async fn magic_submit(
    (req, csrf, current, auth): Ctx,
    form: Form<EmailForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    match auth.request_magic_link(form.into_inner().email).await {
        Ok(()) => link_sent(&req, &csrf, &current),
        Err(e) => link_failed(&req, &csrf, &current, e),
    }
}

/// The same answer whether or not the address has an account.
fn link_sent(
    req: &HttpRequest,
    csrf: &Csrf,
    current: &CurrentSession,
) -> Result<HttpResponse, ApiError> {
    message(
        req,
        csrf,
        current,
        "Check your email",
        "If that address has an account, a link is on its way. It works once, for 15 minutes.",
        "/sign-in",
        "Back to sign in",
    )
}

async fn reset_form(ctx: Ctx, query: Query<TokenQuery>) -> Result<HttpResponse, ApiError> {
    confirm_page(ctx, LinkPurpose::Reset, query.into_inner().token).await
}

async fn reset_submit(
    (req, csrf, current, auth): Ctx,
    form: Form<LinkForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let form = form.into_inner();
    match auth
        .reset_password(form.token, Zeroizing::new(form.password))
        .await
    {
        Ok(()) => message(
            &req,
            &csrf,
            &current,
            "Password changed",
            "Your password is changed and every session was signed out.",
            "/sign-in",
            "Sign in",
        ),
        Err(e) => link_failed(&req, &csrf, &current, e),
    }
}

async fn magic_confirm_form(ctx: Ctx, query: Query<TokenQuery>) -> Result<HttpResponse, ApiError> {
    confirm_page(ctx, LinkPurpose::Magic, query.into_inner().token).await
}

async fn magic_confirm_submit(
    (req, csrf, current, auth): Ctx,
    form: Form<LinkForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    match auth
        .sign_in_with_magic_link(form.into_inner().token, device(&req)?)
        .await
    {
        Ok(session) => Ok(signed_in_as(session, "/")),
        Err(e) => link_failed(&req, &csrf, &current, e),
    }
}

async fn account(
    (req, csrf, current, auth): Ctx,
    oidc: web::Data<OidcService>,
) -> Result<HttpResponse, ApiError> {
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    let internal = |e: AuthError| ApiError::internal(crate::telemetry::error_chain(&e));
    let user = &signed_in.user;
    let sessions = auth
        .sessions(user.id)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|s| SessionRow {
            current: s.id_hash == signed_in.session.id_hash,
            device: if s.user_agent.is_empty() {
                "unknown device".into()
            } else {
                s.user_agent
            },
            ip: s.ip,
            last_seen: format_time(s.last_seen_at),
        })
        .collect();
    let linked = auth.linked_providers(user.id).await.map_err(internal)?;
    let mut response = render(
        StatusCode::OK,
        AccountPage {
            chrome: Chrome::new(&req, &csrf, &current),
            email: user.email.to_string(),
            has_password: user.has_password,
            methods: method_rows(oidc.providers(), linked),
            sessions,
            closes_on: user.closes_at.map(format_date),
        },
    )?;
    allow_forms_to(&mut response, &oidc.form_targets());
    Ok(response)
}

/// Every configured provider, linked or not, and every linked one whose provider the
/// operator has since removed (so it can still be unlinked).
fn method_rows(configured: Vec<ProviderChoice>, linked: Vec<LinkedIdentity>) -> Vec<MethodRow> {
    let mut rows: Vec<MethodRow> = configured
        .into_iter()
        .map(|p| MethodRow {
            name: p.name,
            label: p.label,
            linked: None,
        })
        .collect();
    for identity in linked {
        let view = LinkedRow {
            email: identity.email.unwrap_or_default(),
            linked_on: format_date(identity.linked_at),
            last_used: identity.last_used_at.map(format_time).unwrap_or_default(),
        };
        match rows.iter_mut().find(|r| r.name == identity.provider) {
            Some(row) => row.linked = Some(view),
            None => rows.push(MethodRow {
                label: identity.provider.clone(),
                name: identity.provider,
                linked: Some(view),
            }),
        }
    }
    rows
}

async fn sign_out_everywhere(
    (req, csrf, current, auth): Ctx,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    auth.sign_out_everywhere(signed_in.user.id)
        .await
        .map_err(|e| ApiError::internal(crate::telemetry::error_chain(&e)))?;
    let mut response = see_other("/sign-in");
    response
        .add_cookie(&expired(SESSION_COOKIE))
        .map_err(ApiError::internal)?;
    Ok(response)
}

async fn change_password(
    (req, csrf, current, auth): Ctx,
    form: Form<PasswordChangeForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    let form = form.into_inner();
    let result = auth
        .change_password(
            signed_in.user.clone(),
            signed_in.session.id_hash,
            Zeroizing::new(form.current),
            Zeroizing::new(form.password),
        )
        .await;
    match result {
        Ok(()) => message(
            &req,
            &csrf,
            &current,
            "Password changed",
            "Your password is changed; every other session was signed out.",
            "/account",
            "Back to account",
        ),
        Err(e) => {
            let (status, text) = form_error(e)?;
            let mut chrome = Chrome::new(&req, &csrf, &current);
            chrome.error = Some(text);
            render(
                status,
                MessagePage {
                    chrome,
                    heading: "Password not changed",
                    text: "Nothing was changed.",
                    next_href: "/account",
                    next_label: "Back to account",
                },
            )
        }
    }
}

/// Unix seconds as `YYYY-MM-DD`.
pub(super) fn format_date(unix: i64) -> String {
    clock::format_utc(unix, "%Y-%m-%d")
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC`.
fn format_time(unix: i64) -> String {
    clock::format_utc(unix, "%Y-%m-%d %H:%M UTC")
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

async fn second_factor_form(
    (req, csrf, current, _): Ctx,
    pending: PendingSecondFactor,
    query: Query<NextQuery>,
) -> Result<HttpResponse, ApiError> {
    if pending.0.is_none() {
        return Ok(see_other("/sign-in"));
    }
    render(
        StatusCode::OK,
        SecondFactorPage {
            chrome: Chrome::new(&req, &csrf, &current),
            next: local_next(&query.next).to_string(),
        },
    )
}

async fn second_factor_submit(
    (req, csrf, current, auth): Ctx,
    pending: PendingSecondFactor,
    form: Form<CodeForm>,
) -> Result<HttpResponse, ApiError> {
    // An expired wait changes nothing, so it goes back to sign-in before the CSRF check.
    let Some(pending) = pending.0 else {
        return Ok(see_other("/sign-in"));
    };
    csrf.verify(&req, &form.csrf)?;
    let form = form.into_inner();
    let (code, next) = (form.code, local_next(&form.next).to_string());
    match auth
        .complete_second_factor(
            pending.session.id_hash,
            pending.user.clone(),
            device(&req)?.ip,
            code,
        )
        .await
    {
        Ok(session) => Ok(signed_in_as(session, &next)),
        Err(e) => {
            let (status, text) = form_error(e)?;
            render(
                status,
                SecondFactorPage {
                    chrome: Chrome::new(&req, &csrf, &current).with_error(text),
                    next,
                },
            )
        }
    }
}

/// The second-factor page. It only reads: enrolment is started by a post (`mfa_setup`).
async fn mfa_page((req, csrf, current, auth): Ctx) -> Result<HttpResponse, ApiError> {
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    let state = if signed_in.user.mfa_enabled {
        MfaState::On
    } else {
        let enrolment = auth
            .mfa_enrolment(signed_in.user.clone())
            .await
            .map_err(|e| ApiError::internal(crate::telemetry::error_chain(&e)))?;
        enrolment.map_or(MfaState::Off, |started| {
            MfaState::Enrolling(EnrolmentView {
                qr_svg: started.qr_svg,
                secret: started.secret_base32.to_string(),
            })
        })
    };
    render(
        StatusCode::OK,
        MfaPage {
            chrome: Chrome::new(&req, &csrf, &current),
            state,
        },
    )
}

/// Stores a secret awaiting its first code, then shows it on the second-factor page.
async fn mfa_setup(
    (req, csrf, current, auth): Ctx,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    match auth.begin_mfa_enrolment(signed_in.user.id).await {
        Ok(()) | Err(AuthError::MfaAlreadyEnabled) => Ok(see_other("/account/mfa")),
        Err(e) => Err(ApiError::internal(crate::telemetry::error_chain(&e))),
    }
}

fn codes_page(
    req: &HttpRequest,
    csrf: &Csrf,
    current: &CurrentSession,
    codes: Vec<Zeroizing<String>>,
) -> Result<HttpResponse, ApiError> {
    let codes = codes.iter().map(|c| c.to_string()).collect();
    render(
        StatusCode::OK,
        BackupCodesPage {
            chrome: Chrome::new(req, csrf, current),
            codes,
        },
    )
}

fn mfa_failed(
    req: &HttpRequest,
    csrf: &Csrf,
    current: &CurrentSession,
    e: AuthError,
) -> Result<HttpResponse, ApiError> {
    let (status, text) = form_error(e)?;
    let chrome = Chrome::new(req, csrf, current).with_error(text);
    render(
        status,
        MessagePage {
            chrome,
            heading: "Nothing was changed",
            text: "Check the code and try again.",
            next_href: "/account/mfa",
            next_label: "Back",
        },
    )
}

async fn mfa_enable(
    (req, csrf, current, auth): Ctx,
    form: Form<CodeForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    match auth
        .confirm_mfa_enrolment(signed_in.user.clone(), form.into_inner().code)
        .await
    {
        Ok(codes) => codes_page(&req, &csrf, &current, codes),
        Err(e) => mfa_failed(&req, &csrf, &current, e),
    }
}

async fn mfa_backup_codes(
    (req, csrf, current, auth): Ctx,
    form: Form<CodeForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    let form = form.into_inner();
    match auth
        .regenerate_backup_codes(
            signed_in.user.clone(),
            Zeroizing::new(form.password),
            form.code,
        )
        .await
    {
        Ok(codes) => codes_page(&req, &csrf, &current, codes),
        Err(e) => mfa_failed(&req, &csrf, &current, e),
    }
}

async fn mfa_disable(
    (req, csrf, current, auth): Ctx,
    form: Form<CodeForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    let form = form.into_inner();
    match auth
        .disable_mfa(
            signed_in.user.clone(),
            Zeroizing::new(form.password),
            form.code,
        )
        .await
    {
        Ok(()) => message(
            &req,
            &csrf,
            &current,
            "Two-factor authentication is off",
            "Sign-in now asks for your password only.",
            "/account",
            "Back to account",
        ),
        Err(e) => mfa_failed(&req, &csrf, &current, e),
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

async fn close_account(
    (req, csrf, current, auth): Ctx,
    workspaces: web::Data<WorkspaceService>,
    form: Form<PasswordForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    let password = Zeroizing::new(form.into_inner().password);
    let result = workspaces
        .close_account(&auth, signed_in.user.clone(), password)
        .await;
    let error = match result {
        Ok(_) => {
            let mut response = message(
                &req,
                &csrf,
                &CurrentSession(None),
                "Your account is closing",
                "It will be deleted in 30 days. Sign in before then to cancel.",
                "/sign-in",
                "Sign in",
            )?;
            response
                .add_cookie(&expired(SESSION_COOKIE))
                .map_err(ApiError::internal)?;
            return Ok(response);
        }
        Err(WorkspaceError::SoleOwner) => {
            (StatusCode::CONFLICT, WorkspaceError::SoleOwner.to_string())
        }
        Err(WorkspaceError::Auth(e)) => form_error(e)?,
        Err(e) => return Err(ApiError::internal(crate::telemetry::error_chain(&e))),
    };
    let chrome = Chrome::new(&req, &csrf, &current).with_error(error.1);
    render(
        error.0,
        MessagePage::new(chrome, "Account not closed", "/account", "Back to account"),
    )
}

async fn reopen_account(
    (req, csrf, current, auth): Ctx,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    auth.reopen_account(signed_in.user.id)
        .await
        .map_err(|e| ApiError::internal(crate::telemetry::error_chain(&e)))?;
    Ok(see_other("/account"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_methods_list_every_configured_provider_and_every_linked_one() {
        let configured = vec![
            ProviderChoice {
                name: "google".into(),
                label: "Google".into(),
            },
            ProviderChoice {
                name: "gitlab".into(),
                label: "GitLab".into(),
            },
        ];
        let linked = |provider: &str| LinkedIdentity {
            provider: provider.into(),
            email: Some("ada@example.com".into()),
            linked_at: 1_800_000_000,
            last_used_at: None,
        };
        // `retired` was linked, then removed from the config: it stays, so it can be unlinked.
        let rows = method_rows(configured, vec![linked("gitlab"), linked("retired")]);
        let summary: Vec<(&str, &str, bool)> = rows
            .iter()
            .map(|r| (r.name.as_str(), r.label.as_str(), r.linked.is_some()))
            .collect();
        assert_eq!(
            summary,
            [
                ("google", "Google", false),
                ("gitlab", "GitLab", true),
                ("retired", "retired", true)
            ]
        );
    }
}
