"""Real-client tests with Python's PostgreSQL drivers against a running henge:
psycopg2 with SQLAlchemy's inspector, psycopg 3 (binary parameters and results, COPY) and
asyncpg (prepared statements, binary results, its type introspection).

Usage: python_clients.py PORT
"""

import asyncio
import datetime
import decimal
import os
import sys
import uuid

PORT = int(sys.argv[1])
# drivers.sh runs the server with SCRAM-SHA-256 logins for every address: the password
# comes from the environment, as an application's would.
PASSWORD = os.environ.get("HENGE_TEST_PASSWORD", "")
CREDENTIALS = f"henge:{PASSWORD}" if PASSWORD else "henge"
DSN = f"postgresql://{CREDENTIALS}@127.0.0.1:{PORT}/henge"


def check(description, wanted, got):
    if wanted != got:
        print(f"FAIL: {description}\n  wanted: {wanted!r}\n  got:    {got!r}")
        sys.exit(1)
    print(f"ok: {description}")


def psycopg2_and_sqlalchemy():
    import psycopg2
    import sqlalchemy
    from sqlalchemy import inspect, text

    conn = psycopg2.connect(DSN)
    check("psycopg2 reads the server version", 160000, conn.server_version)
    cur = conn.cursor()
    cur.execute(
        "CREATE TABLE py_events (ts TIMESTAMP NOT NULL, host VARCHAR(40) NOT NULL, "
        "value DOUBLE PRECISION, amount NUMERIC(10,2)) WITH (time_column = 'ts')"
    )
    conn.commit()
    cur.execute(
        "INSERT INTO py_events VALUES (%s, %s, %s, %s)",
        (datetime.datetime(2024, 1, 1, 12, 0), "web-1", 0.5, decimal.Decimal("12.34")),
    )
    conn.commit()
    cur.execute("SELECT host, value, amount FROM py_events WHERE host = %s", ("web-1",))
    check("psycopg2 round-trips typed values", [("web-1", 0.5, decimal.Decimal("12.34"))], cur.fetchall())
    cur.execute("SELECT count(*) FROM py_events")
    check("psycopg2 names columns as PostgreSQL does", "count", cur.description[0].name)
    conn.close()

    engine = sqlalchemy.create_engine(f"postgresql+psycopg2://{CREDENTIALS}@127.0.0.1:{PORT}/henge")
    with engine.connect() as c:
        check("SQLAlchemy parses version()", (16, 0), engine.dialect.server_version_info)
        check("SQLAlchemy runs a query", 1, c.execute(text("SELECT count(*) FROM py_events")).scalar())
    inspector = inspect(engine)
    check("inspector.get_table_names", ["py_events"], inspector.get_table_names())
    check("inspector.has_table", (True, False), (inspector.has_table("py_events"), inspector.has_table("nope")))
    columns = [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns("py_events")]
    check(
        "inspector.get_columns",
        [
            ("ts", "TIMESTAMP", False),
            ("host", "VARCHAR(40)", False),
            ("value", "DOUBLE PRECISION", True),
            ("amount", "NUMERIC(10, 2)", True),
        ],
        columns,
    )
    check("inspector.get_schema_names has public", True, "public" in inspector.get_schema_names())

    # Views: created and read through SQLAlchemy, listed by its inspector apart from tables.
    with engine.begin() as c:
        c.execute(text("CREATE VIEW py_hosts AS SELECT host, count(*) AS n FROM py_events GROUP BY host"))
    with engine.connect() as c:
        check("SQLAlchemy reads a view", [("web-1", 1)], [tuple(r) for r in c.execute(text("SELECT * FROM py_hosts"))])
    inspector = inspect(engine)
    check("inspector.get_view_names", ["py_hosts"], inspector.get_view_names())
    check("inspector.get_table_names leaves views out", ["py_events"], inspector.get_table_names())
    check(
        "inspector.get_view_definition",
        "SELECT host, count(*) AS n FROM py_events GROUP BY host",
        inspector.get_view_definition("py_hosts"),
    )
    # (PostgreSQL would say VARCHAR(40): a view's column does not keep a varchar's length.)
    check(
        "inspector.get_columns of a view",
        [("host", "TEXT"), ("n", "BIGINT")],
        [(c["name"], str(c["type"])) for c in inspector.get_columns("py_hosts")],
    )
    with engine.begin() as c:
        c.execute(text("DROP VIEW py_hosts"))
    check("inspector.get_view_names after DROP VIEW", [], inspect(engine).get_view_names())


