//! The OAuth authorization server's discovery and registration, over HTTP: metadata that
//! MCP clients find with nothing but the server's URL, CORS for browser-based clients, and
//! registration that accepts only public clients with safe redirect URIs.

use serde_json::{Value, json};

use crate::common::TestServer;

async fn get_json(server: &TestServer, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = reqwest::get(server.url(path)).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn register(server: &TestServer, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/oauth/register"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[actix_web::test]
async fn discovery_documents_describe_the_server_and_the_mcp_resource() {
    let server = TestServer::start();
    let origin = server.origin();
    let (status, headers, meta) =
        get_json(&server, "/.well-known/oauth-authorization-server").await;
    assert_eq!(status, 200);
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(meta["issuer"], origin.as_str(), "the public URL exactly");
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        meta["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
    assert!(
        meta["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("none"))
    );
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    for endpoint in [
        "registration_endpoint",
        "revocation_endpoint",
        "authorization_endpoint",
        "token_endpoint",
    ] {
        assert!(
            meta[endpoint].as_str().unwrap().starts_with(&origin),
            "{endpoint}"
        );
    }

    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let (status, _, resource) = get_json(&server, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            resource["resource"],
            format!("{origin}/mcp"),
            "no trailing slash"
        );
        assert_eq!(resource["authorization_servers"], json!([origin]));
        assert!(
            resource["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("mcp:read"))
        );
    }
    let (status, _, body) = get_json(&server, "/.well-known/openid-configuration").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}

#[actix_web::test]
async fn browser_clients_get_cors_preflights_including_the_mcp_protocol_header() {
    let server = TestServer::start();
    for path in ["/oauth/register", "/.well-known/oauth-authorization-server"] {
        let response = reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("Origin", "https://claude.ai")
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "content-type, mcp-protocol-version",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{path}");
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], "*");
        let allowed = headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_lowercase();
        assert!(allowed.contains("mcp-protocol-version") && allowed.contains("content-type"));
    }
}

#[actix_web::test]
async fn public_clients_register_with_safe_redirect_uris_only() {
    let server = TestServer::start();
    let (status, headers, client) = register(
        &server,
        &json!({
            "client_name": "Cursor",
            "redirect_uris": ["cursor://anysphere.cursor-retrieval/oauth/callback", "http://127.0.0.1:5173/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "logo_uri": "https://example.com/logo.png"
        }),
    )
    .await;
    assert_eq!(status, 201, "{client}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(
        client["client_id"]
            .as_str()
            .unwrap()
            .starts_with("sbx_client_")
    );
    assert!(
        client.get("client_secret").is_none(),
        "public clients get no secret"
    );
    assert_eq!(client["token_endpoint_auth_method"], "none");
    assert_eq!(client["client_name"], "Cursor");

    let refused = [
        (
            json!({"redirect_uris": ["http://evil.example.com/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://app.example.com/cb#x"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (json!({}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_basic"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb"], "scope": "admin"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": "https://a.example/cb"}),
            "invalid_client_metadata",
        ),
        (json!([1, 2]), "invalid_client_metadata"),
    ];
    for (body, code) in refused {
        let (status, headers, error) = register(&server, &body).await;
        assert_eq!(
            (status, error["error"].as_str()),
            (400, Some(code)),
            "{body}"
        );
        assert_eq!(headers["cache-control"], "no-store");
        assert!(
            !error.to_string().contains("evil.example.com"),
            "no echo of input"
        );
    }
}

#[actix_web::test]
async fn registration_is_rate_limited_per_client_address() {
    let server = TestServer::start_with(|c| {
        c.rate_limits.auth.per_minute = 2;
        c.rate_limits.auth.burst = 2;
    });
    let body = json!({"redirect_uris": ["https://app.example.com/cb"]});
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(register(&server, &body).await.0);
    }
    assert_eq!(&statuses[..2], &[201, 201]);
    assert_eq!(statuses[3], 429, "{statuses:?}");
}
