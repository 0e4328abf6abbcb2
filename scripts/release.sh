#!/usr/bin/env bash
# Builds a release of the server: the `strongbox` binary from the release profile with the
# versions Cargo.lock pins, its SHA-256, and a CycloneDX SBOM listing every crate compiled
# into it (name, version, license, checksum). See RUNBOOK.md, "Releases and supply chain".
#
#   scripts/release.sh [--out DIR]      (default: dist/)
#
# Writes DIR/strongbox-VERSION-TARGET/ with:
#   strongbox                  the binary
#   strongbox.sha256           its SHA-256, as `sha256sum --check` reads it
#   strongbox.cdx.json         the SBOM (CycloneDX 1.5, JSON)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

out=dist
while [ $# -gt 0 ]; do
    case "$1" in
        --out)
            [ $# -ge 2 ] || { echo "--out needs a directory" >&2; exit 2; }
            out="$2"
            shift 2
            ;;
        -h | --help)
            sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "unknown argument: $1 (see --help)" >&2
            exit 2
            ;;
    esac
done

ensure_debian_packages "${BUILD_PACKAGES[@]}"
# cargo-cyclonedx takes minutes to build: installed once, then reused.
command -v cargo-cyclonedx >/dev/null 2>&1 || cargo install --locked cargo-cyclonedx

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
target=$(rustc -vV | sed -n 's/^host: //p')
release="$out/strongbox-$version-$target"

# The SBOM's timestamp is the commit's, so a rebuild of the same commit gives the same file.
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH

cargo build --release --locked --bin strongbox
rm -rf "$release"
mkdir -p "$release"
install -m 0755 "$CARGO_TARGET_DIR/release/strongbox" "$release/strongbox"
(cd "$release" && sha256sum strongbox > strongbox.sha256)

# One SBOM per binary, written beside Cargo.toml, for the same features and target as the
# build; only the server's is shipped here.
cargo cyclonedx --format json --spec-version 1.5 --describe binaries --target "$target" -qq
mv strongbox_bin.cdx.json "$release/strongbox.cdx.json"
rm -f ./*_bin.cdx.json

echo "release in $release:"
(cd "$release" && ls -l && cat strongbox.sha256)
