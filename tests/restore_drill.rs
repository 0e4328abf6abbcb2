//! `scripts/restore-drill.sh`, run as an operator's cron would run it, against the backups
//! of a live install: it passes every step on a good backup, fails on a damaged one, and
//! whatever happens (a failure, or being stopped part-way) leaves no directory and no
//! server behind. The live install is never touched.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::backups::{backup_now, put_records, server_with_backups, text};
use crate::common::{TestServer, create_workspace, make_token, set_up_owner};
use crate::rest_api::Api;

const STEPS: [&str; 11] = [
    "find the backup",
    "restore",
    "start the server",
    "health",
    "sign in",
    "dashboard pages",
    "make a token",
    "records and search",
    "agent pairing and sync",
    "MCP tools/list and search",
    "audit verify",
];

/// The drill's command line: the live install's config, the identity, and a temp dir of
/// its own so the test can see what it leaves behind.
fn drill(server: &TestServer, identity: &Path) -> (Command, PathBuf) {
    let backup = &server.dir.config.backup;
    let root = server.dir.dir.path();
    let config = root.join("strongbox.toml");
    let settings = format!(
        "data_dir = {:?}\n\n[backup]\ndir = {:?}\nrecipients = {:?}\n",
        server.dir.config.data_dir.to_str().unwrap(),
        backup.dir.to_str().unwrap(),
        backup.recipients,
    );
    fs::write(&config, settings).unwrap();
    let tmp = root.join("drill-tmp");
    fs::create_dir_all(&tmp).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/restore-drill.sh");
    let mut command = Command::new("bash");
    command
        .arg(script)
        .args(["--identity", identity.to_str().unwrap()])
        .args(["--config", config.to_str().unwrap()])
        .args(["--strongbox", env!("CARGO_BIN_EXE_strongbox")])
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("STRONGBOX_") {
            command.env_remove(key);
        }
    }
    (command, tmp)
}

fn output_of(mut command: Command) -> (Output, String) {
    let output = command.output().unwrap();
    let said = text(&output);
    (output, said)
}

fn is_empty(dir: &Path) -> bool {
    fs::read_dir(dir).unwrap().next().is_none()
}

#[actix_web::test]
#[ignore = "needs curl and jq; scripts/test.sh runs it"]
async fn the_drill_passes_on_a_good_backup_fails_on_a_damaged_one_and_leaves_nothing_behind() {
    let (server, identity) = server_with_backups(None);
    let mut owner = set_up_owner(&server).await;
    create_workspace(&mut owner, "Quiet").await;
    let busy = create_workspace(&mut owner, "Busy").await;
    let token = make_token(&mut owner, &busy, "read_write").await;
    put_records(&server, &token).await;
    let good = backup_now(&server);

    let (command, tmp) = drill(&server, &identity);
    let (output, text) = output_of(command);
    eprintln!("{text}");
    assert!(output.status.success(), "{text}");
    for step in STEPS {
        assert!(text.contains(&format!("[ ok ] {step}")), "{step}: {text}");
    }
    assert!(
        text.contains(&format!("PASS  restore drill of backup {good}")),
        "{text}"
    );
    assert!(text.contains("20 records as restored"), "{text}");
    assert!(is_empty(&tmp), "the drill dir is removed");
    // The drill wrote to its copy only.
    let (status, _) = Api::new(&server)
        .get(&token, "/collections/restore_drill/records/probe")
        .await;
    assert_eq!(status, 404);

    // Stopped part-way, with its server up, it still takes everything down.
    let (mut command, _) = drill(&server, &identity);
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|line| line.starts_with("[ ok ] start the server") || line.starts_with("FAIL"))
        .expect("the drill reports its server");
    let addr = started.rsplit(' ').next().unwrap().to_string();
    assert!(TcpStream::connect(&addr).is_ok(), "{started}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = crate::jobs::wait_with_deadline(&mut child, "the drill");
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(!status.success(), "{rest:?}");
    assert!(
        TcpStream::connect(&addr).is_err(),
        "the drill server is stopped: {rest:?}"
    );
    assert!(is_empty(&tmp), "the drill dir is removed");

    // A damaged backup fails the drill at the restore, and nothing is left either.
    let control = server
        .dir
        .config
        .backup
        .dir
        .join(&good)
        .join("control.db.age");
    let mut bytes = fs::read(&control).unwrap();
    bytes[100] ^= 1;
    fs::write(&control, bytes).unwrap();
    let (command, _) = drill(&server, &identity);
    let (output, text) = output_of(command);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("[FAIL] restore"), "{text}");
    assert!(text.contains("[skip] start the server"), "{text}");
    assert!(text.trim_end().ends_with("FAIL  restore drill"), "{text}");
    assert!(is_empty(&tmp), "the drill dir is removed");
}
