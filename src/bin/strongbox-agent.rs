//! `strongbox-agent`: the reference desktop agent. Pairs this device with a workspace once,
//! then syncs a folder of JSON and CSV files into it, masked on the device first.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use notify::{RecursiveMode, Watcher};
use url::Url;

use strongbox::agent::client::home::HomeError;
use strongbox::agent::client::state::SyncState;
use strongbox::agent::client::sync::{Session, SyncError};
use strongbox::agent::client::{
    AGENT_VERSION, AgentHome, ApiClient, Pairing, SyncReport, sync_folder,
};

#[derive(Parser)]
#[command(
    name = "strongbox-agent",
    version,
    about = "Syncs a folder into a Strongbox workspace"
)]
struct Cli {
    /// Where the agent keeps its pairing, credentials and sync state (default: the user's
    /// configuration directory).
    #[arg(long, global = true, env = "STRONGBOX_AGENT_HOME")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pairs this device with a workspace, using a code from its Agents page.
    Pair {
        #[arg(long)]
        server: Url,
        /// The pairing code; also read from STRONGBOX_AGENT_CODE so it stays out of the
        /// shell history.
        #[arg(long, env = "STRONGBOX_AGENT_CODE", hide_env_values = true)]
        code: String,
    },
    /// Syncs the folder's JSON and CSV files once, resuming an interrupted sync.
    Sync {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Syncs the folder now and again whenever its files change, until stopped.
    Watch {
        #[arg(long)]
        dir: PathBuf,
        /// Quiet time after a change before syncing, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        settle_ms: u64,
    },
    /// Shows the pairing and, for a folder, its last sync.
    Status {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let home = AgentHome::new(cli.home)?;
    match cli.command {
        Command::Pair { server, code } => pair(&home, &server, code.trim()),
        Command::Sync { dir } => {
            let mut session = Session::start(&home)?;
            let report = sync_folder(&mut session, &dir)?;
            print_report(&report);
            Ok(())
        }
        Command::Watch { dir, settle_ms } => watch(&home, &dir, Duration::from_millis(settle_ms)),
        Command::Status { dir } => status(&home, dir.as_deref()),
    }
}

fn pair(home: &AgentHome, server: &Url, code: &str) -> Result<()> {
    if home.pairing().is_ok() {
        bail!(
            "this device is already paired (see `strongbox-agent status`); use another --home to pair again"
        );
    }
    let api = ApiClient::new(server)?;
    let credentials = api.pair(code, AGENT_VERSION)?;
    let pairing = Pairing {
        server: server.clone(),
        agent_id: credentials.agent_id,
        workspace_id: credentials.workspace_id,
    };
    home.save_pairing(&pairing, &credentials.refresh_secret)
        .context("the pairing worked but could not be saved")?;
    println!(
        "Paired with workspace {} as agent {}.",
        pairing.workspace_id, pairing.agent_id
    );
    Ok(())
}

fn print_report(report: &SyncReport) {
    if report.resumed {
        println!("Resumed the batch an earlier run left unconfirmed.");
    }
    println!(
        "Synced {} batch(es): {} record(s) written, {} deleted.",
        report.batches, report.upserted, report.deleted
    );
    let counts = |map: &std::collections::BTreeMap<String, usize>| {
        map.iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !report.masked.is_empty() {
        println!("Masked on this device: {}.", counts(&report.masked));
    }
    if !report.backstop.is_empty() {
        println!("The server masked more: {}.", counts(&report.backstop));
    }
    if !report.set_aside.is_empty() {
        println!(
            "Left out, as the server would refuse them (too large, too many fields, or an id it does not accept): {}.",
            counts(&report.set_aside)
        );
    }
}

fn watch(home: &AgentHome, dir: &Path, settle: Duration) -> Result<()> {
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = tx.send(event);
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    let mut session = Session::start(home)?;
    println!("Watching {} (Ctrl-C stops).", dir.display());
    loop {
        match sync_folder(&mut session, dir) {
            Ok(report) => print_report(&report),
            // A failed run is reported and retried on the next change.
            Err(e) => eprintln!("sync failed: {:#}", anyhow::Error::from(e)),
        }
        // Wait for a change, then for the folder to settle.
        if rx.recv().is_err() {
            return Ok(());
        }
        while rx.recv_timeout(settle).is_ok() {}
    }
}

fn status(home: &AgentHome, dir: Option<&Path>) -> Result<()> {
    let pairing = home.pairing()?;
    println!("Server:    {}", pairing.server);
    println!("Workspace: {}", pairing.workspace_id);
    println!("Agent:     {}", pairing.agent_id);
    if let Some(dir) = dir {
        let state = SyncState::load(&home.state_path(dir))?;
        let records: usize = state.synced.values().map(|r| r.len()).sum();
        println!("Folder:    {} ({records} record(s) synced)", dir.display());
        match state.last_sync_at {
            Some(at) => println!("Last sync: {at} (Unix seconds)"),
            None => println!("Last sync: never"),
        }
        if state.pending.is_some() {
            println!("A batch is waiting to be confirmed; the next sync sends it again.");
        }
    }
    match Session::start(home) {
        Ok(mut session) => {
            session.heartbeat()?;
            println!("The server accepts this agent.");
        }
        // A running `watch` holds the credentials; asking the server now would race it.
        Err(SyncError::Home(HomeError::Busy(_))) => {
            println!(
                "Another strongbox-agent is running with this home; the server was not asked."
            );
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
