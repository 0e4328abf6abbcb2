//! The SQL of accounts, sessions and one-time links (control database).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::model::{Email, LinkPurpose, Session, SessionStage, User, UserId};
use crate::crypto::token::{self, SecretHash};
use crate::store::columns::{parsed, secret_hash};

type Result<T> = rusqlite::Result<T>;

const USER_COLUMNS: &str = "id, email, password_hash, email_verified_at IS NOT NULL, totp_enabled_at IS NOT NULL, closes_at, has_password";

fn user_row(row: &Row<'_>) -> Result<User> {
    Ok(User {
        id: parsed(row, 0)?,
        email: parsed(row, 1)?,
        password_hash: row.get(2)?,
        email_verified: row.get(3)?,
        mfa_enabled: row.get(4)?,
        closes_at: row.get(5)?,
        has_password: row.get(6)?,
    })
}

pub fn count_users(conn: &Connection) -> Result<i64> {
    conn.query_row("SELECT count(*) FROM users", [], |row| row.get(0))
}

pub fn insert_user(conn: &Connection, user: &User, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO users (id, email, password_hash, has_password, email_verified_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            user.id.to_string(),
            user.email.as_str(),
            user.password_hash,
            user.has_password,
            user.email_verified.then_some(now),
            now
        ],
    )?;
    Ok(())
}

pub fn user_by_email(conn: &Connection, email: &Email) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?1");
    conn.query_row(&sql, [email.as_str()], user_row).optional()
}

pub fn user_by_id(conn: &Connection, id: UserId) -> Result<Option<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
    conn.query_row(&sql, [id.to_string()], user_row).optional()
}

pub fn set_password_hash(conn: &Connection, id: UserId, hash: &str) -> Result<()> {
    conn.execute(
        "UPDATE users SET password_hash = ?2, has_password = 1 WHERE id = ?1",
        params![id.to_string(), hash],
    )?;
    Ok(())
}

pub fn mark_email_verified(conn: &Connection, id: UserId, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE users SET email_verified_at = coalesce(email_verified_at, ?2) WHERE id = ?1",
        params![id.to_string(), now],
    )?;
    Ok(())
}

const SESSION_COLUMNS: &str =
    "id_hash, user_id, stage, created_at, rotated_at, last_seen_at, ip, user_agent, csrf_anchor";

fn session_row(row: &Row<'_>) -> Result<Session> {
    Ok(Session {
        id_hash: secret_hash(row, 0)?,
        user_id: parsed(row, 1)?,
        stage: parsed(row, 2)?,
        created_at: row.get(3)?,
        rotated_at: row.get(4)?,
        last_seen_at: row.get(5)?,
        ip: row.get(6)?,
        user_agent: row.get(7)?,
        csrf_anchor: secret_hash(row, 8)?.0,
    })
}

pub fn insert_session(conn: &Connection, session: &Session) -> Result<()> {
    conn.execute(
        "INSERT INTO sessions (id_hash, user_id, stage, created_at, rotated_at, last_seen_at, ip, user_agent, csrf_anchor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            session.id_hash.as_bytes(),
            session.user_id.to_string(),
            session.stage.as_str(),
            session.created_at,
            session.rotated_at,
            session.last_seen_at,
            session.ip,
            session.user_agent,
            &session.csrf_anchor[..]
        ],
    )?;
    Ok(())
}

pub fn session_by_hash(conn: &Connection, hash: &SecretHash) -> Result<Option<Session>> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = ?1");
    conn.query_row(&sql, [hash.as_bytes()], session_row)
        .optional()
}

/// A session whose id was rotated away from `hash` after `since`.
pub fn session_by_previous_hash(
    conn: &Connection,
    hash: &SecretHash,
    since: i64,
) -> Result<Option<Session>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE prev_id_hash = ?1 AND rotated_at > ?2"
    );
    conn.query_row(&sql, params![hash.as_bytes(), since], session_row)
        .optional()
}

pub fn sessions_of(conn: &Connection, user: UserId) -> Result<Vec<Session>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = ?1 ORDER BY last_seen_at DESC"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([user.to_string()], session_row)?;
    rows.collect()
}

/// How the old id fares when a session gets a new one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OldId {
    /// Dead at once: the session just gained privilege (second factor).
    Revoked,
    /// Honoured briefly for requests already in flight (periodic rotation).
    Grace,
}

/// Gives a session a new id and stage. `false` when the old id was already rotated away.
pub fn rotate_session(
    conn: &Connection,
    old: &SecretHash,
    new: &SecretHash,
    stage: SessionStage,
    old_id: OldId,
    now: i64,
) -> Result<bool> {
    let previous: Option<&[u8]> = (old_id == OldId::Grace).then_some(old.as_bytes());
    let changed = conn.execute(
        "UPDATE sessions SET id_hash = ?2, prev_id_hash = ?5, stage = ?3, rotated_at = ?4,
                             last_seen_at = ?4
         WHERE id_hash = ?1",
        params![
            old.as_bytes(),
            new.as_bytes(),
            stage.as_str(),
            now,
            previous
        ],
    )?;
    Ok(changed == 1)
}

