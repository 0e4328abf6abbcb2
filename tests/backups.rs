//! Backups end to end: a backup restores into a new data dir that serves the same records
//! and users with an intact audit log; a changed byte, a wrong identity or a wrong master
//! key is refused with nothing written; no backup file holds plaintext; old backups are
//! pruned. The CLI is the real `strongbox` binary.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use age::secrecy::ExposeSecret;
use serde_json::{Value, json};
use strongbox::audit::{AuditLog, Chain};
use strongbox::backup::{self, BackupId, Identities, RestoreRequest, Source};
use strongbox::clock::Clock;
use strongbox::config::OffsiteTarget;
use strongbox::jobs::{self, JobContext, JobName, JobSettings, Outcome};

use crate::common::{
    OWNER_EMAIL, OWNER_PASSWORD, TestServer, contains, create_workspace, files_under, make_token,
    set_up_owner, sign_in, snapshot,
};
use crate::rest_api::Api;

const DAY: i64 = 86_400;
pub(crate) const SENTINEL: &str = "Sentinel-Backup-Content-9e2f";
const RECORDS: usize = 20;

/// A server whose backups go to `<tmp>/backups` (and to `offsite`, if given), encrypted
/// to a fresh age identity kept in `<tmp>/identity.txt`.
pub(crate) fn server_with_backups(offsite: Option<OffsiteTarget>) -> (TestServer, PathBuf) {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let server = TestServer::start_with(|c| {
        c.backup.dir = c.data_dir.parent().unwrap().join("backups");
        c.backup.recipients = vec![recipient];
        c.backup.offsite = offsite;
    });
    let file = server.dir.dir.path().join("identity.txt");
    write_private(&file, identity.to_string().expose_secret().as_bytes());
    (server, file)
}

