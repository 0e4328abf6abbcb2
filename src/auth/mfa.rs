//! Second-factor flows: enrolment, the sign-in challenge, backup codes, and turning the
//! factor off. Changing an enrolled factor asks for the password and a current code again.

use zeroize::Zeroizing;

use super::error::AuthError;
use super::model::{SessionStage, User, UserId};
use super::service::{AuthService, Inner, NewSession, SESSION_PREFIX};
use super::{repo, totp};
use crate::audit::{Action, Actor, Entry};
use crate::crypto::password::verify_password;
use crate::crypto::token::{self, SecretHash};

/// What the enrolment page shows: the QR code and the same secret as text.
pub struct Enrolment {
    pub secret_base32: Zeroizing<String>,
    pub qr_svg: String,
}

impl AuthService {
    /// Starts enrolment: stores a secret awaiting its first code, or keeps the one already
    /// waiting; refused while a factor is on.
    pub async fn begin_mfa_enrolment(&self, user: UserId) -> Result<(), AuthError> {
        self.run(move |inner| {
            inner.write(
                |tx| match repo::set_pending_totp(tx, user, &totp::new_secret())? {
                    true => Ok(()),
                    false => Err(AuthError::MfaAlreadyEnabled),
                },
            )
        })
        .await
    }

    /// The enrolment under way, if any: it only reads, so showing it changes nothing.
    pub async fn mfa_enrolment(&self, user: User) -> Result<Option<Enrolment>, AuthError> {
        self.run(move |inner| {
            let state = inner.read(|c| repo::totp_state(c, user.id))?;
            Ok(state.filter(|s| !s.enabled).map(|state| {
                let uri = totp::otpauth_uri(&state.secret, user.email.as_str());
                Enrolment {
                    secret_base32: totp::secret_base32(&state.secret),
                    qr_svg: totp::qr_svg(&uri).unwrap_or_default(),
                }
            }))
        })
        .await
    }

    /// Finishes enrolment with a first code; returns the backup codes, shown this once.
    pub async fn confirm_mfa_enrolment(
        &self,
        user: User,
        code: String,
    ) -> Result<Vec<Zeroizing<String>>, AuthError> {
        self.throttles().reauth(user.id)?;
        self.run(move |inner| {
            inner.write(|tx| {
                let state = repo::totp_state(tx, user.id)?.ok_or(AuthError::InvalidCode)?;
                if state.enabled {
                    return Err(AuthError::MfaAlreadyEnabled);
                }
                inner.accept_code(tx, user.id, &state.secret, &code)?;
                repo::enable_totp(tx, user.id, inner.clock.now())?;
                inner.audit(tx, Entry::new(Actor::user(user.id), Action::MfaEnabled))?;
                Ok(issue_backup_codes(tx, user.id)?)
            })
        })
        .await
    }

    /// New backup codes replace the old ones; needs the password and a current code.
    pub async fn regenerate_backup_codes(
        &self,
        user: User,
        password: Zeroizing<String>,
        code: String,
    ) -> Result<Vec<Zeroizing<String>>, AuthError> {
        self.throttles().reauth(user.id)?;
        self.run(move |inner| {
            inner.write(|tx| {
                inner.reauthenticate(tx, &user, &password, &code)?;
                let entry = Entry::new(Actor::user(user.id), Action::BackupCodesRegenerated);
                inner.audit(tx, entry)?;
                Ok(issue_backup_codes(tx, user.id)?)
            })
        })
        .await
    }

    /// Turns the second factor off; needs the password and a current code.
    pub async fn disable_mfa(
        &self,
        user: User,
        password: Zeroizing<String>,
        code: String,
    ) -> Result<(), AuthError> {
        self.throttles().reauth(user.id)?;
        self.run(move |inner| {
            inner.write(|tx| {
                inner.reauthenticate(tx, &user, &password, &code)?;
                repo::disable_totp(tx, user.id)?;
                inner.audit(tx, Entry::new(Actor::user(user.id), Action::MfaDisabled))
            })
        })
        .await
    }

    /// Completes a sign-in waiting for its second factor, with an authenticator code or a
    /// backup code. The session gets a new id: the pre-MFA one stops working.
    pub async fn complete_second_factor(
        &self,
        pending: SecretHash,
        user: User,
        client_ip: String,
        code: String,
    ) -> Result<NewSession, AuthError> {
        self.throttles().sign_in(&user.email, &client_ip)?;
        self.run(move |inner| {
            let now = inner.clock.now();
            let completed = inner.write(|tx| {
                let state = repo::totp_state(tx, user.id)?.ok_or(AuthError::MfaNotEnabled)?;
                let by_backup =
                    repo::consume_backup_code(tx, user.id, &totp::backup_code_hash(&code), now)?;
                if !by_backup {
                    inner.accept_code(tx, user.id, &state.secret, &code)?;
                }
                let issued = token::issue(SESSION_PREFIX);
                let (active, revoked) = (SessionStage::Active, repo::OldId::Revoked);
                if !repo::rotate_session(tx, &pending, &issued.hash, active, revoked, now)? {
                    return Err(AuthError::SessionEnded);
                }
                let factor = if by_backup { "backup_code" } else { "totp" };
                let entry = Entry::new(Actor::user(user.id), Action::SignInSucceeded)
                    .detail("second_factor", factor);
                inner.audit(tx, entry)?;
                Ok(NewSession {
                    token: issued.text,
                    user: user.clone(),
                    needs_second_factor: false,
                })
            });
            if let Err(AuthError::InvalidCode) = completed {
                inner.audit_failed_sign_in(Some(user.id), "second_factor")?;
            }
            completed
        })
        .await
    }
}

impl Inner {
    /// Accepts an authenticator code once: within one step of now and newer than the last
    /// code used.
    fn accept_code(
        &self,
        tx: &rusqlite::Connection,
        user: UserId,
        secret: &[u8],
        code: &str,
    ) -> Result<(), AuthError> {
        let step =
            totp::matching_step(secret, code, self.clock.now()).ok_or(AuthError::InvalidCode)?;
        if !repo::claim_totp_step(tx, user, step)? {
            return Err(AuthError::InvalidCode);
        }
        Ok(())
    }

    fn reauthenticate(
        &self,
        tx: &rusqlite::Connection,
        user: &User,
        password: &str,
        code: &str,
    ) -> Result<(), AuthError> {
        if !verify_password(password, &user.password_hash) {
            return Err(AuthError::InvalidCredentials);
        }
        let state = repo::totp_state(tx, user.id)?
            .filter(|s| s.enabled)
            .ok_or(AuthError::MfaNotEnabled)?;
        // Someone who lost their authenticator proves themselves with a backup code.
        let backup = totp::backup_code_hash(code);
        if repo::consume_backup_code(tx, user.id, &backup, self.clock.now())? {
            return Ok(());
        }
        self.accept_code(tx, user.id, &state.secret, code)
    }
}

fn issue_backup_codes(
    tx: &rusqlite::Connection,
    user: UserId,
) -> rusqlite::Result<Vec<Zeroizing<String>>> {
    let codes = totp::new_backup_codes();
    let hashes: Vec<SecretHash> = codes.iter().map(|c| c.hash).collect();
    repo::replace_backup_codes(tx, user, &hashes)?;
    Ok(codes.into_iter().map(|c| c.text).collect())
}
