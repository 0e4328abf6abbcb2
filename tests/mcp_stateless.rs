//! MCP 2026-07-28 on `/mcp` beside the session revisions: no handshake and no session, each
//! request authorised by its bearer alone, the envelope checked against the routing headers,
//! and cursors that work only for the credential and workspace they were given to.

use serde_json::{Value, json};

use crate::common::{TestServer, create_workspace, make_token, set_up_owner};
use crate::mcp::{Mcp, STATELESS, assert_masked, workspace_with_record};
use crate::workspaces::{invite, join_by_invite, member_id};

/// The status and body of one stateless request built by `build`, from the client's own.
async fn exchange(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    assert!(!response.headers().contains_key("mcp-session-id"));
    (status, response.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn every_tool_answers_a_stateless_request_without_a_session() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let (workspace, token) = workspace_with_record(&server, &mut owner, "Acme").await;
    let mut mcp = Mcp::stateless(&server, &token);

    let discovered = mcp.request("server/discover", json!({})).await["result"].clone();
    assert_eq!(
        discovered["supportedVersions"],
        json!(["2025-06-18", "2025-11-25", STATELESS])
    );
    assert_eq!(discovered["resultType"], "complete");
    assert!(discovered["capabilities"]["tools"].is_object());
    assert_eq!(discovered["cacheScope"], "private");
    assert!(discovered["ttlMs"].is_u64());
    assert_eq!(
        discovered["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "strongbox"
    );

    let listed = mcp.request("tools/list", json!({})).await["result"].clone();
    assert_eq!(listed["tools"].as_array().unwrap().len(), 5);
    assert_eq!(listed["resultType"], "complete");
    assert_eq!(listed["cacheScope"], "private");

    let found = mcp.tool("search", json!({"query": "Client A"})).await;
    assert_eq!(found["resultType"], "complete");
    assert_eq!(found["structuredContent"]["hits"][0]["id"], "c1");
    assert_masked(&found);
    let record = mcp
        .tool("get_record", json!({"collection": "customers", "id": "c1"}))
        .await;
    assert_eq!(record["structuredContent"]["data"]["email"], "[EMAIL_1]");
    assert_masked(&record);
    for (name, arguments) in [
        ("list_collections", json!({})),
        ("query", json!({"collection": "customers"})),
        (
            "aggregate",
            json!({"collection": "customers", "function": "count", "group_by": "email"}),
        ),
    ] {
        let answer = mcp.tool(name, arguments).await;
        assert_eq!(answer["isError"], false, "{name}: {answer}");
        assert_masked(&answer);
    }
    let resources = mcp.request("resources/list", json!({})).await["result"].clone();
    assert_eq!(resources["ttlMs"], 0, "workspace data is never kept");
    let read = mcp
        .request(
            "resources/read",
            json!({"uri": "strongbox://collections/customers"}),
        )
        .await;
    assert_masked(&read);

    // A missing resource is invalid params in this revision; a missing tool still is too.
    for (method, params) in [
        (
            "resources/read",
            json!({"uri": "strongbox://collections/nope"}),
        ),
        (
            "tools/call",
            json!({"name": "drop_everything", "arguments": {}}),
        ),
    ] {
        let (status, body) = exchange(mcp.stateless_request(9, method, &params)).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!(-32602)),
            "{method}"
        );
    }
    // The handshake and ping are gone from this revision.
    for method in ["ping", "initialize"] {
        let (status, body) = exchange(mcp.stateless_request(9, method, &json!({}))).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (404, &json!(-32601)),
            "{method}"
        );
    }
    // Each call left its usage row, as in a session.
    assert_eq!(
        owner.get(&format!("/w/{workspace}/usage")).await.status,
        200
    );
    let operations: Vec<String> = crate::mcp::usage_rows(&server, &workspace)
        .into_iter()
        .map(|row| row.operation)
        .collect();
    for operation in ["search", "get_record", "aggregate", "resources/read"] {
        assert!(
            operations.iter().any(|o| o == operation),
            "{operation}: {operations:?}"
        );
    }
}

