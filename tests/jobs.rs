//! The scheduled jobs: closure purge, usage sweep and expired cleanup run in-process against
//! a server whose clock the tests move; the lock, `jobs list` and shutdown on SIGTERM with
//! the real `strongbox` binary.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use strongbox::clock::Clock;
use strongbox::jobs::{self, JobContext, JobName, JobRun, JobSettings, Outcome};
use strongbox::store::StoreError;
use strongbox::workspace::usage::{self, Outcome as UsageOutcome, Usage};

use crate::audit::all_rows;
use crate::common::{
    OWNER_EMAIL, OWNER_PASSWORD, TestDir, TestServer, WebClient, approve, create_workspace,
    make_token, new_flow, pairing_code, set_up_owner, sign_in,
};
use crate::oauth::{exchange, refresh};
use crate::workspaces::{MEMBER_PASSWORD, invite, join_by_invite};

const BINARY: &str = env!("CARGO_BIN_EXE_strongbox");
const DAY: i64 = 24 * 60 * 60;

fn context(server: &TestServer) -> JobContext {
    let clock: strongbox::clock::SharedClock = server.clock.clone();
    JobContext::new(
        Arc::clone(&server.store),
        clock,
        JobSettings::from(&server.dir.config),
    )
}

fn run_job(server: &TestServer, job: JobName) -> JobRun {
    jobs::run(job, &context(server)).expect("the job ran")
}

