//! The jobs' cron schedules, run by tokio-cron-scheduler on a thread and a small runtime of
//! their own, apart from the HTTP workers. Each due job runs on a blocking thread through
//! `runner::run`, so its lock and its run record are the same as from the command line.
//!
//! Stopping (`Scheduler::stop`, or SIGTERM/SIGINT seen by the scheduler's thread) asks a
//! job in flight to stop at its next clean point, ends the schedules, and waits for the
//! job before the thread exits.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::{RwLock, oneshot};
use tokio_cron_scheduler::{Job, JobScheduler};

use super::{JobContext, JobError, JobName, StopFlag, runner};
use crate::config;
use crate::telemetry::error_chain;

/// The running schedules. Dropping it stops them as `stop` does.
pub struct Scheduler {
    stop: StopFlag,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Runs in flight each hold a read guard; shutting down takes the write guard, which waits
/// for every one of them to finish.
type InFlight = Arc<RwLock<()>>;

impl Scheduler {
    /// Starts every enabled job's schedule. Returns once the schedules are running, or
    /// with the reason they cannot.
    pub fn start(ctx: JobContext, jobs: &config::Jobs) -> Result<Self, JobError> {
        let plan: Vec<(JobName, String)> = JobName::all()
            .iter()
            .map(|job| (*job, job.schedule(jobs)))
            .filter(|(_, setting)| setting.enabled)
            .map(|(job, setting)| (job, setting.schedule.clone()))
            .collect();
        let stop = ctx.stop.clone();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("strongbox-jobs".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(runtime) => runtime.block_on(serve(ctx, plan, ready_tx, shutdown_rx)),
                    Err(e) => {
                        let _ = ready_tx.send(Err(JobError::SchedulerThread(e)));
                    }
                }
            })
            .map_err(JobError::SchedulerThread)?;
        let mut scheduler = Self {
            stop,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        };
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(scheduler),
            Ok(Err(e)) => {
                scheduler.shut_down();
                Err(e)
            }
            Err(_) => {
                scheduler.shut_down();
                Err(JobError::SchedulerThread(std::io::Error::other(
                    "the scheduler thread ended while starting",
                )))
            }
        }
    }

    /// Asks a job in flight to stop, ends the schedules, and waits for both.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.stop.request();
        if let Some(shutdown) = self.shutdown.take() {
            // The thread may have stopped already, on a signal.
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the job scheduler's thread panicked");
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The scheduler thread's life: start the schedules, report readiness, wait for the end,
/// then stop cleanly.
async fn serve(
    ctx: JobContext,
    plan: Vec<(JobName, String)>,
    ready: mpsc::Sender<Result<(), JobError>>,
    shutdown: oneshot::Receiver<()>,
) {
    let in_flight: InFlight = Arc::default();
    let mut scheduler = match schedule(&ctx, &plan, &in_flight).await {
        Ok(scheduler) => scheduler,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    let names: Vec<&str> = plan.iter().map(|(job, _)| job.as_str()).collect();
    tracing::info!(jobs = ?names, "job scheduler started");
    wait_for_shutdown(shutdown).await;
    ctx.stop.request();
    if let Err(e) = scheduler.shutdown().await {
        tracing::warn!(error = %e, "the job scheduler did not shut down cleanly");
    }
    let _idle = in_flight.write().await;
    tracing::info!("job scheduler stopped");
}

async fn schedule(
    ctx: &JobContext,
    plan: &[(JobName, String)],
    in_flight: &InFlight,
) -> Result<JobScheduler, JobError> {
    let scheduler = JobScheduler::new().await.map_err(JobError::Scheduler)?;
    for (job, cron) in plan {
        let entry = scheduled_run(*job, cron, ctx.clone(), Arc::clone(in_flight))?;
        scheduler.add(entry).await.map_err(JobError::Scheduler)?;
    }
    scheduler.start().await.map_err(JobError::Scheduler)?;
    Ok(scheduler)
}

/// One job's schedule entry: each tick runs the job on a blocking thread, unless a stop
/// was requested. A tick while the job still runs finds its lock taken and is skipped.
fn scheduled_run(
    job: JobName,
    cron: &str,
    ctx: JobContext,
    in_flight: InFlight,
) -> Result<Job, JobError> {
    Job::new_async(cron, move |_, _| {
        let ctx = ctx.clone();
        let in_flight = Arc::clone(&in_flight);
        Box::pin(async move {
            if ctx.stop.is_requested() {
                return;
            }
            // Moved into the blocking closure: released when the run itself ends, even if
            // this future is dropped first.
            let guard = in_flight.read_owned().await;
            let outcome = tokio::task::spawn_blocking(move || {
                let _guard = guard;
                runner::run(job, &ctx)
            })
            .await;
            match outcome {
                // The runner logged the run and recorded it.
                Ok(Ok(_)) => {}
                Ok(Err(JobError::AlreadyRunning(_))) => {
                    tracing::info!(job = %job, "job skipped: a run is already in progress");
                }
                Ok(Err(e)) => {
                    tracing::error!(job = %job, error = %error_chain(&e), "job could not run");
                }
                Err(_) => tracing::error!(job = %job, "job panicked"),
            }
        })
    })
    .map_err(JobError::Scheduler)
}

/// Until told to stop, or SIGTERM or SIGINT arrives (the HTTP server stops on them too).
async fn wait_for_shutdown(shutdown: oneshot::Receiver<()>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        let _ = shutdown.await;
        return;
    };
    tokio::select! {
        _ = shutdown => {}
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
