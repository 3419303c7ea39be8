//! Protocol-level behaviour driven through tokio-postgres: COPY in both directions, typed
//! parameters, multi-statement and empty queries, cancellation, durability under kill -9
//! and clean shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, TryStreamExt};
use henge_sql_tests::server::TestServer;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

fn code(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_owned())
        .unwrap_or_default()
}

async fn copy_in(client: &Client, sql: &str, data: &str) -> Result<u64, tokio_postgres::Error> {
    // Send in small pieces so lines and quotes cross message boundaries.
    copy_in_messages(client, sql, data, 7).await
}

/// COPY FROM STDIN of `data`, sent in CopyData messages of `size` bytes.
async fn copy_in_messages(
    client: &Client,
    sql: &str,
    data: &str,
    size: usize,
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in(sql).await?;
    futures::pin_mut!(sink);
    for piece in data.as_bytes().chunks(size) {
        sink.send(Bytes::copy_from_slice(piece)).await?;
    }
    sink.finish().await
}

/// The first column of the rows of a simple query's answer.
fn first_column(messages: &[SimpleQueryMessage]) -> Vec<&str> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0),
            _ => None,
        })
        .collect()
}

async fn count(client: &Client, table: &str) -> i64 {
    let row = client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap();
    row.get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_csv_with_header_loads_every_row_or_none() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE ev (ts TIMESTAMP NOT NULL, page TEXT, added BIGINT) WITH (time_column = 'ts', segment_granularity = 'hour')")
        .await
        .unwrap();

    let good = "ts,page,added\n2024-01-01 00:00:00,home,1\n2024-01-01 01:00:00,\"\",2\n2024-01-01 02:00:00,,3\n2024-01-01 02:30:00,\"a,\"\"b\"\"\nc\",4\n";
    let n = copy_in(
        &client,
        "COPY ev FROM STDIN (FORMAT csv, HEADER true)",
        good,
    )
    .await
    .unwrap();
    assert_eq!(n, 4);
    let rows = client
        .query("SELECT page IS NULL, page FROM ev ORDER BY ts", &[])
        .await
        .unwrap();
    let pages: Vec<(bool, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        pages,
        vec![
            (false, Some("home".into())),
            (false, Some(String::new())),
            (true, None),
            (false, Some("a,\"b\"\nc".into())),
        ]
    );

    // Line 3 (counting the header) holds a bad number: the error names it, nothing loads.
    let bad = "ts,page,added\n2024-01-02 00:00:00,x,1\n2024-01-02 00:00:01,y,notanumber\n2024-01-02 00:00:02,z,3\n";
    let err = copy_in(&client, "COPY ev FROM STDIN WITH (FORMAT csv, HEADER)", bad)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "22P02");
    let message = err.as_db_error().unwrap().message().to_owned();
    assert_eq!(
        message,
        "COPY ev, line 3, column added: invalid input syntax for type bigint: \"notanumber\""
    );
    assert_eq!(count(&client, "ev").await, 4);

    // The connection is usable after the failed COPY.
    let err = copy_in(
        &client,
        "COPY ev (ts, page) FROM STDIN (FORMAT csv)",
        "2024-01-03 00:00:00,a,extra\n",
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "22P04");
    assert_eq!(count(&client, "ev").await, 4);
}

/// A COPY of several pieces (the server parses pieces of 4 MiB on every core): every row
/// loads, a quoted newline that a piece boundary would split stays in its value, and a bad
/// line in a late piece is named by its line number from the input's start, with nothing
/// loaded.
#[tokio::test(flavor = "multi_thread")]
async fn copy_of_many_pieces_loads_in_order_and_names_a_late_bad_line() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE big (ts TIMESTAMP NOT NULL, note TEXT, n BIGINT) WITH (time_column = 'ts', segment_granularity = 'day')")
        .await
        .unwrap();
    let rows = 300_000u64;
    let mut csv = String::from("ts,note,n\n");
    for i in 0..rows {
        let note = match i % 3 {
            0 => format!("\"line one\nline two, {i}\""),
            1 => format!("padding padding padding {i}"),
            _ => String::new(),
        };
        csv.push_str(&format!(
            "2024-01-{:02} {:02}:00:00,{note},{i}\n",
            1 + i % 28,
            i % 24
        ));
    }
    assert!(csv.len() > 3 * (4 << 20), "{} bytes", csv.len());
    let sql = "COPY big FROM STDIN (FORMAT csv, HEADER)";
    let copied = copy_in_messages(&client, sql, &csv, 65_536).await.unwrap();
    assert_eq!(copied, rows);
    let row = client
        .query_one(
            "SELECT count(*), sum(n)::bigint, count(*) FILTER (WHERE note = 'line one' || chr(10) || 'line two, ' || n), count(note) FROM big",
            &[],
        )
        .await
        .unwrap();
    let (loaded, sum, split, notes): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(loaded as u64, rows);
    assert_eq!(sum as u64, rows * (rows - 1) / 2);
    assert_eq!(split as u64, rows.div_ceil(3));
    assert_eq!(notes as u64, rows - rows / 3);

    // A bad number at the end: its line (as PostgreSQL counts them, a quoted newline
    // within its record) counts the header.
    let mut bad = csv;
    bad.push_str("2024-01-01 00:00:00,x,oops\n");
    let line = rows + 2;
    let err = copy_in_messages(&client, sql, &bad, 65_536)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "22P02");
    let message = err.as_db_error().unwrap().message().to_owned();
    assert!(
        message.starts_with(&format!("COPY big, line {line}, column n")),
        "{message}"
    );
    assert_eq!(count(&client, "big").await as u64, rows);

    // Text ending in the end-of-data marker near the end of the first piece (which takes a
    // while to parse, so the next ones are parsed meanwhile), then pieces of bad lines:
    // those are not loaded, and their errors are not reported.
    let mut text = String::new();
    let mut before = 0u64;
    while text.len() < (4 << 20) - 100 {
        text.push_str(&format!("2024-02-01 00:00:00\tafter\t{before}\n"));
        before += 1;
    }
    text.push_str("\\.\n");
    while text.len() < 4 * (4 << 20) {
        text.push_str("not a time\tx\tnot a number\n");
    }
    let copied = copy_in_messages(&client, "COPY big FROM STDIN", &text, 65_536)
        .await
        .unwrap();
    assert_eq!(copied, before);
    assert_eq!(count(&client, "big").await as u64, rows + before);
}

