//! Account flows: first-run setup, sign-up, verification, sign-in, sessions, password reset
//! and magic links. Every method runs its database work on the blocking pool.

use std::sync::Arc;

use rusqlite::{Connection, Transaction};
use url::Url;
use zeroize::Zeroizing;

use super::error::AuthError;
use super::model::{Email, LinkPurpose, Session, SessionStage, User, UserId};
use super::password_policy::{MAX_PASSWORD_BYTES, check_new_password};
use super::repo;
use super::throttle::Throttles;
use crate::audit::{Action, Actor, AuditLog, Chain, Entry};
use crate::clock::SharedClock;
use crate::config::{Config, RateLimit, SignupMode};
use crate::crypto::password::{dummy_hash, hash_password, needs_rehash, verify_password};
use crate::crypto::token::{self, SecretHash};
use crate::mail::{Email as Message, Mailer};
use crate::request_meta::{RequestMeta, kept_user_agent};
use crate::store::{BlockingPool, Store, StoreError};

pub const SESSION_PREFIX: &str = "sbx_sess_";
/// How long an id rotated away still works, for requests already in flight with it.
const ROTATION_GRACE_SECS: i64 = 60;
/// How long a password-checked session may wait for its second factor.
pub const SECOND_FACTOR_WINDOW_SECS: i64 = 5 * 60;
/// Touching `last_seen_at` on every request would make every page view a write.
const TOUCH_EVERY_SECS: i64 = 60;

/// The device a session was started from, as shown in the session list.
#[derive(Clone, Debug)]
pub struct Device {
    pub ip: String,
    pub user_agent: String,
    /// The session this browser already holds, if any: a new sign-in replaces it.
    pub held_session: Option<SecretHash>,
}

impl Device {
    pub fn new(ip: impl ToString, user_agent: &str) -> Self {
        Self {
            ip: ip.to_string(),
            user_agent: kept_user_agent(user_agent),
            held_session: None,
        }
    }

    /// The same device, holding the session `hash`.
    pub fn holding(self, hash: Option<SecretHash>) -> Self {
        Self {
            held_session: hash,
            ..self
        }
    }
}

/// A session just created: the cookie value is shown to the browser once. When the user
/// has a second factor, the session is only good for entering it.
pub struct NewSession {
    pub token: Zeroizing<String>,
    pub user: User,
    pub needs_second_factor: bool,
}

/// A valid session and its user; `renewed_token` is set when the id was just rotated.
pub struct Authenticated {
    pub user: User,
    pub session: Session,
    pub renewed_token: Option<Zeroizing<String>>,
}

#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub idle_timeout_secs: i64,
    pub absolute_timeout_secs: i64,
    pub rotate_after_secs: i64,
    pub signup: SignupMode,
    pub public_url: Url,
    pub per_account: RateLimit,
}

impl From<&Config> for AuthSettings {
    fn from(c: &Config) -> Self {
        Self {
            idle_timeout_secs: i64::from(c.sessions.idle_timeout_minutes) * 60,
            absolute_timeout_secs: i64::from(c.sessions.absolute_timeout_hours) * 3600,
            rotate_after_secs: i64::from(c.sessions.rotate_after_minutes) * 60,
            signup: c.accounts.signup,
            public_url: c.public_url.clone(),
            per_account: c.rate_limits.account,
        }
    }
}

#[derive(Clone)]
pub struct AuthService {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    store: Arc<Store>,
    pool: BlockingPool,
    pub(super) clock: SharedClock,
    mailer: Arc<Mailer>,
    pub(super) settings: AuthSettings,
    pub(super) throttles: Throttles,
    audit: AuditLog,
}

impl AuthService {
    pub fn new(
        store: Arc<Store>,
        pool: BlockingPool,
        clock: SharedClock,
        mailer: Arc<Mailer>,
        settings: AuthSettings,
        audit: AuditLog,
    ) -> Self {
        let throttles = Throttles::new(settings.per_account);
        Self {
            inner: Arc::new(Inner {
                store,
                pool,
                clock,
                mailer,
                settings,
                throttles,
                audit,
            }),
        }
    }

