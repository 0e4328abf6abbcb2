//! OpenID Connect against a real provider process on 127.0.0.1 (`tests/oidc_provider`, Flask
//! and Authlib): discovery, its keys, the authorization request, signing in at the provider,
//! the code exchange with PKCE and the ID token; a replayed code and a wrong verifier; and
//! every kind of bad ID token the provider can be made to send, refused.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use strongbox::clock::SystemClock;
use strongbox::oidc::flow::{Authorization, FlowError, Registration};
use strongbox::oidc::id_token::{self, Expected, IdTokenError};
use strongbox::oidc::provider::Provider;
use url::Url;

use strongbox::config::{OidcProvider, SignupMode};

use crate::common::process::{free_port, get_status};
use crate::common::{Page, TestServer, WebClient, set_up_owner, sign_in};

const CLIENT_ID: &str = "strongbox-test-client";
const CLIENT_SECRET: &str = "a client secret for the test provider";

/// The test provider, stopped when dropped.
struct ProviderProcess {
    child: Child,
    issuer: Url,
}

impl ProviderProcess {
    fn start() -> Self {
        let python = std::env::var("STRONGBOX_OIDC_PYTHON")
            .expect("STRONGBOX_OIDC_PYTHON names a Python with tests/requirements.txt installed");
        let port = free_port();
        let child = Command::new(python)
            .arg("tests/oidc_provider/provider.py")
            .args(["--port", &port.to_string()])
            .args(["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the test provider");
        let issuer: Url = format!("http://127.0.0.1:{port}").parse().unwrap();
        let discovery = format!("{issuer}.well-known/openid-configuration");
        let deadline = Instant::now() + Duration::from_secs(30);
        while get_status(&discovery).ok() != Some(200) {
            assert!(Instant::now() < deadline, "the test provider did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, issuer }
    }

    /// Makes the provider's next ID token wrong in one way.
    async fn spoil_next_token(&self, fault: &str) {
        let response = reqwest::Client::new()
            .post(self.issuer.join("/_test/next-token").unwrap())
            .json(&json!({ "fault": fault }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

impl Drop for ProviderProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Signs in at the provider as `account`, as a person would on its page; returns the code
/// and state it sent back to the redirect URI.
async fn sign_in_at_provider(authorization: &Authorization, account: &str) -> (String, String) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser.get(authorization.url.clone()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let mut form: Vec<(String, String)> = authorization.url.query_pairs().into_owned().collect();
    form.push(("account".into(), account.into()));
    let answer = browser
        .post(authorization.url.join("/authorize").unwrap())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 302);
    let location: Url = answer.headers()["location"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let query: HashMap<String, String> = location.query_pairs().into_owned().collect();
    (query["code"].clone(), query["state"].clone())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[actix_web::test]
#[ignore = "needs Python with Flask and Authlib; run by scripts/test.sh"]
async fn the_code_flow_works_against_a_real_provider_and_every_bad_id_token_is_refused() {
    let process = ProviderProcess::start();
    let http = reqwest::Client::new();
    let provider = Provider::new(process.issuer.clone(), http.clone(), Arc::new(SystemClock));
    let discovery = provider.discovery().await.unwrap();
    let redirect: Url = "http://127.0.0.1/sign-in/oidc/test/callback"
        .parse()
        .unwrap();
    let secret = secrecy::SecretString::from(CLIENT_SECRET);
    let registration = Registration {
        client_id: CLIENT_ID,
        client_secret: Some(&secret),
        redirect_uri: &redirect,
    };
    let keys = provider.keys(false).await.unwrap();
    let issuer = discovery.issuer.clone();
    fn expected<'a>(issuer: &'a str, authorization: &'a Authorization) -> Expected<'a> {
        Expected {
            issuer,
            client_id: CLIENT_ID,
            nonce: &authorization.nonce,
        }
    }

    // The whole flow, as it goes right.
    let authorization = registration.authorization(&discovery);
    let (code, state) = sign_in_at_provider(&authorization, "ada").await;
    assert_eq!(state, authorization.state);
    let token = registration
        .exchange(&http, &discovery, &code, &authorization.pkce_verifier)
        .await
        .unwrap();
    let claims = id_token::verify(&token, &keys, expected(&issuer, &authorization), now()).unwrap();
    assert_eq!(claims.sub, "ada-0001");
    assert_eq!(claims.email.as_deref(), Some("ada@example.com"));
    assert!(claims.email_verified);

    // A code works once, and only with its verifier.
    let replayed = registration
        .exchange(&http, &discovery, &code, &authorization.pkce_verifier)
        .await;
    assert!(matches!(replayed, Err(FlowError::Refused)));
    let authorization = registration.authorization(&discovery);
    let (code, _) = sign_in_at_provider(&authorization, "ada").await;
    let other = registration.authorization(&discovery);
    let wrong = registration
        .exchange(&http, &discovery, &code, &other.pkce_verifier)
        .await;
    assert!(matches!(wrong, Err(FlowError::Refused)));

    // A token for this sign-in but from another sign-in's nonce.
    let first = registration.authorization(&discovery);
    let (code, _) = sign_in_at_provider(&first, "bob").await;
    let token = registration
        .exchange(&http, &discovery, &code, &first.pkce_verifier)
        .await
        .unwrap();
    let second = registration.authorization(&discovery);
    assert_eq!(
        id_token::verify(&token, &keys, expected(&issuer, &second), now()),
        Err(IdTokenError::Invalid)
    );
    let bob = id_token::verify(&token, &keys, expected(&issuer, &first), now()).unwrap();
    assert!(
        !bob.email_verified,
        "the provider's word on the address is kept"
    );

    for (fault, refusal) in [
        ("audience", IdTokenError::Invalid),
        ("nonce", IdTokenError::Invalid),
        ("no-nonce", IdTokenError::Invalid),
        ("expired", IdTokenError::Expired),
        ("signature", IdTokenError::BadSignature),
    ] {
        process.spoil_next_token(fault).await;
        let authorization = registration.authorization(&discovery);
        let (code, _) = sign_in_at_provider(&authorization, "ada").await;
        let token = registration
            .exchange(&http, &discovery, &code, &authorization.pkce_verifier)
            .await
            .unwrap();
        assert_eq!(
            id_token::verify(&token, &keys, expected(&issuer, &authorization), now()),
            Err(refusal),
            "{fault}"
        );
    }
}

// Through the server: the sign-in button, the provider's page, the callback, accounts.

const PROVIDER: &str = "test";

/// A Strongbox server with the test provider configured as `test`.
fn server_with(process: &ProviderProcess, signup: SignupMode) -> TestServer {
    TestServer::start_with(|config| {
        config.accounts.signup = signup;
        config.oidc.insert(
            PROVIDER.into(),
            OidcProvider {
                label: "Test ID".into(),
                issuer: process.issuer.clone(),
                client_id: CLIENT_ID.into(),
                client_secret: Some(secrecy::SecretString::from(CLIENT_SECRET)),
            },
        );
    })
}

/// Posts the button's form on `page` (the sign-in page, or Account for a link) and follows
/// the redirect to the provider's page; returns the provider's authorization URL.
async fn press(browser: &mut WebClient, page: &str, action: &str) -> Url {
    let csrf = browser.get(page).await.csrf();
    let started = browser.post(action, &[("csrf", &csrf)]).await;
    assert_eq!(started.status, 303, "{}", started.body);
    started.location.unwrap().parse().unwrap()
}

/// The callback URL the provider sends the browser back to, once `account` signed in there.
async fn callback_from_provider(authorization: &Url, account: &str) -> String {
    let at_provider = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = at_provider.get(authorization.clone()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let mut form: Vec<(String, String)> = authorization.query_pairs().into_owned().collect();
    form.push(("account".into(), account.into()));
    let answer = at_provider
        .post(authorization.join("/authorize").unwrap())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 302);
    answer.headers()["location"].to_str().unwrap().to_string()
}

/// The whole round trip from the sign-in page as `account`; the callback's answer.
async fn sign_in_as(browser: &mut WebClient, account: &str) -> Page {
    let action = format!("/sign-in/oidc/{PROVIDER}");
    let authorization = press(browser, "/sign-in", &action).await;
    let callback = callback_from_provider(&authorization, account).await;
    browser.get(&callback).await
}

/// The round trip from Account, linking `account` at the provider.
async fn link_as(browser: &mut WebClient, account: &str) -> Page {
    let action = format!("/account/sign-in-methods/{PROVIDER}/link");
    let authorization = press(browser, "/account", &action).await;
    let callback = callback_from_provider(&authorization, account).await;
    browser.get(&callback).await
}

fn users(server: &TestServer) -> i64 {
    server.count("SELECT count(*) FROM users", &[])
}

fn links(server: &TestServer) -> i64 {
    server.count("SELECT count(*) FROM oidc_identities", &[])
}

fn audited(server: &TestServer, action: &str, detail: &str) -> i64 {
    let pattern = format!("%{detail}%");
    server.count(
        "SELECT count(*) FROM audit_log WHERE action = ?1 AND details LIKE ?2",
        &[action, &pattern],
    )
}

#[actix_web::test]
#[ignore = "needs Python with Flask and Authlib; run by scripts/test.sh"]
async fn a_first_provider_sign_in_makes_the_account_and_later_ones_sign_into_it() {
    let process = ProviderProcess::start();
    let server = server_with(&process, SignupMode::Open);
    let _owner = set_up_owner(&server).await;

    // The sign-in page offers the provider, and lets its form go there.
    let page = WebClient::new(&server).get("/sign-in").await;
    assert!(page.body.contains("Sign in with Test ID"));
    let policy = page.headers["content-security-policy"].to_str().unwrap();
    let origin = process.issuer.origin().ascii_serialization();
    assert!(
        policy.contains(&format!("form-action 'self' {origin}")),
        "{policy}"
    );

    let mut ada = WebClient::new(&server);
    let signed_in = sign_in_as(&mut ada, "ada").await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.body);
    assert_eq!(signed_in.location.as_deref(), Some("/"));
    let account = ada.get("/account").await;
    assert_eq!(account.status, 200);
    assert!(account.body.contains("ada@example.com"));
    assert!(account.body.contains("Unlink Test ID"));
    assert!(account.body.contains("Password: none"));
    assert_eq!((users(&server), links(&server)), (2, 1));
    assert_eq!(audited(&server, "account.created", "\"oidc\""), 1);
    assert_eq!(
        audited(&server, "account.sign_in_method_linked", PROVIDER),
        1
    );

    // The account has no password anyone knows.
    let (_, refused) = sign_in(&server, "ada@example.com", "").await;
    assert_eq!(refused.status, 401);

    // Signing in again with the same identity signs into the same account, and adds nothing.
    let mut again = WebClient::new(&server);
    assert_eq!(sign_in_as(&mut again, "ada").await.status, 303);
    assert!(again.get("/account").await.body.contains("ada@example.com"));
    assert_eq!((users(&server), links(&server)), (2, 1));
    assert_eq!(audited(&server, "sign_in.succeeded", "\"oidc\""), 2);

    // The only way into the account cannot be unlinked.
    let unlink = format!("/account/sign-in-methods/{PROVIDER}/unlink");
    let refused = again.submit("/account", &unlink, &[]).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("only way to sign in"));
    assert_eq!(links(&server), 1);

    // The data archive lists the linked provider.
    let archive = again.submit("/account", "/account/data", &[]).await;
    let archive: serde_json::Value = serde_json::from_str(&archive.body).unwrap();
    let linked = &archive["linked_sign_in_providers"];
    assert_eq!(linked[0]["provider"], PROVIDER);
    assert_eq!(linked[0]["subject"], "ada-0001");

    // An address the provider has not verified opens nothing.
    let mut bob = WebClient::new(&server);
    let refused = sign_in_as(&mut bob, "bob").await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("has not verified"));
    assert!(bob.session().is_none());

    // An identity whose address already has an account is not linked to it silently.
    let mut someone = WebClient::new(&server);
    let refused = sign_in_as(&mut someone, "owner").await;
    assert_eq!(refused.status, 409);
    assert!(refused.body.contains("sign in to it, then link"));
    assert!(someone.session().is_none());
    assert_eq!((users(&server), links(&server)), (2, 1));
    assert_eq!(
        audited(&server, "sign_in.failed", "provider_account_exists"),
        1
    );
}

#[actix_web::test]
#[ignore = "needs Python with Flask and Authlib; run by scripts/test.sh"]
async fn linking_is_for_the_signed_in_owner_and_the_second_factor_still_applies() {
    let process = ProviderProcess::start();
    let server = server_with(&process, SignupMode::Open);
    let mut owner = set_up_owner(&server).await;

    // An unverified address is not linked, even by the signed-in owner.
    let refused = link_as(&mut owner, "bob").await;
    assert_eq!(refused.status, 403);
    assert_eq!(links(&server), 0);

    let linked = link_as(&mut owner, "owner").await;
    assert_eq!(linked.status, 200, "{}", linked.body);
    assert!(linked.body.contains("You can now sign in with Test ID"));
    assert_eq!(links(&server), 1);
    assert!(
        server.mail_arrives_with("A sign-in method was added"),
        "the owner is told"
    );

    // An identity another account uses is not linked here too.
    let mut cy = WebClient::new(&server);
    assert_eq!(sign_in_as(&mut cy, "cy").await.status, 303);
    let refused = link_as(&mut owner, "cy").await;
    assert_eq!(refused.status, 409);
    assert!(refused.body.contains("linked to another Strongbox account"));
    assert_eq!(links(&server), 2);

    // With a second factor on, a provider sign-in still asks for it.
    let (secret, _) = crate::mfa::enrol(&server, &mut owner).await;
    let mut browser = WebClient::new(&server);
    let first_step = sign_in_as(&mut browser, "owner").await;
    assert_eq!(first_step.status, 303);
    assert_eq!(
        first_step.location.as_deref(),
        Some("/sign-in/second-factor")
    );
    assert_eq!(
        browser.get("/account").await.status,
        303,
        "not signed in yet"
    );
    server.clock.advance(30);
    let code = crate::mfa::code_now(&server, &secret);
    let done = crate::mfa::second_factor(&mut browser, &code).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(browser.get("/account").await.status, 200);

    // With a password, the provider may go.
    let unlink = format!("/account/sign-in-methods/{PROVIDER}/unlink");
    let unlinked = browser.submit("/account", &unlink, &[]).await;
    assert_eq!(unlinked.status, 303);
    assert_eq!(links(&server), 1, "cy's link stays");
    assert_eq!(
        audited(&server, "account.sign_in_method_unlinked", PROVIDER),
        1
    );
    let mut stranger = WebClient::new(&server);
    let refused = sign_in_as(&mut stranger, "owner").await;
    assert_eq!(refused.status, 409, "unlinked: no silent link by address");
}

#[actix_web::test]
#[ignore = "needs Python with Flask and Authlib; run by scripts/test.sh"]
async fn every_bad_answer_on_the_way_back_is_refused_and_signs_nobody_in() {
    let logs = crate::common::captured_logs();
    let process = ProviderProcess::start();
    let server = server_with(&process, SignupMode::Open);
    let _owner = set_up_owner(&server).await;
    let start = format!("/sign-in/oidc/{PROVIDER}");

    // ID tokens the provider got wrong, one way each.
    let mut callbacks = Vec::new();
    for fault in ["signature", "audience", "nonce", "no-nonce", "expired"] {
        let mut browser = WebClient::new(&server);
        let authorization = press(&mut browser, "/sign-in", &start).await;
        let callback = callback_from_provider(&authorization, "ada").await;
        callbacks.push(callback.clone());
        process.spoil_next_token(fault).await;
        let refused = browser.get(&callback).await;
        assert_eq!(refused.status, 401, "{fault}: {}", refused.body);
        assert!(browser.session().is_none(), "{fault}");
    }
    assert_eq!(users(&server), 1);
    assert_eq!(audited(&server, "sign_in.failed", "oidc_token"), 5);

    // The way back works in the browser that set out, once.
    let mut browser = WebClient::new(&server);
    let authorization = press(&mut browser, "/sign-in", &start).await;
    let callback = callback_from_provider(&authorization, "ada").await;
    let mut elsewhere = WebClient::new(&server);
    let refused = elsewhere.get(&callback).await;
    assert_eq!(refused.status, 400, "another browser");
    assert!(elsewhere.session().is_none());
    assert_eq!(browser.get(&callback).await.status, 303);
    assert!(browser.session().is_some());
    let sign_out = browser.submit("/account", "/sign-out", &[]).await;
    assert_eq!(sign_out.status, 303);
    let replayed = browser.get(&callback).await;
    assert_eq!(replayed.status, 400, "a replayed state");
    assert!(replayed.body.contains("expired or was already used"));
    assert!(browser.session().is_none());
    assert_eq!(audited(&server, "sign_in.failed", "oidc_state"), 2);

    // A state that was never issued, and one turned down at the provider.
    let mut browser = WebClient::new(&server);
    browser.get("/sign-in").await;
    let made_up = format!("/sign-in/oidc/{PROVIDER}/callback?state=made-up&code=anything");
    assert_eq!(browser.get(&made_up).await.status, 400);
    let authorization = press(&mut browser, "/sign-in", &start).await;
    let state = authorization
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let cancelled = browser
        .get(&format!(
            "/sign-in/oidc/{PROVIDER}/callback?state={state}&error=access_denied"
        ))
        .await;
    assert_eq!(cancelled.status, 400);
    assert!(cancelled.body.contains("cancelled"));

    // A provider that is not configured.
    let csrf = browser.get("/sign-in").await.csrf();
    let unknown = browser
        .post("/sign-in/oidc/elsewhere", &[("csrf", &csrf)])
        .await;
    assert_eq!(unknown.status, 404);

    // A sign-in left at the provider's page for more than ten minutes has expired.
    let authorization = press(&mut browser, "/sign-in", &start).await;
    let callback = callback_from_provider(&authorization, "ada").await;
    server.clock.advance(11 * 60);
    let expired = browser.get(&callback).await;
    assert_eq!(expired.status, 400);
    assert_eq!(
        users(&server),
        2,
        "only the one good sign-in made an account"
    );

    // Neither the codes nor the states on the way back reach the logs, nor the secret.
    callbacks.push(callback);
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(text.contains("provider ID token refused"));
    for callback in &callbacks {
        let url: Url = callback.parse().unwrap();
        for (_, value) in url.query_pairs() {
            assert!(!text.contains(value.as_ref()), "reached the logs: {value}");
        }
    }
    assert!(!text.contains(CLIENT_SECRET));
}

#[actix_web::test]
#[ignore = "needs Python with Flask and Authlib; run by scripts/test.sh"]
async fn with_sign_up_by_invitation_a_new_identity_is_turned_away() {
    let process = ProviderProcess::start();
    let server = server_with(&process, SignupMode::Invite);
    let _owner = set_up_owner(&server).await;
    let mut browser = WebClient::new(&server);
    let refused = sign_in_as(&mut browser, "ada").await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("sign-up is by invitation only"));
    assert_eq!((users(&server), links(&server)), (1, 0));
}
