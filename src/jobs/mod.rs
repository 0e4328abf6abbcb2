//! Scheduled jobs: the sweeps and purges that keep the retention promises.
//!
//! A job is a body function over a `JobContext`. `run` runs one now, under a lock that
//! keeps two runs of the same job apart across processes, and records the run in the
//! control database; `Scheduler` calls `run` on each job's cron schedule beside the HTTP
//! server; `strongbox jobs run NAME` calls it from the command line.
//!
//! Adding a job: a `JobName` variant, its arm in `JobName::spec` (CLI name, body, config
//! schedule), its `[jobs]` setting in `config::Jobs`, and its body function.

mod audit_sweep;
mod backup;
mod closure_purge;
mod each;
mod error;
mod expired_cleanup;
mod lock;
mod repo;
mod runner;
mod scheduler;
mod usage_sweep;

pub use closure_purge::{PurgeReport, purge};
pub use error::JobError;
pub use lock::JobLock;
pub use runner::{last_run, run};
pub use scheduler::Scheduler;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::audit::AuditLog;
use crate::clock::{self, SharedClock};
use crate::config::{self, Config};
use crate::store::Store;

/// Every job there is. The CLI takes the kebab-case names (`usage-sweep`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum JobName {
    ExpiredCleanup,
    UsageSweep,
    ClosurePurge,
    AuditSweep,
    Backup,
}

/// What a job is made of, in one place per job.
struct Spec {
    /// The CLI name, also how runs are stored.
    name: &'static str,
    body: fn(&JobContext) -> Result<Ended, JobError>,
    schedule: fn(&config::Jobs) -> &config::JobSchedule,
}

impl JobName {
    fn spec(self) -> Spec {
        match self {
            Self::ExpiredCleanup => Spec {
                name: "expired-cleanup",
                body: expired_cleanup::run,
                schedule: |jobs| &jobs.expired_cleanup,
            },
            Self::UsageSweep => Spec {
                name: "usage-sweep",
                body: usage_sweep::run,
                schedule: |jobs| &jobs.usage_sweep,
            },
            Self::ClosurePurge => Spec {
                name: "closure-purge",
                body: closure_purge::run,
                schedule: |jobs| &jobs.closure_purge,
            },
            Self::AuditSweep => Spec {
                name: "audit-sweep",
                body: audit_sweep::run,
                schedule: |jobs| &jobs.audit_sweep,
            },
            Self::Backup => Spec {
                name: "backup",
                body: backup::run,
                schedule: |jobs| &jobs.backup,
            },
        }
    }

    pub fn all() -> &'static [JobName] {
        <Self as clap::ValueEnum>::value_variants()
    }

    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// The job's `[jobs]` setting.
    pub fn schedule(self, jobs: &config::Jobs) -> &config::JobSchedule {
        (self.spec().schedule)(jobs)
    }
}

impl FromStr for JobName {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::all()
            .iter()
            .copied()
            .find(|job| job.as_str() == s)
            .ok_or(())
    }
}

impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The settings jobs need from the configuration.
#[derive(Clone, Debug)]
pub struct JobSettings {
    pub session_idle_timeout_secs: i64,
    pub session_absolute_timeout_secs: i64,
    pub audit_retention_months: u32,
    /// How long an OAuth client that was never granted anything is kept.
    pub unused_oauth_client_secs: i64,
    pub backup: config::Backup,
}

impl From<&Config> for JobSettings {
    fn from(c: &Config) -> Self {
        Self {
            session_idle_timeout_secs: i64::from(c.sessions.idle_timeout_minutes) * 60,
            session_absolute_timeout_secs: i64::from(c.sessions.absolute_timeout_hours) * 3600,
            audit_retention_months: c.audit.retention_months,
            unused_oauth_client_secs: i64::from(c.oauth.unused_client_days) * 86_400,
            backup: c.backup.clone(),
        }
    }
}

/// What a job body works with. Bodies do blocking SQLite work: run them on a blocking
/// thread, never on an async worker.
#[derive(Clone)]
pub struct JobContext {
    pub store: Arc<Store>,
    pub clock: SharedClock,
    /// Where jobs record what they delete, and the log the audit sweep trims.
    pub audit: AuditLog,
    pub settings: JobSettings,
    /// Checked by jobs between units of work (workspaces, accounts, audit chains).
    pub stop: StopFlag,
}

impl JobContext {
    pub fn new(store: Arc<Store>, clock: SharedClock, settings: JobSettings) -> Self {
        Self {
            audit: AuditLog::new(Arc::clone(&store), clock.clone()),
            store,
            clock,
            settings,
            stop: StopFlag::default(),
        }
    }
}

/// A request to stop, shared between whoever asks (shutdown) and the running job, which
/// stops at its next clean point.
#[derive(Clone, Debug, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What a run did, as counts per category (`sessions=3 usage_rows=120`): never content,
/// names or secrets, so it can be logged and stored as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary(Vec<(&'static str, usize)>);

impl Summary {
    pub fn add(&mut self, category: &'static str, count: usize) {
        match self.0.iter_mut().find(|(c, _)| *c == category) {
            Some((_, n)) => *n += count,
            None => self.0.push((category, count)),
        }
    }

    pub fn with(mut self, category: &'static str, count: usize) -> Self {
        self.add(category, count);
        self
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(c, n)| format!("{c}={n}")).collect();
        f.write_str(&parts.join(" "))
    }
}

/// How a job body ended without an error.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Finished(Summary),
    /// A stop was requested; the work done so far is complete and committed.
    Stopped(Summary),
}

/// How a recorded run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    Stopped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        }
    }
}

impl FromStr for Outcome {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "ok" => Ok(Self::Ok),
            "failed" => Ok(Self::Failed),
            "stopped" => Ok(Self::Stopped),
            _ => Err(()),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finished run, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRun {
    pub job: JobName,
    /// Unix seconds, from the job's clock.
    pub started_at: i64,
    pub finished_at: i64,
    /// Measured on the monotonic clock.
    pub duration_ms: u64,
    pub outcome: Outcome,
    /// Counts per category; for a failed run, also the error's category.
    pub summary: String,
}

impl fmt::Display for JobRun {
    /// One line: `usage-sweep ok in 12 ms: workspaces=3 usage_rows=0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} in {} ms: {}",
            self.job, self.outcome, self.duration_ms, self.summary
        )
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_utc(unix: i64) -> String {
    clock::format_utc(unix, "%Y-%m-%d %H:%M:%S UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_round_trip_and_match_the_cli() {
        for job in JobName::all() {
            assert_eq!(job.as_str().parse::<JobName>(), Ok(*job));
            let cli = clap::ValueEnum::to_possible_value(job).expect("a CLI name");
            assert_eq!(cli.get_name(), job.as_str());
        }
        assert!("usage_sweep".parse::<JobName>().is_err());
    }

    #[test]
    fn summaries_list_counts_in_order_and_add_up() {
        let mut summary = Summary::default().with("sessions", 2).with("links", 0);
        summary.add("sessions", 1);
        assert_eq!(summary.to_string(), "sessions=3 links=0");
    }

    #[test]
    fn times_print_in_utc() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
