//! Rows for OpenID Connect sign-in: logins in flight (state, nonce and PKCE verifier, bound
//! to one browser, single use) and the identities linked to accounts.

use rusqlite::{Connection, OptionalExtension, params};

use crate::auth::UserId;
use crate::crypto::token::SecretHash;

/// A sign-in sent to a provider, as stored when it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginStart {
    pub state: SecretHash,
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub browser: SecretHash,
    /// The signed-in person linking a provider, rather than signing in with it.
    pub link_user: Option<UserId>,
    pub next: String,
}

/// What the callback needs back from the start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingLogin {
    pub nonce: String,
    pub pkce_verifier: String,
    pub link_user: Option<UserId>,
    pub next: String,
}

pub fn insert_login(
    conn: &Connection,
    login: &LoginStart,
    now: i64,
    ttl_secs: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO oidc_logins (state_hash, provider, nonce, pkce_verifier, browser_hash,
                                  link_user_id, next, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            login.state.as_bytes(),
            login.provider,
            login.nonce,
            login.pkce_verifier,
            login.browser.as_bytes(),
            login.link_user.map(|u| u.to_string()),
            login.next,
            now,
            now + ttl_secs
        ],
    )?;
    Ok(())
}

/// Spends the login named by `state`, if it is unused, unexpired, for this provider and
/// back in the browser that started it. A second call with the same state gets nothing.
pub fn take_login(
    conn: &Connection,
    state: &SecretHash,
    provider: &str,
    browser: &SecretHash,
    now: i64,
) -> rusqlite::Result<Option<PendingLogin>> {
    conn.query_row(
        "UPDATE oidc_logins SET used_at = ?5
         WHERE state_hash = ?1 AND provider = ?2 AND browser_hash = ?3
           AND used_at IS NULL AND expires_at > ?4
         RETURNING nonce, pkce_verifier, link_user_id, next",
        params![state.as_bytes(), provider, browser.as_bytes(), now, now],
        |row| {
            let link_user: Option<String> = row.get(2)?;
            Ok(PendingLogin {
                nonce: row.get(0)?,
                pkce_verifier: row.get(1)?,
                link_user: link_user.and_then(|u| u.parse().ok()),
                next: row.get(3)?,
            })
        },
    )
    .optional()
}

/// Removes logins that expired, used or not; returns how many.
pub fn delete_expired_logins(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM oidc_logins WHERE expires_at <= ?1", [now])
}

/// The account an identity is linked to.
pub fn linked_user(
    conn: &Connection,
    provider: &str,
    subject: &str,
) -> rusqlite::Result<Option<UserId>> {
    let user: Option<String> = conn
        .query_row(
            "SELECT user_id FROM oidc_identities WHERE provider = ?1 AND subject = ?2",
            params![provider, subject],
            |row| row.get(0),
        )
        .optional()?;
    Ok(user.and_then(|u| u.parse().ok()))
}

/// Links an identity to an account; false when the identity or the account's link to this
/// provider already exists.
pub fn link(
    conn: &Connection,
    provider: &str,
    subject: &str,
    user: UserId,
    email: Option<&str>,
    now: i64,
) -> rusqlite::Result<bool> {
    let added = conn.execute(
        "INSERT INTO oidc_identities (provider, subject, user_id, email, linked_at)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        params![provider, subject, user.to_string(), email, now],
    )?;
    Ok(added == 1)
}

/// A linked identity, as account settings list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedIdentity {
    pub provider: String,
    pub email: Option<String>,
    pub linked_at: i64,
    pub last_used_at: Option<i64>,
}

pub fn identities_of(conn: &Connection, user: UserId) -> rusqlite::Result<Vec<LinkedIdentity>> {
    let mut stmt = conn.prepare(
        "SELECT provider, email, linked_at, last_used_at FROM oidc_identities
         WHERE user_id = ?1 ORDER BY provider",
    )?;
    stmt.query_map([user.to_string()], |row| {
        Ok(LinkedIdentity {
            provider: row.get(0)?,
            email: row.get(1)?,
            linked_at: row.get(2)?,
            last_used_at: row.get(3)?,
        })
    })?
    .collect()
}

pub fn touch_identity(
    conn: &Connection,
    provider: &str,
    subject: &str,
    email: Option<&str>,
    now: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE oidc_identities SET last_used_at = ?3, email = COALESCE(?4, email)
         WHERE provider = ?1 AND subject = ?2",
        params![provider, subject, now, email],
    )?;
    Ok(())
}

