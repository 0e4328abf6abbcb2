//! Workspaces over HTTP: creation, invitations, roles, the owner rule, and tenant isolation
//! attacked route by route.

use crate::common::{
    Agent, OWNER_EMAIL, TestServer, WebClient, approve, create_workspace, new_flow, pairing_code,
    set_up_owner, sign_in,
};

pub(crate) const MEMBER_PASSWORD: &str = "the invited member's passphrase";

/// Invites `email` with `role`; returns the invitation link from the outbox.
pub(crate) async fn invite(
    server: &TestServer,
    browser: &mut WebClient,
    id: &str,
    email: &str,
    role: &str,
) -> String {
    let members = format!("/w/{id}/members");
    // An earlier invitation's link to the same address is not this one's.
    let earlier = server.links_in_outbox(email, "invite");
    let page = browser
        .submit(
            &members,
            &format!("/w/{id}/invites"),
            &[("email", email), ("role", role)],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    server.new_link_in_outbox(email, "invite", &earlier)
}

/// Signs up through an invitation link; returns the new member's browser.
pub(crate) async fn join_by_invite(server: &TestServer, link: &str) -> WebClient {
    let mut browser = WebClient::new(server);
    let page = browser.get(link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = link.split("token=").nth(1).unwrap();
    let done = browser
        .post(
            "/invite/sign-up",
            &[
                ("csrf", &page.csrf()),
                ("token", token),
                ("password", MEMBER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    browser
}

pub(crate) fn member_id(members_page: &str, email: &str) -> String {
    let row = members_page
        .split("<tr>")
        .find(|row| row.contains(&format!("<td>{email}</td>")))
        .expect("member row");
    let start = row
        .find("/members/")
        .unwrap_or_else(|| panic!("no member link in {row}"))
        + "/members/".len();
    row[start..start + 36].to_string()
}

#[tokio::test]
async fn a_workspace_is_created_with_its_own_encrypted_database_and_renamed() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let id = create_workspace(&mut owner, "Acme Books").await;
    let home = owner.get("/").await;
    assert!(home.body.contains("Acme Books") && home.body.contains(&id));
    let db = server
        .dir
        .data_dir()
        .join(format!("workspaces/{id}/workspace.db"));
    assert!(db.exists());
    assert!(!crate::common::contains(
        &std::fs::read(&db).unwrap(),
        b"SQLite format 3"
    ));

    let page = owner
        .submit(
            &format!("/w/{id}"),
            &format!("/w/{id}/rename"),
            &[("name", "Acme Ltd")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert!(
        owner
            .get(&format!("/w/{id}"))
            .await
            .body
            .contains("Acme Ltd")
    );
    let page = owner
        .submit(
            &format!("/w/{id}"),
            &format!("/w/{id}/rename"),
            &[("name", "   ")],
        )
        .await;
    assert_eq!(page.status, 422);
}

#[tokio::test]
async fn an_invited_viewer_joins_and_cannot_change_roles() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let id = create_workspace(&mut owner, "Shared").await;
    let link = invite(&server, &mut owner, &id, "viewer@example.com", "viewer").await;
    let mut viewer = join_by_invite(&server, &link).await;
    let page = viewer.get(&format!("/w/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Your role: viewer"));

    let members = owner.get(&format!("/w/{id}/members")).await.body;
    let owner_id = member_id(&members, OWNER_EMAIL);
    let viewer_id = member_id(&members, "viewer@example.com");
    let csrf = viewer.get(&format!("/w/{id}/members")).await.csrf();
    for (target, role) in [(&viewer_id, "admin"), (&owner_id, "viewer")] {
        let page = viewer
            .post(
                &format!("/w/{id}/members/{target}/role"),
                &[("csrf", &csrf), ("role", role)],
            )
            .await;
        assert_eq!(page.status, 403);
    }
    let page = viewer
        .post(
            &format!("/w/{id}/invites"),
            &[
                ("csrf", &csrf),
                ("email", "x@example.com"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
    let page = viewer
        .post(
            &format!("/w/{id}/members/{owner_id}/remove"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(
        owner.get(&format!("/w/{id}/members")).await.body,
        members,
        "nothing changed"
    );

    // The link was used.
    assert_eq!(WebClient::new(&server).get(&link).await.status, 404);
}

#[tokio::test]
async fn invitations_are_bound_to_their_address_and_expire() {
    let server =
        TestServer::start_with(|c| c.accounts.signup = strongbox::config::SignupMode::Open);
    let mut owner = set_up_owner(&server).await;
    let id = create_workspace(&mut owner, "Bound").await;
    let link = invite(&server, &mut owner, &id, "invited@example.com", "member").await;
    // The owner (another address) cannot accept it.
    let page = owner.get(&link).await;
    let token = link.split("token=").nth(1).unwrap();
    let page = owner
        .post(
            "/invite/accept",
            &[("csrf", &page.csrf()), ("token", token)],
        )
        .await;
    assert_eq!(page.status, 422);

    let late = invite(&server, &mut owner, &id, "late@example.com", "member").await;
    server.clock.advance(7 * 24 * 60 * 60 + 1);
    assert_eq!(
        WebClient::new(&server).get(&late).await.status,
        404,
        "expired after 7 days"
    );
    let mut browser = WebClient::new(&server);
    let csrf = browser.get("/sign-in").await.csrf();
    let token = late.split("token=").nth(1).unwrap();
    let page = browser
        .post(
            "/invite/sign-up",
            &[
                ("csrf", &csrf),
                ("token", token),
                ("password", MEMBER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 422);
    let (_, page) = sign_in(&server, "late@example.com", MEMBER_PASSWORD).await;
    assert_eq!(page.status, 401, "no account was made");
}

#[tokio::test]
async fn a_workspace_always_keeps_an_owner() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let id = create_workspace(&mut owner, "Owned").await;
    let members = owner.get(&format!("/w/{id}/members")).await;
    let owner_id = member_id(&members.body, OWNER_EMAIL);
    let csrf = members.csrf();
    let page = owner
        .post(&format!("/w/{id}/leave"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 409);
    let page = owner
        .post(
            &format!("/w/{id}/members/{owner_id}/role"),
            &[("csrf", &csrf), ("role", "admin")],
        )
        .await;
    assert_eq!(page.status, 409);

    // An admin cannot make owners or demote the owner; a second owner lets the first go.
    let link = invite(&server, &mut owner, &id, "admin@example.com", "admin").await;
    let mut admin = join_by_invite(&server, &link).await;
    let members = owner.get(&format!("/w/{id}/members")).await.body;
    let admin_id = member_id(&members, "admin@example.com");
    let admin_csrf = admin.get(&format!("/w/{id}/members")).await.csrf();
    for (target, role) in [(&admin_id, "owner"), (&owner_id, "member")] {
        let page = admin
            .post(
                &format!("/w/{id}/members/{target}/role"),
                &[("csrf", &admin_csrf), ("role", role)],
            )
            .await;
        assert_eq!(page.status, 403, "{target} -> {role}");
    }
    let page = owner
        .post(
            &format!("/w/{id}/members/{admin_id}/role"),
            &[("csrf", &csrf), ("role", "owner")],
        )
        .await;
    assert_eq!(page.status, 303);
    let page = owner
        .post(&format!("/w/{id}/leave"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        owner.get(&format!("/w/{id}")).await.status,
        404,
        "gone after leaving"
    );
}

/// Fills a route pattern with the victim's ids.
/// The objects of one workspace that routes name: filled into each route pattern.
struct Objects {
    workspace: String,
    user: String,
    invite: String,
    pairing_code: String,
    agent: String,
    token: String,
    grant: String,
}

/// Gives a workspace an agent with a synced record (`customers`/`c1`), a pending pairing
/// code, a masking rule (`Acme`) and a personal token, so every data route has something
/// real to aim at, and an AI client's grant. Returns the code's hash, the agent's id, the
/// token's id and the grant's id.
async fn populate(
    server: &TestServer,
    browser: &mut WebClient,
    workspace: &str,
) -> (String, String, String, String) {
    let code = pairing_code(browser, workspace, "Desk").await;
    let agent = Agent::pair(server, &code).await;
    let batch = serde_json::json!({"idempotency_key": "matrix-1", "changes": [
        {"collection": "customers", "id": "c1", "op": "upsert", "data": {"name": "Ada"}}]});
    assert_eq!(agent.sync(&batch).await.status(), 200);
    pairing_code(browser, workspace, "Spare").await;
    let agents_page = browser.get(&format!("/w/{workspace}/agents")).await.body;
    let marker = "/pairing-codes/";
    let start = agents_page.find(marker).expect("a pending code") + marker.len();
    let rule = browser
        .submit(
            &format!("/w/{workspace}/masking"),
            &format!("/w/{workspace}/masking/rules"),
            &[("term", "Acme"), ("action", "redact")],
        )
        .await;
    assert_eq!(rule.status, 303, "{}", rule.body);
    let tokens = browser
        .submit(
            &format!("/w/{workspace}/tokens"),
            &format!("/w/{workspace}/tokens"),
            &[("name", "matrix"), ("access", "read")],
        )
        .await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let marker = "/tokens/";
    let token_start = tokens.body.find(marker).expect("a token") + marker.len();
    let flow = new_flow(server).await;
    approve(server, browser, &flow, workspace).await;
    let clients = browser
        .get(&format!("/w/{workspace}/ai-clients"))
        .await
        .body;
    let marker = "/ai-clients/";
    let grant_start = clients.find(marker).expect("a grant") + marker.len();
    (
        agents_page[start..start + 64].to_string(),
        agent.id,
        tokens.body[token_start..token_start + 16].to_string(),
        clients[grant_start..grant_start + 32].to_string(),
    )
}

fn concrete(pattern: &str, o: &Objects) -> String {
    let path = pattern
        .replace("{id}", &o.workspace)
        .replace("{user}", &o.user)
        .replace("{invite}", &o.invite)
        .replace("{code}", &o.pairing_code)
        .replace("{agent}", &o.agent)
        .replace("{token}", &o.token)
        .replace("{grant}", &o.grant)
        .replace("{collection}", "customers");
    // Query-string parameters for the routes that read them.
    format!("{path}?id=c1&q=Ada")
}

/// The id of the first pending invitation on a members page.
fn invite_id(members_page: &str) -> String {
    let marker = "/invites/";
    let start = members_page.find(marker).expect("a pending invitation") + marker.len();
    members_page[start..start + 64].to_string()
}

#[tokio::test]
async fn a_non_member_gets_404_on_every_workspace_route() {
    let server =
        TestServer::start_with(|c| c.accounts.signup = strongbox::config::SignupMode::Open);
    let mut alice = set_up_owner(&server).await;
    let victim = create_workspace(&mut alice, "Alice ledger").await;
    let alice_members = alice.get(&format!("/w/{victim}/members")).await.body;
    let alice_id = member_id(&alice_members, OWNER_EMAIL);
    invite(&server, &mut alice, &victim, "dave@example.com", "viewer").await;
    let alice_invite = invite_id(&alice.get(&format!("/w/{victim}/members")).await.body);
    let (code, agent, token, grant) = populate(&server, &mut alice, &victim).await;
    let alice_objects = Objects {
        workspace: victim.clone(),
        user: alice_id.clone(),
        invite: alice_invite,
        pairing_code: code,
        agent,
        token,
        grant,
    };
    let alice_members = alice.get(&format!("/w/{victim}/members")).await.body;

    // Bob is a real, signed-in user with a workspace of his own.
    let scratch = create_workspace(&mut alice, "Scratch").await;
    let link = invite(&server, &mut alice, &scratch, "bob@example.com", "member").await;
    let mut bob = join_by_invite(&server, &link).await;
    let bobs_own = create_workspace(&mut bob, "Bob's").await;
    let bob_members = bob.get(&format!("/w/{bobs_own}/members")).await.body;
    let bob_id = member_id(&bob_members, "bob@example.com");
    let (code, agent, token, grant) = populate(&server, &mut bob, &bobs_own).await;
    let mut bob_objects = Objects {
        workspace: bobs_own.clone(),
        user: bob_id.clone(),
        invite: String::new(),
        pairing_code: code,
        agent,
        token,
        grant,
    };
    let csrf = bob.get("/").await.csrf();
    // Every field any workspace form reads; each route takes what it needs.
    let form = |name: &str| -> Vec<(&'static str, String)> {
        vec![
            ("csrf", csrf.clone()),
            ("name", String::from(name)),
            ("role", "viewer".into()),
            ("email", "carol@example.com".into()),
            ("id", "c1".into()),
            ("term", "Acme".into()),
            ("action", "redact".into()),
            ("text", "ada@example.com".into()),
            ("required", "true".into()),
            ("access", "read".into()),
        ]
    };

    assert!(!strongbox::http::WORKSPACE_ROUTES.is_empty());
    for (method, pattern) in strongbox::http::WORKSPACE_ROUTES {
        let path = concrete(pattern, &alice_objects);
        let page = match *method {
            "GET" => bob.get(&path).await,
            _ => {
                let fields = form("pwned");
                let fields: Vec<(&str, &str)> =
                    fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                bob.post(&path, &fields).await
            }
        };
        assert_eq!(
            page.status, 404,
            "{method} {pattern} leaked to a non-member"
        );
        // The same route on Bob's own workspace (aimed at Bob himself) is not a 404: the
        // matrix attacks real routes, not typos.
        if pattern.contains("{invite}") {
            bob_objects.invite = invite_id(&bob.get(&format!("/w/{bobs_own}/members")).await.body);
        }
        let own = concrete(pattern, &bob_objects);
        let status = match *method {
            "GET" => bob.get(&own).await.status,
            _ => {
                let fields = form("Bob's");
                let fields: Vec<(&str, &str)> =
                    fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
                bob.post(&own, &fields).await.status
            }
        };
        assert_ne!(status, 404, "{method} {pattern} is not a real route");
    }
    // A malformed or unknown id is the same 404.
    assert_eq!(bob.get("/w/not-a-uuid").await.status, 404);
    assert_eq!(
        bob.get(&format!("/w/{}", uuid::Uuid::new_v4()))
            .await
            .status,
        404
    );
    assert_eq!(
        alice.get(&format!("/w/{victim}/members")).await.body,
        alice_members,
        "nothing changed"
    );
    assert!(
        alice
            .get(&format!("/w/{victim}"))
            .await
            .body
            .contains("Alice ledger")
    );
}

#[tokio::test]
async fn exports_are_json_in_memory_and_limited_to_three_an_hour() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let id = create_workspace(&mut owner, "Export me").await;
    let link = invite(&server, &mut owner, &id, "viewer@example.com", "viewer").await;
    let mut viewer = join_by_invite(&server, &link).await;
    let overview = format!("/w/{id}");
    let action = format!("/w/{id}/export");
    // A record in the workspace's database travels in the export.
    {
        use strongbox::workspace::records::{
            CollectionName, RecordData, RecordId, RecordLimits, upsert,
        };
        let limits = RecordLimits {
            max_record_bytes: 4096,
            max_fields: 16,
        };
        let data = RecordData::new(serde_json::json!({"customer": "Ada"}), limits).unwrap();
        let db = server.store.workspace(id.parse().unwrap()).unwrap();
        db.write(|tx| {
            let (collection, record) = (
                CollectionName::parse("invoices").unwrap(),
                RecordId::parse("inv-1").unwrap(),
            );
            let shown = strongbox::workspace::shown::ShownWriter::open(tx)?;
            Ok::<_, strongbox::workspace::WorkspaceError>(upsert(
                tx,
                &shown,
                &collection,
                &record,
                &data,
                1,
            )?)
        })
        .unwrap();
    }
    for n in 0..3 {
        let page = owner.submit(&overview, &action, &[]).await;
        assert_eq!(page.status, 200, "export {n}");
        assert!(
            page.headers["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        let archive: serde_json::Value = serde_json::from_str(&page.body).unwrap();
        assert_eq!(archive["format"], "strongbox-export");
        assert_eq!(archive["workspace"]["name"], "Export me");
        let emails: Vec<&str> = archive["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["email"].as_str().unwrap())
            .collect();
        assert_eq!(emails, [OWNER_EMAIL, "viewer@example.com"]);
        assert_eq!(archive["records"][0]["collection"], "invoices");
        assert_eq!(archive["records"][0]["data"]["customer"], "Ada");
    }
    let fourth = owner.submit(&overview, &action, &[]).await;
    assert_eq!(fourth.status, 429);
    let retry: u64 = fourth.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry));
    let viewer_try = viewer.submit(&overview, &action, &[]).await;
    assert_eq!(viewer_try.status, 403, "viewers cannot export");
    server.clock.advance(3601);
    // An idle hour also ended the session; sign in again.
    let (mut owner, _) = sign_in(&server, OWNER_EMAIL, crate::common::OWNER_PASSWORD).await;
    assert_eq!(
        owner.submit(&overview, &action, &[]).await.status,
        200,
        "the hour passed"
    );

    for file in crate::common::files_under(server.dir.data_dir()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !crate::common::contains(&bytes, b"strongbox-export"),
            "export on disk: {}",
            file.display()
        );
    }
}

/// An export over the hourly limit is refused before anything is read: with the
/// workspace's database gone from the disk (and from the cache of open ones), a fourth
/// export and a fourth "Download my data" still answer 429, not a failure to read it.
#[tokio::test]
async fn an_export_over_the_limit_is_refused_before_it_is_built() {
    let server = TestServer::start_with(|c| c.storage.workspace_cache_size = 1);
    let mut owner = set_up_owner(&server).await;
    let id = create_workspace(&mut owner, "Export me").await;
    let other = create_workspace(&mut owner, "Other").await;
    async fn export(browser: &mut WebClient, id: &str) -> reqwest::StatusCode {
        let (overview, action) = (format!("/w/{id}"), format!("/w/{id}/export"));
        browser.submit(&overview, &action, &[]).await.status
    }
    for _ in 0..3 {
        assert_eq!(export(&mut owner, &id).await, 200);
        assert_eq!(
            owner.submit("/account", "/account/data", &[]).await.status,
            200
        );
    }
    // Opening the other workspace closes this one; then its files go.
    assert_eq!(export(&mut owner, &other).await, 200);
    let dir = server.dir.data_dir().join("workspaces").join(&id);
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(export(&mut owner, &id).await, 429);
    assert_eq!(
        owner.submit("/account", "/account/data", &[]).await.status,
        429
    );
}

/// A form whose values are not UTF-8 is refused, not saved with U+FFFD in place of the
/// bytes; a page number past the last page is refused rather than overflowing.
#[tokio::test]
async fn malformed_form_and_query_input_is_refused_and_changes_nothing() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let id = create_workspace(&mut owner, "Kept").await;
    let csrf = owner.get("/").await.csrf();
    let workspaces = "SELECT count(*) FROM workspaces";
    let before = server.count(workspaces, &[]);
    for name in ["%FF%FE", "ok%C3", "%ED%A0%80"] {
        let page = owner
            .post_raw("/workspaces", &format!("csrf={csrf}&name={name}"))
            .await;
        assert_eq!(page.status, 400, "{name}");
    }
    let rename = format!("/w/{id}/rename");
    let page = owner
        .post_raw(&rename, &format!("csrf={csrf}&name=%FF"))
        .await;
    assert_eq!(page.status, 400);
    assert_eq!(server.count(workspaces, &[]), before);
    let names = "SELECT count(*) FROM workspaces WHERE name = 'Kept'";
    assert_eq!(server.count(names, &[]), 1, "the name is as it was");

    for path in [
        format!("/w/{id}/records/customers?page=4294967295"),
        format!("/w/{id}/records/customers?page=1001"),
        format!("/w/{id}/search?q=x&page=4294967295"),
        format!("/w/{id}/search?q=%FF"),
        "/sign-in?next=%FF".to_string(),
    ] {
        assert_eq!(owner.get(&path).await.status, 400, "{path}");
    }
    assert_eq!(
        owner
            .get(&format!("/w/{id}/search?q=x&page=1000"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn closing_a_workspace_holds_it_thirty_days_and_can_be_cancelled() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let id = create_workspace(&mut owner, "Closable").await;
    let overview = format!("/w/{id}");
    let close = format!("/w/{id}/close");
    let page = owner
        .submit(&overview, &close, &[("name", "Not the name")])
        .await;
    assert_eq!(page.status, 422);
    assert!(!owner.get(&overview).await.body.contains("is closing"));

    let link = invite(&server, &mut owner, &id, "late@example.com", "member").await;
    let page = owner
        .submit(&overview, &close, &[("name", "Closable")])
        .await;
    assert_eq!(page.status, 303);
    let deadline = strongbox::clock::Clock::now(server.clock.as_ref()) + 30 * 24 * 3600;
    let date = actix_web::cookie::time::OffsetDateTime::from_unix_timestamp(deadline)
        .unwrap()
        .date()
        .to_string();
    let body = owner.get(&overview).await.body;
    assert!(
        body.contains(&format!("will be deleted on {date}")),
        "{body}"
    );
    assert_eq!(
        WebClient::new(&server).get(&link).await.status,
        404,
        "no joining a closing workspace"
    );

    let page = owner
        .submit(&overview, &format!("/w/{id}/reopen"), &[])
        .await;
    assert_eq!(page.status, 303);
    assert!(!owner.get(&overview).await.body.contains("is closing"));
}

#[tokio::test]
async fn closing_an_account_ends_its_sessions_and_can_be_cancelled() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let id = create_workspace(&mut owner, "Kept").await;
    let page = owner
        .submit(
            "/account",
            "/account/close",
            &[("password", crate::common::OWNER_PASSWORD)],
        )
        .await;
    assert_eq!(
        page.status, 409,
        "the only owner of a workspace cannot leave it ownerless"
    );

    let link = invite(&server, &mut owner, &id, "member@example.com", "member").await;
    let mut member = join_by_invite(&server, &link).await;
    let page = member
        .submit(
            "/account",
            "/account/close",
            &[("password", "not the password")],
        )
        .await;
    assert_eq!(page.status, 401);
    assert_eq!(member.get("/account").await.status, 200, "nothing changed");
    let page = member
        .submit(
            "/account",
            "/account/close",
            &[("password", MEMBER_PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(
        member.get("/account").await.status,
        303,
        "every session ended"
    );

    let (mut back, _) = sign_in(&server, "member@example.com", MEMBER_PASSWORD).await;
    let account = back.get("/account").await;
    assert!(account.body.contains("will be deleted on"));
    let page = back
        .post("/account/reopen", &[("csrf", &account.csrf())])
        .await;
    assert_eq!(page.status, 303);
    assert!(
        !back
            .get("/account")
            .await
            .body
            .contains("will be deleted on")
    );
}

#[tokio::test]
async fn pending_invitations_are_listed_and_can_be_withdrawn() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let id = create_workspace(&mut owner, "Inviting").await;
    let link = invite(&server, &mut owner, &id, "maybe@example.com", "member").await;
    let members = owner.get(&format!("/w/{id}/members")).await;
    assert!(
        members.body.contains("maybe@example.com"),
        "listed as pending"
    );
    let invite = invite_id(&members.body);
    let page = owner
        .post(
            &format!("/w/{id}/invites/{invite}/revoke"),
            &[("csrf", &members.csrf())],
        )
        .await;
    assert_eq!(page.status, 303);
    assert!(
        !owner
            .get(&format!("/w/{id}/members"))
            .await
            .body
            .contains("maybe@example.com")
    );
    assert_eq!(
        WebClient::new(&server).get(&link).await.status,
        404,
        "a withdrawn link is dead"
    );
}
