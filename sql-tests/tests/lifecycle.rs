//! The segment lifecycle over the wire: large statements staged on disk and made visible at
//! once, rows persisted and handed off, and `kill -9` (a failure-injection switch,
//! `HENGE_FAIL_AT`) at every step of it, with readers checking counts while it happens:
//! nothing acknowledged is lost, nothing is seen twice, no statement is half applied, and
//! no file is left behind.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::SinkExt;
use henge_sql_tests::server::TestServer;
use tokio_postgres::Client;

/// A budget small enough that a statement of a few MB spills (the stage is 1 MiB), with
/// no automatic persist and a window period that keeps chunks open: the steps run when the
/// test says so.
const CONFIG: &str =
    "ingest_memory = \"8MB\"\npersist_rows = 0\npersist_bytes = 0\npersist_period_secs = 0\n";

const CREATE: &str = "CREATE TABLE ev (ts TIMESTAMP NOT NULL, id BIGINT NOT NULL, page TEXT) \
                      WITH (time_column = 'ts', segment_granularity = 'day', window_period = '1 hour')";

/// COPY text lines for ids `from..to`, spread over four days.
fn lines(from: i64, to: i64) -> String {
    (from..to)
        .map(|i| {
            format!(
                "2024-01-0{} {:02}:{:02}:{:02}\t{i}\tpage{}\n",
                1 + i % 4,
                i / 3600 % 24,
                i / 60 % 60,
                i % 60,
                i % 17
            )
        })
        .collect()
}

async fn copy(client: &Client, data: String) -> Result<u64, tokio_postgres::Error> {
    copy_into(client, "ev", data).await
}

async fn copy_into(
    client: &Client,
    table: &str,
    data: String,
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in(&format!("COPY {table} FROM STDIN")).await?;
    futures::pin_mut!(sink);
    for piece in data.into_bytes().chunks(256 << 10) {
        sink.send(Bytes::copy_from_slice(piece)).await?;
    }
    sink.finish().await
}

/// Count, distinct ids and sum of ids.
async fn totals(client: &Client) -> Result<(i64, i64, i64), tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT id), coalesce(sum(id), 0)::BIGINT FROM ev",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

fn expected(n: i64) -> (i64, i64, i64) {
    (n, n, n * (n - 1) / 2)
}

