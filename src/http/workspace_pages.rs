//! Dashboard pages for workspaces: the list, a workspace's home, members and invitations.
//! Membership is resolved by the service on the workspace itself; a non-member gets 404.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::ApiError;
use super::extract::{Form, Query};
use super::pages::{
    Chrome, CsrfOnly, Ctx, LinkForm, TokenQuery, device, render, require, see_other, signed_in_as,
};
use super::session::{Csrf, CurrentSession};
use crate::auth::{AuthError, UserId};
use crate::crypto::token::SecretHash;
use crate::ids::WorkspaceId;
use crate::workspace::{Action, Member, Role, Workspace, WorkspaceError, WorkspaceService};

/// Every route under `/w/{id}`, by method and pattern. The tenant-isolation test walks
/// this list, so a route added here is attacked by it; add each new one.
pub const WORKSPACE_ROUTES: &[(&str, &str)] = &[
    ("GET", "/w/{id}"),
    ("POST", "/w/{id}/rename"),
    ("POST", "/w/{id}/leave"),
    ("GET", "/w/{id}/members"),
    ("POST", "/w/{id}/invites"),
    ("POST", "/w/{id}/members/{user}/role"),
    ("POST", "/w/{id}/members/{user}/remove"),
    ("POST", "/w/{id}/invites/{invite}/revoke"),
    ("POST", "/w/{id}/export"),
    ("POST", "/w/{id}/close"),
    ("POST", "/w/{id}/reopen"),
    ("GET", "/w/{id}/agents"),
    ("POST", "/w/{id}/pairing-codes"),
    ("POST", "/w/{id}/pairing-codes/{code}/withdraw"),
    ("POST", "/w/{id}/agents/{agent}/revoke"),
    ("GET", "/w/{id}/masking"),
    ("POST", "/w/{id}/masking/rules"),
    ("POST", "/w/{id}/masking/rules/remove"),
    ("POST", "/w/{id}/masking/requirement"),
    ("POST", "/w/{id}/masking/preview"),
    ("GET", "/w/{id}/records"),
    ("GET", "/w/{id}/records/{collection}"),
    ("GET", "/w/{id}/records/{collection}/record"),
    ("POST", "/w/{id}/records/{collection}/record/delete"),
    ("GET", "/w/{id}/search"),
    ("GET", "/w/{id}/tokens"),
    ("POST", "/w/{id}/tokens"),
    ("POST", "/w/{id}/tokens/{token}/revoke"),
    ("GET", "/w/{id}/ai-clients"),
    ("POST", "/w/{id}/ai-clients/{grant}/revoke"),
    ("GET", "/w/{id}/audit"),
    ("POST", "/w/{id}/audit/export"),
    ("GET", "/w/{id}/usage"),
];

/// The workspace's sections, in navigation order: a label and its path under `/w/{id}`.
/// Sections whose pages do not exist yet have no path and show as unavailable.
pub(super) const SECTIONS: &[Section] = &[
    Section {
        label: "Overview",
        path: Some(""),
    },
    Section {
        label: "Members",
        path: Some("/members"),
    },
    Section {
        label: "Records",
        path: Some("/records"),
    },
    Section {
        label: "Agents",
        path: Some("/agents"),
    },
    Section {
        label: "AI clients",
        path: Some("/ai-clients"),
    },
    Section {
        label: "Tokens",
        path: Some("/tokens"),
    },
    Section {
        label: "Masking",
        path: Some("/masking"),
    },
    Section {
        label: "Audit log",
        path: Some("/audit"),
    },
    Section {
        label: "Usage",
        path: Some("/usage"),
    },
];

pub(super) struct Section {
    pub(super) label: &'static str,
    pub(super) path: Option<&'static str>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/workspaces", web::post().to(create))
        .route("/w/{id}", web::get().to(overview))
        .route("/w/{id}/rename", web::post().to(rename))
        .route("/w/{id}/leave", web::post().to(leave))
        .route("/w/{id}/members", web::get().to(members))
        .route("/w/{id}/invites", web::post().to(invite))
        .route("/w/{id}/members/{user}/role", web::post().to(change_role))
        .route(
            "/w/{id}/members/{user}/remove",
            web::post().to(remove_member),
        )
        .route(
            "/w/{id}/invites/{invite}/revoke",
            web::post().to(revoke_invite),
        )
        .route("/w/{id}/export", web::post().to(export))
        .route("/w/{id}/close", web::post().to(close))
        .route("/w/{id}/reopen", web::post().to(reopen))
        .route("/invite", web::get().to(invitation))
        .route("/invite/accept", web::post().to(accept_invite))
        .route("/invite/sign-up", web::post().to(sign_up_with_invite));
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    workspaces: Vec<Row>,
}