#[actix_web::test]
async fn a_stateless_request_whose_envelope_is_wrong_gets_the_specified_error() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let (workspace, token) = workspace_with_record(&server, &mut owner, "Acme").await;
    let mcp = Mcp::stateless(&server, &token);
    let http = reqwest::Client::new();
    let post = |body: Value| {
        http.post(server.url("/mcp"))
            .bearer_auth(&token)
            .header("Accept", "application/json, text/event-stream")
            .json(&body)
    };
    let list = |meta: Value| json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"_meta": meta}});
    let envelope = |version: &str| {
        json!({
            "io.modelcontextprotocol/protocolVersion": version,
            "io.modelcontextprotocol/clientCapabilities": {}
        })
    };

    let cases: Vec<(&str, reqwest::RequestBuilder, i64)> = vec![
        (
            "no _meta",
            post(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}}))
                .header("MCP-Protocol-Version", STATELESS)
                .header("Mcp-Method", "tools/list"),
            -32602,
        ),
        (
            "no version in _meta",
            post(list(
                json!({"io.modelcontextprotocol/clientCapabilities": {}}),
            ))
            .header("MCP-Protocol-Version", STATELESS)
            .header("Mcp-Method", "tools/list"),
            -32602,
        ),
        (
            "no capabilities in _meta",
            post(list(
                json!({"io.modelcontextprotocol/protocolVersion": STATELESS}),
            ))
            .header("MCP-Protocol-Version", STATELESS)
            .header("Mcp-Method", "tools/list"),
            -32602,
        ),
        (
            "_meta names another version than the header",
            post(list(envelope("2025-11-25")))
                .header("MCP-Protocol-Version", STATELESS)
                .header("Mcp-Method", "tools/list"),
            -32020,
        ),
        (
            "no version header",
            post(list(envelope(STATELESS))).header("Mcp-Method", "tools/list"),
            -32020,
        ),
        (
            "no method header",
            post(list(envelope(STATELESS))).header("MCP-Protocol-Version", STATELESS),
            -32020,
        ),
        (
            "another method in the header",
            post(list(envelope(STATELESS)))
                .header("MCP-Protocol-Version", STATELESS)
                .header("Mcp-Method", "tools/call"),
            -32020,
        ),
        (
            "the version header twice",
            post(list(envelope(STATELESS)))
                .header("MCP-Protocol-Version", STATELESS)
                .header("MCP-Protocol-Version", STATELESS)
                .header("Mcp-Method", "tools/list"),
            -32020,
        ),
        (
            "another tool in Mcp-Name",
            mcp.stateless_request(
                3,
                "tools/call",
                &json!({"name": "search", "arguments": {"query": "x"}}),
            )
            .header("Mcp-Name", "get_record"),
            -32020,
        ),
        (
            "a version this server does not speak",
            post(list(envelope("2099-01-01")))
                .header("MCP-Protocol-Version", "2099-01-01")
                .header("Mcp-Method", "tools/list"),
            -32022,
        ),
    ];
    for (case, request, code) in cases {
        let (status, body) = exchange(request).await;
        assert_eq!(status, 400, "{case}: {body}");
        assert_eq!(body["error"]["code"], code, "{case}: {body}");
        assert_eq!(body["id"], 3, "{case}");
        if code == -32022 {
            assert_eq!(
                body["error"]["data"]["supported"],
                json!(["2025-06-18", "2025-11-25", STATELESS]),
                "{case}"
            );
            assert_eq!(body["error"]["data"]["requested"], "2099-01-01");
        }
    }
    // A notification needs no answer; nothing was called, so nothing was recorded.
    let notified =
        post(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {}}))
            .header("MCP-Protocol-Version", STATELESS)
            .send()
            .await
            .unwrap();
    assert_eq!(notified.status(), 202);
    assert_eq!(
        owner.get(&format!("/w/{workspace}/usage")).await.status,
        200
    );
    assert_eq!(
        crate::mcp::usage_rows(&server, &workspace).len(),
        0,
        "refused requests call no tool"
    );
}