    pub(super) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Inner) -> Result<T, AuthError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let inner = Arc::clone(&self.inner);
        self.inner.pool.run(move || job(&inner)).await
    }

    pub(super) fn throttles(&self) -> &Throttles {
        &self.inner.throttles
    }

    /// Forgets accounts whose attempt budget is full again, bounding memory.
    pub fn forget_idle_accounts(&self) {
        self.inner.throttles.forget_idle();
    }

    /// While no account exists: a fresh one-time link that creates the first owner (older
    /// setup links stop working). Once an owner exists: `None`.
    pub async fn first_run_setup_link(&self) -> Result<Option<Zeroizing<String>>, AuthError> {
        self.run(|inner| {
            let now = inner.clock.now();
            inner.write(|tx| {
                if repo::count_users(tx)? > 0 {
                    return Ok(None);
                }
                let issued = repo::replace_link(tx, LinkPurpose::Setup, None, now)?;
                Ok(Some(inner.link_url("setup", &issued.text)))
            })
        })
        .await
    }

    /// Whether a link is valid right now, without using it: for the page that asks the
    /// person to confirm (email scanners follow links; only the confirming POST uses them).
    pub async fn link_is_usable(
        &self,
        purpose: LinkPurpose,
        link: String,
    ) -> Result<bool, AuthError> {
        if !token::well_formed(purpose.prefix(), &link) {
            return Ok(false);
        }
        self.run(move |inner| {
            let hash = SecretHash::of(&link);
            inner.read(|c| {
                // A setup link is spent, in effect, once any account exists.
                let setup_done = purpose == LinkPurpose::Setup && repo::count_users(c)? > 0;
                Ok(!setup_done && repo::link_is_usable(c, &hash, purpose, inner.clock.now())?)
            })
        })
        .await
    }

    /// Creates the first owner from the setup link and signs them in.
    pub async fn complete_setup(
        &self,
        link: String,
        email: String,
        password: Zeroizing<String>,
        device: Device,
    ) -> Result<NewSession, AuthError> {
        let email = Email::parse(&email).ok_or(AuthError::InvalidEmail)?;
        check_new_password(&password)?;
        if !token::well_formed(LinkPurpose::Setup.prefix(), &link) {
            return Err(AuthError::LinkInvalid);
        }
        self.run(move |inner| {
            let password_hash = hash_password(&password);
            let now = inner.clock.now();
            let user = User {
                id: UserId::new_random(),
                email,
                password_hash,
                has_password: true,
                email_verified: false,
                mfa_enabled: false,
                closes_at: None,
            };
            let session = inner.write(|tx| {
                let hash = SecretHash::of(&link);
                if repo::consume_link(tx, &hash, LinkPurpose::Setup, now)?.is_none()
                    || repo::count_users(tx)? > 0
                {
                    return Err(AuthError::LinkInvalid);
                }
                repo::insert_user(tx, &user, now)?;
                inner.audit_account_created(tx, &user, Actor::user(user.id), "setup")?;
                inner.start_session(tx, &user, &device, now, "setup", None)
            })?;
            inner.send_link(&user, LinkPurpose::Verify)?;
            tracing::info!(user = %user.id, "first owner created");
            Ok(session)
        })
        .await
    }

    /// Opens an account when sign-up is open. The answer comes before any account is
    /// looked up, and the same for every address: an existing account's owner gets an
    /// email saying so, a new address a verification link, both from the background.
    pub async fn sign_up(
        &self,
        email: String,
        password: Zeroizing<String>,
    ) -> Result<(), AuthError> {
        let email = Email::parse(&email).ok_or(AuthError::InvalidEmail)?;
        check_new_password(&password)?;
        if self.inner.settings.signup != SignupMode::Open || !self.has_owner().await? {
            return Err(AuthError::SignupClosed);
        }
        self.in_background("sign-up", move |inner| {
            let password_hash = hash_password(&password);
            let now = inner.clock.now();
            let user = User {
                id: UserId::new_random(),
                email,
                password_hash,
                has_password: true,
                email_verified: false,
                mfa_enabled: false,
                closes_at: None,
            };
            let existing = inner.write(|tx| {
                let existing = repo::user_by_email(tx, &user.email)?;
                if existing.is_none() {
                    repo::insert_user(tx, &user, now)?;
                    inner.audit_account_created(tx, &user, Actor::anonymous(), "sign_up")?;
                }
                Ok(existing)
            })?;
            match existing {
                Some(existing) => inner.send_already_registered(&existing),
                None => inner.send_link(&user, LinkPurpose::Verify)?,
            }
            Ok(())
        });
        Ok(())
    }

    /// Whether the first owner exists; until then only the setup link creates accounts.
    async fn has_owner(&self) -> Result<bool, AuthError> {
        self.run(|inner| Ok(inner.read(repo::count_users)? > 0))
            .await
    }

    /// Runs account work after the response has gone, logging (not reporting) failures.
    fn in_background(
        &self,
        task: &'static str,
        job: impl FnOnce(&Inner) -> Result<(), AuthError> + Send + 'static,
    ) {
        let service = self.clone();
        let request = RequestMeta::current().unwrap_or_default();
        tokio::spawn(request.scope(async move {
            if let Err(e) = service.run(job).await {
                let error = crate::telemetry::error_chain(&e);
                tracing::error!(task, error = %error, "background account task failed");
            }
        }));
    }

    /// Creates the account an invitation was sent to and signs it in, with `claim` (the
    /// workspace side taking up the invitation) in the same transaction: either the person
    /// has an account *and* the membership, or neither. The invitation link proved the
    /// mailbox, so the address counts as verified.
    pub async fn create_invited_account<T, E>(
        &self,
        email: Email,
        password: Zeroizing<String>,
        device: Device,
        claim: impl FnOnce(&Transaction<'_>, &User) -> Result<T, E> + Send + 'static,
    ) -> Result<(NewSession, T), E>
    where
        T: Send + 'static,
        E: From<AuthError> + From<StoreError> + Send + 'static,
    {
        check_new_password(&password).map_err(AuthError::from)?;
        let inner = Arc::clone(&self.inner);
        self.inner
            .pool
            .run(move || {
                let password_hash = hash_password(&password);
                let now = inner.clock.now();
                let user = User {
                    id: UserId::new_random(),
                    email,
                    password_hash,
                    has_password: true,
                    email_verified: true,
                    mfa_enabled: false,
                    closes_at: None,
                };
                inner.store.control().write(|tx| {
                    if repo::user_by_email(tx, &user.email)
                        .map_err(AuthError::from)?
                        .is_some()
                    {
                        return Err(AuthError::AccountExists.into());
                    }
                    repo::insert_user(tx, &user, now).map_err(AuthError::from)?;
                    let claimed = claim(tx, &user)?;
                    inner.audit_account_created(tx, &user, Actor::user(user.id), "invitation")?;
                    let session =
                        inner.start_session(tx, &user, &device, now, "invitation", None)?;
                    Ok((session, claimed))
                })
            })
            .await
    }

    pub async fn verify_email(&self, link: String) -> Result<(), AuthError> {
        let user = self.consume_user_link(LinkPurpose::Verify, link).await?;
        self.run(move |inner| {
            let now = inner.clock.now();
            inner.write(|tx| {
                repo::mark_email_verified(tx, user, now)?;
                inner.audit(tx, Entry::new(Actor::user(user), Action::EmailVerified))
            })
        })
        .await
    }

    pub async fn sign_in(
        &self,
        email: String,
        password: Zeroizing<String>,
        device: Device,
    ) -> Result<NewSession, AuthError> {
        // Malformed input gets the same answer as a wrong password.
        let email = Email::parse(&email).ok_or(AuthError::InvalidCredentials)?;
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(AuthError::InvalidCredentials);
        }
        self.inner.throttles.sign_in(&email, &device.ip)?;
        self.run(move |inner| {
            let found = inner.read(|c| repo::user_by_email(c, &email))?;
            // An unknown email costs the same Argon2 work as a known one.
            let stored = found
                .as_ref()
                .map_or(dummy_hash(), |u| u.password_hash.as_str());
            let password_ok = verify_password(&password, stored);
            let user = match (found, password_ok) {
                (Some(user), true) => user,
                (found, _) => {
                    inner.audit_failed_sign_in(found.map(|u| u.id), "credentials")?;
                    return Err(AuthError::InvalidCredentials);
                }
            };
            if !user.email_verified {
                inner.send_link(&user, LinkPurpose::Verify)?;
                inner.audit_failed_sign_in(Some(user.id), "email_unverified")?;
                return Err(AuthError::EmailNotVerified);
            }
            let now = inner.clock.now();
            inner.write(|tx| {
                if needs_rehash(&user.password_hash) {
                    repo::set_password_hash(tx, user.id, &hash_password(&password))?;
                }
                inner.start_session(tx, &user, &device, now, "password", None)
            })
        })
        .await
    }

    /// Resolves a session cookie, enforcing the idle and absolute timeouts (or, for a session
    /// awaiting its second factor, a five-minute window) and rotating the id when it is
    /// due. An ended session is deleted.
    pub async fn authenticate(&self, cookie: String) -> Result<Authenticated, AuthError> {
        if !token::well_formed(SESSION_PREFIX, &cookie) {
            return Err(AuthError::SessionEnded);
        }
        self.run(move |inner| {
            let hash = SecretHash::of(&cookie);
            let now = inner.clock.now();
            // Read first: most requests change nothing and need no write lock.
            let (found, in_flight) = inner.read(|c| {
                Ok(match repo::session_by_hash(c, &hash)? {
                    Some(session) => (Some(session), false),
                    None => {
                        let since = now - ROTATION_GRACE_SECS;
                        (repo::session_by_previous_hash(c, &hash, since)?, true)
                    }
                })
            })?;
            let mut session = found.ok_or(AuthError::SessionEnded)?;
            if inner.has_ended(&session, now) {
                inner.write(|tx| Ok(repo::delete_session(tx, &session.id_hash)?))?;
                return Err(AuthError::SessionEnded);
            }
            let user = inner
                .read(|c| repo::user_by_id(c, session.user_id))?
                .ok_or(AuthError::SessionEnded)?;
            let mut renewed_token = None;
            // A session awaiting its second factor is neither rotated nor touched; a request
            // that arrived with the id just rotated away is served but renews nothing.
            if session.stage == SessionStage::Active && !in_flight {
                if now - session.rotated_at >= inner.settings.rotate_after_secs {
                    let issued = token::issue(SESSION_PREFIX);
                    let rotated = inner.write(|tx| {
                        let stage = SessionStage::Active;
                        Ok(repo::rotate_session(
                            tx,
                            &hash,
                            &issued.hash,
                            stage,
                            repo::OldId::Grace,
                            now,
                        )?)
                    })?;
                    // Another request may have rotated it first; then the browser already
                    // has the new id from that response.
                    if rotated {
                        session.id_hash = issued.hash;
                        session.rotated_at = now;
                        session.last_seen_at = now;
                        renewed_token = Some(issued.text);
                    }
                } else if now - session.last_seen_at >= TOUCH_EVERY_SECS {
                    inner.write(|tx| Ok(repo::touch_session(tx, &hash, now)?))?;
                    session.last_seen_at = now;
                }
            }
            Ok(Authenticated {
                user,
                session,
                renewed_token,
            })
        })
        .await
    }

    /// Deletes the session row: the cookie is worthless from now on.
    pub async fn sign_out(&self, session: &Session) -> Result<(), AuthError> {
        let (user, id_hash) = (session.user_id, session.id_hash);
        self.run(move |inner| {
            inner.write(|tx| {
                repo::delete_session(tx, &id_hash)?;
                inner.audit(tx, Entry::new(Actor::user(user), Action::SignedOut))
            })
        })
        .await
    }

    /// Ends every session of the user, this one included.
    pub async fn sign_out_everywhere(&self, user: UserId) -> Result<usize, AuthError> {
        self.run(move |inner| {
            inner.write(|tx| {
                let ended = repo::delete_sessions_of(tx, user, None)?;
                let entry = Entry::new(Actor::user(user), Action::SignedOutEverywhere)
                    .detail("sessions_ended", ended);
                inner.audit(tx, entry)?;
                Ok(ended)
            })
        })
        .await
    }

    pub async fn sessions(&self, user: UserId) -> Result<Vec<Session>, AuthError> {
        self.run(move |inner| inner.read(|c| repo::sessions_of(c, user)))
            .await
    }

    /// Changes the password after checking the current one; every other session ends.
    pub async fn change_password(
        &self,
        user: User,
        session: SecretHash,
        current: Zeroizing<String>,
        new: Zeroizing<String>,
    ) -> Result<(), AuthError> {
        check_new_password(&new)?;
        self.inner.throttles.reauth(user.id)?;
        self.run(move |inner| {
            if !verify_password(&current, &user.password_hash) {
                return Err(AuthError::InvalidCredentials);
            }
            let hash = hash_password(&new);
            inner.write(|tx| {
                repo::set_password_hash(tx, user.id, &hash)?;
                let ended = repo::delete_sessions_of(tx, user.id, Some(&session))?;
                let entry = Entry::new(Actor::user(user.id), Action::PasswordChanged)
                    .detail("other_sessions_ended", ended);
                inner.audit(tx, entry)
            })
        })
        .await
    }

    /// Closes the account after checking the password and `guard` (run in the same
    /// transaction): every session ends, and the account is deleted after `hold_secs`
    /// unless its owner signs in and cancels.
    pub async fn close_account<E>(
        &self,
        user: User,
        password: Zeroizing<String>,
        hold_secs: i64,
        guard: impl FnOnce(&Transaction<'_>) -> Result<(), E> + Send + 'static,
    ) -> Result<i64, E>
    where
        E: From<AuthError> + From<StoreError> + Send + 'static,
    {
        self.inner.throttles.reauth(user.id)?;
        let inner = Arc::clone(&self.inner);
        self.inner
            .pool
            .run(move || {
                if !verify_password(&password, &user.password_hash) {
                    return Err(AuthError::InvalidCredentials.into());
                }
                let closes_at = inner.clock.now() + hold_secs;
                inner.store.control().write(|tx| {
                    guard(tx)?;
                    repo::set_account_closes_at(tx, user.id, Some(closes_at))
                        .map_err(AuthError::from)?;
                    repo::delete_sessions_of(tx, user.id, None).map_err(AuthError::from)?;
                    let entry = Entry::new(Actor::user(user.id), Action::AccountClosureRequested)
                        .detail("closes_at", closes_at);
                    inner.audit(tx, entry)?;
                    Ok(closes_at)
                })
            })
            .await
    }

    pub async fn reopen_account(&self, user: UserId) -> Result<(), AuthError> {
        self.run(move |inner| {
            inner.write(|tx| {
                repo::set_account_closes_at(tx, user, None)?;
                let entry = Entry::new(Actor::user(user), Action::AccountClosureCancelled);
                inner.audit(tx, entry)
            })
        })
        .await
    }

    /// Emails a reset link when the account exists; answers the same either way.
    pub async fn request_password_reset(&self, email: String) -> Result<(), AuthError> {
        self.request_link(email, LinkPurpose::Reset).await
    }

    /// Emails a sign-in link when the account exists; answers the same either way.
    pub async fn request_magic_link(&self, email: String) -> Result<(), AuthError> {
        self.request_link(email, LinkPurpose::Magic).await
    }

    /// Sets a new password from a reset link and ends every session of the account.
    pub async fn reset_password(
        &self,
        link: String,
        new: Zeroizing<String>,
    ) -> Result<(), AuthError> {
        check_new_password(&new)?;
        let user = self.consume_user_link(LinkPurpose::Reset, link).await?;
        self.run(move |inner| {
            let hash = hash_password(&new);
            let now = inner.clock.now();
            inner.write(|tx| {
                repo::set_password_hash(tx, user, &hash)?;
                // Whoever reset it reads that mailbox, so the address is verified too.
                repo::mark_email_verified(tx, user, now)?;
                let ended = repo::delete_sessions_of(tx, user, None)?;
                let entry = Entry::new(Actor::user(user), Action::PasswordReset)
                    .detail("sessions_ended", ended);
                inner.audit(tx, entry)
            })
        })
        .await
    }

    pub async fn sign_in_with_magic_link(
        &self,
        link: String,
        device: Device,
    ) -> Result<NewSession, AuthError> {
        let user = self.consume_user_link(LinkPurpose::Magic, link).await?;
        self.run(move |inner| {
            let now = inner.clock.now();
            inner.write(|tx| {
                repo::mark_email_verified(tx, user, now)?;
                let user = repo::user_by_id(tx, user)?.ok_or(AuthError::LinkInvalid)?;
                inner.start_session(tx, &user, &device, now, "magic_link", None)
            })
        })
        .await
    }

    /// Answers at once, the same for every address; the link is made and sent in the
    /// background when the address has an account.
    async fn request_link(&self, email: String, purpose: LinkPurpose) -> Result<(), AuthError> {
        let Some(email) = Email::parse(&email) else {
            return Ok(());
        };
        self.inner.throttles.links(&email)?;
        self.in_background("email link", move |inner| {
            if let Some(user) = inner.read(|c| repo::user_by_email(c, &email))? {
                inner.send_link(&user, purpose)?;
            }
            Ok(())
        });
        Ok(())
    }

    async fn consume_user_link(
        &self,
        purpose: LinkPurpose,
        link: String,
    ) -> Result<UserId, AuthError> {
        if !token::well_formed(purpose.prefix(), &link) {
            return Err(AuthError::LinkInvalid);
        }
        self.run(move |inner| {
            let hash = SecretHash::of(&link);
            let now = inner.clock.now();
            let used = inner.write(|tx| Ok(repo::consume_link(tx, &hash, purpose, now)?))?;
            used.flatten().ok_or(AuthError::LinkInvalid)
        })
        .await
    }
}

