//! The `/cookies` and `/privacy` pages: every cookie the product sets is listed, the retention
//! figures are the running configuration's, and every page links to both.

use crate::common::{OWNER_EMAIL, OWNER_PASSWORD, Page, TestServer, WebClient, set_up_owner};

fn cookie_names(page: &Page) -> Vec<String> {
    page.headers
        .get_all("set-cookie")
        .iter()
        .map(|value| {
            let text = value.to_str().unwrap();
            text.split('=').next().unwrap().to_string()
        })
        .collect()
}

#[actix_web::test]
async fn the_cookies_page_lists_every_cookie_the_product_sets() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let mut seen = Vec::new();
    let mut visitor = WebClient::new(&server);
    for page in [
        visitor.get("/sign-in").await,
        visitor
            .submit(
                "/sign-in",
                "/sign-in",
                &[("email", OWNER_EMAIL), ("password", OWNER_PASSWORD)],
            )
            .await,
        visitor.get("/account").await,
        visitor.submit("/account", "/sign-out", &[]).await,
        owner.get("/").await,
    ] {
        seen.extend(cookie_names(&page));
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["__Host-sbx_pre", "__Host-sbx_session"]);

    let listed = WebClient::new(&server).get("/cookies").await;
    assert_eq!(listed.status, 200);
    for name in &seen {
        assert!(
            listed.body.contains(&format!("<code>{name}</code>")),
            "{name}"
        );
    }
    let rows = listed.body.matches("<tr><td><code>").count();
    assert_eq!(rows, seen.len(), "a cookie listed that is never set");
    assert!(
        listed
            .body
            .contains("no analytics, advertising or third-party")
    );
}

#[actix_web::test]
async fn the_privacy_page_states_the_configured_retention() {
    let server = TestServer::start_with(|config| {
        config.sessions.idle_timeout_minutes = 20;
        config.sessions.absolute_timeout_hours = 9;
        config.audit.retention_months = 12;
        config.backup.retention_days = 45;
        config.agents.pairing_code_days = 14;
    });
    let page = WebClient::new(&server).get("/privacy").await;
    assert_eq!(page.status, 200);
    for figure in [
        "Sessions: 20 minutes without use, 9\n  hours at most",
        "Audit log: 12 months",
        "Backups: 45 days",
        "pairing codes for desktop agents: 14 days",
        "AI client approvals: 90 days",
        "kept for 30 days",
    ] {
        assert!(
            page.body.contains(figure),
            "{figure} missing:\n{}",
            page.body
        );
    }
    assert!(page.body.contains("masking rules"));
}

#[actix_web::test]
async fn every_page_links_to_privacy_and_cookies() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let mut visitor = WebClient::new(&server);
    let mut bodies = vec![
        visitor.get("/sign-in").await.body,
        visitor.get("/privacy").await.body,
        owner.get("/").await.body,
        owner.get("/account").await.body,
    ];
    // Error pages too, as a browser gets them.
    let missing = reqwest::Client::new()
        .get(server.url("/no-such-page"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    bodies.push(missing.text().await.unwrap());
    for body in bodies {
        assert!(body.contains(r#"<a href="/privacy">Privacy</a>"#), "{body}");
        assert!(body.contains(r#"<a href="/cookies">Cookies</a>"#), "{body}");
    }
}
