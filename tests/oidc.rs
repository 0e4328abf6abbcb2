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

use crate::common::process::{free_port, get_status};

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
