//! People over HTTP: first-run setup, sign-up, sign-in, sessions and their ends, CSRF, and
//! one-time links, each attacked the way someone would try to break it.

use crate::common::{OWNER_EMAIL, OWNER_PASSWORD, TestServer, WebClient, set_up_owner, sign_in};

const SIGNED_IN_HOME: &str = "action=\"/sign-out\"";

async fn is_signed_in(browser: &mut WebClient) -> bool {
    let page = browser.get("/").await;
    page.status == 200 && page.body.contains(SIGNED_IN_HOME)
}

#[tokio::test]
async fn first_run_setup_creates_the_owner_once() {
    let server = TestServer::start();
    let link = server.auth.first_run_setup_link().await.unwrap().unwrap();
    let mut owner = crate::common::complete_setup(&server, link.as_str()).await;
    assert!(is_signed_in(&mut owner).await);

    // The link is spent, and no further setup link is issued once an owner exists.
    let mut intruder = WebClient::new(&server);
    let path = link.strip_prefix(&server.origin()).unwrap();
    assert_eq!(intruder.get(path).await.status, 404);
    assert!(server.auth.first_run_setup_link().await.unwrap().is_none());
}

#[tokio::test]
async fn sign_up_is_closed_until_opened_and_then_needs_a_verified_email() {
    let server = TestServer::start();
    set_up_owner(&server).await;
    let mut visitor = WebClient::new(&server);
    let page = visitor
        .submit(
            "/sign-up",
            "/sign-up",
            &[
                ("email", "new@example.com"),
                ("password", "another quite long passphrase"),
            ],
        )
        .await;
    assert_eq!(page.status, 403, "invite-only by default");

    let server =
        TestServer::start_with(|c| c.accounts.signup = strongbox::config::SignupMode::Open);
    set_up_owner(&server).await;
    let mut visitor = WebClient::new(&server);
    let password = "another quite long passphrase";
    let page = visitor
        .submit(
            "/sign-up",
            "/sign-up",
            &[("email", "New@Example.com"), ("password", password)],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    // Until the address is verified, the right password does not sign in.
    // The account is made in the background; its verification email says it exists.
    let first = server.link_in_outbox("new@example.com", "verify");
    let (_, refused) = sign_in(&server, "new@example.com", password).await;
    assert_eq!(refused.status, 403);
    // That attempt sent a fresh link and retired the first.
    let verify =
        server.new_link_in_outbox("new@example.com", "verify", std::slice::from_ref(&first));
    assert_eq!(visitor.get(&first).await.status, 404);
    let confirm = visitor.get(&verify).await;
    let token = verify.split("token=").nth(1).unwrap();
    let verified = visitor
        .post("/verify", &[("csrf", &confirm.csrf()), ("token", token)])
        .await;
    assert_eq!(verified.status, 200);
    let (mut person, page) = sign_in(&server, "new@example.com", password).await;
    assert_eq!(page.status, 303);
    assert!(is_signed_in(&mut person).await);

    // Signing up again with a taken address answers exactly as for a new one.
    let duplicate = visitor
        .submit(
            "/sign-up",
            "/sign-up",
            &[
                ("email", "new@example.com"),
                ("password", "yet another long passphrase"),
            ],
        )
        .await;
    let fresh = visitor
        .submit(
            "/sign-up",
            "/sign-up",
            &[
                ("email", "fresh@example.com"),
                ("password", "a fresh long passphrase"),
            ],
        )
        .await;
    assert_eq!(duplicate.status, 200);
    assert_eq!(
        (duplicate.status, strip_csrf(&duplicate.body)),
        (fresh.status, strip_csrf(&fresh.body))
    );
    let (_, page) = sign_in(&server, "new@example.com", "yet another long passphrase").await;
    assert_eq!(page.status, 401, "the existing account kept its password");
}

/// Pages differ only in their CSRF token; compare the rest.
fn strip_csrf(body: &str) -> String {
    body.lines()
        .filter(|line| !line.contains("name=\"csrf\""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn sign_in_errors_do_not_reveal_whether_an_account_exists() {
    let server = TestServer::start();
    set_up_owner(&server).await;
    let mut browser = WebClient::new(&server);
    let csrf = browser.get("/sign-in").await.csrf();
    let known = browser
        .post(
            "/sign-in",
            &[
                ("csrf", &csrf),
                ("email", OWNER_EMAIL),
                ("password", "wrong password entirely"),
            ],
        )
        .await;
    let unknown = browser
        .post(
            "/sign-in",
            &[
                ("csrf", &csrf),
                ("email", "nobody@example.com"),
                ("password", "wrong password entirely"),
            ],
        )
        .await;
    assert_eq!(known.status, 401);
    assert_eq!((known.status, known.body), (unknown.status, unknown.body));
}

#[tokio::test]
async fn a_signed_out_cookie_replayed_is_rejected() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let stolen = owner.session().expect("signed in");
    let csrf = owner.get("/account").await.csrf();
    let out = owner.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert!(owner.session().is_none(), "the cookie is cleared");

    let mut attacker = WebClient::new(&server);
    attacker
        .cookies
        .insert(crate::common::strongbox_session_cookie().into(), stolen);
    let page = attacker.get("/account").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/sign-in"));
    assert!(!is_signed_in(&mut attacker).await);
}

#[tokio::test]
async fn a_session_id_from_before_sign_in_is_not_valid_after_it() {
    let server = TestServer::start();
    set_up_owner(&server).await;
    // The attacker plants a well-formed session id in the victim's browser.
    let planted = strongbox::crypto::token::issue(strongbox::auth::SESSION_PREFIX)
        .text
        .to_string();
    let mut victim = WebClient::new(&server);
    victim.cookies.insert(
        crate::common::strongbox_session_cookie().into(),
        planted.clone(),
    );
    let page = victim
        .submit(
            "/sign-in",
            "/sign-in",
            &[("email", OWNER_EMAIL), ("password", OWNER_PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 303);
    let issued = victim.session().expect("a new session cookie");
    assert_ne!(issued, planted);

    let mut attacker = WebClient::new(&server);
    attacker
        .cookies
        .insert(crate::common::strongbox_session_cookie().into(), planted);
    assert!(!is_signed_in(&mut attacker).await);
    assert!(is_signed_in(&mut victim).await);
}

#[tokio::test]
async fn signing_in_again_ends_the_session_the_browser_held() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let before = owner.session().expect("signed in");
    let sessions = "SELECT count(*) FROM sessions";
    assert_eq!(server.count(sessions, &[]), 1);

    // The same browser signs in again, with its session still valid.
    let page = owner
        .submit(
            "/sign-in",
            "/sign-in",
            &[("email", OWNER_EMAIL), ("password", OWNER_PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 303);
    let after = owner.session().expect("a new session cookie");
    assert_ne!(after, before);
    assert!(is_signed_in(&mut owner).await);
    assert_eq!(
        server.count(sessions, &[]),
        1,
        "the new session replaced it"
    );

    // Whoever kept the old cookie holds nothing.
    let mut holder = WebClient::new(&server);
    holder
        .cookies
        .insert(crate::common::strongbox_session_cookie().into(), before);
    assert!(!is_signed_in(&mut holder).await);
}

#[tokio::test]
async fn sessions_end_after_idle_and_absolute_timeouts() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    assert!(is_signed_in(&mut owner).await);
    server.clock.advance(29 * 60);
    assert!(
        is_signed_in(&mut owner).await,
        "29 idle minutes is within the timeout"
    );
    server.clock.advance(30 * 60);
    assert!(!is_signed_in(&mut owner).await, "30 idle minutes ends it");
    assert!(owner.session().is_none(), "and the cookie is cleared");

    // Active all along, a session still ends 12 hours after sign-in; its id rotates meanwhile.
    let (mut active, _) = sign_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let first_id = active.session().unwrap();
    let mut ids = vec![first_id.clone()];
    for _ in 0..(12 * 60 / 20 - 1) {
        server.clock.advance(20 * 60);
        assert!(is_signed_in(&mut active).await);
        ids.push(active.session().unwrap());
    }
    ids.dedup();
    assert!(ids.len() > 10, "the id rotates while in use");
    let mut old = WebClient::new(&server);
    old.cookies
        .insert(crate::common::strongbox_session_cookie().into(), first_id);
    assert!(!is_signed_in(&mut old).await, "a rotated-out id is dead");
    server.clock.advance(20 * 60);
    assert!(
        !is_signed_in(&mut active).await,
        "12 hours after sign-in it ends"
    );
}

#[tokio::test]
async fn posts_without_the_right_csrf_token_or_origin_change_nothing() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let csrf = owner.get("/account").await.csrf();
    let new_password = "a different long passphrase";
    type Attempt<'a> = (Option<String>, Vec<(&'a str, &'a str)>);
    let attempts: Vec<Attempt> = vec![
        (
            Some(owner.origin.clone()),
            vec![("current", OWNER_PASSWORD), ("password", new_password)],
        ),
        (
            Some(owner.origin.clone()),
            vec![
                ("csrf", "forged"),
                ("current", OWNER_PASSWORD),
                ("password", new_password),
            ],
        ),
        (
            None,
            vec![
                ("csrf", &csrf),
                ("current", OWNER_PASSWORD),
                ("password", new_password),
            ],
        ),
        (
            Some("https://evil.example".into()),
            vec![
                ("csrf", &csrf),
                ("current", OWNER_PASSWORD),
                ("password", new_password),
            ],
        ),
    ];
    for (origin, fields) in attempts {
        let page = owner
            .post_from(origin.as_deref(), "/account/password", &fields)
            .await;
        assert_eq!(page.status, 403, "{origin:?}");
    }
    for (origin, fields) in [
        (None, vec![("csrf", csrf.as_str())]),
        (Some(owner.origin.clone()), vec![]),
    ] {
        let page = owner
            .post_from(origin.as_deref(), "/sign-out", &fields)
            .await;
        assert_eq!(page.status, 403);
    }
    assert!(is_signed_in(&mut owner).await, "sign-out was refused");
    let (_, page) = sign_in(&server, OWNER_EMAIL, new_password).await;
    assert_eq!(page.status, 401, "the password did not change");
    let (_, page) = sign_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(page.status, 303);

    // A token from another session does not work either.
    let (mut other, _) = sign_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let other_csrf = other.get("/account").await.csrf();
    let page = owner
        .post(
            "/account/password",
            &[
                ("csrf", &other_csrf),
                ("current", OWNER_PASSWORD),
                ("password", new_password),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
}

pub(crate) async fn use_link(
    browser: &mut WebClient,
    link: &str,
    action: &str,
    extra: &[(&str, &str)],
) -> crate::common::Page {
    let confirm = browser.get(link).await;
    let token = link.split("token=").nth(1).unwrap();
    // A dead link's page has no form; any page of this browser carries its token.
    let csrf = match confirm.try_csrf() {
        Some(csrf) => csrf,
        None => browser.get("/sign-in").await.csrf(),
    };
    let mut fields = vec![("csrf", csrf.as_str()), ("token", token)];
    fields.extend_from_slice(extra);
    browser.post(action, &fields).await
}

#[tokio::test]
async fn reset_links_work_once_and_not_after_expiry_and_end_every_session() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let mut someone = WebClient::new(&server);
    let sent = someone
        .submit(
            "/forgot-password",
            "/forgot-password",
            &[("email", OWNER_EMAIL)],
        )
        .await;
    let unknown = someone
        .submit(
            "/forgot-password",
            "/forgot-password",
            &[("email", "ghost@example.com")],
        )
        .await;
    assert_eq!(
        (sent.status, strip_csrf(&sent.body)),
        (unknown.status, strip_csrf(&unknown.body))
    );

    let link = server.link_in_outbox(OWNER_EMAIL, "reset-password");
    let new_password = "the new owner passphrase";
    let page = use_link(
        &mut someone,
        &link,
        "/reset-password",
        &[("password", new_password)],
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        !is_signed_in(&mut owner).await,
        "a reset ends every session"
    );
    let again = use_link(
        &mut someone,
        &link,
        "/reset-password",
        &[("password", "a third long passphrase")],
    )
    .await;
    assert_eq!(again.status, 422, "the link works once");
    let (_, page) = sign_in(&server, OWNER_EMAIL, new_password).await;
    assert_eq!(page.status, 303);

    // Other mail (the notice that the password changed) may land first: wait for a reset
    // link not seen before.
    let earlier = server.links_in_outbox(OWNER_EMAIL, "reset-password");
    someone
        .submit(
            "/forgot-password",
            "/forgot-password",
            &[("email", OWNER_EMAIL)],
        )
        .await;
    let late = server.new_link_in_outbox(OWNER_EMAIL, "reset-password", &earlier);
    assert_ne!(late, link);
    server.clock.advance(15 * 60 + 1);
    let expired = use_link(
        &mut someone,
        &late,
        "/reset-password",
        &[("password", "a fourth long passphrase")],
    )
    .await;
    assert_eq!(expired.status, 422, "expired after 15 minutes");
    let (_, page) = sign_in(&server, OWNER_EMAIL, new_password).await;
    assert_eq!(page.status, 303);
}

#[tokio::test]
async fn magic_and_verify_links_work_once() {
    let server = TestServer::start();
    set_up_owner(&server).await;
    let mut browser = WebClient::new(&server);
    browser
        .submit("/magic-link", "/magic-link", &[("email", OWNER_EMAIL)])
        .await;
    let link = server.link_in_outbox(OWNER_EMAIL, "magic-link/confirm");
    // Opening the link (as a mail scanner would) does not use it.
    assert_eq!(WebClient::new(&server).get(&link).await.status, 200);
    let page = use_link(&mut browser, &link, "/magic-link/confirm", &[]).await;
    assert_eq!(page.status, 303);
    assert!(is_signed_in(&mut browser).await);
    let mut second = WebClient::new(&server);
    assert_eq!(second.get(&link).await.status, 404);
    let page = use_link(&mut second, &link, "/magic-link/confirm", &[]).await;
    assert_eq!(page.status, 422);
    assert!(!is_signed_in(&mut second).await);

    let verify = server.link_in_outbox(OWNER_EMAIL, "verify");
    let page = use_link(&mut second, &verify, "/verify", &[]).await;
    assert_eq!(
        page.status, 422,
        "the owner's verify link was used by set-up"
    );
}

#[tokio::test]
async fn password_change_and_sign_out_everywhere_end_other_sessions() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let (mut laptop, _) = sign_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let account = owner.get("/account").await;
    assert_eq!(
        account.body.matches("<tr><td>").count(),
        2,
        "two sessions listed"
    );
    let new_password = "a brand new owner passphrase";
    let page = owner
        .post(
            "/account/password",
            &[
                ("csrf", &account.csrf()),
                ("current", OWNER_PASSWORD),
                ("password", new_password),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(is_signed_in(&mut owner).await, "this session stays");
    assert!(!is_signed_in(&mut laptop).await, "the other one ends");

    let (mut phone, _) = sign_in(&server, OWNER_EMAIL, new_password).await;
    let csrf = owner.get("/account").await.csrf();
    let page = owner
        .post("/account/sign-out-everywhere", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 303);
    assert!(!is_signed_in(&mut owner).await);
    assert!(!is_signed_in(&mut phone).await);
}

#[tokio::test]
async fn weak_passwords_are_refused() {
    let server =
        TestServer::start_with(|c| c.accounts.signup = strongbox::config::SignupMode::Open);
    set_up_owner(&server).await;
    let mut visitor = WebClient::new(&server);
    for weak in ["short", "password1234", "qwertyuiop12"] {
        let page = visitor
            .submit(
                "/sign-up",
                "/sign-up",
                &[("email", "weak@example.com"), ("password", weak)],
            )
            .await;
        assert_eq!(page.status, 422, "{weak}");
    }
    assert!(
        server
            .outbox()
            .iter()
            .all(|m| !m.contains("weak@example.com")),
        "no account was made"
    );
}

#[tokio::test]
async fn no_password_code_token_or_link_reaches_the_logs() {
    let logs = crate::common::captured_logs();
    let server =
        TestServer::start_with(|c| c.accounts.signup = strongbox::config::SignupMode::Open);
    let mut owner = set_up_owner(&server).await;
    let mut secrets: Vec<String> = vec![OWNER_PASSWORD.into(), owner.session().unwrap()];
    // Failed and successful sign-ins, a reset, a magic link, a password change.
    let (_, _) = sign_in(&server, OWNER_EMAIL, "a wrong but long password").await;
    let mut visitor = WebClient::new(&server);
    visitor
        .submit(
            "/forgot-password",
            "/forgot-password",
            &[("email", OWNER_EMAIL)],
        )
        .await;
    let reset = server.link_in_outbox(OWNER_EMAIL, "reset-password");
    let new_password = "logs must never hold this";
    use_link(
        &mut visitor,
        &reset,
        "/reset-password",
        &[("password", new_password)],
    )
    .await;
    visitor
        .submit("/magic-link", "/magic-link", &[("email", OWNER_EMAIL)])
        .await;
    let magic = server.link_in_outbox(OWNER_EMAIL, "magic-link/confirm");
    use_link(&mut visitor, &magic, "/magic-link/confirm", &[]).await;
    let csrf = visitor.get("/account").await.csrf();
    let changed = "and neither may this one";
    visitor
        .post(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", new_password),
                ("password", changed),
            ],
        )
        .await;
    secrets.extend([
        new_password.into(),
        changed.into(),
        csrf,
        visitor.session().unwrap(),
    ]);
    for link in [reset, magic, server.link_in_outbox(OWNER_EMAIL, "verify")] {
        secrets.push(link.split("token=").nth(1).unwrap().to_string());
        secrets.push(link);
    }
    // An invitation, accepted by someone new.
    let workspace = visitor
        .submit("/", "/workspaces", &[("name", "Logged")])
        .await;
    let id = workspace
        .location
        .unwrap()
        .trim_start_matches("/w/")
        .to_string();
    let members = format!("/w/{id}/members");
    visitor
        .submit(
            &members,
            &format!("/w/{id}/invites"),
            &[("email", "guest@example.com"), ("role", "viewer")],
        )
        .await;
    let invite = server.link_in_outbox("guest@example.com", "invite");
    let mut guest = WebClient::new(&server);
    let form = guest.get(&invite).await;
    let token = invite.split("token=").nth(1).unwrap().to_string();
    let guest_password = "the guest's private passphrase";
    guest
        .post(
            "/invite/sign-up",
            &[
                ("csrf", &form.csrf()),
                ("token", &token),
                ("password", guest_password),
            ],
        )
        .await;
    secrets.extend([
        invite,
        token,
        guest_password.into(),
        guest.session().unwrap(),
    ]);
    owner.get("/").await;

    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(text.contains("request finished"), "logs were captured");
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret reached the logs: {secret}"
        );
    }
}

#[tokio::test]
async fn attempts_on_one_account_and_from_one_address_are_throttled() {
    let server = TestServer::start_with(|c| {
        c.rate_limits.account.per_minute = 1;
        c.rate_limits.account.burst = 3;
    });
    set_up_owner(&server).await;
    for attempt in 0..3 {
        let (_, page) = sign_in(&server, OWNER_EMAIL, "not the password at all").await;
        assert_eq!(page.status, 401, "attempt {attempt}");
    }
    // Even the right password waits now: the account's budget is spent.
    let (_, page) = sign_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(page.status, 429);
    assert!(page.headers.contains_key("retry-after"));
    // Another account is unaffected.
    let (_, page) = sign_in(
        &server,
        "someone.else@example.com",
        "not the password at all",
    )
    .await;
    assert_eq!(page.status, 401);

    let server = TestServer::start_with(|c| {
        c.rate_limits.auth.per_minute = 2;
        c.rate_limits.auth.burst = 2;
    });
    let mut browser = WebClient::new(&server);
    let csrf = browser.get("/sign-in").await.csrf();
    let mut statuses = Vec::new();
    for n in 0..3 {
        let email = format!("spray{n}@example.com");
        let page = browser
            .post(
                "/sign-in",
                &[
                    ("csrf", &csrf),
                    ("email", &email),
                    ("password", "guessing passwords"),
                ],
            )
            .await;
        statuses.push(page.status.as_u16());
    }
    assert_eq!(
        statuses,
        [401, 401, 429],
        "per-address budget for sign-in posts"
    );
    assert_eq!(
        browser.get("/sign-in").await.status,
        200,
        "loading the form is not an attempt"
    );
}

#[tokio::test]
async fn session_cookies_are_host_only_secure_http_only_and_lax_and_mail_is_private() {
    let server = TestServer::start();
    set_up_owner(&server).await;
    let mut browser = WebClient::new(&server);
    let page = browser
        .submit(
            "/sign-in",
            "/sign-in",
            &[("email", OWNER_EMAIL), ("password", OWNER_PASSWORD)],
        )
        .await;
    let cookie = page
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("__Host-sbx_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.to_lowercase().contains("domain="), "{cookie}");
    let value = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("__Host-sbx_session=");
    assert_eq!(value.len(), "sbx_sess_".len() + 43, "256 random bits");

    use std::os::unix::fs::PermissionsExt;
    let outbox = server.dir.config.outbox_dir();
    assert_eq!(
        std::fs::metadata(&outbox).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for mail in crate::common::files_under(&outbox) {
        assert!(mail.extension().is_some_and(|e| e == "eml"));
        assert_eq!(
            std::fs::metadata(&mail).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[tokio::test]
async fn magic_and_verify_links_expire_after_fifteen_minutes() {
    let server =
        TestServer::start_with(|c| c.accounts.signup = strongbox::config::SignupMode::Open);
    set_up_owner(&server).await;
    let mut browser = WebClient::new(&server);
    browser
        .submit("/magic-link", "/magic-link", &[("email", OWNER_EMAIL)])
        .await;
    let magic = server.link_in_outbox(OWNER_EMAIL, "magic-link/confirm");
    browser
        .submit(
            "/sign-up",
            "/sign-up",
            &[
                ("email", "slow@example.com"),
                ("password", "a slow person's passphrase"),
            ],
        )
        .await;
    let verify = server.link_in_outbox("slow@example.com", "verify");
    server.clock.advance(15 * 60);
    assert_eq!(
        use_link(&mut browser, &magic, "/magic-link/confirm", &[])
            .await
            .status,
        422
    );
    assert_eq!(
        use_link(&mut browser, &verify, "/verify", &[]).await.status,
        422
    );
    assert!(!is_signed_in(&mut browser).await);
}

#[tokio::test]
async fn rotation_keeps_open_forms_working_and_parallel_requests_signed_in() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    // A form loaded before the id rotates still posts after it.
    let stale_csrf = owner.get("/account").await.csrf();
    server.clock.advance(16 * 60);
    let before = owner.session().unwrap();
    assert!(is_signed_in(&mut owner).await);
    assert_ne!(owner.session().unwrap(), before, "the id rotated");
    let page = owner
        .post("/account/sign-out-everywhere", &[("csrf", &stale_csrf)])
        .await;
    assert_eq!(
        page.status, 303,
        "the form from before the rotation still works"
    );

    // Several requests in flight when the id rotates: none is signed out.
    let (browser, _) = sign_in(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    server.clock.advance(16 * 60);
    let cookie = browser.session().unwrap();
    let requests: Vec<_> = (0..4)
        .map(|_| {
            let mut copy = WebClient::new(&server);
            copy.cookies.insert(
                crate::common::strongbox_session_cookie().into(),
                cookie.clone(),
            );
            tokio::spawn(async move {
                let page = copy.get("/account").await;
                (page.status.as_u16(), copy.session())
            })
        })
        .collect();
    let mut results = Vec::new();
    for request in requests {
        results.push(request.await.unwrap());
    }
    assert!(
        results.iter().all(|(status, _)| *status == 200),
        "{results:?}"
    );
    assert!(
        results.iter().all(|(_, cookie)| cookie.is_some()),
        "no response cleared the cookie"
    );
}

#[tokio::test]
async fn open_sign_up_waits_for_the_first_owner() {
    let server =
        TestServer::start_with(|c| c.accounts.signup = strongbox::config::SignupMode::Open);
    let mut early = WebClient::new(&server);
    let page = early
        .submit(
            "/sign-up",
            "/sign-up",
            &[
                ("email", "early@example.com"),
                ("password", "an early bird's passphrase"),
            ],
        )
        .await;
    assert_eq!(page.status, 403, "no sign-up before the owner exists");
    let link = server.auth.first_run_setup_link().await.unwrap().unwrap();
    crate::common::complete_setup(&server, link.as_str()).await;
    // Once an owner exists, even an unused setup link is dead.
    let fresh = strongbox::crypto::token::issue("sbx_setup_");
    assert_eq!(
        early
            .get(&format!("/setup?token={}", fresh.text.as_str()))
            .await
            .status,
        404
    );
}
