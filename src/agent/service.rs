//! Agent flows. The dashboard side (pairing codes, the agents list, revocation) checks the
//! person's role on the workspace; the API side trusts nothing but a verified credential,
//! and checks on every request that the agent is still paired and active.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, Transaction};
use zeroize::Zeroizing;

use super::error::AgentError;
use super::model::{
    Agent, AgentId, AgentVersion, AgentView, DeviceName, PendingPairing, RevokeReason,
};
use super::repo::{self, RefreshSecret};
use super::sync;
use super::wire::{self, Credentials, PolicyRule, SyncBatch, SyncResult};
use crate::audit::{Action as Audited, Actor, AuditLog, Chain, Entry};
use crate::auth::UserId;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::crypto::KeyPurpose;
use crate::crypto::jwt::{ACCESS_TOKEN_TTL_SECS, AgentTokens};
use crate::crypto::token::{self, SecretHash};
use crate::ids::WorkspaceId;
use crate::store::{BlockingPool, Store};
use crate::workspace::records::RecordRules;
use crate::workspace::shown::ShownWriter;
use crate::workspace::{Action, authorize, policy};

/// The key version agent tokens are signed with.
const AGENT_JWT_KEY_VERSION: u32 = 1;
/// How long after a rotation the agent may present the old secret again, when the answer
/// never reached it and the new secret was never used.
const REFRESH_RETRY_SECS: i64 = 120;

#[derive(Clone, Debug)]
pub struct AgentSettings {
    pub max_batch_records: usize,
    pub max_batch_bytes: usize,
    pub pairing_code_ttl_secs: i64,
    pub records: RecordRules,
}

impl AgentSettings {
    pub fn from_config(config: &Config, records: RecordRules) -> Self {
        Self {
            max_batch_records: config.agents.max_batch_records,
            max_batch_bytes: config.agents.max_batch_bytes,
            pairing_code_ttl_secs: i64::from(config.agents.pairing_code_days) * 24 * 60 * 60,
            records,
        }
    }
}

/// An agent whose access token verified and which is still paired and active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthenticatedAgent {
    pub id: AgentId,
    pub workspace: WorkspaceId,
}

#[derive(Clone)]
pub struct AgentService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    pool: BlockingPool,
    clock: SharedClock,
    tokens: AgentTokens,
    settings: AgentSettings,
    audit: AuditLog,
}

type Result<T> = std::result::Result<T, AgentError>;

impl AgentService {
    pub fn new(
        store: Arc<Store>,
        pool: BlockingPool,
        clock: SharedClock,
        settings: AgentSettings,
        audit: AuditLog,
    ) -> Self {
        let key = store.derive_key(KeyPurpose::AgentJwt, AGENT_JWT_KEY_VERSION);
        let tokens = AgentTokens::new(&key, AGENT_JWT_KEY_VERSION);
        Self {
            inner: Arc::new(Inner {
                store,
                pool,
                clock,
                tokens,
                settings,
                audit,
            }),
        }
    }

    pub fn settings(&self) -> &AgentSettings {
        &self.inner.settings
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = Arc::clone(&self.inner);
        self.inner.pool.run(move || job(&inner)).await
    }
}

// The dashboard side.
impl AgentService {
    /// A single-use pairing code for a named device, valid for the configured days, and
    /// when it expires. The code is returned once; only its hash is kept.
    pub async fn issue_pairing_code(
        &self,
        user: UserId,
        workspace: WorkspaceId,
        device_name: String,
    ) -> Result<(Zeroizing<String>, i64)> {
        let name = DeviceName::parse(&device_name).ok_or(AgentError::InvalidDeviceName);
        self.run(move |inner| {
            let now = inner.clock.now();
            let issued = token::issue(wire::PAIRING_CODE_PREFIX);
            let expires_at = now + inner.settings.pairing_code_ttl_secs;
            inner.write(|tx| {
                let ws = authorize(tx, workspace, user, Action::ManageAgents)?;
                let pairing = repo::NewPairing {
                    hash: &issued.hash,
                    workspace,
                    device_name: &name?,
                    created_by: user,
                    membership: ws.membership,
                    now,
                    expires_at,
                };
                Ok(repo::insert_pairing_code(tx, &pairing)?)
            })?;
            let entry = Entry::new(Actor::user(user), Audited::PairingCodeIssued)
                .detail("expires_at", expires_at);
            inner.audit.record_after(Chain::Workspace(workspace), entry);
            tracing::info!(workspace = %workspace, "pairing code issued");
            Ok((issued.text, expires_at))
        })
        .await
    }

