//! Dashboard pages for desktop agents: the list with what each synced, pairing codes
//! (shown once) and revocation. Managing agents needs the admin role.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::ApiError;
use super::extract::Form;
use super::pages::{Chrome, CsrfOnly, Ctx, format_date, render, require, see_other};
use super::workspace_pages::{
    Refusal, Refused, SECTIONS, Section, respond, secret_hash, viewer, workspace_id, workspace_post,
};
use crate::agent::{AgentError, AgentId, AgentService, AgentView};
use crate::workspace::{Action, WorkspaceService};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/w/{id}/agents", web::get().to(agents))
        .route("/w/{id}/pairing-codes", web::post().to(issue_pairing_code))
        .route(
            "/w/{id}/pairing-codes/{code}/withdraw",
            web::post().to(withdraw_pairing_code),
        )
        .route("/w/{id}/agents/{agent}/revoke", web::post().to(revoke));
}

impl Refused for AgentError {
    fn refusal(&self) -> Refusal {
        match self {
            AgentError::NotFound => Refusal::NotFound,
            AgentError::Workspace(inner) => inner.refusal(),
            AgentError::InvalidDeviceName => Refusal::Page(StatusCode::UNPROCESSABLE_ENTITY),
            _ => Refusal::Api(ApiError::internal(crate::telemetry::error_chain(self))),
        }
    }
}

#[derive(Template)]
#[template(path = "agents.html")]
struct AgentsPage {
    chrome: Chrome,
    sections: &'static [Section],
    id: crate::ids::WorkspaceId,
    name: String,
    can_manage: bool,
    agents: Vec<AgentRow>,
    pending: Vec<PendingRow>,
    new_code: Option<String>,
    new_code_device: String,
    new_code_expires: String,
    public_url: String,
}

struct AgentRow {
    id: AgentId,
    name: String,
    paired_on: String,
    last_seen: String,
    version: String,
    records_synced: i64,
    values_masked: i64,
    status: String,
    active: bool,
}

impl From<AgentView> for AgentRow {
    fn from(view: AgentView) -> Self {
        let a = view.agent;
        let active = a.is_active();
        let status = match a.revoked {
            Some((at, reason)) => format!(
                "revoked {} ({})",
                format_date(at),
                match reason {
                    crate::agent::RevokeReason::Dashboard => "in the dashboard",
                    crate::agent::RevokeReason::RefreshReuse => "a refresh secret was reused",
                }
            ),
            None if a.membership_ended => {
                "stopped (the person who paired it is no longer a member)".to_string()
            }
            None => "active".to_string(),
        };
        Self {
            id: a.id,
            name: a.name,
            paired_on: format_date(a.paired_at),
            last_seen: a.last_seen_at.map_or_else(|| "never".into(), format_date),
            version: a.version.unwrap_or_default(),
            records_synced: view.records_synced,
            values_masked: view.values_masked,
            active,
            status,
        }
    }
}

struct PendingRow {
    id: String,
    device_name: String,
    issued_on: String,
    expires_on: String,
}

/// A freshly issued code, to show once.
struct NewCode {
    code: String,
    device: String,
    expires_on: String,
}

#[derive(Deserialize)]
struct DeviceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

async fn agents(
    ctx: Ctx,
    workspaces: web::Data<WorkspaceService>,
    service: web::Data<AgentService>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    show(ctx, workspaces, service, &path, StatusCode::OK, None).await
}

async fn show(
    (req, csrf, current, _): Ctx,
    workspaces: web::Data<WorkspaceService>,
    service: web::Data<AgentService>,
    raw_id: &str,
    status: StatusCode,
    new_code: Option<NewCode>,
) -> Result<HttpResponse, ApiError> {
    let (user, workspace) = match viewer((&req, &csrf, &current), &workspaces, raw_id).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let id = workspace.id;
    let loaded = async {
        let agents = service.agents(user, id).await?;
        let pending = match workspace.role.may(Action::ManageAgents) {
            true => service.pending_pairings(user, id).await?,
            false => Vec::new(),
        };
        Ok::<_, AgentError>((agents, pending))
    };
    let (agents, pending) = match loaded.await {
        Ok(loaded) => loaded,
        Err(e) => return respond(&req, &csrf, &current, e),
    };
    let pending = pending
        .into_iter()
        .map(|p| PendingRow {
            id: hex::encode(p.hash.as_bytes()),
            device_name: p.device_name,
            issued_on: format_date(p.created_at),
            expires_on: format_date(p.expires_at),
        })
        .collect();
    let (new_code, new_code_device, new_code_expires) = match new_code {
        Some(c) => (Some(c.code), c.device, c.expires_on),
        None => (None, String::new(), String::new()),
    };
    render(
        status,
        AgentsPage {
            chrome: Chrome::new(&req, &csrf, &current),
            sections: SECTIONS,
            id,
            can_manage: workspace.role.may(Action::ManageAgents),
            name: workspace.name,
            agents: agents.into_iter().map(AgentRow::from).collect(),
            pending,
            new_code,
            new_code_device,
            new_code_expires,
            public_url: workspaces.public_url().to_string(),
        },
    )
}

/// Issues a code and shows it on the page this once; it is never shown again.
async fn issue_pairing_code(
    (req, csrf, current, auth): Ctx,
    workspaces: web::Data<WorkspaceService>,
    service: web::Data<AgentService>,
    path: web::Path<String>,
    form: Form<DeviceForm>,
) -> Result<HttpResponse, ApiError> {
    let Some(signed_in) = require(&current) else {
        return Ok(see_other("/sign-in"));
    };
    let id = workspace_id(&path)?;
    csrf.verify(&req, &form.csrf)?;
    let form = form.into_inner();
    let device = form.name.trim().to_string();
    match service
        .issue_pairing_code(signed_in.user.id, id, form.name)
        .await
    {
        Ok((code, expires_at)) => {
            let new_code = NewCode {
                code: code.to_string(),
                device,
                expires_on: format_date(expires_at),
            };
            show(
                (req, csrf, current, auth),
                workspaces,
                service,
                &path,
                StatusCode::OK,
                Some(new_code),
            )
            .await
        }
        Err(e) => respond(&req, &csrf, &current, e),
    }
}

async fn withdraw_pairing_code(
    (req, csrf, current, _): Ctx,
    service: web::Data<AgentService>,
    path: web::Path<(String, String)>,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, ApiError> {
    // Codes are named by their hash, never the code itself.
    let code = secret_hash(&path.1)?;
    workspace_post(
        (&req, &csrf, &current),
        &path.0,
        &form.csrf,
        "/w/{id}/agents",
        |user, id| service.withdraw_pairing(user, id, code),
    )
    .await
}

async fn revoke(
    (req, csrf, current, _): Ctx,
    service: web::Data<AgentService>,
    path: web::Path<(String, String)>,
    form: Form<CsrfOnly>,
) -> Result<HttpResponse, ApiError> {
    let agent: AgentId = path.1.parse().map_err(|_| ApiError::NotFound)?;
    workspace_post(
        (&req, &csrf, &current),
        &path.0,
        &form.csrf,
        "/w/{id}/agents",
        |user, id| service.revoke(user, id, agent),
    )
    .await
}
