use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use strongbox::app::{self, InitOutcome};
use strongbox::clock::SystemClock;
use strongbox::config::Config;
use strongbox::jobs::{self, JobContext, JobError, JobName, JobSettings, Outcome};

/// `strongbox jobs run` exits with this (EX_TEMPFAIL) when another run of the job is in
/// progress: nothing was done, and trying later is the remedy.
const EXIT_ALREADY_RUNNING: u8 = 75;

/// Strongbox: a self-hosted workspace server with one encrypted database per workspace.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// TOML config file. Every setting can also be given as a STRONGBOX_* variable,
    /// nested keys joined by "__" (for example STRONGBOX_RATE_LIMITS__GENERAL__BURST=50).
    #[arg(
        long,
        short,
        global = true,
        env = "STRONGBOX_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the data dir, master key and control database. Safe to re-run: an
    /// existing key is never overwritten.
    Init,
    /// Start the HTTP server, initialising an empty data dir first.
    Serve,
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Inspect encryption keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Run or list the scheduled jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print the effective values, secrets elided.
    Check,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Show which key ids and versions are in use. Never prints key material.
    Status,
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Run a job now and print what it did. Exits 1 if it fails, and 75 (doing nothing)
    /// if another run of the same job, here or in the server, is in progress.
    Run {
        #[arg(value_enum)]
        name: JobName,
    },
    /// List every job with its schedule and its last run.
    List,
}

fn main() -> ExitCode {
    // Every file and directory the process creates is owner-only.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("strongbox: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    strongbox::telemetry::init(&config.log);
    match cli.command {
        Command::Init => match app::init(&config)? {
            InitOutcome::Created => {
                println!("initialised {}", config.data_dir.display());
            }
            InitOutcome::AlreadyInitialised => {
                println!(
                    "{} is already initialised; nothing changed",
                    config.data_dir.display()
                );
            }
        },
        Command::Serve => app::serve(config)?,
        Command::Config(ConfigCommand::Check) => {
            println!("# configuration is valid\n{}", config.to_redacted_toml());
        }
        Command::Keys(KeysCommand::Status) => print_key_status(&config)?,
        Command::Jobs(JobsCommand::Run { name }) => return run_job(&config, name),
        Command::Jobs(JobsCommand::List) => list_jobs(&config)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn run_job(config: &Config, name: JobName) -> anyhow::Result<ExitCode> {
    let store = Arc::new(app::open(config)?.store);
    let context = JobContext::new(store, Arc::new(SystemClock), JobSettings::from(config));
    match jobs::run(name, &context) {
        Ok(run) => {
            println!("{run}");
            Ok(match run.outcome {
                Outcome::Failed => ExitCode::FAILURE,
                Outcome::Ok | Outcome::Stopped => ExitCode::SUCCESS,
            })
        }
        Err(JobError::AlreadyRunning(_)) => {
            eprintln!("strongbox: {name} is already running; nothing was done");
            Ok(ExitCode::from(EXIT_ALREADY_RUNNING))
        }
        Err(e) => Err(e.into()),
    }
}

fn list_jobs(config: &Config) -> anyhow::Result<()> {
    let store = app::open(config)?.store;
    println!(
        "{:<16} {:<22} {:<24} {:>9}  {:<8} SUMMARY",
        "JOB", "SCHEDULE (UTC)", "LAST RUN", "DURATION", "OUTCOME"
    );
    for job in JobName::all() {
        let setting = job.schedule(&config.jobs);
        let schedule = match setting.enabled {
            true => setting.schedule.clone(),
            false => "off (by hand only)".into(),
        };
        match jobs::last_run(&store, *job)? {
            Some(run) => println!(
                "{:<16} {:<22} {:<24} {:>6} ms  {:<8} {}",
                job.as_str(),
                schedule,
                jobs::format_utc(run.started_at),
                run.duration_ms,
                run.outcome.as_str(),
                run.summary
            ),
            None => println!("{:<16} {:<22} never", job.as_str(), schedule),
        }
    }
    Ok(())
}

fn print_key_status(config: &Config) -> anyhow::Result<()> {
    let opened = app::open(config)?;
    let store = &opened.store;
    println!(
        "master key: {} ({}), fingerprint {}",
        opened.key_source.path().display(),
        opened.key_source.describe(),
        store.master_key_fingerprint()
    );
    println!(
        "control database: {} (version {})",
        store.control_key_id(),
        store.control_key_version()
    );
    let workspaces = store.workspace_keys()?;
    println!("workspace databases: {}", workspaces.len());
    for key in workspaces {
        println!(
            "  {} (version {})",
            strongbox::crypto::KeyPurpose::WorkspaceDb(key.workspace).key_id(key.key_version),
            key.key_version
        );
    }
    Ok(())
}
