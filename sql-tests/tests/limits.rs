//! Limits that keep one client from taking the server down or crowding others out:
//! max_connections and a role's CONNECTION LIMIT (53300), statement size (54000),
//! expression depth (54001, where a long sum used to overflow the stack and kill the
//! server), and idle or garbage-sending sockets that leave it answering.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use henge_sql_tests::server::TestServer;
use tokio_postgres::{Client, NoTls};

async fn connect_as(server: &TestServer, user: &str) -> Result<Client, tokio_postgres::Error> {
    let addr = server.addr();
    let text = format!(
        "host={} port={} user={user} dbname=henge",
        addr.ip(),
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&text, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn code(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| format!("{}: {}", d.code().code(), d.message()))
        .unwrap_or_else(|| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_past_max_connections_and_a_roles_limit_are_refused() {
    // Six sessions, three of them kept for superusers: other roles share three.
    let server = TestServer::start_with_config(Some("max_connections = 6"));
    let admin = server.connect().await;
    admin
        .batch_execute("CREATE ROLE one LOGIN CONNECTION LIMIT 1; CREATE ROLE app LOGIN")
        .await
        .unwrap();
    let first = connect_as(&server, "one").await.unwrap();
    let Err(second) = connect_as(&server, "one").await else {
        panic!("a second session of one");
    };
    assert_eq!(
        code(&second),
        "53300: too many connections for role \"one\""
    );
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _one = connect_as(&server, "one").await.unwrap();
    let app = connect_as(&server, "app").await.unwrap();
    let Err(more) = connect_as(&server, "app").await else {
        panic!("no slot left for app");
    };
    assert!(
        code(&more).starts_with("53300: remaining connection slots are reserved"),
        "{}",
        code(&more)
    );
    // Superusers fill the rest; then nobody comes in.
    let mut superusers = Vec::new();
    for _ in 0..3 {
        superusers.push(server.connect().await);
    }
    let Err(full) = connect_as(&server, "henge").await else {
        panic!("no slot at all");
    };
    assert_eq!(code(&full), "53300: sorry, too many clients already");
    drop(superusers);
    drop(app);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let app = connect_as(&server, "app").await.unwrap();
    app.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn long_and_deep_statements_are_refused_and_the_server_lives_on() {
    let server = TestServer::start_with_config(Some("max_statement_size = \"64kB\""));
    let client = server.connect().await;
    let long = format!("SELECT '{}'", "x".repeat(70_000));
    let e = client.simple_query(&long).await.unwrap_err();
    assert!(
        code(&e).starts_with("54000: statement is too long"),
        "{}",
        code(&e)
    );

    // A sum of 150 terms overflowed a 2 MiB stack and killed the server.
    let sum = format!("SELECT 1{}", " + 1".repeat(150));
    let row = client.query_one(&sum, &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 151);
    let deep = format!("SELECT 1{}", " + 1".repeat(201));
    let e = client.simple_query(&deep).await.unwrap_err();
    assert_eq!(code(&e), "54001: statement is too complex");
    // Thousands of OR terms, as tools write IN lists, are balanced and answered.
    let wide = format!(
        "SELECT count(*) FROM (VALUES (1), (2), (3)) t(x) WHERE x = 0{}",
        (1..3000)
            .map(|i| format!(" OR x = {i}"))
            .collect::<String>()
    );
    let n: i64 = client.query_one(&wide, &[]).await.unwrap().get(0);
    assert_eq!(n, 3);
    client.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_garbage_sockets_leave_the_server_answering() {
    let server = TestServer::start_with_config(Some("max_connections = 10"));
    // More silent sockets than max_connections: they have not started a session, so
    // they take no slot.
    let idle: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(server.addr()).unwrap())
        .collect();
    let mut garbage: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(server.addr()).unwrap())
        .collect();
    for (i, socket) in garbage.iter_mut().enumerate() {
        let bytes: Vec<u8> = (0..4096u32)
            .map(|b| (b.wrapping_mul(31 + i as u32) >> 3) as u8)
            .collect();
        let _ = socket.write_all(&bytes);
    }
    // A startup message claiming a gigabyte, and one cut short.
    let mut huge = TcpStream::connect(server.addr()).unwrap();
    let _ = huge.write_all(&[0x3f, 0xff, 0xff, 0xff, 0, 3, 0, 0]);
    let mut short = TcpStream::connect(server.addr()).unwrap();
    let _ = short.write_all(&[0, 0, 0, 40, 0, 3]);
    for _ in 0..10 {
        let client = server.connect().await;
        let n: i32 = client.query_one("SELECT 42", &[]).await.unwrap().get(0);
        assert_eq!(n, 42);
    }
    drop((idle, garbage, huge, short));
}

#[tokio::test(flavor = "multi_thread")]
async fn only_superusers_and_the_same_role_may_cancel_a_sessions_query() {
    let server = TestServer::start();
    let admin = server.connect().await;
    admin
        .batch_execute("CREATE ROLE app LOGIN; CREATE ROLE other LOGIN")
        .await
        .unwrap();
    let app = connect_as(&server, "app").await.unwrap();
    let other = connect_as(&server, "other").await.unwrap();
    let admin_pid: i32 = admin
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let app_pid: i32 = app
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let denied = other
        .query_one(&format!("SELECT pg_cancel_backend({app_pid})"), &[])
        .await
        .unwrap_err();
    assert_eq!(code(&denied), "42501: permission denied to cancel query");
    let denied = app
        .query_one(&format!("SELECT pg_cancel_backend({admin_pid})"), &[])
        .await
        .unwrap_err();
    assert_eq!(code(&denied), "42501: permission denied to cancel query");
    let own: bool = app
        .query_one(&format!("SELECT pg_cancel_backend({app_pid})"), &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(true);
    assert!(own);
    let by_admin: bool = admin
        .query_one(&format!("SELECT pg_cancel_backend({app_pid})"), &[])
        .await
        .unwrap()
        .get(0);
    assert!(by_admin);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_configured_statement_timeout_applies_until_a_session_sets_its_own() {
    let server = TestServer::start_with_config(Some("statement_timeout = \"200ms\""));
    let client = server.connect().await;
    let timeout: String = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(timeout, "200ms");
    let slow = "SELECT count(*) FROM generate_series(1, 2000000000)";
    let e = client.simple_query(slow).await.unwrap_err();
    assert_eq!(
        code(&e),
        "57014: canceling statement due to statement timeout"
    );
    client
        .batch_execute("SET statement_timeout = '5s'")
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM generate_series(1, 1000)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1000);
    // RESET goes back to the configured default, not to none.
    client
        .batch_execute("RESET statement_timeout")
        .await
        .unwrap();
    let timeout: String = client
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(timeout, "200ms");
}

/// A join whose hash table (of two million rows) outgrows 16 MB.
const BIG_JOIN: &str = "SELECT count(*) FROM generate_series(1, 2000000) a(x) \
                        JOIN generate_series(1, 2000000) b(y) ON x = y";

/// A full sort of three million rows (a window over all of them), some 24 MB of keys.
const BIG_SORT: &str =
    "SELECT count(*), max(r)::bigint FROM (SELECT row_number() OVER (ORDER BY x DESC) \
                        AS r FROM generate_series(1, 3000000) a(x)) t";

#[tokio::test(flavor = "multi_thread")]
async fn one_statement_holds_at_most_statement_memory_and_sorts_spill_past_it() {
    let server = TestServer::start_with_config(Some("statement_memory = \"16MB\""));
    let client = server.connect().await;
    // A join's hash table cannot spill: past the statement's share it fails with 53200.
    let e = client.query_one(BIG_JOIN, &[]).await.unwrap_err();
    let e = code(&e);
    assert!(
        e.starts_with(
            "53200: a statement may use 16777216 bytes of query memory (statement_memory)"
        ),
        "{e}"
    );
    // A sort goes to disk instead, and answers.
    let row = client.query_one(BIG_SORT, &[]).await.unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        (3_000_000, 3_000_000)
    );
    let plan: String = client
        .simple_query(&format!("EXPLAIN ANALYZE {BIG_SORT}"))
        .await
        .unwrap()
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(1).map(str::to_owned),
            _ => None,
        })
        .collect();
    let spills: u64 = plan
        .split("spill_count=")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    assert!(spills > 0, "the sort did not spill: {plan}");
    // The same join within the default share.
    let server = TestServer::start();
    let client = server.connect().await;
    let n: i64 = client.query_one(BIG_JOIN, &[]).await.unwrap().get(0);
    assert_eq!(n, 2_000_000);
}
