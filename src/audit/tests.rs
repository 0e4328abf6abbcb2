//! The chain against tampering, on a real SQLite schema in memory.

use rusqlite::Connection;

use super::*;

const LABEL: &str = "workspace-under-test";
const DAY: i64 = 86_400;

fn key() -> MacKey {
    MacKey::new(b"test key")
}

fn log() -> Connection {
    let mut conn = Connection::open_in_memory().unwrap();
    crate::store::migrate_workspace_for_tests(&mut conn);
    conn
}

fn append_at(conn: &Connection, at: i64, n: usize) {
    let meta = RequestMeta::new("192.0.2.7", Some("test-agent"), format!("req-{at}"));
    let entry = Entry::new(Actor::user("u-1"), Action::MemberRoleChanged)
        .target("user", "u-2")
        .detail("from", "viewer")
        .detail("to", "admin")
        .detail("n", n);
    append_row(conn, &key(), LABEL, at, meta, entry).unwrap();
}

fn chain_of(n: usize) -> Connection {
    let conn = log();
    for i in 0..n {
        append_at(&conn, 1_000 + i as i64, i);
    }
    conn
}

fn check(conn: &Connection) -> Result<Verified, Broken> {
    verify::verify_links(conn, &key(), LABEL).unwrap()
}

fn broken_at(conn: &Connection, seq: i64, problem: Problem) {
    assert_eq!(check(conn), Err(Broken { seq, problem }));
}

/// What a tamperer holding the database key does first.
fn drop_guards(conn: &Connection) {
    conn.execute_batch(
        "DROP TRIGGER audit_log_append_only; DROP TRIGGER audit_log_swept_only;
         DROP TRIGGER audit_anchors_append_only; DROP TRIGGER audit_anchors_kept;",
    )
    .unwrap();
}

#[test]
fn an_untouched_chain_verifies() {
    assert_eq!(
        check(&log()),
        Ok(Verified {
            rows: 0,
            swept_rows: 0
        })
    );
    assert_eq!(
        check(&chain_of(5)),
        Ok(Verified {
            rows: 5,
            swept_rows: 0
        })
    );
}

#[test]
fn the_database_refuses_updates_and_deletes() {
    let conn = chain_of(3);
    for sql in [
        "UPDATE audit_log SET details = '{}' WHERE seq = 2",
        "UPDATE audit_log SET seq = 9 WHERE seq = 3",
        "DELETE FROM audit_log WHERE seq = 2",
        "DELETE FROM audit_log",
    ] {
        let err = conn.execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("audit"), "{sql}: {err}");
    }
    assert_eq!(check(&conn).unwrap().rows, 3);
}

#[test]
fn editing_any_byte_of_a_rows_details_breaks_the_chain_at_that_row() {
    let conn = chain_of(4);
    drop_guards(&conn);
    let details: Vec<u8> = conn
        .query_row("SELECT details FROM audit_log WHERE seq = 3", [], |r| {
            r.get::<_, String>(0)
        })
        .unwrap()
        .into_bytes();
    for i in 0..details.len() {
        let mut edited = details.clone();
        edited[i] ^= 0x01;
        let edited = String::from_utf8_lossy(&edited).into_owned();
        conn.execute("UPDATE audit_log SET details = ?1 WHERE seq = 3", [&edited])
            .unwrap();
        broken_at(&conn, 3, Problem::Altered);
    }
    let original = String::from_utf8(details).unwrap();
    conn.execute(
        "UPDATE audit_log SET details = ?1 WHERE seq = 3",
        [original],
    )
    .unwrap();
    assert!(check(&conn).is_ok());
}

#[test]
fn a_deleted_row_is_reported_where_it_was() {
    let conn = chain_of(5);
    drop_guards(&conn);
    conn.execute("DELETE FROM audit_log WHERE seq = 3", [])
        .unwrap();
    broken_at(&conn, 3, Problem::Missing);

    let conn = chain_of(5);
    drop_guards(&conn);
    conn.execute("DELETE FROM audit_log WHERE seq = 5", [])
        .unwrap();
    broken_at(&conn, 5, Problem::Missing);

    let conn = chain_of(5);
    drop_guards(&conn);
    conn.execute("DELETE FROM audit_log WHERE seq = 1", [])
        .unwrap();
    broken_at(&conn, 1, Problem::Missing);
}

#[test]
fn reordered_rows_are_reported_at_the_first_moved_row() {
    let conn = chain_of(5);
    drop_guards(&conn);
    conn.execute_batch(
        "UPDATE audit_log SET seq = -2 WHERE seq = 2;
         UPDATE audit_log SET seq = 2 WHERE seq = 4;
         UPDATE audit_log SET seq = 4 WHERE seq = -2;",
    )
    .unwrap();
    broken_at(&conn, 2, Problem::Unlinked);
}