/// Several large COPYs at once share the process's places for pieces in flight (fewer than
/// their pieces together): every one completes with all of its rows.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_large_copies_all_complete() {
    let server = TestServer::start();
    let setup = server.connect().await;
    setup
        .batch_execute("CREATE TABLE many (ts TIMESTAMP NOT NULL, c INT, n BIGINT) WITH (time_column = 'ts', segment_granularity = 'day')")
        .await
        .unwrap();
    let mut loads = Vec::new();
    for c in 0..4 {
        let client = server.connect().await;
        loads.push(tokio::spawn(async move {
            let mut text = String::new();
            let mut rows = 0u64;
            while text.len() < 3 * (4 << 20) {
                text.push_str(&format!("2024-01-01 00:00:00\t{c}\t{rows}\n"));
                rows += 1;
            }
            let copied = copy_in_messages(&client, "COPY many FROM STDIN", &text, 65_536)
                .await
                .unwrap();
            assert_eq!(copied, rows);
            rows
        }));
    }
    let mut total = 0;
    for load in loads {
        total += load.await.unwrap();
    }
    assert_eq!(count(&setup, "many").await as u64, total);
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_text_format_and_options() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE t (a INT NOT NULL, b TEXT)")
        .await
        .unwrap();
    let n = copy_in(
        &client,
        "COPY t FROM STDIN",
        "1\tone\n2\t\\N\n3\ttab\\there\n\\.\n",
    )
    .await
    .unwrap();
    assert_eq!(n, 3);
    let n = copy_in(
        &client,
        "COPY t (b, a) FROM STDIN WITH (FORMAT csv, DELIMITER '|', NULL 'nil', QUOTE '''', FORCE_NULL (b))",
        "x|4\nnil|5\n'nil'|6\n",
    )
    .await
    .unwrap();
    assert_eq!(n, 3);
    let rows = client
        .query("SELECT a, b FROM t ORDER BY a", &[])
        .await
        .unwrap();
    let got: Vec<(i32, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        vec![
            (1, Some("one".into())),
            (2, None),
            (3, Some("tab\there".into())),
            (4, Some("x".into())),
            (5, None),
            (6, None),
        ]
    );
    let err = copy_in(&client, "COPY t FROM STDIN", "7\tok\n\\N\tnull a\n")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "23502");
    let err = client
        .batch_execute("COPY t FROM STDIN (FORMAT csv, DELIMITER 'ab')")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42601");
    let err = client
        .batch_execute("COPY t FROM STDIN (QUOTE '\"')")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "0A000");
    let err = client
        .batch_execute("COPY nosuch FROM STDIN")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42P01");
    assert_eq!(count(&client, "t").await, 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_to_stdout_in_text_and_csv() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE t (a INT, b TEXT); INSERT INTO t VALUES (1, 'x'), (2, NULL), (3, 'a,b'), (4, ''), (5, 'tab\there')")
        .await
        .unwrap();
    let read = |sql: &'static str| {
        let client = &client;
        async move {
            let stream = client.copy_out(sql).await.unwrap();
            let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
            String::from_utf8(chunks.concat()).unwrap()
        }
    };
    assert_eq!(
        read("COPY (SELECT * FROM t ORDER BY a) TO STDOUT").await,
        "1\tx\n2\t\\N\n3\ta,b\n4\t\n5\ttab\\there\n"
    );
    assert_eq!(
        read("COPY (SELECT * FROM t ORDER BY a) TO STDOUT WITH (FORMAT csv, HEADER true)").await,
        "a,b\n1,x\n2,\n3,\"a,b\"\n4,\"\"\n5,tab\there\n"
    );
    let table = read("COPY t (b) TO STDOUT (FORMAT csv)").await;
    assert_eq!(table.lines().count(), 5);
    // Averages with the places PostgreSQL gives each (16, or 20 where the sum's and the
    // count's first base-10000 digits are equal).
    assert_eq!(
        read("COPY (SELECT a % 2 AS odd, avg(a) FROM t GROUP BY 1 ORDER BY 1) TO STDOUT").await,
        "0\t3.0000000000000000\n1\t3.0000000000000000\n"
    );
    assert_eq!(
        read("COPY (SELECT avg(a) FROM t WHERE a = 1) TO STDOUT (FORMAT csv)").await,
        "1.00000000000000000000\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn parameters_in_text_and_binary_with_inferred_types() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE p (ts TIMESTAMP NOT NULL, n BIGINT, s TEXT, f DOUBLE PRECISION, ok BOOLEAN) WITH (time_column = 'ts')")
        .await
        .unwrap();
    let ts = chrono::NaiveDate::from_ymd_opt(2024, 5, 1)
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap();
    // tokio-postgres sends typed binary parameters.
    let insert = client
        .prepare("INSERT INTO p VALUES ($1, $2, $3, $4, $5)")
        .await
        .unwrap();
    assert_eq!(
        insert.params(),
        &[
            Type::TIMESTAMP,
            Type::INT8,
            Type::TEXT,
            Type::FLOAT8,
            Type::BOOL
        ]
    );
    for i in 0..3i64 {
        let n = client
            .execute(
                &insert,
                &[
                    &ts,
                    &i,
                    &format!("row {i}"),
                    &(i as f64 / 2.0),
                    &(i % 2 == 0),
                ],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    let rows = client
        .query(
            "SELECT n, s, ts, f FROM p WHERE n >= $1 AND ok = $2 ORDER BY n",
            &[&1i64, &true],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, i64>(0), 2);
    assert_eq!(rows[0].get::<_, String>(1), "row 2");
    assert_eq!(rows[0].get::<_, chrono::NaiveDateTime>(2), ts);
    assert_eq!(rows[0].get::<_, f64>(3), 1.0);

    // The same statement prepared once, executed many times, sees new rows.
    let count = client
        .prepare("SELECT count(*) FROM p WHERE n < $1")
        .await
        .unwrap();
    let before: i64 = client.query_one(&count, &[&100i64]).await.unwrap().get(0);
    client
        .execute(&insert, &[&ts, &50i64, &"late", &0.0f64, &false])
        .await
        .unwrap();
    let after: i64 = client.query_one(&count, &[&100i64]).await.unwrap().get(0);
    assert_eq!((before, after), (3, 4));

    // Untyped text parameters (as psql and pgbench send them) take the inferred type.
    let rows = client
        .query_typed("SELECT s FROM p WHERE n = $1", &[(&"1", Type::UNKNOWN)])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), "row 1");
    let err = client
        .query_typed("SELECT s FROM p WHERE n = $1", &[(&"12x", Type::UNKNOWN)])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "22P02");
}

