//! `audit-sweep`: removes audit rows older than the retention (13 months by default) from
//! the start of every chain, the system log's and each workspace's. Each sweep leaves a
//! signed anchor, so what remains still verifies (see `AuditLog::sweep`).

use chrono::{DateTime, Months};

use super::each::{Labels, sweep_each};
use super::{Ended, JobContext, JobError};

pub(super) fn run(ctx: &JobContext) -> Result<Ended, JobError> {
    let cutoff = retention_cutoff(ctx.clock.now(), ctx.settings.audit_retention_months)
        .ok_or(JobError::ClockOutOfRange)?;
    let labels = Labels {
        units: "chains",
        rows: "audit_rows",
    };
    sweep_each(ctx, ctx.audit.chains()?, labels, |chain| {
        let removed = ctx.audit.sweep(*chain, cutoff)?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    })
}

/// The same moment `months` calendar months before `now` (Unix seconds, UTC); the end of
/// a shorter month stands in for a day it lacks (31 March less one month is 28 or 29
/// February).
fn retention_cutoff(now: i64, months: u32) -> Option<i64> {
    let now = DateTime::from_timestamp(now, 0)?;
    Some(now.checked_sub_months(Months::new(months))?.timestamp())
}

#[cfg(test)]
mod tests {
    use super::retention_cutoff;
    use chrono::DateTime;

    fn unix(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp()
    }

    #[test]
    fn the_cutoff_is_whole_calendar_months_back() {
        let now = unix("2026-11-23T02:45:00Z");
        assert_eq!(
            retention_cutoff(now, 13),
            Some(unix("2025-10-23T02:45:00Z"))
        );
        assert_eq!(
            retention_cutoff(now, 12),
            Some(unix("2025-11-23T02:45:00Z"))
        );
        assert_eq!(
            retention_cutoff(unix("2027-03-31T00:00:00Z"), 13),
            Some(unix("2026-02-28T00:00:00Z"))
        );
    }
}
