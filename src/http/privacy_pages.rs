//! What the product holds about a person: `/cookies` and `/privacy` (with the figures taken
//! from the running configuration, so the pages cannot drift from what it does), and the
//! download of everything held about the signed-in person.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::ApiError;
use super::extract::Form;
use super::pages::{Chrome, CsrfOnly, Ctx, render, require, see_other};
use super::session::{PRE_SESSION_COOKIE, SESSION_COOKIE};
use super::workspace_pages::respond;
use crate::config::Config;
use crate::oauth::GRANT_LIFETIME_SECS;
use crate::workspace::{CLOSURE_HOLD_SECS, WorkspaceService, usage};

/// A cookie the product sets: every one is listed on `/cookies`.
pub struct CookieUse {
    pub name: &'static str,
    pub purpose: &'static str,
    pub lifetime: &'static str,
}

/// Every cookie Strongbox sets. There are no analytics, advertising or third-party cookies.
pub const COOKIES: &[CookieUse] = &[
    CookieUse {
        name: SESSION_COOKIE,
        purpose: "Keeps you signed in. It holds a random session id; the session itself, and \
                  when it ends, are kept on the server.",
        lifetime: "Until you sign out or close the browser; the session ends sooner when \
                   idle or too old (see below).",
    },
    CookieUse {
        name: PRE_SESSION_COOKIE,
        purpose: "Protects the sign-in, sign-up and other forms from being sent by another \
                  site (cross-site request forgery) before you are signed in. It holds a \
                  random value and nothing about you.",
        lifetime: "Until you close the browser.",
    },
];

/// The retention figures both pages state, from the configuration and the fixed limits.
#[derive(Clone, Debug)]
pub struct Retention {
    pub idle_minutes: u32,
    pub absolute_hours: u32,
    pub audit_months: u32,
    pub backup_days: u32,
    pub pairing_code_days: u32,
    pub usage_days: i64,
    pub closure_hold_days: i64,
    pub grant_days: i64,
}

impl Retention {
    pub fn from_config(config: &Config) -> Self {
        Self {
            idle_minutes: config.sessions.idle_timeout_minutes,
            absolute_hours: config.sessions.absolute_timeout_hours,
            audit_months: config.audit.retention_months,
            backup_days: config.backup.retention_days,
            pairing_code_days: config.agents.pairing_code_days,
            usage_days: usage::RETENTION_SECS / 86_400,
            closure_hold_days: CLOSURE_HOLD_SECS / 86_400,
            grant_days: GRANT_LIFETIME_SECS / 86_400,
        }
    }
}

#[derive(Template)]
#[template(path = "cookies.html")]
struct CookiesPage<'a> {
    chrome: Chrome,
    cookies: &'static [CookieUse],
    retention: &'a Retention,
}

#[derive(Template)]
#[template(path = "privacy.html")]
struct PrivacyPage<'a> {
    chrome: Chrome,
    retention: &'a Retention,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/cookies", web::get().to(cookies))
        .route("/privacy", web::get().to(privacy))
        .route("/account/data", web::post().to(download));
}

async fn cookies(
    (req, csrf, current, _): Ctx,
    retention: web::Data<Retention>,
) -> Result<HttpResponse, ApiError> {
    let page = CookiesPage {
        chrome: Chrome::new(&req, &csrf, &current),
        cookies: COOKIES,
        retention: &retention,
    };
    render(StatusCode::OK, page)
}

async fn privacy(
    (req, csrf, current, _): Ctx,
    retention: web::Data<Retention>,
) -> Result<HttpResponse, ApiError> {
    let page = PrivacyPage {
        chrome: Chrome::new(&req, &csrf, &current),
        retention: &retention,
    };
    render(StatusCode::OK, page)
}

/// "Download my data": the archive as a JSON attachment, or the rate-limit page once three
/// were taken this hour.
async fn download(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, ApiError> {
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    csrf.verify(&req, &form.csrf)?;
    match service.personal_data(signed_in.user.id).await {
        Ok(json) => Ok(HttpResponse::Ok()
            .content_type("application/json")
            .insert_header((
                actix_web::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"strongbox-my-data.json\"",
            ))
            .body(json)),
        Err(e) => respond(&req, &csrf, &current, e),
    }
}
