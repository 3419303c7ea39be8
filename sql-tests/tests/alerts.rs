//! Alerts as a new user would try them: a transactions table, the rule "3 failed
//! transactions for one card within 1 hour", LISTEN, a day's transactions loaded with COPY;
//! the alerts that arrive are exactly those a query over the same rows says should fire —
//! also when the server is killed in the middle of the load, at each step of reporting a
//! match.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use henge_sql_tests::server::TestServer;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client};

const SETUP: &str = "
    CREATE TABLE tx (ts TIMESTAMP NOT NULL, card TEXT NOT NULL, status TEXT NOT NULL, amount DOUBLE PRECISION)
        WITH (time_column = 'ts', segment_granularity = 'hour');
    CREATE ALERT card_failures ON tx WHERE status = 'failed' PARTITION BY card
        WITHIN INTERVAL '1 hour' WHEN count(*) >= 3 NOTIFY card_alerts";

/// The alerts a query over the stored rows says should fire: every (card, time of a failed
/// transaction) whose hour up to it holds three failures or more.
const EXPECTED: &str = "
    SELECT a.card, a.ts::text FROM (SELECT DISTINCT card, ts FROM tx WHERE status = 'failed') AS a
    JOIN tx AS b ON b.card = a.card AND b.status = 'failed'
        AND b.ts >= a.ts - INTERVAL '1 hour' AND b.ts <= a.ts
    GROUP BY a.card, a.ts HAVING count(*) >= 3";

/// A day of transactions as CSV lines: mostly in time order, some up to five minutes out of
/// it (within the table's ten-minute window_period); a few cards fail often.
fn day_of_transactions(n: usize) -> Vec<String> {
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    (0..n)
        .map(|i| {
            let base = (i as i64) * 86_000 / n as i64;
            let jitter = (next() % 600) as i64 - 300;
            let second = (base + jitter).clamp(0, 86_399);
            let card = next() % 40;
            let failing = if card < 6 { 3 } else { 25 };
            let status = if next() % failing == 0 {
                "failed"
            } else {
                "ok"
            };
            format!(
                "2024-06-01 {:02}:{:02}:{:02},card{card},{status},{}.{:02}\n",
                second / 3600,
                second / 60 % 60,
                second % 60,
                next() % 500,
                next() % 100
            )
        })
        .collect()
}

async fn copy_csv(client: &Client, lines: &[String]) -> Result<u64, tokio_postgres::Error> {
    let sink = client
        .copy_in("COPY tx (ts, card, status, amount) FROM STDIN WITH (FORMAT csv)")
        .await?;
    futures::pin_mut!(sink);
    sink.send(Bytes::from(lines.concat())).await?;
    sink.finish().await
}

