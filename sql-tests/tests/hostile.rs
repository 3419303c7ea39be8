//! Hostile input over real sockets: messages past the size limits are dropped as they
//! arrive (54000) and the session goes on, malformed messages end only their own
//! connection (08P01, never a panic), sessions idle past their timeout and sockets that
//! never log in are closed, and none of it moves the server's memory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use henge_sql_tests::server::TestServer;
use tokio_postgres::NoTls;

/// The server's resident memory, in bytes.
fn resident(server: &TestServer) -> u64 {
    let pid = server.pid().expect("the server runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

const MIB: u64 = 1 << 20;

/// Checks resident memory grew by less than `mib` MiB from `before` to `after`.
fn grew_less_than(before: u64, after: u64, mib: u64) {
    assert!(
        after < before + mib * MIB,
        "resident memory went from {} MiB to {} MiB",
        before / MIB,
        after / MIB
    );
}

fn code(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| format!("{}: {}", d.code().code(), d.message()))
        .unwrap_or_else(|| e.to_string())
}

/// A frontend message: type byte, length, body.
fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Reads one backend message: its type and body.
fn read_message(socket: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 5];
    socket.read_exact(&mut header)?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let mut body = vec![0u8; len.saturating_sub(4)];
    socket.read_exact(&mut body)?;
    Ok((header[0], body))
}

/// The SQLSTATE of an ErrorResponse body.
fn error_code(body: &[u8]) -> String {
    let mut fields = body.split(|&b| b == 0);
    fields
        .find_map(|f| f.strip_prefix(b"C"))
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default()
}

