//! The reference agent end to end: the real `strongbox` server process and the real
//! `strongbox-agent` binary over HTTP. Pair, sync a folder of JSON and CSV with personal
//! data, check what landed is masked, revoke; and a server killed mid-sync, restarted, and
//! the agent resuming until the workspace holds exactly the source.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::process::{ServerProcess, free_port};
use crate::common::{WebClient, complete_setup_at, create_workspace, pairing_code};

const AGENT: &str = env!("CARGO_BIN_EXE_strongbox-agent");

fn agent(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(AGENT)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("STRONGBOX_AGENT_HOME")
        .env_remove("STRONGBOX_AGENT_CODE")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run strongbox-agent")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The workspace's export: every live record, as the owner downloads it.
async fn exported_records(owner: &mut WebClient, workspace: &str) -> Vec<Value> {
    let overview = owner.get(&format!("/w/{workspace}")).await;
    let export = owner
        .post(
            &format!("/w/{workspace}/export"),
            &[("csrf", &overview.csrf())],
        )
        .await;
    assert_eq!(export.status, 200, "{}", export.body);
    let archive: Value = serde_json::from_str(&export.body).unwrap();
    archive["records"].as_array().unwrap().clone()
}

const RAW_PII: &[&str] = &[
    "ada.lovelace@example.com",
    "+44 20 7946 0958",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    "ABCPE1234F",
    "Acme Corp",
];

fn write_source(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let customers = json!([
        {"id": "c1", "name": "Ada", "email": "ada.lovelace@example.com", "phone": "+44 20 7946 0958",
         "note": "Account manager at Acme Corp", "dob": "1815-12-10"},
        {"id": "c2", "name": "Grace", "card": "4111 1111 1111 1111"},
    ]);
    std::fs::write(dir.join("customers.json"), customers.to_string()).unwrap();
    std::fs::write(
        dir.join("payments.csv"),
        "id,iban,pan\np1,DE89 3704 0044 0532 0130 00,ABCPE1234F\n",
    )
    .unwrap();
}

#[actix_web::test]
async fn the_agent_pairs_syncs_masked_records_and_stops_when_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (server, link) = ServerProcess::start(&data, free_port(), &[]);
    let mut owner = complete_setup_at(&server.origin, &link.expect("setup link")).await;
    let workspace = create_workspace(&mut owner, "Acme").await;
    let masking = format!("/w/{workspace}/masking");
    let rule = owner
        .submit(
            &masking,
            &format!("{masking}/rules"),
            &[
                ("term", "Acme Corp"),
                ("action", "alias"),
                ("alias", "Client A"),
            ],
        )
        .await;
    assert_eq!(rule.status, 303);
    let required = owner
        .submit(
            &masking,
            &format!("{masking}/requirement"),
            &[("required", "true")],
        )
        .await;
    assert_eq!(required.status, 303);

    let home = tmp.path().join("agent");
    let source = tmp.path().join("source");
    write_source(&source);
    let code = pairing_code(&mut owner, &workspace, "Front desk").await;
    let paired = agent(
        &home,
        &["pair", "--server", &server.origin],
        &[("STRONGBOX_AGENT_CODE", &code)],
    );
    assert!(paired.status.success(), "{}", text(&paired));
    let synced = agent(&home, &["sync", "--dir", source.to_str().unwrap()], &[]);
    assert!(synced.status.success(), "{}", text(&synced));
    let report = text(&synced);
    assert!(report.contains("3 record(s) written"), "{report}");
    assert!(
        report.contains("EMAIL: 1") && report.contains("TERM_ALIAS: 1"),
        "{report}"
    );
    for value in RAW_PII {
        assert!(!report.contains(value), "the agent printed {value}");
    }

    // What landed is masked per policy, and nothing raw is anywhere in the workspace.
    let records = exported_records(&mut owner, &workspace).await;
    assert_eq!(records.len(), 3);
    let c1 = records.iter().find(|r| r["id"] == "c1").unwrap();
    assert_eq!(c1["data"]["email"], "[EMAIL_1]");
    assert_eq!(c1["data"]["note"], "Account manager at Client A");
    assert_eq!(c1["data"]["dob"], "[DOB_1]");
    let all = serde_json::to_string(&records).unwrap();
    for value in RAW_PII {
        assert!(!all.contains(value), "{value} reached the server");
    }
    // The counts are recorded with the agent; the values never are.
    let agents = owner.get(&format!("/w/{workspace}/agents")).await;
    assert!(
        agents.body.contains("<td>3</td><td>7</td>"),
        "{}",
        agents.body
    );
    let status = agent(&home, &["status", "--dir", source.to_str().unwrap()], &[]);
    assert!(
        text(&status).contains("3 record(s) synced"),
        "{}",
        text(&status)
    );

    // A second sync with nothing changed sends nothing; a deleted file becomes tombstones.
    std::fs::remove_file(source.join("payments.csv")).unwrap();
    let again = agent(&home, &["sync", "--dir", source.to_str().unwrap()], &[]);
    assert!(
        text(&again).contains("0 record(s) written, 1 deleted"),
        "{}",
        text(&again)
    );

    // `watch` syncs when a file changes: a new file's records reach the server.
    let mut watch = Command::new(AGENT)
        .arg("--home")
        .arg(&home)
        .args([
            "watch",
            "--dir",
            source.to_str().unwrap(),
            "--settle-ms",
            "200",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_synced(&home, 2);
    std::fs::write(
        source.join("notes.json"),
        r#"[{"id": "n1", "text": "call back"}]"#,
    )
    .unwrap();
    wait_for_synced(&home, 3);
    // While `watch` holds the credentials, nothing else rotates them behind its back.
    let busy = agent(&home, &["status"], &[]);
    assert!(
        text(&busy).contains("Another strongbox-agent is running"),
        "{}",
        text(&busy)
    );
    let busy_sync = agent(&home, &["sync", "--dir", source.to_str().unwrap()], &[]);
    assert!(!busy_sync.status.success());
    watch.kill().unwrap();
    watch.wait().unwrap();

    let agent_id = std::fs::read_to_string(home.join("agent.json")).unwrap();
    let agent_id: Value = serde_json::from_str(&agent_id).unwrap();
    let revoked = owner
        .submit(
            &format!("/w/{workspace}/agents"),
            &format!(
                "/w/{workspace}/agents/{}/revoke",
                agent_id["agent_id"].as_str().unwrap()
            ),
            &[],
        )
        .await;
    assert_eq!(revoked.status, 303);
    let refused = agent(&home, &["sync", "--dir", source.to_str().unwrap()], &[]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("refused the credentials"),
        "{}",
        text(&refused)
    );

    let log = std::fs::read_to_string(&server.log).unwrap();
    for value in RAW_PII {
        assert!(!log.contains(value), "{value} in the server log");
    }
    assert!(!log.contains(&code), "the pairing code in the server log");
}

#[actix_web::test]
async fn a_server_killed_mid_sync_keeps_whole_batches_and_the_agent_resumes() {
    const RECORDS: usize = 3000;
    const BATCH: usize = 50;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let limits = [("STRONGBOX_AGENTS__MAX_BATCH_RECORDS", "50")];
    let (mut server, link) = ServerProcess::start(&data, port, &limits);
    let mut owner = complete_setup_at(&server.origin, &link.expect("setup link")).await;
    let workspace = create_workspace(&mut owner, "Ledger").await;
    let home = tmp.path().join("agent");
    let source = tmp.path().join("source");
    std::fs::create_dir_all(&source).unwrap();
    let rows: Vec<Value> = (0..RECORDS)
        .map(|n| json!({"id": format!("r{n:05}"), "text": format!("entry {n} {}", "lorem ipsum ".repeat(80))}))
        .collect();
    std::fs::write(source.join("ledger.json"), Value::Array(rows).to_string()).unwrap();
    let code = pairing_code(&mut owner, &workspace, "Back office").await;
    assert!(
        agent(
            &home,
            &["pair", "--server", &server.origin, "--code", &code],
            &[]
        )
        .status
        .success()
    );

    // Kill the server as soon as some batches are confirmed, while the agent is sending.
    let mut sync = Command::new(AGENT)
        .arg("--home")
        .arg(&home)
        .args(["sync", "--dir", source.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if synced_count(&home) >= 2 * BATCH {
            break;
        }
        assert!(Instant::now() < deadline, "the agent made no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    server.kill();
    let interrupted = sync.wait().unwrap();
    assert!(
        !interrupted.success(),
        "the sync should have failed with the server gone"
    );

    let (restarted, _) = ServerProcess::start(&data, port, &limits);
    let mut owner_again = WebClient::at(&restarted.origin);
    owner_again.cookies = owner.cookies.clone();
    let after_crash = exported_records(&mut owner_again, &workspace).await.len();
    assert!(
        after_crash < RECORDS,
        "the kill came too late to test anything"
    );
    assert_eq!(
        after_crash % BATCH,
        0,
        "a batch was half written: {after_crash} records"
    );

    let resumed = agent(&home, &["sync", "--dir", source.to_str().unwrap()], &[]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    let records = exported_records(&mut owner_again, &workspace).await;
    let mut ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let expected: Vec<String> = (0..RECORDS).map(|n| format!("r{n:05}")).collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        records.iter().all(|r| r["version"] == 1),
        "nothing was written twice"
    );
    drop(restarted);
}

/// Waits until the agent's state file counts `records` confirmed records.
fn wait_for_synced(home: &Path, records: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while synced_count(home) != records {
        assert!(
            Instant::now() < deadline,
            "the agent never confirmed {records} records"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many records the agent's state file says the server confirmed.
fn synced_count(home: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(home) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("state-") && name.ends_with(".json")
        })
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter_map(|text| serde_json::from_str::<Value>(&text).ok())
        .map(|state| {
            state["synced"].as_object().map_or(0, |c| {
                c.values()
                    .map(|r| r.as_object().map_or(0, |r| r.len()))
                    .sum()
            })
        })
        .sum()
}
