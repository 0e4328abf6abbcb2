//! Second factor over HTTP: enrolment, the sign-in challenge, replays, backup codes,
//! the pending window, and re-authentication to change anything.

use strongbox::clock::Clock;

use crate::common::{OWNER_EMAIL, OWNER_PASSWORD, TestServer, WebClient, set_up_owner, sign_in};

/// Starts enrolment with the page's button; returns the page showing the key.
async fn set_up(owner: &mut WebClient) -> crate::common::Page {
    let started = owner
        .submit("/account/mfa", "/account/mfa/setup", &[])
        .await;
    assert_eq!(started.status, 303);
    assert_eq!(started.location.as_deref(), Some("/account/mfa"));
    owner.get("/account/mfa").await
}

/// Enrols the signed-in owner; returns the TOTP secret and the backup codes shown.
pub(crate) async fn enrol(server: &TestServer, owner: &mut WebClient) -> (Vec<u8>, Vec<String>) {
    let page = set_up(owner).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("<svg"),
        "a QR code is rendered server-side"
    );
    let marker = "<code class=\"secret\">";
    let start = page.body.find(marker).unwrap() + marker.len();
    let end = page.body[start..].find('<').unwrap() + start;
    let secret = totp_rs::Secret::Encoded(page.body[start..end].to_string())
        .to_bytes()
        .unwrap();
    let code = code_now(server, &secret);
    let shown = owner
        .post(
            "/account/mfa/enable",
            &[("csrf", &page.csrf()), ("code", &code)],
        )
        .await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    let codes: Vec<String> = shown
        .body
        .split("<li><code>")
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

pub(crate) fn code_now(server: &TestServer, secret: &[u8]) -> String {
    strongbox::auth::totp::code_at(secret, server.clock.now()).unwrap()
}

/// Signs in with the password and returns the browser at the second-factor step.
async fn password_step(server: &TestServer) -> WebClient {
    let (browser, page) = sign_in(server, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/sign-in/second-factor"));
    browser
}

pub(crate) async fn second_factor(browser: &mut WebClient, code: &str) -> crate::common::Page {
    let form = browser.get("/sign-in/second-factor").await;
    browser
        .post(
            "/sign-in/second-factor",
            &[("csrf", &form.csrf()), ("code", code)],
        )
        .await
}

async fn signed_in(browser: &mut WebClient) -> bool {
    let page = browser.get("/account").await;
    page.status == 200
}

#[tokio::test]
async fn sign_in_asks_for_the_second_factor_and_rotates_the_session() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let (secret, _) = enrol(&server, &mut owner).await;

    let mut browser = password_step(&server).await;
    let pending = browser.session().unwrap();
    assert!(
        !signed_in(&mut browser).await,
        "the password alone opens nothing"
    );
    let wrong = second_factor(&mut browser, "000000").await;
    assert_eq!(wrong.status, 422);
    // The code just used for enrolment cannot be replayed; the next step's code works.
    server.clock.advance(30);
    let done = second_factor(&mut browser, &code_now(&server, &secret)).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_ne!(
        browser.session().unwrap(),
        pending,
        "a new id after the second factor"
    );
    assert!(signed_in(&mut browser).await);

    let mut attacker = WebClient::new(&server);
    attacker
        .cookies
        .insert(crate::common::strongbox_session_cookie().into(), pending);
    assert!(!signed_in(&mut attacker).await, "the pre-MFA id is dead");
}

#[tokio::test]
async fn a_code_works_once_and_only_near_its_time() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let (secret, _) = enrol(&server, &mut owner).await;
    server.clock.advance(30);
    let code = code_now(&server, &secret);
    let mut first = password_step(&server).await;
    assert_eq!(second_factor(&mut first, &code).await.status, 303);
    let mut replay = password_step(&server).await;
    assert_eq!(
        second_factor(&mut replay, &code).await.status,
        422,
        "replayed code"
    );
    server.clock.advance(30);
    let stale = code.clone();
    server.clock.advance(60);
    let mut late = password_step(&server).await;
    assert_eq!(
        second_factor(&mut late, &stale).await.status,
        422,
        "too old"
    );
    assert_eq!(
        second_factor(&mut late, &code_now(&server, &secret))
            .await
            .status,
        303
    );
}

