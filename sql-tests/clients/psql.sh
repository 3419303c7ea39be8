#!/usr/bin/env bash
# Real-client test: a new user's session with psql and pgbench against a real henge.
#   create a table, INSERT, \copy a CSV with a header, query, reject a CSV with a bad
#   number on line 3 (loading nothing), pgbench in extended mode, kill -9, restart, CHECKPOINT and
#   find every acknowledged row.
# Usage: sql-tests/clients/psql.sh path/to/henge
set -euo pipefail

henge=${1:?usage: psql.sh path/to/henge}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start() {
  "$henge" serve --listen "127.0.0.1:$port" --data-dir "$work/data" >>"$work/henge.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    if psql -h 127.0.0.1 -p "$port" -U henge henge -Atqc 'SELECT 1' >/dev/null 2>&1; then return; fi
    sleep 0.1
  done
  echo "henge did not start"; cat "$work/henge.log"; exit 1
}
q() { psql -h 127.0.0.1 -p "$port" -U henge henge -X -At -v ON_ERROR_STOP=1 "$@"; }
expect() { # expect <description> <wanted> <got>
  if [ "$2" != "$3" ]; then echo "FAIL: $1"; echo "  wanted: $2"; echo "  got:    $3"; exit 1; fi
  echo "ok: $1"
}

start
q -c "CREATE TABLE events (ts TIMESTAMP NOT NULL, page TEXT, added BIGINT) WITH (time_column = 'ts', segment_granularity = 'hour')"
q -c "INSERT INTO events VALUES ('2024-01-01 00:00:00', 'Main', 10), ('2024-01-01 01:00:00', 'Talk', 3)"

cat >"$work/good.csv" <<'CSV'
ts,page,added
2024-01-01 02:00:00,Main,5
2024-01-01 03:00:00,"",7
2024-01-01 04:00:00,,1
CSV
out=$(q -c "\\copy events FROM '$work/good.csv' WITH (FORMAT csv, HEADER true)")
expect "\\copy with header reports its rows" "COPY 3" "$out"
expect "rows are queryable at once" "5|26" "$(q -c 'SELECT count(*), sum(added) FROM events')"
expect "quoted empty string differs from NULL" "1|1" \
  "$(q -c "SELECT count(*) FILTER (WHERE page = ''), count(*) FILTER (WHERE page IS NULL) FROM events")"

cat >"$work/bad.csv" <<'CSV'
ts,page,added
2024-01-02 00:00:00,Main,1
2024-01-02 01:00:00,Main,lots
2024-01-02 02:00:00,Main,2
CSV
if err=$(q -c "\\copy events FROM '$work/bad.csv' WITH (FORMAT csv, HEADER true)" 2>&1); then
  echo "FAIL: a bad CSV was accepted"; exit 1
fi
case "$err" in
  *"line 3"*"column added"*"invalid input syntax for type bigint"*) echo "ok: bad CSV names line 3 and the column";;
  *) echo "FAIL: unexpected error: $err"; exit 1;;
esac
expect "the bad CSV loaded nothing" "5" "$(q -c 'SELECT count(*) FROM events')"

expect "\\copy to stdout round-trips" "2024-01-01 03:00:00,\"\",7" \
  "$(q -c "\\copy (SELECT * FROM events WHERE added = 7) TO STDOUT WITH (FORMAT csv)")"

# pgbench with the extended protocol: parameters inferred from the table.
cat >"$work/bench.sql" <<'SQL'
\set n random(1, 1000)
INSERT INTO events VALUES ('2024-01-03 00:00:00', 'bench', :n);
SELECT count(*) FROM events WHERE added = :n;
SQL
pgbench -n -M extended -h 127.0.0.1 -p "$port" -U henge -c 2 -t 50 -f "$work/bench.sql" henge >"$work/pgbench.out" 2>&1 \
  || { cat "$work/pgbench.out"; echo "FAIL: pgbench -M extended"; exit 1; }
grep -q "number of failed transactions: 0" "$work/pgbench.out" || { cat "$work/pgbench.out"; exit 1; }
echo "ok: pgbench -M extended ran 100 transactions"
pgbench -n -M prepared -h 127.0.0.1 -p "$port" -U henge -c 2 -t 25 -f "$work/bench.sql" henge >"$work/pgbench.out" 2>&1 \
  || { cat "$work/pgbench.out"; echo "FAIL: pgbench -M prepared"; exit 1; }
