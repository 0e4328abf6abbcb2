#!/usr/bin/env bash
# Builds Strongbox and starts it on the embedded defaults: data in ./data (created with a
# new master key on first run), http://127.0.0.1:8080, email to ./data/outbox.
# Extra arguments go to `strongbox serve` (for example: --config strongbox.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_debian_packages "${BUILD_PACKAGES[@]}"
exec cargo run --release --locked --bin strongbox -- serve "$@"
