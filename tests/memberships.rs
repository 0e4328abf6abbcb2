//! Credentials and the membership they were made in. A personal token, an AI client's
//! grant, a paired agent and a pairing code each belong to the membership of the person who
//! made them: once that membership ends (removed, or leaving) they are refused for good, and
//! being invited back starts a new membership that does not revive them, even within the
//! same second. The clock never moves in these tests, so nothing here can tell the two
//! memberships apart by time.

use serde_json::json;

use crate::common::{
    Agent, TestServer, WebClient, approve, create_workspace, make_token, new_flow, pair_request,
    pairing_code, set_up_owner, token_request,
};
use crate::oauth::exchange;
use crate::workspaces::{invite, join_by_invite, member_id};
use strongbox::clock::Clock;

const PERSON: &str = "person@example.com";

/// How a membership ends.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// An owner removes the person from the members page.
    Removed,
    /// The person leaves the workspace.
    Left,
}

/// One credential the person made, as a client holds it.
#[derive(Debug)]
enum Credential {
    /// At `/api/v1`.
    PersonalToken(String),
    /// An OAuth access token at `/mcp`.
    OAuthAccess(String),
    /// An OAuth refresh token at `/oauth/token`; rotated when accepted.
    OAuthRefresh { client_id: String, token: String },
    /// An agent's JWT at `/api/agent/v1/heartbeat`.
    AgentJwt(String),
    /// An agent's refresh secret at `/api/agent/v1/token`; rotated when accepted.
    AgentRefresh { agent_id: String, secret: String },
    /// A pairing code not used yet, at `/api/agent/v1/pair`.
    PairingCode(String),
}

impl Credential {
    fn name(&self) -> &'static str {
        match self {
            Self::PersonalToken(_) => "personal token",
            Self::OAuthAccess(_) => "OAuth access token",
            Self::OAuthRefresh { .. } => "OAuth refresh token",
            Self::AgentJwt(_) => "agent JWT",
            Self::AgentRefresh { .. } => "agent refresh secret",
            Self::PairingCode(_) => "pairing code",
        }
    }

    /// A pairing code works once: trying it while it should work would spend it, so it is
    /// tried only where it must be refused (a refused pairing leaves it unused).
    fn spent_by_use(&self) -> bool {
        matches!(self, Self::PairingCode(_))
    }

    /// Presents the credential where its client would; whether the server accepted it. A
    /// refusal must be the credential's own 401 (or `invalid_grant`), never another error.
    async fn try_use(&mut self, server: &TestServer) -> bool {
        let http = reqwest::Client::new();
        let status = match self {
            Self::PersonalToken(token) => http
                .get(server.url("/api/v1/collections"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status(),
            Self::OAuthAccess(token) => {
                let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "test", "version": "1"}}});
                http.post(server.url("/mcp"))
                    .bearer_auth(token)
                    .header("Accept", "application/json, text/event-stream")
                    .json(&init)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
            Self::OAuthRefresh { client_id, token } => {
                let (status, body) = token_request(
                    server,
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", token),
                        ("client_id", client_id),
                    ],
                )
                .await;
                if status == 200 {
                    *token = body["refresh_token"].as_str().unwrap().to_string();
                    return true;
                }
                assert_eq!(
                    (status, body["error"].as_str()),
                    (400, Some("invalid_grant"))
                );
                return false;
            }
            Self::AgentJwt(token) => http
                .post(server.url("/api/agent/v1/heartbeat"))
                .bearer_auth(token)
                .json(&json!({"agent_version": "0.1.0-test"}))
                .send()
                .await
                .unwrap()
                .status(),
            Self::AgentRefresh { agent_id, secret } => {
                let response = http
                    .post(server.url("/api/agent/v1/token"))
                    .json(&json!({"agent_id": agent_id, "refresh_secret": secret}))
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                if status == 200 {
                    let body: serde_json::Value = response.json().await.unwrap();
                    *secret = body["refresh_secret"].as_str().unwrap().to_string();
                }
                status
            }
            Self::PairingCode(code) => pair_request(server, code).await.status(),
        };
        assert!(
            status.is_success() || status == 401,
            "{}: {status}",
            self.name()
        );
        status.is_success()
    }
}