/// Each stateless request is authorised by its bearer alone: a revoked token, a removed
/// member's token and no token are refused on the very next request.
#[actix_web::test]
async fn revocation_and_membership_take_effect_on_the_next_stateless_request() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let (workspace, token) = workspace_with_record(&server, &mut owner, "Acme").await;
    let mut mcp = Mcp::stateless(&server, &token);
    assert_eq!(
        mcp.tool("list_collections", json!({})).await["isError"],
        false
    );
    let id = &token["sbx_pat_".len().."sbx_pat_".len() + 16];
    let revoked = owner
        .submit(
            &format!("/w/{workspace}/tokens"),
            &format!("/w/{workspace}/tokens/{id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(revoked.status, 303);
    let call = json!({"name": "list_collections", "arguments": {}});
    let (status, _) = exchange(mcp.stateless_request(2, "tools/call", &call)).await;
    assert_eq!(status, 401, "revoked");

    let link = invite(&server, &mut owner, &workspace, "m@example.com", "member").await;
    let mut member = join_by_invite(&server, &link).await;
    let members_token = make_token(&mut member, &workspace, "read").await;
    let mut theirs = Mcp::stateless(&server, &members_token);
    assert_eq!(
        theirs.tool("list_collections", json!({})).await["isError"],
        false
    );
    let members = owner.get(&format!("/w/{workspace}/members")).await.body;
    let member = member_id(&members, "m@example.com");
    let removed = owner
        .submit(
            &format!("/w/{workspace}/members"),
            &format!("/w/{workspace}/members/{member}/remove"),
            &[],
        )
        .await;
    assert_eq!(removed.status, 303);
    let (status, _) = exchange(theirs.stateless_request(2, "tools/call", &call)).await;
    assert_eq!(status, 401, "no longer a member");

    let anonymous = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("MCP-Protocol-Version", STATELESS)
        .header("Mcp-Method", "server/discover")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": STATELESS,
            "io.modelcontextprotocol/clientCapabilities": {}}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("resource_metadata=")
    );
}

/// A cursor pages on only for the token and workspace it was given to, in either era, and
/// only for the tool that gave it.
#[actix_web::test]
async fn a_cursor_from_another_token_workspace_or_tool_is_refused() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let workspace = create_workspace(&mut owner, "Pages").await;
    let token = make_token(&mut owner, &workspace, "read_write").await;
    for n in 0..3 {
        let put = reqwest::Client::new()
            .put(server.url(&format!("/api/v1/collections/notes/records/n{n}")))
            .bearer_auth(&token)
            .json(&json!({"text": format!("invoice {n}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200);
    }
    let second_token = make_token(&mut owner, &workspace, "read").await;
    let (_, other_workspace_token) = workspace_with_record(&server, &mut owner, "Other").await;

    let mut mcp = Mcp::stateless(&server, &token);
    let first = mcp
        .tool("search", json!({"query": "invoice", "limit": 2}))
        .await;
    let cursor = first["structuredContent"]["nextCursor"].clone();
    assert!(cursor.is_string(), "{first}");
    let follow = |cursor: &Value| json!({"query": "invoice", "limit": 2, "cursor": cursor});
    let next = mcp.tool("search", follow(&cursor)).await;
    assert_eq!(next["isError"], false, "{next}");
    assert_eq!(
        next["structuredContent"]["hits"].as_array().unwrap().len(),
        1
    );

    // The same credential in a session pages on with it too.
    let mut in_session = Mcp::new(&server, &token);
    in_session.initialize().await;
    assert_eq!(
        in_session.tool("search", follow(&cursor)).await["isError"],
        false
    );

    let refused = |answer: &Value| {
        answer["isError"] == true
            && answer["content"][0]["text"]
                .as_str()
                .is_some_and(|t| t.contains("cursor"))
    };
    for other in [&second_token, &other_workspace_token] {
        let mut theirs = Mcp::stateless(&server, other);
        let answer = theirs.tool("search", follow(&cursor)).await;
        assert!(refused(&answer), "{answer}");
    }
    let as_query = mcp
        .tool(
            "query",
            json!({"collection": "notes", "limit": 2, "cursor": cursor}),
        )
        .await;
    assert!(refused(&as_query), "{as_query}");
    let mut altered = cursor.as_str().unwrap().to_string();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    for forged in [json!(altered), json!("2"), json!("-1")] {
        let answer = mcp.tool("search", follow(&forged)).await;
        assert!(refused(&answer), "{forged}: {answer}");
    }
}
