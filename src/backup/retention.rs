//! Which backups a successful run prunes.

use super::BackupId;

/// A backup as the pruner sees it.
pub struct Candidate {
    pub id: BackupId,
    /// Its manifest verifies and every file it names is there at its size.
    pub good: bool,
}

/// The backups older than `retention_days` at `now`, except the newest good backup, which
/// is kept however old it is.
pub fn to_prune(candidates: &[Candidate], now: i64, retention_days: u32) -> Vec<BackupId> {
    let cutoff = now - i64::from(retention_days) * 86_400;
    let newest_good = candidates
        .iter()
        .filter(|c| c.good)
        .map(|c| &c.id)
        .max_by_key(|id| (id.created_at(), id.as_str().to_string()));
    candidates
        .iter()
        .filter(|c| c.id.created_at() < cutoff && Some(&c.id) != newest_good)
        .map(|c| c.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn candidate(now: i64, days_old: i64, good: bool) -> Candidate {
        Candidate {
            id: BackupId::new(now - days_old * DAY),
            good,
        }
    }

    #[test]
    fn old_backups_go_but_never_the_newest_good_one() {
        let now = 1_800_000_000;
        let backups = [
            candidate(now, 45, true),
            candidate(now, 31, true),
            candidate(now, 29, true),
            candidate(now, 1, false),
        ];
        let pruned = to_prune(&backups, now, 30);
        assert_eq!(pruned, [backups[0].id.clone(), backups[1].id.clone()]);

        // Only old backups, the newest of them damaged: the newest good one stays.
        let backups = [
            candidate(now, 90, true),
            candidate(now, 60, true),
            candidate(now, 40, false),
        ];
        let pruned = to_prune(&backups, now, 30);
        assert_eq!(pruned, [backups[0].id.clone(), backups[2].id.clone()]);
        assert!(to_prune(&[], now, 30).is_empty());
    }
}
