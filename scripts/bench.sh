#!/usr/bin/env bash
# Runs the benchmarks and records them in BENCHMARKS.md with the command, the machine and
# each figure's ratio to a floor measured in the same run, and to the peers that do the
# same job. Not part of the test suite: figures depend on the machine, so nothing here
# passes or fails on speed.
#
#   scripts/bench.sh [--quick]    --quick: smaller data and shorter runs, for a first look
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

command="scripts/bench.sh"
case "${1:-}" in
    --quick) export STRONGBOX_BENCH_QUICK=1 command="scripts/bench.sh --quick" ;;
    "") ;;
    *) echo "usage: scripts/bench.sh [--quick]" >&2; exit 2 ;;
esac

ensure_debian_packages "${BUILD_PACKAGES[@]}" wrk age
ensure_venv tests/bench/requirements.txt
export STRONGBOX_BENCH_PYTHON="$venv/bin/python" STRONGBOX_BENCH_POCKETBASE="$venv/bin/pocketbase"

# Progress and any failure go to stderr; only the report is captured.
results=$(cargo bench --locked --bench foundation && echo &&
    cargo bench --locked --bench data && echo &&
    echo "## Search and reads" && echo && cargo bench --locked --bench search && echo &&
    echo "## MCP search at real query shapes" && echo && cargo bench --locked --bench query_shapes && echo &&
    echo "## Resident memory with many workspaces" && echo && cargo bench --locked --bench memory && echo &&
    echo "## Sign-in" && echo && cargo bench --locked --bench signin && echo &&
    cargo bench --locked --bench backup)

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
    echo "# Benchmarks"
    echo
    echo "Recorded by \`$command\` on $(date -u +%Y-%m-%d). Each figure is compared with a floor"
    echo "measured in the same run on the same machine, so the ratios carry over between machines"
    echo "better than the absolute numbers do; peers ran in the same run on the same data."
    echo
    echo "- command: \`$command\` (runs \`cargo bench\` for \`foundation\`, \`data\`, \`search\`, \`query_shapes\`, \`memory\`, \`signin\` and \`backup\`, release build)"
    echo "- machine: ${cpu:-unknown CPU}, $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB memory, $(uname -sr)"
    echo "- toolchain: $(rustc --version)"
    echo
    echo "## Targets"
    echo
    grep '^Target: ' <<<"$results" | sed 's/^Target: /- /'
    echo
    echo "$results"
} > BENCHMARKS.md
cat BENCHMARKS.md