def psycopg3():
    import psycopg

    with psycopg.connect(DSN) as conn:
        check("psycopg 3 sees ParameterStatus", "UTF8", conn.info.parameter_status("client_encoding"))
        conn.execute("SET application_name = 'py3'")
        check(
            "SET application_name is reported back",
            "py3",
            conn.info.parameter_status("application_name"),
        )
        with conn.cursor(binary=True) as cur:
            cur.execute(
                "SELECT host, value, ts FROM py_events WHERE value > %s AND ts >= %s",
                (0.1, datetime.datetime(2024, 1, 1)),
            )
            check(
                "psycopg 3 binary parameters and results",
                [("web-1", 0.5, datetime.datetime(2024, 1, 1, 12, 0))],
                cur.fetchall(),
            )
            # host is a VARCHAR(40) column: sent as varchar (1043), as PostgreSQL sends it.
            check("psycopg 3 result types (varchar, float8, timestamp)", [1043, 701, 1114], [d.type_code for d in cur.description])
            # json and jsonb arrive with their own OIDs (jsonb in binary after its version
            # byte), so the driver hands back Python objects; a Jsonb parameter goes in binary.
            from psycopg.types.json import Jsonb

            cur.execute(
                "SELECT '{\"b\": [1, 2], \"a\": null}'::jsonb, '{\"x\" : 1}'::json, %s::jsonb -> 'k'",
                (Jsonb({"k": {"n": 1.5}}),),
            )
            check(
                "psycopg 3 json and jsonb results and a jsonb parameter",
                ({"a": None, "b": [1, 2]}, {"x": 1}, {"n": 1.5}),
                cur.fetchone(),
            )
            check("psycopg 3 json result types (jsonb, json)", [3802, 114], [d.type_code for d in cur.description][:2])
            # uuid: 16 bytes each way in binary.
            some = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
            cur.execute("SELECT %s::uuid, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid = %s", (some, some))
            check("psycopg 3 uuid parameters and results", (some, True), cur.fetchone())
        with conn.cursor() as cur:
            with cur.copy("COPY py_events (ts, host, value) FROM STDIN") as copy:
                for i in range(100):
                    copy.write_row((datetime.datetime(2024, 1, 2) + datetime.timedelta(minutes=i), f"h{i % 3}", float(i)))
            check("psycopg 3 COPY FROM STDIN", 100, cur.rowcount)
            cur.execute("SELECT count(*), sum(value) FROM py_events WHERE ts >= '2024-01-02'")
            check("rows from COPY are queryable", (100, 4950.0), cur.fetchone())
            rows = []
            with cur.copy("COPY (SELECT host FROM py_events WHERE value < 3 AND ts >= '2024-01-02' ORDER BY value) TO STDOUT") as copy:
                for row in copy.rows():
                    rows.append(row)
            check("psycopg 3 COPY TO STDOUT", [("h0",), ("h1",), ("h2",)], rows)
        # A failed statement in a transaction block fails the block, as in PostgreSQL.
        conn.commit()
        try:
            with conn.transaction():
                conn.execute("SELECT 1 / 0")
        except psycopg.errors.DivisionByZero:
            print("ok: psycopg 3 sees SQLSTATE 22012 and rolls back")
        check("the connection is usable again", 1, conn.execute("SELECT 1").fetchone()[0])


async def asyncpg_client():
    import asyncpg

    conn = await asyncpg.connect(DSN)
    check("asyncpg reads the server version", 16, conn.get_server_version().major)
    statement = await conn.prepare("SELECT host, value, amount, ts FROM py_events WHERE host = $1")
    rows = await statement.fetch("web-1")
    check(
        "asyncpg prepared statement with binary results",
        [("web-1", 0.5, decimal.Decimal("12.34"), datetime.datetime(2024, 1, 1, 12, 0))],
        [tuple(r) for r in rows],
    )
    check("asyncpg names columns", ["host", "value", "amount", "ts"], [a.name for a in statement.get_attributes()])
    check(
        "asyncpg result types",
        ["varchar", "float8", "numeric", "timestamp"],
        [a.type.name for a in statement.get_attributes()],
    )
    count = await conn.fetchval("SELECT count(*) FROM py_events WHERE value >= $1", 50.0)
    check("asyncpg parameter of an inferred type", 50, count)
    doc = await conn.fetchval("SELECT jsonb_build_object('k', $1::text, 'n', 2)", "v")
    check("asyncpg decodes jsonb (binary, after its version byte)", '{"k": "v", "n": 2}', doc)
    made = await conn.fetchval("SELECT gen_random_uuid()")
    check("asyncpg decodes uuid (16 bytes in binary)", (True, 4), (isinstance(made, uuid.UUID), made.version))
    # Numerics with the places PostgreSQL gives each value, in binary (dscale per value).
    averages = await conn.fetch(
        "SELECT g, avg(x), sum(x), x2 FROM (SELECT g, x, 1::numeric / g AS x2 FROM "
        "(VALUES (1, 1), (1, 1), (2, 10), (2, 10), (3, -5)) AS t(g, x)) AS s "
        "GROUP BY g, x2 ORDER BY g"
    )
    check(
        "asyncpg decodes numerics with their own places",
        [
            (1, "1.00000000000000000000", 2, "1.00000000000000000000"),
            (2, "10.0000000000000000", 20, "0.50000000000000000000"),
            (3, "-5.0000000000000000", -5, "0.33333333333333333333"),
        ],
        [(r[0], str(r[1]), r[2], str(r[3])) for r in averages],
    )
    await conn.execute("SET TIME ZONE 'UTC'")
    when = await conn.fetchval("SELECT max(ts) FROM py_events")
    check("asyncpg decodes timestamps", datetime.datetime(2024, 1, 2, 1, 39), when)
    await conn.close()


