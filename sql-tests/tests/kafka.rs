//! Kafka pipelines against a real Apache Kafka broker (sql-tests/kafka/broker.sh), with
//! records produced by librdkafka: exactly-once across kill -9 of Henge, bad records,
//! aborted transactions, every compression codec, partitions added, a broker restart,
//! records deleted before they were read, CSV records with the Kafka columns and start
//! times, SASL authentication and TLS.

use std::time::{Duration, Instant};

use henge_sql_tests::kafka::{flush, send, KafkaBroker};
use henge_sql_tests::server::TestServer;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio_postgres::Client;

/// One sale or view event, as JSON, with a nested member and a numeric string.
fn event(id: i64) -> String {
    format!(
        r#"{{"time": "2024-06-01T10:{:02}:{:02}Z", "id": {id}, "geo": {{"country": "{}"}}, "amount": "{}.25", "kind": "{}"}}"#,
        (id / 60) % 60,
        id % 60,
        ["de", "fr", "us"][(id % 3) as usize],
        id % 100,
        if id % 5 == 0 { "view" } else { "sale" }
    )
}

/// The table, source and pipeline of the events: a JSON path, a cast and a filter.
async fn create_events(client: &Client, brokers: &str, topic: &str) {
    client
        .batch_execute(&format!(
            "CREATE TABLE events (ts TIMESTAMPTZ NOT NULL, id BIGINT NOT NULL, country TEXT, amount NUMERIC(10,2)) \
               WITH (time_column = 'ts', segment_granularity = 'hour');
             CREATE SOURCE events_in (ts TIMESTAMPTZ PATH '$.time', id BIGINT, country TEXT PATH '$.geo.country', \
               amount TEXT, kind TEXT) \
               WITH (connector = 'kafka', brokers = '{brokers}', topic = '{topic}', start = 'earliest');
             CREATE PIPELINE events_load AS INSERT INTO events \
               SELECT ts, id, upper(country), CAST(amount AS NUMERIC(10,2)) FROM events_in WHERE kind = 'sale'"
        ))
        .await
        .unwrap();
}

async fn one(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect(sql).get(0)
}

