use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use strongbox::app::{self, InitOutcome};
use strongbox::config::Config;

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

fn main() -> ExitCode {
    // Every file and directory the process creates is owner-only.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strongbox: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
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