def listen_notify_psycopg():
    """LISTEN/NOTIFY with psycopg2 (select + poll + notifies) and psycopg 3 (notifies())."""
    import select
    import time

    import psycopg
    import psycopg2

    listener = psycopg2.connect(DSN)
    listener.autocommit = True
    listener.cursor().execute("LISTEN py_jobs")
    sender = psycopg2.connect(DSN)
    sender.autocommit = True
    cur = sender.cursor()
    cur.execute("SELECT pg_backend_pid()")
    sender_pid = cur.fetchone()[0]
    cur.execute("NOTIFY py_jobs, 'one'")
    cur.execute("SELECT pg_notify('py_jobs', 'two')")
    got = []
    deadline = time.time() + 10
    # The listener sends nothing: it waits on its socket and polls, as applications do.
    while len(got) < 2 and time.time() < deadline:
        if select.select([listener], [], [], 1) != ([], [], []):
            listener.poll()
            while listener.notifies:
                n = listener.notifies.pop(0)
                got.append((n.channel, n.payload, n.pid))
    check(
        "psycopg2 conn.poll() hears notifications",
        [("py_jobs", "one", sender_pid), ("py_jobs", "two", sender_pid)],
        got,
    )
    listener.close()
    sender.close()

    with psycopg.connect(DSN, autocommit=True) as listener, psycopg.connect(DSN, autocommit=True) as sender:
        listener.execute("LISTEN py3_jobs")
        with sender.transaction():
            sender.execute("NOTIFY py3_jobs, 'in a block'")
        got = [(n.channel, n.payload) for n in listener.notifies(timeout=10, stop_after=1)]
        check("psycopg 3 conn.notifies()", [("py3_jobs", "in a block")], got)


async def asyncpg_listener():
    import asyncpg

    listener = await asyncpg.connect(DSN)
    sender = await asyncpg.connect(DSN)
    heard = asyncio.Queue()
    await listener.add_listener("apg_jobs", lambda conn, pid, channel, payload: heard.put_nowait((channel, payload)))
    await sender.execute("NOTIFY apg_jobs, 'hello'")
    got = await asyncio.wait_for(heard.get(), 10)
    check("asyncpg add_listener", ("apg_jobs", "hello"), got)
    await listener.close()
    await sender.close()


def unconstrained_numerics():
    """A numeric column without a scale keeps each value's own, however it is sent."""
    import psycopg

    import asyncpg

    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE py_amounts (ts TIMESTAMP NOT NULL, n INT, x NUMERIC) WITH (time_column = 'ts')"
        )
        when = datetime.datetime(2024, 1, 1)
        conn.execute("INSERT INTO py_amounts VALUES (%s, 1, %s)", (when, decimal.Decimal("10.00")))
        with conn.cursor(binary=True) as cur:
            cur.execute("INSERT INTO py_amounts VALUES (%s, 2, %s)", (when, decimal.Decimal("3.140")))
        conn.execute("INSERT INTO py_amounts VALUES (%s, 3, 7)", (when,))
        try:
            conn.execute("INSERT INTO py_amounts VALUES (%s, 4, %s)", (when, decimal.Decimal("0.123456789012345")))
            check("a value with more places than Henge keeps is refused", "refused", "stored")
        except psycopg.errors.FeatureNotSupported:
            print("ok: psycopg 3 sees 0A000 for a value Henge would have to round")
        rows = conn.execute("SELECT n, x, x::text FROM py_amounts ORDER BY n").fetchall()
        check(
            "psycopg 3 parameters keep their scale (text and binary)",
            [(1, decimal.Decimal("10.00"), "10.00"), (2, decimal.Decimal("3.140"), "3.140"), (3, decimal.Decimal("7"), "7")],
            [(n, x, t) for n, x, t in rows],
        )
        check("the scales are the values' own", ["10.00", "3.140", "7"], [str(r[1]) for r in rows])

    async def binary():
        conn = await asyncpg.connect(DSN)
        await conn.execute(
            "INSERT INTO py_amounts VALUES ($1, 5, $2)", datetime.datetime(2024, 1, 1), decimal.Decimal("2.50")
        )
        rows = await conn.fetch("SELECT x, x * 2, sum(x) OVER () FROM py_amounts WHERE n >= 2 ORDER BY n")
        await conn.close()
        return [tuple(str(v) for v in r[:2]) for r in rows]

    check(
        "asyncpg binary parameters and results keep each value's scale",
        [("3.140", "6.280"), ("7", "14"), ("2.50", "5.00")],
        asyncio.run(binary()),
    )


psycopg2_and_sqlalchemy()
psycopg3()
asyncio.run(asyncpg_client())
unconstrained_numerics()
listen_notify_psycopg()
asyncio.run(asyncpg_listener())
print("python client tests passed")