/// A raw connection logged in as `henge` (trust), ready for a query.
fn logged_in(server: &TestServer) -> TcpStream {
    let mut socket = TcpStream::connect(server.addr()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut body = 196608u32.to_be_bytes().to_vec();
    for s in ["user", "henge", "database", "henge", ""] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    let mut startup = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    startup.extend_from_slice(&body);
    socket.write_all(&startup).unwrap();
    loop {
        let (kind, body) = read_message(&mut socket).unwrap();
        assert_ne!(kind, b'E', "login failed: {}", error_code(&body));
        if kind == b'Z' {
            return socket;
        }
    }
}

/// Sends `bytes` and expects the connection to answer with an error of `expected`, then
/// to close.
fn ends_with_error(server: &TestServer, bytes: &[u8], expected: &str) {
    let mut socket = logged_in(server);
    socket.write_all(bytes).unwrap();
    let (kind, body) = read_message(&mut socket).unwrap();
    assert_eq!(
        (kind, error_code(&body).as_str()),
        (b'E', expected),
        "{bytes:?}"
    );
    let mut rest = Vec::new();
    assert!(
        socket.read_to_end(&mut rest).is_ok(),
        "the connection closes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_messages_are_dropped_as_they_arrive_and_the_session_goes_on() {
    let server = TestServer::start_with_config(Some("max_message_size = \"8MB\""));
    let (client, connection) = tokio_postgres::connect(&server.connection_string(), NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE t (a TEXT); SELECT 1")
        .await
        .unwrap();
    let before = resident(&server);

    // A 64 MiB statement, past max_statement_size (16 MB): never held whole.
    let long = format!("SELECT '{}'", "x".repeat(64 << 20));
    let e = client.simple_query(&long).await.unwrap_err();
    assert!(
        code(&e).starts_with("54000: statement is too long"),
        "{}",
        code(&e)
    );
    drop(long);
    // A bound parameter past max_message_size, in the extended protocol.
    let big = "y".repeat(9 << 20);
    let e = client
        .query("SELECT length($1::text)", &[&big])
        .await
        .unwrap_err();
    assert!(
        code(&e).starts_with("54000: message is too long"),
        "{}",
        code(&e)
    );
    // A COPY chunk past it: the COPY fails and nothing of it lands.
    let sink = client.copy_in("COPY t FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    use futures::SinkExt;
    let mut chunk = bytes::BytesMut::from(&b"first\n"[..]);
    chunk.extend_from_slice(big.as_bytes());
    chunk.extend_from_slice(b"\n");
    let sent = async {
        sink.send(chunk.freeze()).await?;
        sink.finish().await
    }
    .await;
    let e = sent.unwrap_err();
    assert!(
        code(&e).starts_with("54000: message is too long"),
        "{}",
        code(&e)
    );
    drop(big);

    // The session goes on, and only what fits was ever in memory.
    let n: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    let fits = "z".repeat(1 << 20);
    let len: i32 = client
        .query_one("SELECT length($1::text)", &[&fits])
        .await
        .unwrap()
        .get(0);
    assert_eq!(len, 1 << 20);
    let after = resident(&server);
    grew_less_than(before, after, 48);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_messages_end_only_their_own_connection() {
    let server = TestServer::start();
    let bystander = server.connect().await;
    bystander.batch_execute("BEGIN; SELECT 1").await.unwrap();

    // A Bind whose parameter length runs past the message (pgwire's reader panicked).
    let mut bind = b"\0\0".to_vec();
    bind.extend_from_slice(&0i16.to_be_bytes());
    bind.extend_from_slice(&1i16.to_be_bytes());
    bind.extend_from_slice(&1_000_000i32.to_be_bytes());
    bind.extend_from_slice(b"abc");
    ends_with_error(&server, &message(b'B', &bind), "08P01");
    // A parameter count larger than what follows, and a negative one.
    let mut bind = b"\0\0".to_vec();
    bind.extend_from_slice(&0i16.to_be_bytes());
    bind.extend_from_slice(&30_000i16.to_be_bytes());
    ends_with_error(&server, &message(b'B', &bind), "08P01");
    let mut bind = b"\0\0".to_vec();
    bind.extend_from_slice(&(-2i16).to_be_bytes());
    ends_with_error(&server, &message(b'B', &bind), "08P01");
    // A length shorter than the length field itself.
    ends_with_error(&server, &[b'Q', 0, 0, 0, 2], "08P01");
    // A message type that does not exist.
    ends_with_error(&server, &message(b'z', b"hello"), "08P01");
    // A query without its terminating zero byte.
    ends_with_error(&server, &message(b'Q', b"SELECT 1"), "08P01");

    // Before login: a startup packet claiming a gigabyte is refused before it is read.
    let mut socket = TcpStream::connect(server.addr()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    socket
        .write_all(&[0x3f, 0xff, 0xff, 0xff, 0, 3, 0, 0])
        .unwrap();
    let (kind, body) = read_message(&mut socket).unwrap();
    assert_eq!((kind, error_code(&body).as_str()), (b'E', "08P01"));

    // The other session, mid-transaction, never noticed.
    let n: i32 = bystander.query_one("SELECT 7", &[]).await.unwrap().get(0);
    assert_eq!(n, 7);
    bystander.batch_execute("COMMIT").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_sessions_and_slow_logins_are_ended() {
    let server = TestServer::start_with_config(Some(
        "authentication_timeout = \"1s\"\nidle_in_transaction_session_timeout = \"400ms\"",
    ));
    // A socket that never logs in is closed after authentication_timeout.
    let started = Instant::now();
    let mut silent = TcpStream::connect(server.addr()).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(silent.read(&mut buf).unwrap(), 0, "closed without a word");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    // So is one that sent half a startup packet.
    let mut half = TcpStream::connect(server.addr()).unwrap();
    half.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    half.write_all(&[0, 0, 0, 40, 0, 3]).unwrap();
    assert_eq!(half.read(&mut buf).unwrap(), 0);

    // A session's own idle_session_timeout: the session ends with 57P05.
    let (client, connection) = tokio_postgres::connect(&server.connection_string(), NoTls)
        .await
        .unwrap();
    let ended = tokio::spawn(connection);
    client
        .batch_execute("SET idle_session_timeout = '300ms'")
        .await
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(20), ended)
        .await
        .expect("the session is ended")
        .unwrap()
        .unwrap_err();
    assert_eq!(
        code(&e),
        "57P05: terminating connection due to idle-session timeout"
    );
    assert!(client.is_closed());

    // The configured idle_in_transaction_session_timeout: only inside a block.
    let (client, connection) = tokio_postgres::connect(&server.connection_string(), NoTls)
        .await
        .unwrap();
    let ended = tokio::spawn(connection);
    tokio::time::sleep(Duration::from_millis(800)).await;
    client.batch_execute("BEGIN").await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(20), ended)
        .await
        .expect("the session is ended")
        .unwrap()
        .unwrap_err();
    assert_eq!(
        code(&e),
        "25P03: terminating connection due to idle-in-transaction timeout"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hundreds_of_idle_sockets_and_garbage_leave_memory_flat() {
    let server = TestServer::start();
    let client = server.connect().await;
    client.batch_execute("SELECT 1").await.unwrap();
    let before = resident(&server);

    let idle: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(server.addr()).unwrap())
        .collect();
    // Garbage of every kind, from sockets before and after login.
    let mut flood = Vec::new();
    for i in 0..100u32 {
        let mut socket = if i % 2 == 0 {
            TcpStream::connect(server.addr()).unwrap()
        } else {
            logged_in(&server)
        };
        let bytes: Vec<u8> = (0..16_384u32)
            .map(|b| (b.wrapping_mul(2_654_435_761u32.wrapping_add(i)) >> 13) as u8)
            .collect();
        let _ = socket.write_all(&bytes);
        flood.push(socket);
    }
    for _ in 0..5 {
        let n: i32 = client.query_one("SELECT 42", &[]).await.unwrap().get(0);
        assert_eq!(n, 42);
        let other = server.connect().await;
        other.batch_execute("SELECT 1").await.unwrap();
    }
    let during = resident(&server);
    drop((idle, flood));
    tokio::time::sleep(Duration::from_millis(500)).await;
    client.batch_execute("SELECT 1").await.unwrap();
    let after = resident(&server);
    assert!(
        during < before + 64 * MIB && after < before + 32 * MIB,
        "resident memory: {} MiB before, {} MiB with 600 hostile sockets, {} MiB after",
        before / MIB,
        during / MIB,
        after / MIB
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_200000_element_in_list_leaves_memory_where_it_was() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE t (x BIGINT); INSERT INTO t VALUES (1), (2), (-3)")
        .await
        .unwrap();
    let list = (0..200_000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let query = format!("SELECT count(*) FROM t WHERE x IN ({list})");
    let before = resident(&server);
    for _ in 0..2 {
        let n: i64 = client.query_one(&query, &[]).await.unwrap().get(0);
        assert_eq!(n, 2);
    }
    // Freed memory goes back to the system soon, not at once: on a loaded machine the
    // allocator's purge can lag the last statement by a moment.
    let mut after = resident(&server);
    for _ in 0..10 {
        if after < before + 64 * MIB {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        after = resident(&server);
    }
    grew_less_than(before, after, 64);
}
