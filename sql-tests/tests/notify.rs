//! LISTEN/NOTIFY over the wire: notifications reach a session that is idle (it sends
//! nothing), only once the sender's transaction commits, and a listener that does not keep
//! up loses only what overflows its queue, is told so, and never holds a sender up.

use std::time::Duration;

use henge_sql_tests::server::TestServer;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Notification};

/// The next notification, within five seconds.
async fn next(rx: &mut mpsc::UnboundedReceiver<AsyncMessage>) -> Notification {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(AsyncMessage::Notification(n))) => return n,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the listening connection ended"),
            Err(_) => panic!("no notification within 5 s"),
        }
    }
}

/// Checks that nothing arrives for a while.
async fn silent(rx: &mut mpsc::UnboundedReceiver<AsyncMessage>) {
    if let Ok(Some(message)) = tokio::time::timeout(Duration::from_millis(400), rx.recv()).await {
        panic!("unexpected message: {message:?}");
    }
}

#[tokio::test]
async fn an_idle_listener_hears_committed_notifications_without_asking() {
    let server = TestServer::start();
    let (listener, mut heard) = server.listening().await;
    listener
        .batch_execute("LISTEN jobs; LISTEN \"Mixed Case\"")
        .await
        .unwrap();
    let sender = server.connect().await;
    let sender_pid: i32 = sender
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);

    // The listener sends nothing from here on: it is told.
    sender.batch_execute("NOTIFY jobs, 'first'").await.unwrap();
    let n = next(&mut heard).await;
    assert_eq!(
        (n.channel(), n.payload(), n.process_id()),
        ("jobs", "first", sender_pid)
    );
    sender
        .query("SELECT pg_notify('Mixed Case', 'second')", &[])
        .await
        .unwrap();
    let n = next(&mut heard).await;
    assert_eq!((n.channel(), n.payload()), ("Mixed Case", "second"));
    // An unquoted name is folded: JOBS is jobs.
    sender.batch_execute("NOTIFY JOBS").await.unwrap();
    assert_eq!(next(&mut heard).await.payload(), "");

    // Inside a block: nothing until COMMIT, then each distinct payload once, in order.
    sender
        .batch_execute("BEGIN; NOTIFY jobs, 'a'; NOTIFY jobs, 'b'; NOTIFY jobs, 'a'")
        .await
        .unwrap();
    silent(&mut heard).await;
    sender.batch_execute("COMMIT").await.unwrap();
    assert_eq!(next(&mut heard).await.payload(), "a");
    assert_eq!(next(&mut heard).await.payload(), "b");
    silent(&mut heard).await;
    // ROLLBACK, a failed block and a failed statement send nothing.
    sender
        .batch_execute("BEGIN; NOTIFY jobs, 'never'; ROLLBACK")
        .await
        .unwrap();
    sender
        .batch_execute("BEGIN; NOTIFY jobs, 'never'")
        .await
        .unwrap();
    assert!(sender.batch_execute("SELECT 1 / 0").await.is_err());
    sender.batch_execute("COMMIT").await.unwrap();
    assert!(sender
        .query("SELECT pg_notify('jobs', 'never'), 1 / 0", &[])
        .await
        .is_err());
    // A string of statements is one transaction.
    assert!(sender
        .batch_execute("NOTIFY jobs, 'never'; SELECT 1 / 0")
        .await
        .is_err());
    silent(&mut heard).await;

    // A listener inside a block hears nothing until the block ends.
    listener.batch_execute("BEGIN").await.unwrap();
    sender.batch_execute("NOTIFY jobs, 'held'").await.unwrap();
    silent(&mut heard).await;
    listener.batch_execute("COMMIT").await.unwrap();
    assert_eq!(next(&mut heard).await.payload(), "held");

    // UNLISTEN in a block that rolls back keeps listening; UNLISTEN * stops.
    listener
        .batch_execute("BEGIN; UNLISTEN jobs; ROLLBACK")
        .await
        .unwrap();
    sender.batch_execute("NOTIFY jobs, 'still'").await.unwrap();
    assert_eq!(next(&mut heard).await.payload(), "still");
    listener.batch_execute("UNLISTEN *").await.unwrap();
    sender.batch_execute("NOTIFY jobs, 'gone'").await.unwrap();
    silent(&mut heard).await;
}

#[tokio::test]
async fn a_listener_that_falls_behind_loses_only_the_overflow_and_is_told() {
    let server = TestServer::start();
    let (listener, mut heard) = server.listening().await;
    listener.batch_execute("LISTEN flood").await.unwrap();
    // Inside a block the listener hears nothing: its queue fills.
    listener.batch_execute("BEGIN").await.unwrap();
    let sender = server.connect().await;
    let sent = tokio::time::timeout(
        Duration::from_secs(60),
        sender.query(
            "SELECT pg_notify('flood', i::text) FROM generate_series(1, 10005) AS i",
            &[],
        ),
    )
    .await
    .expect("a full queue never holds the sender up")
    .unwrap();
    assert_eq!(sent.len(), 10005);
    let usage: f64 = listener
        .query_one("SELECT pg_notification_queue_usage()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(usage, 1.0);
    listener.batch_execute("COMMIT").await.unwrap();
    let mut payloads = Vec::new();
    let mut warned = None;
    while payloads.len() < 10_000 {
        match tokio::time::timeout(Duration::from_secs(10), heard.recv()).await {
            Ok(Some(AsyncMessage::Notification(n))) => payloads.push(n.payload().to_owned()),
            Ok(Some(AsyncMessage::Notice(notice))) => {
                warned = Some((notice.code().code().to_owned(), notice.message().to_owned()))
            }
            Ok(Some(_)) => {}
            other => panic!("after {} notifications: {other:?}", payloads.len()),
        }
    }
    // The first 10,000 sent were kept (the query calls pg_notify from several threads, so
    // which those are varies); the last five were dropped and reported.
    let distinct: std::collections::BTreeSet<u32> =
        payloads.iter().map(|p| p.parse().unwrap()).collect();
    assert_eq!(distinct.len(), 10_000);
    assert!(distinct.iter().all(|i| (1..=10_005).contains(i)));
    let (code, message) = warned.expect("a warning about the dropped notifications");
    assert_eq!(code, "54000");
    assert!(message.starts_with("5 notifications"), "{message}");
    silent(&mut heard).await;
    // Listening goes on.
    sender.batch_execute("NOTIFY flood, 'after'").await.unwrap();
    assert_eq!(next(&mut heard).await.payload(), "after");
}