    pub async fn pending_pairings(
        &self,
        user: UserId,
        workspace: WorkspaceId,
    ) -> Result<Vec<PendingPairing>> {
        self.run(move |inner| {
            let now = inner.clock.now();
            inner.read(|c| {
                authorize(c, workspace, user, Action::ManageAgents)?;
                Ok(repo::pending_pairings(c, workspace, now)?)
            })
        })
        .await
    }

    pub async fn withdraw_pairing(
        &self,
        user: UserId,
        workspace: WorkspaceId,
        code: SecretHash,
    ) -> Result<()> {
        self.run(move |inner| {
            inner.write(|tx| {
                authorize(tx, workspace, user, Action::ManageAgents)?;
                match repo::withdraw_pairing(tx, workspace, &code)? {
                    true => Ok(()),
                    false => Err(AgentError::NotFound),
                }
            })?;
            let entry = Entry::new(Actor::user(user), Audited::PairingCodeWithdrawn);
            inner.audit.record_after(Chain::Workspace(workspace), entry);
            Ok(())
        })
        .await
    }

    /// The workspace's agents with what each has synced; any member may look.
    pub async fn agents(&self, user: UserId, workspace: WorkspaceId) -> Result<Vec<AgentView>> {
        self.run(move |inner| {
            let agents = inner.read(|c| {
                authorize(c, workspace, user, Action::View)?;
                Ok(repo::agents_of(c, workspace)?)
            })?;
            let totals: HashMap<String, (i64, i64)> = inner
                .store
                .workspace(workspace)?
                .read(|c| repo::sync_totals(c).map_err(AgentError::from))?
                .into_iter()
                .collect();
            Ok(agents
                .into_iter()
                .map(|agent| {
                    let (records_synced, values_masked) = totals
                        .get(&agent.id.to_string())
                        .copied()
                        .unwrap_or_default();
                    AgentView {
                        agent,
                        records_synced,
                        values_masked,
                    }
                })
                .collect())
        })
        .await
    }

    /// Revokes an agent of this workspace; its next request is refused.
    pub async fn revoke(&self, user: UserId, workspace: WorkspaceId, agent: AgentId) -> Result<()> {
        self.run(move |inner| {
            let now = inner.clock.now();
            inner.write(|tx| {
                authorize(tx, workspace, user, Action::ManageAgents)?;
                let found = repo::agent(tx, agent)?.filter(|a| a.workspace == workspace);
                if found.is_none() {
                    return Err(AgentError::NotFound);
                }
                repo::revoke(tx, agent, RevokeReason::Dashboard, now)?;
                Ok(())
            })?;
            let entry = Entry::new(Actor::user(user), Audited::AgentRevoked).target("agent", agent);
            inner.audit.record_after(Chain::Workspace(workspace), entry);
            tracing::info!(workspace = %workspace, agent = %agent, "agent revoked");
            Ok(())
        })
        .await
    }
}

// The agent API side.
impl AgentService {
    /// Trades a pairing code for an agent id, a refresh secret and an access token.
    pub async fn pair(&self, code: String, version: String) -> Result<Credentials> {
        if !token::well_formed(wire::PAIRING_CODE_PREFIX, &code) {
            return Err(AgentError::Unauthorized);
        }
        let version = AgentVersion::parse(&version).ok_or(AgentError::InvalidVersion)?;
        self.run(move |inner| {
            let now = inner.clock.now();
            let id = AgentId::new_random();
            let refresh = token::issue(wire::REFRESH_SECRET_PREFIX);
            let workspace = inner.write(|tx| {
                let code = repo::claim_pairing_code(tx, &SecretHash::of(&code), id, now)?
                    .ok_or(AgentError::Unauthorized)?;
                // The code is only as good as its issuer's standing now: still able to manage
                // agents, in the same membership that issued it. A refusal rolls the claim
                // back, so the code stays as it was.
                let issuer = authorize(tx, code.workspace, code.issued_by, Action::ManageAgents)
                    .map_err(|_| AgentError::Unauthorized)?;
                if code.membership != Some(issuer.membership) {
                    return Err(AgentError::Unauthorized);
                }
                let agent = Agent {
                    id,
                    workspace: code.workspace,
                    name: code.device_name,
                    paired_at: now,
                    last_seen_at: Some(now),
                    version: Some(version.as_str().to_string()),
                    revoked: None,
                    membership_ended: false,
                };
                repo::insert_agent(tx, &agent, code.issued_by, issuer.membership)?;
                repo::insert_refresh_secret(tx, &refresh.hash, id, now)?;
                Ok(code.workspace)
            })?;
            let entry = Entry::new(Actor::agent(id), Audited::AgentPaired)
                .detail("version", version.as_str());
            inner.audit.record_after(Chain::Workspace(workspace), entry);
            tracing::info!(workspace = %workspace, agent = %id, "agent paired");
            inner.credentials(id, workspace, &refresh.text, now)
        })
        .await
    }

