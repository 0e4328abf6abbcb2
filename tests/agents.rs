//! The agent API over real HTTP: pairing, token rotation and reuse, every JWT attack the
//! issue lists, revocation, and sync batches (replay, limits, redaction, the backstop).

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    Agent, TestServer, WebClient, create_workspace, pair_request, pairing_code, set_up_owner,
};
use strongbox::clock::Clock;
use strongbox::crypto::KeyPurpose;
use strongbox::workspace::records::{self, CollectionName, RecordId};

async fn owner_with_workspace(server: &TestServer) -> (WebClient, String) {
    let mut owner = set_up_owner(server).await;
    let workspace = create_workspace(&mut owner, "Acme").await;
    (owner, workspace)
}

fn record(
    server: &TestServer,
    workspace: &str,
    collection: &str,
    id: &str,
) -> Option<records::Record> {
    let db = server.store.workspace(workspace.parse().unwrap()).unwrap();
    db.read(|c| {
        records::get(
            c,
            &CollectionName::parse(collection).unwrap(),
            &RecordId::parse(id).unwrap(),
        )
        .map_err(strongbox::store::StoreError::from)
    })
    .unwrap()
}

fn upsert(collection: &str, id: &str, data: Value) -> Value {
    json!({"collection": collection, "id": id, "op": "upsert", "data": data})
}

#[actix_web::test]
async fn a_pairing_code_works_once_is_shown_once_and_expires() {
    let server = TestServer::start();
    let (mut owner, workspace) = owner_with_workspace(&server).await;
    let code = pairing_code(&mut owner, &workspace, "Front desk PC").await;
    let listed = owner.get(&format!("/w/{workspace}/agents")).await;
    assert!(listed.body.contains("Front desk PC"));
    assert!(!listed.body.contains(&code), "the code is shown only once");

    let agent = Agent::pair(&server, &code).await;
    assert_eq!(agent.workspace, workspace);
    assert_eq!(pair_request(&server, &code).await.status(), 401, "reused");

    let late = pairing_code(&mut owner, &workspace, "Laptop").await;
    server.clock.advance(30 * 24 * 3600 + 1);
    assert_eq!(pair_request(&server, &late).await.status(), 401, "expired");
    assert_eq!(pair_request(&server, "sbx_pair_junk").await.status(), 401);
}

