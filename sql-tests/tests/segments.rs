//! Segments end to end: CHECKPOINT publishes them, answers never change across CHECKPOINT,
//! restart, a deleted or damaged local file, and a query never sees a row missing or twice
//! while a CHECKPOINT switches rows from memory to segments.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::SinkExt;
use henge_sql_tests::server::TestServer;
use henge_sql_tests::values::text_rows as rows;
use henge_storage::segment::SegmentReader;
use tokio_postgres::Client;

/// The answers that must never change, whatever happens to the storage underneath.
async fn answers(client: &Client) -> Vec<Vec<Option<String>>> {
    rows(
        client,
        "SELECT count(*), count(DISTINCT page), sum(n), sum(price), min(ts), max(ts) FROM ev; \
         SELECT page, count(*), sum(n), min(price), max(ts) FROM ev GROUP BY page ORDER BY page; \
         SELECT * FROM ev WHERE n % 4999 = 0 ORDER BY n",
    )
    .await
    .expect("query ev")
}

/// The local segment files of the table with id `table_id`.
fn segment_files(server: &TestServer, table_id: u64) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(server.data_dir().join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with(&format!("{table_id}_")) && name.ends_with(".hseg")
        })
        .collect();
    files.sort();
    files
}

/// Flips one bit in place (no truncation: the server may have the file mapped).
fn flip_bit(path: &Path, offset: u64) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).unwrap();
    byte[0] ^= 0x04;
    file.write_all_at(&byte, offset).unwrap();
    file.sync_all().unwrap();
}

