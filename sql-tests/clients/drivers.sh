#!/usr/bin/env bash
# Real-client tests with the drivers applications use, each against a fresh henge:
#   psycopg2 + SQLAlchemy's inspector, psycopg 3 and asyncpg (python_clients.py),
#   node-postgres (node/node_pg.js) and pgjdbc (jdbc/JdbcClient.java), every one logging in
#   with SCRAM-SHA-256.
# Drivers come from the package registries: pip into a venv under ~/.cache/henge, npm,
# and Debian's libpostgresql-jdbc-java (with a JDK) from apt.
# Usage: sql-tests/clients/drivers.sh path/to/henge
set -euo pipefail

henge=${1:?usage: drivers.sh path/to/henge}
here=$(cd "$(dirname "$0")" && pwd)
cache="$HOME/.cache/henge"
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
need_apt=()
[ -f /usr/share/java/postgresql.jar ] || need_apt+=(libpostgresql-jdbc-java)
command -v java >/dev/null || need_apt+=(default-jdk-headless)
command -v node >/dev/null || need_apt+=(nodejs npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

venv="$cache/clients-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check \
  'psycopg2-binary>=2.9' 'sqlalchemy>=2.0' 'psycopg[binary]>=3.1' 'asyncpg>=0.29'

node_dir="$cache/clients-node"
mkdir -p "$node_dir"
cp "$here/node/package.json" "$node_dir/"
(cd "$node_dir" && npm install --no-audit --no-fund --silent >/dev/null)

# Every driver logs in with SCRAM-SHA-256: the server asks every address for a password.
export HENGE_TEST_PASSWORD="driver-pw-$$"
export PGPASSWORD="$HENGE_TEST_PASSWORD"
cat >"$work/henge.toml" <<TOML
superuser_password = "$HENGE_TEST_PASSWORD"

[[auth]]
address = "all"
method = "scram-sha-256"
TOML

start() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rm -rf "$work/data"
  "$henge" serve --config "$work/henge.toml" --listen "127.0.0.1:$port" --data-dir "$work/data" >>"$work/henge.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 300); do
    if psql -h 127.0.0.1 -p "$port" -U henge henge -Atqc 'SELECT 1' >/dev/null 2>&1; then return; fi
    sleep 0.1
  done
  echo "henge did not start"; cat "$work/henge.log"; exit 1
}
stop() { kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; }

start
"$venv/bin/python" "$here/python_clients.py" "$port"
stop

start
NODE_PATH="$node_dir/node_modules" node "$here/node/node_pg.js" "$port"
stop

start
java -cp /usr/share/java/postgresql.jar "$here/jdbc/JdbcClient.java" "$port"
stop
echo "driver tests passed"
