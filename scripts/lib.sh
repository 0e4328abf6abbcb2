# Shared helpers for the scripts in this directory. Source it; do not run it.

# Installs the named Debian packages that are not installed yet. Idempotent: does nothing,
# and needs no privileges, when everything is already there.
ensure_debian_packages() {
    local missing=()
    local package
    for package in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$package")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    echo "installing Debian packages: ${missing[*]}" >&2
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo)
    fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# What building Strongbox needs: a C compiler for the bundled SQLCipher, and OpenSSL's
# headers for its crypto.
BUILD_PACKAGES=(gcc libc6-dev libssl-dev pkg-config)

# Cargo builds outside the clone, so a fresh clone reuses earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/strongbox/target}"

# Adds rustfmt and clippy to the toolchain when they are missing.
ensure_rust_components() {
    local component
    for component in rustfmt clippy; do
        if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
            rustup component add "$component"
        fi
    done
}

# The Python virtualenv the tests and benchmarks drive their tools from, kept beside the
# build cache; installs the given requirements files into it.
venv="$HOME/.cache/strongbox/venv"
ensure_venv() {
    ensure_venv_at "$venv" "$@"
}

# Makes (once) the virtualenv at the given path and installs the requirements files after it.
ensure_venv_at() {
    local dir=$1
    shift
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        ensure_debian_packages python3-venv
    fi
    [ -x "$dir/bin/pip" ] || python3 -m venv "$dir"
    local requirements
    for requirements in "$@"; do
        "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    done
}

# Runs the ignored integration tests matching the given test-harness arguments (those that
# need the tools installed above), and fails when none ran: a renamed test must not turn
# its step into a silent pass.
run_ignored_tests() {
    local log
    log=$(mktemp)
    if ! cargo test --locked --test integration -- --ignored "$@" 2>&1 | tee "$log"; then
        rm -f "$log"
        return 1
    fi
    if ! grep -Eq '^test result: ok\. [1-9][0-9]* passed' "$log"; then
        rm -f "$log"
        echo "no test matched: $*" >&2
        return 1
    fi
    rm -f "$log"
}
