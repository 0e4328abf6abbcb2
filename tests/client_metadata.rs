//! Client ID Metadata Documents: a client named by the https URL of its document signs in
//! without registering, and a document that cannot be trusted (another client_id, a redirect
//! not listed, too large, too slow, a redirect response, a private address) is refused with
//! the error it earned and nothing stored. The documents come from the test's own https
//! server, whose certificate the server under test is told to trust.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::document_server::{DocumentServer, Reply};
use crate::common::{
    Flow, TestServer, WebClient, approve, authorize_query, create_workspace, pkce, set_up_owner,
};
use crate::mcp::{Mcp, assert_masked, workspace_with_record};
use crate::oauth::{exchange, refresh};

const CALLBACK: &str = "http://127.0.0.1:5555/callback";

/// A server that trusts the document server's certificate; with `allow_loopback`, it may
/// fetch documents from 127.0.0.1 (where the test's document server is).
fn server_trusting(documents: &DocumentServer, allow_loopback: bool) -> TestServer {
    let certificate = documents.certificate.clone();
    TestServer::start_with(move |c| {
        c.oauth.client_metadata_trusted_certificate = Some(certificate);
        if allow_loopback {
            c.oauth.client_metadata_allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
        }
    })
}

fn document(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Document Client",
        "redirect_uris": [CALLBACK],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none"
    })
}

fn flow_for(client_id: &str) -> Flow {
    let (verifier, challenge) = pkce();
    Flow {
        client_id: client_id.into(),
        redirect: CALLBACK.into(),
        verifier,
        challenge,
    }
}

