#!/usr/bin/env bash
# Runs the benchmarks and records them in BENCHMARKS.md with the command, the machine and
# each figure's ratio to a floor measured in the same run. Not part of the test suite:
# figures depend on the machine, so nothing here passes or fails on speed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_debian_packages "${BUILD_PACKAGES[@]}" wrk age
# Progress and any failure go to stderr; only the report is captured.
results=$(cargo bench --locked --bench foundation && echo &&
    cargo bench --locked --bench data && echo &&
    echo "## MCP search" && echo && cargo bench --locked --bench mcp && echo &&
    cargo bench --locked --bench backup)

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
    echo "# Benchmarks"
    echo
    echo "Recorded by \`scripts/bench.sh\` on $(date -u +%Y-%m-%d). Each figure is compared with a floor"
    echo "measured in the same run on the same machine, so the ratios carry over between machines"
    echo "better than the absolute numbers do."
    echo
    echo "- command: \`scripts/bench.sh\` (runs \`cargo bench\` for \`foundation\`, \`data\`, \`mcp\` and \`backup\`, release build)"
    echo "- machine: ${cpu:-unknown CPU}, $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB memory, $(uname -sr)"
    echo "- toolchain: $(rustc --version)"
    echo
    echo "$results"
} > BENCHMARKS.md
cat BENCHMARKS.md