async fn pairs(client: &Client, sql: &str) -> BTreeSet<(String, String)> {
    client
        .query(sql, &[])
        .await
        .expect(sql)
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// A connection listening on `channel`, its notifications' payloads coming out of the
/// receiver.
async fn listen(server: &TestServer, channel: &str) -> (Client, mpsc::UnboundedReceiver<String>) {
    let (client, mut messages) = server.listening().await;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = messages.recv().await {
            if let AsyncMessage::Notification(n) = message {
                if tx.send(n.payload().to_owned()).is_err() {
                    break;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {channel}"))
        .await
        .unwrap();
    (client, rx)
}

#[tokio::test]
async fn a_days_transactions_alert_exactly_as_a_query_over_them_says() {
    let server = TestServer::start();
    let client = server.connect().await;
    client.batch_execute(SETUP).await.unwrap();
    let (_listener, mut heard) = listen(&server, "card_alerts").await;
    let lines = day_of_transactions(6000);
    for chunk in lines.chunks(1000) {
        assert_eq!(copy_csv(&client, chunk).await.unwrap(), chunk.len() as u64);
    }
    let expected = pairs(&client, EXPECTED).await;
    assert!(
        expected.len() > 20,
        "the data should make alerts: {expected:?}"
    );
    // Every COPY waited for its rows' alerts: they are in the alerts table already.
    let stored = pairs(&client, "SELECT key, window_end::text FROM alerts").await;
    assert_eq!(stored, expected);
    let (count,): (i64,) = {
        let row = client
            .query_one("SELECT count(*) FROM alerts", &[])
            .await
            .unwrap();
        (row.get(0),)
    };
    assert_eq!(count as usize, expected.len(), "no match reported twice");
    // And each reached the listener once, with its aggregate.
    let mut notified = Vec::new();
    while notified.len() < expected.len() {
        let payload = tokio::time::timeout(Duration::from_secs(10), heard.recv())
            .await
            .expect("every alert notified within 10 s")
            .expect("listening");
        let json: serde_json::Value = serde_json::from_str(&payload).expect("a JSON payload");
        assert_eq!(json["rule"], "card_failures");
        assert!(json["values"]["count(*)"].as_i64().unwrap() >= 3, "{json}");
        notified.push((
            json["key"].as_str().unwrap().to_owned(),
            json["window_end"].as_str().unwrap().to_owned(),
        ));
    }
    let distinct: BTreeSet<(String, String)> = notified.iter().cloned().collect();
    assert_eq!(distinct.len(), notified.len(), "no notification twice");
    assert_eq!(distinct, expected);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), heard.recv())
            .await
            .is_err(),
        "nothing more"
    );
    let row = client
        .query_one(
            "SELECT rows_seen, fired, late_rows FROM sys.alerts WHERE name = 'card_failures'",
            &[],
        )
        .await
        .unwrap();
    let failed = client
        .query_one("SELECT count(*) FROM tx WHERE status = 'failed'", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), failed.get::<_, i64>(0));
    assert_eq!(row.get::<_, i64>(1) as usize, expected.len());
    assert_eq!(row.get::<_, i64>(2), 0);
}

/// Loads `chunks[from..]` until a COPY fails (the server aborted); returns the index of the
/// next chunk to load, checking that the failed one's rows are durable all the same.
async fn load_until_abort(server: &TestServer, chunks: &[&[String]], from: usize) -> usize {
    let client = server.connect().await;
    for (i, chunk) in chunks.iter().enumerate().skip(from) {
        if copy_csv(&client, chunk).await.is_err() {
            return i + 1;
        }
    }
    panic!("the server never reached its failure point");
}

#[tokio::test]
async fn a_crash_at_any_step_neither_repeats_nor_loses_an_alert() {
    let mut server = TestServer::start();
    let lines = day_of_transactions(6000);
    let chunks: Vec<&[String]> = lines.chunks(500).collect();
    {
        let client = server.connect().await;
        client.batch_execute(SETUP).await.unwrap();
        for chunk in &chunks[..3] {
            copy_csv(&client, chunk).await.unwrap();
        }
    }
    // Rows in the log, their match neither written nor sent.
    server.restart_failing_at(Some("alert.before_write"));
    let next = load_until_abort(&server, &chunks, 3).await;
    assert!(server.exited_within(Duration::from_secs(30)));
    // At the next start the rule rebuilds its windows and reports that match: written,
    // and the server dies again before sending it.
    server.restart_failing_at(Some("alert.before_notify"));
    assert!(
        server.exited_within(Duration::from_secs(60)),
        "the rebuild reports the match the crash kept back"
    );
    // Written now: the next start has nothing to report, and the load goes on until a
    // live match is written and not sent.
    server.restart_failing_at(Some("alert.before_notify"));
    let next = load_until_abort(&server, &chunks, next).await;
    assert!(server.exited_within(Duration::from_secs(30)));
    server.restart_failing_at(None);
    {
        let client = server.connect().await;
        let row = client
            .query_one("SELECT count(*) FROM tx", &[])
            .await
            .unwrap();
        // The statements cut short by the aborts were durable before the rules ran.
        assert_eq!(row.get::<_, i64>(0), (next * 500) as i64);
        let half = (next + chunks.len()) / 2;
        for chunk in &chunks[next..half] {
            copy_csv(&client, chunk).await.unwrap();
        }
        // And kill -9 between two statements.
        server.kill_and_restart();
        let client = server.connect().await;
        for chunk in &chunks[half..] {
            copy_csv(&client, chunk).await.unwrap();
        }
        let expected = pairs(&client, EXPECTED).await;
        let stored = pairs(&client, "SELECT key, window_end::text FROM alerts").await;
        assert_eq!(stored, expected);
        let row = client
            .query_one(
                "SELECT count(*), count(DISTINCT (key, window_end)) FROM alerts",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0) as usize, expected.len(), "no repeats");
        assert_eq!(row.get::<_, i64>(1) as usize, expected.len());
    }
}

