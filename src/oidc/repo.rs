//! Sign-ins sent to a provider and not back yet: state (hashed), nonce and PKCE verifier,
//! bound to one browser, used once. The identities linked to accounts are `auth`'s.

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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn control() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrate_control_for_tests(&mut conn);
        conn
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
        let conn = control();
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
}
