#!/usr/bin/env bash
# Sets up a development checkout: the Debian packages a build needs, rustfmt and clippy,
# and the git pre-commit hook (scripts/pre-commit). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_debian_packages "${BUILD_PACKAGES[@]}"
ensure_rust_components
hooks=$(git rev-parse --git-path hooks)
mkdir -p "$hooks"
ln -sf "$PWD/scripts/pre-commit" "$hooks/pre-commit"
echo "pre-commit hook installed: fmt, clippy and the unit tests run before each commit"