/// Unlinks the person's identity at `provider`, unless it is their last way to sign in (no
/// password and no other provider). Run it in the transaction that acts on the answer.
pub fn unlink_unless_last(
    conn: &Connection,
    user: UserId,
    provider: &str,
) -> rusqlite::Result<Unlinked> {
    let id = user.to_string();
    let (has_password, links, this_one): (bool, i64, bool) = conn.query_row(
        "SELECT u.has_password,
                (SELECT COUNT(*) FROM oidc_identities i WHERE i.user_id = u.id),
                EXISTS (SELECT 1 FROM oidc_identities i
                        WHERE i.user_id = u.id AND i.provider = ?2)
         FROM users u WHERE u.id = ?1",
        params![id, provider],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    if !this_one {
        return Ok(Unlinked::NotLinked);
    }
    if !has_password && links <= 1 {
        return Ok(Unlinked::LastWayIn);
    }
    conn.execute(
        "DELETE FROM oidc_identities WHERE user_id = ?1 AND provider = ?2",
        params![id, provider],
    )?;
    Ok(Unlinked::Removed)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unlinked {
    Removed,
    NotLinked,
    /// Refused: the account would have no way to sign in.
    LastWayIn,
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn control() -> (Connection, UserId) {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrate_control_for_tests(&mut conn);
        let user = UserId::new_random();
        conn.execute(
            "INSERT INTO users (id, email, password_hash, created_at) VALUES (?1, ?2, 'x', ?3)",
            params![user.to_string(), "ada@example.com", NOW],
        )
        .unwrap();
        (conn, user)
    }

    fn start(provider: &str, browser: &str) -> LoginStart {
        LoginStart {
            state: SecretHash::of("state-1"),
            provider: provider.into(),
            nonce: "nonce-1".into(),
            pkce_verifier: "verifier-1".into(),
            browser: SecretHash::of(browser),
            link_user: None,
            next: "/account".into(),
        }
    }

    #[test]
    fn a_login_is_taken_once_by_its_own_browser_for_its_provider_before_it_expires() {
        let (conn, _) = control();
        insert_login(&conn, &start("google", "browser-a"), NOW, 600).unwrap();
        let state = SecretHash::of("state-1");
        let other_browser = SecretHash::of("browser-b");
        let browser = SecretHash::of("browser-a");
        assert_eq!(
            take_login(&conn, &state, "google", &other_browser, NOW).unwrap(),
            None
        );
        assert_eq!(
            take_login(&conn, &state, "gitlab", &browser, NOW).unwrap(),
            None
        );
        assert_eq!(
            take_login(&conn, &state, "google", &browser, NOW + 600).unwrap(),
            None
        );
        let taken = take_login(&conn, &state, "google", &browser, NOW + 1)
            .unwrap()
            .unwrap();
        assert_eq!(taken.nonce, "nonce-1");
        assert_eq!(taken.next, "/account");
        assert_eq!(
            take_login(&conn, &state, "google", &browser, NOW + 2).unwrap(),
            None,
            "a replayed state"
        );
        assert_eq!(delete_expired_logins(&conn, NOW + 600).unwrap(), 1);
    }

    #[test]
    fn identities_link_once_and_the_last_way_in_stays() {
        let (conn, user) = control();
        assert!(link(&conn, "google", "sub-1", user, Some("ada@example.com"), NOW).unwrap());
        assert!(!link(&conn, "google", "sub-1", user, None, NOW).unwrap());
        assert!(
            !link(&conn, "google", "sub-2", user, None, NOW).unwrap(),
            "one per provider"
        );
        assert_eq!(linked_user(&conn, "google", "sub-1").unwrap(), Some(user));
        assert_eq!(linked_user(&conn, "google", "sub-2").unwrap(), None);
        assert_eq!(identities_of(&conn, user).unwrap().len(), 1);

        // With a password, the only link may go; without one, it may not.
        conn.execute("UPDATE users SET has_password = 0", [])
            .unwrap();
        assert_eq!(
            unlink_unless_last(&conn, user, "google").unwrap(),
            Unlinked::LastWayIn
        );
        assert!(link(&conn, "gitlab", "sub-9", user, None, NOW).unwrap());
        assert_eq!(
            unlink_unless_last(&conn, user, "google").unwrap(),
            Unlinked::Removed
        );
        assert_eq!(
            unlink_unless_last(&conn, user, "google").unwrap(),
            Unlinked::NotLinked
        );
        assert_eq!(
            unlink_unless_last(&conn, user, "gitlab").unwrap(),
            Unlinked::LastWayIn
        );
        conn.execute("UPDATE users SET has_password = 1", [])
            .unwrap();
        assert_eq!(
            unlink_unless_last(&conn, user, "gitlab").unwrap(),
            Unlinked::Removed
        );
    }
}