    /// Rotates the refresh secret. A secret presented a second time means a copy exists:
    /// the agent is revoked on the spot, unless it is the agent retrying a rotation whose
    /// answer it lost (moments ago, and the new secret never used). A secret presented
    /// with another agent's id is a copy too.
    pub async fn refresh(&self, agent_id: String, secret: String) -> Result<Credentials> {
        let agent_id: AgentId = agent_id.parse().map_err(|_| AgentError::Unauthorized)?;
        if !token::well_formed(wire::REFRESH_SECRET_PREFIX, &secret) {
            return Err(AgentError::Unauthorized);
        }
        self.run(move |inner| {
            let now = inner.clock.now();
            let next = token::issue(wire::REFRESH_SECRET_PREFIX);
            let presented = SecretHash::of(&secret);
            let outcome = inner.write(|tx| {
                let copied_from = match repo::refresh_secret(tx, &presented)? {
                    RefreshSecret::Unknown => return Err(AgentError::Unauthorized),
                    RefreshSecret::Fresh(owner) if owner == agent_id => None,
                    RefreshSecret::Used {
                        agent,
                        used_at,
                        successor_unused: true,
                    } if agent == agent_id && now - used_at <= REFRESH_RETRY_SECS => None,
                    RefreshSecret::Fresh(owner) | RefreshSecret::Used { agent: owner, .. } => {
                        Some(owner)
                    }
                };
                if let Some(owner) = copied_from {
                    let revoked = repo::revoke(tx, owner, RevokeReason::RefreshReuse, now)?;
                    let workspace = repo::agent(tx, owner)?.map(|a| a.workspace);
                    return Ok(Err((owner, revoked.then_some(workspace).flatten())));
                }
                let agent = active_agent(tx, agent_id)?;
                repo::rotate_refresh_secret(tx, &presented, &next.hash, agent_id, now)?;
                repo::touch(tx, agent_id, now, None)?;
                Ok(Ok(agent.workspace))
            })?;
            match outcome {
                Ok(workspace) => inner.credentials(agent_id, workspace, &next.text, now),
                Err((owner, newly_revoked_in)) => {
                    if let Some(workspace) = newly_revoked_in {
                        tracing::warn!(agent = %owner, "refresh secret reused; agent revoked");
                        // Whoever presented it holds a copy: the presenter is not known.
                        let entry = Entry::new(Actor::anonymous(), Audited::AgentRefreshReused)
                            .target("agent", owner);
                        inner.audit.record_after(Chain::Workspace(workspace), entry);
                    }
                    Err(AgentError::Unauthorized)
                }
            }
        })
        .await
    }

    /// Verifies an access token and that its agent is still paired with the workspace it
    /// names, not revoked, and its membership not ended: each takes effect on the very next
    /// request.
    pub async fn authenticate(&self, bearer: String) -> Result<AuthenticatedAgent> {
        let now = self.inner.clock.now();
        let claims = self
            .inner
            .tokens
            .verify(&bearer, now)
            .map_err(|_| AgentError::Unauthorized)?;
        let id: AgentId = claims.sub.parse().map_err(|_| AgentError::Unauthorized)?;
        let workspace: WorkspaceId = claims
            .workspace
            .parse()
            .map_err(|_| AgentError::Unauthorized)?;
        self.run(move |inner| {
            let agent = inner.read(|c| active_agent(c, id))?;
            if agent.workspace != workspace {
                return Err(AgentError::Unauthorized);
            }
            Ok(AuthenticatedAgent { id, workspace })
        })
        .await
    }

    pub async fn policy(&self, agent: AuthenticatedAgent) -> Result<wire::Policy> {
        self.run(move |inner| {
            let policy = inner.workspace_policy(agent.workspace)?;
            inner.seen(agent.id, None)?;
            Ok(wire::Policy {
                version: policy.version(),
                require_redaction: policy.require_redaction,
                rules: policy.rules.iter().map(PolicyRule::from).collect(),
                max_batch_records: inner.settings.max_batch_records,
                max_batch_bytes: inner.settings.max_batch_bytes,
                max_record_bytes: inner.settings.records.limits.max_record_bytes,
                max_fields: inner.settings.records.limits.max_fields,
                collection_pattern: inner.settings.records.collection_pattern().to_string(),
            })
        })
        .await
    }