/// Guessing codes spends the same per-account-and-address budget as guessing passwords: once
/// it is gone even the right code waits, with 429 and `Retry-After`.
#[tokio::test]
async fn repeated_second_factor_guesses_are_refused_with_429() {
    let server = TestServer::start_with(|c| {
        c.rate_limits.account.per_minute = 1;
        c.rate_limits.account.burst = 3;
    });
    let mut owner = set_up_owner(&server).await;
    let (secret, _) = enrol(&server, &mut owner).await;
    server.clock.advance(30);
    // Three attempts: the password step spends one, each guess one more.
    let mut guesser = password_step(&server).await;
    let mut statuses = Vec::new();
    for guess in ["000000", "111111", "222222"] {
        statuses.push(second_factor(&mut guesser, guess).await.status.as_u16());
    }
    assert_eq!(statuses, [422, 422, 429]);
    let right = second_factor(&mut guesser, &code_now(&server, &secret)).await;
    assert_eq!(
        right.status, 429,
        "the budget is spent, for the right code too"
    );
    assert!(right.headers.contains_key("retry-after"));
    assert!(!signed_in(&mut guesser).await);
}

#[tokio::test]
async fn a_backup_code_works_once() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let (_, codes) = enrol(&server, &mut owner).await;
    let mut first = password_step(&server).await;
    let typed = codes[3].to_lowercase();
    assert_eq!(second_factor(&mut first, &typed).await.status, 303);
    assert!(signed_in(&mut first).await);
    let mut again = password_step(&server).await;
    assert_eq!(second_factor(&mut again, &codes[3]).await.status, 422);
    assert!(!signed_in(&mut again).await);
}

#[tokio::test]
async fn the_second_factor_must_come_within_five_minutes() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let (secret, _) = enrol(&server, &mut owner).await;
    let mut browser = password_step(&server).await;
    let csrf = browser.get("/sign-in/second-factor").await.csrf();
    server
        .clock
        .advance(strongbox::auth::SECOND_FACTOR_WINDOW_SECS);
    let page = browser
        .post(
            "/sign-in/second-factor",
            &[("csrf", &csrf), ("code", &code_now(&server, &secret))],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location.as_deref(),
        Some("/sign-in"),
        "the pending session ended"
    );
    assert!(!signed_in(&mut browser).await);
}

