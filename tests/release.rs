//! `scripts/release.sh`: a release-profile binary, a SHA-256 that catches a changed byte, and a
//! CycloneDX SBOM naming the crates Cargo.lock pins, with their licenses and checksums.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::backups::text;

/// The locked version of every crate in Cargo.lock, by name.
fn locked_versions() -> BTreeMap<String, BTreeSet<String>> {
    let lock: toml::Table = std::fs::read_to_string("Cargo.lock")
        .unwrap()
        .parse()
        .unwrap();
    let mut versions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for package in lock["package"].as_array().unwrap() {
        versions
            .entry(package["name"].as_str().unwrap().to_string())
            .or_default()
            .insert(package["version"].as_str().unwrap().to_string());
    }
    versions
}

#[test]
#[ignore = "builds the release profile; run by scripts/test.sh"]
fn the_release_carries_its_checksum_and_an_sbom_of_the_locked_crates() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new("scripts/release.sh")
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("scripts/release.sh");
    assert!(output.status.success(), "{}", text(&output));
    let releases: Vec<PathBuf> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(releases.len(), 1, "{releases:?}");
    let release = &releases[0];
    let name = release.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with(&format!("strongbox-{}-", env!("CARGO_PKG_VERSION"))),
        "{name}"
    );

    // The checksum file is what `sha256sum --check` reads, and it holds the binary's digest.
    let binary = std::fs::read(release.join("strongbox")).unwrap();
    let digest = hex::encode(Sha256::digest(&binary));
    assert_eq!(
        std::fs::read_to_string(release.join("strongbox.sha256")).unwrap(),
        format!("{digest}  strongbox\n")
    );
    let check = || {
        Command::new("sha256sum")
            .args(["--check", "--quiet", "strongbox.sha256"])
            .current_dir(release)
            .output()
            .unwrap()
    };
    assert!(check().status.success());
    let version = Command::new(release.join("strongbox"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        text(&version).contains(env!("CARGO_PKG_VERSION")),
        "{}",
        text(&version)
    );

    // The SBOM describes this binary, and every component in it is a crate Cargo.lock pins,
    // at the pinned version, with a license and the checksum Cargo verified it against.
    let sbom: Value =
        serde_json::from_slice(&std::fs::read(release.join("strongbox.cdx.json")).unwrap())
            .unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["specVersion"], "1.5");
    assert_eq!(sbom["metadata"]["component"]["name"], "strongbox");
    let locked = locked_versions();
    let components = sbom["components"].as_array().unwrap();
    let mut listed = BTreeSet::new();
    for component in components {
        let name = component["name"].as_str().unwrap();
        let version = component["version"].as_str().unwrap();
        assert!(
            locked.get(name).is_some_and(|v| v.contains(version)),
            "{name} {version} is not in Cargo.lock"
        );
        assert!(
            component["licenses"]
                .as_array()
                .is_some_and(|l| !l.is_empty()),
            "{name} has no license"
        );
        assert_eq!(component["hashes"][0]["alg"], "SHA-256", "{name}");
        listed.insert(name.to_string());
    }
    for product_crate in [
        "actix-web",
        "rusqlite",
        "hkdf",
        "jsonwebtoken",
        "governor",
        "age",
        "oauth2",
    ] {
        assert!(listed.contains(product_crate), "{product_crate} is missing");
    }
    // A test-only crate is not in the binary, so not in its SBOM.
    assert!(!listed.contains("proptest"), "proptest is listed");

    // One changed byte in the binary, and the checksum says so.
    let mut tampered = binary;
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    std::fs::write(release.join("strongbox"), tampered).unwrap();
    let failed = check();
    assert!(!failed.status.success());
    assert!(text(&failed).contains("FAILED"), "{}", text(&failed));
}
