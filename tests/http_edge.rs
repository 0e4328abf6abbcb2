//! The HTTP edge over a real socket: security headers on every response, request ids,
//! per-IP rate limits, client-IP trust, body limits and error bodies that echo nothing.

use reqwest::{Method, Response, StatusCode};

use crate::common::{TestServer, client, client_from};

const CSP_REPORTS: &str = "/api/v1/csp-reports";

fn assert_security_headers(response: &Response) {
    let headers = response.headers();
    let expect = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
        ("permissions-policy", strongbox::http::PERMISSIONS_POLICY),
        (
            "content-security-policy",
            strongbox::http::CONTENT_SECURITY_POLICY,
        ),
    ];
    for (name, value) in expect {
        assert_eq!(
            headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name} on a {} response",
            response.status()
        );
    }
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    let permissions = headers["permissions-policy"].to_str().unwrap();
    for feature in [
        "camera",
        "microphone",
        "geolocation",
        "payment",
        "usb",
        "interest-cohort",
    ] {
        assert!(
            permissions.contains(&format!("{feature}=()")),
            "{feature} not denied"
        );
    }
    assert!(
        headers.contains_key("x-request-id"),
        "x-request-id on {}",
        response.status()
    );
}

async fn send(server: &TestServer, method: Method, path: &str) -> Response {
    client()
        .request(method, server.url(path))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let server = TestServer::start_with(|c| {
        c.limits.json_body_bytes = 1024;
        c.rate_limits.reports.per_minute = 1;
        c.rate_limits.reports.burst = 1;
    });
    let ok = send(&server, Method::GET, "/healthz").await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_security_headers(&ok);
    // Over plain http, HSTS would be ignored at best; it is only sent for https installs.
    assert!(!ok.headers().contains_key("strict-transport-security"));

    let ready = send(&server, Method::GET, "/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_security_headers(&ready);

    let missing = send(&server, Method::GET, "/no/such/page").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_security_headers(&missing);

    let wrong_method = send(&server, Method::DELETE, "/healthz").await;
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.headers()["allow"], "GET");
    assert_security_headers(&wrong_method);

    let too_large = client()
        .post(server.url(CSP_REPORTS))
        .header("content-type", "application/json")
        .body(vec![b' '; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_security_headers(&too_large);

    // The 413 above spent the single report token.
    let limited = client()
        .post(server.url(CSP_REPORTS))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_security_headers(&limited);
}

#[tokio::test]
async fn security_txt_gives_the_configured_contact_and_is_absent_without_one() {
    let server = TestServer::start();
    let missing = send(&server, Method::GET, "/.well-known/security.txt").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let server = TestServer::start_with(|c| {
        c.public_url = "https://strongbox.example.com".parse().unwrap();
        c.security_txt.contact = vec!["mailto:security@example.com".parse().unwrap()];
    });
    let response = send(&server, Method::GET, "/.well-known/security.txt").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_security_headers(&response);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let body = response.text().await.unwrap();
    assert!(
        body.contains("Contact: mailto:security@example.com\n"),
        "{body}"
    );
    assert!(
        body.contains("Canonical: https://strongbox.example.com/.well-known/security.txt\n"),
        "{body}"
    );
    let expires = body
        .lines()
        .find_map(|line| line.strip_prefix("Expires: "))
        .expect("an Expires field");
    let expires = chrono::DateTime::parse_from_rfc3339(expires).unwrap();
    let ahead = expires.signed_duration_since(chrono::Utc::now());
    assert!(
        ahead > chrono::Duration::days(30) && ahead < chrono::Duration::days(365),
        "{expires}"
    );
}

#[tokio::test]
async fn https_installs_send_hsts_with_preload() {
    let server = TestServer::start_with(|c| {
        c.public_url = "https://strongbox.example.com".parse().unwrap();
    });
    for path in ["/healthz", "/missing"] {
        let response = send(&server, Method::GET, path).await;
        assert_security_headers(&response);
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=63072000; includeSubDomains; preload"
        );
    }
}

/// Audit rows carry the request id, so a client does not choose it: only a trusted proxy's
/// id is kept (when well-formed); anyone else's is replaced by one made here.
#[tokio::test]
async fn request_ids_are_taken_only_from_a_trusted_proxy_and_only_when_well_formed() {
    let server = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.3/32".parse().unwrap()];
    });
    let id_from = |source: &'static str, sent: &'static str| {
        let url = server.url("/healthz");
        async move {
            let response = client_from(source)
                .get(url)
                .header("x-request-id", sent)
                .send()
                .await
                .unwrap();
            response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(id_from("127.0.0.3", "lb-4f2a.9").await, "lb-4f2a.9");
    let replaced = id_from("127.0.0.3", "<script>alert(1)</script>").await;
    assert!(uuid::Uuid::parse_str(&replaced).is_ok(), "{replaced}");
    let chosen = id_from("127.0.0.4", "lb-4f2a.9").await;
    assert!(uuid::Uuid::parse_str(&chosen).is_ok(), "{chosen}");
    let chosen = id_from("127.0.0.1", "chosen-by-client").await;
    assert!(uuid::Uuid::parse_str(&chosen).is_ok(), "{chosen}");
}

async fn status_from(client: &reqwest::Client, url: &str, forwarded_for: Option<&str>) -> Response {
    let mut request = client.get(url);
    if let Some(value) = forwarded_for {
        request = request.header("x-forwarded-for", value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn rate_limit_refuses_the_next_request_per_ip() {
    const BUDGET: u32 = 3;
    let server = TestServer::start_with(|c| {
        c.rate_limits.general.per_minute = BUDGET;
        c.rate_limits.general.burst = BUDGET;
    });
    let url = server.url("/healthz");
    let first = client_from("127.0.0.1");
    for n in 0..BUDGET {
        let response = status_from(&first, &url, None).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "request {n} is within budget"
        );
    }
    let refused = status_from(&first, &url, None).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "retry-after {retry_after}");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    // A spoofed X-Forwarded-For from an untrusted peer changes nothing.
    let spoofed = status_from(&first, &url, Some("198.51.100.23")).await;
    assert_eq!(spoofed.status(), StatusCode::TOO_MANY_REQUESTS);

    // Another address on the loopback range has its own budget.
    let second = client_from("127.0.0.2");
    assert_eq!(
        status_from(&second, &url, None).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let server = TestServer::start_with(|c| {
        c.rate_limits.general.per_minute = 1;
        c.rate_limits.general.burst = 1;
        c.trusted_proxies = vec!["127.0.0.3/32".parse().unwrap()];
    });
    let url = server.url("/healthz");
    let proxy = client_from("127.0.0.3");
    // Through the trusted proxy, each forwarded client has its own budget.
    for client_ip in ["198.51.100.1", "198.51.100.2"] {
        let response = status_from(&proxy, &url, Some(client_ip)).await;
        assert_eq!(response.status(), StatusCode::OK, "{client_ip}");
    }
    let again = status_from(&proxy, &url, Some("198.51.100.1")).await;
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
    // A client cannot escape its budget by prepending a forged hop: the proxy appends the
    // real one, and the rightmost untrusted hop is the client.
    let forged = status_from(&proxy, &url, Some("203.0.113.50, 198.51.100.1")).await;
    assert_eq!(forged.status(), StatusCode::TOO_MANY_REQUESTS);

    // An untrusted peer sending the same header is judged by its own address.
    let direct = client_from("127.0.0.4");
    assert_eq!(
        status_from(&direct, &url, Some("198.51.100.9"))
            .await
            .status(),
        StatusCode::OK
    );
    let direct_again = status_from(&direct, &url, Some("198.51.100.10")).await;
    assert_eq!(direct_again.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn bad_bodies_get_json_errors_that_echo_nothing() {
    const MARKER: &str = "ECHO-CANARY-5521";
    let server = TestServer::start_with(|c| c.limits.json_body_bytes = 1024);
    let post = |content_type: &'static str, body: String| {
        client()
            .post(server.url(CSP_REPORTS))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases = [
        (
            "application/json",
            format!("{{\"csp-report\": {{\"{MARKER}\": "),
        ),
        (
            "application/json",
            format!("{{\"csp-report\": \"{MARKER}\"}}"),
        ),
        (
            "application/json",
            format!("[\"{MARKER}\"{}]", " ".repeat(2048)),
        ),
        ("text/plain", format!("{{\"{MARKER}\": 1}}")),
        (
            "application/csp-report",
            format!(
                "{{\"csp-report\": {{\"effective-directive\": \"{}\"}}}}",
                MARKER.repeat(30)
            ),
        ),
    ];
    let expected = [
        (StatusCode::BAD_REQUEST, "malformed_json"),
        (StatusCode::BAD_REQUEST, "invalid_body"),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
    ];
    for ((content_type, body), (status, code)) in cases.into_iter().zip(expected) {
        let response = post(content_type, body).await.unwrap();
        assert_eq!(response.status(), status, "{code}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let text = response.text().await.unwrap();
        assert!(!text.contains(MARKER), "{code} echoed input: {text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["error"]["code"], code, "{text}");
    }

    let accepted = post(
        "application/csp-report",
        "{\"csp-report\": {\"effective-directive\": \"script-src-elem\", \"blocked-uri\": \"inline\"}}"
            .into(),
    )
    .await
    .unwrap();
    assert_eq!(accepted.status(), StatusCode::NO_CONTENT);
}

/// A probe proves the control database takes a write, but a flood of probes writes no more
/// than once per interval: GETs change nothing per request.
#[tokio::test]
async fn readiness_round_trips_through_the_control_database_without_a_write_per_probe() {
    let server = TestServer::start();
    let probe_row = || {
        server
            .store
            .control()
            .read(|conn| {
                conn.query_row("SELECT nonce FROM readiness_probe", [], |row| {
                    row.get::<_, String>(0)
                })
                .map_err(strongbox::store::StoreError::from)
            })
            .unwrap()
    };
    let response = send(&server, Method::GET, "/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let nonce = probe_row();
    assert_eq!(nonce.len(), 32, "readyz wrote a fresh probe row");
    let changes = |conn: &rusqlite::Connection| {
        conn.query_row("SELECT total_changes()", [], |row| row.get::<_, i64>(0))
            .map_err(strongbox::store::StoreError::from)
    };
    let writes_before = server.store.control().write(|tx| changes(tx)).unwrap();
    for _ in 0..20 {
        let response = send(&server, Method::GET, "/readyz").await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(probe_row(), nonce, "no probe within the interval wrote");
    let writes_after = server.store.control().write(|tx| changes(tx)).unwrap();
    assert_eq!(writes_after, writes_before, "nothing was written at all");
}

#[tokio::test]
async fn browsers_get_error_pages_and_programs_get_json() {
    let server = TestServer::start();
    let html = "text/html,application/xhtml+xml,*/*;q=0.8";
    let page = client()
        .get(server.url("/no/such/page"))
        .header("accept", html)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert_security_headers(&page);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = page.text().await.unwrap();
    assert!(body.contains("<h1>Not found</h1>"), "{body}");
    assert!(!body.contains("<script"), "no inline script on error pages");

    for path in ["/api/v1/no-such-endpoint", "/healthz/x"] {
        let response = client()
            .get(server.url(path))
            .header("accept", html)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{path}"
        );
    }
    let plain = send(&server, Method::GET, "/no/such/page").await;
    assert_eq!(plain.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn probes_assets_and_apis_set_no_cookies() {
    let server = TestServer::start();
    for path in ["/healthz", "/readyz", "/static/app.css"] {
        let response = send(&server, Method::GET, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(
            response.headers().get("set-cookie").is_none(),
            "{path} set a cookie"
        );
    }
    let page = send(&server, Method::GET, "/sign-in").await;
    assert!(
        page.headers().get("set-cookie").is_some(),
        "forms get their CSRF anchor"
    );
}
