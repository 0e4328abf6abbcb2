//! The SQL of recorded job runs (control database).

use rusqlite::{Connection, OptionalExtension, params};

use super::{JobName, JobRun};
use crate::store::columns::parsed;

/// How many runs of each job are kept; older ones are deleted as new ones are recorded.
pub const RUNS_KEPT_PER_JOB: i64 = 100;

/// Records a finished run and prunes the job's history to the newest `RUNS_KEPT_PER_JOB`.
pub fn record_run(conn: &Connection, run: &JobRun) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO job_runs (job, started_at, finished_at, duration_ms, outcome, summary)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            run.job.as_str(),
            run.started_at,
            run.finished_at,
            i64::try_from(run.duration_ms).unwrap_or(i64::MAX),
            run.outcome.as_str(),
            run.summary
        ],
    )?;
    conn.execute(
        "DELETE FROM job_runs WHERE job = ?1 AND id NOT IN
           (SELECT id FROM job_runs WHERE job = ?1 ORDER BY id DESC LIMIT ?2)",
        params![run.job.as_str(), RUNS_KEPT_PER_JOB],
    )?;
    Ok(())
}

/// The job's newest recorded run.
pub fn last_run(conn: &Connection, job: JobName) -> rusqlite::Result<Option<JobRun>> {
    conn.query_row(
        "SELECT started_at, finished_at, duration_ms, outcome, summary FROM job_runs
         WHERE job = ?1 ORDER BY id DESC LIMIT 1",
        [job.as_str()],
        |row| {
            Ok(JobRun {
                job,
                started_at: row.get(0)?,
                finished_at: row.get(1)?,
                duration_ms: row.get::<_, i64>(2)?.try_into().unwrap_or(0),
                outcome: parsed(row, 3)?,
                summary: row.get(4)?,
            })
        },
    )
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::Outcome;

    fn control() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::migrate_control_for_tests(&mut conn);
        conn
    }

    fn run(job: JobName, started_at: i64, outcome: Outcome) -> JobRun {
        JobRun {
            job,
            started_at,
            finished_at: started_at + 1,
            duration_ms: 1200,
            outcome,
            summary: "sessions=2".into(),
        }
    }

    #[test]
    fn the_newest_run_of_each_job_is_read_back() {
        let conn = control();
        assert_eq!(last_run(&conn, JobName::UsageSweep).unwrap(), None);
        record_run(&conn, &run(JobName::UsageSweep, 10, Outcome::Failed)).unwrap();
        record_run(&conn, &run(JobName::UsageSweep, 20, Outcome::Ok)).unwrap();
        record_run(&conn, &run(JobName::ClosurePurge, 30, Outcome::Stopped)).unwrap();
        assert_eq!(
            last_run(&conn, JobName::UsageSweep).unwrap(),
            Some(run(JobName::UsageSweep, 20, Outcome::Ok))
        );
        assert_eq!(
            last_run(&conn, JobName::ClosurePurge).unwrap(),
            Some(run(JobName::ClosurePurge, 30, Outcome::Stopped))
        );
    }

    #[test]
    fn history_is_pruned_per_job() {
        let conn = control();
        record_run(&conn, &run(JobName::ClosurePurge, 1, Outcome::Ok)).unwrap();
        for started in 0..RUNS_KEPT_PER_JOB + 5 {
            record_run(&conn, &run(JobName::UsageSweep, started, Outcome::Ok)).unwrap();
        }
        let count = |job: JobName| -> i64 {
            conn.query_row(
                "SELECT count(*) FROM job_runs WHERE job = ?1",
                [job.as_str()],
                |row| row.get(0),
            )
            .unwrap()
        };
        assert_eq!(count(JobName::UsageSweep), RUNS_KEPT_PER_JOB);
        assert_eq!(count(JobName::ClosurePurge), 1, "other jobs keep theirs");
        let oldest: i64 = conn
            .query_row(
                "SELECT min(started_at) FROM job_runs WHERE job = 'usage-sweep'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(oldest, 5, "the oldest runs went");
    }
}