#[test]
fn a_rewritten_chain_does_not_match_its_signed_head() {
    // Without the MAC key, rehashing every row after an edit still leaves the head behind.
    let conn = chain_of(4);
    drop_guards(&conn);
    conn.execute(
        "UPDATE audit_log SET details = '{\"to\":\"owner\"}' WHERE seq = 2",
        [],
    )
    .unwrap();
    let mut prev = chain::GENESIS;
    let mut rows = Vec::new();
    repo::each_row(&conn, &Filter::default(), |row| {
        rows.push(row);
        true
    })
    .unwrap();
    for row in rows {
        let hash = chain::row_hash(&prev, &row.fields);
        conn.execute(
            "UPDATE audit_log SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            rusqlite::params![prev.as_slice(), hash.as_slice(), row.fields.seq],
        )
        .unwrap();
        prev = hash;
    }
    broken_at(&conn, 4, Problem::BadHead);
    // Nor does a head copied from another chain.
    assert_eq!(
        verify::verify_links(&chain_of(4), &key(), "another-workspace").unwrap(),
        Err(Broken {
            seq: 4,
            problem: Problem::BadHead
        })
    );
}

#[test]
fn the_sweep_removes_only_the_old_start_and_the_rest_still_verifies() {
    let conn = log();
    let now = 400 * DAY;
    for (i, age_days) in [399, 398, 200, 100, 1].into_iter().enumerate() {
        append_at(&conn, now - age_days * DAY, i);
    }
    let cutoff = now - 300 * DAY;
    let removed = sweep_chain(&conn, &key(), LABEL, now, cutoff).unwrap();
    assert_eq!(removed, 2);
    let kept: Vec<i64> = conn
        .prepare("SELECT at FROM audit_log ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        kept,
        vec![now - 200 * DAY, now - 100 * DAY, now - DAY, now],
        "three young rows and the sweep's own"
    );
    assert_eq!(
        check(&conn),
        Ok(Verified {
            rows: 4,
            swept_rows: 2
        })
    );
    // Nothing old is left: a second sweep changes nothing.
    assert_eq!(sweep_chain(&conn, &key(), LABEL, now, cutoff).unwrap(), 0);
    // Later, everything goes; the chain goes on from the anchor.
    let later = now + 400 * DAY;
    assert_eq!(
        sweep_chain(&conn, &key(), LABEL, later, later - 300 * DAY).unwrap(),
        4
    );
    append_at(&conn, later + 1, 9);
    assert_eq!(
        check(&conn),
        Ok(Verified {
            rows: 2,
            swept_rows: 6
        })
    );
}

#[test]
fn forged_or_removed_anchors_are_reported() {
    let conn = log();
    for i in 0..4 {
        append_at(&conn, i * DAY, i as usize);
    }
    sweep_chain(&conn, &key(), LABEL, 10 * DAY, 2 * DAY).unwrap();
    assert!(check(&conn).is_ok());
    drop_guards(&conn);
    // Covering more rows than the sweep did, so one more row can go unnoticed.
    conn.execute("UPDATE audit_anchors SET through_seq = 3", [])
        .unwrap();
    conn.execute("DELETE FROM audit_log WHERE seq = 3", [])
        .unwrap();
    broken_at(&conn, 3, Problem::BadAnchor);
    // An anchor deleted leaves the first row kept without a predecessor.
    conn.execute("DELETE FROM audit_anchors", []).unwrap();
    broken_at(&conn, 1, Problem::Missing);
}

