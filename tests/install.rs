//! `scripts/install.sh` on this host, as root: the layout RUNBOOK.md describes, with owner-only
//! permissions; a second run that keeps the config and the master key; the nginx site enabled
//! once a certificate exists; and the installed server starting as its service user with the
//! key handed over as systemd hands a credential. Everything it wrote is removed afterwards.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::backups::text;
use crate::common::process::{free_port, get_status};
use crate::common::self_signed_certificate;

const HOST: &str = "strongbox.test";
const BIN: &str = "/usr/local/bin/strongbox";
const DATA: &str = "/var/lib/strongbox";
const BACKUPS: &str = "/var/backups/strongbox";
const CONFIG_DIR: &str = "/etc/strongbox";
const CONFIG: &str = "/etc/strongbox/strongbox.toml";
const ENV_FILE: &str = "/etc/strongbox/strongbox.env";
const MASTER_KEY: &str = "/etc/credstore/strongbox.master.key";
const UNIT: &str = "/etc/systemd/system/strongbox.service";
const SITE: &str = "/etc/nginx/sites-available/strongbox";
const SITE_ENABLED: &str = "/etc/nginx/sites-enabled/strongbox";
const CERTIFICATES: &str = "/etc/letsencrypt/live/strongbox.test";

/// Everything the script may create. The test refuses to run where any of it exists already
/// (a real install), and removes all of it when it ends, passed or failed.
const WRITES: &[&str] = &[
    BIN,
    DATA,
    BACKUPS,
    CONFIG_DIR,
    MASTER_KEY,
    UNIT,
    SITE,
    SITE_ENABLED,
    CERTIFICATES,
];

/// Debian's stock nginx site, which the script disables (it also claims port 80's default).
const DEBIAN_DEFAULT_SITE: &str = "/etc/nginx/sites-enabled/default";

struct CleanUp {
    debian_default_site: Option<std::path::PathBuf>,
}

impl Drop for CleanUp {
    fn drop(&mut self) {
        if let Some(target) = &self.debian_default_site {
            let _ = std::os::unix::fs::symlink(target, DEBIAN_DEFAULT_SITE);
        }
        for path in WRITES {
            let path = Path::new(path);
            if path.is_dir() && !path.is_symlink() {
                let _ = std::fs::remove_dir_all(path);
            } else {
                let _ = std::fs::remove_file(path);
            }
        }
        let _ = Command::new("userdel").arg("strongbox").output();
    }
}

fn install() -> String {
    let output = Command::new("scripts/install.sh")
        .args(["--host", HOST, "--binary", env!("CARGO_BIN_EXE_strongbox")])
        .output()
        .expect("scripts/install.sh");
    assert!(output.status.success(), "{}", text(&output));
    text(&output)
}

