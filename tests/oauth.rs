//! The OAuth authorization server's discovery and registration, over HTTP: metadata that
//! MCP clients find with nothing but the server's URL, CORS for browser-based clients, and
//! registration that accepts only public clients with safe redirect URIs.

use serde_json::{Value, json};

use crate::common::{
    Flow, TestServer, WebClient, approve, authorize_query, new_flow, pkce, register, token_request,
};

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

    // A client asking for a secret is registered as public all the same, with none.
    let (status, _, asked) = register(
        &server,
        &json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "client_secret_post"}),
    )
    .await;
    assert_eq!(
        (status, asked["token_endpoint_auth_method"].as_str()),
        (201, Some("none"))
    );
    assert!(asked.get("client_secret").is_none());

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
        c.rate_limits.tokens.per_minute = 2;
        c.rate_limits.tokens.burst = 2;
    });
    let body = json!({"redirect_uris": ["https://app.example.com/cb"]});
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(register(&server, &body).await.0);
    }
    assert_eq!(&statuses[..2], &[201, 201]);
    assert_eq!(statuses[3], 429, "{statuses:?}");
}

/// An office behind one address, at the default budgets: its people spend the sign-in
/// budget, and its AI clients and agents still register, exchange and rotate their tokens,
/// which have a budget of their own.
#[actix_web::test]
async fn machine_token_endpoints_do_not_share_the_sign_in_budget() {
    let server = TestServer::start_with(|c| c.rate_limits = Default::default());
    let http = reqwest::Client::new();
    let mut sign_ins = Vec::new();
    for _ in 0..12 {
        let response = http
            .post(server.url("/sign-in"))
            .form(&[("email", "a@example.com"), ("password", "wrong")])
            .send()
            .await
            .unwrap();
        sign_ins.push(response.status().as_u16());
    }
    assert_eq!(sign_ins.last(), Some(&429), "{sign_ins:?}");

    let defaults = strongbox::config::RateLimits::default();
    let office = defaults.auth.burst as usize * 5;
    let body = json!({"redirect_uris": ["https://app.example.com/cb"]});
    for _ in 0..office / 2 {
        assert_eq!(register(&server, &body).await.0, 201);
        let token = token_request(&server, &[("grant_type", "refresh_token")]).await;
        assert_ne!(token.0, 429, "refused on its merits, not for the budget");
    }
    for _ in 0..office / 2 {
        let rotation = http
            .post(server.url("/api/agent/v1/token"))
            .json(&json!({"agent_id": "0", "refresh_secret": "x"}))
            .send()
            .await
            .unwrap();
        assert_ne!(rotation.status(), 429);
    }

    // The token budget is a budget all the same.
    let mut last = 0;
    for _ in 0..defaults.tokens.burst {
        last = token_request(&server, &[("grant_type", "refresh_token")])
            .await
            .0;
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429);
}

pub(crate) async fn exchange(
    server: &TestServer,
    flow: &Flow,
    code: &str,
    verifier: &str,
) -> (u16, Value) {
    token_request(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &flow.redirect),
            ("client_id", &flow.client_id),
            ("code_verifier", verifier),
        ],
    )
    .await
}

pub(crate) async fn refresh(server: &TestServer, flow: &Flow, token: &str) -> (u16, Value) {
    token_request(
        server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", &flow.client_id),
        ],
    )
    .await
}