#[tokio::test]
async fn changing_the_factor_needs_the_password_and_a_current_code() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let (secret, codes) = enrol(&server, &mut owner).await;
    server.clock.advance(30);
    let csrf = owner.get("/account/mfa").await.csrf();
    let refused = [
        ("a wrong password here", code_now(&server, &secret)),
        (OWNER_PASSWORD, "123456".to_string()),
    ];
    for (password, code) in refused {
        let page = owner
            .post(
                "/account/mfa/disable",
                &[("csrf", &csrf), ("password", password), ("code", &code)],
            )
            .await;
        assert_ne!(page.status, 200, "{password}/{code}");
    }
    // Still on: the password step still asks for the second factor.
    password_step(&server).await;

    server.clock.advance(30);
    let page = owner
        .post(
            "/account/mfa/backup-codes",
            &[
                ("csrf", &csrf),
                ("password", OWNER_PASSWORD),
                ("code", &code_now(&server, &secret)),
            ],
        )
        .await;
    assert_eq!(page.status, 200);
    let mut old_code = password_step(&server).await;
    assert_eq!(
        second_factor(&mut old_code, &codes[0]).await.status,
        422,
        "old codes are replaced"
    );

    server.clock.advance(30);
    let page = owner
        .post(
            "/account/mfa/disable",
            &[
                ("csrf", &csrf),
                ("password", OWNER_PASSWORD),
                ("code", &code_now(&server, &secret)),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (_, page) = sign_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(
        page.location.as_deref(),
        Some("/"),
        "password only once it is off"
    );
}

#[tokio::test]
async fn no_code_or_key_reaches_the_logs() {
    let logs = crate::common::captured_logs();
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let (secret, codes) = enrol(&server, &mut owner).await;
    let mut browser = password_step(&server).await;
    assert_eq!(second_factor(&mut browser, &codes[0]).await.status, 303);
    server.clock.advance(30);
    let code = code_now(&server, &secret);
    let mut again = password_step(&server).await;
    assert_eq!(second_factor(&mut again, &code).await.status, 303);

    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(text.contains("request finished"));
    let key = totp_rs::Secret::Raw(secret).to_encoded().to_string();
    for secret in codes.iter().chain([&key]) {
        assert!(
            !text.contains(secret.as_str()),
            "reached the logs: {secret}"
        );
    }
    // Six digits also occur by chance inside timestamps and durations, so the one-time
    // code is looked for where a leak would put it: as a value of its own.
    for leaked in [
        format!("\"{code}\""),
        format!("={code}"),
        format!(": {code}"),
    ] {
        assert!(
            !text.contains(&leaked),
            "the one-time code reached the logs"
        );
    }
}

#[tokio::test]
async fn enrolment_survives_a_reload_and_a_backup_code_can_turn_the_factor_off() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let first = set_up(&mut owner).await.body;
    let second = owner.get("/account/mfa").await.body;
    let key = |body: &str| {
        body.split("<code class=\"secret\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        key(&first),
        key(&second),
        "reloading keeps the key just scanned"
    );
    let third = set_up(&mut owner).await.body;
    assert_eq!(
        key(&first),
        key(&third),
        "so does pressing the button again"
    );
    let (_, codes) = enrol(&server, &mut owner).await;
    // Lost authenticator: password plus a backup code turns the factor off.
    let csrf = owner.get("/account/mfa").await.csrf();
    let page = owner
        .post(
            "/account/mfa/disable",
            &[
                ("csrf", &csrf),
                ("password", OWNER_PASSWORD),
                ("code", &codes[5]),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
}

#[tokio::test]
async fn signing_out_at_the_second_factor_step_ends_that_session() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    enrol(&server, &mut owner).await;
    let mut browser = password_step(&server).await;
    let pending = browser.session().unwrap();
    let csrf = browser.get("/sign-in/second-factor").await.csrf();
    assert_eq!(
        browser.post("/sign-out", &[("csrf", &csrf)]).await.status,
        303
    );
    let mut replay = WebClient::new(&server);
    replay
        .cookies
        .insert(crate::common::strongbox_session_cookie().into(), pending);
    let page = replay.get("/sign-in/second-factor").await;
    assert_eq!(page.status, 303, "the pending session is gone");
}

#[actix_web::test]
async fn sign_in_returns_to_the_page_that_asked_through_the_second_factor() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let (secret, _) = enrol(&server, &mut owner).await;
    let mut browser = WebClient::new(&server);
    let form = browser.get("/sign-in?next=%2Faccount%3Ftab%3D1").await;
    assert!(
        form.body.contains("value=\"/account?tab=1\""),
        "{}",
        form.body
    );
    let page = browser
        .post(
            "/sign-in",
            &[
                ("csrf", &form.csrf()),
                ("email", OWNER_EMAIL),
                ("password", OWNER_PASSWORD),
                ("next", "/account?tab=1"),
            ],
        )
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/sign-in/second-factor?next=%2Faccount%3Ftab%3D1")
    );
    let step = browser.get(page.location.as_deref().unwrap()).await;
    assert!(
        step.body.contains("value=\"/account?tab=1\""),
        "{}",
        step.body
    );
    // The enrolment used this time step's code; codes work once.
    server.clock.advance(30);
    let done = browser
        .post(
            "/sign-in/second-factor",
            &[
                ("csrf", &step.csrf()),
                ("code", &code_now(&server, &secret)),
                ("next", "/account?tab=1"),
            ],
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("/account?tab=1"));
}

#[actix_web::test]
async fn sign_in_never_sends_anyone_to_another_site() {
    let server = TestServer::start();
    set_up_owner(&server).await;
    for next in [
        "//evil.example/x",
        "https://evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let mut browser = WebClient::new(&server);
        let form = browser.get("/sign-in").await;
        let page = browser
            .post(
                "/sign-in",
                &[
                    ("csrf", &form.csrf()),
                    ("email", OWNER_EMAIL),
                    ("password", OWNER_PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(page.location.as_deref(), Some("/"), "{next}");
    }
}

/// Opening the second-factor page stores nothing: the secret awaiting its first code is
/// made by the page's button, a post with its CSRF token.
#[tokio::test]
async fn viewing_the_second_factor_page_changes_nothing() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let pending = "SELECT count(*) FROM users WHERE totp_secret IS NOT NULL";
    for _ in 0..3 {
        let page = owner.get("/account/mfa").await;
        assert_eq!(page.status, 200);
        assert!(
            page.body.contains("/account/mfa/setup"),
            "the set-up button"
        );
        assert!(!page.body.contains("<svg"), "no key before the button");
    }
    assert_eq!(server.count(pending, &[]), 0);

    // The button without its CSRF token changes nothing either.
    let refused = owner
        .post("/account/mfa/setup", &[("csrf", "forged")])
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(server.count(pending, &[]), 0);

    set_up(&mut owner).await;
    assert_eq!(server.count(pending, &[]), 1);
}