struct Row {
    id: WorkspaceId,
    name: String,
    role: &'static str,
}

#[derive(Template)]
#[template(path = "workspace.html")]
struct OverviewPage {
    chrome: Chrome,
    sections: &'static [Section],
    id: WorkspaceId,
    name: String,
    role: &'static str,
    can_rename: bool,
    can_export: bool,
    can_close: bool,
    closes_on: Option<String>,
}

#[derive(Template)]
#[template(path = "members.html")]
struct MembersPage {
    chrome: Chrome,
    sections: &'static [Section],
    id: WorkspaceId,
    name: String,
    members: Vec<MemberRow>,
    roles: Vec<&'static str>,
    can_manage: bool,
    invites: Vec<InviteRow>,
}

struct InviteRow {
    id: String,
    email: String,
    role: &'static str,
    expires_on: String,
}

struct MemberRow {
    user_id: UserId,
    email: String,
    role: &'static str,
}

impl From<Member> for MemberRow {
    fn from(m: Member) -> Self {
        Self {
            user_id: m.user_id,
            email: m.email.to_string(),
            role: m.role.as_str(),
        }
    }
}

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    chrome: Chrome,
    workspace_name: String,
    email: String,
    role: &'static str,
    token: String,
}

#[derive(Deserialize)]
struct NameForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

#[derive(Deserialize)]
struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
}

/// Ids in paths are parsed, never trusted: junk is simply not found.
pub(super) fn workspace_id(raw: &str) -> Result<WorkspaceId, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

/// A one-way secret (invitation, pairing code) named in a path by its hash in hex.
pub(super) fn secret_hash(raw: &str) -> Result<SecretHash, ApiError> {
    hex::decode(raw)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .map(SecretHash)
        .ok_or(ApiError::NotFound)
}

fn user_id(raw: &str) -> Result<UserId, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound)
}

/// How a refused action is answered on a page.
pub(super) enum Refusal {
    /// Non-members, unknown objects: a plain 404, no hint that anything exists.
    NotFound,
    /// Something the person can see or fix, shown on a page with this status.
    Page(StatusCode),
    /// Anything else becomes the API error (rate limits, internal errors).
    Api(ApiError),
}

/// A domain error the dashboard can answer: its message is safe to show.
pub(super) trait Refused: std::fmt::Display {
    fn refusal(&self) -> Refusal;
}

impl Refused for WorkspaceError {
    fn refusal(&self) -> Refusal {
        let status = match self {
            WorkspaceError::NotFound => return Refusal::NotFound,
            WorkspaceError::Forbidden => StatusCode::FORBIDDEN,
            WorkspaceError::InvalidName
            | WorkspaceError::InvalidEmail
            | WorkspaceError::InvalidRole
            | WorkspaceError::InvalidRule
            | WorkspaceError::InvalidRecord(_)
            | WorkspaceError::UnknownField
            | WorkspaceError::UnknownCollection
            | WorkspaceError::TooSlow
            | WorkspaceError::InviteInvalid
            | WorkspaceError::InviteForSomeoneElse
            | WorkspaceError::ConfirmationMismatch
            | WorkspaceError::ExportTooLarge
            | WorkspaceError::Auth(AuthError::WeakPassword(_)) => StatusCode::UNPROCESSABLE_ENTITY,
            WorkspaceError::LastOwner
            | WorkspaceError::AlreadyMember
            | WorkspaceError::SoleOwner
            | WorkspaceError::TooManyRules
            | WorkspaceError::AmbiguousId
            | WorkspaceError::Auth(AuthError::AccountExists) => StatusCode::CONFLICT,
            WorkspaceError::ExportLimit { retry_after_secs } => {
                return Refusal::Api(ApiError::RateLimited {
                    retry_after_secs: *retry_after_secs,
                });
            }
            WorkspaceError::Store(crate::store::StoreError::WorkspaceNotFound) => {
                return Refusal::NotFound;
            }
            WorkspaceError::Auth(_)
            | WorkspaceError::Store(_)
            | WorkspaceError::Export(_)
            | WorkspaceError::Privacy(_)
            | WorkspaceError::ShownIndexBehind => {
                return Refusal::Api(ApiError::internal(crate::telemetry::error_chain(self)));
            }
        };
        Refusal::Page(status)
    }
}

