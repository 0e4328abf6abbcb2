//! Accounts and the identities OpenID Connect providers vouch for: signing in with one,
//! linking one to the signed-in account, and unlinking it. An identity is linked only when
//! its owner asks while signed in; a provider sign-in never joins an existing account by its
//! email address.

use super::error::AuthError;
use super::identity_repo::{self, LinkedIdentity, Unlinked};
use super::model::{Email, User, UserId};
use super::repo;
use super::service::{AuthService, Device, Inner, NewSession};
use crate::audit::{Action, Actor, Entry};
use crate::config::SignupMode;
use crate::crypto::password::hash_password;
use crate::crypto::token;

/// An identity from an ID token that passed every check.
#[derive(Clone, Debug)]
pub struct ProviderIdentity {
    /// The provider's name in the config.
    pub provider: String,
    /// The provider's label, as the emails and pages name it.
    pub label: String,
    /// The provider's `sub`: stable, where an email address is not.
    pub subject: String,
    pub email: Option<Email>,
    pub email_verified: bool,
}

impl ProviderIdentity {
    fn verified_email(&self) -> Result<&Email, AuthError> {
        match (&self.email, self.email_verified) {
            (Some(email), true) => Ok(email),
            _ => Err(AuthError::ProviderEmailUnverified),
        }
    }
}

impl AuthService {
    /// Signs in the account the identity is linked to. An unlinked identity opens a new
    /// account (with no password) when sign-up is open and no account has its verified
    /// address; otherwise it is refused, and the refusal audited.
    pub async fn sign_in_with_provider(
        &self,
        identity: ProviderIdentity,
        device: Device,
    ) -> Result<NewSession, AuthError> {
        self.run(move |inner| {
            let linked = inner
                .read(|c| identity_repo::linked_user(c, &identity.provider, &identity.subject))?;
            // Argon2 runs outside the write lock, and only when an account may be made.
            let may_open = linked.is_none() && identity.verified_email().is_ok();
            let new_hash = may_open.then(unusable_password_hash);
            let result = inner.write(|tx| {
                let now = inner.clock.now();
                if let Some(user) =
                    identity_repo::linked_user(tx, &identity.provider, &identity.subject)?
                {
                    let user = repo::user_by_id(tx, user)?.ok_or(AuthError::SessionEnded)?;
                    let email = identity.email.as_ref().map(Email::as_str);
                    identity_repo::touch_identity(
                        tx,
                        &identity.provider,
                        &identity.subject,
                        email,
                        now,
                    )?;
                    return inner.start_session(
                        tx,
                        &user,
                        &device,
                        now,
                        "oidc",
                        Some(&identity.provider),
                    );
                }
                let email = identity.verified_email()?;
                if repo::user_by_email(tx, email)?.is_some() {
                    return Err(AuthError::ProviderAccountExists);
                }
                if inner.settings.signup != SignupMode::Open || repo::count_users(tx)? == 0 {
                    return Err(AuthError::SignupClosed);
                }
                let user = User {
                    id: UserId::new_random(),
                    email: email.clone(),
                    password_hash: new_hash.unwrap_or_else(unusable_password_hash),
                    has_password: false,
                    email_verified: true,
                    mfa_enabled: false,
                    closes_at: None,
                };
                repo::insert_user(tx, &user, now)?;
                inner.audit_account_created(tx, &user, Actor::user(user.id), "oidc")?;
                inner.link_identity(tx, &user, &identity, now)?;
                inner.start_session(tx, &user, &device, now, "oidc", Some(&identity.provider))
            });
            if let Err(e) = &result
                && let Some(reason) = refusal_reason(e)
            {
                inner.audit_failed_sign_in(None, reason)?;
            }
            result
        })
        .await
    }

    /// Links the identity to the signed-in account, which asked for it, when the provider
    /// has verified its email address. The account's owner is emailed about it.
    pub async fn link_provider(
        &self,
        user: UserId,
        identity: ProviderIdentity,
    ) -> Result<(), AuthError> {
        self.run(move |inner| {
            identity.verified_email()?;
            let linked = inner.write(|tx| {
                match identity_repo::linked_user(tx, &identity.provider, &identity.subject)? {
                    Some(owner) if owner == user => return Ok(None),
                    Some(_) => return Err(AuthError::IdentityLinkedElsewhere),
                    None => {}
                }
                let account = repo::user_by_id(tx, user)?.ok_or(AuthError::SessionEnded)?;
                inner.link_identity(tx, &account, &identity, inner.clock.now())?;
                Ok(Some(account))
            })?;
            if let Some(account) = linked {
                let body = format!(
                    "Signing in with {} was added to your Strongbox account. If you did not \
                     do this, remove it under Account, sign out everywhere and change your \
                     password.\n",
                    identity.label
                );
                inner.notify(&account, "A sign-in method was added to your account", body);
            }
            Ok(())
        })
        .await
    }

    /// Unlinks the account's identity at `provider`, unless it is the last way in.
    pub async fn unlink_provider(&self, user: UserId, provider: String) -> Result<(), AuthError> {
        self.run(move |inner| {
            inner.write(
                |tx| match identity_repo::unlink_unless_last(tx, user, &provider)? {
                    Unlinked::Removed => {
                        let entry = Entry::new(Actor::user(user), Action::SignInMethodUnlinked)
                            .detail("provider", provider.as_str());
                        inner.audit(tx, entry)
                    }
                    Unlinked::NotLinked => Ok(()),
                    Unlinked::LastWayIn => Err(AuthError::LastSignInMethod),
                },
            )
        })
        .await
    }

    pub async fn linked_providers(&self, user: UserId) -> Result<Vec<LinkedIdentity>, AuthError> {
        self.run(move |inner| inner.read(|c| identity_repo::identities_of(c, user)))
            .await
    }
}

impl Inner {
    fn link_identity(
        &self,
        tx: &rusqlite::Transaction<'_>,
        user: &User,
        identity: &ProviderIdentity,
        now: i64,
    ) -> Result<(), AuthError> {
        let email = identity.email.as_ref().map(Email::as_str);
        if !identity_repo::link(
            tx,
            &identity.provider,
            &identity.subject,
            user.id,
            email,
            now,
        )? {
            return Err(AuthError::ProviderAlreadyLinked);
        }
        let entry = Entry::new(Actor::user(user.id), Action::SignInMethodLinked)
            .detail("provider", identity.provider.as_str());
        self.audit(tx, entry)
    }
}

/// The hash of a random value nobody keeps: password sign-in to an account made by a
/// provider fails, and costs what it costs for any other account.
fn unusable_password_hash() -> String {
    hash_password(&token::issue("unusable-").text)
}

/// The audit reason for a provider sign-in refused on the account side.
fn refusal_reason(e: &AuthError) -> Option<&'static str> {
    match e {
        AuthError::ProviderEmailUnverified => Some("provider_email_unverified"),
        AuthError::ProviderAccountExists => Some("provider_account_exists"),
        AuthError::SignupClosed => Some("provider_signup_closed"),
        _ => None,
    }
}
