//! The dashboard's Tokens page: personal tokens for the REST API, shown once when made,
//! listed by their public id, revocable.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::ApiError;
use super::extract::Form;
use super::pages::{Chrome, CsrfOnly, Ctx, format_date, render, require, see_other};
use super::workspace_pages::{
    Refusal, Refused, SECTIONS, Section, respond, viewer, workspace_id, workspace_post,
};
use crate::ids::WorkspaceId;
use crate::tokens::{PersonalToken, TokenError, TokenId, TokenService};
use crate::workspace::{Action, WorkspaceService};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/w/{id}/tokens", web::get().to(tokens))
        .route("/w/{id}/tokens", web::post().to(create))
        .route("/w/{id}/tokens/{token}/revoke", web::post().to(revoke));
}

impl Refused for TokenError {
    fn refusal(&self) -> Refusal {
        match self {
            TokenError::NotFound => Refusal::NotFound,
            TokenError::Workspace(inner) => inner.refusal(),
            TokenError::InvalidName | TokenError::InvalidAccess => {
                Refusal::Page(StatusCode::UNPROCESSABLE_ENTITY)
            }
            _ => Refusal::Api(ApiError::internal(crate::telemetry::error_chain(self))),
        }
    }
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    chrome: Chrome,
    sections: &'static [Section],
    id: WorkspaceId,
    name: String,
    tokens: Vec<TokenRow>,
    show_owner: bool,
    can_write: bool,
    new_token: Option<String>,
}

struct TokenRow {
    id: String,
    name: String,
    access: &'static str,
    owner: String,
    created_on: String,
    last_used: String,
}

impl From<PersonalToken> for TokenRow {
    fn from(t: PersonalToken) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name,
            access: match t.access {
                crate::tokens::Access::Read => "read only",
                crate::tokens::Access::ReadWrite => "read and write",
            },
            owner: t.user_email,
            created_on: format_date(t.created_at),
            last_used: t.last_used_at.map_or_else(|| "never".into(), format_date),
        }
    }
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    access: String,
}

async fn tokens(
    ctx: Ctx,
    workspaces: web::Data<WorkspaceService>,
    service: web::Data<TokenService>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    show(ctx, &workspaces, &service, &path, None).await
}

async fn show(
    (req, csrf, current, _): Ctx,
    workspaces: &WorkspaceService,
    service: &TokenService,
    raw_id: &str,
    new_token: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let (user, workspace) = match viewer((&req, &csrf, &current), workspaces, raw_id).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let id = workspace.id;
    let tokens = match service.list(user, id).await {
        Ok(tokens) => tokens,
        Err(e) => return respond(&req, &csrf, &current, e),
    };
    render(
        StatusCode::OK,
        TokensPage {
            chrome: Chrome::new(&req, &csrf, &current),
            sections: SECTIONS,
            id,
            show_owner: workspace.role.may(Action::ManageMembers),
            can_write: workspace.role.may(Action::WriteRecords),
            name: workspace.name,
            tokens: tokens.into_iter().map(TokenRow::from).collect(),
            new_token,
        },
    )
}

/// Makes a token and shows it on the page this once.
async fn create(
    (req, csrf, current, auth): Ctx,
    workspaces: web::Data<WorkspaceService>,
    service: web::Data<TokenService>,
    path: web::Path<String>,
    form: Form<TokenForm>,
) -> Result<HttpResponse, ApiError> {
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    let id = workspace_id(&path)?;
    csrf.verify(&req, &form.csrf)?;
    let form = form.into_inner();
    match service
        .create(signed_in.user.id, id, form.name, form.access)
        .await
    {
        Ok((text, _)) => {
            let ctx = (req, csrf, current, auth);
            show(ctx, &workspaces, &service, &path, Some(text.to_string())).await
        }
        Err(e) => respond(&req, &csrf, &current, e),
    }
}

async fn revoke(
    (req, csrf, current, _): Ctx,
    service: web::Data<TokenService>,
    path: web::Path<(String, String)>,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, ApiError> {
    let token: TokenId = path.1.parse().map_err(|()| ApiError::NotFound)?;
    workspace_post(
        (&req, &csrf, &current),
        &path.0,
        &form.csrf,
        "/w/{id}/tokens",
        |user, id| service.revoke(user, id, token),
    )
    .await
}
