//! The REST API with personal tokens: tokens shown once and scoped to one workspace, read
//! or read-write, never beyond their person's role, revocable; the OpenAPI document; and
//! Schemathesis run against that document.

use serde_json::{Value, json};

use crate::common::{TestServer, WebClient, create_workspace, make_token, set_up_owner};

pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    pub(crate) fn new(server: &TestServer) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: server.url("/api/v1"),
        }
    }

    pub(crate) async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn put(&self, token: &str, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .put(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn delete(&self, token: &str, path: &str) -> u16 {
        let response = self
            .http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        response.status().as_u16()
    }
}

#[actix_web::test]
async fn a_token_reads_and_writes_its_own_workspace_only() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let a = create_workspace(&mut owner, "A").await;
    let b = create_workspace(&mut owner, "B").await;
    let token_a = make_token(&mut owner, &a, "read_write").await;
    let token_b = make_token(&mut owner, &b, "read_write").await;
    let api = Api::new(&server);
    let path = "/collections/customers/records/c1";
    let (status, stored) = api
        .put(&token_a, path, &json!({"name": "Ada", "city": "London"}))
        .await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["version"], 1);
    assert_eq!(
        api.put(&token_b, path, &json!({"name": "Bea"})).await.0,
        200
    );

    assert_eq!(api.get(&token_a, path).await.1["data"]["name"], "Ada");
    assert_eq!(api.get(&token_b, path).await.1["data"]["name"], "Bea");
    let (_, found) = api.get(&token_b, "/search?q=london").await;
    assert_eq!(found["hits"], json!([]), "B's token never sees A's records");
    let (_, found) = api.get(&token_a, "/search?q=london").await;
    assert_eq!(found["hits"][0]["id"], "c1");
    let (_, collections) = api.get(&token_a, "/collections").await;
    assert_eq!(collections["collections"][0]["name"], "customers");
    assert_eq!(collections["collections"][0]["records"], 1);

    // Ids may hold any visible character; a `/` travels percent-encoded.
    let odd = "/collections/customers/records/inv%2F2026%2B1%20a";
    let (status, stored) = api.put(&token_a, odd, &json!({"n": 1})).await;
    assert_eq!((status, stored["id"].as_str()), (200, Some("inv/2026+1 a")));
    assert_eq!(api.get(&token_a, odd).await.1["id"], "inv/2026+1 a");

    assert_eq!(api.delete(&token_a, path).await, 204);
    assert_eq!(api.get(&token_a, path).await.0, 404);
    assert_eq!(
        api.get(&token_b, path).await.0,
        200,
        "B's record is untouched"
    );
    let (status, error) = api
        .put(
            &token_a,
            "/collections/customers/records/c2",
            &json!({"a": "x".repeat(70_000)}),
        )
        .await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (422, Some("data"))
    );
}