echo "ok: pgbench -M prepared ran 50 transactions"
pgbench -n -M simple -h 127.0.0.1 -p "$port" -U henge -c 2 -t 25 -f "$work/bench.sql" henge >"$work/pgbench.out" 2>&1 \
  || { cat "$work/pgbench.out"; echo "FAIL: pgbench -M simple"; exit 1; }
echo "ok: pgbench -M simple ran 50 transactions"
expect "every pgbench insert is there" "200" "$(q -c "SELECT count(*) FROM events WHERE page = 'bench'")"

# psql's meta-commands run psql's own catalog queries.
q -c "CREATE TABLE typed (ts TIMESTAMPTZ NOT NULL, name VARCHAR(20) NOT NULL, price NUMERIC(10,2), n INTEGER) WITH (time_column = 'ts')" >/dev/null
expect "\\dt lists the tables" "public|events|table|henge
public|typed|table|henge" "$(q -c '\dt')"
expect "\\d describes columns with their types" "ts|timestamp with time zone||not null|
name|character varying(20)||not null|
price|numeric(10,2)|||
n|integer|||" "$(q -c '\d typed' | grep -v '^Table')"
out=$(q -c '\d+ typed')
case "$out" in
  *"price|numeric(10,2)|||"*"main"*) echo "ok: \\d+ describes columns with storage";;
  *) echo "FAIL: \\d+ typed: $out"; exit 1;;
esac
expect "\\dn lists the schemas" "public|henge
sys|henge" "$(q -c '\dn')"
expect "\\l lists the database" "henge|henge|UTF8" "$(q -c '\l' | cut -d'|' -f1-3)"
expect "\\x shows records" "ts|2024-01-01 00:00:00
page|Main
added|10" "$(q -c '\x on' -c "SELECT * FROM events WHERE added = 10 AND page = 'Main' ORDER BY ts LIMIT 1" | grep -v 'RECORD\|Expanded')"
out=$(q -c '\timing on' -c 'SELECT 1')
case "$out" in
  *"Time: "*" ms"*) echo "ok: \\timing reports the time";;
  *) echo "FAIL: \\timing: $out"; exit 1;;
esac
printf '2024-02-01 00:00:00+00\tpen\t1.50\t3\n2024-02-02 00:00:00+00\tink\t\\N\t4\n' >"$work/typed.tsv"
expect "\\copy from a text file" "COPY 2" "$(q -c "\\copy typed FROM '$work/typed.tsv'")"
q -c "\\copy (SELECT * FROM typed ORDER BY ts) TO '$work/typed.out'" >/dev/null
expect "\\copy to a file round-trips" "$(cat "$work/typed.tsv")" "$(cat "$work/typed.out")"

# A transaction block with psql's ON_ERROR_ROLLBACK: psql sets a savepoint before each
# statement and rolls back to it after an error, so the block goes on and commits the rest;
# a block that ends in ROLLBACK applies nothing.
q -c "CREATE TABLE tx (ts TIMESTAMP NOT NULL, n BIGINT) WITH (time_column = 'ts')"
q -v ON_ERROR_STOP=0 -v ON_ERROR_ROLLBACK=on >"$work/tx.out" 2>&1 <<'SQL' || true
BEGIN;
INSERT INTO tx VALUES ('2024-01-01', 1);
SELECT 1 / 0;
INSERT INTO tx VALUES ('2024-01-02', 2);
COMMIT;
BEGIN;
INSERT INTO tx VALUES ('2024-01-03', 100);
ROLLBACK;
SQL
grep -q "division by zero" "$work/tx.out" || { cat "$work/tx.out"; exit 1; }
expect "ON_ERROR_ROLLBACK recovers the block; ROLLBACK discards" "2|3" "$(q -c 'SELECT count(*), sum(n) FROM tx')"

# Notices and warnings keep PostgreSQL's severities: a GRANT by a role that may not grant
# is a WARNING (01007), a DROP … IF EXISTS of nothing a NOTICE.
out=$(q -v VERBOSITY=verbose 2>&1 <<'SQL'
CREATE ROLE granter;
GRANT SELECT ON events TO granter;
SET ROLE granter;
GRANT SELECT ON events TO PUBLIC;
RESET ROLE;
DROP TABLE IF EXISTS no_such_table;
REVOKE SELECT ON events FROM granter;
DROP ROLE granter;
SQL
)
expect "a grant without the grant option warns" "WARNING:  01007: no privileges were granted for \"events\"" \
  "$(grep -F 'WARNING' <<<"$out")"
expect "a drop of nothing notices" "NOTICE:  00000: table \"no_such_table\" does not exist, skipping" \
  "$(grep -F 'NOTICE' <<<"$out")"