/// A prepared `INSERT … VALUES ($1, …)` whose parameters have their columns' types is not
/// planned (server/src/fast_insert.rs): what it stores is what the planned INSERT … SELECT
/// of the same parameters stores, a column not named gets its DEFAULT, a value a column
/// refuses fails the statement with PostgreSQL's error and stores nothing, and a
/// parameter of another type (a double into a numeric column) is converted as planned.
#[tokio::test(flavor = "multi_thread")]
async fn parameterised_inserts_store_what_planned_ones_store() {
    let server = TestServer::start();
    let client = server.connect().await;
    for table in ["direct", "planned"] {
        client
            .batch_execute(&format!(
                "CREATE TABLE {table} (ts TIMESTAMP NOT NULL, tz TIMESTAMPTZ, d DATE, b BOOLEAN, \
                 s SMALLINT, i INT, g BIGINT, r REAL, f FLOAT8, n NUMERIC(10,2), v VARCHAR(4), \
                 t TEXT, k TEXT DEFAULT 'kept')"
            ))
            .await
            .unwrap();
    }
    let ts = chrono::NaiveDate::from_ymd_opt(2024, 5, 1)
        .unwrap()
        .and_hms_micro_opt(12, 0, 0, 250)
        .unwrap();
    let tz = chrono::DateTime::<chrono::Utc>::from_naive_utc_and_offset(ts, chrono::Utc);
    let d = ts.date();
    let columns = "(ts, tz, d, b, s, i, g, r, f, v, t)";
    let values = "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    let direct = client
        .prepare(&format!("INSERT INTO direct {columns} VALUES {values}, ($1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"))
        .await
        .unwrap();
    let planned = client
        .prepare_typed(
            &format!("INSERT INTO planned {columns} SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 UNION ALL SELECT $1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"),
            &[
                Type::TIMESTAMP,
                Type::TIMESTAMPTZ,
                Type::DATE,
                Type::BOOL,
                Type::INT2,
                Type::INT4,
                Type::INT8,
                Type::FLOAT4,
                Type::FLOAT8,
                Type::TEXT,
                Type::TEXT,
            ],
        )
        .await
        .unwrap();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 11] = [
        &ts,
        &tz,
        &d,
        &true,
        &-7i16,
        &42i32,
        &9_000_000_000i64,
        &1.5f32,
        &-0.1f64,
        &"abcd",
        &"x\ty\nz\\",
    ];
    assert_eq!(client.execute(&direct, &params).await.unwrap(), 2);
    assert_eq!(client.execute(&planned, &params).await.unwrap(), 2);
    let read = |table: &str| {
        format!("SELECT ts::text, tz::text, d::text, b::text, s::text, i::text, g::text, r::text, f::text, v, t, k FROM {table} ORDER BY tz NULLS LAST")
    };
    let stored = henge_sql_tests::values::text_rows(&client, &read("direct"))
        .await
        .unwrap();
    assert_eq!(
        stored,
        henge_sql_tests::values::text_rows(&client, &read("planned"))
            .await
            .unwrap()
    );
    assert_eq!(
        stored[0],
        [
            "2024-05-01 12:00:00.00025",
            "2024-05-01 12:00:00.00025+00",
            "2024-05-01",
            "true",
            "-7",
            "42",
            "9000000000",
            "1.5",
            "-0.1",
            "abcd",
            "x\ty\nz\\",
            "kept"
        ]
        .map(|s| Some(s.to_owned()))
    );
    assert_eq!(stored[1][11].as_deref(), Some("kept"));
    assert_eq!(stored[1][1], None);

    // Refused values: nothing of the statement is stored.
    let one = client
        .prepare("INSERT INTO direct (ts, v) VALUES ($1, $2)")
        .await
        .unwrap();
    let err = client.execute(&one, &[&ts, &"too long"]).await.unwrap_err();
    assert_eq!(code(&err), "22001");
    let err = client
        .execute(
            "INSERT INTO direct (ts, t) VALUES ($1, 'a'), (NULL, $2)",
            &[&ts, &"b"],
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), "23502");
    let count: i64 = client
        .query_one("SELECT count(*) FROM direct", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 2);

    // A parameter of another type than its column's is converted as the planner does.
    let converted = client
        .prepare_typed(
            "INSERT INTO direct (ts, n, i) VALUES ($1, $2, $3)",
            &[Type::TIMESTAMP, Type::FLOAT8, Type::INT8],
        )
        .await
        .unwrap();
    client
        .execute(&converted, &[&ts, &2.345f64, &7i64])
        .await
        .unwrap();
    let row = client
        .query_one(
            "SELECT n::text, i FROM direct WHERE n IS NOT NULL AND t IS NULL AND s IS NULL",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "2.35");
    assert_eq!(row.get::<_, i32>(1), 7);
    let err = client
        .execute(&converted, &[&ts, &1.0f64, &(i64::from(i32::MAX) + 1)])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "22003");
}

