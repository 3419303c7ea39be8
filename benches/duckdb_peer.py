"""DuckDB, driven by the Henge benchmark harness (benches/src/systems/duckdb.rs).

Reads one JSON command per line on stdin and answers with one JSON line on stdout:
  {"op": "open", "path": FILE}            open (create) a database file
  {"op": "version"}                       {"version": ...}
  {"op": "execute", "sql": SQL}           run statements, discard rows
  {"op": "query", "sql": SQL}             {"seconds": wall time, "rows": [[text, ...], ...]}
  {"op": "load", "sql": SQL}              {"seconds": wall, "cpu": process CPU seconds, "rows": n}
Errors answer {"error": message}.
"""

import datetime
import json
import sys
import time

import duckdb


def text(value):
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def main():
    con = None
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        try:
            if op == "open":
                con = duckdb.connect(command["path"])
                answer = {}
            elif op == "version":
                answer = {"version": "DuckDB " + duckdb.__version__}
            elif op == "execute":
                con.execute(command["sql"])
                answer = {}
            elif op == "query":
                start = time.perf_counter()
                rows = con.execute(command["sql"]).fetchall()
                seconds = time.perf_counter() - start
                answer = {"seconds": seconds, "rows": [[text(v) for v in r] for r in rows]}
            elif op == "load":
                start, cpu = time.perf_counter(), time.process_time()
                count = con.execute(command["sql"]).fetchall()[0][0]
                answer = {
                    "seconds": time.perf_counter() - start,
                    "cpu": time.process_time() - cpu,
                    "rows": count,
                }
            else:
                answer = {"error": "unknown op " + op}
        except Exception as e:  # every failure goes back to the harness
            answer = {"error": str(e)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
