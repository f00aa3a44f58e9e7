#!/usr/bin/env bash
# Make the login for an MQTT broker that refuses anonymous clients: a new random password for one user,
# as a Mosquitto password file (hashed) for the broker and an env file (clear) for the agents. Rerunning
# replaces the password, which is how you rotate it. Needs only python3.
#
#   scripts/generate-mqtt-password.sh                          # mqtt-auth/passwd, mqtt-auth/agents.env
#   scripts/generate-mqtt-password.sh --user agent2389 --out /secure/mqtt-auth
#
# docker-compose.auth.yml mounts passwd into the broker and hands agents.env (MQTT_USERNAME,
# MQTT_PASSWORD) to the agents, whose files in config/deploy/auth name those two variables.
# agents.env holds the password in clear: keep it out of git (the output folder ignores itself).
set -euo pipefail

out=mqtt-auth
user=agent2389

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --user) user=${2:?--user needs a name}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "generate-mqtt-password: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$user" =~ ^[A-Za-z0-9_.-]{1,64}$ ]] || {
  echo "generate-mqtt-password: a user name is 1-64 letters, digits, '.', '_' or '-': $user" >&2; exit 2; }
command -v python3 >/dev/null || { echo "generate-mqtt-password: python3 is not installed" >&2; exit 1; }

mkdir -p "$out"
[ -f "$out/.gitignore" ] || printf '# MQTT passwords: never commit\n*\n' > "$out/.gitignore"
umask 077
work=$(mktemp -d "$out/.generate.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Mosquitto 2's own format ($7$: PBKDF2-SHA512, 101 rounds, as mosquitto_passwd writes it), so the
# broker image needs nothing extra and this host needs no mosquitto.
python3 - "$user" "$work" <<'EOF'
import base64, hashlib, secrets, sys
from pathlib import Path

user, work = sys.argv[1], Path(sys.argv[2])
password = secrets.token_urlsafe(24)
salt = secrets.token_bytes(12)
digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101)
encoded = "$7$101$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()
(work / "passwd").write_text(f"{user}:{encoded}\n")
(work / "agents.env").write_text(f"MQTT_USERNAME={user}\nMQTT_PASSWORD={password}\n")
EOF
# The broker runs as its own user and reads passwd through a read-only mount; it holds only a hash.
chmod 644 "$work/passwd"
chmod 600 "$work/agents.env"
mv "$work/passwd" "$work/agents.env" "$out/"
echo "generate-mqtt-password: new password for $user in $out/agents.env (hash in $out/passwd)"