/// Everything `browser`'s person can make in `workspace`, all in the current second.
async fn make_everything(
    server: &TestServer,
    browser: &mut WebClient,
    workspace: &str,
) -> Vec<Credential> {
    let token = make_token(browser, workspace, "read_write").await;
    let flow = new_flow(server).await;
    let code = approve(server, browser, &flow, workspace).await;
    let (status, tokens) = exchange(server, &flow, &code, &flow.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let agent = Agent::pair(server, &pairing_code(browser, workspace, "Desk").await).await;
    let unused = pairing_code(browser, workspace, "Spare").await;
    vec![
        Credential::PersonalToken(token),
        Credential::OAuthAccess(tokens["access_token"].as_str().unwrap().into()),
        Credential::OAuthRefresh {
            client_id: flow.client_id.clone(),
            token: tokens["refresh_token"].as_str().unwrap().into(),
        },
        Credential::AgentJwt(agent.access.clone()),
        Credential::AgentRefresh {
            agent_id: agent.id.clone(),
            secret: agent.refresh.clone(),
        },
        Credential::PairingCode(unused),
    ]
}

/// Ends the person's membership of `workspace` the way `ending` says.
async fn end_membership(
    owner: &mut WebClient,
    person: &mut WebClient,
    workspace: &str,
    ending: Ending,
) {
    let members = format!("/w/{workspace}/members");
    let page = match ending {
        Ending::Removed => {
            let id = member_id(&owner.get(&members).await.body, PERSON);
            let remove = format!("/w/{workspace}/members/{id}/remove");
            owner.submit(&members, &remove, &[]).await
        }
        Ending::Left => {
            let leave = format!("/w/{workspace}/leave");
            person.submit(&format!("/w/{workspace}"), &leave, &[]).await
        }
    };
    assert_eq!(page.status, 303, "{ending:?}: {}", page.body);
    assert_eq!(person.get(&format!("/w/{workspace}")).await.status, 404);
}

/// Takes up an invitation as the signed-in person it is addressed to.
async fn accept(person: &mut WebClient, link: &str) {
    let page = person.get(link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let token = link.split("token=").nth(1).unwrap();
    let done = person
        .post(
            "/invite/accept",
            &[("csrf", &page.csrf()), ("token", token)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
}

#[tokio::test]
async fn credentials_die_with_their_membership_and_a_rejoin_in_the_same_second_revives_none() {
    let server = TestServer::start();
    let second = server.clock.now();
    let mut owner = set_up_owner(&server).await;
    let mut person: Option<WebClient> = None;
    for ending in [Ending::Removed, Ending::Left] {
        let workspace = create_workspace(&mut owner, &format!("{ending:?}")).await;
        // An admin, so they may make every kind of credential, pairing codes included.
        let link = invite(&server, &mut owner, &workspace, PERSON, "admin").await;
        let mut browser = match person.take() {
            None => join_by_invite(&server, &link).await,
            Some(mut browser) => {
                accept(&mut browser, &link).await;
                browser
            }
        };
        let mut made = make_everything(&server, &mut browser, &workspace).await;
        for credential in made.iter_mut().filter(|c| !c.spent_by_use()) {
            let name = credential.name();
            assert!(
                credential.try_use(&server).await,
                "{ending:?}: the {name} works while its membership lasts"
            );
        }

        end_membership(&mut owner, &mut browser, &workspace, ending).await;
        for credential in &mut made {
            let name = credential.name();
            assert!(
                !credential.try_use(&server).await,
                "{ending:?}: the {name} is refused once its membership ended"
            );
        }

        // Invited back with the same role and joined again, all within the same second.
        let link = invite(&server, &mut owner, &workspace, PERSON, "admin").await;
        accept(&mut browser, &link).await;
        assert_eq!(browser.get(&format!("/w/{workspace}")).await.status, 200);
        for credential in &mut made {
            let name = credential.name();
            assert!(
                !credential.try_use(&server).await,
                "{ending:?}: the {name} of the old membership is revived by the new one"
            );
        }
        let page = owner.get(&format!("/w/{workspace}/agents")).await.body;
        assert!(
            page.contains("stopped (the person who paired it is no longer a member)"),
            "{ending:?}: the agents page says why the agent stopped"
        );
        // The refusals changed nothing: the old code is still unused and paired no agent.
        let unused = server.count(
            "SELECT count(*) FROM pairing_codes WHERE workspace_id = ?1 AND used_at IS NULL",
            &[&workspace],
        );
        let agents = server.count(
            "SELECT count(*) FROM agents WHERE workspace_id = ?1",
            &[&workspace],
        );
        assert_eq!((unused, agents), (1, 1), "{ending:?}");
        // Nor are they listed as if they worked, and the nightly cleanup removes them.
        let listed = |table: &str| {
            server.count(
                &format!(
                    "SELECT count(*) FROM {table} WHERE workspace_id = ?1 AND membership_id IS NULL"
                ),
                &[&workspace],
            )
        };
        let dead = ["personal_tokens", "oauth_grants", "pairing_codes"].map(listed);
        assert_eq!(
            dead,
            [1, 1, 2],
            "{ending:?}: the agent's code and the spare"
        );
        let old_token = made.iter().find_map(|c| match c {
            Credential::PersonalToken(text) => {
                Some(text["sbx_pat_".len().."sbx_pat_".len() + 16].to_string())
            }
            _ => None,
        });
        let tokens_page = browser.get(&format!("/w/{workspace}/tokens")).await.body;
        assert!(
            !tokens_page.contains(&old_token.unwrap()),
            "{ending:?}: the old token is not listed"
        );
        let context = strongbox::jobs::JobContext::new(
            std::sync::Arc::clone(&server.store),
            server.clock.clone(),
            strongbox::jobs::JobSettings::from(&server.dir.config),
        );
        strongbox::jobs::run(strongbox::jobs::JobName::ExpiredCleanup, &context).unwrap();
        let dead = ["personal_tokens", "oauth_grants", "pairing_codes"].map(listed);
        assert_eq!(dead, [0, 0, 0], "{ending:?}");

        // What the new membership makes works: only the old membership's credentials died.
        for mut credential in make_everything(&server, &mut browser, &workspace).await {
            if !credential.spent_by_use() {
                let name = credential.name();
                assert!(
                    credential.try_use(&server).await,
                    "{ending:?}: a new {name}"
                );
            }
        }
        person = Some(browser);
    }
    assert_eq!(server.clock.now(), second, "all within one second");
}
