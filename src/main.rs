use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};
use strongbox::app::{self, InitOutcome};
use strongbox::audit::{Action, Actor, AuditLog, Chain, Entry, Filter};
use strongbox::backup::{self, BackupId, Identities, Source};
use strongbox::clock::SystemClock;
use strongbox::config::Config;
use strongbox::crypto::{KeyPurpose, KeySource};
use strongbox::ids::WorkspaceId;
use strongbox::jobs::{self, JobContext, JobError, JobName, JobSettings, Outcome};
use strongbox::keys::{MasterKeyChange, NewMasterKey};

/// `strongbox jobs run` exits with this (EX_TEMPFAIL) when another run of the job is in
/// progress: nothing was done, and trying later is the remedy. `strongbox keys rotate` exits
/// with it when the operator has to put the new master key in place and run it again.
const EXIT_TRY_AGAIN: u8 = 75;

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
    /// Verify and export the audit logs.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run or list the scheduled jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Make, list and verify backups.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Restore a backup into a new data dir. Everything is checked before anything is
    /// written there.
    Restore(RestoreArgs),
}

#[derive(Args)]
struct RestoreArgs {
    /// The backup's id, as `strongbox backup list` shows it.
    #[arg(long = "backup", value_name = "ID")]
    id: BackupId,
    /// The age identity file (its private key), kept off the server.
    #[arg(long, value_name = "FILE")]
    identity: PathBuf,
    /// The data dir to create. It must be empty or absent.
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// Read the backup from the off-site target instead of the local backup dir.
    #[arg(long)]
    offsite: bool,
    /// Move a non-empty `--to` aside (to DIR.before-restore-ID) instead of refusing.
    #[arg(long)]
    force: bool,
    /// The master key file the backup was made under; by default the configured one.
    #[arg(long, value_name = "FILE")]
    master_key: Option<PathBuf>,
    /// For the restore drill only: add an admin account with a random password to the
    /// restored copy's busiest workspace, and write its details to FILE (JSON, 0600).
    #[arg(long, value_name = "FILE")]
    drill_account: Option<PathBuf>,
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Back up every database now, copy the backup off-site and prune old ones; prints
    /// progress and a summary. Exits 1 if it fails, 75 if a backup is already running.
    Run,
    /// List the backups with their time, files and size.
    List {
        /// List the off-site target instead of the local backup dir.
        #[arg(long)]
        offsite: bool,
    },
    /// Check a backup: the manifest's MAC and every file's SHA-256; with --identity, also
    /// decrypt every database and check it through. Exits 1 if anything fails.
    Verify {
        id: BackupId,
        /// The age identity file, for the full check.
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
        #[arg(long)]
        offsite: bool,
        #[arg(long, value_name = "FILE")]
        master_key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk every chain (the system log and each workspace's), or one workspace's, and
    /// report the first broken link. Exits with status 1 if any chain is broken.
    Verify {
        #[arg(long, value_name = "ID")]
        workspace: Option<WorkspaceId>,
    },
    /// Write a log as JSON Lines to standard output: the system log, or a workspace's.
    Export {
        #[arg(long, value_name = "ID")]
        workspace: Option<WorkspaceId>,
        /// Only this action (for example `sign_in.failed`).
        #[arg(long)]
        action: Option<Action>,
        /// From this day on (UTC, YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        since: Option<NaiveDate>,
        /// Up to and including this day (UTC, YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        until: Option<NaiveDate>,
    },
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
    /// Rekey every database to its next key version, with the server stopped. Safe to run
    /// again after an interruption: it finishes what was begun. Exits 75 when the new master
    /// key has to be put in place by hand first (it says where), then run it again.
    Rotate {
        /// Also move the install to this master key (32 random bytes, owner-only), after
        /// every audit chain verifies; it replaces the key the server reads.
        #[arg(long, value_name = "FILE", conflicts_with = "generate_master_key")]
        new_master_key: Option<PathBuf>,
        /// Like --new-master-key, with a new random key written to FILE (0600) first.
        #[arg(long, value_name = "FILE")]
        generate_master_key: Option<PathBuf>,
    },
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
        Command::Keys(KeysCommand::Rotate {
            new_master_key,
            generate_master_key,
        }) => {
            let request = match (new_master_key, generate_master_key) {
                (Some(path), _) => NewMasterKey::Load(path),
                (None, Some(path)) => NewMasterKey::Generate(path),
                (None, None) => NewMasterKey::Keep,
            };
            return rotate_keys(&config, request);
        }
        Command::Audit(AuditCommand::Verify { workspace }) => {
            if !verify_audit(&config, workspace)? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Audit(AuditCommand::Export {
            workspace,
            action,
            since,
            until,
        }) => {
            let filter = Filter {
                action: action.map(|a| a.as_str().to_string()),
                ..Filter::default()
            }
            .within_days(since, until);
            export_audit(&config, workspace, &filter)?;
        }
        Command::Jobs(JobsCommand::Run { name }) => return run_job(&config, name),
        Command::Jobs(JobsCommand::List) => list_jobs(&config)?,
        Command::Backup(BackupCommand::Run) => return run_job(&config, JobName::Backup),
        Command::Backup(BackupCommand::List { offsite }) => list_backups(&config, offsite)?,
        Command::Backup(BackupCommand::Verify {
            id,
            identity,
            offsite,
            master_key,
        }) => {
            let master_key = master_key_file(&config, master_key);
            verify_backup(&config, &id, identity.as_deref(), offsite, &master_key)?;
        }
        Command::Restore(args) => restore_backup(&config, &args)?,
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
            Ok(ExitCode::from(EXIT_TRY_AGAIN))
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

/// The configured off-site target, or a clear refusal when there is none.
fn offsite(config: &Config) -> anyhow::Result<backup::Offsite> {
    let target =
        config.backup.offsite.as_ref().ok_or_else(|| {
            anyhow::anyhow!("no off-site target is configured ([backup.offsite])")
        })?;
    Ok(backup::Offsite::new(target)?)
}

/// The off-site copy when one was fetched, else the local backup dir.
fn backup_source<'a>(config: &'a Config, remote: Option<&'a backup::Offsite>) -> Source<'a> {
    match remote {
        Some(remote) => Source::Offsite(remote),
        None => Source::Local(&config.backup.dir),
    }
}

fn master_key_file(config: &Config, given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        KeySource::resolve(config.master_key_file.as_deref(), &config.data_dir)
            .path()
            .to_path_buf()
    })
}

fn list_backups(config: &Config, from_offsite: bool) -> anyhow::Result<()> {
    let store = app::open(config)?.store;
    let key = store.derive_key(backup::MAC_KEY.0, backup::MAC_KEY.1);
    let listed = match from_offsite {
        true => backup::list_offsite(&offsite(config)?, &key)?,
        false => backup::list_local(&config.backup.dir, &key)?,
    };
    println!(
        "{:<24} {:<24} {:>5} {:>12}  STATUS",
        "ID", "MADE (UTC)", "FILES", "BYTES"
    );
    for item in listed {
        let made = strongbox::clock::format_utc(item.id.created_at(), "%Y-%m-%d %H:%M:%S");
        match &item.manifest {
            Ok(manifest) => {
                let status = match from_offsite || item.is_complete(&config.backup.dir) {
                    true => "ok",
                    false => "incomplete",
                };
                println!(
                    "{:<24} {:<24} {:>5} {:>12}  {status}",
                    item.id,
                    made,
                    manifest.files.len(),
                    manifest.total_bytes()
                );
            }
            Err(e) => println!("{:<24} {:<24} {:>5} {:>12}  {e}", item.id, made, "-", "-"),
        }
    }
    Ok(())
}

fn verify_backup(
    config: &Config,
    id: &BackupId,
    identity: Option<&std::path::Path>,
    from_offsite: bool,
    master_key: &std::path::Path,
) -> anyhow::Result<()> {
    let remote = from_offsite.then(|| offsite(config)).transpose()?;
    let source = || backup_source(config, remote.as_ref());
    let scratch = &config.backup.dir;
    let manifest = match identity {
        Some(path) => {
            let identities = Identities::load(path)?;
            backup::verify_full(source(), id, master_key, &identities, scratch)?
        }
        None => backup::check(source(), id, master_key, scratch)?.manifest,
    };
    let depth = match identity {
        Some(_) => "manifest MAC, file hashes, decryption and database checks",
        None => "manifest MAC and file hashes (pass --identity for the full check)",
    };
    println!(
        "backup {id}: ok, {} files, {} bytes: {depth}",
        manifest.files.len(),
        manifest.total_bytes()
    );
    Ok(())
}

fn restore_backup(config: &Config, args: &RestoreArgs) -> anyhow::Result<()> {
    let RestoreArgs { id, to, .. } = args;
    if let Some(file) = &args.drill_account
        && file.exists()
    {
        anyhow::bail!("{} already exists; nothing was restored", file.display());
    }
    let master_key = master_key_file(config, args.master_key.clone());
    let identities = Identities::load(&args.identity)?;
    let remote = args.offsite.then(|| offsite(config)).transpose()?;
    let source = backup_source(config, remote.as_ref());
    // Where the server would look for the key when serving `to` with this configuration.
    let place_master_key = match KeySource::resolve(config.master_key_file.as_deref(), to) {
        KeySource::DataDir(path) => path.file_name().map(PathBuf::from),
        _ => None,
    };
    let restored = backup::restore(backup::RestoreRequest {
        source,
        id,
        master_key_file: &master_key,
        identities: &identities,
        to,
        force: args.force,
        place_master_key,
        drill_account: args.drill_account.is_some(),
    })?;
    if let Some(aside) = restored.moved_aside {
        println!(
            "moved the previous contents of {} to {}",
            to.display(),
            aside.display()
        );
    }
    println!(
        "restored backup {id} ({} files) into {}; start it with STRONGBOX_DATA_DIR={} strongbox serve",
        restored.manifest.files.len(),
        to.display(),
        to.display()
    );
    if let (Some(file), Some(account)) = (&args.drill_account, restored.drill_account) {
        let details = serde_json::json!({
            "email": account.email,
            "password": account.password.as_str(),
            "workspace": account.workspace,
            "collections": account.collections,
        });
        strongbox::private_file::create(file, details.to_string().as_bytes())
            .with_context(|| format!("cannot write {}", file.display()))?;
        println!("drill account written to {}", file.display());
    }
    Ok(())
}

fn audit_log(config: &Config) -> anyhow::Result<AuditLog> {
    let store = Arc::new(app::open(config)?.store);
    Ok(AuditLog::new(store, Arc::new(SystemClock)))
}

/// Prints one line per chain; false if any is broken.
fn verify_audit(config: &Config, workspace: Option<WorkspaceId>) -> anyhow::Result<bool> {
    let audit = audit_log(config)?;
    let chains = match workspace {
        Some(id) => vec![Chain::Workspace(id)],
        None => audit.chains()?,
    };
    let mut all_whole = true;
    for chain in chains {
        match audit.verify(chain)? {
            Ok(verified) => println!(
                "{chain}: ok, {} rows ({} removed by retention sweeps)",
                verified.rows, verified.swept_rows
            ),
            Err(broken) => {
                all_whole = false;
                println!("{chain}: BROKEN at {broken}");
            }
        }
    }
    Ok(all_whole)
}

/// Streams the rows to standard output, then records the export in the system log.
fn export_audit(
    config: &Config,
    workspace: Option<WorkspaceId>,
    filter: &Filter,
) -> anyhow::Result<()> {
    let audit = audit_log(config)?;
    let chain = workspace.map_or(Chain::System, Chain::Workspace);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut rows, mut failed) = (0usize, None);
    audit.each(chain, filter, |row| {
        match out.write_all(row.json_line().as_bytes()) {
            Ok(()) => rows += 1,
            Err(e) => failed = Some(e),
        }
        failed.is_none()
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    out.flush()?;
    let entry = Entry::new(Actor::system(), Action::AuditExported)
        .detail("log", chain.to_string())
        .detail("rows", rows)
        .detail("via", "cli");
    audit.record(Chain::System, entry)?;
    Ok(())
}

fn rotate_keys(config: &Config, request: NewMasterKey) -> anyhow::Result<ExitCode> {
    let rotated = app::rotate_keys(config, request)?;
    println!(
        "control database: {} (version {})",
        KeyPurpose::ControlDb.key_id(rotated.control_key_version),
        rotated.control_key_version
    );
    println!(
        "workspace databases: {}, each at its next key version",
        rotated.workspaces
    );
    match rotated.master_key {
        MasterKeyChange::Kept => println!("master key: kept"),
        MasterKeyChange::Installed {
            source,
            fingerprint,
            new_key,
        } => {
            println!(
                "master key: replaced at {} ({}), fingerprint {fingerprint}",
                source.path().display(),
                source.describe()
            );
            println!(
                "Keep the old master key offline until every backup made under it has expired."
            );
            if let Some(file) = new_key {
                println!(
                    "Store {} (the new key) offline too, then delete it from this machine.",
                    file.display()
                );
            }
        }
        MasterKeyChange::InstallByHand {
            source,
            new_key,
            fingerprint,
            reason,
        } => {
            println!(
                "master key: every database is under the new key (fingerprint {fingerprint}),\n\
                 but it cannot be written to {} ({}): {reason}.\n\
                 To finish: put the key in {} where the server reads it (for a systemd\n\
                 credential, the file the unit's LoadCredential= names), then run\n\
                 `strongbox keys rotate` again. The server refuses to start until then.",
                source.path().display(),
                source.describe(),
                new_key.display()
            );
            return Ok(ExitCode::from(EXIT_TRY_AGAIN));
        }
    }
    Ok(ExitCode::SUCCESS)
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
            KeyPurpose::WorkspaceDb(key.workspace).key_id(key.key_version),
            key.key_version
        );
    }
    Ok(())
}
