"""DuckDB or ClickHouse (chDB, ClickHouse in-process), driven by the Henge benchmark
harness (benches/src/systems/python.rs): `python peer.py duckdb|chdb`.

Reads one JSON command per line on stdin and answers with one JSON line on stdout:
  {"op": "open", "path": DIR}             open (create) a database in directory DIR
  {"op": "version"}                       {"version": ...}
  {"op": "execute", "sql": SQL}           run statements, discard rows
  {"op": "query", "sql": SQL}             {"seconds": wall time, "rows": [[text, ...], ...]}
  {"op": "load", "sql": SQL, "table": T}  {"seconds": wall, "cpu": process CPU seconds,
                                           "rows": rows in T afterwards}
Errors answer {"error": message}. Queries are timed here, around running the query and
fetching its rows, so the pipe to the harness is not counted.
"""

import datetime
import json
import os
import sys
import time


def text(value):
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    return str(value)


class DuckDb:
    def __init__(self, path):
        import duckdb

        self.con = duckdb.connect(os.path.join(path, "duckdb.db"))
        self.version = "DuckDB " + duckdb.__version__

    def execute(self, sql):
        self.con.execute(sql)

    def rows(self, sql):
        return [[text(v) for v in row] for row in self.con.execute(sql).fetchall()]


class ClickHouse:
    def __init__(self, path):
        import chdb
        from chdb import session

        self.session = session.Session(os.path.join(path, "chdb"))
        server = self.rows("SELECT version()")[0][0]
        self.version = "ClickHouse %s (chDB %s)" % (server, chdb.__version__)

    def execute(self, sql):
        self.session.query(sql)

    def rows(self, sql):
        # TabSeparated: one line per row, values tab-separated, \N for NULL; the
        # benchmark's values hold no tabs, newlines or backslashes.
        out = self.session.query(sql, "TabSeparated").bytes().decode()
        return [
            ["NULL" if v == "\\N" else v for v in line.split("\t")]
            for line in out.split("\n")
            if line
        ]


def main():
    engines = {"duckdb": DuckDb, "chdb": ClickHouse}
    engine = engines[sys.argv[1]]
    db = None
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        try:
            if op == "open":
                db = engine(command["path"])
                answer = {}
            elif op == "version":
                answer = {"version": db.version}
            elif op == "execute":
                db.execute(command["sql"])
                answer = {}
            elif op == "query":
                start = time.perf_counter()
                rows = db.rows(command["sql"])
                answer = {"seconds": time.perf_counter() - start, "rows": rows}
            elif op == "load":
                start, cpu = time.perf_counter(), time.process_time()
                db.execute(command["sql"])
                seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
                count = db.rows("SELECT count(*) FROM " + command["table"])[0][0]
                answer = {"seconds": seconds, "cpu": cpu, "rows": int(count)}
            else:
                answer = {"error": "unknown op " + op}
        except Exception as e:  # every failure goes back to the harness
            answer = {"error": str(e)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
