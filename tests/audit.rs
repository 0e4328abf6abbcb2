//! The audit log end to end: every action in the closed set is produced by a real flow,
//! no row holds a secret or record content, the dashboard page filters, pages and exports
//! for owners and admins only, and `strongbox audit verify` finds tampering in the real
//! encrypted files.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use strongbox::audit::{Action, AuditLog, Chain};
use strongbox::clock::{Clock, SystemClock};
use strongbox::crypto::KeyPurpose;
use strongbox::jobs::{self, JobContext, JobName, JobSettings, Outcome};

use crate::accounts::use_link;
use crate::common::{
    Agent, OWNER_EMAIL, OWNER_PASSWORD, TestServer, WebClient, approve, create_workspace,
    make_token, new_flow, pairing_code, set_up_owner, sign_in,
};
use crate::jobs::{close_account, close_workspace, signed_in};
use crate::mfa::{code_now, enrol, second_factor};
use crate::oauth::{exchange, refresh};
use crate::workspaces::{MEMBER_PASSWORD, invite, join_by_invite};

const DAY: i64 = 86_400;
/// Record content that must never reach an audit row.
const SENTINEL: &str = "Sentinel-Content-4c1d";

pub(crate) fn audit_log(server: &TestServer) -> AuditLog {
    AuditLog::new(Arc::clone(&server.store), server.clock.clone())
}

/// Every row of every chain, as exported.
pub(crate) fn all_rows(server: &TestServer) -> Vec<Value> {
    rows_of(&audit_log(server))
}

fn rows_of(audit: &AuditLog) -> Vec<Value> {
    let mut rows = Vec::new();
    for chain in audit.chains().unwrap() {
        audit
            .each(chain, &Default::default(), |row| {
                rows.push(serde_json::to_value(&row).unwrap());
                true
            })
            .unwrap();
    }
    rows
}

/// The member's user id, read off the members page.
async fn member_id(owner: &mut WebClient, workspace: &str, email: &str) -> String {
    let members = owner.get(&format!("/w/{workspace}/members")).await.body;
    let row = members.split("<tr>").find(|r| r.contains(email)).unwrap();
    let start = row.find("/members/").unwrap() + "/members/".len();
    row[start..start + 36].to_string()
}

async fn rest(server: &TestServer, method: reqwest::Method, path: &str, token: &str) -> u16 {
    let request = reqwest::Client::new()
        .request(method.clone(), server.url(path))
        .bearer_auth(token);
    let request = match method {
        reqwest::Method::PUT => {
            request.json(&json!({"name": SENTINEL, "email": "ada@example.com"}))
        }
        _ => request,
    };
    request.send().await.unwrap().status().as_u16()
}