#[actix_web::test]
async fn the_code_flow_issues_tokens_once_and_a_replayed_code_revokes_them() {
    let server = TestServer::start();
    let mut owner = crate::common::set_up_owner(&server).await;
    let workspace = crate::common::create_workspace(&mut owner, "Acme").await;
    let flow = new_flow(&server).await;

    let consent = owner.get(&authorize_query(&server, &flow, &[])).await;
    assert!(consent.body.contains("Inspector") && consent.body.contains("127.0.0.1"));
    assert!(consent.body.contains(&workspace), "the workspace picker");
    let csp = consent.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:5555"),
        "{csp}"
    );

    let code = approve(&server, &mut owner, &flow, &workspace).await;
    let (status, tokens) = exchange(&server, &flow, &code, &flow.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(
        tokens["access_token"]
            .as_str()
            .unwrap()
            .starts_with("sbx_at_")
    );
    assert!(
        tokens["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("sbx_rt_")
    );
    assert_eq!(
        (tokens["token_type"].as_str(), tokens["expires_in"].as_i64()),
        (Some("Bearer"), Some(3600))
    );

    // The same code again: refused, and what it issued is revoked.
    let (status, error) = exchange(&server, &flow, &code, &flow.verifier).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = refresh(&server, &flow, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400, "the grant was revoked");
}

#[actix_web::test]
async fn refresh_tokens_rotate_with_one_parallel_use_and_a_late_replay_revokes_the_grant() {
    let server = TestServer::start();
    let mut owner = crate::common::set_up_owner(&server).await;
    let workspace = crate::common::create_workspace(&mut owner, "Acme").await;
    let flow = new_flow(&server).await;
    let code = approve(&server, &mut owner, &flow, &workspace).await;
    let (_, first) = exchange(&server, &flow, &code, &flow.verifier).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();

    let (status, second) = refresh(&server, &flow, &r1).await;
    assert_eq!(status, 200, "{second}");
    let r2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    // A parallel refresh with the same token, moments later, still works once...
    assert_eq!(refresh(&server, &flow, &r1).await.0, 200);
    // ...but not twice.
    let (status, error) = refresh(&server, &flow, &r1).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        refresh(&server, &flow, &r2).await.0,
        400,
        "the whole grant ended"
    );

    // After the grace window a single reuse ends the grant.
    let code = approve(&server, &mut owner, &flow, &workspace).await;
    let (_, tokens) = exchange(&server, &flow, &code, &flow.verifier).await;
    let old = tokens["refresh_token"].as_str().unwrap().to_string();
    let (_, newer) = refresh(&server, &flow, &old).await;
    server.clock.advance(31);
    assert_eq!(refresh(&server, &flow, &old).await.0, 400);
    assert_eq!(
        refresh(&server, &flow, newer["refresh_token"].as_str().unwrap())
            .await
            .0,
        400
    );

    // Revoking a refresh token (RFC 7009) ends its grant too.
    let code = approve(&server, &mut owner, &flow, &workspace).await;
    let (_, tokens) = exchange(&server, &flow, &code, &flow.verifier).await;
    let revoked = reqwest::Client::new()
        .post(server.url("/oauth/revoke"))
        .form(&[("token", tokens["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        refresh(&server, &flow, tokens["refresh_token"].as_str().unwrap())
            .await
            .0,
        400
    );

    // Every grant ends ninety days after the person allowed it, refreshed or not.
    let code = approve(&server, &mut owner, &flow, &workspace).await;
    let (_, tokens) = exchange(&server, &flow, &code, &flow.verifier).await;
    let mut current = tokens["refresh_token"].as_str().unwrap().to_string();
    for _ in 0..3 {
        server.clock.advance(29 * 24 * 3600);
        let (status, next) = refresh(&server, &flow, &current).await;
        assert_eq!(status, 200);
        current = next["refresh_token"].as_str().unwrap().to_string();
    }
    server.clock.advance(4 * 24 * 3600);
    assert_eq!(
        refresh(&server, &flow, &current).await.0,
        400,
        "past ninety days"
    );
}

#[actix_web::test]
async fn authorization_requests_are_checked_before_anything_is_granted() {
    let server = TestServer::start();
    let mut owner = crate::common::set_up_owner(&server).await;
    let workspace = crate::common::create_workspace(&mut owner, "Acme").await;
    let flow = new_flow(&server).await;

    // Signed out: off to sign-in, and back here afterwards.
    let mut stranger = WebClient::new(&server);
    let page = stranger.get(&authorize_query(&server, &flow, &[])).await;
    assert_eq!(page.status, 303);
    assert!(
        page.location
            .unwrap()
            .starts_with("/sign-in?next=%2Foauth%2Fauthorize%3F")
    );

    // An unknown client or an unregistered redirect URI: a page here, never a redirect.
    for changes in [
        vec![("client_id", "sbx_client_00000000000000000000000000000000")],
        vec![("redirect_uri", "https://evil.example/callback")],
        vec![("redirect_uri", "http://127.0.0.1:5555/other")],
    ] {
        let page = owner.get(&authorize_query(&server, &flow, &changes)).await;
        assert_eq!(page.status, 400, "{changes:?}");
        assert!(page.location.is_none());
    }

    // Everything else goes back to the client with the RFC error and the state.
    for (changes, error) in [
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (
            vec![("code_challenge", ""), ("code_challenge_method", "")],
            "invalid_request",
        ),
        (
            vec![("resource", "https://elsewhere.example/mcp")],
            "invalid_target",
        ),
        (vec![("resource", "")], "invalid_target"),
        (vec![("scope", "admin")], "invalid_scope"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
    ] {
        let page = owner.get(&authorize_query(&server, &flow, &changes)).await;
        assert_eq!(page.status, 303, "{changes:?}");
        let location = page.location.unwrap();
        assert!(
            location.contains(&format!("error={error}")),
            "{changes:?}: {location}"
        );
        assert!(location.contains("state=st4te"));
    }

    // A wrong verifier, or a code past its minute, gets no tokens.
    let code = approve(&server, &mut owner, &flow, &workspace).await;
    let (other_verifier, _) = pkce();
    assert_eq!(
        exchange(&server, &flow, &code, &other_verifier).await.1["error"],
        "invalid_grant"
    );
    let code = approve(&server, &mut owner, &flow, &workspace).await;
    server.clock.advance(61);
    assert_eq!(
        exchange(&server, &flow, &code, &flow.verifier).await.1["error"],
        "invalid_grant"
    );
    // The token endpoint checks the resource and the client too.
    let code = approve(&server, &mut owner, &flow, &workspace).await;
    let (status, error) = token_request(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &flow.redirect),
            ("client_id", &flow.client_id),
            ("code_verifier", &flow.verifier),
            ("resource", "https://elsewhere.example/mcp"),
        ],
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_target"))
    );
    let (status, error) = token_request(
        &server,
        &[("grant_type", "refresh_token"), ("client_id", "nobody")],
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, error) = token_request(
        &server,
        &[("grant_type", "password"), ("client_id", &flow.client_id)],
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    // And a workspace the person is not in cannot be granted.
    let code_for_nothing = owner.get(&authorize_query(&server, &flow, &[])).await;
    let csrf = code_for_nothing.csrf();
    let query = authorize_query(&server, &flow, &[]);
    let mut fields: Vec<(String, String)> =
        url::form_urlencoded::parse(query.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    fields.extend([
        ("csrf".to_string(), csrf),
        ("workspace".to_string(), uuid::Uuid::new_v4().to_string()),
        ("decision".to_string(), "approve".to_string()),
    ]);
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(owner.post("/oauth/authorize", &fields).await.status, 404);
}

#[actix_web::test]
async fn the_ai_clients_page_lists_grants_and_revoking_one_ends_its_tokens() {
    let server = TestServer::start();
    let mut owner = crate::common::set_up_owner(&server).await;
    let workspace = crate::common::create_workspace(&mut owner, "Acme").await;
    let flow = new_flow(&server).await;
    let code = approve(&server, &mut owner, &flow, &workspace).await;
    let (_, tokens) = exchange(&server, &flow, &code, &flow.verifier).await;
    let page = owner.get(&format!("/w/{workspace}/ai-clients")).await;
    assert!(page.body.contains("Inspector") && page.body.contains("mcp:read offline_access"));
    let marker = "/ai-clients/";
    let start = page.body.find(marker).unwrap() + marker.len();
    let grant = &page.body[start..start + 32];
    let revoked = owner
        .submit(
            &format!("/w/{workspace}/ai-clients"),
            &format!("/w/{workspace}/ai-clients/{grant}/revoke"),
            &[],
        )
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    let (status, error) = refresh(&server, &flow, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        !owner
            .get(&format!("/w/{workspace}/ai-clients"))
            .await
            .body
            .contains("Inspector")
    );
}

/// The `oauth2` crate as the client: authorization code with PKCE, then a refresh.
#[actix_web::test]
async fn the_oauth2_crate_runs_the_code_flow_with_pkce_and_a_refresh() {
    use oauth2::basic::BasicClient;
    use oauth2::{
        AuthType, AuthUrl, AuthorizationCode, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl,
        Scope, TokenResponse, TokenUrl,
    };

    let server = TestServer::start();
    let mut owner = crate::common::set_up_owner(&server).await;
    let workspace = crate::common::create_workspace(&mut owner, "Acme").await;
    let (_, _, registered) = register(
        &server,
        &json!({"client_name": "oauth2-rs", "redirect_uris": ["http://127.0.0.1:9/callback"]}),
    )
    .await;
    let origin = server.origin();
    let client = BasicClient::new(ClientId::new(
        registered["client_id"].as_str().unwrap().into(),
    ))
    .set_auth_type(AuthType::RequestBody)
    .set_auth_uri(AuthUrl::new(format!("{origin}/oauth/authorize")).unwrap())
    .set_token_uri(TokenUrl::new(format!("{origin}/oauth/token")).unwrap())
    .set_redirect_uri(RedirectUrl::new("http://127.0.0.1:43123/callback".into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("mcp:read".into()))
        .add_scope(Scope::new("offline_access".into()))
        .add_extra_param("resource", format!("{origin}/mcp"))
        .set_pkce_challenge(challenge)
        .url();
    let path = url.as_str().strip_prefix(&origin).unwrap();
    let location = crate::common::approve_at(&mut owner, path, &workspace).await;
    let get = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(get("state").as_deref(), Some(state.secret().as_str()));

    // The crate's requests, sent with this test suite's HTTP client.
    let suite_client = reqwest::Client::new();
    let http = |request| strongbox::oidc::flow::send(&suite_client, request);
    let tokens = client
        .exchange_code(AuthorizationCode::new(get("code").unwrap()))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code exchange");
    assert!(tokens.access_token().secret().starts_with("sbx_at_"));
    assert_eq!(
        tokens.expires_in(),
        Some(std::time::Duration::from_secs(3600))
    );
    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().expect("a refresh token"))
        .request_async(&http)
        .await
        .expect("the refresh");
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
}

/// The Bearer scheme's name is case-insensitive (RFC 7235, RFC 6750): `bearer` and `BEARER`
/// reach the REST API, MCP and the agent API, and `/oauth/revoke` takes the bearer token it
/// is sent; a wrong scheme or token is still refused.
#[actix_web::test]
async fn the_bearer_scheme_is_accepted_in_any_case_on_every_surface() {
    let server = TestServer::start();
    let mut owner = crate::common::set_up_owner(&server).await;
    let workspace = crate::common::create_workspace(&mut owner, "Acme").await;
    let personal = crate::common::make_token(&mut owner, &workspace, "read").await;
    let code = crate::common::pairing_code(&mut owner, &workspace, "laptop").await;
    let agent = crate::common::Agent::pair(&server, &code).await;
    let flow = new_flow(&server).await;
    let approved = approve(&server, &mut owner, &flow, &workspace).await;
    let (_, tokens) = exchange(&server, &flow, &approved, &flow.verifier).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();

    let http = reqwest::Client::new();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}});
    let status = |request: reqwest::RequestBuilder, authorization: String| async move {
        request
            .header("Authorization", authorization)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let rest = http.get(server.url("/api/v1/collections"));
        assert_eq!(
            status(rest, format!("{scheme} {personal}")).await,
            200,
            "{scheme}"
        );
        for token in [&personal, &access] {
            let mcp = http
                .post(server.url("/mcp"))
                .header("Accept", "application/json, text/event-stream")
                .json(&initialize);
            assert_eq!(
                status(mcp, format!("{scheme} {token}")).await,
                200,
                "{scheme}"
            );
        }
        let policy = http.get(server.url("/api/agent/v1/policy"));
        let bearer = format!("{scheme} {}", agent.access);
        assert_eq!(status(policy, bearer).await, 200, "{scheme}");
    }
    for wrong in [format!("Basic {personal}"), format!("Bearer{personal}")] {
        let rest = http.get(server.url("/api/v1/collections"));
        assert_eq!(status(rest, wrong).await, 401);
    }

    // Revocation by the bearer token the client presents, with a lower-case scheme.
    let revoke = http
        .post(server.url("/oauth/revoke"))
        .form(&[("client_id", &flow.client_id)]);
    assert_eq!(status(revoke, format!("bearer {access}")).await, 200);
    let mcp = http
        .post(server.url("/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .json(&initialize);
    assert_eq!(
        status(mcp, format!("Bearer {access}")).await,
        401,
        "revoked"
    );
}