/// Mode bits, owner and group names of `path`.
fn owned(path: &str) -> (u32, String, String) {
    let meta = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let name = |database: &str, id: u32| {
        let out = Command::new("getent")
            .args([database, &id.to_string()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    (
        meta.permissions().mode() & 0o7777,
        name("passwd", meta.uid()),
        name("group", meta.gid()),
    )
}

#[test]
#[ignore = "installs into /usr/local, /etc and /var as root; run by scripts/test.sh"]
fn install_sh_lays_out_a_working_owner_only_install_and_runs_again_without_changing_it() {
    for path in WRITES {
        assert!(
            std::fs::symlink_metadata(path).is_err(),
            "{path} exists: this test runs only on a host without a Strongbox install"
        );
    }
    assert!(
        !Command::new("id")
            .arg("strongbox")
            .output()
            .unwrap()
            .status
            .success(),
        "a strongbox user exists: this test runs only on a host without a Strongbox install"
    );
    let _clean_up = CleanUp {
        debian_default_site: std::fs::read_link(DEBIAN_DEFAULT_SITE).ok(),
    };

    let first = install();
    assert!(first.contains("not enabled yet"), "{first}");
    assert_eq!(
        std::fs::read(BIN).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_strongbox")).unwrap()
    );
    let shell = Command::new("getent")
        .args(["passwd", "strongbox"])
        .output()
        .unwrap();
    assert!(
        text(&shell).trim_end().ends_with(":/usr/sbin/nologin"),
        "{}",
        text(&shell)
    );
    let service = |mode| (mode, "strongbox".to_string(), "strongbox".to_string());
    let root = |mode, group: &str| (mode, "root".to_string(), group.to_string());
    assert_eq!(owned(BIN), root(0o755, "root"));
    assert_eq!(owned(UNIT), root(0o644, "root"));
    assert_eq!(owned(DATA), service(0o700));
    assert_eq!(owned(BACKUPS), service(0o700));
    assert_eq!(owned(CONFIG_DIR), root(0o750, "strongbox"));
    assert_eq!(owned(CONFIG), root(0o640, "strongbox"));
    assert_eq!(owned(ENV_FILE), root(0o600, "root"));
    assert_eq!(owned(MASTER_KEY), root(0o600, "root"));
    assert_eq!(std::fs::read(MASTER_KEY).unwrap().len(), 32);
    assert_eq!(
        std::fs::read_to_string(UNIT).unwrap(),
        std::fs::read_to_string("systemd/strongbox.service").unwrap()
    );
    let config = std::fs::read_to_string(CONFIG).unwrap();
    assert!(
        config.contains("public_url = \"https://strongbox.test\""),
        "{config}"
    );
    let site = std::fs::read_to_string(SITE).unwrap();
    assert!(site.contains("server_name strongbox.test;"));
    assert!(!site.contains("example.com"));
    assert!(std::fs::symlink_metadata(SITE_ENABLED).is_err());
    assert!(std::fs::symlink_metadata(DEBIAN_DEFAULT_SITE).is_err());

    // The operator edits the config; a certificate arrives; the script runs again.
    let key = std::fs::read(MASTER_KEY).unwrap();
    let edited = format!("{config}\n# edited by the operator\n");
    std::fs::write(CONFIG, &edited).unwrap();
    self_signed_certificate(Path::new(CERTIFICATES), HOST);
    let second = install();
    assert!(second.contains("kept as it is"), "{second}");
    assert_eq!(
        std::fs::read(MASTER_KEY).unwrap(),
        key,
        "the master key was replaced"
    );
    assert_eq!(std::fs::read_to_string(CONFIG).unwrap(), edited);
    assert_eq!(std::fs::read_link(SITE_ENABLED).unwrap(), Path::new(SITE));
    assert!(second.contains("test is successful"), "nginx -t: {second}");

    // The installed server starts as its user, reading the key as a systemd credential.
    let credentials = tempfile::tempdir().unwrap();
    let mut server = start_as_service_user(&key, credentials.path());
    let port = server.1;
    let deadline = Instant::now() + Duration::from_secs(30);
    let url = format!("http://127.0.0.1:{port}/readyz");
    while get_status(&url).ok() != Some(200) {
        if Instant::now() > deadline || matches!(server.0.try_wait(), Ok(Some(_))) {
            let _ = server.0.kill();
            let output = server.0.wait_with_output().unwrap();
            panic!("the installed server did not start: {}", text(&output));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    server.0.kill().unwrap();
    let output = server.0.wait_with_output().unwrap();
    assert!(
        text(&output).contains("systemd credential"),
        "{}",
        text(&output)
    );
    assert_eq!(owned(DATA), service(0o700));
    for entry in std::fs::read_dir(DATA).unwrap() {
        let path = entry.unwrap().path();
        let (mode, user, _) = owned(path.to_str().unwrap());
        assert_eq!(user, "strongbox", "{}", path.display());
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
    }
    assert!(
        !Path::new(DATA).join("master.key").exists(),
        "the key stays out of the data dir"
    );
}

/// `strongbox serve` under the installed config, as systemd's unit runs it: the service user,
/// and the master key copied into a credentials directory only that user can read.
fn start_as_service_user(key: &[u8], credentials: &Path) -> (Child, u16) {
    std::fs::write(credentials.join("master.key"), key).unwrap();
    std::fs::set_permissions(
        credentials.join("master.key"),
        PermissionsExt::from_mode(0o400),
    )
    .unwrap();
    std::fs::set_permissions(credentials, PermissionsExt::from_mode(0o500)).unwrap();
    let chown = Command::new("chown")
        .args(["-R", "strongbox:strongbox"])
        .arg(credentials)
        .output()
        .unwrap();
    assert!(chown.status.success(), "{}", text(&chown));
    let port = free_port();
    // The service user's ids, and a clean environment, as systemd gives a service.
    let id = |flag: &str| -> u32 {
        let output = Command::new("id")
            .args([flag, "strongbox"])
            .output()
            .unwrap();
        text(&output).trim().parse().unwrap()
    };
    let child = Command::new(BIN)
        .uid(id("-u"))
        .gid(id("-g"))
        .env_clear()
        .env("CREDENTIALS_DIRECTORY", credentials)
        .env("STRONGBOX_LISTEN", format!("127.0.0.1:{port}"))
        .args(["--config", CONFIG, "serve"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the installed binary");
    (child, port)
}
