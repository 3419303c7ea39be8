#!/usr/bin/env bash
# Real-client test of a server put on the network: psql over TLS (certificates from a CA
# made here with openssl), SCRAM-SHA-256 with and without channel binding, a role with
# SELECT on one table, plaintext refused, wrong passwords refused.
#   The "done when" of issue 15, as a new user would try it: on 0.0.0.0 with the superuser's password in
#   the configuration; log in over TLS; create a role with a password and SELECT on one
#   table; that role reads it, gets 42501 on INSERT and on any other table, 28P01 with a
#   wrong password; a plaintext connection is refused (28000) when TLS is required.
# Usage: sql-tests/clients/tls.sh path/to/henge
set -euo pipefail

henge=${1:?usage: tls.sh path/to/henge}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# A certificate authority and a server certificate for localhost and 127.0.0.1.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/ca.key" -out "$work/ca.crt" \
  -days 2 -subj "/CN=henge test CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$work/server.key" -out "$work/server.csr" \
  -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$work/san.cnf"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
  -CAcreateserial -out "$work/server.crt" -days 2 -extfile "$work/san.cnf" 2>/dev/null

cat >"$work/henge.toml" <<TOML
superuser_password = "boss-pw"
auth_failure_delay_ms = 50
tls = "required"
tls_cert = "$work/server.crt"
tls_key = "$work/server.key"

[[auth]]
address = "all"
method = "scram-sha-256"
TOML

"$henge" serve --config "$work/henge.toml" --listen "0.0.0.0:$port" --data-dir "$work/data" \
  >>"$work/henge.log" 2>&1 &
pid=$!

conn() { # conn <user> <sslmode> [extra libpq options]
  echo "host=localhost port=$port dbname=henge user=$1 sslmode=$2 sslrootcert=$work/ca.crt ${3:-}"
}
q() { # q <password> <connection> <sql>
  PGPASSWORD=$1 psql "$2" -X -At -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "$3" 2>&1
}
expect() { # expect <description> <wanted> <got>
  if [ "$2" != "$3" ]; then echo "FAIL: $1"; echo "  wanted: $2"; echo "  got:    $3"; exit 1; fi
  echo "ok: $1"
}
expect_code() { # expect_code <description> <sqlstate> <output>
  if ! grep -q "$2" <<<"$3"; then echo "FAIL: $1"; echo "  wanted: $2"; echo "  got:    $3"; exit 1; fi
  echo "ok: $1"
}

for _ in $(seq 1 300); do
  if q boss-pw "$(conn henge require)" 'SELECT 1' >/dev/null 2>&1; then break; fi
  sleep 0.1
done

expect "the superuser logs in over TLS, the certificate verified" "henge|t" \
  "$(q boss-pw "$(conn henge verify-full)" "SELECT current_user, true")"
expect "SCRAM binds to the certificate (SCRAM-SHA-256-PLUS)" "1" \
  "$(q boss-pw "$(conn henge require channel_binding=require)" 'SELECT 1')"

q boss-pw "$(conn henge require)" "CREATE TABLE events (ts TIMESTAMP NOT NULL, page TEXT) WITH (time_column = 'ts')" >/dev/null
q boss-pw "$(conn henge require)" "CREATE TABLE salaries (who TEXT, amount INT)" >/dev/null
q boss-pw "$(conn henge require)" "INSERT INTO events VALUES ('2024-01-01 00:00:00', 'home')" >/dev/null
q boss-pw "$(conn henge require)" "CREATE ROLE grafana LOGIN PASSWORD 'grafana-pw'" >/dev/null
q boss-pw "$(conn henge require)" "GRANT SELECT ON events TO grafana" >/dev/null

expect "the new role reads the table it was granted" "1|home" \
  "$(q grafana-pw "$(conn grafana verify-full)" 'SELECT count(*), min(page) FROM events')"
expect_code "and may not insert into it" "42501: permission denied for table events" \
  "$(q grafana-pw "$(conn grafana require)" "INSERT INTO events VALUES ('2024-01-01 00:00:01', 'x')" || true)"
expect_code "nor read another table" "42501: permission denied for table salaries" \
  "$(q grafana-pw "$(conn grafana require)" 'SELECT * FROM salaries' || true)"
# psql does not print the SQLSTATE of a failed connection: the messages are PostgreSQL's
# for 28P01 and 28000.
expect_code "a wrong password is refused" 'password authentication failed for user "grafana"' \
  "$(q wrong "$(conn grafana require)" 'SELECT 1' || true)"
expect_code "an unknown role is refused alike" 'password authentication failed for user "nobody"' \
  "$(q wrong "$(conn nobody require)" 'SELECT 1' || true)"
expect_code "plaintext is refused before any password is asked" "this server requires TLS" \
  "$(q grafana-pw "$(conn grafana disable)" 'SELECT 1' || true)"
expect_code "a certificate for another name fails verify-full" "does not match host name" \
  "$(PGPASSWORD=boss-pw psql "host=wrong.example hostaddr=127.0.0.1 port=$port dbname=henge user=henge sslmode=verify-full sslrootcert=$work/ca.crt" -X -Atc 'SELECT 1' 2>&1 || true)"
if grep -q "grafana-pw\|boss-pw" "$work/henge.log"; then
  echo "FAIL: a password appears in the server's log"; exit 1
fi
echo "ok: no password in the server's log"
echo "tls.sh: all checks passed"
