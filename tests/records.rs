//! The dashboard's data pages: browsing, full-text search with highlighted snippets and
//! paging, soft delete by role, and the masking rules with their preview and the
//! on-device redaction requirement agents must meet.

use serde_json::{Value, json};

use crate::common::{Agent, TestServer, WebClient, create_workspace, pairing_code, set_up_owner};

async fn workspace_with_agent(server: &TestServer) -> (WebClient, String, Agent) {
    let mut owner = set_up_owner(server).await;
    let workspace = create_workspace(&mut owner, "Acme").await;
    let code = pairing_code(&mut owner, &workspace, "PC").await;
    let agent = Agent::pair(server, &code).await;
    (owner, workspace, agent)
}

fn upsert(collection: &str, id: &str, data: Value) -> Value {
    json!({"collection": collection, "id": id, "op": "upsert", "data": data})
}

#[actix_web::test]
async fn records_can_be_browsed_searched_and_soft_deleted() {
    let server = TestServer::start();
    let (mut owner, ws, agent) = workspace_with_agent(&server).await;
    let batch = json!({"idempotency_key": "batch-0001", "changes": [
        upsert("customers", "c/1", json!({"name": "Ada", "city": "London", "note": "<script>alert(1)</script>"})),
        upsert("customers", "c2", json!({"name": "Grace", "city": "Arlington", "age": 85})),
    ]});
    assert_eq!(agent.sync(&batch).await.status(), 200);

    let home = owner.get(&format!("/w/{ws}/records")).await;
    assert!(
        home.body.contains("customers") && home.body.contains("<td>2</td>"),
        "{}",
        home.body
    );
    let collection = owner.get(&format!("/w/{ws}/records/customers")).await;
    assert_eq!(collection.status, 200);
    assert!(
        collection
            .body
            .contains("<td>city</td><td>text</td><td>2</td>"),
        "{}",
        collection.body
    );
    assert!(
        collection.body.contains("record?id=c%2F1"),
        "ids are encoded in links"
    );
    assert!(
        !collection.body.contains("<script>alert"),
        "content is escaped"
    );

    let found = owner.get(&format!("/w/{ws}/search?q=london")).await;
    assert!(found.body.contains("<mark>London</mark>"), "{}", found.body);
    assert!(!found.body.contains("Arlington"));
    assert!(!found.body.contains("<script>alert"));

    let record = owner
        .get(&format!("/w/{ws}/records/customers/record?id=c%2F1"))
        .await;
    assert_eq!(record.status, 200);
    assert!(record.body.contains("alert(1)") && !record.body.contains("<script>alert"));

    let deleted = owner
        .submit(
            &format!("/w/{ws}/records/customers/record?id=c%2F1"),
            &format!("/w/{ws}/records/customers/record/delete"),
            &[("id", "c/1")],
        )
        .await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert_eq!(
        owner
            .get(&format!("/w/{ws}/records/customers/record?id=c%2F1"))
            .await
            .status,
        404
    );
    assert!(
        !owner
            .get(&format!("/w/{ws}/search?q=london"))
            .await
            .body
            .contains("<mark>")
    );
    let again = owner
        .submit(
            &format!("/w/{ws}/records/customers"),
            &format!("/w/{ws}/records/customers/record/delete"),
            &[("id", "c/1")],
        )
        .await;
    assert_eq!(again.status, 404, "already deleted");
}

#[actix_web::test]
async fn search_results_page_through_every_hit() {
    let server = TestServer::start();
    let (mut owner, ws, agent) = workspace_with_agent(&server).await;
    let changes: Vec<Value> = (0..30)
        .map(|n| {
            upsert(
                "notes",
                &format!("n{n:02}"),
                json!({"text": format!("invoice number {n}")}),
            )
        })
        .collect();
    let batch = json!({"idempotency_key": "batch-notes", "changes": changes});
    assert_eq!(agent.sync(&batch).await.status(), 200);
    let first = owner.get(&format!("/w/{ws}/search?q=invoice")).await;
    assert_eq!(first.body.matches("<li>").count(), 25);
    assert!(first.body.contains("rel=\"next\""));
    let second = owner.get(&format!("/w/{ws}/search?q=invoice&page=1")).await;
    assert_eq!(second.body.matches("<li>").count(), 5);
    assert!(!second.body.contains("rel=\"next\"") && second.body.contains("rel=\"prev\""));
    // Search syntax is never interpreted: odd input is just words.
    let odd = owner
        .get(&format!("/w/{ws}/search?q=%22invoice%20OR%20*%28"))
        .await;
    assert_eq!(odd.status, 200);
}

