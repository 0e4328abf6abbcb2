//! The real `strongbox` binary: init, refusals at start-up, config check and key status.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::snapshot;

const BINARY: &str = env!("CARGO_BIN_EXE_strongbox");

/// Runs the binary with a clean STRONGBOX_* environment, the data dir set, and a deadline
/// so a server that wrongly starts cannot hang the suite.
pub(crate) fn strongbox(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BINARY);
    for (key, _) in std::env::vars() {
        if key.starts_with("STRONGBOX_") || key == "CREDENTIALS_DIRECTORY" {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .env("STRONGBOX_DATA_DIR", data_dir)
        .env("STRONGBOX_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn strongbox");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            child.kill().expect("kill");
            panic!("strongbox {args:?} did not exit: it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn initialised_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = strongbox(&data, &["init"], &[]);
    assert!(
        out.status.success(),
        "init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (tmp, data)
}

fn assert_refused(data: &Path, expected: &[&str]) {
    let before = snapshot(data);
    let out = strongbox(data, &["serve"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "serve must refuse; stderr: {stderr}");
    for phrase in expected {
        assert!(
            stderr.contains(phrase),
            "stderr should mention {phrase:?}: {stderr}"
        );
    }
    assert_eq!(snapshot(data), before, "the refusal changed the data dir");
}

#[test]
fn init_creates_owner_only_files_and_never_overwrites_the_key() {
    let (_tmp, data) = initialised_dir();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("workspaces")), 0o700);
    for file in ["master.key", "install.toml", "control.db"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    assert_eq!(
        std::fs::metadata(data.join("master.key")).unwrap().len(),
        32
    );

    let key = std::fs::read(data.join("master.key")).unwrap();
    let out = strongbox(&data, &["init"], &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already initialised"));
    assert_eq!(std::fs::read(data.join("master.key")).unwrap(), key);
}

#[test]
fn serve_refuses_a_world_readable_key() {
    let (_tmp, data) = initialised_dir();
    std::fs::set_permissions(
        data.join("master.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert_refused(&data, &["master key file", "0644", "chmod 600"]);
}

#[test]
fn serve_refuses_a_short_key() {
    let (_tmp, data) = initialised_dir();
    std::fs::write(data.join("master.key"), [7u8; 16]).unwrap();
    assert_refused(&data, &["master key file", "16 bytes", "exactly 32"]);
}

#[test]
fn serve_refuses_an_open_data_dir() {
    let (_tmp, data) = initialised_dir();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_refused(&data, &["data directory", "0755", "chmod 700"]);
}

#[test]
fn serve_refuses_an_open_empty_data_dir_without_creating_a_key() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_refused(&data, &["data directory", "0755"]);
    assert!(!data.join("master.key").exists());
}

#[test]
fn key_from_a_credentials_directory_is_used_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let creds = tmp.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("master.key"), [9u8; 32]).unwrap();
    std::fs::set_permissions(
        creds.join("master.key"),
        std::fs::Permissions::from_mode(0o400),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let env = [("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())];
    let out = strongbox(&data, &["init"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !data.join("master.key").exists(),
        "the credential is not copied into the data dir"
    );

    let out = strongbox(&data, &["keys", "status"], &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("systemd credential"), "{stdout}");
    // Without the credential the control database cannot be opened, and nothing is created.
    let out = strongbox(&data, &["keys", "status"], &[]);
    assert!(!out.status.success());
    assert!(!data.join("master.key").exists());

    // A credential others can read is refused like any key file.
    std::fs::set_permissions(
        creds.join("master.key"),
        std::fs::Permissions::from_mode(0o440),
    )
    .unwrap();
    let before = snapshot(&data);
    let out = strongbox(&data, &["serve"], &env);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("readable by group or others"));
    assert_eq!(snapshot(&data), before);
}

#[test]
fn keys_status_names_keys_without_showing_them() {
    let (_tmp, data) = initialised_dir();
    let out = strongbox(&data, &["keys", "status"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("strongbox/control-db/control/v1"),
        "{stdout}"
    );
    let key = std::fs::read(data.join("master.key")).unwrap();
    assert!(!stdout.contains(&hex::encode(&key)), "master key printed");
    assert!(
        !stdout.to_lowercase().contains(&hex::encode(&key[..8])),
        "key prefix printed"
    );
}

#[test]
fn config_check_elides_secrets_and_names_bad_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = tmp.path().join("strongbox.toml");
    std::fs::write(
        &file,
        "[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"smtp.example.com\"\nusername = \"relay\"\npassword = \"pw-do-not-print-8841\"\n",
    )
    .unwrap();
    let out = strongbox(
        &data,
        &["--config", file.to_str().unwrap(), "config", "check"],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("smtp.example.com"));
    assert!(!stdout.contains("pw-do-not-print-8841"), "{stdout}");
    assert!(!data.exists(), "config check must not touch the data dir");

    let out = strongbox(
        &data,
        &["config", "check"],
        &[("STRONGBOX_RATE_LIMITS__GENERAL__BURST", "0")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("rate_limits.general.burst"), "{stderr}");

    let out = strongbox(
        &data,
        &["config", "check"],
        &[("STRONGBOX_LISTEN", "not-an-address")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("listen is not valid"), "{stderr}");
    assert!(stderr.contains("STRONGBOX_"), "names the source: {stderr}");
    assert!(!stderr.contains("not-an-address"), "value echoed: {stderr}");

    let out = strongbox(
        &data,
        &["config", "check"],
        &[("STRONGBOX_LIMITS__JSON_BODY_BYTES", "canary-7731")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("limits.json_body_bytes has the wrong type"),
        "{stderr}"
    );
    assert!(!stderr.contains("canary-7731"), "value echoed: {stderr}");
}

#[test]
fn a_lost_install_file_is_refused_never_regenerated() {
    let (_tmp, data) = initialised_dir();
    std::fs::remove_file(data.join("install.toml")).unwrap();
    assert_refused(&data, &["no install.toml"]);
    let before = snapshot(&data);
    let out = strongbox(&data, &["init"], &[]);
    assert!(!out.status.success(), "init must not replace the salt");
    assert_eq!(snapshot(&data), before);
}

#[test]
fn a_lost_control_database_is_refused_never_recreated_empty() {
    let (_tmp, data) = initialised_dir();
    for file in ["control.db", "control.db-wal", "control.db-shm"] {
        let _ = std::fs::remove_file(data.join(file));
    }
    assert_refused(&data, &["control database", "missing"]);
    for args in [&["keys", "status"][..], &["init"][..]] {
        let out = strongbox(&data, args, &[]);
        assert!(!out.status.success(), "{args:?} must refuse");
        assert!(
            !data.join("control.db").exists(),
            "{args:?} recreated control.db"
        );
    }
}

#[test]
fn smtp_password_from_the_environment_is_never_printed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let env = [
        ("STRONGBOX_EMAIL__TRANSPORT", "smtp"),
        ("STRONGBOX_EMAIL__SMTP__HOST", "mail.example.com"),
        ("STRONGBOX_EMAIL__SMTP__PASSWORD", "00981234"),
    ];
    let out = strongbox(&data, &["config", "check"], &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("[redacted]"), "{stdout}");
    assert!(!stdout.contains("981234"), "{stdout}");
}
