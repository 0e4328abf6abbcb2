//! Walking a chain: every row must follow the one before it (or the newest anchor), match
//! its own hash, and end where the signed head says the chain ends.

use std::fmt;

use rusqlite::Connection;

use super::chain::{GENESIS, MacKey, mac_matches, row_hash};
use super::repo::{self, Filter};
use super::{Chain, to_hash};

/// A chain that verified: how many rows it holds and how many sweeps removed rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    pub rows: u64,
    pub swept_rows: i64,
}

/// The first broken link: the row (seq) where verification stopped, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Broken {
    pub seq: i64,
    pub problem: Problem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The row's content does not match its hash.
    Altered,
    /// The row does not follow the row before it: rows were reordered or replaced.
    Unlinked,
    /// This row is missing: deleted outside the sweep.
    Missing,
    /// A sweep anchor is forged, altered or gone.
    BadAnchor,
    /// The signed head does not match the chain's end.
    BadHead,
    /// The log holds nothing, though it must: a workspace's starts with
    /// `workspace.created`, the system log with the first account.
    Empty,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.problem {
            Problem::Altered => "its content does not match its hash",
            Problem::Unlinked => "it does not follow the row before it (reordered or replaced)",
            Problem::Missing => "it is missing (deleted outside the retention sweep)",
            Problem::BadAnchor => "the sweep anchor covering it is forged, altered or missing",
            Problem::BadHead => "the chain does not end where its signed head says",
            Problem::Empty => "the log is empty, but it must hold at least its first row",
        };
        write!(f, "row {}: {what}", self.seq)
    }
}

/// Walks `chain` in `conn`, its database. A chain with no rows, anchors or head is broken
/// when it must have begun: always for a workspace's (its first row is written with its
/// database), and for the system log once the install has an account.
pub fn verify(
    conn: &Connection,
    key: &MacKey,
    chain: Chain,
) -> rusqlite::Result<Result<Verified, Broken>> {
    let verified = verify_links(conn, key, &chain.label())?;
    let never_begun = Ok(Verified {
        rows: 0,
        swept_rows: 0,
    });
    if verified == never_begun {
        let must_have_begun = match chain {
            Chain::Workspace(_) => true,
            Chain::System => repo::install_has_accounts(conn)?,
        };
        if must_have_begun {
            return Ok(Err(broken(1, Problem::Empty)));
        }
    }
    Ok(verified)
}

/// Walks the chain whose heads and anchors are signed for `chain`: every row follows the
/// one before it, and the chain ends where its signed head says.
pub(super) fn verify_links(
    conn: &Connection,
    key: &MacKey,
    chain: &str,
) -> rusqlite::Result<Result<Verified, Broken>> {
    let anchors = repo::anchors(conn)?;
    let mut swept_rows = 0;
    for anchor in &anchors {
        let last_hash = to_hash(&anchor.last_hash);
        let expected = key.anchor(
            chain,
            anchor.through_seq,
            &last_hash,
            anchor.removed,
            anchor.swept_at,
        );
        if !mac_matches(&expected, &anchor.mac) {
            return Ok(Err(broken(anchor.through_seq, Problem::BadAnchor)));
        }
        swept_rows += anchor.removed;
    }
    let (mut expected_seq, mut prev) = match anchors.last() {
        // Rows are numbered from 1 and swept from the start: the sweeps' counts add up to
        // the newest anchor's seq unless an anchor was removed.
        Some(last) if swept_rows != last.through_seq => {
            return Ok(Err(broken(last.through_seq, Problem::BadAnchor)));
        }
        Some(last) => (last.through_seq + 1, to_hash(&last.last_hash)),
        None => (1, GENESIS),
    };
    let mut rows = 0u64;
    let mut found = None;
    repo::each_row(conn, &Filter::default(), |row| {
        let fields = &row.fields;
        let computed = row_hash(&prev, fields);
        let problem = if fields.seq != expected_seq {
            Some(broken(expected_seq, Problem::Missing))
        } else if row.prev_hash != prev {
            Some(broken(fields.seq, Problem::Unlinked))
        } else if row.hash != computed {
            Some(broken(fields.seq, Problem::Altered))
        } else {
            None
        };
        if problem.is_some() {
            found = problem;
            return false;
        }
        prev = computed;
        expected_seq += 1;
        rows += 1;
        true
    })?;
    if let Some(problem) = found {
        return Ok(Err(problem));
    }
    let last_seq = expected_seq - 1;
    match repo::head(conn)? {
        // A chain that never had a row has no head.
        None if last_seq == 0 => {}
        None => return Ok(Err(broken(last_seq, Problem::BadHead))),
        Some(head) => {
            let hash = to_hash(&head.hash);
            if !mac_matches(&key.head(chain, head.seq, &hash), &head.mac) {
                return Ok(Err(broken(head.seq, Problem::BadHead)));
            }
            if head.seq > last_seq {
                // Rows were cut from the end.
                return Ok(Err(broken(last_seq + 1, Problem::Missing)));
            }
            if head.seq < last_seq || hash != prev {
                return Ok(Err(broken(head.seq, Problem::BadHead)));
            }
        }
    }
    Ok(Ok(Verified { rows, swept_rows }))
}

fn broken(seq: i64, problem: Problem) -> Broken {
    Broken { seq, problem }
}