#[tokio::test]
async fn rows_a_large_copy_spills_to_pieces_count_too() {
    // A small ingest budget: a statement's rows past an eighth of it are spilled to piece
    // files before the commit, and reach the rules from there.
    let server = TestServer::start_with_config(Some("ingest_memory = \"8MB\"\n"));
    let client = server.connect().await;
    client.batch_execute(SETUP).await.unwrap();
    let lines = day_of_transactions(40_000);
    assert_eq!(copy_csv(&client, &lines).await.unwrap(), 40_000);
    let pieces: i64 = client
        .query_one(
            "SELECT count(*) FROM sys.segments WHERE \"table\" = 'tx' AND state = 'persisted'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(pieces > 0, "the COPY should have spilled");
    let expected = pairs(&client, EXPECTED).await;
    assert!(expected.len() > 100);
    let stored = pairs(&client, "SELECT key, window_end::text FROM alerts").await;
    assert_eq!(stored, expected);
}

/// What a rule of `filter`, `window` and `having` should report: every (card, time of a
/// counted row) whose window up to it meets the condition.
fn expected_of(filter: &str, window: &str, having: &str) -> String {
    format!(
        "SELECT a.card, a.ts::text FROM (SELECT DISTINCT card, ts FROM tx WHERE {filter}) AS a
         JOIN tx AS b ON b.card = a.card AND ({}) AND b.ts >= a.ts - INTERVAL '{window}'
             AND b.ts <= a.ts
         GROUP BY a.card, a.ts HAVING {having}",
        filter
            .replace("status", "b.status")
            .replace("amount", "b.amount")
    )
}

#[tokio::test]
async fn rules_partitioned_alike_share_keys_and_each_alerts_as_its_query_says() {
    let server = TestServer::start();
    let client = server.connect().await;
    client.batch_execute(SETUP).await.unwrap();
    // Four more rules by card over rows out of time order by up to five minutes: they
    // share the cards' ids; one is dropped halfway, letting go of the keys it held.
    let rules = [
        (
            "big_sums",
            "amount >= 200",
            "30 minutes",
            "sum(floor(amount)) >= 1000",
        ),
        ("mixed", "true", "20 minutes", "count(DISTINCT status) >= 2"),
        (
            "small",
            "amount < 50",
            "2 hours",
            "count(*) >= 2 AND max(amount) >= 40",
        ),
        ("dropped", "true", "1 hour", "count(*) >= 1"),
    ];
    for (name, filter, window, condition) in rules {
        client
            .batch_execute(&format!(
                "CREATE ALERT {name} ON tx WHERE {filter} PARTITION BY card \
                 WITHIN INTERVAL '{window}' WHEN {condition} INTO by_rule"
            ))
            .await
            .unwrap();
    }
    let lines = day_of_transactions(8000);
    for (i, chunk) in lines.chunks(500).enumerate() {
        if i == 8 {
            client.batch_execute("DROP ALERT dropped").await.unwrap();
        }
        assert_eq!(copy_csv(&client, chunk).await.unwrap(), chunk.len() as u64);
    }
    let stored = pairs(&client, "SELECT key, window_end::text FROM alerts").await;
    assert_eq!(stored, pairs(&client, EXPECTED).await);
    for (name, filter, window, condition) in &rules[..3] {
        let having = condition
            .replace("amount", "b.amount")
            .replace("status", "b.status");
        let expected = pairs(&client, &expected_of(filter, window, &having)).await;
        assert!(expected.len() > 20, "{name} should match: {expected:?}");
        let sql = format!("SELECT key, window_end::text FROM by_rule WHERE rule = '{name}'");
        assert_eq!(pairs(&client, &sql).await, expected, "{name}");
    }
    let dropped: i64 = client
        .query_one("SELECT count(*) FROM by_rule WHERE rule = 'dropped'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(dropped > 0);
}