/// Turns a refused action into the response: 404 for non-members, 403 for a role that
/// does not allow the action, a message for anything the person can fix.
pub(super) fn respond(
    req: &HttpRequest,
    csrf: &Csrf,
    current: &CurrentSession,
    e: impl Refused,
) -> Result<HttpResponse, ApiError> {
    let status = match e.refusal() {
        Refusal::NotFound => return Err(ApiError::NotFound),
        Refusal::Api(error) => return Err(error),
        Refusal::Page(status) => status,
    };
    let chrome = Chrome::new(req, csrf, current).with_error(&e);
    render(
        status,
        super::pages::MessagePage::new(chrome, "Nothing was changed", "/", "Back to workspaces"),
    )
}

/// The signed-in person and the workspace they may see, or the response that ends the
/// request (sign-in redirect, 404 for non-members).
pub(super) async fn viewer(
    (req, csrf, current): (&HttpRequest, &Csrf, &CurrentSession),
    service: &WorkspaceService,
    raw_id: &str,
) -> Result<Result<(UserId, Workspace), HttpResponse>, ApiError> {
    let Some(signed_in) = require(current) else {
        return Ok(Err(see_other("/sign-in")));
    };
    let id = workspace_id(raw_id)?;
    super::record_workspace(id);
    match service.get(signed_in.user.id, id).await {
        Ok(workspace) => Ok(Ok((signed_in.user.id, workspace))),
        Err(e) => respond(req, csrf, current, e).map(Err),
    }
}

/// What every workspace form post shares: a signed-in person, a workspace id that parses,
/// a valid CSRF token. Then `act` runs, and the person goes to `next` or sees the error.
pub(super) async fn workspace_post<Fut, E>(
    (req, csrf, current): (&HttpRequest, &Csrf, &CurrentSession),
    raw_id: &str,
    token: &str,
    next: &str,
    act: impl FnOnce(UserId, WorkspaceId) -> Fut,
) -> Result<HttpResponse, ApiError>
where
    Fut: std::future::Future<Output = Result<(), E>>,
    E: Refused,
{
    let Some(signed_in) = require(current) else {
        return Ok(see_other("/sign-in"));
    };
    let id = workspace_id(raw_id)?;
    csrf.verify(req, token)?;
    super::record_workspace(id);
    match act(signed_in.user.id, id).await {
        Ok(()) => Ok(see_other(&next.replace("{id}", &id.to_string()))),
        Err(e) => respond(req, csrf, current, e),
    }
}

async fn home(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
) -> Result<HttpResponse, ApiError> {
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    let list = match service.list(signed_in.user.id).await {
        Ok(list) => list,
        Err(e) => return respond(&req, &csrf, &current, e),
    };
    let workspaces = list
        .into_iter()
        .map(|w: Workspace| Row {
            id: w.id,
            name: w.name,
            role: w.role.as_str(),
        })
        .collect();
    render(
        StatusCode::OK,
        HomePage {
            chrome: Chrome::new(&req, &csrf, &current),
            workspaces,
        },
    )
}

async fn create(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    form: Form<NameForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    match service
        .create(signed_in.user.id, form.into_inner().name)
        .await
    {
        Ok(id) => Ok(see_other(&format!("/w/{id}"))),
        Err(e) => respond(&req, &csrf, &current, e),
    }
}

async fn overview(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (_, workspace) = match viewer((&req, &csrf, &current), &service, &path).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let id = workspace.id;
    render(
        StatusCode::OK,
        OverviewPage {
            chrome: Chrome::new(&req, &csrf, &current),
            sections: SECTIONS,
            id,
            can_rename: workspace.role.may(Action::Rename),
            can_export: workspace.role.may(Action::Export),
            can_close: workspace.role.may(Action::Close),
            closes_on: workspace.closes_at.map(super::pages::format_date),
            role: workspace.role.as_str(),
            name: workspace.name,
        },
    )
}

async fn rename(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
    form: Form<NameForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    workspace_post(
        (&req, &csrf, &current),
        &path,
        &form.csrf,
        "/w/{id}",
        |user, id| service.rename(user, id, form.name),
    )
    .await
}