#[actix_web::test]
async fn masking_rules_preview_and_the_redaction_requirement() {
    let server = TestServer::start();
    let (mut owner, ws, agent) = workspace_with_agent(&server).await;
    let masking = format!("/w/{ws}/masking");
    let added = owner
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
    assert_eq!(added.status, 303, "{}", added.body);
    let bad = owner
        .submit(
            &masking,
            &format!("{masking}/rules"),
            &[("term", "x"), ("action", "alias"), ("alias", "")],
        )
        .await;
    assert_eq!(bad.status, 422);

    let preview = owner
        .submit(
            &masking,
            &format!("{masking}/preview"),
            &[("text", "Acme Corp wrote from ada@example.com")],
        )
        .await;
    assert!(
        preview.body.contains("Client A wrote from [EMAIL_1]"),
        "{}",
        preview.body
    );
    assert!(preview.body.contains("EMAIL: 1"));

    // Agents see the rules; once redaction is required, an unsigned batch is refused.
    let policy = agent.policy().await;
    assert_eq!(
        policy["rules"],
        json!([{"action": "alias", "term": "Acme Corp", "alias": "Client A"}])
    );
    assert_eq!(policy["require_redaction"], false);
    let required = owner
        .submit(
            &masking,
            &format!("{masking}/requirement"),
            &[("required", "true")],
        )
        .await;
    assert_eq!(required.status, 303);
    let policy = agent.policy().await;
    assert_eq!(policy["require_redaction"], true);
    let changes = json!([upsert("notes", "n1", json!({"text": "hello"}))]);
    let unsigned = agent
        .sync(&json!({"idempotency_key": "batch-unsigned", "changes": changes}))
        .await;
    assert_eq!(unsigned.status(), 422);
    let unsigned: Value = unsigned.json().await.unwrap();
    assert_eq!(unsigned["error"]["code"], "redaction_required");
    let stale = json!({"idempotency_key": "batch-stale", "redaction": {"policy_version": "0000000000000000"}, "changes": changes});
    assert_eq!(agent.sync(&stale).await.status(), 409);
    let signed = json!({"idempotency_key": "batch-signed", "redaction": {"policy_version": policy["version"]}, "changes": changes});
    assert_eq!(agent.sync(&signed).await.status(), 200);
}

#[actix_web::test]
async fn a_viewer_can_read_but_not_delete_or_change_rules() {
    let server = TestServer::start();
    let (mut owner, ws, agent) = workspace_with_agent(&server).await;
    let batch = json!({"idempotency_key": "batch-0001", "changes": [upsert("notes", "n1", json!({"text": "hi"}))]});
    assert_eq!(agent.sync(&batch).await.status(), 200);
    let invited = owner
        .submit(
            &format!("/w/{ws}/members"),
            &format!("/w/{ws}/invites"),
            &[("email", "viewer@example.com"), ("role", "viewer")],
        )
        .await;
    assert_eq!(invited.status, 303);
    let link = server.link_in_outbox("viewer@example.com", "invite");
    let mut viewer = WebClient::new(&server);
    let page = viewer.get(&link).await;
    let token = link.split("token=").nth(1).unwrap();
    let joined = viewer
        .post(
            "/invite/sign-up",
            &[
                ("csrf", &page.csrf()),
                ("token", token),
                ("password", "a viewer's long passphrase"),
            ],
        )
        .await;
    assert_eq!(joined.status, 303, "{}", joined.body);

    let record = viewer
        .get(&format!("/w/{ws}/records/notes/record?id=n1"))
        .await;
    assert_eq!(record.status, 200);
    assert!(
        !record.body.contains("/record/delete"),
        "no delete button for a viewer"
    );
    let refused = viewer
        .submit(
            &format!("/w/{ws}/records/notes"),
            &format!("/w/{ws}/records/notes/record/delete"),
            &[("id", "n1")],
        )
        .await;
    assert_eq!(refused.status, 403);
    let rule = viewer
        .submit(
            &format!("/w/{ws}/masking"),
            &format!("/w/{ws}/masking/rules"),
            &[("term", "x"), ("action", "redact")],
        )
        .await;
    assert_eq!(rule.status, 403);
    assert_eq!(
        viewer
            .get(&format!("/w/{ws}/records/notes/record?id=n1"))
            .await
            .status,
        200,
        "still there"
    );
    let agents = viewer.get(&format!("/w/{ws}/agents")).await;
    assert!(
        !agents.body.contains("/revoke"),
        "no revoke button for a viewer"
    );
}