# listen_while <channel> <name> <command…>: a psql session LISTENs on the channel, stays
# idle while the command runs in another, then runs one more statement: psql prints the
# notifications it received after it, as with PostgreSQL. Its output goes to $work/<name>.out.
listen_while() {
  local channel=$1 name=$2 listener
  shift 2
  mkfifo "$work/$name.in"
  psql -h 127.0.0.1 -p "$port" -U henge henge -X <"$work/$name.in" >"$work/$name.out" 2>&1 &
  listener=$!
  exec 3>"$work/$name.in"
  echo "LISTEN $channel;" >&3
  sleep 0.5
  "$@" >/dev/null
  sleep 0.5
  echo "SELECT 1;" >&3
  exec 3>&-
  wait "$listener"
}

listen_while jobs listener q -c "NOTIFY jobs, 'from another session'"
expect "psql hears a notification from another session" 1 \
  "$(grep -c 'Asynchronous notification "jobs" with payload "from another session" received from server process with PID' "$work/listener.out")"

# An alert as a new user would try it: "3 failed transactions for one card within 1
# hour", LISTEN in psql, a day's transactions loaded with \copy in two halves and the server
# killed between them; the alerts are those a query over the same rows says.
python3 - "$work" <<'PY'
import random, sys
random.seed(7)
lines = []
for i in range(4000):
    second = max(0, min(86399, i * 21 + random.randint(-240, 240)))
    card = random.randrange(30)
    failed = random.randrange(3 if card < 5 else 20) == 0
    lines.append(f"2024-06-01 {second // 3600:02}:{second // 60 % 60:02}:{second % 60:02},card{card},{'failed' if failed else 'ok'},{random.randrange(500)}\n")
open(sys.argv[1] + "/day1.csv", "w").writelines(lines[:2000])
open(sys.argv[1] + "/day2.csv", "w").writelines(lines[2000:])
PY
q -c "CREATE TABLE transactions (ts TIMESTAMP NOT NULL, card TEXT, status TEXT, amount BIGINT) WITH (time_column = 'ts', segment_granularity = 'hour')" >/dev/null
q -c "CREATE ALERT card_failures ON transactions WHERE status = 'failed' PARTITION BY card WITHIN INTERVAL '1 hour' WHEN count(*) >= 3 NOTIFY card_alerts" >/dev/null
listen_while card_alerts alerts q -c "\copy transactions FROM '$work/day1.csv' WITH (FORMAT csv)"
expected_sql="SELECT a.card || ' ' || a.ts::text FROM (SELECT DISTINCT card, ts FROM transactions WHERE status = 'failed') AS a
  JOIN transactions AS b ON b.card = a.card AND b.status = 'failed' AND b.ts BETWEEN a.ts - INTERVAL '1 hour' AND a.ts
  GROUP BY a.card, a.ts HAVING count(*) >= 3 ORDER BY 1"
heard=$(grep -o '"key":"[^"]*","window_start":"[^"]*","window_end":"[^"]*"' "$work/alerts.out" \
  | sed -E 's/"key":"([^"]*)".*"window_end":"([^"]*)"/\1 \2/' | sort)
expect "psql hears alerts" "t" "$([ -n "$heard" ] && echo t)"
expect "psql hears each alert of the first half once, as the query says" "$(q -c "$expected_sql" | sort)" "$heard"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
start
q -c "\copy transactions FROM '$work/day2.csv' WITH (FORMAT csv)" >/dev/null
expect "after kill -9 the alerts table holds each alert once, as the query says" \
  "$(q -c "$expected_sql" | sort)" "$(q -c "SELECT key || ' ' || window_end::text FROM alerts" | sort)"
expect "the day made alerts" "t" "$(q -c "SELECT count(*) > 10 FROM alerts")"

before=$(q -c 'SELECT count(*), sum(added) FROM events')
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
start
expect "after kill -9 and restart every acknowledged row is there" "$before" "$(q -c 'SELECT count(*), sum(added) FROM events')"

q -c 'CHECKPOINT' >/dev/null
expect "CHECKPOINT leaves no row in memory" "0" \
  "$(q -c "SELECT count(*) FROM sys.segments WHERE \"table\" = 'events' AND state <> 'published'")"
expect "CHECKPOINT keeps every row" "$before" "$(q -c 'SELECT count(*), sum(added) FROM events')"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
start
expect "published segments serve after kill -9" "$before" "$(q -c 'SELECT count(*), sum(added) FROM events')"
echo "psql client tests passed"