#[actix_web::test]
async fn a_replayed_refresh_secret_revokes_the_agent() {
    let server = TestServer::start();
    let (mut owner, workspace) = owner_with_workspace(&server).await;
    let mut agent = Agent::pair(&server, &pairing_code(&mut owner, &workspace, "PC").await).await;

    let first = agent.refresh.clone();
    let rotated = agent.refresh_with(&first).await;
    assert_eq!(rotated.status(), 200);
    let rotated: Value = rotated.json().await.unwrap();
    let second = rotated["refresh_secret"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let rotated: Value = agent.refresh_with(&second).await.json().await.unwrap();
    let third = rotated["refresh_secret"].as_str().unwrap().to_string();
    agent.access = rotated["access_token"].as_str().unwrap().into();
    agent.policy().await;

    // Someone replays the first secret: the agent is revoked, for them and for the agent.
    assert_eq!(agent.refresh_with(&first).await.status(), 401);
    assert_eq!(agent.refresh_with(&third).await.status(), 401);
    assert_eq!(agent.policy_with(&agent.access).await.status(), 401);
    let page = owner.get(&format!("/w/{workspace}/agents")).await;
    assert!(
        page.body.contains("a refresh secret was reused"),
        "{}",
        page.body
    );
}

#[actix_web::test]
async fn an_agent_that_lost_a_rotation_may_retry_briefly_and_only_once() {
    let server = TestServer::start();
    let (mut owner, workspace) = owner_with_workspace(&server).await;
    let agent = Agent::pair(&server, &pairing_code(&mut owner, &workspace, "PC").await).await;
    let first = agent.refresh.clone();
    // The answer to this rotation never reaches the agent...
    assert_eq!(agent.refresh_with(&first).await.status(), 200);
    // ...so it presents the same secret again, moments later, and gets a new one.
    let retried = agent.refresh_with(&first).await;
    assert_eq!(retried.status(), 200);
    let retried: Value = retried.json().await.unwrap();
    let current = retried["refresh_secret"].as_str().unwrap().to_string();
    assert_eq!(
        agent.refresh_with(&current).await.status(),
        200,
        "the new secret works"
    );
    // Once the successor was used, the old secret is a copy: the agent is revoked.
    assert_eq!(agent.refresh_with(&first).await.status(), 401);
    assert_eq!(agent.policy_with(&agent.access).await.status(), 401);

    // Past the retry window, a second presentation revokes at once.
    let other = Agent::pair(&server, &pairing_code(&mut owner, &workspace, "PC2").await).await;
    assert_eq!(other.refresh_with(&other.refresh).await.status(), 200);
    server.clock.advance(121);
    assert_eq!(other.refresh_with(&other.refresh).await.status(), 401);
    let page = owner.get(&format!("/w/{workspace}/agents")).await;
    assert_eq!(page.body.matches("a refresh secret was reused").count(), 2);
}

#[actix_web::test]
async fn a_refresh_secret_presented_for_another_agent_revokes_its_owner() {
    let server = TestServer::start();
    let (mut owner, workspace) = owner_with_workspace(&server).await;
    let victim = Agent::pair(&server, &pairing_code(&mut owner, &workspace, "A").await).await;
    let mut thief = Agent::pair(&server, &pairing_code(&mut owner, &workspace, "B").await).await;
    thief.refresh = victim.refresh.clone();
    assert_eq!(thief.refresh_with(&victim.refresh).await.status(), 401);
    assert_eq!(
        victim.refresh_with(&victim.refresh).await.status(),
        401,
        "the copied agent is revoked"
    );
    assert_eq!(victim.policy_with(&victim.access).await.status(), 401);
}

#[actix_web::test]
async fn a_pairing_code_dies_with_its_issuers_right_to_manage_agents() {
    let server = TestServer::start();
    let (mut owner, workspace) = owner_with_workspace(&server).await;
    let invited = owner
        .submit(
            &format!("/w/{workspace}/members"),
            &format!("/w/{workspace}/invites"),
            &[("email", "admin@example.com"), ("role", "admin")],
        )
        .await;
    assert_eq!(invited.status, 303);
    let link = server.link_in_outbox("admin@example.com", "invite");
    let mut admin = WebClient::new(&server);
    let page = admin.get(&link).await;
    let token = link.split("token=").nth(1).unwrap();
    let joined = admin
        .post(
            "/invite/sign-up",
            &[
                ("csrf", &page.csrf()),
                ("token", token),
                ("password", "the admin's long passphrase"),
            ],
        )
        .await;
    assert_eq!(joined.status, 303, "{}", joined.body);
    let code = pairing_code(&mut admin, &workspace, "Laptop").await;
    let members = owner.get(&format!("/w/{workspace}/members")).await.body;
    let row = members
        .split("<tr>")
        .find(|r| r.contains("admin@example.com"))
        .unwrap();
    let start = row.find("/members/").unwrap() + "/members/".len();
    let admin_id = &row[start..start + 36];
    let demoted = owner
        .submit(
            &format!("/w/{workspace}/members"),
            &format!("/w/{workspace}/members/{admin_id}/role"),
            &[("role", "member")],
        )
        .await;
    assert_eq!(demoted.status, 303);
    assert_eq!(pair_request(&server, &code).await.status(), 401);
}

#[actix_web::test]
async fn revoking_in_the_dashboard_takes_effect_on_the_next_request() {
    let server = TestServer::start();
    let (mut owner, workspace) = owner_with_workspace(&server).await;
    let agent = Agent::pair(&server, &pairing_code(&mut owner, &workspace, "PC").await).await;
    agent.policy().await;
    let page = owner
        .submit(
            &format!("/w/{workspace}/agents"),
            &format!("/w/{workspace}/agents/{}/revoke", agent.id),
            &[],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let refused = agent.policy_with(&agent.access).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    assert_eq!(agent.refresh_with(&agent.refresh).await.status(), 401);
}

/// Signs `claims` under `header` with this server's own agent-token key, as only someone
/// holding the key could: each attack then tests one rule on its own.
fn forge(server: &TestServer, header: Header, claims: &Value) -> String {
    let key = server.store.derive_key(KeyPurpose::AgentJwt, 1);
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key.expose())).unwrap()
}