#[actix_web::test]
async fn a_client_named_by_its_metadata_document_signs_in_without_registering() {
    let dir = tempfile::tempdir().unwrap();
    let documents = DocumentServer::start(dir.path());
    let server = server_trusting(&documents, true);
    let metadata: Value = reqwest::get(server.url("/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["client_id_metadata_document_supported"], true);

    let client_id = format!("{}/oauth/client.json", documents.origin);
    documents.serve("/oauth/client.json", Reply::json(&document(&client_id)));
    let mut owner = set_up_owner(&server).await;
    let (workspace, _) = workspace_with_record(&server, &mut owner, "Acme").await;
    let flow = flow_for(&client_id);

    let consent = owner.get(&authorize_query(&server, &flow, &[])).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("Document Client"));
    assert!(
        consent
            .body
            .contains("a document published at <strong>127.0.0.1</strong>"),
        "the consent page shows the document's host"
    );
    let code = approve(&server, &mut owner, &flow, &workspace).await;
    let (status, tokens) = exchange(&server, &flow, &code, &flow.verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let mut mcp = Mcp::stateless(&server, tokens["access_token"].as_str().unwrap());
    let record = mcp
        .tool("get_record", json!({"collection": "customers", "id": "c1"}))
        .await;
    assert_eq!(record["isError"], false, "{record}");
    assert_masked(&record);
    let (status, _) = refresh(&server, &flow, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        server.count(
            "SELECT count(*) FROM oauth_clients WHERE id = ?1 AND name = 'Document Client'",
            &[&client_id]
        ),
        1,
        "the client is stored once granted"
    );

    // Another client's id cannot redeem this client's tokens.
    let other = flow_for(&format!("{}/other.json", documents.origin));
    let (status, _) = refresh(&server, &other, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 400);
}

/// Opens the authorization request for `client_id` (with `changes`) as `browser` and
/// asserts it is refused on the page itself, never redirected, naming `why`.
async fn assert_refused(
    server: &TestServer,
    browser: &mut WebClient,
    client_id: &str,
    changes: &[(&str, &str)],
    why: &str,
) {
    let page = browser
        .get(&authorize_query(server, &flow_for(client_id), changes))
        .await;
    assert_eq!(page.status, 400, "{client_id}: {}", page.body);
    assert!(page.location.is_none(), "{client_id}: redirected");
    assert!(
        page.body.contains(why),
        "{client_id}: {why} not in {}",
        page.body
    );
}

#[actix_web::test]
async fn a_document_that_cannot_be_trusted_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let documents = DocumentServer::start(dir.path());
    let server = server_trusting(&documents, true);
    let mut owner = set_up_owner(&server).await;
    create_workspace(&mut owner, "Acme").await;
    let at = |path: &str| format!("{}{path}", documents.origin);

    documents.serve("/good.json", Reply::json(&document(&at("/good.json"))));
    documents.serve(
        "/names-another.json",
        Reply::json(&document(&at("/good.json"))),
    );
    let mut oversize = document(&at("/oversize.json"));
    oversize["padding"] = json!("x".repeat(6 * 1024));
    documents.serve("/oversize.json", Reply::json(&oversize));
    let mut slow = Reply::json(&document(&at("/slow.json")));
    slow.delay = Duration::from_secs(8);
    documents.serve("/slow.json", slow);
    let moved = Reply {
        status: 302,
        headers: vec![("Location".into(), at("/good.json"))],
        body: Vec::new(),
        delay: Duration::ZERO,
    };
    documents.serve("/moved.json", moved);
    let mut with_secret = document(&at("/secret.json"));
    with_secret["token_endpoint_auth_method"] = json!("client_secret_basic");
    documents.serve("/secret.json", Reply::json(&with_secret));

    let cases = [
        ("/names-another.json", "names another client_id"),
        ("/oversize.json", "larger than 5 KB"),
        ("/slow.json", "could not be fetched in time"),
        ("/moved.json", "answered with a redirect"),
        ("/missing.json", "was not found"),
        ("/secret.json", "asks for a client secret"),
    ];
    for (path, why) in cases {
        assert_refused(&server, &mut owner, &at(path), &[], why).await;
    }
    // A good document, but a redirect it does not list: another path, or another port on
    // the loopback address (a document's URIs match exactly).
    for elsewhere in [
        "http://127.0.0.1:5555/elsewhere",
        "http://127.0.0.1:6666/callback",
    ] {
        assert_refused(
            &server,
            &mut owner,
            &at("/good.json"),
            &[("redirect_uri", elsewhere)],
            "redirect URI",
        )
        .await;
    }
    assert_eq!(server.count("SELECT count(*) FROM oauth_clients", &[]), 0);
    assert_eq!(server.count("SELECT count(*) FROM oauth_grants", &[]), 0);
}

/// Without the network allowed, a document on a loopback address is never fetched, whether
/// the client_id names the address or a name that resolves to it.
#[actix_web::test]
async fn a_document_on_a_private_address_is_never_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let documents = DocumentServer::start(dir.path());
    let server = server_trusting(&documents, false);
    let mut owner = set_up_owner(&server).await;
    create_workspace(&mut owner, "Acme").await;
    for host in ["127.0.0.1", "localhost"] {
        let client_id = format!("https://{host}:{}/client.json", documents.port);
        documents.serve("/client.json", Reply::json(&document(&client_id)));
        assert_refused(&server, &mut owner, &client_id, &[], "private, loopback").await;
    }
    assert_eq!(documents.hits(), 0, "no request reached the document");
    assert_eq!(server.count("SELECT count(*) FROM oauth_clients", &[]), 0);
}

/// A document is kept as long as its `Cache-Control` says, within bounds, and fetched
/// again after; one that may not be stored is fetched every time.
#[actix_web::test]
async fn documents_are_kept_as_their_cache_headers_say() {
    let dir = tempfile::tempdir().unwrap();
    let documents = DocumentServer::start(dir.path());
    let server = server_trusting(&documents, true);
    let mut owner = set_up_owner(&server).await;
    create_workspace(&mut owner, "Acme").await;
    let kept = format!("{}/kept.json", documents.origin);
    let unkept = format!("{}/unkept.json", documents.origin);
    documents.serve(
        "/kept.json",
        Reply::json(&document(&kept)).with_header("Cache-Control", "max-age=600"),
    );
    documents.serve(
        "/unkept.json",
        Reply::json(&document(&unkept)).with_header("Cache-Control", "no-store"),
    );
    let mut open = async |client_id: &str| {
        let page = owner
            .get(&authorize_query(&server, &flow_for(client_id), &[]))
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
    };
    open(&kept).await;
    open(&kept).await;
    assert_eq!(documents.hits(), 1, "kept for ten minutes");
    server.clock.advance(601);
    open(&kept).await;
    assert_eq!(documents.hits(), 2, "fetched again once stale");
    open(&unkept).await;
    open(&unkept).await;
    assert_eq!(documents.hits(), 4, "no-store: fetched every time");
}
