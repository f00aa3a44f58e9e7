#!/usr/bin/env bash
# Make the certificates for MQTT over TLS: a CA (kept across runs) and a broker certificate signed by it
# (new on every run, which is how you rotate it). Needs only openssl.
#
#   scripts/generate-certs.sh                                 # certs/ca.crt, certs/mqtt-broker.{crt,key}
#   scripts/generate-certs.sh --host mqtt.example.com --out /secure/certs --days 397
#   scripts/generate-certs.sh --new-ca                        # also replace the CA (clients need the new ca.crt)
#
# Clients verify the broker with ca.crt (the agent file's [mqtt] ca_file). ca.key signs broker
# certificates: keep it out of the cluster and out of git (the output folder ignores itself).
set -euo pipefail

out=certs
days=397          # browsers' limit for leaf certificates; brokers accept more, rotation is cheap
ca_days=3650
new_ca=false
hosts=(mqtt-broker localhost 127.0.0.1)
extra_hosts=()

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --host) extra_hosts+=("${2:?--host needs a name or address}"); shift 2 ;;
    --days) days=${2:?--days needs a number}; shift 2 ;;
    --ca-days) ca_days=${2:?--ca-days needs a number}; shift 2 ;;
    --new-ca) new_ca=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "generate-certs: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
hosts+=("${extra_hosts[@]}")
for number in "$days" "$ca_days"; do
  [[ "$number" =~ ^[1-9][0-9]*$ ]] || { echo "generate-certs: not a number of days: $number" >&2; exit 2; }
done
command -v openssl >/dev/null || { echo "generate-certs: openssl is not installed" >&2; exit 1; }

mkdir -p "$out"
[ -f "$out/.gitignore" ] || printf '# private keys and certificates: never commit\n*\n' > "$out/.gitignore"
umask 077
# Build everything in a scratch folder and move it into place at the end: a failure never leaves a
# half-rotated set behind.
work=$(mktemp -d "$out/.generate.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ "$new_ca" = true ] || [ ! -f "$out/ca.key" ] || [ ! -f "$out/ca.crt" ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$work/ca.key" -sha256 -days "$ca_days" -subj "/CN=agent2389 MQTT CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$work/ca.crt"
  echo "generate-certs: new CA (valid $ca_days days)"
else
  cp "$out/ca.key" "$out/ca.crt" "$work/"
  echo "generate-certs: keeping the CA in $out"
fi

san=""
for host in "${hosts[@]}"; do
  if [[ "$host" =~ ^[0-9.]+$ || "$host" == *:* ]]; then san+="IP:$host,"; else san+="DNS:$host,"; fi
done
cat > "$work/broker.ext" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = ${san%,}
EXT

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/mqtt-broker.key" 2>/dev/null
openssl req -new -key "$work/mqtt-broker.key" -subj "/CN=${hosts[0]}" -out "$work/mqtt-broker.csr"
openssl x509 -req -in "$work/mqtt-broker.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
  -set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 -extfile "$work/broker.ext" \
  -out "$work/mqtt-broker.crt" 2>/dev/null
openssl verify -CAfile "$work/ca.crt" "$work/mqtt-broker.crt" >/dev/null

chmod 600 "$work/ca.key" "$work/mqtt-broker.key"
chmod 644 "$work/ca.crt" "$work/mqtt-broker.crt"
for file in ca.key ca.crt mqtt-broker.key mqtt-broker.crt; do mv -f "$work/$file" "$out/$file"; done

echo "generate-certs: broker certificate for ${san%,}"
echo "generate-certs: $(openssl x509 -in "$out/mqtt-broker.crt" -noout -enddate)"
echo "generate-certs: wrote $out/ca.crt, $out/mqtt-broker.crt, $out/mqtt-broker.key (and $out/ca.key: keep it safe)"
