#!/usr/bin/env bash
# Installs Strongbox on a Debian host, as RUNBOOK.md "Install" describes: the binary, the
# service user, the data, backup and config dirs, a starting config, the master key as a
# systemd credential, the hardened unit and the nginx site. Run as root from a checkout.
# Idempotent: a second run changes nothing it does not own, and never replaces the config,
# the environment file or the master key once they exist.
#
#   scripts/install.sh --host strongbox.example.com [--binary FILE]
#
#   --host NAME     the public host name: public_url, nginx's server_name, certificate paths
#   --binary FILE   the strongbox binary to install (default: build it, release profile)
#
# It does not start anything: see the steps it prints at the end.
set -euo pipefail

host=""
binary=""
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --host)
            [ $# -ge 2 ] || { echo "--host needs a value" >&2; exit 2; }
            host="$2"
            shift 2
            ;;
        --binary)
            [ $# -ge 2 ] || { echo "--binary needs a value" >&2; exit 2; }
            binary="$2"
            shift 2
            ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
# A host name only: it goes into a URL, a config file and nginx's config.
if ! [[ "$host" =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$ ]]; then
    echo "--host must be a host name such as strongbox.example.com" >&2
    exit 2
fi
if [ -n "$binary" ]; then
    # Named from where the script was run, before it moves to the checkout.
    binary=$(realpath -e -- "$binary") || { echo "no file at --binary" >&2; exit 2; }
fi
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "run as root: it creates a system user and writes under /etc and /var" >&2
    exit 1
fi

service_user=strongbox
bin_path=/usr/local/bin/strongbox
data_dir=/var/lib/strongbox
backup_dir=/var/backups/strongbox
config_dir=/etc/strongbox
config="$config_dir/strongbox.toml"
env_file="$config_dir/strongbox.env"
credstore=/etc/credstore
master_key="$credstore/strongbox.master.key"
unit=/etc/systemd/system/strongbox.service
site_available=/etc/nginx/sites-available/strongbox
site_enabled=/etc/nginx/sites-enabled/strongbox
certificate_dir="/etc/letsencrypt/live/$host"

step() { echo "== $*"; }

step "binary: $bin_path"
if [ -z "$binary" ]; then
    source scripts/lib.sh
    ensure_debian_packages "${BUILD_PACKAGES[@]}"
    cargo build --release --locked --bin strongbox
    binary="$CARGO_TARGET_DIR/release/strongbox"
fi
[ -x "$binary" ] || { echo "no executable at $binary" >&2; exit 1; }
install -m 0755 -o root -g root "$binary" "$bin_path"

step "service user: $service_user"
if ! id -u "$service_user" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$data_dir" --no-create-home \
        --shell /usr/sbin/nologin "$service_user"
fi

step "directories: $data_dir and $backup_dir (0700), $config_dir (0750)"
install -d -o "$service_user" -g "$service_user" -m 0700 "$data_dir" "$backup_dir"
install -d -o root -g "$service_user" -m 0750 "$config_dir"
install -d -o root -g root -m 0700 "$credstore"

step "config: $config"
if [ ! -e "$config" ]; then
    (
        umask 027
        cat > "$config" <<EOF
# Strongbox configuration: see RUNBOOK.md, "Configuration". Secrets (SMTP password, S3 key)
# go in $env_file as STRONGBOX_* variables, not here.
data_dir = "$data_dir"
listen = "127.0.0.1:8080"
public_url = "https://$host"
# nginx on this host, and nothing else, may name the client in X-Forwarded-For.
trusted_proxies = ["127.0.0.1/32"]

[backup]
dir = "$backup_dir"
# The public key of an age identity kept off this host (age-keygen on another machine).
# Backups refuse to run until one is set.
recipients = []

[log]
format = "json"
EOF
    )
    chown "root:$service_user" "$config"
else
    echo "   kept as it is"
fi
if [ ! -e "$env_file" ]; then
    install -m 0600 -o root -g root /dev/null "$env_file"
fi

step "master key: $master_key (a systemd credential; root only)"
if [ ! -e "$master_key" ]; then
    (umask 077; head -c 32 /dev/urandom > "$master_key.new" && mv "$master_key.new" "$master_key")
else
    echo "   kept as it is"
fi
chmod 0600 "$master_key"

step "systemd unit: $unit"
install -m 0644 -o root -g root systemd/strongbox.service "$unit"
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi

if [ -d /etc/nginx ]; then
    step "nginx site: $site_available"
    install -d /etc/nginx/sites-available /etc/nginx/sites-enabled
    sed "s/strongbox\.example\.com/$host/g" nginx/strongbox.conf > "$site_available.new"
    chmod 0644 "$site_available.new"
    mv "$site_available.new" "$site_available"
    # Debian's welcome page would answer for unknown host names; this site refuses them.
    if [ "$(readlink /etc/nginx/sites-enabled/default 2>/dev/null)" = /etc/nginx/sites-available/default ]; then
        rm /etc/nginx/sites-enabled/default
        echo "   disabled Debian's default site (it is still in sites-available)"
    fi
    if [ -e "$certificate_dir/fullchain.pem" ]; then
        ln -sfn "$site_available" "$site_enabled"
        nginx -t
    else
        echo "   not enabled yet: no certificate in $certificate_dir"
    fi
else
    step "nginx: not installed, site not written (apt-get install nginx, then run this again)"
fi

cat <<EOF

Installed. Next (RUNBOOK.md, "Install"):
  1. Copy $master_key to offline storage now, and $data_dir/install.toml after the first start.
  2. Set [backup] recipients in $config; secrets in $env_file.
  3. A certificate for $host in $certificate_dir (certbot certonly), then run this again
     to enable the nginx site, and: systemctl reload nginx
  4. systemctl enable --now strongbox; the one-time setup link is in: journalctl -u strongbox
EOF