fn deep_copy(server: &TestServer, local: &Path) -> PathBuf {
    server
        .data_dir()
        .join("deep")
        .join(local.file_name().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoint_publishes_segments_that_survive_restart_deletion_and_damage() {
    let mut server = TestServer::start();
    let client = server.connect().await;
    // `ev` is the first table of a fresh data directory: its id, in file names, is 1.
    client
        .batch_execute(
            "CREATE TABLE ev (ts TIMESTAMP NOT NULL, page TEXT, n BIGINT, price DOUBLE PRECISION) \
               WITH (time_column = 'ts', segment_granularity = 'hour'); \
             CREATE TABLE other (v INT); INSERT INTO other VALUES (7)",
        )
        .await
        .unwrap();

    // 30,000 rows spread over three hours, loaded with COPY.
    let data: String = (0..30_000u64)
        .map(|i| {
            let micros = i * 360_000; // 0.36 s apart: 10,000 rows per hour
            format!(
                "2024-05-01 {:02}:{:02}:{:02}.{:06}\tp{}\t{}\t{}\n",
                micros / 3_600_000_000,
                micros / 60_000_000 % 60,
                micros / 1_000_000 % 60,
                micros % 1_000_000,
                i % 23,
                i,
                i as f64 / 100.0
            )
        })
        .collect();
    let sink = client.copy_in("COPY ev FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(Bytes::from(data)).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 30_000);

    let before = answers(&client).await;
    assert_eq!(before[0][0].as_deref(), Some("30000"));
    client.batch_execute("CHECKPOINT").await.unwrap();

    let published = rows(
        &client,
        "SELECT \"rows\", state FROM sys.segments WHERE \"table\" = 'ev' ORDER BY \"start\"",
    )
    .await
    .unwrap();
    assert!(published.len() >= 3, "{published:?}");
    assert!(
        published
            .iter()
            .all(|r| r[1].as_deref() == Some("published")),
        "{published:?}"
    );
    let total: u64 = published
        .iter()
        .map(|r| r[0].as_deref().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 30_000);
    assert_eq!(
        answers(&client).await,
        before,
        "answers changed across CHECKPOINT"
    );
    // The write-ahead log was trimmed: only the file started by the rotation is left.
    let wal_files = std::fs::read_dir(server.data_dir().join("wal"))
        .unwrap()
        .count();
    assert_eq!(wal_files, 1);

    server.kill_and_restart();
    let client = server.connect().await;
    assert_eq!(
        answers(&client).await,
        before,
        "answers changed across a restart"
    );

    let files = segment_files(&server, 1);
    assert_eq!(files.len(), published.len());

    // A deleted local file comes back from deep storage.
    std::fs::remove_file(&files[0]).unwrap();
    assert_eq!(answers(&client).await, before);
    assert!(
        files[0].exists(),
        "the deleted segment file was not restored"
    );

    // A bit flipped in the local copy (the time column's first block starts right after
    // the 16-byte header) is caught by its checksum and healed from deep storage.
    flip_bit(&files[1], 20);
    assert_eq!(answers(&client).await, before);
    assert_eq!(
        std::fs::read(&files[1]).unwrap(),
        std::fs::read(deep_copy(&server, &files[1])).unwrap()
    );

    // A truncated file with a good deep copy heals too.
    let len = std::fs::metadata(&files[0]).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    assert_eq!(
        rows(
            &client,
            "SELECT count(*) FROM ev WHERE ts < '2024-05-01 01:00:00'"
        )
        .await
        .unwrap()[0][0]
            .as_deref(),
        Some("10000")
    );

    // With both copies damaged the query fails with XX001 naming the segment, and other
    // tables keep answering.
    flip_bit(&files[2], 20);
    flip_bit(&deep_copy(&server, &files[2]), 20);
    let error = client
        .simple_query("SELECT count(*), min(ts) FROM ev")
        .await
        .unwrap_err();
    let db = error.as_db_error().expect("a database error");
    assert_eq!(db.code().code(), "XX001", "{db:?}");
    assert!(
        db.message().contains("segment ev_2024-05-01T02:00:00Z"),
        "{}",
        db.message()
    );
    assert_eq!(
        rows(&client, "SELECT v FROM other").await.unwrap(),
        vec![vec![Some("7".to_owned())]]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_during_checkpoints_see_every_row_exactly_once() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE t (ts TIMESTAMP NOT NULL, v BIGINT) WITH (time_column = 'ts', segment_granularity = 'minute')")
        .await
        .unwrap();
    const BATCHES: i64 = 80;
    const PER_BATCH: i64 = 50;
    let acknowledged = Arc::new(AtomicI64::new(0));
    let done = Arc::new(AtomicBool::new(false));

    let writer = {
        let client = server.connect().await;
        let acknowledged = acknowledged.clone();
        tokio::spawn(async move {
            for batch in 0..BATCHES {
                let values: Vec<String> = (0..PER_BATCH)
                    .map(|i| {
                        format!(
                            "(TIMESTAMP '2024-01-01 00:00:00' + INTERVAL '{} seconds', 1)",
                            (batch * PER_BATCH + i) * 7
                        )
                    })
                    .collect();
                client
                    .batch_execute(&format!("INSERT INTO t VALUES {}", values.join(", ")))
                    .await
                    .unwrap();
                acknowledged.fetch_add(PER_BATCH, Ordering::SeqCst);
            }
        })
    };
    let checkpointer = {
        let client = server.connect().await;
        let done = done.clone();
        tokio::spawn(async move {
            let mut checkpoints = 0;
            while !done.load(Ordering::SeqCst) {
                client.batch_execute("CHECKPOINT").await.unwrap();
                checkpoints += 1;
            }
            checkpoints
        })
    };
    let mut reads = 0;
    while !writer.is_finished() {
        let low = acknowledged.load(Ordering::SeqCst);
        let row = client
            .query_one("SELECT count(*), sum(v)::BIGINT FROM t", &[])
            .await
            .unwrap();
        let high = acknowledged.load(Ordering::SeqCst);
        let (count, sum): (i64, i64) = (row.get(0), row.get::<_, Option<i64>>(1).unwrap_or(0));
        // Rows become visible just before their INSERT is acknowledged: one batch may be ahead.
        assert!(
            count >= low && count <= high + PER_BATCH,
            "saw {count} rows with {low}..{high} acknowledged"
        );
        assert_eq!(count, sum);
        reads += 1;
    }
    writer.await.unwrap();
    done.store(true, Ordering::SeqCst);
    let checkpoints = checkpointer.await.unwrap();
    assert!(
        checkpoints >= 2 && reads >= 2,
        "{checkpoints} checkpoints, {reads} reads"
    );
    client.batch_execute("CHECKPOINT").await.unwrap();
    let row = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), BATCHES * PER_BATCH);
    let row = client
        .query_one(
            "SELECT count(*) FROM sys.segments WHERE \"table\" = 't' AND state <> 'published'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);
}

/// Published and in-memory rows of `table`, from sys.segments.
async fn rows_by_state(client: &Client, table: &str) -> (i64, i64) {
    let row = client
        .query_one(
            "SELECT coalesce(sum(\"rows\") FILTER (WHERE state = 'published'), 0)::BIGINT, \
                    coalesce(sum(\"rows\") FILTER (WHERE state <> 'published'), 0)::BIGINT \
             FROM sys.segments WHERE \"table\" = $1",
            &[&table],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn wait_until_published(client: &Client, table: &str, rows: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let state = rows_by_state(client, table).await;
        if state == (rows, 0) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {state:?} (published, in memory)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_are_persisted_and_handed_off_by_themselves_on_row_count_and_age() {
    let server =
        TestServer::start_with_config(Some("persist_rows = 100\npersist_period_secs = 2\n"));
    let client = server.connect().await;
    // A window period of zero: a chunk in the past is handed off as soon as it is persisted.
    client
        .batch_execute(
            "CREATE TABLE a (ts TIMESTAMP NOT NULL, v INT) \
             WITH (time_column = 'ts', window_period = '0 seconds')",
        )
        .await
        .unwrap();
    let values: Vec<String> = (0..150).map(|i| format!("('2024-01-01', {i})")).collect();
    client
        .batch_execute(&format!("INSERT INTO a VALUES {}", values.join(", ")))
        .await
        .unwrap();
    // Over the row limit: published within a tick, long before the age limit.
    wait_until_published(&client, "a", 150).await;

    // A few rows stay in memory until they are old enough.
    client
        .batch_execute("INSERT INTO a VALUES ('2024-01-02', 1000)")
        .await
        .unwrap();
    assert_eq!(rows_by_state(&client, "a").await, (150, 1));
    wait_until_published(&client, "a", 151).await;
    let row = client
        .query_one("SELECT count(*), sum(v)::BIGINT FROM a", &[])
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        (151, 150 * 149 / 2 + 1000)
    );
}

/// Damage found in the middle of a segment, after a pushed-down aggregation has already
/// added its first blocks: the segment is healed and the aggregation goes on from the
/// damaged block, counting no row twice.
#[tokio::test]
async fn aggregations_resume_after_healing_a_segment_midway() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE big (ts TIMESTAMP NOT NULL, page TEXT, n BIGINT) \
               WITH (time_column = 'ts', segment_granularity = 'day')",
        )
        .await
        .unwrap();
    // 200,000 rows in one day: one segment of several blocks.
    let data: String = (0..200_000u64)
        .map(|i| {
            let seconds = i * 86_400 / 200_000;
            format!(
                "2024-05-01 {:02}:{:02}:{:02}\tp{}\t{}\n",
                seconds / 3600,
                seconds / 60 % 60,
                seconds % 60,
                i % 7,
                i
            )
        })
        .collect();
    let sink = client.copy_in("COPY big FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(Bytes::from(data)).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 200_000);
    client.batch_execute("CHECKPOINT").await.unwrap();

    let queries = "SELECT count(*), sum(n), count(DISTINCT page) FROM big; \
                   SELECT page, count(*), sum(n) FROM big GROUP BY page ORDER BY page; \
                   SELECT date_trunc('hour', ts) AS h, sum(n) FROM big GROUP BY h ORDER BY h";
    let before = rows(&client, queries).await.unwrap();
    assert_eq!(before[0][0].as_deref(), Some("200000"));
    assert_eq!(before[0][1].as_deref(), Some("19999900000"));

    let files = segment_files(&server, 1);
    assert_eq!(files.len(), 1, "{files:?}");
    let reader = SegmentReader::open(&files[0], "big").unwrap();
    let column = |name: &str| {
        reader
            .footer()
            .columns
            .iter()
            .position(|c| c.name == name)
            .unwrap()
    };
    let (n, page) = (column("n"), column("page"));
    assert!(reader.blocks() >= 3);
    let last = reader.blocks() - 1;
    for column in [n, page] {
        // Damage in the last block of the column, found after the first blocks were added.
        flip_bit(
            &files[0],
            reader.footer().columns[column].blocks[last].data.offset + 3,
        );
        assert_eq!(rows(&client, queries).await.unwrap(), before);
        assert_eq!(
            std::fs::read(&files[0]).unwrap(),
            std::fs::read(deep_copy(&server, &files[0])).unwrap()
        );
    }
}