/// The targets of the system log's rows with this action, oldest first.
fn system_log_targets(server: &TestServer, action: &str) -> Vec<String> {
    all_rows(server)
        .into_iter()
        .filter(|row| row["action"] == action)
        .map(|row| row["target"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn workspace_dir(server: &TestServer, id: &str) -> std::path::PathBuf {
    server.dir.data_dir().join("workspaces").join(id)
}

pub(crate) async fn close_workspace(browser: &mut WebClient, id: &str, name: &str) {
    let page = browser
        .submit(
            &format!("/w/{id}"),
            &format!("/w/{id}/close"),
            &[("name", name)],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
}

pub(crate) async fn close_account(browser: &mut WebClient, password: &str) {
    let page = browser
        .submit("/account", "/account/close", &[("password", password)])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
}

/// Invites `email` to the workspace with `role` and signs them up through the link.
async fn join(
    server: &TestServer,
    inviter: &mut WebClient,
    id: &str,
    email: &str,
    role: &str,
) -> WebClient {
    let link = invite(server, inviter, id, email, role).await;
    join_by_invite(server, &link).await
}

pub(crate) async fn signed_in(server: &TestServer, email: &str, password: &str) -> WebClient {
    let (browser, page) = sign_in(server, email, password).await;
    assert_eq!(page.status, 303, "{email} signs in: {}", page.body);
    browser
}

#[tokio::test]
async fn closure_purge_deletes_workspaces_past_their_hold_and_keeps_the_rest() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let old = create_workspace(&mut owner, "Old").await;
    close_workspace(&mut owner, &old, "Old").await;
    server.clock.advance(2 * DAY);
    let mut owner = signed_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let recent = create_workspace(&mut owner, "Recent").await;
    close_workspace(&mut owner, &recent, "Recent").await;
    let cancelled = create_workspace(&mut owner, "Cancelled").await;
    close_workspace(&mut owner, &cancelled, "Cancelled").await;
    let page = owner
        .submit(
            &format!("/w/{cancelled}"),
            &format!("/w/{cancelled}/reopen"),
            &[],
        )
        .await;
    assert_eq!(page.status, 303);
    // "Old" was closed 31 days ago, "Recent" 29.
    server.clock.advance(29 * DAY);

    let run = run_job(&server, JobName::ClosurePurge);
    assert_eq!(run.outcome, Outcome::Ok, "{run}");
    assert!(run.summary.starts_with("workspaces=1 accounts=0"), "{run}");
    assert_eq!(
        system_log_targets(&server, "workspace.purged"),
        [format!("workspace:{old}")],
        "the purge is in the system log"
    );

    assert!(!workspace_dir(&server, &old).exists(), "the file is gone");
    assert!(
        workspace_dir(&server, &recent)
            .join("workspace.db")
            .exists()
    );
    assert!(
        workspace_dir(&server, &cancelled)
            .join("workspace.db")
            .exists()
    );
    for table in ["workspaces WHERE id", "memberships WHERE workspace_id"] {
        let sql = format!("SELECT count(*) FROM {table} = ?1");
        assert_eq!(server.count(&sql, &[&old]), 0, "{table}");
        assert_eq!(server.count(&sql, &[&recent]), 1, "{table}");
    }
    assert_eq!(
        server.count("SELECT count(*) FROM workspace_deletions", &[]),
        0
    );
    assert!(
        matches!(
            server.store.workspace(old.parse().unwrap()),
            Err(StoreError::WorkspaceNotFound)
        ),
        "no handle is left open in the cache"
    );

    let mut owner = signed_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(owner.get(&format!("/w/{old}")).await.status, 404);
    let page = owner.get(&format!("/w/{recent}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("will be deleted on"), "still closing");
    let page = owner.get(&format!("/w/{cancelled}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("will be deleted on"));

    // Two days on, "Recent" is past its hold too.
    server.clock.advance(2 * DAY);
    let run = run_job(&server, JobName::ClosurePurge);
    assert!(run.summary.starts_with("workspaces=1 "), "{run}");
    assert!(!workspace_dir(&server, &recent).exists());
    assert!(workspace_dir(&server, &cancelled).exists());
}

#[tokio::test]
async fn a_purge_that_stopped_after_its_commit_is_finished_by_the_next_run() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let id = create_workspace(&mut owner, "Half gone").await;
    // What a run that died between its commit and removing the directory leaves behind.
    server
        .store
        .control()
        .write(|tx| {
            tx.execute("DELETE FROM workspaces WHERE id = ?1", [&id])?;
            tx.execute(
                "INSERT INTO workspace_deletions (workspace_id, deleted_at) VALUES (?1, 0)",
                [&id],
            )?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert!(workspace_dir(&server, &id).exists());

    let run = run_job(&server, JobName::ClosurePurge);
    assert_eq!(run.outcome, Outcome::Ok, "{run}");
    assert!(run.summary.ends_with("directories_finished=1"), "{run}");
    assert!(!workspace_dir(&server, &id).exists());
    assert_eq!(
        server.count("SELECT count(*) FROM workspace_deletions", &[]),
        0
    );
    let run = run_job(&server, JobName::ClosurePurge);
    assert!(run.summary.ends_with("directories_finished=0"), "{run}");
}

#[tokio::test]
async fn closure_purge_deletes_accounts_past_their_hold_and_keeps_the_rest() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let team = create_workspace(&mut owner, "Team").await;
    // An admin whose invitation and export name them without cascading.
    let mut old = join(&server, &mut owner, &team, "old@example.com", "admin").await;
    join(&server, &mut owner, &team, "recent@example.com", "member").await;
    join(&server, &mut owner, &team, "cancel@example.com", "member").await;
    let mut lone = join(&server, &mut owner, &team, "lone@example.com", "member").await;
    let page = old
        .submit(
            &format!("/w/{team}/members"),
            &format!("/w/{team}/invites"),
            &[("email", "later@example.com"), ("role", "member")],
        )
        .await;
    assert_eq!(page.status, 303);
    let page = old
        .submit(&format!("/w/{team}"), &format!("/w/{team}/export"), &[])
        .await;
    assert_eq!(page.status, 200);
    // The only owner of a workspace closes it, then the account, then reopens the workspace.
    let own = create_workspace(&mut lone, "Lone").await;
    close_workspace(&mut lone, &own, "Lone").await;
    close_account(&mut lone, MEMBER_PASSWORD).await;
    let mut lone = signed_in(&server, "lone@example.com", MEMBER_PASSWORD).await;
    let page = lone
        .submit(&format!("/w/{own}"), &format!("/w/{own}/reopen"), &[])
        .await;
    assert_eq!(page.status, 303);

    close_account(&mut old, MEMBER_PASSWORD).await;
    server.clock.advance(2 * DAY);
    let mut recent = signed_in(&server, "recent@example.com", MEMBER_PASSWORD).await;
    close_account(&mut recent, MEMBER_PASSWORD).await;
    let mut cancelled = signed_in(&server, "cancel@example.com", MEMBER_PASSWORD).await;
    close_account(&mut cancelled, MEMBER_PASSWORD).await;
    let mut back = signed_in(&server, "cancel@example.com", MEMBER_PASSWORD).await;
    let account = back.get("/account").await;
    let page = back
        .post("/account/reopen", &[("csrf", &account.csrf())])
        .await;
    assert_eq!(page.status, 303);
    server.clock.advance(29 * DAY);

    let (old_id, lone_id) = (
        server.user_id("old@example.com"),
        server.user_id("lone@example.com"),
    );
    // A provider identity linked to the account goes with it.
    let identity = strongbox::auth::ProviderIdentity {
        provider: "test".into(),
        label: "Test ID".into(),
        subject: "old-0001".into(),
        email: "old@example.com".parse().ok(),
        email_verified: true,
    };
    server.auth.link_provider(old_id, identity).await.unwrap();
    let report = jobs::purge(&context(&server)).unwrap();
    assert_eq!(report.accounts, [old_id]);
    assert_eq!(report.accounts_held, [lone_id]);
    assert!(report.workspaces.is_empty() && report.failed == 0);
    assert_eq!(
        system_log_targets(&server, "account.purged"),
        [format!("user:{old_id}")],
        "only the deleted account is in the system log"
    );

    let old_id = old_id.to_string();
    for sql in [
        "SELECT count(*) FROM users WHERE id = ?1",
        "SELECT count(*) FROM memberships WHERE user_id = ?1",
        "SELECT count(*) FROM invites WHERE invited_by = ?1",
        "SELECT count(*) FROM exports WHERE user_id = ?1",
        "SELECT count(*) FROM oidc_identities WHERE user_id = ?1",
    ] {
        assert_eq!(server.count(sql, &[&old_id]), 0, "{sql}");
    }
    let (_, page) = sign_in(&server, "old@example.com", MEMBER_PASSWORD).await;
    assert_ne!(page.status, 303, "a deleted account cannot sign in");
    let mut recent = signed_in(&server, "recent@example.com", MEMBER_PASSWORD).await;
    assert!(
        recent
            .get("/account")
            .await
            .body
            .contains("will be deleted on")
    );
    let mut cancelled = signed_in(&server, "cancel@example.com", MEMBER_PASSWORD).await;
    assert!(
        !cancelled
            .get("/account")
            .await
            .body
            .contains("will be deleted on")
    );
    let mut lone = signed_in(&server, "lone@example.com", MEMBER_PASSWORD).await;
    assert_eq!(lone.get(&format!("/w/{own}")).await.status, 200);
    let mut owner = signed_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let members = owner.get(&format!("/w/{team}/members")).await.body;
    assert!(!members.contains("old@example.com") && members.contains("recent@example.com"));
}

#[tokio::test]
async fn audit_sweep_removes_rows_older_than_the_retention_and_the_rest_still_verify() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let ws = create_workspace(&mut owner, "Kept").await;
    let first_day = server.clock.now();
    server.clock.advance(30 * DAY);
    let mut owner = signed_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let page = owner
        .submit(
            &format!("/w/{ws}"),
            &format!("/w/{ws}/rename"),
            &[("name", "Still kept")],
        )
        .await;
    assert_eq!(page.status, 303);
    // The first day's rows are 400 days old, past 13 months whatever the calendar; the
    // later ones 370, within it.
    server.clock.advance(370 * DAY);
    let actions = |server: &TestServer| -> BTreeSet<String> {
        all_rows(server)
            .iter()
            .map(|row| row["action"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(actions(&server).contains("workspace.created"));

    let run = run_job(&server, JobName::AuditSweep);
    assert_eq!(run.outcome, Outcome::Ok, "{run}");
    assert!(run.summary.starts_with("chains=2 audit_rows="), "{run}");
    assert_ne!(run.summary, "chains=2 audit_rows=0", "{run}");
    let rows = all_rows(&server);
    let swept = |row: &&Value| row["action"] == "audit.swept";
    assert!(
        rows.iter()
            .filter(|row| !swept(row))
            .all(|row| row["at"].as_i64().unwrap() > first_day + DAY),
        "every row from the first day is gone"
    );
    let left = actions(&server);
    for action in ["workspace.renamed", "sign_in.succeeded", "audit.swept"] {
        assert!(left.contains(action), "{action} stays");
    }
    assert!(!left.contains("workspace.created") && !left.contains("account.created"));
    let audit = crate::audit::audit_log(&server);
    for chain in audit.chains().unwrap() {
        let verified = audit
            .verify(chain)
            .unwrap()
            .expect("the chain still verifies");
        assert!(verified.swept_rows > 0, "{chain}");
    }
    let again = run_job(&server, JobName::AuditSweep);
    assert_eq!(again.summary, "chains=2 audit_rows=0", "{again}");

    // Twelve months, the shortest retention allowed, takes the 370-day-old rows too.
    let mut twelve = context(&server);
    twelve.settings.audit_retention_months = 12;
    let run = jobs::run(JobName::AuditSweep, &twelve).unwrap();
    assert_eq!(run.outcome, Outcome::Ok, "{run}");
    assert!(!actions(&server).contains("workspace.renamed"));
    for chain in audit.chains().unwrap() {
        assert!(audit.verify(chain).unwrap().is_ok(), "{chain}");
    }
}

fn record_usage(server: &TestServer, workspace: &str, operation: &'static str) {
    let row = Usage {
        actor: "token:test".into(),
        user: strongbox::auth::UserId::new_random(),
        operation,
        outcome: UsageOutcome::Ok,
        items: 1,
        masked: Default::default(),
        duration: Duration::from_millis(3),
    };
    let at = server.clock.now();
    server
        .store
        .workspace(workspace.parse().unwrap())
        .unwrap()
        .write(|tx| usage::insert(tx, &row, at).map_err(StoreError::from))
        .unwrap();
}

fn usage_operations(server: &TestServer, workspace: &str) -> Vec<String> {
    let rows = server
        .store
        .workspace(workspace.parse().unwrap())
        .unwrap()
        .read(|c| usage::recent(c, 100).map_err(StoreError::from))
        .unwrap();
    rows.into_iter().rev().map(|row| row.operation).collect()
}

#[tokio::test]
async fn usage_sweep_deletes_rows_older_than_ninety_days_and_keeps_the_rest() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let a = create_workspace(&mut owner, "A").await;
    let b = create_workspace(&mut owner, "B").await;
    record_usage(&server, &a, "search");
    server.clock.advance(2 * DAY);
    record_usage(&server, &a, "query");
    record_usage(&server, &b, "aggregate");
    // The first row is now 91 days old, the others 89.
    server.clock.advance(89 * DAY);

    let run = run_job(&server, JobName::UsageSweep);
    assert_eq!(run.outcome, Outcome::Ok, "{run}");
    assert_eq!(run.summary, "workspaces=2 usage_rows=1");
    assert_eq!(usage_operations(&server, &a), ["query"]);
    assert_eq!(usage_operations(&server, &b), ["aggregate"]);

    server.clock.advance(2 * DAY);
    assert_eq!(
        run_job(&server, JobName::UsageSweep).summary,
        "workspaces=2 usage_rows=2"
    );
    assert!(usage_operations(&server, &a).is_empty());
}

#[tokio::test]
async fn a_stop_request_ends_a_sweep_between_workspaces() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let mut ids = Vec::new();
    for name in ["One", "Two", "Three"] {
        let id = create_workspace(&mut owner, name).await;
        record_usage(&server, &id, "search");
        ids.push(id);
    }
    // The sweep visits workspaces in id order.
    ids.sort();
    server.clock.advance(91 * DAY);
    let context = context(&server);

    // Holding the second workspace's writer keeps the sweep from getting past it.
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let second = server.store.workspace(ids[1].parse().unwrap()).unwrap();
    let holder = std::thread::spawn(move || {
        second
            .write(|_| {
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok::<_, StoreError>(())
            })
            .unwrap();
    });
    held_rx.recv().unwrap();
    let sweep = std::thread::spawn({
        let context = context.clone();
        move || jobs::run(JobName::UsageSweep, &context)
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !usage_operations(&server, &ids[0]).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the sweep never reached the first workspace"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    context.stop.request();
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    let run = sweep.join().unwrap().unwrap();

    assert_eq!(run.outcome, Outcome::Stopped, "{run}");
    assert_eq!(
        usage_operations(&server, &ids[2]),
        ["search"],
        "never reached"
    );
    assert_eq!(
        jobs::last_run(&server.store, JobName::UsageSweep).unwrap(),
        Some(run)
    );
}

async fn mcp_session(server: &TestServer, token: &str) {
    let response = reqwest::Client::new()
        .post(server.url("/mcp"))
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("mcp-session-id"));
}

/// Approves an OAuth client for the workspace and trades the code; returns the tokens.
async fn oauth_tokens(
    server: &TestServer,
    owner: &mut WebClient,
    workspace: &str,
) -> (crate::common::Flow, Value) {
    let flow = new_flow(server).await;
    let code = approve(server, owner, &flow, workspace).await;
    let (status, tokens) = exchange(server, &flow, &code, &flow.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    (flow, tokens)
}

#[tokio::test]
async fn expired_cleanup_deletes_what_has_ended_and_keeps_what_still_works() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let ws = create_workspace(&mut owner, "Busy").await;
    // A second session, which will go idle.
    signed_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let page = owner
        .submit(
            &format!("/w/{ws}/members"),
            &format!("/w/{ws}/invites"),
            &[("email", "slow@example.com"), ("role", "member")],
        )
        .await;
    assert_eq!(page.status, 303);
    pairing_code(&mut owner, &ws, "Old laptop").await;
    let (flow, kept) = oauth_tokens(&server, &mut owner, &ws).await;
    let (_, revoked) = oauth_tokens(&server, &mut owner, &ws).await;
    let response = reqwest::Client::new()
        .post(server.url("/oauth/revoke"))
        .form(&[("token", revoked["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let token = make_token(&mut owner, &ws, "read").await;
    mcp_session(&server, &token).await;
    let dropped = make_token(&mut owner, &ws, "read").await;
    let id = &dropped["sbx_pat_".len().."sbx_pat_".len() + 16];
    let page = owner
        .submit(
            &format!("/w/{ws}/tokens"),
            &format!("/w/{ws}/tokens/{id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(page.status, 303);

    // A month on: the sessions, the invitation, the pairing code, the access tokens and the
    // MCP session have all ended. Then fresh ones of each that are live.
    server.clock.advance(31 * DAY);
    let mut owner = signed_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let page = owner
        .submit(
            &format!("/w/{ws}/members"),
            &format!("/w/{ws}/invites"),
            &[("email", "quick@example.com"), ("role", "member")],
        )
        .await;
    assert_eq!(page.status, 303);
    let invitation = server.link_in_outbox("quick@example.com", "invite");
    pairing_code(&mut owner, &ws, "New laptop").await;
    mcp_session(&server, &token).await;

    let run = run_job(&server, JobName::ExpiredCleanup);
    assert_eq!(run.outcome, Outcome::Ok, "{run}");
    assert!(run.summary.contains("grants=1"), "{run}");
    assert!(run.summary.contains("personal_tokens=1"), "{run}");

    let remaining = |table: &str| server.count(&format!("SELECT count(*) FROM {table}"), &[]);
    assert_eq!(remaining("sessions"), 1, "only the fresh session");
    assert_eq!(
        remaining("one_time_links"),
        0,
        "setup and verify links used"
    );
    assert_eq!(remaining("invites"), 1);
    assert_eq!(remaining("pairing_codes"), 1);
    assert_eq!(remaining("oauth_grants"), 1, "the revoked grant went");
    assert_eq!(
        remaining("oauth_tokens WHERE kind = 'access'"),
        0,
        "access tokens past their hour"
    );
    assert_eq!(
        remaining("oauth_tokens WHERE kind = 'refresh'"),
        1,
        "the live grant's refresh token stays"
    );
    assert_eq!(
        remaining("oauth_codes"),
        1,
        "a used code stays for replay detection"
    );
    assert_eq!(remaining("mcp_sessions"), 1);
    assert_eq!(remaining("personal_tokens"), 1);

    // What was kept still works.
    assert_eq!(owner.get("/account").await.status, 200);
    assert_eq!(WebClient::new(&server).get(&invitation).await.status, 200);
    let (status, body) = refresh(&server, &flow, kept["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let agents = owner.get(&format!("/w/{ws}/agents")).await.body;
    assert!(agents.contains("New laptop") && !agents.contains("Old laptop"));
}

/// Anyone may register an OAuth client: a registration no one grants anything is removed
/// once older than `[oauth] unused_client_days`, and counted on the AI clients page for
/// those who manage members. A client someone allowed stays, and still works.
#[actix_web::test]
async fn expired_cleanup_removes_oauth_clients_never_granted_anything() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let ws = create_workspace(&mut owner, "Acme").await;
    let body = json!({"redirect_uris": ["https://app.example.com/cb"]});
    for _ in 0..3 {
        assert_eq!(crate::common::register(&server, &body).await.0, 201);
    }
    let (flow, tokens) = oauth_tokens(&server, &mut owner, &ws).await;
    let clients = "SELECT count(*) FROM oauth_clients";
    assert_eq!(server.count(clients, &[]), 4);
    let page = owner.get(&format!("/w/{ws}/ai-clients")).await;
    assert!(
        page.body.contains("never allowed anywhere: 3"),
        "{}",
        page.body
    );
    let member =
        crate::workspaces::invite(&server, &mut owner, &ws, "m@example.com", "member").await;
    let mut member = join_by_invite(&server, &member).await;
    let page = member.get(&format!("/w/{ws}/ai-clients")).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("never allowed anywhere"), "admins only");

    let days = i64::from(server.dir.config.oauth.unused_client_days);
    server.clock.advance(days * DAY - 60);
    let run = run_job(&server, JobName::ExpiredCleanup);
    assert!(run.summary.contains("unused_oauth_clients=0"), "{run}");
    assert_eq!(server.count(clients, &[]), 4, "not old enough yet");
    server.clock.advance(120);
    let run = run_job(&server, JobName::ExpiredCleanup);
    assert!(run.summary.contains("unused_oauth_clients=3"), "{run}");
    assert_eq!(
        server.count(clients, &[]),
        1,
        "the client someone allowed stays"
    );
    let (status, body) = refresh(&server, &flow, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let mut owner = signed_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let page = owner.get(&format!("/w/{ws}/ai-clients")).await;
    assert!(
        page.body.contains("never allowed anywhere: 0"),
        "{}",
        page.body
    );
}

/// The binary with a clean STRONGBOX_* environment and the data dir set.
pub(crate) fn strongbox(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(BINARY);
    for (key, _) in std::env::vars() {
        if key.starts_with("STRONGBOX_") || key == "CREDENTIALS_DIRECTORY" || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .env("STRONGBOX_DATA_DIR", data)
        .env("STRONGBOX_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    command
}

/// Sends every line of the child's stderr down a channel, from a thread of its own.
pub(crate) fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Reads lines until one contains `needle`; returns every line read.
pub(crate) fn wait_for_line(lines: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return;
                }
            }
            Err(_) => panic!("no line with {needle:?}; saw:\n{}", seen.join("\n")),
        }
    }
}

pub(crate) fn wait_with_deadline(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_runs_of_one_job_never_overlap_and_the_second_says_so() {
    let dir = TestDir::new();
    let data = dir.data_dir().to_path_buf();
    let store = dir.open_store();

    // The test holds the control database's write lock, so a run that has its job lock
    // waits at its first write for as long as the test wants.
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        store
            .control()
            .write(|_| {
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok::<_, StoreError>(())
            })
            .unwrap();
        store
    });
    held_rx.recv().unwrap();

    let mut first = strongbox(
        &data,
        &["jobs", "run", "expired-cleanup"],
        &[("STRONGBOX_STORAGE__BUSY_TIMEOUT_MS", "600000")],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let lines = stderr_lines(&mut first);
    let mut seen = Vec::new();
    wait_for_line(&lines, "job started", &mut seen);

    let second = strongbox(&data, &["jobs", "run", "expired-cleanup"], &[])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains("expired-cleanup is already running"),
        "{stderr}"
    );
    release_tx.send(()).unwrap();
    let store = holder.join().unwrap();
    let status = wait_with_deadline(&mut first, "the first run");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut first.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(status.success(), "{stdout}\n{}", seen.join("\n"));
    assert!(stdout.starts_with("expired-cleanup ok in "), "{stdout}");
    let recorded: i64 = store
        .control()
        .read(|c| {
            c.query_row(
                "SELECT count(*) FROM job_runs WHERE job = 'expired-cleanup'",
                [],
                |row| row.get(0),
            )
            .map_err(StoreError::from)
        })
        .unwrap();
    assert_eq!(recorded, 1, "the refused run recorded nothing");

    let other = strongbox(&data, &["jobs", "run", "usage-sweep"], &[])
        .output()
        .unwrap();
    assert!(other.status.success());
    assert!(String::from_utf8_lossy(&other.stdout).starts_with("usage-sweep ok in "));

    let list = strongbox(&data, &["jobs", "list"], &[]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    let line = |job: &str| {
        list.lines()
            .find(|l| l.starts_with(job))
            .unwrap_or_else(|| panic!("{job} is listed: {list}"))
            .to_string()
    };
    let cleanup = line("expired-cleanup");
    assert!(
        cleanup.contains("0 15 1 * * *") && cleanup.contains(" UTC") && cleanup.contains(" ok "),
        "{list}"
    );
    assert!(cleanup.contains("sessions=0"), "{list}");
    assert!(line("usage-sweep").contains(" ok "), "{list}");
    assert!(line("closure-purge").ends_with("never"), "{list}");
}

#[test]
fn serve_runs_the_schedules_and_exits_cleanly_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Every second, so runs are under way when the signal comes.
    let every_second = &[("STRONGBOX_JOBS__USAGE_SWEEP__SCHEDULE", "* * * * * *")];
    let mut server = strongbox(&data, &["serve"], every_second)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut server);
    let mut seen = Vec::new();
    wait_for_line(&lines, "job scheduler started", &mut seen);
    wait_for_line(&lines, "job finished", &mut seen);

    let pid = nix::unistd::Pid::from_raw(i32::try_from(server.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = wait_with_deadline(&mut server, "strongbox serve");
    seen.extend(lines.try_iter());
    assert_eq!(status.code(), Some(0), "{}", seen.join("\n"));
    assert!(
        seen.iter().any(|l| l.contains("job scheduler stopped")),
        "{}",
        seen.join("\n")
    );

    let list = strongbox(&data, &["jobs", "list"], every_second)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    let sweep = list
        .lines()
        .find(|l| l.starts_with("usage-sweep"))
        .unwrap_or_default();
    assert!(
        sweep.contains("* * * * * *") && sweep.contains(" ok "),
        "{list}"
    );
}

#[test]
fn an_invalid_schedule_refuses_start_up_and_names_the_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = strongbox(
        &data,
        &["serve"],
        &[("STRONGBOX_JOBS__CLOSURE_PURGE__SCHEDULE", "at midnight")],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("jobs.closure_purge.schedule"), "{stderr}");
    assert!(!data.exists(), "nothing was created");
}