async fn leave(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, ApiError> {
    workspace_post(
        (&req, &csrf, &current),
        &path,
        &form.csrf,
        "/",
        |user, id| service.leave(user, id),
    )
    .await
}

async fn members(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (user, workspace) = match viewer((&req, &csrf, &current), &service, &path).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let id = workspace.id;
    let members = match service.members(user, id).await {
        Ok(members) => members,
        Err(e) => return respond(&req, &csrf, &current, e),
    };
    let can_manage = workspace.role.may(Action::ManageMembers);
    let invites = match can_manage {
        true => match service.pending_invites(user, id).await {
            Ok(invites) => invites,
            Err(e) => return respond(&req, &csrf, &current, e),
        },
        false => Vec::new(),
    };
    let invites = invites
        .into_iter()
        .map(|i| InviteRow {
            id: hex::encode(i.hash.as_bytes()),
            email: i.email,
            role: i.role.as_str(),
            expires_on: super::pages::format_date(i.expires_at),
        })
        .collect();
    let roles = [Role::Viewer, Role::Member, Role::Admin, Role::Owner]
        .into_iter()
        .filter(|r| workspace.role.may_change(Role::Viewer, *r))
        .map(Role::as_str)
        .collect();
    render(
        StatusCode::OK,
        MembersPage {
            chrome: Chrome::new(&req, &csrf, &current),
            sections: SECTIONS,
            id,
            name: workspace.name,
            members: members.into_iter().map(MemberRow::from).collect(),
            roles,
            can_manage,
            invites,
        },
    )
}

async fn invite(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
    form: Form<InviteForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    workspace_post(
        (&req, &csrf, &current),
        &path,
        &form.csrf,
        "/w/{id}/members",
        |user, id| service.invite(user, id, form.email, form.role),
    )
    .await
}

async fn change_role(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<(String, String)>,
    form: Form<RoleForm>,
) -> Result<HttpResponse, ApiError> {
    let target = user_id(&path.1)?;
    let form = form.into_inner();
    workspace_post(
        (&req, &csrf, &current),
        &path.0,
        &form.csrf,
        "/w/{id}/members",
        |user, id| service.change_role(user, id, target, form.role),
    )
    .await
}

async fn remove_member(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<(String, String)>,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, ApiError> {
    let target = user_id(&path.1)?;
    workspace_post(
        (&req, &csrf, &current),
        &path.0,
        &form.csrf,
        "/w/{id}/members",
        |user, id| service.remove_member(user, id, target),
    )
    .await
}

async fn invitation(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    query: Query<TokenQuery>,
) -> Result<HttpResponse, ApiError> {
    let token = query.into_inner().token;
    let Some(invite) = service.invitation(token.clone()).await.ok().flatten() else {
        return Err(ApiError::NotFound);
    };
    render(
        StatusCode::OK,
        InvitePage {
            chrome: Chrome::new(&req, &csrf, &current),
            workspace_name: invite.workspace_name,
            email: invite.email.to_string(),
            role: invite.role.as_str(),
            token,
        },
    )
}

async fn accept_invite(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    form: Form<LinkForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    match service
        .accept_invite(signed_in.user.clone(), form.into_inner().token)
        .await
    {
        Ok(id) => Ok(see_other(&format!("/w/{id}"))),
        Err(e) => respond(&req, &csrf, &current, e),
    }
}

async fn sign_up_with_invite(
    (req, csrf, current, auth): Ctx,
    service: web::Data<WorkspaceService>,
    form: Form<LinkForm>,
) -> Result<HttpResponse, ApiError> {
    csrf.verify(&req, &form.csrf)?;
    let form = form.into_inner();
    match service
        .sign_up_with_invite(
            &auth,
            form.token,
            Zeroizing::new(form.password),
            device(&req)?,
        )
        .await
    {
        Ok((session, id)) => Ok(signed_in_as(session, &format!("/w/{id}"))),
        Err(e) => respond(&req, &csrf, &current, e),
    }
}

async fn export(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, ApiError> {
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    let id = workspace_id(&path)?;
    csrf.verify(&req, &form.csrf)?;
    super::record_workspace(id);
    match service.export(signed_in.user.id, id).await {
        Ok((_, json)) => Ok(HttpResponse::Ok()
            .content_type("application/json")
            .insert_header((
                actix_web::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"strongbox-{id}.json\""),
            ))
            .body(json)),
        Err(e) => respond(&req, &csrf, &current, e),
    }
}

#[derive(Deserialize)]
struct CloseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

async fn close(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
    form: Form<CloseForm>,
) -> Result<HttpResponse, ApiError> {
    let form = form.into_inner();
    workspace_post(
        (&req, &csrf, &current),
        &path,
        &form.csrf,
        "/w/{id}",
        |user, id| async move { service.close(user, id, form.name).await.map(drop) },
    )
    .await
}

async fn reopen(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<String>,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, ApiError> {
    workspace_post(
        (&req, &csrf, &current),
        &path,
        &form.csrf,
        "/w/{id}",
        |user, id| service.reopen(user, id),
    )
    .await
}

async fn revoke_invite(
    (req, csrf, current, _): Ctx,
    service: web::Data<WorkspaceService>,
    path: web::Path<(String, String)>,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, ApiError> {
    // Invitations are named by the hash of their link, never the link itself.
    let invite = secret_hash(&path.1)?;
    workspace_post(
        (&req, &csrf, &current),
        &path.0,
        &form.csrf,
        "/w/{id}/members",
        |user, id| service.revoke_invite(user, id, invite),
    )
    .await
}
