#!/usr/bin/env bash
# Henge against a real PostgreSQL: the same rows loaded into both (in Henge, some published
# as segments and some still buffered), then every query of postgres_compare.sql run on
# both; the answers must be identical. PostgreSQL comes from the distribution's packages and
# runs on a temporary directory.
# Usage: sql-tests/clients/postgres_compare.sh path/to/henge
set -euo pipefail

henge=${1:?usage: postgres_compare.sh path/to/henge}
here=$(cd "$(dirname "$0")" && pwd)
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
work=$(mktemp -d)
chmod 755 "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
henge_port=$(free_port)
pg_port=$(free_port)
as_pg=()
[ "$(id -u)" -eq 0 ] && as_pg=(runuser -u postgres --)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; fi
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/pg"
[ "$(id -u)" -eq 0 ] && chown postgres "$work/pg"
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
  -o "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1 -c timezone=UTC" start >/dev/null

"$henge" serve --listen "127.0.0.1:$henge_port" --data-dir "$work/henge" >>"$work/henge.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  psql -h 127.0.0.1 -p "$henge_port" -U henge henge -Atqc 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.1
done

pg() { psql -h 127.0.0.1 -p "$pg_port" -U postgres postgres -X -At -v ON_ERROR_STOP=1 "$@"; }
hg() { psql -h 127.0.0.1 -p "$henge_port" -U henge henge -X -At -v ON_ERROR_STOP=1 "$@"; }

# The rows, made by PostgreSQL: skewed strings with NULLs and non-ASCII values, numbers
# with NULLs, timestamps over seven hours. Rows 1-20000 become segments in Henge; the rest
# stay in its real-time buffer.
columns="ts TIMESTAMP NOT NULL, country TEXT, page TEXT, n BIGINT, x DOUBLE PRECISION"
rows() { # rows <first> <last>
  pg -c "COPY (SELECT timestamp '2024-06-01 00:00:00' + i * interval '1 second' * 1.1,
      (ARRAY['DE','DE','DE','FR','FR','US','de','Ürün',NULL,'a''b'])[1 + (i * 7) % 10],
      CASE WHEN i % 13 = 0 THEN NULL ELSE '/p/' || (i * 31) % 97 END,
      CASE WHEN i % 11 = 0 THEN NULL ELSE (i * 37) % 1000 - 300 END,
      CASE WHEN i % 17 = 0 THEN NULL ELSE (i % 40) * 1.25 END
    FROM generate_series($1, $2) AS i) TO STDOUT"
}
rows 1 20000 >"$work/published.tsv"
rows 20001 24000 >"$work/buffered.tsv"
pg -c "CREATE TABLE t ($columns)" >/dev/null
hg -c "CREATE TABLE t ($columns) WITH (time_column = 'ts', segment_granularity = 'hour')" >/dev/null
for file in published buffered; do
  pg -c "\\copy t FROM '$work/$file.tsv'" >/dev/null
  hg -c "\\copy t FROM '$work/$file.tsv'" >/dev/null
  [ "$file" = published ] && hg -c "CHECKPOINT" >/dev/null
done
segments=$(hg -c "SELECT count(*) FROM sys.segments WHERE \"table\" = 't' AND state = 'published'")
[ "$segments" -ge 5 ] || { echo "FAIL: expected several published segments, got $segments"; exit 1; }

failed=0
count=0
while IFS= read -r sql; do
  case "$sql" in ''|'--'*) continue ;; esac
  count=$((count + 1))
  want=$(pg -c "$sql" 2>&1) || true
  got=$(hg -c "$sql" 2>&1) || true
  if [ "$want" != "$got" ]; then
    failed=$((failed + 1))
    echo "FAIL: $sql"
    diff <(echo "$want") <(echo "$got") | head -20 || true
  fi
done <"$here/postgres_compare.sql"
if [ "$failed" -ne 0 ]; then echo "$failed of $count queries differ from PostgreSQL"; exit 1; fi
echo "ok: $count queries give PostgreSQL's answers over $segments segments and buffered rows"

# The compatibility suite: each case gives PostgreSQL's rows or PostgreSQL's SQLSTATE
# (psql's VERBOSITY=sqlstate prints an error as its code alone). Henge may refuse a case
# with 0A000 or 42883 where PostgreSQL answers: not yet supported, counted. Anything else —
# other rows, an answer where PostgreSQL fails, another error — fails the run.
# The cases listed in pg_compat.known still differ (issue 14 is open): they are counted,
# and one that passes must leave the list. PG_COMPAT_REPORT=file writes each case's
# outcome there; PG_COMPAT_SHOW_KNOWN=1 prints how the listed cases differ.
report=${PG_COMPAT_REPORT:-/dev/null}
: >"$report"
known=$here/pg_compat.known
same=0 refused=0 differ=0 listed=0 fixed=0 total=0 chapter=
while IFS= read -r sql; do
  case "$sql" in
    '-- '[0-9]*) chapter=${sql#-- }; continue ;;
    ''|'--'*) continue ;;
  esac
  total=$((total + 1))
  want=$(pg -v VERBOSITY=sqlstate -c "$sql" 2>&1) || true
  got=$(hg -v VERBOSITY=sqlstate -c "$sql" 2>&1) || true
  listed_here=false
  grep -qxF -- "$sql" "$known" && listed_here=true
  if [ "$want" = "$got" ]; then
    same=$((same + 1)); outcome=same
    if $listed_here; then
      fixed=$((fixed + 1)); echo "NOW PASSES (remove it from pg_compat.known): $sql"
    fi
  elif [[ "$want" != ERROR:* && ( "$got" == "ERROR:  0A000" || "$got" == "ERROR:  42883" ) ]]; then
    refused=$((refused + 1)); outcome="refused (${got#ERROR:  })"
    if $listed_here; then
      fixed=$((fixed + 1)); echo "NOW REFUSED (remove it from pg_compat.known): $sql"
    fi
  elif $listed_here; then
    listed=$((listed + 1)); outcome="differs (known)"
    if [ -n "${PG_COMPAT_SHOW_KNOWN:-}" ]; then
      echo "KNOWN [$chapter]: $sql"
      diff <(echo "$want") <(echo "$got") | head -10 || true
    fi
  else
    differ=$((differ + 1)); outcome=DIFFERS
    echo "DIFFERS [$chapter]: $sql"
    diff <(echo "$want") <(echo "$got") | head -10 || true
  fi
  printf '%s\t%s\t%s\n' "$outcome" "$chapter" "$sql" >>"$report"
done <"$here/pg_compat.sql"
echo "compatibility suite: $same of $total cases give PostgreSQL's answer, $refused refused (not yet supported), $listed known to differ (pg_compat.known), $differ differ otherwise"
[ "$differ" -eq 0 ] && [ "$fixed" -eq 0 ] || exit 1