fn b64(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

#[actix_web::test]
async fn every_jwt_attack_is_refused() {
    let server = TestServer::start();
    let (mut owner, workspace) = owner_with_workspace(&server).await;
    let other_workspace = create_workspace(&mut owner, "Other").await;
    let agent = Agent::pair(&server, &pairing_code(&mut owner, &workspace, "PC").await).await;
    agent.policy().await;

    let header = jsonwebtoken::decode_header(&agent.access).unwrap();
    let kid = header.kid.clone().unwrap();
    let now = server.clock.now();
    let claims = json!({
        "iss": "strongbox", "aud": "strongbox-agent-api", "sub": agent.id,
        "workspace": workspace, "iat": now, "exp": now + 900, "jti": "0123456789abcdef",
    });
    let hs256 = |kid: &str| Header {
        kid: Some(kid.into()),
        ..Header::new(Algorithm::HS256)
    };
    // The forging itself is sound: the same claims under the right header are accepted.
    assert_eq!(
        agent
            .policy_with(&forge(&server, hs256(&kid), &claims))
            .await
            .status(),
        200
    );

    let signature = agent.access.rsplit('.').next().unwrap().to_string();
    let mut attacks: Vec<(&str, String)> = Vec::new();
    attacks.push((
        "alg none",
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
            b64(&claims)
        ),
    ));
    for alg in ["RS256", "ES256"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": kid});
        attacks.push((
            alg,
            format!("{}.{}.{signature}", b64(&header), b64(&claims)),
        ));
    }
    attacks.push((
        "wrong kid",
        forge(&server, hs256("strongbox/agent-jwt/signing/v9"), &claims),
    ));
    // Another install derives its key from its own master key: any other 32 bytes.
    let another_install = EncodingKey::from_secret(&[7; 32]);
    attacks.push((
        "another install's key",
        jsonwebtoken::encode(&hs256(&kid), &claims, &another_install).unwrap(),
    ));
    let mut with = |name: &'static str, field: &str, value: Value| {
        let mut changed = claims.clone();
        match value {
            Value::Null => {
                changed.as_object_mut().unwrap().remove(field);
            }
            value => changed[field] = value,
        }
        attacks.push((name, forge(&server, hs256(&kid), &changed)));
    };
    with("wrong aud", "aud", json!("another-api"));
    with("wrong iss", "iss", json!("someone-else"));
    with("missing jti", "jti", Value::Null);
    with("expired", "exp", json!(now - 1));
    with("workspace swapped", "workspace", json!(other_workspace));
    for (name, token) in &attacks {
        assert_eq!(agent.policy_with(token).await.status(), 401, "{name}");
    }

    // And the genuine token, once its fifteen minutes are up.
    server.clock.advance(15 * 60);
    assert_eq!(
        agent.policy_with(&agent.access).await.status(),
        401,
        "expired"
    );
}

#[actix_web::test]
async fn an_agent_token_reads_nothing_through_the_rest_api_or_mcp() {
    let server = TestServer::start();
    let (mut owner, workspace) = owner_with_workspace(&server).await;
    let agent = Agent::pair(&server, &pairing_code(&mut owner, &workspace, "PC").await).await;
    let batch = json!({"idempotency_key": "batch-0001", "changes": [upsert("customers", "c1", json!({"name": "Ada"}))]});
    assert_eq!(agent.sync(&batch).await.status(), 200);

    let http = reqwest::Client::new();
    let reads = [
        http.get(server.url("/api/v1/collections")),
        http.get(server.url("/api/v1/collections/customers/records/c1")),
        http.get(server.url("/api/v1/search?q=Ada")),
        http.post(server.url("/mcp"))
            .header("Accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "agent", "version": "1"}}}),
            ),
    ];
    for read in reads {
        let response = read.bearer_auth(&agent.access).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{}",
            response.url()
        );
        let body = response.text().await.unwrap();
        assert!(!body.contains("Ada"), "{body}");
    }
}