#[test]
fn rows_say_who_what_and_from_where_and_nothing_else() {
    let conn = chain_of(1);
    let row = AuditRow::from(
        repo::page(&conn, &Filter::default(), None, 10)
            .unwrap()
            .remove(0),
    );
    assert_eq!(row.seq, 1);
    assert_eq!(row.actor_kind, "user");
    assert_eq!(row.action, "member.role_changed");
    assert_eq!(row.target.as_deref(), Some("user:u-2"));
    assert_eq!(row.ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(row.user_agent.as_deref(), Some("test-agent"));
    assert_eq!(row.request_id.as_deref(), Some("req-1000"));
    assert_eq!(
        row.details,
        serde_json::json!({"from": "viewer", "to": "admin", "n": 0})
    );
    assert_eq!(row.prev_hash, "00".repeat(32));
}

#[test]
fn listing_filters_and_pages_newest_first() {
    let conn = log();
    for i in 0..5 {
        let entry = match i % 2 {
            0 => Entry::new(Actor::user("a"), Action::TokenCreated),
            _ => Entry::new(Actor::agent("b"), Action::AgentPaired),
        };
        append_row(&conn, &key(), LABEL, 100 + i, RequestMeta::default(), entry).unwrap();
    }
    let seqs = |filter: &Filter, before| -> Vec<i64> {
        repo::page(&conn, filter, before, 2)
            .unwrap()
            .iter()
            .map(|r| r.fields.seq)
            .collect()
    };
    assert_eq!(seqs(&Filter::default(), None), vec![5, 4]);
    assert_eq!(seqs(&Filter::default(), Some(4)), vec![3, 2]);
    let tokens = Filter {
        action: Some("token.created".into()),
        ..Filter::default()
    };
    assert_eq!(seqs(&tokens, None), vec![5, 3]);
    assert_eq!(seqs(&tokens, Some(3)), vec![1]);
    let agent_in_range = Filter {
        actor_kind: Some("agent".into()),
        actor_id: Some("b".into()),
        since: Some(101),
        until: Some(103),
        ..Filter::default()
    };
    assert_eq!(seqs(&agent_in_range, None), vec![2]);
}

mod rotation {
    use std::sync::Arc;

    use super::*;
    use crate::crypto::{KeyRing, MasterKey};

    fn ring(master: u8) -> KeyRing {
        KeyRing::new(MasterKey::from_bytes([master; 32]), [7; 32])
    }

    fn mac(ring: &KeyRing) -> MacKey {
        MacKey::new(ring.derive(KeyPurpose::AuditMac, MAC_KEY_VERSION).expose())
    }

    fn signer(old: &KeyRing, new: Option<&KeyRing>) -> RotationSigner {
        RotationSigner::new(old, new, Arc::new(crate::clock::SystemClock))
    }

    /// Six rows a day apart under `ring`'s MAC key, the first three swept behind an anchor.
    fn swept_system_log(ring: &KeyRing) -> Connection {
        let conn = log();
        for day in 0..6 {
            let entry = Entry::new(Actor::system(), Action::AuditExported);
            let at = 1_000 + day * DAY;
            append_row(
                &conn,
                &mac(ring),
                "system",
                at,
                RequestMeta::default(),
                entry,
            )
            .unwrap();
        }
        sweep_chain(&conn, &mac(ring), "system", 10 * DAY, 1_000 + 3 * DAY).unwrap();
        conn
    }

    fn rotated() -> Entry {
        Entry::new(Actor::system(), Action::KeysRotated).detail("to_version", 2)
    }

    #[test]
    fn the_guard_recreated_by_a_rotation_is_the_migrations_own() {
        let sql: String = log()
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'audit_anchors_append_only'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(sql, repo::ANCHORS_APPEND_ONLY);
    }

    #[test]
    fn a_new_master_key_signs_heads_and_anchors_again_and_the_old_one_no_longer_verifies() {
        let (old, new) = (ring(1), ring(2));
        let conn = swept_system_log(&old);
        let signer = signer(&old, Some(&new));
        assert!(signer.verify(&conn, Chain::System).unwrap().is_ok());

        assert_eq!(
            signer.finish(&conn, Chain::System, rotated()).unwrap(),
            Ok(())
        );
        let verified = verify::verify_links(&conn, &mac(&new), "system").unwrap();
        assert_eq!(
            verified,
            Ok(Verified {
                rows: 5,
                swept_rows: 3
            }),
            "rows 4 to 6, the sweep's row and the rotation's"
        );
        assert_eq!(
            verify::verify_links(&conn, &mac(&old), "system").unwrap(),
            Err(Broken {
                seq: 3,
                problem: Problem::BadAnchor
            })
        );
        let err = conn
            .execute("UPDATE audit_anchors SET mac = x'00'", [])
            .unwrap_err();
        assert!(err.to_string().contains("audit anchors cannot be changed"));
        let last = repo::head(&conn).unwrap().unwrap();
        let row = repo::page(&conn, &Filter::default(), None, 1).unwrap();
        assert_eq!(row[0].fields.seq, last.seq);
        assert_eq!(row[0].fields.action, "keys.rotated");
    }

    #[test]
    fn a_broken_chain_is_never_signed_again() {
        let (old, new) = (ring(1), ring(2));
        let conn = swept_system_log(&old);
        drop_guards(&conn);
        conn.execute(
            "UPDATE audit_log SET details = '{\"edited\":1}' WHERE seq = 5",
            [],
        )
        .unwrap();
        let head_before = repo::head(&conn).unwrap().unwrap().mac;

        let signer = signer(&old, Some(&new));
        let broken = Broken {
            seq: 5,
            problem: Problem::Altered,
        };
        assert_eq!(signer.verify(&conn, Chain::System).unwrap(), Err(broken));
        assert_eq!(
            signer.finish(&conn, Chain::System, rotated()).unwrap(),
            Err(broken)
        );
        assert_eq!(repo::head(&conn).unwrap().unwrap().mac, head_before);
        assert_eq!(
            verify::verify_links(&conn, &mac(&new), "system")
                .unwrap()
                .unwrap_err()
                .problem,
            Problem::BadAnchor,
            "nothing was signed under the new key"
        );
    }

    #[test]
    fn keeping_the_master_key_keeps_the_macs() {
        let old = ring(1);
        let conn = swept_system_log(&old);
        let anchor_before = repo::anchors(&conn).unwrap()[0].mac.clone();
        let signer = signer(&old, None);
        assert_eq!(
            signer.finish(&conn, Chain::System, rotated()).unwrap(),
            Ok(())
        );
        assert_eq!(repo::anchors(&conn).unwrap()[0].mac, anchor_before);
        assert_eq!(
            verify::verify_links(&conn, &mac(&old), "system")
                .unwrap()
                .unwrap()
                .rows,
            5
        );
    }
}