async fn states(client: &Client) -> Vec<(String, i64)> {
    client
        .query(
            "SELECT state, count(*) FROM sys.segments WHERE \"table\" = 'ev' GROUP BY state ORDER BY state",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_copy_is_staged_on_disk_and_visible_all_at_once() {
    let mut server = TestServer::start_with_config(Some(CONFIG));
    let client = server.connect().await;
    client.batch_execute(CREATE).await.unwrap();
    assert_eq!(copy(&client, lines(0, 200_000)).await.unwrap(), 200_000);
    assert_eq!(totals(&client).await.unwrap(), expected(200_000));
    // The rows never sat in memory: they are persisted pieces.
    let row = client
        .query_one(
            "SELECT buffered_rows, persisted_rows, persisted_pieces > 0 FROM sys.ingest WHERE \"table\" = 'ev'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, bool>(2)
        ),
        (0, 200_000, true)
    );
    let row = client
        .query_one(
            "SELECT memory_budget, wal_bytes > 0 FROM sys.ingest WHERE \"table\" IS NULL",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, bool>(1)),
        (8 << 20, true)
    );

    // A bad value near the end fails the whole statement with its line; nothing of it
    // is visible, and its spilled files are gone.
    let before = files(&server.data_dir().join("segments"));
    let mut data = lines(200_000, 350_000);
    data.push_str("2024-01-01 00:00:00\tnot a number\tx\n");
    let error = copy(&client, data).await.unwrap_err();
    let db = error.as_db_error().expect("a database error");
    assert_eq!(db.code().code(), "22P02");
    assert!(db.message().contains("line 150001"), "{}", db.message());
    assert_eq!(totals(&client).await.unwrap(), expected(200_000));
    assert_eq!(files(&server.data_dir().join("segments")), before);

    // After kill -9 the pieces are read from disk; CHECKPOINT merges each day's pieces into
    // one segment.
    server.kill_and_restart();
    let client = server.connect().await;
    assert_eq!(totals(&client).await.unwrap(), expected(200_000));
    client.batch_execute("CHECKPOINT").await.unwrap();
    assert_eq!(states(&client).await, vec![("published".to_owned(), 4)]);
    assert_eq!(totals(&client).await.unwrap(), expected(200_000));
    assert_eq!(files(&server.data_dir().join("segments")), 4);

    // INSERT … SELECT of any size is staged the same way.
    client
        .batch_execute("CREATE TABLE copy2 (ts TIMESTAMP NOT NULL, id BIGINT NOT NULL, page TEXT) WITH (time_column = 'ts')")
        .await
        .unwrap();
    let n = client
        .execute("INSERT INTO copy2 SELECT * FROM ev", &[])
        .await
        .unwrap();
    assert_eq!(n, 200_000);
    let row = client
        .query_one(
            "SELECT buffered_rows, persisted_rows FROM sys.ingest WHERE \"table\" = 'copy2'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (0, 200_000));
}

/// Kills the server at `point` while readers check that every answer is between the rows
/// acknowledged before and after; then checks the data directory after a restart.
async fn crash_at(point: &str, trigger: &str) {
    let mut server = TestServer::start_with_config(Some(CONFIG));
    let client = server.connect().await;
    client.batch_execute(CREATE).await.unwrap();
    // Published segments, pieces and rows in memory, all at once.
    copy(&client, lines(0, 20_000)).await.unwrap();
    client.batch_execute("CHECKPOINT").await.unwrap();
    copy(&client, lines(20_000, 120_000)).await.unwrap();
    copy(&client, lines(120_000, 121_000)).await.unwrap();
    let acknowledged = Arc::new(AtomicI64::new(121_000));
    server.restart_failing_at(Some(point));
    let client = server.connect().await;

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let client = server.connect().await;
        let (stop, acknowledged) = (stop.clone(), acknowledged.clone());
        tokio::spawn(async move {
            let mut reads = 0;
            while !stop.load(Ordering::SeqCst) {
                let low = acknowledged.load(Ordering::SeqCst);
                let Ok((count, distinct, _)) = totals(&client).await else {
                    break; // the server died
                };
                assert_eq!(count, distinct, "a row seen twice");
                assert!(count >= low, "saw {count} rows with {low} acknowledged");
                reads += 1;
            }
            reads
        })
    };
    // Writes keep coming until the server dies.
    let writer = {
        let client = server.connect().await;
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            let mut next = 121_000;
            loop {
                let values: Vec<String> = (next..next + 100)
                    .map(|i| format!("('2024-01-0{} 12:00:00', {i}, 'w')", 1 + i % 4))
                    .collect();
                if client
                    .batch_execute(&format!("INSERT INTO ev VALUES {}", values.join(", ")))
                    .await
                    .is_err()
                {
                    return next;
                }
                next += 100;
                acknowledged.store(next, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let outcome = match trigger {
        "copy" => copy(&client, lines(1_000_000, 1_300_000)).await.map(|_| ()),
        sql => client.batch_execute(sql).await,
    };
    assert!(
        outcome.is_err(),
        "{point}: the statement should not be acknowledged"
    );
    assert!(
        server.exited_within(Duration::from_secs(20)),
        "{point}: the failure point was not reached"
    );
    let written = writer.await.unwrap();
    stop.store(true, Ordering::SeqCst);
    reader.await.unwrap();

    server.restart_failing_at(None);
    let client = server.connect().await;
    let (count, distinct, sum) = totals(&client).await.unwrap();
    // Every acknowledged INSERT is there; the one in flight may or may not be; the COPY
    // that was cut off is not there at all.
    let acked = acknowledged.load(Ordering::SeqCst);
    assert_eq!(count, distinct, "{point}: a row is there twice");
    assert!(
        count == acked || count == written + 100 && written == acked,
        "{point}: {count} rows, {acked} acknowledged"
    );
    assert_eq!(sum, count * (count - 1) / 2, "{point}: rows differ");
    // Everything can still be handed off and compacted, and nothing is left behind but the
    // segments.
    client.batch_execute("CHECKPOINT; COMPACT").await.unwrap();
    assert_eq!(totals(&client).await.unwrap(), (count, distinct, sum));
    let published: i64 = client
        .query_one(
            "SELECT count(*) FROM sys.segments WHERE \"table\" = 'ev'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        states(&client).await,
        vec![("published".to_owned(), published)]
    );
    assert_eq!(
        files(&server.data_dir().join("segments")) as i64,
        published,
        "{point}: files left behind"
    );
    assert_eq!(
        files(&server.data_dir().join("deep")) as i64,
        published,
        "{point}: files left behind in deep storage"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_mid_persist() {
    crash_at("persist.written", "CHECKPOINT").await;
    crash_at("persist.recorded", "CHECKPOINT").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_mid_merge_and_upload() {
    crash_at("handoff.merged", "CHECKPOINT").await;
    crash_at("handoff.uploaded", "CHECKPOINT").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_after_publish_and_mid_delete() {
    crash_at("handoff.published", "CHECKPOINT").await;
    crash_at("handoff.deleting:2", "CHECKPOINT").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_mid_copy() {
    crash_at("stage.spilled:3", "copy").await;
    crash_at("stage.committing", "copy").await;
}

/// A sort larger than `query_memory` spills to disk instead of failing or growing.
#[tokio::test(flavor = "multi_thread")]
async fn queries_spill_past_query_memory() {
    let server = TestServer::start_with_config(Some("query_memory = \"64MB\"\n"));
    let client = server.connect().await;
    const N: i64 = 400_000;
    // Rows of 200-odd bytes, which the sort has to hold: 80 MB, more than the pool.
    client
        .batch_execute("CREATE TABLE wide (id BIGINT NOT NULL, pad TEXT)")
        .await
        .unwrap();
    let data: String = (0..N)
        .map(|id| format!("{id}\t{}page{}\n", "x".repeat(200), id % 17))
        .collect();
    assert_eq!(copy_into(&client, "wide", data).await.unwrap(), N as u64);
    let sql = "SELECT sum(id * r) + sum(length(pad)) FROM (SELECT id, pad, \
               row_number() OVER (ORDER BY id DESC) AS r FROM wide) s";
    // One sort at a time: DataFusion's sorts reserve their merge memory only once they have
    // rows, so two at once can fill the pool before either has reserved it.
    client
        .batch_execute("SET datafusion.execution.target_partitions = 1")
        .await
        .unwrap();
    let plan: Vec<String> = client
        .query(&format!("EXPLAIN ANALYZE {sql}"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(1))
        .collect();
    let plan = plan.join("\n");
    let spills: Vec<u64> = plan
        .split("spill_count=")
        .skip(1)
        .filter_map(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(spills.iter().any(|&n| n > 0), "no spill in {plan}");
    let answer: i64 = client
        .query_one(&format!("SELECT ({sql})::BIGINT"), &[])
        .await
        .unwrap()
        .get(0);
    // Row `id` is number N - id in descending order.
    let expected: i64 = (0..N)
        .map(|id| id * (N - id) + 200 + format!("page{}", id % 17).len() as i64)
        .sum();
    assert_eq!(answer, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_mid_compaction() {
    crash_at("compact.merged", "CHECKPOINT; COMPACT").await;
    crash_at("compact.published", "CHECKPOINT; COMPACT").await;
    crash_at("compact.deleting:3", "CHECKPOINT; COMPACT").await;
}

/// Deep storage that fails delays hand-off and loses nothing: the pieces stay queryable,
/// writes and persists go on, and the hand-off succeeds once deep storage is back.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_deep_storage_delays_hand_off_and_loses_nothing() {
    let mut server = TestServer::start_with_config(Some(CONFIG));
    let client = server.connect().await;
    client.batch_execute(CREATE).await.unwrap();
    copy(&client, lines(0, 10_000)).await.unwrap();
    // Every put now fails: deep storage's directory is a plain file.
    let deep = server.data_dir().join("deep");
    std::fs::remove_dir_all(&deep).unwrap();
    std::fs::write(&deep, b"not a directory").unwrap();
    let error = client.batch_execute("CHECKPOINT").await.unwrap_err();
    assert!(error.as_db_error().is_some(), "{error}");
    assert_eq!(totals(&client).await.unwrap(), expected(10_000));
    assert_eq!(states(&client).await, vec![("persisted".to_owned(), 4)]);
    // Nothing else stops: writes are taken and persisted meanwhile.
    copy(&client, lines(10_000, 12_000)).await.unwrap();
    assert!(client.batch_execute("CHECKPOINT").await.is_err());
    assert_eq!(totals(&client).await.unwrap(), expected(12_000));

    // Deep storage is back: everything is handed off, across a kill -9 too.
    std::fs::remove_file(&deep).unwrap();
    std::fs::create_dir(&deep).unwrap();
    server.kill_and_restart();
    let client = server.connect().await;
    assert_eq!(totals(&client).await.unwrap(), expected(12_000));
    client.batch_execute("CHECKPOINT").await.unwrap();
    assert_eq!(states(&client).await, vec![("published".to_owned(), 4)]);
    assert_eq!(totals(&client).await.unwrap(), expected(12_000));
    assert_eq!(files(&deep), 4);
}

/// Count and sum of ids in `table`.
async fn table_totals(client: &Client, table: &str) -> (i64, i64) {
    let row = client
        .query_one(
            &format!("SELECT count(*), coalesce(sum(id), 0)::BIGINT FROM {table}"),
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

fn sum(from: i64, to: i64) -> i64 {
    (from..to).sum()
}

/// A transaction block stages COPYs and INSERT … SELECTs of any size (spilled past the
/// stage limit): the block reads its own rows, others see none of them until COMMIT, then
/// all of them; ROLLBACK, ROLLBACK TO SAVEPOINT, a dropped connection and kill -9 leave
/// nothing of what they discard, not even files; a crash inside the commit of two tables
/// applies neither.
#[tokio::test(flavor = "multi_thread")]
async fn transaction_blocks_stage_writes_of_any_size() {
    let mut server = TestServer::start_with_config(Some(CONFIG));
    let client = server.connect().await;
    let other = server.connect().await;
    client.batch_execute(CREATE).await.unwrap();
    client
        .batch_execute(&CREATE.replace("TABLE ev", "TABLE ev2"))
        .await
        .unwrap();
    let segments = server.data_dir().join("segments");
    let empty = files(&segments);

    client.batch_execute("BEGIN").await.unwrap();
    assert_eq!(copy(&client, lines(0, 100_000)).await.unwrap(), 100_000);
    let n = client
        .execute("INSERT INTO ev2 SELECT * FROM ev WHERE id < 60000", &[])
        .await
        .unwrap();
    assert_eq!(n, 60_000);
    assert!(files(&segments) > empty, "the block's rows were spilled");
    assert_eq!(
        table_totals(&client, "ev").await,
        (100_000, sum(0, 100_000))
    );
    assert_eq!(table_totals(&client, "ev2").await, (60_000, sum(0, 60_000)));
    assert_eq!(table_totals(&other, "ev").await, (0, 0));
    assert_eq!(table_totals(&other, "ev2").await, (0, 0));
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(table_totals(&client, "ev").await, (0, 0));
    assert_eq!(table_totals(&client, "ev2").await, (0, 0));
    assert_eq!(files(&segments), empty, "what ROLLBACK discards is deleted");

    // A COPY that fails after a savepoint, undone by ROLLBACK TO; the block goes on and
    // commits two tables together.
    client.batch_execute("BEGIN").await.unwrap();
    copy(&client, lines(0, 100_000)).await.unwrap();
    client.batch_execute("SAVEPOINT s").await.unwrap();
    copy(&client, lines(100_000, 150_000)).await.unwrap();
    let mut bad = lines(150_000, 200_000);
    bad.push_str("2024-01-01 00:00:00\tnot a number\tx\n");
    let error = copy(&client, bad).await.unwrap_err();
    assert_eq!(error.as_db_error().unwrap().code().code(), "22P02");
    let aborted = client.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(aborted.as_db_error().unwrap().code().code(), "25P02");
    client
        .batch_execute("ROLLBACK TO SAVEPOINT s")
        .await
        .unwrap();
    assert_eq!(
        table_totals(&client, "ev").await,
        (100_000, sum(0, 100_000))
    );
    client
        .execute("INSERT INTO ev2 SELECT * FROM ev WHERE id >= 90000", &[])
        .await
        .unwrap();
    assert_eq!(table_totals(&other, "ev").await, (0, 0));
    client.batch_execute("COMMIT").await.unwrap();
    assert_eq!(table_totals(&other, "ev").await, (100_000, sum(0, 100_000)));
    assert_eq!(
        table_totals(&other, "ev2").await,
        (10_000, sum(90_000, 100_000))
    );
    let committed = files(&segments);

    // A connection that goes away mid-block, and kill -9 mid-block, apply nothing and leave
    // no files.
    {
        let gone = server.connect().await;
        gone.batch_execute("BEGIN").await.unwrap();
        copy(&gone, lines(100_000, 200_000)).await.unwrap();
    }
    client.batch_execute("BEGIN").await.unwrap();
    copy(&client, lines(200_000, 300_000)).await.unwrap();
    server.kill_and_restart();
    let client = server.connect().await;
    assert_eq!(
        table_totals(&client, "ev").await,
        (100_000, sum(0, 100_000))
    );
    assert_eq!(
        files(&segments),
        committed,
        "no file of an open block survives"
    );

    // kill -9 inside the commit of two tables: neither gets the block's rows.
    server.restart_failing_at(Some("stage.committing"));
    let client = server.connect().await;
    client.batch_execute("BEGIN").await.unwrap();
    copy(&client, lines(100_000, 110_000)).await.unwrap();
    client
        .execute("INSERT INTO ev2 SELECT * FROM ev WHERE id >= 100000", &[])
        .await
        .unwrap();
    assert!(client.batch_execute("COMMIT").await.is_err());
    assert!(server.exited_within(Duration::from_secs(10)));
    server.restart_failing_at(None);
    let client = server.connect().await;
    assert_eq!(
        table_totals(&client, "ev").await,
        (100_000, sum(0, 100_000))
    );
    assert_eq!(
        table_totals(&client, "ev2").await,
        (10_000, sum(90_000, 100_000))
    );
    assert_eq!(files(&segments), committed);

    // Committed blocks survive kill -9, and CHECKPOINT hands their rows off.
    client.batch_execute("BEGIN").await.unwrap();
    copy(&client, lines(100_000, 110_000)).await.unwrap();
    client
        .execute("INSERT INTO ev2 VALUES ('2024-01-02', -1, 'x')", &[])
        .await
        .unwrap();
    client.batch_execute("COMMIT").await.unwrap();
    server.kill_and_restart();
    let client = server.connect().await;
    client.batch_execute("CHECKPOINT").await.unwrap();
    assert_eq!(
        table_totals(&client, "ev").await,
        (110_000, sum(0, 110_000))
    );
    assert_eq!(
        table_totals(&client, "ev2").await,
        (10_001, sum(90_000, 100_000) - 1)
    );
}

/// A GROUP BY of many keys pushed into the scan keeps its partial states within
/// `query_memory`: what the pool cannot hold is emitted early and merged by DataFusion's
/// final aggregation (which spills), and the answer is exact.
#[tokio::test(flavor = "multi_thread")]
async fn a_pushed_down_group_by_of_many_keys_stays_within_query_memory() {
    let server = TestServer::start_with_config(Some("query_memory = \"12MB\"\n"));
    let client = server.connect().await;
    const N: i64 = 600_000;
    client
        .batch_execute("CREATE TABLE keys (id BIGINT NOT NULL, v BIGINT)")
        .await
        .unwrap();
    let data: String = (0..N).map(|id| format!("{id}\t{}\n", id % 7)).collect();
    assert_eq!(copy_into(&client, "keys", data).await.unwrap(), N as u64);
    client
        .batch_execute("CHECKPOINT; SET datafusion.execution.target_partitions = 1")
        .await
        .unwrap();
    let sql = "SELECT count(*), sum(c)::BIGINT, sum(s)::BIGINT FROM \
               (SELECT id, count(*) AS c, sum(v) AS s FROM keys GROUP BY id) g";
    let plan: Vec<String> = client
        .query(&format!("EXPLAIN {sql}"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, String>(1))
        .collect();
    assert!(
        plan.join("\n").contains("aggregation pushed down"),
        "{plan:?}"
    );
    let row = client.query_one(sql, &[]).await.unwrap();
    let expected_sum: i64 = (0..N).map(|id| id % 7).sum();
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2)
        ),
        (N, N, expected_sum)
    );
}

/// Anonymous memory of process `pid`, in bytes.
fn rss_anon(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap();
    kb * 1024
}

/// A result far larger than what is held at once streams through the extended protocol
/// (pgwire's portal fetch would collect it whole before sending a row): when a slow client
/// has read its first rows, the server holds a small part of the table.
#[tokio::test(flavor = "multi_thread")]
async fn a_large_result_streams_through_the_extended_protocol() {
    let server = TestServer::start();
    let client = server.connect().await;
    client.batch_execute(CREATE).await.unwrap();
    const N: i64 = 1_000_000;
    let pad = "p".repeat(300);
    let data: String = (0..N)
        .map(|i| format!("2024-01-{:02} 00:00:00\t{i}\t{pad}{i}\n", 1 + i % 28))
        .collect();
    copy(&client, data).await.unwrap();
    client.batch_execute("CHECKPOINT").await.unwrap();
    let pid = server.pid().unwrap();
    let before = rss_anon(pid);
    let rows = client
        .query_raw("SELECT * FROM ev", std::iter::empty::<i64>())
        .await
        .unwrap();
    futures::pin_mut!(rows);
    let mut read = 0;
    use futures::StreamExt;
    while let Some(row) = rows.next().await {
        row.unwrap();
        read += 1;
        if read == 1000 {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = rss_anon(pid).saturating_sub(before);
    // The rows' text alone is over 300 MB: collected whole (as pgwire's fetch does) they
    // would all be held; streamed, a few segments' worth are.
    assert!(grown < 250 << 20, "the server grew by {} MB", grown >> 20);
}

/// Runs `sql` on a server set to die at `point`, checks that it did, before answering, and
/// starts it again; returns a client of the restarted server.
async fn killed_during(server: &mut TestServer, point: &str, sql: &str) -> Client {
    server.restart_failing_at(Some(point));
    let client = server.connect().await;
    assert!(
        client.batch_execute(sql).await.is_err(),
        "{point}: should not be acknowledged"
    );
    assert!(
        server.exited_within(Duration::from_secs(20)),
        "{point}: the failure point was not reached"
    );
    server.restart_failing_at(None);
    server.connect().await
}

/// A rolled-up table through every step of the lifecycle, killed at each: rows are combined
/// in the stage, at persist, at hand-off and at compaction, and `count(*)` and the sums
/// stay those of the rows acknowledged, never counting a row twice or losing one; its HLL
/// and quantiles sketches of the ids stay within their error of the ids acknowledged.
#[tokio::test(flavor = "multi_thread")]
async fn a_rolled_up_table_survives_kill_at_every_step() {
    const ROLLED: &str = "CREATE TABLE rolled (ts TIMESTAMP NOT NULL, id BIGINT, page TEXT, \
                          ids BIGINT ROLLUP HLL, id_quantiles BIGINT ROLLUP QUANTILES) \
                          WITH (time_column = 'ts', segment_granularity = 'day', \
                          rollup = true, query_granularity = 'hour', window_period = '1 hour')";
    async fn rolled_totals(client: &Client) -> (i64, i64, i64) {
        let row = client
            .query_one(
                "SELECT count(*), coalesce(sum(id), 0)::BIGINT, (SELECT sum(rows)::BIGINT FROM sys.segments \
                 WHERE \"table\" = 'rolled'), APPROX_COUNT_DISTINCT(ids), \
                 APPROX_QUANTILE(id_quantiles, 0.5) FROM rolled",
                &[],
            )
            .await
            .unwrap();
        let (distinct, median): (i64, f64) = (row.get(3), row.get(4));
        // Three standard errors of each sketch.
        assert!(
            (distinct - 150_001).abs() < 7_500,
            "{distinct} distinct ids"
        );
        assert!((median - 75_000.0).abs() < 3_000.0, "median id {median}");
        (
            row.get(0),
            row.get(1),
            row.get::<_, Option<i64>>(2).unwrap_or(0),
        )
    }
    // Each line's id again, for the two sketches.
    fn with_sketched(lines: String) -> String {
        lines
            .lines()
            .map(|line| {
                let id = line.split('\t').nth(1).unwrap_or_default();
                format!("{line}\t{id}\t{id}\n")
            })
            .collect()
    }
    // (A COPY into it is rolled up as it arrives, so it never grows large enough to spill.)
    for (point, trigger) in [
        ("persist.written", "CHECKPOINT"),
        ("persist.recorded", "CHECKPOINT"),
        ("handoff.uploaded", "CHECKPOINT"),
        ("handoff.published", "CHECKPOINT"),
        ("compact.published", "CHECKPOINT; COMPACT"),
    ] {
        let mut server = TestServer::start_with_config(Some(CONFIG));
        let client = server.connect().await;
        client.batch_execute(ROLLED).await.unwrap();
        // 17 pages over four days of hours: at most 1,632 stored rows however many arrive.
        assert_eq!(
            copy_into(&client, "rolled", with_sketched(lines(0, 100_000)))
                .await
                .unwrap(),
            100_000
        );
        client.batch_execute("CHECKPOINT").await.unwrap();
        assert_eq!(
            copy_into(&client, "rolled", with_sketched(lines(100_000, 150_000)))
                .await
                .unwrap(),
            50_000
        );
        client
            .batch_execute(
                "INSERT INTO rolled VALUES ('2024-01-01 00:00:01', 150000, 'page0', 150000, 150000)",
            )
            .await
            .unwrap();
        let (count, sum, stored) = rolled_totals(&client).await;
        assert_eq!((count, sum), (150_001, 150_001 * 150_000 / 2), "{point}");
        assert!(stored < 20_000, "{point}: {stored} rows stored");

        let client = killed_during(&mut server, point, trigger).await;
        let (count, sum, _) = rolled_totals(&client).await;
        assert_eq!((count, sum), (150_001, 150_001 * 150_000 / 2), "{point}");
        client.batch_execute("CHECKPOINT; COMPACT").await.unwrap();
        let (count, sum, stored) = rolled_totals(&client).await;
        assert_eq!((count, sum), (150_001, 150_001 * 150_000 / 2), "{point}");
        assert_eq!(stored, 4 * 24 * 17, "{point}: every hour and page once");
    }
}

/// DELETE and UPDATE are atomic: a reader running beside them sees all of a statement or
/// none of it, and a kill at any step of the rewrite leaves the old rows, every one.
#[tokio::test(flavor = "multi_thread")]
async fn delete_and_update_are_atomic_and_survive_kill_at_every_step() {
    for point in ["rewrite.merged:2", "rewrite.uploaded", "rewrite.published"] {
        let mut server = TestServer::start_with_config(Some(CONFIG));
        let client = server.connect().await;
        client.batch_execute(CREATE).await.unwrap();
        copy(&client, lines(0, 60_000)).await.unwrap();
        client.batch_execute("CHECKPOINT").await.unwrap();
        // Buffered rows too, in chunks already published.
        copy(&client, lines(60_000, 80_000)).await.unwrap();
        let all = expected(80_000);
        assert_eq!(totals(&client).await.unwrap(), all);

        let client = killed_during(&mut server, point, "DELETE FROM ev WHERE id % 3 = 0").await;
        // Before the commit point the old rows are all there; after it (the metadata
        // change made, the answer not sent) the statement's whole effect is.
        let left = (0..80_000i64).filter(|i| i % 3 != 0);
        let kept = (53_333, 53_333, left.sum::<i64>());
        let before = totals(&client).await.unwrap();
        match point {
            "rewrite.published" => assert_eq!(before, kept, "{point}"),
            _ => assert_eq!(before, all, "{point}: old rows"),
        }

        // Now for real, with a reader beside it that must see before or after, nothing else.
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let client = server.connect().await;
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                // The last read starts after the DELETE was acknowledged (a read under way
                // when it was may still see the rows before it).
                loop {
                    let stopping = stop.load(Ordering::SeqCst);
                    let now = totals(&client).await.unwrap();
                    assert!(now == before || now == kept, "a reader saw {now:?}");
                    seen.push(now);
                    if stopping {
                        break;
                    }
                }
                seen
            })
        };
        let deleted = client
            .execute("DELETE FROM ev WHERE id % 3 = 0", &[])
            .await
            .unwrap();
        assert_eq!(deleted, if before == all { 26_667 } else { 0 });
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.store(true, Ordering::SeqCst);
        let seen = reader.await.unwrap();
        assert_eq!(seen.last(), Some(&kept));
        // UPDATE with parameters, as drivers send it.
        let updated = client
            .execute(
                "UPDATE ev SET page = $1 WHERE id < $2",
                &[&"early", &1_000i64],
            )
            .await
            .unwrap();
        assert_eq!(updated, 666);
        server.kill_and_restart();
        let client = server.connect().await;
        assert_eq!(
            totals(&client).await.unwrap(),
            kept,
            "{point}: after restart"
        );
        let early: i64 = client
            .query_one("SELECT count(*) FROM ev WHERE page = 'early'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(early, 666);
        // No file is left behind once the replaced segments are gone.
        client.batch_execute("CHECKPOINT; COMPACT").await.unwrap();
        let published: i64 = client
            .query_one(
                "SELECT count(*) FROM sys.segments WHERE \"table\" = 'ev'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            files(&server.data_dir().join("deep")) as i64,
            published,
            "{point}"
        );
    }
}

/// ALTER TABLE … ADD COLUMN rewrites every stored row at once: a kill at any step leaves
/// the table as it was, or (after the commit point) as altered, with every row either way.
#[tokio::test(flavor = "multi_thread")]
async fn alter_table_survives_kill_at_every_step() {
    for point in ["alter.merged:2", "alter.uploaded", "alter.published"] {
        let mut server = TestServer::start_with_config(Some(CONFIG));
        let client = server.connect().await;
        client.batch_execute(CREATE).await.unwrap();
        copy(&client, lines(0, 60_000)).await.unwrap();
        client.batch_execute("CHECKPOINT").await.unwrap();
        copy(&client, lines(60_000, 80_000)).await.unwrap();
        let client = killed_during(
            &mut server,
            point,
            "ALTER TABLE ev ADD COLUMN extra INT DEFAULT 7",
        )
        .await;
        assert_eq!(totals(&client).await.unwrap(), expected(80_000), "{point}");
        let altered = client
            .query_one("SELECT sum(extra)::BIGINT FROM ev", &[])
            .await
            .map(|r| r.get::<_, i64>(0));
        match point {
            "alter.published" => assert_eq!(altered.unwrap(), 7 * 80_000, "{point}"),
            _ => assert!(altered.is_err(), "{point}: the column should not exist"),
        }
        client.batch_execute("CHECKPOINT; COMPACT").await.unwrap();
        let published: i64 = client
            .query_one(
                "SELECT count(*) FROM sys.segments WHERE \"table\" = 'ev'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            files(&server.data_dir().join("deep")) as i64,
            published,
            "{point}: files left behind"
        );
    }
}