#[actix_web::test]
async fn bad_revoked_and_read_only_tokens_are_refused() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let ws = create_workspace(&mut owner, "A").await;
    let read = make_token(&mut owner, &ws, "read").await;
    let api = Api::new(&server);
    let path = "/collections/customers/records/c1";
    assert_eq!(api.get(&read, "/collections").await.0, 200);
    assert_eq!(api.put(&read, path, &json!({"a": 1})).await.0, 403);
    assert_eq!(api.delete(&read, path).await, 403);

    let mut tampered = read.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let unknown_id = format!("sbx_pat_0000000000000000{}", &read[24..]);
    for bad in [
        tampered.as_str(),
        unknown_id.as_str(),
        "sbx_pat_short",
        "",
        "Basic abc",
    ] {
        assert_eq!(api.get(bad, "/collections").await.0, 401, "{bad:?}");
    }
    let no_header = reqwest::get(server.url("/api/v1/collections"))
        .await
        .unwrap();
    assert_eq!(no_header.status(), 401);
    assert_eq!(no_header.headers()["www-authenticate"], "Bearer");

    let id = &read["sbx_pat_".len().."sbx_pat_".len() + 16];
    let revoked = owner
        .submit(
            &format!("/w/{ws}/tokens"),
            &format!("/w/{ws}/tokens/{id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    assert_eq!(api.get(&read, "/collections").await.0, 401);
}

#[actix_web::test]
async fn a_token_is_worth_no_more_than_its_persons_role() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let ws = create_workspace(&mut owner, "A").await;
    let invited = owner
        .submit(
            &format!("/w/{ws}/members"),
            &format!("/w/{ws}/invites"),
            &[("email", "m@example.com"), ("role", "member")],
        )
        .await;
    assert_eq!(invited.status, 303);
    let link = server.link_in_outbox("m@example.com", "invite");
    let mut member = WebClient::new(&server);
    let page = member.get(&link).await;
    let token = link.split("token=").nth(1).unwrap();
    let joined = member
        .post(
            "/invite/sign-up",
            &[
                ("csrf", &page.csrf()),
                ("token", token),
                ("password", "the member's long passphrase"),
            ],
        )
        .await;
    assert_eq!(joined.status, 303, "{}", joined.body);
    let members = owner.get(&format!("/w/{ws}/members")).await.body;
    let row = members
        .split("<tr>")
        .find(|r| r.contains("m@example.com"))
        .unwrap();
    let marker = "/members/";
    let start = row.find(marker).unwrap() + marker.len();
    let member_id = &row[start..start + 36];

    let write = make_token(&mut member, &ws, "read_write").await;
    let api = Api::new(&server);
    let path = "/collections/notes/records/n1";
    assert_eq!(api.put(&write, path, &json!({"text": "hi"})).await.0, 200);
    let demoted = owner
        .submit(
            &format!("/w/{ws}/members"),
            &format!("/w/{ws}/members/{member_id}/role"),
            &[("role", "viewer")],
        )
        .await;
    assert_eq!(demoted.status, 303);
    assert_eq!(
        api.put(&write, path, &json!({"text": "again"})).await.0,
        403,
        "a viewer now"
    );
    assert_eq!(api.get(&write, path).await.0, 200);
    let removed = owner
        .submit(
            &format!("/w/{ws}/members"),
            &format!("/w/{ws}/members/{member_id}/remove"),
            &[],
        )
        .await;
    assert_eq!(removed.status, 303);
    assert_eq!(api.get(&write, path).await.0, 401, "no longer a member");
}

#[actix_web::test]
async fn the_openapi_document_describes_the_api() {
    let server = TestServer::start();
    let response = reqwest::get(server.url("/api/v1/openapi.json"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/collections",
        "/api/v1/search",
        "/api/v1/collections/{collection}/records/{id}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["personal_token"]["scheme"],
        "bearer"
    );
}

/// Schemathesis (installed by `scripts/test.sh` into its venv, named by
/// `STRONGBOX_SCHEMATHESIS`) generates requests from the OpenAPI document with a valid
/// read-write token and checks every response: no server error, statuses, content types,
/// headers and bodies as documented, auth enforced, deleted records gone.
#[actix_web::test]
#[ignore = "needs Schemathesis; scripts/test.sh runs it"]
async fn schemathesis_finds_no_server_error_or_schema_violation() {
    let schemathesis = std::env::var("STRONGBOX_SCHEMATHESIS")
        .expect("STRONGBOX_SCHEMATHESIS names the schemathesis executable");
    let server = TestServer::start_with(|c| {
        c.rate_limits.general.per_minute = 1_000_000;
        c.rate_limits.general.burst = 1_000_000;
    });
    let mut owner = set_up_owner(&server).await;
    let ws = create_workspace(&mut owner, "Fuzzed").await;
    let token = make_token(&mut owner, &ws, "read_write").await;
    let api = Api::new(&server);
    for n in 0..5 {
        let path = format!("/collections/customers/records/c{n}");
        assert_eq!(
            api.put(&token, &path, &json!({"name": format!("Customer {n}")}))
                .await
                .0,
            200
        );
    }
    let origin = server.origin();
    let schema = format!("{origin}/api/v1/openapi.json");
    let auth = format!("Authorization: Bearer {token}");
    // The server runs on threads of its own, so waiting here blocks nothing it needs.
    // The coverage phase is left out: on CPython 3.11 it trips an interpreter bug inside
    // Hypothesis (`ast.parse` fails its recursion-depth check), which is not about this API.
    // The server runs on threads of its own, so waiting here blocks nothing it needs.
    let output = std::process::Command::new(schemathesis)
        .args([
            "run", &schema, "--url", &origin, "-H", &auth, "--checks", "all",
        ])
        .args([
            "--phases",
            "examples,fuzzing,stateful",
            "--max-examples",
            "100",
        ])
        .args(["--seed", "1", "--no-color", "--workers", "1"])
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
