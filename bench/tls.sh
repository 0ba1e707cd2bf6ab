#!/bin/sh
# bench/tls.sh -- testssl.sh (Debian package testssl.sh) against quiverd over TLS.
#
#   bench/tls.sh                  (from the repository root, after `make`)
#
# Starts build/quiverd with a throwaway self-signed certificate (KEYTYPE=ec: P-256, the
# default; KEYTYPE=rsa: RSA 2048) made by openssl in a temporary directory, runs testssl
# (protocols, cipher categories, every suite per protocol, server defaults, known
# vulnerabilities), prints its report, and ends with one line
#   tls-check keytype=K sslv2=.. sslv3=.. tls1=.. tls1_1=.. tls1_2=.. tls1_3=.. weak_offered=N suites=S
# and exit status 1 when SSLv2/SSLv3/TLS 1.0/TLS 1.1 or a NULL, anonymous, export, LOW,
# 3DES/IDEA or CBC ("obsolete") suite is offered.
set -eu

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
KEYTYPE=${KEYTYPE:-ec}
command -v testssl >/dev/null || { echo "tls.sh: testssl not found (apt-get install testssl.sh)" >&2; exit 1; }
[ -x "$BUILD/quiverd" ] || { echo "tls.sh: missing $BUILD/quiverd (run make)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/quiver-tls-XXXXXX")
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

case $KEYTYPE in
  ec) newkey="-newkey ec -pkeyopt ec_paramgen_curve:P-256" ;;
  rsa) newkey="-newkey rsa:2048" ;;
  *) echo "tls.sh: KEYTYPE is ec or rsa" >&2; exit 1 ;;
esac
# shellcheck disable=SC2086
openssl req -x509 $newkey -nodes -days 2 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >/dev/null 2>&1
"$BUILD/quiverd" --listen 127.0.0.1:0 --data "$TMP/db" --threads 2 --log-level warn \
  --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem" >"$TMP/ready" &
PID=$!
i=0
while ! grep -q "listening on" "$TMP/ready" 2>/dev/null; do
  i=$((i + 1))
  [ $i -gt 300 ] && { echo "tls.sh: quiverd did not start" >&2; exit 1; }
  sleep 0.1
done
PORT=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$TMP/ready")

testssl --quiet --color 0 --warnings off --protocols --std --cipher-per-proto --server-defaults --vulnerable \
  "127.0.0.1:$PORT" >"$TMP/report" 2>&1 || true
grep -v '^[[:space:]]*$' "$TMP/report"

state() { sed -n "s/^ $1 *\(not offered\|offered\).*/\1/p" "$TMP/report" | head -1 | tr ' ' '_'; }
weak=$(grep -E '^ (NULL ciphers|Anonymous NULL|Export ciphers|LOW: |Triple DES|Obsolete CBC)' "$TMP/report" | grep -vc 'not offered' || true)
suites=$(grep -cE '^ x[0-9a-f]+ ' "$TMP/report" || true)
line="tls-check keytype=$KEYTYPE sslv2=$(state SSLv2) sslv3=$(state SSLv3) tls1=$(state 'TLS 1') tls1_1=$(state 'TLS 1.1')"
line="$line tls1_2=$(state 'TLS 1.2') tls1_3=$(state 'TLS 1.3') weak_offered=$weak suites=$suites"
echo "$line"
case $line in
  *sslv2=offered*|*sslv3=offered*|*tls1=offered*|*tls1_1=offered*) exit 1 ;;
esac
[ "$weak" = 0 ] || exit 1
