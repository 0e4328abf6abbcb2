//! The `/cookies` and `/privacy` pages: every cookie the product sets is listed, the retention
//! figures are the running configuration's, and every page links to both. "Download my data":
//! the person's rows and nobody else's, no secrets, three an hour, audited.

use serde_json::Value;

use crate::common::{
    OWNER_EMAIL, OWNER_PASSWORD, Page, TestServer, WebClient, create_workspace, make_token,
    set_up_owner, sign_in,
};
use crate::workspaces::{invite, join_by_invite};

const MEMBER_EMAIL: &str = "member@example.com";

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
        "Sessions: 20 minutes without use, 9 hours at most.",
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

/// Takes the archive through the account page, as the person would.
async fn download(browser: &mut WebClient) -> Page {
    browser.submit("/account", "/account/data", &[]).await
}

#[actix_web::test]
async fn the_data_archive_holds_the_persons_rows_and_nobody_elses() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let workspace = create_workspace(&mut owner, "Shared").await;
    let owner_token = make_token(&mut owner, &workspace, "read").await;
    let link = invite(&server, &mut owner, &workspace, MEMBER_EMAIL, "member").await;
    let mut member = join_by_invite(&server, &link).await;
    let member_token = make_token(&mut member, &workspace, "read").await;

    let page = download(&mut owner).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let archive: Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(archive["profile"]["email"], OWNER_EMAIL);
    assert_eq!(archive["two_factor"]["enabled"], false);
    assert_eq!(archive["memberships"][0]["workspace"], "Shared");
    assert_eq!(archive["memberships"][0]["role"], "owner");
    assert_eq!(archive["personal_tokens"].as_array().unwrap().len(), 1);
    assert!(!archive["sessions"].as_array().unwrap().is_empty());

    // Every audit row is one the owner made, in the system log and the workspace's.
    let owner_id = archive["audit_log_rows_as_actor"]["system"][0]["actor_id"].clone();
    assert!(owner_id.is_string());
    let chains = archive["audit_log_rows_as_actor"].as_object().unwrap();
    assert_eq!(chains.len(), 2, "the system log and the one workspace");
    let rows: Vec<&Value> = chains
        .values()
        .flat_map(|rows| rows.as_array().unwrap())
        .collect();
    assert!(rows.iter().any(|r| r["action"] == "workspace.created"));
    assert!(rows.iter().any(|r| r["action"] == "token.created"));
    for row in &rows {
        assert_eq!(row["actor_id"], owner_id, "{row}");
    }
    assert!(!rows.iter().any(|r| r["action"] == "member.joined"));

    // No secret of anyone's, and nothing of the member's but what the owner did to them.
    for secret in [&owner_token, &member_token] {
        assert!(!page.body.contains(secret.as_str()));
    }
    assert!(!page.body.contains("$argon2"));
    let theirs: Value = serde_json::from_str(&download(&mut member).await.body).unwrap();
    assert_eq!(theirs["profile"]["email"], MEMBER_EMAIL);
    assert_eq!(theirs["memberships"][0]["role"], "member");
    let their_token = &theirs["personal_tokens"][0]["id"];
    assert_ne!(their_token, &archive["personal_tokens"][0]["id"]);
    assert!(!page.body.contains(their_token.as_str().unwrap()));
}

#[actix_web::test]
async fn three_archives_an_hour_each_audited() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    for _ in 0..3 {
        assert_eq!(download(&mut owner).await.status, 200);
    }
    let refused = download(&mut owner).await;
    assert_eq!(refused.status, 429);
    assert!(refused.headers.contains_key("retry-after"));
    // An hour on (the session has ended by then: sign in again), the allowance is back.
    server.clock.advance(3601);
    let (mut owner, _) = sign_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let page = download(&mut owner).await;
    assert_eq!(page.status, 200);
    let archive: Value = serde_json::from_str(&page.body).unwrap();
    let downloads = archive["audit_log_rows_as_actor"]["system"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["action"] == "account.data_downloaded")
        .count();
    assert_eq!(
        downloads, 3,
        "the three before; this one is recorded as it is sent"
    );
    // Signed out, there is nothing to download.
    let mut stranger = WebClient::new(&server);
    let csrf = stranger.get("/sign-in").await.csrf();
    let page = stranger.post("/account/data", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/sign-in"));
}