impl Inner {
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, AuthError> {
        self.store.control().read(|c| f(c).map_err(AuthError::from))
    }

    pub(super) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, AuthError>,
    ) -> Result<T, AuthError> {
        self.store.control().write(f)
    }

    /// Whether the session is past its idle or absolute timeout (or, waiting for a second
    /// factor, past its five minutes).
    fn has_ended(&self, session: &Session, now: i64) -> bool {
        match session.stage {
            SessionStage::Active => {
                now - session.last_seen_at >= self.settings.idle_timeout_secs
                    || now - session.created_at >= self.settings.absolute_timeout_secs
            }
            SessionStage::MfaPending => now - session.created_at >= SECOND_FACTOR_WINDOW_SECS,
        }
    }

    /// Appends to the system audit log in the caller's transaction.
    pub(super) fn audit(&self, tx: &Connection, entry: Entry) -> Result<(), AuthError> {
        Ok(self.audit.append(tx, Chain::System, entry)?)
    }

    /// A failed sign-in, in a transaction of its own (the attempt itself changed nothing).
    /// The account is named when it exists; the address tried is never stored.
    pub(super) fn audit_failed_sign_in(
        &self,
        user: Option<UserId>,
        reason: &'static str,
    ) -> Result<(), AuthError> {
        let mut entry =
            Entry::new(Actor::anonymous(), Action::SignInFailed).detail("reason", reason);
        if let Some(user) = user {
            entry = entry.target("user", user);
        }
        self.write(|tx| self.audit(tx, entry))
    }

    pub(super) fn audit_account_created(
        &self,
        tx: &Connection,
        user: &User,
        actor: Actor,
        method: &'static str,
    ) -> Result<(), AuthError> {
        let entry = Entry::new(actor, Action::AccountCreated)
            .target("user", user.id)
            .detail("method", method);
        self.audit(tx, entry)
    }

    /// A new session for a user who just proved who they are (by `method`): always a fresh
    /// id, so an id planted before sign-in (session fixation) is never promoted, and the
    /// session the browser held until now ends: its cookie is being replaced. Audited as a
    /// sign-in, or as one awaiting its second factor.
    pub(super) fn start_session(
        &self,
        tx: &Transaction<'_>,
        user: &User,
        device: &Device,
        now: i64,
        method: &'static str,
        provider: Option<&str>,
    ) -> Result<NewSession, AuthError> {
        if let Some(held) = &device.held_session {
            repo::delete_session(tx, held)?;
        }
        let issued = token::issue(SESSION_PREFIX);
        let stage = match user.mfa_enabled {
            true => SessionStage::MfaPending,
            false => SessionStage::Active,
        };
        let session = Session {
            id_hash: issued.hash,
            csrf_anchor: *crate::crypto::random_bytes::<32>(),
            user_id: user.id,
            stage,
            created_at: now,
            rotated_at: now,
            last_seen_at: now,
            ip: device.ip.clone(),
            user_agent: device.user_agent.clone(),
        };
        repo::insert_session(tx, &session)?;
        let action = match stage {
            SessionStage::Active => Action::SignInSucceeded,
            SessionStage::MfaPending => Action::SignInAwaitingSecondFactor,
        };
        let mut entry = Entry::new(Actor::user(user.id), action).detail("method", method);
        if let Some(provider) = provider {
            entry = entry.detail("provider", provider);
        }
        self.audit(tx, entry)?;
        Ok(NewSession {
            token: issued.text,
            user: user.clone(),
            needs_second_factor: stage == SessionStage::MfaPending,
        })
    }

    fn link_url(&self, path: &str, token: &str) -> Zeroizing<String> {
        let mut url = self.settings.public_url.clone();
        url.set_path(path);
        url.query_pairs_mut().append_pair("token", token);
        Zeroizing::new(url.to_string())
    }

    /// Issues a one-time link for `user` (retiring older ones of the same purpose) and
    /// emails it.
    fn send_link(&self, user: &User, purpose: LinkPurpose) -> Result<(), AuthError> {
        let now = self.clock.now();
        let issued = self.write(|tx| Ok(repo::replace_link(tx, purpose, Some(user.id), now)?))?;
        let (path, subject, action) = match purpose {
            LinkPurpose::Verify => (
                "verify",
                "Verify your email address",
                "verify your email address",
            ),
            LinkPurpose::Reset => (
                "reset-password",
                "Reset your password",
                "choose a new password",
            ),
            LinkPurpose::Magic => ("magic-link/confirm", "Your sign-in link", "sign in"),
            LinkPurpose::Setup => ("setup", "Set up Strongbox", "set up Strongbox"),
        };
        let url = self.link_url(path, &issued.text);
        let body = format!(
            "Open this link to {action}:\n\n{}\n\nIt works once and expires in {} minutes. \
             If you did not ask for it, ignore this email.\n",
            url.as_str(),
            purpose.ttl_seconds() / 60
        );
        self.notify(user, subject, body);
        Ok(())
    }

    /// Emails the account's owner.
    pub(super) fn notify(&self, user: &User, subject: &str, body: String) {
        self.mailer.send(Message {
            to: user.email.to_string(),
            subject: subject.into(),
            body,
        });
    }

    fn send_already_registered(&self, user: &User) {
        let mut url = self.settings.public_url.clone();
        url.set_path("forgot-password");
        let body = format!(
            "Someone tried to create a Strongbox account with this email address, which already \
             has one. If it was you, sign in, or reset your password at:\n\n{url}\n"
        );
        self.notify(user, "You already have a Strongbox account", body);
    }
}