#[tokio::test(flavor = "multi_thread")]
async fn simple_protocol_corner_cases() {
    let server = TestServer::start();
    let client = server.connect().await;
    // Several statements in one query; each gets its own result.
    let messages = client
        .simple_query(
            "CREATE TABLE m (a INT); INSERT INTO m VALUES (1), (2); SELECT a FROM m ORDER BY a",
        )
        .await
        .unwrap();
    assert_eq!(first_column(&messages), vec!["1", "2"]);
    // Empty and comment-only queries answer EmptyQueryResponse, not an error.
    for empty in ["", "-- nothing here", ";;", "/* nothing */ ;"] {
        let messages = client.simple_query(empty).await.unwrap();
        assert!(
            messages
                .iter()
                .all(|m| !matches!(m, SimpleQueryMessage::Row(_))),
            "{empty:?}"
        );
    }
    // A failing statement stops the rest of the query string and takes back the writes
    // before it: the string is one transaction.
    let err = client
        .simple_query("INSERT INTO m VALUES (3); SELECT * FROM nosuch; INSERT INTO m VALUES (4)")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42P01");
    assert_eq!(count(&client, "m").await, 2);
    // A COPY FROM STDIN must end the query string: what follows it would run before its
    // rows arrive.
    let err = client
        .simple_query("COPY m FROM STDIN; SELECT 1")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "0A000");
    // Transaction statements are accepted.
    client
        .batch_execute("BEGIN; INSERT INTO m VALUES (5); COMMIT")
        .await
        .unwrap();
    assert_eq!(count(&client, "m").await, 3);
    // Wrong user or database is refused at start-up.
    let refused = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=mallory dbname=henge",
            server.addr().port()
        ),
        NoTls,
    )
    .await;
    assert_eq!(refused.err().map(|e| code(&e)), Some("28000".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_request_stops_a_running_query() {
    let server = TestServer::start();
    let client = server.connect().await;
    let token = client.cancel_token();
    let query = tokio::spawn(async move {
        // A cross join large enough to run for minutes.
        client
            .simple_query(
                "SELECT count(*) FROM generate_series(1, 1000000) a, generate_series(1, 1000000) b",
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    token.cancel_query(NoTls).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(20), query)
        .await
        .expect("query stopped")
        .unwrap();
    assert_eq!(code(&result.unwrap_err()), "57014");
}

#[tokio::test(flavor = "multi_thread")]
async fn pg_cancel_backend_stops_another_sessions_query() {
    let server = TestServer::start();
    let victim = server.connect().await;
    let pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let query = tokio::spawn(async move {
        victim
            .simple_query(
                "SELECT count(*) FROM generate_series(1, 1000000) a, generate_series(1, 1000000) b",
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let other = server.connect().await;
    let sent: bool = other
        .query_one("SELECT pg_cancel_backend($1::int)", &[&pid.to_string()])
        .await
        .unwrap()
        .get(0);
    assert!(sent);
    let result = tokio::time::timeout(Duration::from_secs(20), query)
        .await
        .expect("query stopped")
        .unwrap();
    assert_eq!(code(&result.unwrap_err()), "57014");
    // No backend has that process id: nothing to signal.
    let missing: bool = other
        .query_one("SELECT pg_cancel_backend($1::int)", &[&"-1"])
        .await
        .unwrap()
        .get(0);
    assert!(!missing);
}

#[tokio::test(flavor = "multi_thread")]
async fn result_columns_are_named_as_postgresql_names_them() {
    let server = TestServer::start();
    let client = server.connect().await;
    let statement = client
        .prepare(
            "SELECT count(*), version(), 1 + 1, now()::date, current_user, \
             CASE WHEN true THEN 1 END, 2 AS two, '5'::int, sum(x), 20::regtype::text, \
             x::text, current_schema, 'a'::char(2), (DATE '2001-01-01', DATE '2001-02-01') \
             OVERLAPS (DATE '2001-01-15', DATE '2001-03-01'), TIMESTAMP '2001-01-01' AT TIME \
             ZONE 'UTC' \
             FROM (VALUES (1)) t(x) GROUP BY x",
        )
        .await
        .unwrap();
    let names: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        [
            "count",
            "version",
            "?column?",
            "now",
            "current_user",
            "case",
            "two",
            "int4",
            "sum",
            "text",
            "x",
            "current_schema",
            "bpchar",
            "overlaps",
            "timezone"
        ]
    );
}

/// The statements of one query string are one transaction, as in PostgreSQL: a failing
/// statement takes the writes of those before it along; otherwise they apply together, and
/// the later statements see the earlier ones' rows.
#[tokio::test(flavor = "multi_thread")]
async fn a_query_string_is_one_transaction() {
    let server = TestServer::start();
    let client = server.connect().await;
    let other = server.connect().await;
    client
        .batch_execute("CREATE TABLE q (a INT NOT NULL)")
        .await
        .unwrap();
    let error = client
        .simple_query("INSERT INTO q VALUES (1); INSERT INTO q VALUES (2); SELECT 1 / 0")
        .await
        .unwrap_err();
    assert_eq!(code(&error), "22012");
    assert_eq!(
        count(&other, "q").await,
        0,
        "nothing of the failed string applied"
    );
    let error = client
        .simple_query("INSERT INTO q VALUES (1); INSERT INTO q VALUES (NULL)")
        .await
        .unwrap_err();
    assert_eq!(code(&error), "23502");
    assert_eq!(count(&other, "q").await, 0);
    // The session is usable afterwards, outside any block.
    let messages = client
        .simple_query(
            "INSERT INTO q VALUES (1), (2); INSERT INTO q VALUES (3); SELECT count(*) FROM q",
        )
        .await
        .unwrap();
    assert_eq!(
        first_column(&messages),
        ["3"],
        "later statements see the earlier ones' rows"
    );
    assert_eq!(count(&other, "q").await, 3);
    // An explicit block in the string keeps its own meaning.
    client
        .simple_query("BEGIN; INSERT INTO q VALUES (4); ROLLBACK; INSERT INTO q VALUES (5)")
        .await
        .unwrap();
    assert_eq!(count(&other, "q").await, 4);
}

/// The types a prepared statement's result columns are described with.
fn column_types(statement: &tokio_postgres::Statement) -> Vec<Type> {
    statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect()
}

/// Constants reach the client with PostgreSQL's types: an integer that fits in 32 bits is
/// an int4 (node-postgres makes a number of it, not a string), a larger one an int8, one
/// with a decimal point a numeric; in both protocols.
#[tokio::test(flavor = "multi_thread")]
async fn constants_are_typed_as_postgresql_types_them() {
    let server = TestServer::start();
    let client = server.connect().await;
    let sql = "SELECT 1, -2, 2147483648, 1.5, 1 + 1, sum(x) FROM (VALUES (1)) t(x)";
    let statement = client.prepare(sql).await.unwrap();
    assert_eq!(
        column_types(&statement),
        [
            Type::INT4,
            Type::INT4,
            Type::INT8,
            Type::NUMERIC,
            Type::INT4,
            Type::INT8
        ]
    );
    let row = client.query_one(&statement, &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert_eq!(row.get::<_, i32>(1), -2);
    assert_eq!(row.get::<_, i64>(2), 2_147_483_648);
    let text = client.simple_query(sql).await.unwrap();
    let row = text
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .expect("a row");
    assert_eq!(row.get(3), Some("1.5"));
    assert_eq!(row.get(5), Some("1"));
}

/// Character types reach the client as PostgreSQL sends them: a `varchar` column and a
/// cast to `varchar` as varchar, one to `char(n)` as bpchar, text as text; a varchar
/// value binds to a `String`.
#[tokio::test(flavor = "multi_thread")]
async fn character_types_are_sent_as_postgresql_sends_them() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE names (ts TIMESTAMP NOT NULL, v VARCHAR(8), t TEXT); \
             INSERT INTO names VALUES ('2024-01-01', 'short', 'long text')",
        )
        .await
        .unwrap();
    let sql = "SELECT v, t, 'a'::varchar, 'b'::char(2), v || t FROM names WHERE v = $1";
    let statement = client.prepare(sql).await.unwrap();
    assert_eq!(
        column_types(&statement),
        [
            Type::VARCHAR,
            Type::TEXT,
            Type::VARCHAR,
            Type::BPCHAR,
            Type::TEXT
        ]
    );
    let row = client.query_one(&statement, &[&"short"]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "short");
    // Padded to char(2), as PostgreSQL sends it.
    assert_eq!(row.get::<_, String>(3), "b ");
    assert_eq!(row.get::<_, String>(4), "shortlong text");
}

#[tokio::test(flavor = "multi_thread")]
async fn startup_parameters_set_the_session_and_are_reported() {
    let server = TestServer::start();
    let mut config: tokio_postgres::Config = server.connection_string().parse().unwrap();
    config
        .application_name("loader")
        .options("-c statement_timeout=5s -c TimeZone=Europe/Paris");
    let (client, connection) = config.connect(NoTls).await.unwrap();
    assert_eq!(connection.parameter("server_version"), Some("16.0"));
    assert_eq!(connection.parameter("TimeZone"), Some("Europe/Paris"));
    assert_eq!(connection.parameter("application_name"), Some("loader"));
    assert_eq!(connection.parameter("DateStyle"), Some("ISO, MDY"));
    assert_eq!(connection.parameter("integer_datetimes"), Some("on"));
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT current_setting('statement_timeout'), current_setting('application_name')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "5s");
    assert_eq!(row.get::<_, String>(1), "loader");
    // They are the session's defaults: RESET comes back to them, as in PostgreSQL.
    client
        .batch_execute("SET statement_timeout = '1min'; SET TimeZone = 'UTC'")
        .await
        .unwrap();
    client
        .batch_execute("RESET statement_timeout; RESET TimeZone")
        .await
        .unwrap();
    let row = client
        .query_one(
            "SELECT current_setting('statement_timeout'), current_setting('TimeZone')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "5s");
    assert_eq!(row.get::<_, String>(1), "Europe/Paris");
    // A bad value refuses the connection, as PostgreSQL does.
    let mut bad: tokio_postgres::Config = server.connection_string().parse().unwrap();
    bad.options("-c DateStyle=sideways");
    let refused = bad.connect(NoTls).await;
    assert_eq!(refused.err().map(|e| code(&e)), Some("22023".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn timestamptz_text_is_written_in_the_session_time_zone() {
    let server = TestServer::start();
    let client = server.connect().await;
    let text = |messages: Vec<SimpleQueryMessage>| -> Vec<String> {
        messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                _ => None,
            })
            .collect()
    };
    let instant = "SELECT '2024-07-01 12:00:00+00'::timestamptz";
    for (zone, written) in [
        ("UTC", "2024-07-01 12:00:00+00"),
        ("america/new_york", "2024-07-01 08:00:00-04"),
        ("Asia/Kolkata", "2024-07-01 17:30:00+05:30"),
        // A POSIX offset: three hours east of Greenwich, as in PostgreSQL.
        ("-03:00", "2024-07-01 15:00:00+03"),
    ] {
        client
            .simple_query(&format!("SET TIME ZONE '{zone}'"))
            .await
            .unwrap();
        assert_eq!(text(client.simple_query(instant).await.unwrap()), [written]);
    }
    // Binary results carry the instant itself, whatever the zone.
    let row = client
        .query_one("SELECT '2024-07-01 12:00:00+00'::timestamptz", &[])
        .await
        .unwrap();
    let at: chrono::DateTime<chrono::Utc> = row.get(0);
    assert_eq!(at.to_rfc3339(), "2024-07-01T12:00:00+00:00");
}

#[tokio::test(flavor = "multi_thread")]
async fn comment_only_health_checks_answer_in_both_protocols() {
    // Grafana's data source health check sends a query that is only a comment.
    let server = TestServer::start();
    let client = server.connect().await;
    for sql in ["-- grafana health check", "/* ping */"] {
        let messages = client.simple_query(sql).await.unwrap();
        assert!(messages
            .iter()
            .all(|m| !matches!(m, SimpleQueryMessage::Row(_))));
        assert!(client.query(sql, &[]).await.unwrap().is_empty(), "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn arrays_are_sent_as_postgresql_arrays() {
    let server = TestServer::start();
    let client = server.connect().await;
    let sql = "SELECT ARRAY[1, 2, 3], ARRAY['a b', NULL, 'c', '', 'q\"x'], current_schemas(true)";
    let texts: Vec<String> = client
        .simple_query(sql)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..3)
                    .map(|i| r.get(i).unwrap_or("NULL").to_owned())
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts,
        [r#"{1,2,3} | {"a b",NULL,c,"","q\"x"} | {pg_catalog,public}"#]
    );
    let row = client.query_one(sql, &[]).await.unwrap();
    // Integer constants are int4s, as in PostgreSQL.
    assert_eq!(row.columns()[0].type_(), &Type::INT4_ARRAY);
    assert_eq!(row.get::<_, Vec<i32>>(0), [1, 2, 3]);
    assert_eq!(
        row.get::<_, Vec<Option<String>>>(1),
        [
            Some("a b".to_owned()),
            None,
            Some("c".to_owned()),
            Some(String::new()),
            Some("q\"x".to_owned())
        ]
    );
    let empty: Vec<i64> = client
        .query_one("SELECT array_remove(ARRAY[1::bigint], 1)", &[])
        .await
        .unwrap()
        .get(0);
    assert!(empty.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_reads_timestamptz_without_offset_in_the_session_time_zone() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE zoned (ts TIMESTAMPTZ NOT NULL, n INT) WITH (time_column = 'ts'); \
             SET TimeZone = 'America/New_York'",
        )
        .await
        .unwrap();
    let rows = copy_in(
        &client,
        "COPY zoned FROM STDIN",
        "2024-07-01 12:00:00\t1\n2024-01-15 12:00:00\t2\n2024-01-15 12:00:00+00\t3\n",
    )
    .await
    .unwrap();
    assert_eq!(rows, 3);
    let epochs: Vec<f64> = client
        .query(
            "SELECT extract(epoch from ts)::float8 FROM zoned ORDER BY n",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(epochs, [1_719_849_600.0, 1_705_338_000.0, 1_705_320_000.0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_rows_survive_kill_9_during_concurrent_writes() {
    let server = Arc::new(Mutex::new(TestServer::start()));
    let conninfo = server.lock().unwrap().connection_string();
    let (client, connection) = tokio_postgres::connect(&conninfo, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE w (ts TIMESTAMP NOT NULL, writer INT, seq INT) WITH (time_column = 'ts', segment_granularity = 'minute')")
        .await
        .unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let conninfo = conninfo.clone();
        let acknowledged = acknowledged.clone();
        writers.push(tokio::spawn(async move {
            let Ok((client, connection)) = tokio_postgres::connect(&conninfo, NoTls).await else {
                return;
            };
            tokio::spawn(connection);
            for seq in 0.. {
                let sql = format!(
                    "INSERT INTO w VALUES (TIMESTAMP '2024-01-01 00:00:00' + INTERVAL '{seq} seconds', {writer}, {seq})"
                );
                if client.execute(&sql, &[]).await.is_err() {
                    return;
                }
                acknowledged.lock().unwrap().push((writer, seq));
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let restart_server = server.clone();
    tokio::task::spawn_blocking(move || restart_server.lock().unwrap().kill_and_restart())
        .await
        .unwrap();
    for w in writers {
        let _ = w.await;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 10,
        "writers made progress: {}",
        acknowledged.len()
    );

    let (client, connection) = tokio_postgres::connect(&conninfo, NoTls).await.unwrap();
    tokio::spawn(connection);
    let rows = client
        .query("SELECT writer, seq FROM w", &[])
        .await
        .unwrap();
    let stored: std::collections::HashSet<(i32, i32)> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    for ack in &acknowledged {
        assert!(stored.contains(ack), "acknowledged row {ack:?} was lost");
    }
    // At most one unacknowledged in-flight row per writer may also be there.
    assert!(stored.len() <= acknowledged.len() + 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_shuts_down_cleanly_and_keeps_data() {
    let mut server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE s (a INT); INSERT INTO s VALUES (1), (2)")
        .await
        .unwrap();
    drop(client);
    assert!(server.terminate(), "henge exits 0 on SIGTERM");
    server.kill_and_restart();
    let client = server.connect().await;
    assert_eq!(count(&client, "s").await, 2);
}

/// A COPY row outside its table's time limits fails the COPY with the row's line and
/// column; with `on_rejection = 'drop'` it is left out and counted. Expired time chunks are
/// dropped by CHECKPOINT (and by the background hand-off loop), metadata first, then files.
#[tokio::test(flavor = "multi_thread")]
async fn time_limits_refuse_rows_and_drop_expired_chunks() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE recent (ts TIMESTAMP NOT NULL, v INT) WITH (time_column = 'ts', \
             segment_granularity = 'second', retention = '4 seconds')",
        )
        .await
        .unwrap();
    let now = chrono::Utc::now().naive_utc();
    let at = |secs: i64| (now + chrono::Duration::seconds(secs)).format("%Y-%m-%d %H:%M:%S%.6f");
    let data = format!("{}\t1\n{}\t2\n{}\t3\n", at(0), at(-1), at(-3600));
    let e = copy_in(&client, "COPY recent FROM STDIN", &data)
        .await
        .unwrap_err();
    let db = e.as_db_error().expect("a database error");
    assert_eq!(db.code().code(), "23514");
    assert!(
        db.message().starts_with("COPY recent, line 3, column ts: new row for relation \"recent\" is outside its time limits"),
        "{}",
        db.message()
    );
    assert_eq!(count(&client, "recent").await, 0);

    let data = format!("{}\t1\n{}\t2\n", at(0), at(-1));
    assert_eq!(
        copy_in(&client, "COPY recent FROM STDIN", &data)
            .await
            .unwrap(),
        2
    );
    client.batch_execute("CHECKPOINT").await.unwrap();
    assert_eq!(count(&client, "recent").await, 2);
    tokio::time::sleep(Duration::from_secs(6)).await;
    client.batch_execute("CHECKPOINT").await.unwrap();
    assert_eq!(count(&client, "recent").await, 0);
    let segments: i64 = client
        .query_one(
            "SELECT count(*) FROM sys.segments WHERE \"table\" = 'recent'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(segments, 0);
    let files = std::fs::read_dir(server.data_dir().join("deep")).map_or(0, |d| d.count());
    assert_eq!(files, 0, "expired segment files are deleted");

    client
        .batch_execute(
            "CREATE TABLE lenient (ts TIMESTAMP NOT NULL, v INT) WITH (time_column = 'ts', \
             late_message_rejection = '1 hour', on_rejection = 'drop')",
        )
        .await
        .unwrap();
    let data = format!("{}\t1\n{}\t2\n{}\t3\n", at(0), at(-7200), at(-60));
    assert_eq!(
        copy_in(&client, "COPY lenient FROM STDIN", &data)
            .await
            .unwrap(),
        2
    );
    let dropped: i64 = client
        .query_one(
            "SELECT rows_dropped FROM sys.ingest WHERE \"table\" = 'lenient'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(dropped, 1);
}

/// Issue 16's user story: a rolled-up events table with HLL and quantile sketch columns,
/// loaded with COPY beside the same rows un-rolled, queried with TIME_FLOOR,
/// APPROX_COUNT_DISTINCT and APPROX_QUANTILE; the answers match the un-rolled rows' (exactly
/// where the sketches are exact, within their error elsewhere), before and after kill -9.
#[tokio::test(flavor = "multi_thread")]
async fn copy_into_sketch_columns_answers_as_the_raw_rows_across_kill_9() {
    let mut server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE raw_ev (ts TIMESTAMP NOT NULL, country TEXT, user_id TEXT, latency_ms INTEGER) WITH (time_column = 'ts', segment_granularity = 'hour');
             CREATE TABLE ev (ts TIMESTAMP NOT NULL, country TEXT, user_id TEXT ROLLUP HLL, latency_ms INTEGER ROLLUP QUANTILES) WITH (time_column = 'ts', segment_granularity = 'hour', rollup = true, query_granularity = 'minute')",
        )
        .await
        .unwrap();
    // 30,000 events over 3 hours, 3 countries, 5,000 users.
    let mut csv = String::from("ts,country,user_id,latency_ms\n");
    for i in 0..30_000u64 {
        let (h, m, s) = (i / 10_000, (i / 167) % 60, i % 60);
        csv.push_str(&format!(
            "2024-06-01 {:02}:{m:02}:{s:02},{},u{},{}\n",
            10 + h,
            ["de", "fr", "us"][(i % 3) as usize],
            (i * 7919) % 5_000,
            (i * 31) % 2_000
        ));
    }
    for table in ["raw_ev", "ev"] {
        let sql = format!("COPY {table} FROM STDIN (FORMAT csv, HEADER true)");
        assert_eq!(copy_in(&client, &sql, &csv).await.unwrap(), 30_000);
    }

    // Per minute and country the sketches are exact (a few dozen users each).
    let exact = "SELECT count(*) FROM (SELECT TIME_FLOOR(ts, 'PT1M') AS m, country, APPROX_COUNT_DISTINCT(user_id) AS a FROM ev GROUP BY 1, 2) AS r \
                 JOIN (SELECT TIME_FLOOR(ts, 'PT1M') AS m, country, count(DISTINCT user_id) AS e FROM raw_ev GROUP BY 1, 2) AS x USING (m, country) WHERE a = e";
    let hourly = "SELECT TIME_FLOOR(ts, 'PT1H') AS h, APPROX_COUNT_DISTINCT(user_id), APPROX_QUANTILE(latency_ms, 0.5), count(*) FROM ev GROUP BY 1 ORDER BY 1";
    let exact_hourly = "SELECT TIME_FLOOR(ts, 'PT1H') AS h, count(DISTINCT user_id), percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms), count(*) FROM raw_ev GROUP BY 1 ORDER BY 1";
    let groups: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT TIME_FLOOR(ts, 'PT1M'), country FROM raw_ev GROUP BY 1, 2) AS g",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let check = |client: Client| async move {
        let matched: i64 = client.query_one(exact, &[]).await.unwrap().get(0);
        assert_eq!(matched, groups, "every minute and country counted exactly");
        let rolled = client.query(hourly, &[]).await.unwrap();
        let raw = client.query(exact_hourly, &[]).await.unwrap();
        assert_eq!(rolled.len(), 3);
        for (r, x) in rolled.iter().zip(&raw) {
            let (distinct, median, events): (i64, f64, i64) = (r.get(1), r.get(2), r.get(3));
            let (exact_distinct, exact_median, exact_events): (i64, i32, i64) =
                (x.get(1), x.get(2), x.get(3));
            assert_eq!(events, exact_events);
            // Three standard errors of each sketch.
            let error = (distinct - exact_distinct).abs() as f64 / exact_distinct as f64;
            assert!(
                error < 0.05,
                "{distinct} distinct users, exactly {exact_distinct}"
            );
            assert!(
                (median - f64::from(exact_median)).abs() < 2_000.0 * 0.05,
                "median {median}, exactly {exact_median}"
            );
        }
        client
    };
    let client = check(client).await;
    let stored: i64 = client
        .query_one(
            "SELECT sum(rows)::bigint FROM sys.segments WHERE \"table\" = 'ev'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, Option<i64>>(0)
        .unwrap_or(0);
    // Each COPY batch is rolled up on its own until persisted pieces are merged.
    assert!(stored < 2 * groups, "rolled up: {stored} stored rows");
    drop(client);
    server.kill_and_restart();
    let client = server.connect().await;
    let client = check(client).await;
    client.batch_execute("CHECKPOINT").await.unwrap();
    check(client).await;
}

/// A prepared query keeps its optimized plan between executions, and one that reads no
/// table its physical plan too, but never an answer: new rows, other parameters, the clock,
/// the session's settings and a table made anew all show in the next execution.
#[tokio::test(flavor = "multi_thread")]
async fn prepared_queries_keep_their_plans_but_not_their_answers() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE kept (ts TIMESTAMP NOT NULL, k TEXT, v INT) \
             WITH (time_column = 'ts'); \
             INSERT INTO kept VALUES ('2024-01-01 10:00', 'a', 1), ('2024-01-01 11:00', 'b', 2)",
        )
        .await
        .unwrap();
    let by_key = client
        .prepare("SELECT count(*), sum(v) FROM kept WHERE k = $1 AND v >= $2")
        .await
        .unwrap();
    let totals =
        |rows: Vec<tokio_postgres::Row>| -> (i64, Option<i64>) { (rows[0].get(0), rows[0].get(1)) };
    let rows = client.query(&by_key, &[&"a", &0i32]).await.unwrap();
    assert_eq!(totals(rows), (1, Some(1)));
    let rows = client.query(&by_key, &[&"b", &0i32]).await.unwrap();
    assert_eq!(totals(rows), (1, Some(2)));
    let rows = client.query(&by_key, &[&"b", &3i32]).await.unwrap();
    assert_eq!(totals(rows), (0, None));
    client
        .batch_execute("INSERT INTO kept VALUES ('2024-01-01 12:00', 'a', 5)")
        .await
        .unwrap();
    let rows = client.query(&by_key, &[&"a", &0i32]).await.unwrap();
    assert_eq!(totals(rows), (2, Some(6)));
    // A parameter the optimizer would rather know: the row limit.
    let first = client
        .prepare("SELECT v FROM kept ORDER BY v LIMIT $1")
        .await
        .unwrap();
    for (limit, expected) in [(1i64, vec![1]), (2, vec![1, 2]), (5, vec![1, 2, 5])] {
        let rows = client.query(&first, &[&limit]).await.unwrap();
        let values: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(values, expected, "LIMIT {limit}");
    }
    let page = client
        .prepare("SELECT v FROM kept ORDER BY v LIMIT $1 OFFSET $2")
        .await
        .unwrap();
    for (offset, expected) in [(0i64, vec![1, 2]), (1, vec![2, 5]), (2, vec![5])] {
        let rows = client.query(&page, &[&2i64, &offset]).await.unwrap();
        let values: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(values, expected, "OFFSET {offset}");
    }
    // A NULL limit is none; a negative one PostgreSQL's error, parameter or not.
    let rows = client.query(&first, &[&None::<i64>]).await.unwrap();
    assert_eq!(rows.len(), 3);
    let e = client.query(&first, &[&-1i64]).await.unwrap_err();
    assert_eq!(code(&e), "2201W", "{e}");
    let e = client.query(&page, &[&1i64, &-1i64]).await.unwrap_err();
    assert_eq!(code(&e), "2201X", "{e}");
    // No table, no parameters: the physical plan is kept, and each run is a fresh copy.
    let join = client
        .prepare(
            "SELECT a.x, b.y FROM (VALUES (1), (2), (3)) a(x) \
             JOIN (VALUES (1, 'p'), (3, 'q')) b(x, y) ON a.x = b.x ORDER BY a.x",
        )
        .await
        .unwrap();
    for _ in 0..3 {
        let rows = client.query(&join, &[]).await.unwrap();
        let pairs: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(pairs, [(1, "p".to_owned()), (3, "q".to_owned())]);
    }
    // The clock is read by every execution, not once for the plan.
    let now = client.prepare("SELECT now()").await.unwrap();
    let before: chrono::DateTime<chrono::Utc> = client.query_one(&now, &[]).await.unwrap().get(0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let after: chrono::DateTime<chrono::Utc> = client.query_one(&now, &[]).await.unwrap().get(0);
    assert!(after > before, "{before} then {after}");
    // A setting that changes the answer.
    let shown = client
        .prepare("SELECT '2024-07-01 12:00:00+00'::timestamptz::text")
        .await
        .unwrap();
    let text: String = client.query_one(&shown, &[]).await.unwrap().get(0);
    assert_eq!(text, "2024-07-01 12:00:00+00");
    client
        .batch_execute("SET TIME ZONE 'Asia/Kolkata'")
        .await
        .unwrap();
    let text: String = client.query_one(&shown, &[]).await.unwrap().get(0);
    assert_eq!(text, "2024-07-01 17:30:00+05:30");
    // The table dropped and made again, with other columns and rows.
    let everything = client
        .prepare("SELECT count(*) FROM kept WHERE v > 0")
        .await
        .unwrap();
    let n: i64 = client.query_one(&everything, &[]).await.unwrap().get(0);
    assert_eq!(n, 3);
    client
        .batch_execute(
            "DROP TABLE kept; \
             CREATE TABLE kept (ts TIMESTAMP NOT NULL, v BIGINT) WITH (time_column = 'ts'); \
             INSERT INTO kept VALUES ('2024-01-01 10:00', 7)",
        )
        .await
        .unwrap();
    let n: i64 = client.query_one(&everything, &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
}

/// A query string sent again in the simple protocol keeps its planning as a prepared
/// statement does, never its answer: new rows, the clock, a setting, a table dropped and
/// made anew, and system tables all show in the next run of the same text.
#[tokio::test(flavor = "multi_thread")]
async fn simple_queries_sent_again_keep_their_plans_but_not_their_answers() {
    let server = TestServer::start();
    let client = server.connect().await;
    async fn first(client: &Client, sql: &str) -> String {
        let messages = client.simple_query(sql).await.unwrap();
        first_column(&messages)[0].to_owned()
    }
    client
        .batch_execute(
            "CREATE TABLE again (ts TIMESTAMP NOT NULL, v INT) WITH (time_column = 'ts'); \
             INSERT INTO again VALUES ('2024-01-01 10:00', 1)",
        )
        .await
        .unwrap();
    let total = "SELECT sum(v) FROM again";
    assert_eq!(first(&client, total).await, "1");
    client
        .simple_query("INSERT INTO again VALUES ('2024-01-01 11:00', 2)")
        .await
        .unwrap();
    assert_eq!(first(&client, total).await, "3");
    let segments =
        "SELECT count(*) FROM sys.segments WHERE \"table\" = 'again' AND state = 'published'";
    assert_eq!(first(&client, segments).await, "0");
    client.simple_query("CHECKPOINT").await.unwrap();
    assert_ne!(first(&client, segments).await, "0");
    let clock = "SELECT now()::text";
    let before = first(&client, clock).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_ne!(first(&client, clock).await, before);
    let shown = "SELECT '2024-07-01 12:00:00+00'::timestamptz::text";
    assert_eq!(first(&client, shown).await, "2024-07-01 12:00:00+00");
    client
        .simple_query("SET TimeZone = 'Asia/Tokyo'")
        .await
        .unwrap();
    assert_eq!(first(&client, shown).await, "2024-07-01 21:00:00+09");
    client
        .batch_execute(
            "DROP TABLE again; \
             CREATE TABLE again (ts TIMESTAMP NOT NULL, v BIGINT) WITH (time_column = 'ts'); \
             INSERT INTO again VALUES ('2024-01-01 10:00', 40)",
        )
        .await
        .unwrap();
    assert_eq!(first(&client, total).await, "40");
    // Constants alone: answered where the session runs, the same each time.
    for _ in 0..3 {
        assert_eq!(first(&client, "SELECT 1").await, "1");
    }
    // A string run before still fails as the rows make it fail, and in a failed block it
    // is refused as any other statement is.
    let ratio = "SELECT sum(100 / v) FROM again";
    assert_eq!(first(&client, ratio).await, "2");
    client
        .simple_query("INSERT INTO again VALUES ('2024-01-01 11:00', 0)")
        .await
        .unwrap();
    let e = client.simple_query(ratio).await.unwrap_err();
    assert_eq!(code(&e), "22012", "{e}");
    client.simple_query("BEGIN").await.unwrap();
    assert_eq!(first(&client, "SELECT 1").await, "1");
    assert!(client.simple_query("SELECT * FROM nosuch").await.is_err());
    let e = client.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(code(&e), "25P02", "{e}");
    client.simple_query("ROLLBACK").await.unwrap();
    assert_eq!(first(&client, "SELECT 1").await, "1");
}

/// A `char(n)` value is written padded with spaces to n characters, as PostgreSQL writes
/// it, in text and binary results and COPY TO; used as text it has no trailing spaces.
#[tokio::test(flavor = "multi_thread")]
async fn char_values_are_written_padded() {
    let server = TestServer::start();
    let client = server.connect().await;
    let messages = client
        .simple_query("SELECT 'ab'::char(5) UNION ALL SELECT 'äb'::char(5) UNION ALL SELECT 'abcdefg'::char(5)")
        .await
        .unwrap();
    let mut texts = first_column(&messages);
    texts.sort();
    assert_eq!(texts, ["ab   ", "abcde", "äb   "]);
    let text = client
        .simple_query("SELECT 'ab'::char(5) || '|', length('ab'::char(5))")
        .await
        .unwrap();
    assert_eq!(first_column(&text), ["ab|"]);
    // Binary (extended protocol): a char's binary form is its text.
    let row = client
        .query_one("SELECT 'ab'::char(5), 'x'::char", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "ab   ");
    assert_eq!(row.get::<_, String>(1), "x");
    let stream = client
        .copy_out("COPY (SELECT 'ab'::char(4), 1) TO STDOUT")
        .await
        .unwrap();
    let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
    assert_eq!(String::from_utf8(chunks.concat()).unwrap(), "ab  \t1\n");
}