pub fn touch_session(conn: &Connection, hash: &SecretHash, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE sessions SET last_seen_at = ?2 WHERE id_hash = ?1",
        params![hash.as_bytes(), now],
    )?;
    Ok(())
}

pub fn delete_session(conn: &Connection, hash: &SecretHash) -> Result<()> {
    conn.execute("DELETE FROM sessions WHERE id_hash = ?1", [hash.as_bytes()])?;
    Ok(())
}

/// Ends every session of a user, except `keep` when given.
pub fn delete_sessions_of(
    conn: &Connection,
    user: UserId,
    keep: Option<&SecretHash>,
) -> Result<usize> {
    let keep: &[u8] = keep.map_or(&[], SecretHash::as_bytes);
    conn.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND id_hash != ?2",
        params![user.to_string(), keep],
    )
}

fn insert_link(
    conn: &Connection,
    hash: &SecretHash,
    purpose: LinkPurpose,
    user: Option<UserId>,
    now: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO one_time_links (hash, purpose, user_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            hash.as_bytes(),
            purpose.as_str(),
            user.map(|u| u.to_string()),
            now,
            now + purpose.ttl_seconds()
        ],
    )?;
    Ok(())
}

/// Uses a link if it exists for this purpose, is unused and unexpired: `Some(user)` once,
/// `None` for every later attempt. A single UPDATE, so two racing uses cannot both win.
pub fn consume_link(
    conn: &Connection,
    hash: &SecretHash,
    purpose: LinkPurpose,
    now: i64,
) -> Result<Option<Option<UserId>>> {
    conn.query_row(
        "UPDATE one_time_links SET used_at = ?3
         WHERE hash = ?1 AND purpose = ?2 AND used_at IS NULL AND expires_at > ?3
         RETURNING user_id",
        params![hash.as_bytes(), purpose.as_str(), now],
        |row| match row.get::<_, Option<String>>(0)? {
            Some(_) => parsed(row, 0).map(Some),
            None => Ok(None),
        },
    )
    .optional()
}

/// Whether a link would be accepted now, without using it (for the confirm page).
pub fn link_is_usable(
    conn: &Connection,
    hash: &SecretHash,
    purpose: LinkPurpose,
    now: i64,
) -> Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM one_time_links
         WHERE hash = ?1 AND purpose = ?2 AND used_at IS NULL AND expires_at > ?3",
        params![hash.as_bytes(), purpose.as_str(), now],
        |row| row.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Issues a new link for `user` (or, for setup, for nobody) and retires the unused ones
/// it replaces, so only the newest link of a purpose works.
pub fn replace_link(
    conn: &Connection,
    purpose: LinkPurpose,
    user: Option<UserId>,
    now: i64,
) -> Result<token::IssuedSecret> {
    retire_links(conn, purpose, user, now)?;
    let issued = token::issue(purpose.prefix());
    insert_link(conn, &issued.hash, purpose, user, now)?;
    Ok(issued)
}

/// Retires a user's (or, for setup, everyone's) unused links of one purpose.
fn retire_links(
    conn: &Connection,
    purpose: LinkPurpose,
    user: Option<UserId>,
    now: i64,
) -> Result<()> {
    conn.execute(
        "UPDATE one_time_links SET used_at = ?3
         WHERE purpose = ?1 AND used_at IS NULL AND user_id IS ?2",
        params![purpose.as_str(), user.map(|u| u.to_string()), now],
    )?;
    Ok(())
}

/// A user's TOTP secret and whether enrolment finished.
pub struct TotpState {
    pub secret: zeroize::Zeroizing<Vec<u8>>,
    pub enabled: bool,
}

pub fn totp_state(conn: &Connection, user: UserId) -> Result<Option<TotpState>> {
    conn.query_row(
        "SELECT totp_secret, totp_enabled_at IS NOT NULL FROM users
         WHERE id = ?1 AND totp_secret IS NOT NULL",
        [user.to_string()],
        |row| {
            Ok(TotpState {
                secret: zeroize::Zeroizing::new(row.get(0)?),
                enabled: row.get(1)?,
            })
        },
    )
    .optional()
}

/// Stores a secret awaiting its first code, unless one is already waiting (so reloading the
/// page keeps the QR code just scanned); refused once a factor is enabled.
pub fn set_pending_totp(conn: &Connection, user: UserId, secret: &[u8]) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE users SET totp_secret = coalesce(totp_secret, ?2), totp_last_step = NULL
         WHERE id = ?1 AND totp_enabled_at IS NULL",
        params![user.to_string(), secret],
    )?;
    Ok(changed == 1)
}

