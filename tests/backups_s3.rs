//! The S3 off-site target against a real S3-compatible server: moto in server mode on
//! loopback, started by the test from the venv `scripts/test.sh` keeps (`STRONGBOX_MOTO`
//! names its `moto_server`). Backups go up byte for byte, are listed and restored from
//! the bucket once the local copies are gone, and age out there too.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use crate::backups::{backup_now, backups, put_records, records, server_with_backups, text};
use crate::common::{TestServer, create_workspace, make_token, set_up_owner};
use strongbox::config::OffsiteTarget;

const BUCKET: &str = "strongbox-offsite";
const DAY: i64 = 86_400;

/// A moto server on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Self {
        let program = std::env::var("STRONGBOX_MOTO").expect("STRONGBOX_MOTO names moto_server");
        let mut child = Command::new(program)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn moto_server");
        let lines = crate::jobs::stderr_lines(&mut child);
        let mut seen = Vec::new();
        crate::jobs::wait_for_line(&lines, "Running on http://127.0.0.1:", &mut seen);
        let line = seen.last().unwrap();
        let endpoint = line[line.find("http://").unwrap()..].trim().to_string();
        Self { child, endpoint }
    }

    fn target(&self) -> OffsiteTarget {
        OffsiteTarget::S3 {
            bucket: BUCKET.into(),
            prefix: "strongbox/".into(),
            region: "us-east-1".into(),
            endpoint: Some(self.endpoint.parse().unwrap()),
            access_key_id: Some("strongbox-test".into()),
            secret_access_key: Some("strongbox-test-secret".to_string().into()),
            allow_http: true,
        }
    }

    /// The object's bytes, read straight from the bucket.
    async fn object(&self, key: &str) -> Vec<u8> {
        let url = format!("{}/{BUCKET}/{key}", self.endpoint);
        let response = reqwest::get(url).await.unwrap();
        assert_eq!(response.status(), 200, "{key}");
        response.bytes().await.unwrap().to_vec()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary with the server's backup settings, written as an operator would write them
/// in the config file.
fn cli(server: &TestServer, moto: &Moto, args: &[&str]) -> Output {
    let backup = &server.dir.config.backup;
    let config = server.dir.dir.path().join("strongbox.toml");
    let settings = format!(
        "[backup]\ndir = {dir:?}\nrecipients = {recipients:?}\n\n\
         [backup.offsite]\nkind = \"s3\"\nbucket = \"{BUCKET}\"\nendpoint = \"{endpoint}\"\n\
         access_key_id = \"strongbox-test\"\nsecret_access_key = \"strongbox-test-secret\"\n\
         allow_http = true\n",
        dir = backup.dir.to_str().unwrap(),
        recipients = backup.recipients,
        endpoint = moto.endpoint,
    );
    fs::write(&config, settings).unwrap();
    let mut with_config = vec!["--config", config.to_str().unwrap()];
    with_config.extend(args);
    let log = [("STRONGBOX_LOG__FILTER", "warn")];
    crate::startup::strongbox(&server.dir.config.data_dir, &with_config, &log)
}

fn succeeded(output: &Output) -> String {
    assert!(output.status.success(), "{}", text(output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[actix_web::test]
#[ignore = "needs moto_server; scripts/test.sh runs it"]
async fn backups_go_to_s3_restore_from_it_and_age_out_there() {
    let moto = Moto::start();
    let bucket = reqwest::Client::new()
        .put(format!("{}/{BUCKET}", moto.endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(bucket.status(), 200, "the bucket is created");

    let (server, identity) = server_with_backups(Some(moto.target()));
    let mut owner = set_up_owner(&server).await;
    let ws = create_workspace(&mut owner, "Off site").await;
    let token = make_token(&mut owner, &ws, "read_write").await;
    put_records(&server, &token).await;
    let before = records(&server, &token).await;
    let id = backup_now(&server);

    // Each file in the bucket is the local file, byte for byte.
    let local = server.dir.config.backup.dir.join(&id);
    for name in ["control.db.age", "install.toml.age", "manifest.json"] {
        let uploaded = moto.object(&format!("strongbox/{id}/{name}")).await;
        assert_eq!(uploaded, fs::read(local.join(name)).unwrap(), "{name}");
    }
    let listed = succeeded(&cli(&server, &moto, &["backup", "list", "--offsite"]));
    assert!(listed.contains(&id) && listed.contains(" ok"), "{listed}");

    // With the local copy gone, the backup verifies and restores from the bucket.
    fs::remove_dir_all(&local).unwrap();
    let identity = identity.to_str().unwrap();
    let verify = ["backup", "verify", &id, "--offsite", "--identity", identity];
    succeeded(&cli(&server, &moto, &verify));
    let target = server.dir.dir.path().join("restored");
    let to = target.to_str().unwrap();
    let restore = [
        "restore",
        "--backup",
        &id,
        "--offsite",
        "--identity",
        identity,
    ];
    succeeded(&cli(
        &server,
        &moto,
        &[&restore[..], &["--to", to]].concat(),
    ));
    assert!(
        !Path::new(&local).exists(),
        "the restore left no local backup behind"
    );
    let restored = TestServer::start_with(|c| c.data_dir = target.clone());
    assert_eq!(records(&restored, &token).await, before);

    // Past the retention, the next run prunes the old backup off-site as well.
    server.clock.advance(31 * DAY);
    let newer = backup_now(&server);
    assert_eq!(backups(&server), std::slice::from_ref(&newer));
    let listed = succeeded(&cli(&server, &moto, &["backup", "list", "--offsite"]));
    assert!(listed.contains(&newer), "{listed}");
    assert!(
        !listed.contains(&id),
        "the old backup is gone off-site: {listed}"
    );
}
