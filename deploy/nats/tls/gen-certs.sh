#!/usr/bin/env bash
# Makes a private CA, a server certificate and one client certificate per
# user of accounts.conf, with openssl, for tls.conf (mutual TLS).
#
#   bash tls/gen-certs.sh [OUT_DIR]        # default: tls/certs beside this script
#
# Server names: localhost and 127.0.0.1, plus those in CB_TLS_SERVER_SANS
# (comma separated openssl SAN entries), e.g. for the containers:
#   CB_TLS_SERVER_SANS="DNS:nats-1,DNS:nats-2,DNS:nats-3,DNS:*.nats.default.svc.cluster.local"
# Client certificates carry the SAN email <user>@cb.local (for verify_and_map).
# Keys are ECDSA P-256; certificates last CB_TLS_DAYS days (default 825).
# The output holds private keys: never commit it (tls/certs is git-ignored).
set -euo pipefail

out="${1:-$(cd "$(dirname "$0")" && pwd)/certs}"
days="${CB_TLS_DAYS:-825}"
users=(admin workflow token event edge subscriber tenant-acme tenant-beta sys)
mkdir -p "$out"
cd "$out"
umask 077

key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null; }

# sign NAME SUBJECT EXTENSIONS: NAME-key.pem and NAME.pem signed by the CA.
sign() {
	local name=$1 subject=$2 ext=$3
	key "$name-key.pem"
	openssl req -new -key "$name-key.pem" -subj "$subject" -out "$name.csr"
	printf '%b\n' "$ext" >"$name.ext"
	openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
		-days "$days" -sha256 -extfile "$name.ext" -out "$name.pem" 2>/dev/null
	rm -f "$name.csr" "$name.ext"
}

key ca-key.pem
openssl req -new -x509 -key ca-key.pem -sha256 -days "$days" -subj "/O=Circuit Breaker/CN=Circuit Breaker NATS CA" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem

sans="DNS:localhost,IP:127.0.0.1"
if [[ -n "${CB_TLS_SERVER_SANS:-}" ]]; then
	sans="$sans,$CB_TLS_SERVER_SANS"
fi
sign server "/O=Circuit Breaker/CN=nats" \
	"basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=$sans"

for u in "${users[@]}"; do
	sign "$u" "/O=Circuit Breaker/CN=$u" \
		"basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=email:$u@cb.local"
done
rm -f ca.srl
chmod 644 ./*.pem
chmod 600 ./*-key.pem
echo "certificates in $out: ca.pem, server.pem, $(printf '%s.pem ' "${users[@]}")"
