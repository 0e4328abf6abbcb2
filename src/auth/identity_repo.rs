//! The SQL of provider identities linked to accounts (control database): a person's
//! identity at an OpenID Connect provider is its `sub` there, one per provider per account.

use rusqlite::{Connection, OptionalExtension, params};

use super::model::UserId;

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