#[actix_web::test]
async fn a_replayed_batch_writes_once_and_a_reused_key_is_refused() {
    let server = TestServer::start();
    let (mut owner, workspace) = owner_with_workspace(&server).await;
    let agent = Agent::pair(&server, &pairing_code(&mut owner, &workspace, "PC").await).await;
    let batch = json!({"idempotency_key": "batch-0001", "changes": [
        upsert("customers", "c1", json!({"name": "Ada", "city": "London"})),
        upsert("customers", "c2", json!({"name": "Grace", "city": "Arlington"})),
    ]});
    let first = agent.sync(&batch).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["upserted"], 2);
    let replay: Value = agent.sync(&batch).await.json().await.unwrap();
    assert_eq!(replay, first);
    assert_eq!(
        record(&server, &workspace, "customers", "c1")
            .unwrap()
            .version,
        1,
        "written once"
    );

    let other = json!({"idempotency_key": "batch-0001", "changes": [
        upsert("customers", "c1", json!({"name": "Changed"}))]});
    let reused = agent.sync(&other).await;
    assert_eq!(reused.status(), 409);
    let reused: Value = reused.json().await.unwrap();
    assert_eq!(reused["error"]["code"], "idempotency_key_reused");
    assert_eq!(
        record(&server, &workspace, "customers", "c1").unwrap().data["name"],
        "Ada"
    );

    let delete = json!({"idempotency_key": "batch-0002", "changes": [
        {"collection": "customers", "id": "c2", "op": "delete"}]});
    let deleted: Value = agent.sync(&delete).await.json().await.unwrap();
    assert_eq!(deleted["deleted"], 1);
    let gone = json!({"idempotency_key": "batch-0003", "changes": [
        {"collection": "customers", "id": "c2", "op": "delete"},
        {"collection": "customers", "id": "never", "op": "delete"}]});
    let gone: Value = agent.sync(&gone).await.json().await.unwrap();
    assert_eq!(gone["deleted"], 0, "deleting what is gone changes nothing");
    assert!(
        record(&server, &workspace, "customers", "c2")
            .unwrap()
            .deleted,
        "tombstone"
    );
    let page = owner.get(&format!("/w/{workspace}/agents")).await;
    assert!(
        page.body.contains("<td>3</td>"),
        "records synced: {}",
        page.body
    );
}

#[actix_web::test]
async fn a_batch_over_a_limit_or_with_a_bad_change_writes_nothing() {
    let server = TestServer::start_with(|c| {
        c.agents.max_batch_records = 3;
        c.agents.max_batch_bytes = 8192;
        c.records.max_record_bytes = 1024;
    });
    let (mut owner, workspace) = owner_with_workspace(&server).await;
    let agent = Agent::pair(&server, &pairing_code(&mut owner, &workspace, "PC").await).await;
    let one = |id: &str| upsert("items", id, json!({"n": id}));

    let too_many = json!({"idempotency_key": "batch-many", "changes": [one("1"), one("2"), one("3"), one("4")]});
    assert_eq!(
        agent.sync(&too_many).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let too_big = json!({"idempotency_key": "batch-big", "changes": [
        upsert("items", "1", json!({"text": "x".repeat(9000)}))]});
    assert_eq!(
        agent.sync(&too_big).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let big_record = json!({"idempotency_key": "batch-record", "changes": [
        one("1"), upsert("items", "2", json!({"text": "x".repeat(2000)}))]});
    assert_eq!(
        agent.sync(&big_record).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let bad_name = json!({"idempotency_key": "batch-name", "changes": [
        one("1"), upsert("../etc", "2", json!({}))]});
    let refused = agent.sync(&bad_name).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"]["field"], "changes");
    assert!(!refused.to_string().contains("../etc"), "no echo of input");
    assert!(
        record(&server, &workspace, "items", "1").is_none(),
        "nothing written"
    );

    // The same batch within the limits goes through under a fresh key.
    let fine = json!({"idempotency_key": "batch-fine", "changes": [one("1"), one("2"), one("3")]});
    assert_eq!(agent.sync(&fine).await.status(), 200);
    assert!(record(&server, &workspace, "items", "3").is_some());
}

#[actix_web::test]
async fn the_server_backstop_masks_what_an_agent_left_and_counts_it() {
    let server = TestServer::start();
    let (mut owner, workspace) = owner_with_workspace(&server).await;
    let agent = Agent::pair(&server, &pairing_code(&mut owner, &workspace, "PC").await).await;
    let batch = json!({"idempotency_key": "batch-pii-1", "changes": [
    upsert("people", "p1", json!({
        "email": "ada.lovelace@example.com",
        "card": "4111 1111 1111 1111",
        "dob": "1815-12-10",
    }))]});
    let result: Value = agent.sync(&batch).await.json().await.unwrap();
    assert_eq!(result["backstop"], json!({"CARD": 1, "DOB": 1, "EMAIL": 1}));
    let stored = record(&server, &workspace, "people", "p1").unwrap();
    assert_eq!(
        stored.data,
        json!({"email": "[EMAIL_1]", "card": "[CARD_1]", "dob": "[DOB_1]"})
    );
    let logs = String::from_utf8(crate::common::captured_logs().lock().unwrap().clone()).unwrap();
    assert!(!logs.contains("ada.lovelace@example.com"));
    assert!(!logs.contains("4111 1111 1111 1111"));
}