#[actix_web::test]
async fn every_action_is_produced_by_a_real_flow_and_no_row_holds_a_secret() {
    let server =
        TestServer::start_with(|c| c.accounts.signup = strongbox::config::SignupMode::Open);
    let mut secrets: Vec<String> = vec![OWNER_PASSWORD.into(), MEMBER_PASSWORD.into()];

    // Accounts: setup, a failed sign-in, sign-up and verification, MFA, passwords, sessions.
    let mut owner = set_up_owner(&server).await;
    let (_, failed) = sign_in(&server, OWNER_EMAIL, "not the owner's passphrase").await;
    assert_eq!(failed.status, 401);
    secrets.push("not the owner's passphrase".into());
    let signup_password = "a sign-up passphrase nobody guesses";
    secrets.push(signup_password.into());
    let mut visitor = WebClient::new(&server);
    let page = visitor
        .submit(
            "/sign-up",
            "/sign-up",
            &[("email", "new@example.com"), ("password", signup_password)],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let verify = server.link_in_outbox("new@example.com", "verify");
    secrets.push(verify.split("token=").nth(1).unwrap().into());
    let page = use_link(&mut visitor, &verify, "/verify", &[]).await;
    assert!(page.status.as_u16() < 400, "{}", page.body);

    let (secret, backup_codes) = enrol(&server, &mut owner).await;
    secrets.extend(backup_codes.iter().cloned());
    server.clock.advance(30);
    let (mut phone, page) = sign_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(page.location.as_deref(), Some("/sign-in/second-factor"));
    let code = code_now(&server, &secret);
    assert_eq!(second_factor(&mut phone, &code).await.status, 303);
    server.clock.advance(30);
    // A provider identity linked to the owner's account, then unlinked. The round trip
    // through a real provider is `oidc.rs`'s; this is the account side, which records it.
    let identity = strongbox::auth::ProviderIdentity {
        provider: "test".into(),
        label: "Test ID".into(),
        subject: "owner-0003".into(),
        email: OWNER_EMAIL.parse().ok(),
        email_verified: true,
    };
    let owner_id = server.user_id(OWNER_EMAIL);
    server.auth.link_provider(owner_id, identity).await.unwrap();
    server
        .auth
        .unlink_provider(owner_id, "test".into())
        .await
        .unwrap();

    let csrf = owner.get("/account/mfa").await.csrf();
    let mfa_form = |code: String| {
        vec![
            ("csrf".to_string(), csrf.clone()),
            ("password".to_string(), OWNER_PASSWORD.to_string()),
            ("code".to_string(), code),
        ]
    };
    let fields = mfa_form(code_now(&server, &secret));
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let page = owner.post("/account/mfa/backup-codes", &fields).await;
    assert_eq!(page.status, 200);
    server.clock.advance(30);
    let fields = mfa_form(code_now(&server, &secret));
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        owner.post("/account/mfa/disable", &fields).await.status,
        200
    );
    // The secret key itself, as the enrolment page showed it.
    secrets.push(
        totp_rs::Secret::Raw(secret.clone())
            .to_encoded()
            .to_string(),
    );

    let page = phone.submit("/account", "/sign-out", &[]).await;
    assert_eq!(page.status, 303);
    let new_password = "the owner's next long passphrase";
    secrets.push(new_password.into());
    let page = owner
        .submit(
            "/account",
            "/account/password",
            &[("current", OWNER_PASSWORD), ("password", new_password)],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let page = owner.submit("/account", "/account/data", &[]).await;
    assert_eq!(page.status, 200);
    let page = owner
        .submit("/account", "/account/sign-out-everywhere", &[])
        .await;
    assert_eq!(page.status, 303);
    let page = WebClient::new(&server)
        .submit(
            "/forgot-password",
            "/forgot-password",
            &[("email", OWNER_EMAIL)],
        )
        .await;
    assert_eq!(page.status, 200);
    let reset = server.link_in_outbox(OWNER_EMAIL, "reset-password");
    secrets.push(reset.split("token=").nth(1).unwrap().into());
    let mut someone = WebClient::new(&server);
    let page = use_link(
        &mut someone,
        &reset,
        "/reset-password",
        &[("password", OWNER_PASSWORD)],
    )
    .await;
    assert!(page.status.as_u16() < 400, "{}", page.body);
    let (mut owner, page) = sign_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(page.status, 303);
    let owner_cookie = owner.session().unwrap();
    secrets.push(owner_cookie);

    // A workspace: members, invitations, roles, closure.
    let ws = create_workspace(&mut owner, "Audited").await;
    let page = owner
        .submit(
            &format!("/w/{ws}"),
            &format!("/w/{ws}/rename"),
            &[("name", "Audited Inc")],
        )
        .await;
    assert_eq!(page.status, 303);
    let link = invite(&server, &mut owner, &ws, "bob@example.com", "member").await;
    secrets.push(link.split("token=").nth(1).unwrap().into());
    let mut bob = join_by_invite(&server, &link).await;
    let bob_id = member_id(&mut owner, &ws, "bob@example.com").await;
    let page = owner
        .submit(
            &format!("/w/{ws}/members"),
            &format!("/w/{ws}/members/{bob_id}/role"),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(page.status, 303);
    let page = bob
        .submit(&format!("/w/{ws}"), &format!("/w/{ws}/leave"), &[])
        .await;
    assert_eq!(page.status, 303);
    invite(&server, &mut owner, &ws, "carol@example.com", "viewer").await;
    let members = owner.get(&format!("/w/{ws}/members")).await.body;
    let start = members.find("/invites/").unwrap() + "/invites/".len();
    let invite_id = &members[start..start + 64];
    let page = owner
        .submit(
            &format!("/w/{ws}/members"),
            &format!("/w/{ws}/invites/{invite_id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(page.status, 303);
    let link = invite(&server, &mut owner, &ws, "dave@example.com", "viewer").await;
    let mut dave = join_by_invite(&server, &link).await;
    let dave_id = member_id(&mut owner, &ws, "dave@example.com").await;
    let page = owner
        .submit(
            &format!("/w/{ws}/members"),
            &format!("/w/{ws}/members/{dave_id}/remove"),
            &[],
        )
        .await;
    assert_eq!(page.status, 303);
    let page = dave
        .submit(
            "/account",
            "/account/close",
            &[("password", MEMBER_PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 200);
    let (mut dave, _) = sign_in(&server, "dave@example.com", MEMBER_PASSWORD).await;
    let page = dave.submit("/account", "/account/reopen", &[]).await;
    assert_eq!(page.status, 303);

    // Data: a token writes and deletes a record; masking rules; exports.
    let token = make_token(&mut owner, &ws, "read_write").await;
    secrets.push(token.clone());
    let path = "/api/v1/collections/customers/records/c-1";
    assert_eq!(rest(&server, reqwest::Method::PUT, path, &token).await, 200);
    assert_eq!(
        rest(&server, reqwest::Method::DELETE, path, &token).await,
        204
    );
    let tokens = owner.get(&format!("/w/{ws}/tokens")).await.body;
    let start = tokens.find("/tokens/").unwrap() + "/tokens/".len();
    let token_id: String = tokens[start..].chars().take_while(|c| *c != '/').collect();
    let page = owner
        .submit(
            &format!("/w/{ws}/tokens"),
            &format!("/w/{ws}/tokens/{token_id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(page.status, 303);
    let masking = format!("/w/{ws}/masking");
    let page = owner
        .submit(
            &masking,
            &format!("/w/{ws}/masking/rules"),
            &[
                ("term", "Zephyrine Holdings"),
                ("action", "alias"),
                ("alias", "Client Z"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    secrets.push("Zephyrine Holdings".into());
    let page = owner
        .submit(
            &masking,
            &format!("/w/{ws}/masking/rules/remove"),
            &[("term", "Zephyrine Holdings")],
        )
        .await;
    assert_eq!(page.status, 303);
    let page = owner
        .submit(
            &masking,
            &format!("/w/{ws}/masking/requirement"),
            &[("required", "on")],
        )
        .await;
    assert_eq!(page.status, 303);
    let page = owner
        .submit(&format!("/w/{ws}"), &format!("/w/{ws}/export"), &[])
        .await;
    assert_eq!(page.status, 200);
    let page = owner
        .submit(
            &format!("/w/{ws}/audit"),
            &format!("/w/{ws}/audit/export"),
            &[("format", "jsonl")],
        )
        .await;
    assert_eq!(page.status, 200);

    // Agents: pairing, a withdrawn code, a revoked agent, a replayed refresh secret.
    let code = pairing_code(&mut owner, &ws, "Front desk").await;
    secrets.push(code.clone());
    let agent = Agent::pair(&server, &code).await;
    secrets.push(agent.refresh.clone());
    secrets.push(agent.access.clone());
    let first = agent.refresh_with(&agent.refresh).await;
    assert_eq!(first.status(), 200);
    let rotated: Value = first.json().await.unwrap();
    let second_secret = rotated["refresh_secret"].as_str().unwrap().to_string();
    secrets.push(second_secret.clone());
    assert_eq!(agent.refresh_with(&second_secret).await.status(), 200);
    assert_eq!(agent.refresh_with(&agent.refresh).await.status(), 401);
    pairing_code(&mut owner, &ws, "Spare").await;
    let agents = owner.get(&format!("/w/{ws}/agents")).await.body;
    let start = agents.find("/pairing-codes/").unwrap() + "/pairing-codes/".len();
    let withdraw = format!(
        "/w/{ws}/pairing-codes/{}/withdraw",
        &agents[start..start + 64]
    );
    assert_eq!(
        owner
            .submit(&format!("/w/{ws}/agents"), &withdraw, &[])
            .await
            .status,
        303
    );
    let second = Agent::pair(&server, &pairing_code(&mut owner, &ws, "Back office").await).await;
    let revoke = format!("/w/{ws}/agents/{}/revoke", second.id);
    assert_eq!(
        owner
            .submit(&format!("/w/{ws}/agents"), &revoke, &[])
            .await
            .status,
        303
    );

    // OAuth: registration, approval, tokens, refresh, a replayed code, a reused refresh
    // token, and revocation by the client.
    let flow = new_flow(&server).await;
    let code = approve(&server, &mut owner, &flow, &ws).await;
    secrets.push(code.clone());
    let (status, tokens) = exchange(&server, &flow, &code, &flow.verifier).await;
    assert_eq!(status, 200);
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    secrets.push(first_refresh.clone());
    secrets.push(tokens["access_token"].as_str().unwrap().into());
    let (status, _) = refresh(&server, &flow, &first_refresh).await;
    assert_eq!(status, 200);
    server.clock.advance(60);
    assert_eq!(refresh(&server, &flow, &first_refresh).await.0, 400);
    let code = approve(&server, &mut owner, &flow, &ws).await;
    assert_eq!(exchange(&server, &flow, &code, &flow.verifier).await.0, 200);
    assert_eq!(exchange(&server, &flow, &code, &flow.verifier).await.0, 400);
    let code = approve(&server, &mut owner, &flow, &ws).await;
    let (_, tokens) = exchange(&server, &flow, &code, &flow.verifier).await;
    let response = reqwest::Client::new()
        .post(server.url("/oauth/revoke"))
        .form(&[
            ("token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", flow.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The workspace closes and reopens; then the retention sweep runs on the system log.
    let overview = format!("/w/{ws}");
    let page = owner
        .submit(
            &overview,
            &format!("/w/{ws}/close"),
            &[("name", "Audited Inc")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        owner
            .submit(&overview, &format!("/w/{ws}/reopen"), &[])
            .await
            .status,
        303
    );
    // A second workspace and the signed-up account close; their holds pass further down.
    let doomed = create_workspace(&mut owner, "Doomed").await;
    close_workspace(&mut owner, &doomed, "Doomed").await;
    let mut newcomer = signed_in(&server, "new@example.com", signup_password).await;
    close_account(&mut newcomer, signup_password).await;

    // What the sweep removes is read first: the test checks every row ever written.
    let mut rows = all_rows(&server);
    let audit = audit_log(&server);
    let swept = audit
        .sweep(Chain::System, server.clock.now() - DAY)
        .unwrap();
    assert_eq!(swept, 0, "nothing is a day old yet");
    server.clock.advance(2 * DAY);
    assert!(
        audit
            .sweep(Chain::System, server.clock.now() - DAY)
            .unwrap()
            > 0
    );

    // The closure purge deletes both and says so in the system log.
    server.clock.advance(31 * DAY);
    let purge = JobContext::new(
        Arc::clone(&server.store),
        server.clock.clone(),
        JobSettings::from(&server.dir.config),
    );
    let run = jobs::run(JobName::ClosurePurge, &purge).unwrap();
    assert_eq!(run.outcome, Outcome::Ok, "{run}");
    assert!(run.summary.starts_with("workspaces=1 accounts=1"), "{run}");

    // A backup, restored into a new data dir whose own system log records the restore.
    rows.extend(crate::backups::restored_system_log(&server));

    // Last, with the server stopped, the operator moves the install to a new master key;
    // every database's log says so, and every chain verifies under the new key.
    let data = server.dir.data_dir().to_path_buf();
    secrets.push(hex::encode(std::fs::read(data.join("master.key")).unwrap()));
    let control_key = server.store.derive_key(KeyPurpose::ControlDb, 1);
    secrets.push(hex::encode(control_key.expose()));
    drop((audit, purge));
    let dir = server.stop().await;
    let next = dir.dir.path().join("next.key");
    let args = [
        "keys",
        "rotate",
        "--generate-master-key",
        next.to_str().unwrap(),
    ];
    let out = crate::startup::strongbox(&data, &args, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    secrets.push(hex::encode(std::fs::read(&next).unwrap()));
    let store = Arc::new(strongbox::app::open(&dir.config).unwrap().store);
    let audit = AuditLog::new(store, Arc::new(SystemClock));
    rows.extend(rows_of(&audit));
    let produced: BTreeSet<&str> = rows.iter().map(|r| r["action"].as_str().unwrap()).collect();
    let missing: Vec<&str> = Action::ALL
        .iter()
        .map(|a| a.as_str())
        .filter(|a| !produced.contains(a))
        .collect();
    assert!(missing.is_empty(), "no test path produces {missing:?}");

    let text = rows
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    secrets.push(SENTINEL.into());
    secrets.push("ada@example.com".into());
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "an audit row holds {secret:?}"
        );
    }
    for chain in audit.chains().unwrap() {
        assert!(audit.verify(chain).unwrap().is_ok(), "{chain} verifies");
    }
    // Rows name where requests came from.
    let sign_in_row = rows
        .iter()
        .find(|r| r["action"] == "sign_in.failed")
        .unwrap();
    assert_eq!(sign_in_row["ip"], "127.0.0.1");
    assert!(
        sign_in_row["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(sign_in_row["actor_kind"], "anonymous");
}

#[actix_web::test]
async fn owners_and_admins_filter_page_and_export_the_log_and_others_cannot() {
    // Sixty renames are more requests than the default per-address budget allows.
    let server = TestServer::start_with(|c| {
        c.rate_limits.general.per_minute = 100_000;
        c.rate_limits.general.burst = 100_000;
    });
    let mut owner = set_up_owner(&server).await;
    let ws = create_workspace(&mut owner, "Logged").await;
    for n in 0..55 {
        let page = owner
            .submit(
                &format!("/w/{ws}"),
                &format!("/w/{ws}/rename"),
                &[("name", &format!("Logged {n}"))],
            )
            .await;
        assert_eq!(page.status, 303);
    }
    make_token(&mut owner, &ws, "read").await;

    let page = owner.get(&format!("/w/{ws}/audit")).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.body.matches("<code>workspace.renamed</code>").count(),
        49
    );
    assert!(page.body.contains("<code>token.created</code>"));
    let older = page
        .body
        .split("<a href=\"")
        .find(|part| part.contains("before="))
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let page = owner.get(&older).await;
    assert_eq!(
        page.body.matches("<code>workspace.renamed</code>").count(),
        6
    );
    assert!(page.body.contains("<code>workspace.created</code>"));
    assert!(!page.body.contains("before="), "the last page");

    let only_tokens = owner
        .get(&format!("/w/{ws}/audit?action=token.created&actor=user"))
        .await;
    assert_eq!(only_tokens.body.matches("<tr><td>").count(), 1);
    let today = chrono::DateTime::from_timestamp(server.clock.now(), 0)
        .unwrap()
        .date_naive();
    let tomorrow = today.succ_opt().unwrap();
    let future = owner.get(&format!("/w/{ws}/audit?from={tomorrow}")).await;
    assert!(future.body.contains("No events match"));
    let in_range = owner
        .get(&format!("/w/{ws}/audit?from={today}&to={today}"))
        .await;
    assert!(in_range.body.contains("before="));
    for bad in [
        "action=drop+table",
        "actor=robot",
        "from=yesterday",
        "actor_id=a%27b",
    ] {
        let page = owner.get(&format!("/w/{ws}/audit?{bad}")).await;
        assert_eq!(page.status, 422, "{bad}");
        assert!(!page.body.contains("drop table"), "the value is not echoed");
    }

    let jsonl = owner
        .submit(
            &format!("/w/{ws}/audit"),
            &format!("/w/{ws}/audit/export"),
            &[("format", "jsonl"), ("action", "workspace.renamed")],
        )
        .await;
    assert_eq!(jsonl.status, 200);
    let lines: Vec<Value> = jsonl
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 55);
    assert!(
        lines
            .windows(2)
            .all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64())
    );
    assert_eq!(lines[0]["actor_kind"], "user");
    assert_eq!(lines[0]["hash"].as_str().unwrap().len(), 64);
    let csv = owner
        .submit(
            &format!("/w/{ws}/audit"),
            &format!("/w/{ws}/audit/export"),
            &[("format", "csv")],
        )
        .await;
    assert_eq!(csv.status, 200);
    let mut csv_lines = csv.body.lines();
    assert!(
        csv_lines
            .next()
            .unwrap()
            .starts_with("seq,time,at,actor_kind")
    );
    assert_eq!(
        csv_lines.count(),
        1 + 55 + 1 + 1,
        "created, renames, token, jsonl export"
    );
    let exported = all_rows(&server)
        .into_iter()
        .filter(|r| r["action"] == "audit.exported")
        .count();
    assert_eq!(exported, 2, "each export is itself audited");

    // A member sees neither page; a non-member learns nothing.
    let link = invite(&server, &mut owner, &ws, "member@example.com", "member").await;
    let mut member = join_by_invite(&server, &link).await;
    assert_eq!(member.get(&format!("/w/{ws}/audit")).await.status, 403);
    assert_eq!(member.get(&format!("/w/{ws}/usage")).await.status, 403);
    let page = member
        .submit(
            &format!("/w/{ws}"),
            &format!("/w/{ws}/audit/export"),
            &[("format", "jsonl")],
        )
        .await;
    assert_eq!(page.status, 403);
}

fn run_cli(server: &TestServer, args: &[&str]) -> (bool, String) {
    let output = crate::startup::strongbox(server.dir.data_dir(), args, &[]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.success(), text)
}

#[actix_web::test]
async fn the_cli_verifies_every_chain_and_finds_tampering_in_the_encrypted_files() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let ws = create_workspace(&mut owner, "Tamper").await;
    for name in ["One", "Two", "Three"] {
        owner
            .submit(
                &format!("/w/{ws}"),
                &format!("/w/{ws}/rename"),
                &[("name", name)],
            )
            .await;
    }
    make_token(&mut owner, &ws, "read").await;
    let (ok, text) = run_cli(&server, &["audit", "verify"]);
    assert!(ok, "{text}");
    assert!(text.contains("system: ok"), "{text}");
    assert!(
        text.contains(&format!("workspace {ws}: ok, 5 rows")),
        "{text}"
    );

    let (ok, text) = run_cli(
        &server,
        &[
            "audit",
            "export",
            "--workspace",
            &ws,
            "--action",
            "workspace.renamed",
        ],
    );
    assert!(ok);
    assert_eq!(text.lines().count(), 3);
    let (ok, _) = run_cli(&server, &["audit", "export", "--action", "no.such_action"]);
    assert!(!ok, "an unknown action is refused");

    let db = server.store.workspace(ws.parse().unwrap()).unwrap();
    let refused = db.write(|tx| {
        tx.execute("UPDATE audit_log SET details = '{}' WHERE seq = 2", [])
            .map_err(strongbox::store::StoreError::from)
    });
    assert!(refused.is_err(), "UPDATE is refused by the database");
    let refused = db.write(|tx| {
        tx.execute("DELETE FROM audit_log WHERE seq = 2", [])
            .map_err(strongbox::store::StoreError::from)
    });
    assert!(refused.is_err(), "DELETE is refused by the database");

    // Someone with the key drops the guard and edits one byte of a row's details.
    db.write(|tx| {
        tx.execute_batch(
            "DROP TRIGGER audit_log_append_only;
             UPDATE audit_log SET details = replace(details, 'read', 'reae') WHERE seq = 5;",
        )
        .map_err(strongbox::store::StoreError::from)
    })
    .unwrap();
    let (ok, text) = run_cli(&server, &["audit", "verify", "--workspace", &ws]);
    assert!(!ok);
    assert!(
        text.contains(&format!(
            "workspace {ws}: BROKEN at row 5: its content does not match"
        )),
        "{text}"
    );
    let (ok, text) = run_cli(&server, &["audit", "verify"]);
    assert!(!ok, "one broken chain fails the whole run");
    assert!(text.contains("system: ok"), "{text}");
}

#[actix_web::test]
async fn usage_shows_ninety_days_as_a_chart_and_tables_without_content() {
    use strongbox::workspace::usage::{self, Outcome, Usage};
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let ws = create_workspace(&mut owner, "Used").await;
    let empty = owner.get(&format!("/w/{ws}/usage")).await;
    assert_eq!(empty.status, 200);
    assert!(empty.body.contains("No calls in the last 90 days"));

    let user = strongbox::auth::UserId::new_random();
    let call = |operation: &'static str, outcome, masked: &[(&'static str, usize)]| Usage {
        actor: "token:t-1".into(),
        user,
        operation,
        outcome,
        items: 2,
        masked: masked.iter().copied().collect(),
        duration: std::time::Duration::from_millis(3),
    };
    let now = server.clock.now();
    let rows = [
        (now, call("search", Outcome::Ok, &[("EMAIL", 2)])),
        (now, call("search", Outcome::Refused, &[])),
        (now - 3 * DAY, call("query", Outcome::Ok, &[("PHONE", 1)])),
        (now - 100 * DAY, call("aggregate", Outcome::Ok, &[])),
    ];
    let db = server.store.workspace(ws.parse().unwrap()).unwrap();
    db.write(|tx| {
        for (at, row) in &rows {
            usage::insert(tx, row, *at).map_err(strongbox::store::StoreError::from)?;
        }
        Ok::<_, strongbox::store::StoreError>(())
    })
    .unwrap();

    let page = owner.get(&format!("/w/{ws}/usage")).await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    assert!(
        body.contains("<svg viewBox=\"0 0 720 160\""),
        "90 bars of 8"
    );
    assert_eq!(body.matches("<rect class=\"calls\"").count(), 90);
    assert!(body.contains("busiest day had 2"));
    assert!(!body.contains("<script"), "drawn without script");
    assert!(
        body.contains("<td><code>search</code></td><td>2</td><td>1</td>"),
        "{body}"
    );
    assert!(body.contains("<td><code>query</code></td><td>1</td><td>0</td>"));
    assert!(
        !body.contains("aggregate"),
        "older than 90 days is not shown"
    );
    assert!(body.contains("<td><code>EMAIL</code></td><td>2</td>"));
    assert!(body.contains("<td><code>PHONE</code></td><td>1</td>"));
}

/// Someone holding the master key, with the server stopped: `INSERT OR REPLACE` over a row
/// is refused by the database as an update is, and a log wiped empty (rows and head gone,
/// triggers dropped first) does not verify, for the system log and for a workspace's; nor
/// does one whose signed head alone was removed.
#[actix_web::test]
async fn a_replaced_row_is_refused_and_a_wiped_log_does_not_verify() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let ws = create_workspace(&mut owner, "Wiped").await;
    let dir = server.stop().await;
    let store = dir.open_store();
    let control = store.control();
    let workspace = store.workspace(ws.parse().unwrap()).unwrap();
    let run = |sql: &str, db: &strongbox::store::Database| {
        db.write(|tx| {
            tx.execute_batch(sql)
                .map_err(strongbox::store::StoreError::from)
        })
    };
    let replace = "INSERT OR REPLACE INTO audit_log
        SELECT seq, at, actor_kind, actor_id, 'account.deleted', target, ip, user_agent,
               request_id, details, prev_hash, hash
        FROM audit_log WHERE seq = 1";
    for db in [control, workspace.as_ref()] {
        assert!(
            run(replace, db).is_err(),
            "REPLACE is refused by the database"
        );
    }
    let cli = |args: &[&str]| {
        let output = crate::startup::strongbox(dir.data_dir(), args, &[]);
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        (output.status.success(), text)
    };
    let (ok, text) = cli(&["audit", "verify"]);
    assert!(ok, "{text}");

    let wipe = "DROP TRIGGER audit_log_swept_only; DROP TRIGGER audit_log_append_only;
                DELETE FROM audit_log; DELETE FROM audit_head;";
    run(wipe, workspace.as_ref()).unwrap();
    let (ok, text) = cli(&["audit", "verify", "--workspace", &ws]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "workspace {ws}: BROKEN at row 1: the log is empty"
        )),
        "{text}"
    );

    run("DELETE FROM audit_head", control).unwrap();
    let (ok, text) = cli(&["audit", "verify"]);
    assert!(!ok);
    assert!(text.contains("system: BROKEN"), "rows but no head: {text}");
    run(wipe, control).unwrap();
    let (ok, text) = cli(&["audit", "verify"]);
    assert!(!ok);
    assert!(
        text.contains("system: BROKEN at row 1: the log is empty"),
        "{text}"
    );
}