/// Waits until `sql` answers `expected` (or panics with the last answer after `within`).
async fn wait_for(server: &TestServer, sql: &str, expected: i64, within: Duration) {
    let deadline = Instant::now() + within;
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok(client) = tokio::time::timeout(Duration::from_secs(5), server.connect()).await {
            if let Ok(row) = client.query_one(sql, &[]).await {
                let value: i64 = row.get(0);
                if value == expected {
                    return;
                }
                last = Some(value);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{sql}: {last:?} after {within:?}, expected {expected}");
}

/// Waits until the events table holds `n` rows, then checks they are `n` distinct ids:
/// every record once.
async fn expect_events(server: &TestServer, n: i64, within: Duration) {
    wait_for(server, "SELECT count(*) FROM events", n, within).await;
    let client = server.connect().await;
    assert_eq!(
        one(&client, "SELECT count(DISTINCT id) FROM events").await,
        n
    );
}

/// The user story of issue 17: a pipeline with a JSON path, a cast and a filter; Henge
/// killed three times while the events arrive (and a CHECKPOINT between); afterwards every
/// sale is in the table exactly once, the sums agree and the lag is zero.
#[tokio::test(flavor = "multi_thread")]
async fn exactly_once_across_kill_9_during_ingest() {
    let broker = KafkaBroker::start();
    broker.create_topic("events", 4).await;
    let mut server = TestServer::start();
    let client = server.connect().await;
    create_events(&client, &broker.bootstrap(), "events").await;
    drop(client);

    const EVENTS: i64 = 40_000;
    let producer = broker.producer(&[]);
    let producing = {
        let producer = producer.clone();
        tokio::spawn(async move {
            for chunk in 0..40 {
                for id in chunk * 1000..(chunk + 1) * 1000 {
                    let value = event(id);
                    // Queued; delivered in the background, awaited by the flush.
                    let _ = producer.send_result(
                        FutureRecord::to("events")
                            .partition((id % 4) as i32)
                            .key("k")
                            .payload(&value),
                    );
                }
                flush(&producer);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        if round == 1 {
            let client = server.connect().await;
            client.batch_execute("CHECKPOINT").await.unwrap();
        }
        server.kill_and_restart();
    }
    producing.await.unwrap();
    let sales = (0..EVENTS).filter(|id| id % 5 != 0).count() as i64;
    expect_events(&server, sales, Duration::from_secs(120)).await;
    let client = server.connect().await;
    let cents: i64 = (0..EVENTS)
        .filter(|id| id % 5 != 0)
        .map(|id| (id % 100) * 100 + 25)
        .sum();
    assert_eq!(
        one(&client, "SELECT (sum(amount) * 100)::BIGINT FROM events").await,
        cents
    );
    assert_eq!(
        one(
            &client,
            "SELECT count(*) FROM events WHERE country NOT IN ('DE', 'FR', 'US')"
        )
        .await,
        0
    );
    wait_for(
        &server,
        "SELECT lag FROM sys.pipelines",
        0,
        Duration::from_secs(30),
    )
    .await;
    let state: String = client
        .query_one("SELECT state FROM sys.pipelines", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "running");
}

/// A record that does not parse, or whose values do not fit, is skipped and counted with
/// its partition and offset; with on_error = 'stop' the pipeline stops before it, having
/// written the records before it.
#[tokio::test(flavor = "multi_thread")]
async fn bad_records_are_skipped_and_counted_or_stop_the_pipeline() {
    let broker = KafkaBroker::start();
    broker.create_topic("mixed", 1).await;
    let producer = broker.producer(&[]);
    for (i, value) in [
        event(1),
        event(2),
        "not json at all".to_owned(),
        event(3),
        r#"{"time": "2024-06-01T10:00:00Z", "id": "seven", "kind": "sale"}"#.to_owned(),
        r#"{"time": "2024-06-01T10:00:00Z", "id": 8, "amount": "1e999", "kind": "sale"}"#
            .to_owned(),
        event(4),
    ]
    .iter()
    .enumerate()
    {
        send(&producer, "mixed", 0, &i.to_string(), value).await;
    }
    let server = TestServer::start();
    let client = server.connect().await;
    create_events(&client, &broker.bootstrap(), "mixed").await;
    client
        .batch_execute(
            "CREATE TABLE strict (id BIGINT NOT NULL, amount NUMERIC(10,2));
             CREATE PIPELINE strict_load WITH (on_error = 'stop') AS INSERT INTO strict \
               SELECT id, CAST(amount AS NUMERIC(10,2)) FROM events_in",
        )
        .await
        .unwrap();
    wait_for(
        &server,
        "SELECT count(*) FROM events",
        4,
        Duration::from_secs(60),
    )
    .await;
    wait_for(
        &server,
        "SELECT records_skipped FROM sys.pipelines WHERE name = 'events_load'",
        3,
        Duration::from_secs(30),
    )
    .await;
    let last: String = client
        .query_one(
            "SELECT last_error FROM sys.pipelines WHERE name = 'events_load'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(last.starts_with("partition 0, offset 5:"), "{last}");
    // The strict pipeline wrote the two records before the first bad one and stopped.
    wait_for(
        &server,
        "SELECT count(*) FROM strict",
        2,
        Duration::from_secs(30),
    )
    .await;
    // The rows become visible a moment before the pipeline records its failure.
    wait_for(
        &server,
        "SELECT count(*) FROM sys.pipelines WHERE name = 'strict_load' AND state = 'failed'",
        1,
        Duration::from_secs(30),
    )
    .await;
    let row = client
        .query_one(
            "SELECT state, detail FROM sys.pipelines WHERE name = 'strict_load'",
            &[],
        )
        .await
        .unwrap();
    let (state, detail): (String, String) = (row.get(0), row.get(1));
    assert_eq!(state, "failed");
    assert!(detail.contains("partition 0, offset 2"), "{detail}");
    assert_eq!(
        one(
            &client,
            "SELECT \"offset\" FROM sys.pipeline_partitions WHERE pipeline = 'strict_load'"
        )
        .await,
        2
    );
}

/// Records deleted from the topic before the pipeline read them (retention) stop it with
/// `on_data_loss = 'fail'`, the default, saying which; with 'earliest' or 'latest' it goes
/// on from there and counts them as skipped. The other partition is not touched.
#[tokio::test(flavor = "multi_thread")]
async fn records_deleted_before_they_were_read_are_reported() {
    let broker = KafkaBroker::start();
    broker.create_topic("lossy", 2).await;
    let producer = broker.producer(&[]);
    let produce = |ids: std::ops::Range<i64>| {
        let producer = producer.clone();
        async move {
            for id in ids {
                let partition = if id >= 1000 { 1 } else { 0 };
                send(
                    &producer,
                    "lossy",
                    partition,
                    "k",
                    &format!(r#"{{"id": {id}}}"#),
                )
                .await;
            }
        }
    };
    produce(0..10).await;
    produce(1000..1003).await;
    let mut server = TestServer::start();
    let client = server.connect().await;
    let brokers = broker.bootstrap();
    for (name, option) in [
        ("failing", ""),
        ("early", ", on_data_loss = 'earliest'"),
        ("late", ", on_data_loss = 'latest'"),
    ] {
        client
            .batch_execute(&format!(
                "CREATE TABLE {name} (id BIGINT NOT NULL);
                 CREATE SOURCE {name}_in (id BIGINT) WITH (connector = 'kafka', \
                   brokers = '{brokers}', topic = 'lossy'{option});
                 CREATE PIPELINE {name}_load AS INSERT INTO {name} SELECT id FROM {name}_in"
            ))
            .await
            .unwrap();
        wait_for(
            &server,
            &format!("SELECT count(*) FROM {name}"),
            13,
            Duration::from_secs(60),
        )
        .await;
        client
            .batch_execute(&format!("ALTER PIPELINE {name}_load PAUSE"))
            .await
            .unwrap();
    }
    // Offsets 10..30 of partition 0 arrive while the pipelines are paused, and the first
    // ten of them are deleted before they are read.
    produce(10..30).await;
    broker.delete_records("lossy", 0, 20).await;
    for name in ["failing", "early", "late"] {
        client
            .batch_execute(&format!("ALTER PIPELINE {name}_load RESUME"))
            .await
            .unwrap();
    }
    let state = |name: &'static str| {
        let client = &client;
        async move {
            let row = client
                .query_one(
                    &format!("SELECT state, coalesce(detail, ''), records_skipped, coalesce(last_error, '') FROM sys.pipelines WHERE name = '{name}_load'"),
                    &[],
                )
                .await
                .unwrap();
            let skipped: i64 = row.get(2);
            (
                row.get::<_, String>(0),
                row.get::<_, String>(1),
                skipped,
                row.get::<_, String>(3),
            )
        }
    };
    // 'earliest': the ten records still there, the ten deleted ones counted.
    wait_for(
        &server,
        "SELECT count(*) FROM early",
        23,
        Duration::from_secs(60),
    )
    .await;
    let (status, _, skipped, last) = state("early").await;
    assert_eq!((status.as_str(), skipped), ("running", 10));
    assert!(
        last.contains("partition 0, offset 10") && last.contains("deleted"),
        "{last}"
    );
    // 'latest': from the partition's end; what comes next is read.
    wait_for(
        &server,
        "SELECT records_skipped FROM sys.pipelines WHERE name = 'late_load'",
        20,
        Duration::from_secs(60),
    )
    .await;
    // The default: failed, saying which records are gone.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (status, detail) = loop {
        let (status, detail, ..) = state("failing").await;
        if status == "failed" || Instant::now() > deadline {
            break (status, detail);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status, "failed", "{detail}");
    assert!(
        detail.contains("partition 0")
            && detail.contains("offset 10")
            && detail.contains("earliest is 20"),
        "{detail}"
    );
    assert_eq!(one(&client, "SELECT count(*) FROM failing").await, 13);
    produce(30..35).await;
    produce(1003..1005).await;
    wait_for(
        &server,
        "SELECT count(*) FROM late",
        20,
        Duration::from_secs(60),
    )
    .await;
    wait_for(
        &server,
        "SELECT count(*) FROM early",
        30,
        Duration::from_secs(60),
    )
    .await;
    // Resetting the failed pipeline's offsets to the earliest goes on from there; across
    // a restart nothing is read twice.
    client
        .batch_execute("ALTER PIPELINE failing_load RESET OFFSETS TO EARLIEST")
        .await
        .unwrap();
    // Partition 0 from 20 (15 records), partition 1 from 0 again (5).
    wait_for(
        &server,
        "SELECT count(*) FROM failing",
        13 + 15 + 5,
        Duration::from_secs(60),
    )
    .await;
    server.kill_and_restart();
    produce(35..36).await;
    for (name, rows) in [("failing", 34), ("early", 31), ("late", 21)] {
        wait_for(
            &server,
            &format!("SELECT count(*) FROM {name}"),
            rows,
            Duration::from_secs(60),
        )
        .await;
        wait_for(
            &server,
            &format!("SELECT lag FROM sys.pipelines WHERE name = '{name}_load'"),
            0,
            Duration::from_secs(30),
        )
        .await;
    }
}

/// CSV records with the Kafka key, partition, offset and timestamp as columns, a source
/// that starts at a time, and offsets reset to a time and to the end.
#[tokio::test(flavor = "multi_thread")]
async fn csv_records_kafka_columns_and_start_times() {
    let broker = KafkaBroker::start();
    broker.create_topic("csvs", 1).await;
    let producer = broker.producer(&[]);
    // 2024-06-01 10:00:00 UTC, in milliseconds; record i a minute after record i - 1.
    let base = 1_717_236_000_000i64;
    let send_csv = |i: i64| {
        let producer = producer.clone();
        async move {
            // 3,name 3,"quoted, ""3"""
            producer
                .send(
                    FutureRecord::to("csvs")
                        .partition(0)
                        .key(&format!("k{i}"))
                        .payload(&format!("{i},name {i},\"quoted, \"\"{i}\"\"\""))
                        .timestamp(base + i * 60_000),
                    Duration::from_secs(60),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("record acknowledged");
        }
    };
    for i in 0..6 {
        send_csv(i).await;
    }
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE c (id BIGINT, name TEXT, note TEXT, k TEXT, p INTEGER, o BIGINT, kt TIMESTAMPTZ);
             CREATE SOURCE c_in (id BIGINT, name TEXT, note TEXT, k TEXT KAFKA KEY, \
               p INTEGER KAFKA PARTITION, o BIGINT KAFKA OFFSET, kt TIMESTAMPTZ KAFKA TIMESTAMP) \
               WITH (connector = 'kafka', brokers = '{}', topic = 'csvs', format = 'csv', \
               start = '2024-06-01 10:03:00+00');
             CREATE PIPELINE c_load AS INSERT INTO c SELECT * FROM c_in",
            broker.bootstrap()
        ))
        .await
        .unwrap();
    wait_for(
        &server,
        "SELECT count(*) FROM c",
        3,
        Duration::from_secs(60),
    )
    .await;
    let rows: Vec<String> = client
        .query(
            "SELECT id || '|' || name || '|' || note || '|' || k || '|' || p || '|' || o || '|' || kt::text FROM c ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        rows,
        [
            r#"3|name 3|quoted, "3"|k3|0|3|2024-06-01 10:03:00+00"#,
            r#"4|name 4|quoted, "4"|k4|0|4|2024-06-01 10:04:00+00"#,
            r#"5|name 5|quoted, "5"|k5|0|5|2024-06-01 10:05:00+00"#,
        ]
    );
    // Back to the first record at or after 10:04:30: record 5 is read again.
    client
        .batch_execute("ALTER PIPELINE c_load RESET OFFSETS TO '2024-06-01 10:04:30+00'")
        .await
        .unwrap();
    wait_for(
        &server,
        "SELECT count(*) FROM c WHERE id = 5",
        2,
        Duration::from_secs(60),
    )
    .await;
    // To the end (paused): only what comes after is read.
    client
        .batch_execute("ALTER PIPELINE c_load PAUSE; ALTER PIPELINE c_load RESET OFFSETS TO LATEST")
        .await
        .unwrap();
    assert_eq!(
        one(
            &client,
            "SELECT \"offset\" FROM sys.pipeline_partitions WHERE pipeline = 'c_load'"
        )
        .await,
        6
    );
    send_csv(6).await;
    send_csv(7).await;
    client
        .batch_execute("ALTER PIPELINE c_load RESUME")
        .await
        .unwrap();
    wait_for(
        &server,
        "SELECT count(*) FROM c",
        6,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        one(&client, "SELECT count(*) FROM c WHERE id IN (6, 7)").await,
        2
    );
}

/// Records of aborted transactions are never ingested (read_committed); those of committed
/// ones are, once.
#[tokio::test(flavor = "multi_thread")]
async fn aborted_transactions_are_not_ingested() {
    let broker = KafkaBroker::start();
    broker.create_topic("tx", 2).await;
    let producer: FutureProducer = broker.producer(&[("transactional.id", "henge-test-tx")]);
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    let mut committed = 0;
    for (batch, commit) in [(0, true), (1, false), (2, true), (3, false)] {
        producer.begin_transaction().unwrap();
        for i in 0..100 {
            let id = batch * 1000 + i;
            send(&producer, "tx", (id % 2) as i32, "k", &event(id * 5 + 1)).await;
        }
        if commit {
            producer
                .commit_transaction(Duration::from_secs(30))
                .unwrap();
            committed += 100;
        } else {
            producer.abort_transaction(Duration::from_secs(30)).unwrap();
        }
    }
    let server = TestServer::start();
    let client = server.connect().await;
    create_events(&client, &broker.bootstrap(), "tx").await;
    wait_for(
        &server,
        "SELECT count(*) FROM events",
        committed,
        Duration::from_secs(60),
    )
    .await;
    // Nothing more arrives, and the offsets pass the transaction markers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(one(&client, "SELECT count(*) FROM events").await, committed);
    wait_for(
        &server,
        "SELECT lag FROM sys.pipelines",
        0,
        Duration::from_secs(30),
    )
    .await;
}

/// Every compression codec the broker takes.
#[tokio::test(flavor = "multi_thread")]
async fn every_compression_codec_is_read() {
    let broker = KafkaBroker::start();
    broker.create_topic("codecs", 1).await;
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    for (c, codec) in codecs.iter().enumerate() {
        let producer = broker.producer(&[("compression.type", codec)]);
        for i in 0..200 {
            let id = (c as i64 * 1000 + i) * 5 + 1;
            let _ = producer.send_result(
                FutureRecord::to("codecs")
                    .partition(0)
                    .key("k")
                    .payload(&event(id)),
            );
        }
        flush(&producer);
    }
    let server = TestServer::start();
    let client = server.connect().await;
    create_events(&client, &broker.bootstrap(), "codecs").await;
    expect_events(&server, 1000, Duration::from_secs(60)).await;
}

/// Partitions added to the topic are read from their beginning; a broker killed and
/// started again mid-ingest costs nothing: every record lands once.
#[tokio::test(flavor = "multi_thread")]
async fn partitions_added_and_a_broker_restart() {
    let broker = KafkaBroker::start();
    broker.create_topic("grow", 2).await;
    let server = TestServer::start();
    let client = server.connect().await;
    create_events(&client, &broker.bootstrap(), "grow").await;
    let producer = broker.producer(&[]);
    let mut id = 0;
    let mut produce = |partitions: i32, n: i64, producer: &FutureProducer| {
        for _ in 0..n {
            let value = event(id * 5 + 1);
            // Refused at once only for a partition the producer does not know (see
            // `wait_for_partitions`), or a full queue: either fails the test here.
            if let Err((e, _)) = producer.send_result(
                FutureRecord::to("grow")
                    .partition((id % i64::from(partitions)) as i32)
                    .key("k")
                    .payload(&value),
            ) {
                panic!("record {id} not sent: {e}");
            }
            id += 1;
        }
        flush(producer);
    };
    produce(2, 1000, &producer);
    wait_for(
        &server,
        "SELECT count(*) FROM events",
        1000,
        Duration::from_secs(60),
    )
    .await;
    broker.add_partitions("grow", 4).await;
    // A producer that knows the new partitions (a loaded broker may take a while to
    // report them: records for them were refused, 500 of 1000 lost).
    let producer = broker.producer(&[]);
    broker.wait_for_partitions(&producer, "grow", 4).await;
    produce(4, 1000, &producer);
    wait_for(
        &server,
        "SELECT count(*) FROM events",
        2000,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        one(&client, "SELECT partitions::BIGINT FROM sys.pipelines").await,
        4
    );
    broker.stop(true);
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.restart();
    let producer = broker.producer(&[]);
    broker.wait_for_partitions(&producer, "grow", 4).await;
    produce(4, 1000, &producer);
    expect_events(&server, 3000, Duration::from_secs(120)).await;
}

/// SASL: a wrong password is reported and retried, never ingested; the right one (PLAIN
/// and SCRAM) reads. TLS: the broker's certificate is verified.
#[tokio::test(flavor = "multi_thread")]
async fn sasl_passwords_and_tls_certificates_are_checked() {
    let broker = KafkaBroker::start();
    broker.create_topic("secure", 1).await;
    let producer = broker.producer(&[]);
    for i in 0..10 {
        send(&producer, "secure", 0, "k", &event(i * 5 + 1)).await;
    }
    let server = TestServer::start();
    let client = server.connect().await;
    let sasl = broker.sasl_bootstrap();
    for (table, mechanism, password) in [
        ("wrong", "SCRAM-SHA-256", "not-the-password"),
        ("plain", "PLAIN", "henge-secret"),
        ("scram", "SCRAM-SHA-256", "henge-secret"),
    ] {
        client
            .batch_execute(&format!(
                "CREATE TABLE {table} (id BIGINT);
                 CREATE SOURCE {table}_in (id BIGINT) WITH (connector = 'kafka', brokers = '{sasl}', \
                   topic = 'secure', security_protocol = 'sasl_plaintext', sasl_mechanism = '{mechanism}', \
                   sasl_username = 'henge', sasl_password = '{password}');
                 CREATE PIPELINE {table}_load AS INSERT INTO {table} SELECT id FROM {table}_in"
            ))
            .await
            .unwrap();
    }
    wait_for(
        &server,
        "SELECT count(*) FROM plain",
        10,
        Duration::from_secs(60),
    )
    .await;
    wait_for(
        &server,
        "SELECT count(*) FROM scram",
        10,
        Duration::from_secs(60),
    )
    .await;
    let detail = refused(&server, &client, "wrong").await;
    assert!(detail.contains("Authentication failed"), "{detail}");

    // TLS: the broker's certificate (self-signed, for 127.0.0.1) verified against the CA
    // file the source names; with another CA file the pipeline retries, saying why.
    let ssl = broker.ssl_bootstrap();
    let other_ca = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other_ca.path(), OTHER_CA).unwrap();
    for (table, ca) in [
        ("tls", broker.ca_pem()),
        ("untrusted", other_ca.path().display().to_string()),
    ] {
        client
            .batch_execute(&format!(
                "CREATE TABLE {table} (id BIGINT);
                 CREATE SOURCE {table}_in (id BIGINT) WITH (connector = 'kafka', brokers = '{ssl}', \
                   topic = 'secure', security_protocol = 'ssl', ssl_ca_location = '{ca}');
                 CREATE PIPELINE {table}_load AS INSERT INTO {table} SELECT id FROM {table}_in"
            ))
            .await
            .unwrap();
    }
    wait_for(
        &server,
        "SELECT count(*) FROM tls",
        10,
        Duration::from_secs(60),
    )
    .await;
    let detail = refused(&server, &client, "untrusted").await;
    assert!(detail.contains("certificate verify failed"), "{detail}");
}

/// Waits until pipeline `{table}_load` retries, checks it wrote nothing into `table`, and
/// returns why it retries.
async fn refused(server: &TestServer, client: &Client, table: &str) -> String {
    wait_for(
        server,
        &format!(
            "SELECT count(*) FROM sys.pipelines WHERE name = '{table}_load' AND state = 'retrying'"
        ),
        1,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        one(client, &format!("SELECT count(*) FROM {table}")).await,
        0
    );
    client
        .query_one(
            &format!("SELECT detail FROM sys.pipelines WHERE name = '{table}_load'"),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// A self-signed certificate of no broker here (made with `keytool -genkeypair -dname
/// CN=elsewhere`): a CA the broker's certificate does not chain to.
const OTHER_CA: &str = "-----BEGIN CERTIFICATE-----
MIIC2zCCAcOgAwIBAgIID3yKfsUUcmkwDQYJKoZIhvcNAQELBQAwFDESMBAGA1UE
AxMJZWxzZXdoZXJlMCAXDTI2MTIwNjA4MTY1OFoYDzIxMjYxMTEyMDgxNjU4WjAU
MRIwEAYDVQQDEwllbHNld2hlcmUwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEK
AoIBAQC5UYMRopUXUGb7hklLDFfFc4VVcJWXtr0KWl2JnFm75Dhbx8DQidyH71Sx
gHkzDeO7y5MygIxd/ZatT3B9jcsKPKtrIFhwbyupA7cA4b8uaDlWh7PL8exDYS4y
P8VmUIgB/fSlcjaQn52E0aCAcA/iaCnrRnnmj4VuVz6DfokI3XFMyl4wCoYGVc//
M/3Fi0Ht6HCnh8VQiuyTIPVRfLX/grLVSxvyrFKoqZPbg03UKdUx9QJpu40Wwad3
vCGpGVaRfd9Na94CFRYt5K4NBU2Yvc0hAe5SxxZx4SodbTFM8s7knhN44sWIpjcy
7qaKmPRgQQsXa2hRfU0JN8QCyP1RAgMBAAGjLzAtMB0GA1UdDgQWBBTQvEr43boE
dcgWDWeBc7vU+eyZ9TAMBgNVHRMEBTADAQH/MA0GCSqGSIb3DQEBCwUAA4IBAQBS
Z3j5LyxQr6tKdPriwi//3oc8e9KrTDc/GVCmh4l/JAMpP1okd5l6wSgtK5gYoWmG
tU2lN+uydWVhtQ++XNW4h2nyabRBBjXqMgW0K5ZjLpPKJ7H0mtcl7oVuxqch5oEk
vcJ3ASPdpFmJ4mNu3J5gK0CnAz0IVsmla6IT2Dv5o/HAa0qVL6UKLIP122fFLNEe
blVhk2ctoW4RvgFbGNH7VwOiX8dfTxVpreiudUGzopwSJ8D0iLtyUdmuaFAJcmBv
QJIq7Lkef+yBIIOu8WSG9KRjFLpdJgjTI8rPGjRz911iiBI58lbOafL4W7OBmOy0
1GDmDuaIOFRcoNOXNp5x
-----END CERTIFICATE-----
";

/// Rows a pipeline writes count for alert rules as other writes do.
#[tokio::test(flavor = "multi_thread")]
async fn pipeline_rows_are_watched_by_alert_rules() {
    let broker = KafkaBroker::start();
    broker.create_topic("watched", 2).await;
    let producer = broker.producer(&[]);
    for id in 0..600 {
        send(
            &producer,
            "watched",
            (id % 2) as i32,
            &id.to_string(),
            &event(id),
        )
        .await;
    }
    flush(&producer);
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE events (ts TIMESTAMPTZ NOT NULL, id BIGINT NOT NULL, country TEXT, amount NUMERIC(10,2)) \
               WITH (time_column = 'ts', segment_granularity = 'hour');
             CREATE ALERT busy_country ON events PARTITION BY country WITHIN INTERVAL '30 seconds' \
               WHEN count(*) >= 8 NOTIFY busy",
        )
        .await
        .unwrap();
    client
        .batch_execute(&format!(
            "CREATE SOURCE events_in (ts TIMESTAMPTZ PATH '$.time', id BIGINT, country TEXT PATH '$.geo.country', \
               amount TEXT, kind TEXT) \
               WITH (connector = 'kafka', brokers = '{}', topic = 'watched', start = 'earliest');
             CREATE PIPELINE events_load AS INSERT INTO events \
               SELECT ts, id, upper(country), CAST(amount AS NUMERIC(10,2)) FROM events_in WHERE kind = 'sale'",
            broker.bootstrap()
        ))
        .await
        .unwrap();
    wait_for(
        &server,
        "SELECT count(*) FROM events",
        480,
        Duration::from_secs(60),
    )
    .await;
    let pairs = |sql: &'static str| {
        let client = &client;
        async move {
            let mut rows: Vec<(String, String)> = client
                .query(sql, &[])
                .await
                .expect(sql)
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            rows.sort();
            rows
        }
    };
    let expected = pairs(
        "SELECT a.country, a.ts::text FROM (SELECT DISTINCT country, ts FROM events) AS a \
         JOIN events AS b ON b.country = a.country AND b.ts BETWEEN a.ts - INTERVAL '30 seconds' AND a.ts \
         GROUP BY a.country, a.ts HAVING count(*) >= 8",
    )
    .await;
    assert!(!expected.is_empty());
    // The pipeline's writes wait for their rows' evaluation: the alerts are there.
    assert_eq!(
        pairs("SELECT key, window_end::text FROM alerts").await,
        expected
    );
}
