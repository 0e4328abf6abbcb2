#!/usr/bin/env bash
# Restore drill: proves that a backup restores into a working server. Restores a backup
# (the latest good one by default) into a throwaway directory with a drill account added,
# starts the server on it on a free loopback port, and walks every primary path: health,
# sign-in, the dashboard pages, records and search, an agent pairing and sync, MCP
# tools/list and search with a token, and audit verify. Prints each step with its time and
# a final PASS or FAIL; removes everything it made, whatever happens.
#
# Usage: restore-drill.sh --identity FILE [--config FILE] [--backup ID] [--offsite]
#                         [--master-key FILE] [--strongbox BIN] [--port N]
#   --identity    the age identity the backups are encrypted to (kept off the server)
#   --config      the server's config file, for its backup dir, off-site target and key
#   --master-key  the master key the backup was made under, if not the current one
# Needs curl and jq. Exits 0 on PASS, 1 on FAIL, 2 on a usage error; needs no terminal,
# so it can run from cron.
set -uo pipefail

usage() {
    sed -n '9,15p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

strongbox=strongbox
identity=""
backup=""
port=""
config=()
offsite=()
master_key=()
while [ $# -gt 0 ]; do
    case "$1" in
        --identity) identity=${2:-} ;;
        --config) config=(--config "${2:-}") ;;
        --backup) backup=${2:-} ;;
        --offsite) offsite=(--offsite); shift; continue ;;
        --master-key) master_key=(--master-key "${2:-}") ;;
        --strongbox) strongbox=${2:-} ;;
        --port) port=${2:-} ;;
        *) usage ;;
    esac
    [ $# -ge 2 ] || usage
    shift 2
done
[ -n "$identity" ] || usage
for tool in curl jq "$strongbox"; do
    command -v "$tool" >/dev/null || { echo "restore drill: $tool is not installed" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/strongbox-drill.XXXXXX")
state="$work/state"
: >"$state"

# Stops the drill server (SIGTERM, then SIGKILL after 30 s) and removes the drill dir.
teardown() {
    local pid
    pid=$(cat "$work/server.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid"
        fi
    fi
    rm -rf "$work"
}
trap teardown EXIT
trap 'exit 1' INT TERM HUP

echo "restore drill in $work"

# Keeps a value for later steps (each step runs in a subshell of its own).
save() {
    printf '%s=%q\n' "$1" "$2" >>"$state"
}

# One HTTP request against the drill server: prints the status; the body is in $work/body.
http() {
    local method=$1 path=$2
    shift 2
    curl -sS -o "$work/body" -w '%{http_code}' -X "$method" \
        -b "$work/cookies" -c "$work/cookies" -H "Origin: $BASE" "$@" "$BASE$path"
}

# Fails the step unless the last request answered `want`.
expect() {
    local want=$1 got=$2 what=$3
    if [ "$got" != "$want" ]; then
        echo "$what answered $got, not $want"
        return 1
    fi
}

# The CSRF token of the form on the last page fetched.
csrf() {
    grep -o 'name="csrf" value="[^"]*"' "$work/body" | head -n1 | sed 's/.*value="\([^"]*\)"/\1/'
}

# The environment that points the strongbox CLI at the drill's copy, never at the live data
# dir, with nothing that could reach out: email to a file, every scheduled job off.
drill_env() {
    DRILL_ENV=(
        STRONGBOX_DATA_DIR="$work/data"
        STRONGBOX_LISTEN="127.0.0.1:$PORT"
        STRONGBOX_PUBLIC_URL="$BASE"
        STRONGBOX_EMAIL__TRANSPORT=file
        STRONGBOX_EMAIL__OUTBOX_DIR="$work/outbox"
        STRONGBOX_BACKUP__DIR="$work/backups"
        STRONGBOX_LOG__FORMAT=json
    )
    local job
    for job in EXPIRED_CLEANUP USAGE_SWEEP CLOSURE_PURGE AUDIT_SWEEP BACKUP; do
        DRILL_ENV+=("STRONGBOX_JOBS__${job}__ENABLED=false")
    done
    if [ ${#master_key[@]} -gt 0 ]; then
        DRILL_ENV+=(STRONGBOX_MASTER_KEY_FILE="${master_key[1]}")
    fi
}

find_backup() {
    if [ -z "$backup" ]; then
        backup=$("$strongbox" "${config[@]}" backup list "${offsite[@]}" |
            awk 'NR > 1 && $NF == "ok" { id = $1 } END { print id }')
    fi
    [ -n "$backup" ] || { echo "no good backup to restore"; return 1; }
    save BACKUP "$backup"
    echo "backup $backup"
}

restore() {
    "$strongbox" "${config[@]}" restore --backup "$BACKUP" --identity "$identity" \
        --to "$work/data" "${offsite[@]}" "${master_key[@]}" --drill-account "$work/drill.json" \
        >/dev/null
    save WORKSPACE "$(jq -r .workspace "$work/drill.json")"
    echo "restored into a new data dir; drill account added"
}

free_port() {
    local candidate
    for _ in $(seq 50); do
        candidate=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

start_server() {
    PORT=${port:-$(free_port)}
    BASE="http://localhost:$PORT"
    save PORT "$PORT"
    save BASE "$BASE"
    drill_env
    # `env` execs the server, so $! is the server's own pid.
    env "${DRILL_ENV[@]}" "$strongbox" "${config[@]}" serve >"$work/server.log" 2>&1 &
    echo $! >"$work/server.pid"
    for _ in $(seq 600); do
        if curl -fsS -o /dev/null "$BASE/healthz" 2>/dev/null; then
            echo "serving on 127.0.0.1:$PORT"
            return 0
        fi
        kill -0 "$(cat "$work/server.pid")" 2>/dev/null || break
        sleep 0.1
    done
    echo "the server did not come up:"
    tail -n 5 "$work/server.log"
    return 1
}

health() {
    expect 200 "$(http GET /healthz)" /healthz
    expect 200 "$(http GET /readyz)" /readyz
    echo "/healthz and /readyz answer 200"
}

sign_in() {
    expect 200 "$(http GET /sign-in)" "the sign-in page"
    local email password status
    email=$(jq -r .email "$work/drill.json")
    password=$(jq -r .password "$work/drill.json")
    status=$(http POST /sign-in --data-urlencode "csrf=$(csrf)" \
        --data-urlencode "email=$email" --data-urlencode "password=$password")
    expect 303 "$status" "signing in"
    echo "signed in as the drill account"
}

dashboard() {
    local pages=(/ /account "/w/$WORKSPACE" "/w/$WORKSPACE/records" "/w/$WORKSPACE/members"
        "/w/$WORKSPACE/agents" "/w/$WORKSPACE/tokens" "/w/$WORKSPACE/ai-clients"
        "/w/$WORKSPACE/masking" "/w/$WORKSPACE/audit" "/w/$WORKSPACE/usage")
    local page
    for page in "${pages[@]}"; do
        expect 200 "$(http GET "$page")" "$page"
    done
    echo "${#pages[@]} pages"
}

make_token() {
    expect 200 "$(http GET "/w/$WORKSPACE/tokens")" "the tokens page"
    local status token
    status=$(http POST "/w/$WORKSPACE/tokens" --data-urlencode "csrf=$(csrf)" \
        --data-urlencode "name=restore drill" --data-urlencode "access=read_write")
    expect 200 "$status" "making a token"
    token=$(grep -o 'sbx_pat_[A-Za-z0-9_-]*' "$work/body" | head -n1)
    [ -n "$token" ] || { echo "no token on the page"; return 1; }
    save TOKEN "$token"
    echo "personal token made on the dashboard"
}

records() {
    local auth=(-H "Authorization: Bearer $TOKEN")
    expect 200 "$(http GET /api/v1/collections "${auth[@]}")" /api/v1/collections
    local served restored
    served=$(jq -S '[.collections[] | {key: .name, value: .records}] | from_entries' "$work/body")
    restored=$(jq -S .collections "$work/drill.json")
    if [ "$served" != "$restored" ]; then
        echo "the API's record counts differ from the restored database's"
        return 1
    fi
    local word="drill$(date +%s%N | tail -c 9)"
    save PROBE "$word"
    expect 200 "$(http PUT "/api/v1/collections/restore_drill/records/probe" "${auth[@]}" \
        -H 'Content-Type: application/json' --data "{\"note\": \"$word\"}")" "writing a record"
    expect 200 "$(http GET "/api/v1/search?q=$word" "${auth[@]}")" "searching"
    [ "$(jq '[.hits[] | select(.id == "probe")] | length' "$work/body")" = 1 ] ||
        { echo "search did not find the record just written"; return 1; }
    echo "$(jq -r '[.[]] | add // 0' <<<"$restored") records as restored; a new one is found by search"
}

agent_sync() {
    expect 200 "$(http GET "/w/$WORKSPACE/agents")" "the agents page"
    local status code
    status=$(http POST "/w/$WORKSPACE/pairing-codes" --data-urlencode "csrf=$(csrf)" \
        --data-urlencode "name=restore drill")
    expect 200 "$status" "issuing a pairing code"
    code=$(grep -o 'sbx_pair_[A-Za-z0-9_-]*' "$work/body" | head -n1)
    [ -n "$code" ] || { echo "no pairing code on the page"; return 1; }
    expect 200 "$(http POST /api/agent/v1/pair -H 'Content-Type: application/json' \
        --data "{\"code\": \"$code\", \"agent_version\": \"restore-drill\"}")" "pairing"
    local access=(-H "Authorization: Bearer $(jq -r .access_token "$work/body")")
    expect 200 "$(http GET /api/agent/v1/policy "${access[@]}")" "the agent policy"
    local batch
    batch=$(jq -c '{idempotency_key: "restore-drill-1",
        redaction: {policy_version: .version, counts: {}},
        changes: [{collection: "restore_drill", id: "agent", op: "upsert",
                   data: {note: "synced by the restore drill"}}]}' "$work/body")
    expect 200 "$(http POST /api/agent/v1/sync "${access[@]}" \
        -H 'Content-Type: application/json' --data "$batch")" "syncing"
    [ "$(jq .upserted "$work/body")" = 1 ] || { echo "the batch was not applied"; return 1; }
    echo "paired an agent and synced a batch"
}

# One MCP JSON-RPC message; prints the status.
mcp() {
    http POST /mcp -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' -H "Mcp-Session-Id: ${SESSION:-}" \
        -D "$work/headers" --data "$1"
}

mcp_tools() {
    SESSION=""
    expect 200 "$(mcp '{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "restore-drill", "version": "1"}}}')" "initialize"
    SESSION=$(grep -i '^mcp-session-id:' "$work/headers" | cut -d: -f2 | tr -d ' \r')
    [ -n "$SESSION" ] || { echo "no MCP session"; return 1; }
    expect 202 "$(mcp '{"jsonrpc": "2.0", "method": "notifications/initialized"}')" "initialized"
    expect 200 "$(mcp '{"jsonrpc": "2.0", "id": 2, "method": "tools/list"}')" "tools/list"
    local tools
    tools=$(jq '.result.tools | length' "$work/body")
    jq -e '.result.tools | any(.name == "search")' "$work/body" >/dev/null ||
        { echo "tools/list has no search tool"; return 1; }
    expect 200 "$(mcp "{\"jsonrpc\": \"2.0\", \"id\": 3, \"method\": \"tools/call\",
        \"params\": {\"name\": \"search\", \"arguments\": {\"query\": \"$PROBE\"}}}")" "search"
    jq -e '.result.isError != true and
        (.result.structuredContent.hits | any(.id == "probe"))' "$work/body" >/dev/null ||
        { echo "MCP search did not find the record"; return 1; }
    echo "$tools tools; search found the record"
}

audit_verify() {
    drill_env
    env "${DRILL_ENV[@]}" "$strongbox" "${config[@]}" audit verify >"$work/verify.log" 2>&1 ||
        { tail -n 3 "$work/verify.log"; return 1; }
    echo "$(grep -c ': ok' "$work/verify.log") chains verify"
}

failed=0
# Runs one step in a subshell with errexit, timing it; after a failure the rest are skipped.
step() {
    local name=$1
    if [ "$failed" -ne 0 ]; then
        printf '[skip] %s\n' "$name"
        return
    fi
    local started elapsed detail
    started=$(date +%s%N)
    (
        set -eo pipefail
        # shellcheck disable=SC1090
        source "$state"
        "$2"
    ) >"$work/step.log" 2>&1
    local status=$?
    elapsed=$((($(date +%s%N) - started) / 1000000))
    detail=$(tail -n 1 "$work/step.log")
    if [ "$status" -eq 0 ]; then
        printf '[ ok ] %-28s %7d ms  %s\n' "$name" "$elapsed" "$detail"
    else
        failed=1
        printf '[FAIL] %-28s %7d ms  %s\n' "$name" "$elapsed" "${detail:-failed}"
    fi
}

drill_started=$(date +%s%N)
step "find the backup" find_backup
step "restore" restore
step "start the server" start_server
step "health" health
step "sign in" sign_in
step "dashboard pages" dashboard
step "make a token" make_token
step "records and search" records
step "agent pairing and sync" agent_sync
step "MCP tools/list and search" mcp_tools
step "audit verify" audit_verify
total=$((($(date +%s%N) - drill_started) / 1000))
if [ "$failed" -eq 0 ]; then
    printf 'PASS  restore drill of backup %s in %d.%03d s\n' \
        "$(sed -n 's/^BACKUP=//p' "$state")" $((total / 1000000)) $((total / 1000 % 1000))
    exit 0
fi
echo "FAIL  restore drill"
exit 1