pub fn enable_totp(conn: &Connection, user: UserId, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE users SET totp_enabled_at = ?2 WHERE id = ?1 AND totp_secret IS NOT NULL",
        params![user.to_string(), now],
    )?;
    Ok(())
}

/// Records the time step of an accepted code. Fails (false) for a step at or before the
/// last accepted one, so each code works once even within its window.
pub fn claim_totp_step(conn: &Connection, user: UserId, step: i64) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE users SET totp_last_step = ?2
         WHERE id = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
        params![user.to_string(), step],
    )?;
    Ok(changed == 1)
}

pub fn disable_totp(conn: &Connection, user: UserId) -> Result<()> {
    conn.execute(
        "UPDATE users SET totp_secret = NULL, totp_enabled_at = NULL, totp_last_step = NULL
         WHERE id = ?1",
        [user.to_string()],
    )?;
    conn.execute(
        "DELETE FROM backup_codes WHERE user_id = ?1",
        [user.to_string()],
    )?;
    Ok(())
}

pub fn replace_backup_codes(conn: &Connection, user: UserId, hashes: &[SecretHash]) -> Result<()> {
    conn.execute(
        "DELETE FROM backup_codes WHERE user_id = ?1",
        [user.to_string()],
    )?;
    let mut insert =
        conn.prepare("INSERT INTO backup_codes (user_id, code_hash) VALUES (?1, ?2)")?;
    for hash in hashes {
        insert.execute(params![user.to_string(), hash.as_bytes()])?;
    }
    Ok(())
}

/// Uses a backup code once; later uses find nothing.
pub fn consume_backup_code(
    conn: &Connection,
    user: UserId,
    hash: &SecretHash,
    now: i64,
) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE backup_codes SET used_at = ?3
         WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
        params![user.to_string(), hash.as_bytes(), now],
    )?;
    Ok(changed == 1)
}

pub fn set_account_closes_at(
    conn: &Connection,
    user: UserId,
    closes_at: Option<i64>,
) -> Result<()> {
    conn.execute(
        "UPDATE users SET closes_at = ?2 WHERE id = ?1",
        params![user.to_string(), closes_at],
    )?;
    Ok(())
}

/// Deletes every session `has_ended` would refuse: active ones idle or older than their
/// limits, and ones still waiting for a second factor past that window.
pub fn delete_ended_sessions(
    conn: &Connection,
    now: i64,
    idle_timeout_secs: i64,
    absolute_timeout_secs: i64,
) -> Result<usize> {
    conn.execute(
        "DELETE FROM sessions
         WHERE (stage = 'active' AND (last_seen_at <= ?1 - ?2 OR created_at <= ?1 - ?3))
            OR (stage = 'mfa_pending' AND created_at <= ?1 - ?4)",
        params![
            now,
            idle_timeout_secs,
            absolute_timeout_secs,
            super::service::SECOND_FACTOR_WINDOW_SECS
        ],
    )
}

/// Deletes one-time links that can no longer be used: used (or retired) and expired ones.
/// Nothing watches for a spent link being presented again; it simply fails.
pub fn delete_spent_links(conn: &Connection, now: i64) -> Result<usize> {
    conn.execute(
        "DELETE FROM one_time_links WHERE used_at IS NOT NULL OR expires_at <= ?1",
        [now],
    )
}

/// Accounts whose closure hold has passed, oldest deadline first.
pub fn closed_accounts_due(conn: &Connection, now: i64) -> Result<Vec<UserId>> {
    let mut stmt = conn.prepare(
        "SELECT id FROM users WHERE closes_at IS NOT NULL AND closes_at <= ?1
         ORDER BY closes_at, id",
    )?;
    let rows = stmt.query_map([now], |row| parsed(row, 0))?;
    rows.collect()
}

/// Whether the account's closure hold has passed, read inside the deleting transaction so
/// a closure cancelled meanwhile is seen.
pub fn account_closure_due(conn: &Connection, user: UserId, now: i64) -> Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM users WHERE id = ?1 AND closes_at IS NOT NULL AND closes_at <= ?2",
        params![user.to_string(), now],
        |row| row.get::<_, i64>(0),
    )
    .map(|n| n == 1)
}

/// Deletes the account row; its sessions, links, backup codes, memberships, grants and
/// tokens cascade. Rows that name the account without cascading must be gone first.
pub fn delete_account(conn: &Connection, user: UserId) -> Result<bool> {
    let deleted = conn.execute("DELETE FROM users WHERE id = ?1", [user.to_string()])?;
    Ok(deleted == 1)
}
