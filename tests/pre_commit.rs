//! `scripts/pre-commit` in a scratch repository: a staged key file, an age identity, a
//! private key or a live-looking token stops the commit, naming where but never echoing
//! the secret; placeholder tokens like those in the tests do not.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use age::secrecy::ExposeSecret;

const REFUSED: &str = "look like they hold a secret";

fn git(repo: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(repo)
        .output()
        .unwrap()
        .status;
    assert!(status.success(), "git {args:?}");
}

/// Stages `name` holding `content` in a fresh repository and runs the hook there.
fn hook_on(name: &str, content: &str) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path();
    git(repo, &["init", "--quiet"]);
    fs::create_dir_all(repo.join("scripts")).unwrap();
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    for script in ["pre-commit", "lib.sh"] {
        fs::copy(ours.join(script), repo.join("scripts").join(script)).unwrap();
    }
    let path = repo.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, content).unwrap();
    git(repo, &["add", name]);
    let output: Output = Command::new("bash")
        .arg("scripts/pre-commit")
        .current_dir(repo)
        .env("CARGO_TARGET_DIR", repo.join("target"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn staged_secrets_stop_the_commit_without_being_echoed() {
    let identity = age::x25519::Identity::generate();
    let age_key = identity.to_string().expose_secret().to_string();
    let token = format!("sbx_pat_{}", "Q".repeat(43));
    let cases = [
        ("data/master.key", "32 bytes of key".to_string(), None),
        (
            "ops/identity.txt",
            format!("# created\n{age_key}\n"),
            Some(age_key.as_str()),
        ),
        (
            "notes.md",
            format!("use {token} for the demo\n"),
            Some(token.as_str()),
        ),
        (
            "deploy/tls.txt",
            // Assembled, so this file does not trip the hook itself.
            format!("-----BEGIN EC {} KEY-----\nMHcCAQEEI\n", "PRIVATE"),
            None,
        ),
        (
            "strongbox.toml",
            "[email.smtp]\npassword = \"correct horse battery\"\n".into(),
            Some("correct horse battery"),
        ),
    ];
    for (name, content, secret) in cases {
        let said = hook_on(name, &content);
        assert!(said.contains(REFUSED), "{name}: {said}");
        if let Some(secret) = secret {
            assert!(!said.contains(secret), "{name}: the secret was echoed");
        }
    }
    // Placeholders, as the tests use them, pass the secret check (the cargo steps then run).
    let said = hook_on("tests/x.rs", "let bad = \"sbx_pat_not-a-real-token\";\n");
    assert!(!said.contains(REFUSED), "{said}");
}