fn write_private(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// Runs the backup job; returns the id of the backup it made. (Two backups made in the same
/// second sort by their random suffix, so the newest is not always the last.)
pub(crate) fn backup_now(server: &TestServer) -> String {
    let before = backups(server);
    let context = JobContext::new(
        Arc::clone(&server.store),
        server.clock.clone(),
        JobSettings::from(&server.dir.config),
    );
    let run = jobs::run(JobName::Backup, &context).unwrap();
    assert_eq!(run.outcome, Outcome::Ok, "{run}");
    let made: Vec<String> = backups(server)
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    assert_eq!(made.len(), 1, "one new backup: {made:?}");
    made[0].clone()
}

/// The local backups' ids, oldest first (none before the first backup).
pub(crate) fn backups(server: &TestServer) -> Vec<String> {
    let Ok(entries) = fs::read_dir(&server.dir.config.backup.dir) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

/// The real binary, configured as the server is.
fn cli(server: &TestServer, args: &[&str]) -> Output {
    let config = &server.dir.config;
    let backups = config.backup.dir.to_str().unwrap();
    let env = [
        ("STRONGBOX_BACKUP__DIR", backups),
        ("STRONGBOX_LOG__FILTER", "warn"),
    ];
    crate::startup::strongbox(&config.data_dir, args, &env)
}

pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Writes the records that `records` reads, each holding the sentinel.
pub(crate) async fn put_records(server: &TestServer, token: &str) {
    let api = Api::new(server);
    for n in 0..RECORDS {
        let path = format!("/collections/customers/records/c{n}");
        let body = json!({"name": format!("{SENTINEL} {n}"), "email": format!("c{n}@example.com")});
        assert_eq!(api.put(token, &path, &body).await.0, 200);
    }
}

/// Every record the test wrote, as the API returns them.
pub(crate) async fn records(server: &TestServer, token: &str) -> Vec<Value> {
    let api = Api::new(server);
    let mut all = Vec::new();
    for n in 0..RECORDS {
        let (status, body) = api
            .get(token, &format!("/collections/customers/records/c{n}"))
            .await;
        assert_eq!(status, 200, "{body}");
        all.push(body);
    }
    all
}

#[actix_web::test]
async fn a_backup_restores_into_a_new_data_dir_with_the_same_records_users_and_audit_log() {
    let (server, identity) = server_with_backups(None);
    let mut owner = set_up_owner(&server).await;
    let ws = create_workspace(&mut owner, "Backed up").await;
    let token = make_token(&mut owner, &ws, "read_write").await;
    put_records(&server, &token).await;
    let before = records(&server, &token).await;

    let id = backup_now(&server);
    let backup_dir = server.dir.config.backup.dir.join(&id);
    let files = files_under(&backup_dir);
    assert!(files.len() >= 4, "{files:?}");
    for file in &files {
        let bytes = fs::read(file).unwrap();
        for plain in [SENTINEL, OWNER_EMAIL, "c7@example.com", "SQLite format 3"] {
            assert!(
                !contains(&bytes, plain.as_bytes()),
                "{} holds {plain:?}",
                file.display()
            );
        }
        let mode = fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    let listed = cli(&server, &["backup", "list"]);
    assert!(listed.status.success(), "{}", text(&listed));
    assert!(
        text(&listed).contains(&id) && text(&listed).contains(" ok"),
        "{}",
        text(&listed)
    );
    let identity_arg = identity.to_str().unwrap();
    let verified = cli(
        &server,
        &["backup", "verify", &id, "--identity", identity_arg],
    );
    assert!(verified.status.success(), "{}", text(&verified));

    let target = server.dir.dir.path().join("restored");
    let restore = || {
        let to = target.to_str().unwrap();
        cli(
            &server,
            &[
                "restore",
                "--backup",
                &id,
                "--identity",
                identity_arg,
                "--to",
                to,
            ],
        )
    };
    let restored = restore();
    assert!(restored.status.success(), "{}", text(&restored));
    let leftovers: Vec<_> = fs::read_dir(server.dir.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".strongbox-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The restored data dir starts and answers as the original did.
    let restored_server = TestServer::start_with(|c| c.data_dir = target.clone());
    assert_eq!(records(&restored_server, &token).await, before);
    let (_, page) = sign_in(&restored_server, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(page.status, 303, "the owner signs in: {}", page.body);
    let audit = AuditLog::new(
        Arc::clone(&restored_server.store),
        restored_server.clock.clone(),
    );
    for chain in audit.chains().unwrap() {
        assert!(audit.verify(chain).unwrap().is_ok(), "{chain}");
    }
    let mut restore_rows = 0;
    audit
        .each(Chain::System, &Default::default(), |row| {
            restore_rows += usize::from(row.action == "backup.restored");
            true
        })
        .unwrap();
    assert_eq!(restore_rows, 1);

    // A second restore into the now non-empty dir is refused.
    let again = restore();
    assert!(!again.status.success());
    assert!(text(&again).contains("is not empty"), "{}", text(&again));
}

/// Restores backup `id` into `<tmp>/<into>` with `extra` arguments; the command's output.
fn restore_into(
    server: &TestServer,
    id: &str,
    identity: &Path,
    into: &str,
    extra: &[&str],
) -> Output {
    let to = server.dir.dir.path().join(into);
    let mut args = vec![
        "restore",
        "--backup",
        id,
        "--identity",
        identity.to_str().unwrap(),
    ];
    args.extend(["--to", to.to_str().unwrap()]);
    args.extend(extra);
    cli(server, &args)
}

#[actix_web::test]
async fn backups_from_before_a_master_key_rotation_restore_with_the_old_key_and_later_ones_with_the_new()
 {
    let (server, identity) = server_with_backups(None);
    let mut owner = set_up_owner(&server).await;
    let ws = create_workspace(&mut owner, "Rotated").await;
    let token = make_token(&mut owner, &ws, "read_write").await;
    let path = "/collections/customers/records/c-1";
    let body = json!({"name": SENTINEL});
    assert_eq!(Api::new(&server).put(&token, path, &body).await.0, 200);
    let before_rotation = backup_now(&server);

    let dir = server.stop().await;
    let data = dir.config.data_dir.clone();
    let old_key = dir.dir.path().join("old.key");
    fs::copy(data.join("master.key"), &old_key).unwrap();
    let next = dir.dir.path().join("next.key");
    let rotate = [
        "keys",
        "rotate",
        "--generate-master-key",
        next.to_str().unwrap(),
    ];
    let rotated = crate::startup::strongbox(&data, &rotate, &[]);
    assert!(rotated.status.success(), "{}", text(&rotated));
    let server = TestServer::start_in(dir);
    let after_rotation = backup_now(&server);

    // Under the new master key, the old backup's manifest does not verify.
    let refused = restore_into(&server, &before_rotation, &identity, "old-no-key", &[]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("--master-key"),
        "{}",
        text(&refused)
    );
    assert!(!server.dir.dir.path().join("old-no-key").exists());

    let old_key_arg = ["--master-key", old_key.to_str().unwrap()];
    for (id, into, extra) in [
        (&before_rotation, "old", &old_key_arg[..]),
        (&after_rotation, "new", &[][..]),
    ] {
        let restored = restore_into(&server, id, &identity, into, extra);
        assert!(restored.status.success(), "{into}: {}", text(&restored));
        let target = server.dir.dir.path().join(into);
        let restored_server = TestServer::start_with(|c| c.data_dir = target.clone());
        let (status, record) = Api::new(&restored_server).get(&token, path).await;
        assert_eq!(status, 200, "{into}: {record}");
        assert_eq!(record["data"]["name"], SENTINEL, "{into}: {record}");
    }
}

#[actix_web::test]
async fn a_changed_byte_a_wrong_identity_or_a_wrong_master_key_is_refused_and_nothing_is_written() {
    let (server, identity) = server_with_backups(None);
    let mut owner = set_up_owner(&server).await;
    create_workspace(&mut owner, "Guarded").await;
    let id = backup_now(&server);
    let backup_dir = server.dir.config.backup.dir.join(&id);
    let identity_arg = identity.to_str().unwrap().to_string();
    let target = server.dir.dir.path().join("restored");
    let target_arg = target.to_str().unwrap().to_string();

    let other = server.dir.dir.path().join("other-identity.txt");
    let stranger = age::x25519::Identity::generate();
    write_private(&other, stranger.to_string().expose_secret().as_bytes());
    let wrong_key = server.dir.dir.path().join("wrong.key");
    write_private(&wrong_key, &[7u8; 32]);

    let workspace_file = files_under(&backup_dir.join("workspaces")).pop().unwrap();
    let cases: Vec<(&str, Change, Change, Vec<String>, &str)> = vec![
        (
            "a changed byte in a database file",
            flip_byte(backup_dir.join("control.db.age"), 200),
            flip_byte(backup_dir.join("control.db.age"), 200),
            vec![],
            "does not match the manifest",
        ),
        (
            "a changed byte in a workspace file",
            flip_byte(workspace_file.clone(), 100),
            flip_byte(workspace_file.clone(), 100),
            vec![],
            "does not match the manifest",
        ),
        (
            "a changed manifest",
            replace_in(
                backup_dir.join("manifest.json"),
                "\"format\": 1",
                "\"format\": 1 ",
            ),
            replace_in(
                backup_dir.join("manifest.json"),
                "\"format\": 1 ",
                "\"format\": 1",
            ),
            vec![],
            "", // whitespace is not content: this one must pass
        ),
        (
            "a changed manifest value",
            replace_in(
                backup_dir.join("manifest.json"),
                "\"control_key_version\": 1",
                "\"control_key_version\": 2",
            ),
            replace_in(
                backup_dir.join("manifest.json"),
                "\"control_key_version\": 2",
                "\"control_key_version\": 1",
            ),
            vec![],
            "does not match its MAC",
        ),
        (
            "a wrong age identity",
            Box::new(|| {}),
            Box::new(|| {}),
            vec!["--identity".into(), other.to_str().unwrap().into()],
            "matches none of the backup's recipients",
        ),
        (
            "a wrong master key",
            Box::new(|| {}),
            Box::new(|| {}),
            vec!["--master-key".into(), wrong_key.to_str().unwrap().into()],
            "does not match its MAC",
        ),
    ];
    for (what, break_it, mend_it, extra, message) in cases {
        break_it();
        let before = snapshot(server.dir.dir.path());
        let mut verify: Vec<String> = vec!["backup".into(), "verify".into(), id.clone()];
        let mut restore: Vec<String> = vec![
            "restore".into(),
            "--backup".into(),
            id.clone(),
            "--to".into(),
            target_arg.clone(),
        ];
        let has_identity = extra.iter().any(|a| a == "--identity");
        if !has_identity {
            verify.extend(["--identity".into(), identity_arg.clone()]);
            restore.extend(["--identity".into(), identity_arg.clone()]);
        }
        verify.extend(extra.iter().cloned());
        restore.extend(extra.iter().cloned());
        for args in [&verify, &restore] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let output = cli(&server, &args);
            if message.is_empty() {
                assert!(output.status.success(), "{what}: {}", text(&output));
                if args[0] == "restore" {
                    fs::remove_dir_all(&target).unwrap();
                }
                continue;
            }
            assert!(!output.status.success(), "{what}: {} succeeded", args[0]);
            assert!(text(&output).contains(message), "{what}: {}", text(&output));
            assert!(!target.exists(), "{what}: {} wrote the target", args[0]);
            assert_eq!(
                snapshot(server.dir.dir.path()),
                before,
                "{what}: {} wrote",
                args[0]
            );
        }
        mend_it();
    }
}

/// A change made to a backup, and its undoing.
type Change = Box<dyn Fn()>;

fn flip_byte(path: PathBuf, at: usize) -> Change {
    Box::new(move || {
        let mut bytes = fs::read(&path).unwrap();
        let at = at.min(bytes.len() - 1);
        bytes[at] ^= 0x01;
        fs::write(&path, bytes).unwrap();
    })
}

fn replace_in(path: PathBuf, from: &'static str, to: &'static str) -> Change {
    Box::new(move || {
        let body = fs::read_to_string(&path).unwrap();
        assert!(body.contains(from), "{from} in {body}");
        fs::write(&path, body.replacen(from, to, 1)).unwrap();
    })
}

#[actix_web::test]
async fn backups_older_than_the_retention_are_pruned_and_the_newest_good_one_never() {
    let (server, _) = server_with_backups(None);
    set_up_owner(&server).await;
    let first = backup_now(&server);
    server.clock.advance(20 * DAY);
    let second = backup_now(&server);
    server.clock.advance(20 * DAY);
    let third = backup_now(&server);
    assert_eq!(
        backups(&server),
        [second.clone(), third.clone()],
        "the 40-day-old one went"
    );

    // Damage the newest so it no longer counts as good, then let everything age: the run
    // makes a new good backup and prunes every old one.
    fs::remove_file(
        server
            .dir
            .config
            .backup
            .dir
            .join(&third)
            .join("control.db.age"),
    )
    .unwrap();
    server.clock.advance(100 * DAY);
    let fourth = backup_now(&server);
    assert_eq!(backups(&server), std::slice::from_ref(&fourth));
    assert!(!backups(&server).contains(&first));

    // A run that fails (no recipients) prunes nothing.
    server.clock.advance(100 * DAY);
    let mut settings = JobSettings::from(&server.dir.config);
    settings.backup.recipients.clear();
    let context = JobContext::new(Arc::clone(&server.store), server.clock.clone(), settings);
    let run = jobs::run(JobName::Backup, &context).unwrap();
    assert_eq!(run.outcome, Outcome::Failed);
    assert!(run.summary.contains("no backup recipients"), "{run}");
    assert_eq!(backups(&server), [fourth]);
    assert!(server.clock.now() > 0);
}

/// Backs the server up (to a fresh identity, whatever its config says), restores the
/// backup in-process into a new data dir, and returns the restored system log's rows.
pub(crate) fn restored_system_log(server: &TestServer) -> Vec<Value> {
    let identity = age::x25519::Identity::generate();
    let root = server.dir.dir.path();
    let mut settings = JobSettings::from(&server.dir.config);
    settings.backup.dir = root.join("tour-backups");
    settings.backup.recipients = vec![identity.to_public().to_string()];
    let context = JobContext::new(Arc::clone(&server.store), server.clock.clone(), settings);
    let run = jobs::run(JobName::Backup, &context).unwrap();
    assert_eq!(run.outcome, Outcome::Ok, "{run}");
    let id: BackupId = fs::read_dir(root.join("tour-backups"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .parse()
        .unwrap();
    let identity_file = root.join("tour-identity.txt");
    write_private(
        &identity_file,
        identity.to_string().expose_secret().as_bytes(),
    );
    let master_key = server.dir.config.data_dir.join("master.key");
    let to = root.join("tour-restored");
    backup::restore(RestoreRequest {
        source: Source::Local(&root.join("tour-backups")),
        id: &id,
        master_key_file: &master_key,
        identities: &Identities::load(&identity_file).unwrap(),
        to: &to,
        force: false,
        place_master_key: None,
        drill_account: false,
    })
    .unwrap();
    let config = strongbox::config::Config {
        data_dir: to,
        master_key_file: Some(master_key),
        ..Default::default()
    };
    let store = Arc::new(strongbox::app::open(&config).unwrap().store);
    let audit = AuditLog::new(store, server.clock.clone());
    let mut rows = Vec::new();
    audit
        .each(Chain::System, &Default::default(), |row| {
            rows.push(serde_json::to_value(&row).unwrap());
            true
        })
        .unwrap();
    rows
}
