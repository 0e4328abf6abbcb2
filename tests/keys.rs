//! `strongbox keys rotate` on real SQLCipher files with the real binary: every database
//! moves to its next key (and, when asked, under a new master key), the old keys open
//! nothing, the server serves the same data afterwards, and what could go wrong is tried:
//! a running server, an interrupted rotation, a broken audit chain, a key file the process
//! cannot write.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use strongbox::audit::{Action, Actor, AuditLog, Chain, Entry};
use strongbox::clock::Clock;
use strongbox::crypto::{KeyPurpose, KeyRing, MasterKey};
use strongbox::ids::WorkspaceId;
use strongbox::store::{InstallInfo, PendingRotation, StoreError};

use crate::common::{
    OWNER_EMAIL, OWNER_PASSWORD, TestDir, TestServer, create_workspace, make_token, set_up_owner,
    sign_in, snapshot,
};
use crate::storage::{is_not_a_database, key_ring, raw_open, read_notes, write_note};

const RECORD: &str = "/api/v1/collections/customers/records/c-1";

fn run(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    crate::startup::strongbox(data, args, env)
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs the command, which must fail saying `phrase`.
fn refused(data: &Path, args: &[&str], phrase: &str) {
    let out = run(data, args, &[]);
    let said = text(&out);
    assert!(!out.status.success(), "{args:?} must fail: {said}");
    assert!(
        said.contains(phrase),
        "{args:?} should say {phrase:?}: {said}"
    );
}

/// Runs the command and insists it succeeds; returns its standard output.
fn ok(data: &Path, args: &[&str]) -> String {
    let out = run(data, args, &[]);
    assert!(out.status.success(), "{args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn workspace_db(data: &Path, id: WorkspaceId) -> PathBuf {
    data.join(format!("workspaces/{id}/workspace.db"))
}

/// Each database file and the key purpose that opens it.
fn databases(data: &Path, workspaces: &[WorkspaceId]) -> Vec<(PathBuf, KeyPurpose)> {
    let mut all = vec![(data.join("control.db"), KeyPurpose::ControlDb)];
    all.extend(
        workspaces
            .iter()
            .map(|id| (workspace_db(data, *id), KeyPurpose::WorkspaceDb(*id))),
    );
    all
}

fn opens(path: &Path, ring: &KeyRing, purpose: KeyPurpose, version: u32) -> bool {
    let key = ring.derive(purpose, version).sqlcipher_raw_key();
    let opened = raw_open(path, Some(&key));
    if opened.is_ok() {
        return true;
    }
    assert!(is_not_a_database(opened), "{}", path.display());
    false
}

/// The exported rows of one log with this action.
fn exported(data: &Path, workspace: Option<WorkspaceId>, action: &str) -> Vec<Value> {
    let mut args = vec!["audit", "export", "--action", action];
    let id = workspace.map(|id| id.to_string());
    if let Some(id) = &id {
        args.extend(["--workspace", id]);
    }
    ok(data, &args)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

async fn put_record(server: &TestServer, token: &str) {
    let response = reqwest::Client::new()
        .put(server.url(RECORD))
        .bearer_auth(token)
        .json(&json!({"name": "Ada Lovelace", "plan": "gold"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// A server with the owner, a workspace and a record in it, stopped: its data dir, the
/// workspace and the personal token that wrote the record.
async fn populated() -> (TestDir, WorkspaceId, String) {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let ws = create_workspace(&mut owner, "Rotated").await;
    let token = make_token(&mut owner, &ws, "read_write").await;
    put_record(&server, &token).await;
    (server.stop().await, ws.parse().unwrap(), token)
}

#[actix_web::test]
async fn rotation_moves_every_database_to_its_next_key_and_the_server_serves_the_same_data() {
    let (dir, ws, token) = populated().await;
    let data = dir.data_dir().to_path_buf();
    let ring = key_ring(&dir);

    let stdout = ok(&data, &["keys", "rotate"]);
    assert!(
        stdout.contains("strongbox/control-db/control/v2"),
        "{stdout}"
    );
    assert!(stdout.contains("workspace databases: 1"), "{stdout}");
    assert!(stdout.contains("master key: kept"), "{stdout}");

    for (path, purpose) in databases(&data, &[ws]) {
        assert!(!opens(&path, &ring, purpose, 1), "{path:?} refuses v1");
        assert!(opens(&path, &ring, purpose, 2), "{path:?} opens with v2");
    }
    assert_eq!(
        InstallInfo::load(&data.join("install.toml"))
            .unwrap()
            .control_key_version,
        2
    );
    let status = ok(&data, &["keys", "status"]);
    assert!(status.contains("control/v2 (version 2)"), "{status}");
    assert!(
        status.contains(&format!("workspace-db/{ws}/v2 (version 2)")),
        "{status}"
    );
    let verified = ok(&data, &["audit", "verify"]);
    assert!(verified.contains("system: ok"), "{verified}");
    let rows = exported(&data, Some(ws), "keys.rotated");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["target"],
        format!("key:strongbox/workspace-db/{ws}/v2")
    );
    assert_eq!(
        rows[0]["details"],
        json!({"from_version": 1, "to_version": 2, "master_key_changed": false})
    );
    let rows = exported(&data, None, "keys.rotated");
    assert_eq!(rows[0]["details"]["workspaces"], 1);

    // The server starts on it and serves the same people the same record.
    let server = TestServer::start_in(dir);
    let (mut owner, page) = sign_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(owner.get(&format!("/w/{ws}")).await.status, 200);
    let response = reqwest::Client::new()
        .get(server.url(RECORD))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["name"], "Ada Lovelace", "{body}");
}

#[actix_web::test]
async fn after_a_new_master_key_the_old_key_opens_nothing_and_the_new_one_everything() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let ws = create_workspace(&mut owner, "Moved").await;
    let id: WorkspaceId = ws.parse().unwrap();
    make_token(&mut owner, &ws, "read").await;
    // Sweeps leave signed anchors, which the new key has to sign again.
    let audit = AuditLog::new(Arc::clone(&server.store), server.clock.clone());
    let cutoff = server.clock.now() + 1;
    for chain in [Chain::System, Chain::Workspace(id)] {
        assert!(audit.sweep(chain, cutoff).unwrap() > 0);
    }
    drop(audit);
    let dir = server.stop().await;
    let data = dir.data_dir().to_path_buf();
    let old = key_ring(&dir);
    let old_key = std::fs::read(data.join("master.key")).unwrap();
    let next = dir.dir.path().join("next.key");

    let stdout = ok(
        &data,
        &["keys", "rotate", "--generate-master-key", path(&next)],
    );
    assert!(stdout.contains("master key: replaced at"), "{stdout}");
    assert!(
        stdout.contains("Keep the old master key offline"),
        "{stdout}"
    );
    let new_key = std::fs::read(data.join("master.key")).unwrap();
    assert_eq!(new_key, std::fs::read(&next).unwrap());
    assert_ne!(new_key, old_key);
    for file in [data.join("master.key"), next.clone()] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file:?}");
    }

    let new = key_ring(&dir);
    for (path, purpose) in databases(&data, &[id]) {
        for version in [1, 2] {
            assert!(
                !opens(&path, &old, purpose, version),
                "{path:?} under the old key"
            );
        }
        assert!(!opens(&path, &new, purpose, 1), "{path:?}");
        assert!(opens(&path, &new, purpose, 2), "{path:?} under the new key");
    }
    let verified = ok(&data, &["audit", "verify"]);
    assert!(
        verified.contains(&format!("workspace {id}: ok")) && !verified.contains("(0 removed"),
        "both chains verify with their re-signed anchors: {verified}"
    );
    let rows = exported(&data, None, "keys.rotated");
    assert_eq!(rows[0]["details"]["master_key_changed"], true);
    assert_eq!(
        rows[0]["details"]["master_key_fingerprint"],
        new.fingerprint()
    );
    let all =
        ok(&data, &["audit", "export"]) + &ok(&data, &["audit", "export", "--workspace", &ws]);
    for key in [&old_key, &new_key] {
        assert!(!all.contains(&hex::encode(key)), "a row holds a master key");
    }

    // The old master key, put back, opens nothing.
    std::fs::write(data.join("master.key"), &old_key).unwrap();
    refused(
        &data,
        &["keys", "status"],
        "does not open with the derived key",
    );
}

/// Starts `strongbox serve` and waits until it answers `/healthz`.
fn serve(data: &Path) -> Child {
    let json_logs = [("STRONGBOX_LOG__FORMAT", "json")];
    let mut server = crate::jobs::strongbox(data, &["serve"], &json_logs)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = crate::jobs::stderr_lines(&mut server);
    let mut seen = Vec::new();
    crate::jobs::wait_for_line(&lines, "strongbox is listening", &mut seen);
    let line: Value = serde_json::from_str(seen.last().unwrap()).unwrap();
    let addr = line["listen"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !healthy(&addr) {
        assert!(Instant::now() < deadline, "no answer from {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

fn healthy(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let mut answer = String::new();
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .and_then(|()| stream.read_to_string(&mut answer))
        .is_ok()
        && answer.starts_with("HTTP/1.0 200")
}

/// Stops the server as systemd would; it must exit cleanly.
fn stop(mut server: Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(server.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = crate::jobs::wait_with_deadline(&mut server, "strongbox serve");
    assert!(status.success());
}

#[test]
fn rotation_is_refused_while_the_server_runs_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    ok(&data, &["init"]);
    let server = serve(&data);

    let install = std::fs::read(data.join("install.toml")).unwrap();
    let key = std::fs::read(data.join("master.key")).unwrap();
    let next = tmp.path().join("next.key");
    for args in [
        &["keys", "rotate"][..],
        &["keys", "rotate", "--generate-master-key", path(&next)],
    ] {
        refused(&data, args, "stop them first");
    }
    assert!(!next.exists(), "no key was generated");
    assert_eq!(std::fs::read(data.join("install.toml")).unwrap(), install);
    assert_eq!(std::fs::read(data.join("master.key")).unwrap(), key);
    // Other commands keep working beside the server; a second server does not start.
    assert!(ok(&data, &["keys", "status"]).contains("control/v1 (version 1)"));
    assert!(ok(&data, &["jobs", "run", "usage-sweep"]).starts_with("usage-sweep ok"));
    refused(&data, &["serve"], "is in use by another");

    stop(server);
    assert!(ok(&data, &["keys", "rotate"]).contains("control/v2"));
}

/// An install with two workspaces, each holding a note and (as every workspace's log does)
/// its creation in its audit log, and the store closed.
fn two_workspaces() -> (TestDir, [WorkspaceId; 2]) {
    let dir = TestDir::new();
    let store = Arc::new(dir.open_store());
    let audit = AuditLog::new(Arc::clone(&store), Arc::new(strongbox::clock::SystemClock));
    let ids = [WorkspaceId::new_random(), WorkspaceId::new_random()];
    for id in ids {
        store.create_workspace(id).unwrap();
        let created = Entry::new(Actor::system(), Action::WorkspaceCreated);
        audit.record(Chain::Workspace(id), created).unwrap();
        write_note(&store, id, "kept");
    }
    drop(audit);
    drop(store);
    (dir, ids)
}

/// What a rotation killed after its first workspace's rekey leaves: the records of step 1
/// and one database under its pending key, nothing recorded about it yet.
fn interrupt_after_first_rekey(dir: &TestDir, first: WorkspaceId, new: Option<&KeyRing>) {
    let store = dir.open_store();
    store
        .control()
        .write(|tx| {
            tx.execute(
                "UPDATE workspaces SET pending_key_version = key_version + 1",
                [],
            )
            .map_err(StoreError::from)
        })
        .unwrap();
    drop(store);
    let install_file = dir.data_dir().join("install.toml");
    let mut install = InstallInfo::load(&install_file).unwrap();
    install.rotation = Some(PendingRotation {
        control_key_version: 2,
        master_key_fingerprint: new.map(KeyRing::fingerprint),
    });
    install.replace(&install_file).unwrap();

    let purpose = KeyPurpose::WorkspaceDb(first);
    let old = key_ring(dir).derive(purpose, 1).sqlcipher_raw_key();
    let next = new
        .unwrap_or(&key_ring(dir))
        .derive(purpose, 2)
        .sqlcipher_raw_key();
    let conn = rusqlite::Connection::open(workspace_db(dir.data_dir(), first)).unwrap();
    conn.execute_batch(&format!("PRAGMA key = \"{}\";", *old))
        .unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode = delete", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    conn.execute_batch(&format!("PRAGMA rekey = \"{}\";", *next))
        .unwrap();
}

/// Every workspace is recorded at key version 2 and still holds its note.
fn assert_moved_with_notes(dir: &TestDir, ids: &[WorkspaceId]) {
    let store = strongbox::app::open(&dir.config).unwrap().store;
    let keys = store.workspace_keys().unwrap();
    assert_eq!(keys.len(), ids.len());
    assert!(keys.iter().all(|k| k.key_version == 2), "{keys:?}");
    for id in ids {
        assert_eq!(read_notes(&store, *id), ["kept"]);
    }
}

#[test]
fn an_interrupted_rotation_is_finished_by_the_next_run_and_nothing_else_opens_it_meanwhile() {
    let (dir, ids) = two_workspaces();
    let data = dir.data_dir().to_path_buf();
    interrupt_after_first_rekey(&dir, ids[0], None);
    let ring = key_ring(&dir);
    assert!(opens(
        &workspace_db(&data, ids[0]),
        &ring,
        KeyPurpose::WorkspaceDb(ids[0]),
        2
    ));

    let before = snapshot(&data);
    for args in [
        &["serve"][..],
        &["keys", "status"],
        &["jobs", "run", "usage-sweep"],
    ] {
        refused(&data, args, "a key rotation is unfinished");
    }
    assert_eq!(snapshot(&data), before, "the refusals changed nothing");

    let stdout = ok(&data, &["keys", "rotate"]);
    assert!(stdout.contains("workspace databases: 2"), "{stdout}");
    for (path, purpose) in databases(&data, &ids) {
        assert!(!opens(&path, &ring, purpose, 1), "{path:?}");
        assert!(opens(&path, &ring, purpose, 2), "{path:?}");
    }
    assert_moved_with_notes(&dir, &ids);
    ok(&data, &["audit", "verify"]);
    for id in ids {
        assert_eq!(
            exported(&data, Some(id), "keys.rotated").len(),
            1,
            "once each"
        );
    }
    stop(serve(&data));
}

#[test]
fn an_interrupted_master_key_rotation_is_finished_only_with_the_same_new_key() {
    let (dir, ids) = two_workspaces();
    let data = dir.data_dir().to_path_buf();
    let next = dir.dir.path().join("next.key");
    let salt = InstallInfo::load(&data.join("install.toml")).unwrap().salt;
    let new = KeyRing::new(MasterKey::create(&next).unwrap(), salt);
    interrupt_after_first_rekey(&dir, ids[0], Some(&new));

    let other = dir.dir.path().join("other.key");
    let generate = ["keys", "rotate", "--generate-master-key", path(&other)];
    refused(&data, &generate, &new.fingerprint());
    assert!(!other.exists(), "no key is made for an unfinished rotation");
    MasterKey::create(&other).unwrap();
    for args in [
        &["keys", "rotate"][..],
        &["keys", "rotate", "--new-master-key", path(&other)],
    ] {
        refused(&data, args, &new.fingerprint());
    }

    ok(&data, &["keys", "rotate", "--new-master-key", path(&next)]);
    assert_eq!(key_ring(&dir).fingerprint(), new.fingerprint());
    for (path, purpose) in databases(&data, &ids) {
        assert!(opens(&path, &new, purpose, 2), "{path:?}");
    }
    assert_moved_with_notes(&dir, &ids);
    let verified = ok(&data, &["audit", "verify"]);
    assert_eq!(verified.matches(": ok").count(), 3, "{verified}");
    stop(serve(&data));
}

#[actix_web::test]
async fn a_broken_audit_chain_stops_a_master_key_rotation_before_anything_changes() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let ws = create_workspace(&mut owner, "Tampered").await;
    make_token(&mut owner, &ws, "read").await;
    let db = server.store.workspace(ws.parse().unwrap()).unwrap();
    db.write(|tx| {
        tx.execute_batch(
            "DROP TRIGGER audit_log_append_only;
             UPDATE audit_log SET details = replace(details, 'read', 'reae') WHERE seq = 2;",
        )
        .map_err(StoreError::from)
    })
    .unwrap();
    drop(db);
    let dir = server.stop().await;
    let data = dir.data_dir().to_path_buf();
    let next = dir.dir.path().join("next.key");
    MasterKey::create(&next).unwrap();

    let unlocked = |data: &Path| {
        let mut files = snapshot(data);
        files.retain(|path, _| !path.starts_with(data.join("locks")));
        files
    };
    let before = unlocked(&data);
    let broken = format!("the audit log of workspace {ws} is broken at row 2");
    refused(
        &data,
        &["keys", "rotate", "--new-master-key", path(&next)],
        &broken,
    );
    assert_eq!(unlocked(&data), before, "nothing changed");
}

#[test]
fn a_key_the_process_cannot_write_is_put_in_place_by_the_operator_then_the_rotation_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let creds = tmp.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    let credential = creds.join("master.key");
    MasterKey::create(&credential).unwrap();
    let data = tmp.path().join("data");
    let env = [("CREDENTIALS_DIRECTORY", path(&creds))];
    assert!(run(&data, &["init"], &env).status.success());
    let next = tmp.path().join("next.key");

    let out = run(
        &data,
        &["keys", "rotate", "--generate-master-key", path(&next)],
        &env,
    );
    assert_eq!(out.status.code(), Some(75), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("systemd credential"), "{said}");
    assert!(said.contains("`strongbox keys rotate` again"), "{said}");
    let serve = run(&data, &["serve"], &env);
    assert!(!serve.status.success());
    assert!(text(&serve).contains("is unfinished"), "{}", text(&serve));

    std::fs::copy(&next, &credential).unwrap();
    let out = run(&data, &["keys", "rotate"], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("replaced at"), "{}", text(&out));
    let status = run(&data, &["keys", "status"], &env);
    assert!(
        text(&status).contains("control/v2 (version 2)"),
        "{}",
        text(&status)
    );
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}