    /// Applies a batch in one transaction, committed before this returns. A batch sent
    /// again under the same key gets the stored result and writes nothing.
    pub async fn sync(&self, agent: AuthenticatedAgent, batch: SyncBatch) -> Result<SyncResult> {
        self.run(move |inner| {
            let settings = &inner.settings;
            let mut batch =
                sync::parse_batch(batch, &settings.records, settings.max_batch_records)?;
            let db = inner.store.workspace(agent.workspace)?;
            let key = batch.idempotency_key.clone();
            if let Some(stored) = db.read(|c| replayed(c, agent.id, &key, &batch.request_hash))? {
                inner.seen(agent.id, None)?;
                return Ok(stored);
            }
            let policy = db.read(|c| policy::load(c).map_err(AgentError::from))?;
            match &batch.redaction {
                None if policy.require_redaction => return Err(AgentError::RedactionRequired),
                Some(signal) if signal.policy_version != policy.version() => {
                    return Err(AgentError::PolicyChanged);
                }
                _ => {}
            }
            let backstop =
                sync::backstop(&mut batch.changes, &policy.masker()?, &settings.records)?;
            let redacted_on_device = batch
                .redaction
                .as_ref()
                .map(|r| r.counts.clone())
                .unwrap_or_default();
            let now = inner.clock.now();
            let stored = db.write(|tx| {
                // Checked again under the write lock: the same batch may have raced in, or
                // the rules changed since they were applied above.
                if let Some(stored) = replayed(tx, agent.id, &key, &batch.request_hash)? {
                    return Ok(stored);
                }
                if policy::load(tx)?.version() != policy.version() {
                    return Err(AgentError::PolicyChanged);
                }
                let shown = ShownWriter::open(tx)?;
                let (upserted, deleted) = repo::apply_changes(tx, &shown, &batch.changes, now)?;
                let result = SyncResult {
                    upserted,
                    deleted,
                    redacted_on_device,
                    backstop,
                };
                let record = repo::BatchRecord {
                    agent: agent.id,
                    key: &key,
                    request_hash: &batch.request_hash,
                    result: &result,
                    now,
                };
                repo::store_batch(tx, &record)?;
                Ok(result)
            })?;
            inner.seen(agent.id, None)?;
            let caught: usize = stored.backstop.values().sum();
            tracing::info!(
                workspace = %agent.workspace, agent = %agent.id,
                upserted = stored.upserted, deleted = stored.deleted, backstop_caught = caught,
                "sync batch committed"
            );
            Ok(stored)
        })
        .await
    }

    pub async fn heartbeat(&self, agent: AuthenticatedAgent, version: String) -> Result<()> {
        let version = AgentVersion::parse(&version).ok_or(AgentError::InvalidVersion)?;
        self.run(move |inner| inner.seen(agent.id, Some(version.as_str())))
            .await
    }
}

/// The stored result of an earlier batch with this key; an error if the key was used for
/// a different batch.
fn replayed(
    conn: &Connection,
    agent: AgentId,
    key: &str,
    request_hash: &[u8; 32],
) -> Result<Option<SyncResult>> {
    match repo::stored_batch(conn, agent, key)? {
        None => Ok(None),
        Some((hash, result)) if hash == *request_hash => Ok(Some(serde_json::from_str(&result)?)),
        Some(_) => Err(AgentError::IdempotencyKeyReused),
    }
}

/// The agent, if it is neither revoked nor left behind by the end of the membership it was
/// paired in.
fn active_agent(conn: &Connection, id: AgentId) -> Result<Agent> {
    repo::agent(conn, id)?
        .filter(Agent::is_active)
        .ok_or(AgentError::Unauthorized)
}

impl Inner {
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.store.control().read(f)
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.store.control().write(f)
    }

    fn credentials(
        &self,
        agent: AgentId,
        workspace: WorkspaceId,
        refresh_secret: &str,
        now: i64,
    ) -> Result<Credentials> {
        let (access_token, _) = self
            .tokens
            .issue(&agent.to_string(), &workspace.to_string(), now)
            .map_err(|_| AgentError::Unauthorized)?;
        Ok(Credentials {
            agent_id: agent.to_string(),
            workspace_id: workspace.to_string(),
            refresh_secret: refresh_secret.to_string(),
            access_token,
            expires_in: ACCESS_TOKEN_TTL_SECS,
        })
    }

    fn workspace_policy(&self, workspace: WorkspaceId) -> Result<policy::Policy> {
        self.store
            .workspace(workspace)?
            .read(|c| policy::load(c).map_err(AgentError::from))
    }

    fn seen(&self, agent: AgentId, version: Option<&str>) -> Result<()> {
        let now = self.clock.now();
        self.write(|tx| Ok(repo::touch(tx, agent, now, version)?))
    }
}
