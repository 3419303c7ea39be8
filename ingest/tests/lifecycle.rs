//! The segment lifecycle through the engine: rows in memory, persisted pieces, published
//! segments; every row exactly once at every step, and across restarts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{AsArray, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow::datatypes::Int64Type;
use henge_ingest::handoff::Due;
use henge_ingest::{Engine, EngineOptions, Table};
use henge_storage::{ColumnDef, ColumnType, Granularity, TableDef};

const HOUR: i64 = 3_600_000_000;

fn options() -> EngineOptions {
    EngineOptions {
        wal_fsync: false,
        ..EngineOptions::default()
    }
}

fn open(dir: &Path, options: &EngineOptions) -> Arc<Engine> {
    Arc::new(Engine::open(dir, options).unwrap())
}

fn def(name: &str) -> TableDef {
    TableDef {
        id: 0,
        name: name.into(),
        columns: vec![
            ColumnDef {
                name: "ts".into(),
                ty: ColumnType::Timestamp,
                nullable: false,
                rollup: None,
                default: None,
            },
            ColumnDef {
                name: "v".into(),
                ty: ColumnType::BigInt,
                nullable: true,
                rollup: None,
                default: None,
            },
        ],
        time_column: Some("ts".into()),
        segment_granularity: Granularity::Hour,
        window_period_secs: 0,
        rollup: false,
        query_granularity: None,
        limits: Default::default(),
    }
}

/// Rows `from..to`, row i at hour i % hours.
fn rows(table: &Table, from: i64, to: i64, hours: i64) -> RecordBatch {
    RecordBatch::try_new(
        table.schema.clone(),
        vec![
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                (from..to).map(|i| (i % hours) * HOUR + i),
            )),
            Arc::new(Int64Array::from_iter_values(from..to)),
        ],
    )
    .unwrap()
}

/// Count and sum of `v` over everything a query would read: segments, pieces and memory.
async fn totals(engine: &Engine, table: &Table) -> (u64, i64) {
    let snapshot = table.buffer.snapshot();
    let mut count = 0u64;
    let mut sum = 0i64;
    let mut add = |batch: &RecordBatch| {
        let v = batch.column(1).as_primitive::<Int64Type>();
        count += v.len() as u64;
        sum += v.iter().flatten().sum::<i64>();
    };
    for segment in &snapshot.segments {
        for batch in engine
            .segment_cache()
            .read(segment, "test", None)
            .await
            .unwrap()
        {
            add(&batch);
        }
    }
    snapshot.batches.iter().for_each(add);
    (count, sum)
}

fn expected(n: i64) -> (u64, i64) {
    (n as u64, n * (n - 1) / 2)
}

fn files(dir: &Path, sub: &str) -> usize {
    std::fs::read_dir(dir.join(sub)).unwrap().count()
}

#[tokio::test]
async fn rows_move_from_memory_to_pieces_to_segments_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &options());
    let table = engine.create_table(def("t")).unwrap();
    engine
        .append(&table, vec![rows(&table, 0, 1000, 3)])
        .await
        .unwrap();
    assert_eq!(totals(&engine, &table).await, expected(1000));

    let report = engine.persist().await.unwrap();
    assert_eq!((report.pieces, report.rows), (3, 1000));
    assert_eq!(table.buffer.rows(), 0, "nothing left in memory");
    assert_eq!(table.buffer.pieces().len(), 3);
    assert_eq!(totals(&engine, &table).await, expected(1000));
    // The log was cut at the persist and the file behind it deleted.
    assert_eq!(files(dir.path(), "wal"), 1);

    engine
        .append(&table, vec![rows(&table, 1000, 1500, 3)])
        .await
        .unwrap();
    engine.persist().await.unwrap();
    assert_eq!(table.buffer.pieces().len(), 6);
    engine
        .append(&table, vec![rows(&table, 1500, 1600, 3)])
        .await
        .unwrap();

    // Restart: the pieces come back from disk, only the last append from the log.
    engine.close();
    drop(engine);
    let engine = open(dir.path(), &options());
    let table = engine.table("t").unwrap();
    assert_eq!(
        table.buffer.rows(),
        100,
        "only unpersisted rows are replayed"
    );
    assert_eq!(table.buffer.pieces().len(), 6);
    assert_eq!(totals(&engine, &table).await, expected(1600));

    // Hand-off: each hour's pieces merge into one segment.
    let report = engine.checkpoint().await.unwrap();
    assert_eq!((report.segments, report.rows), (3, 1600));
    assert!(table.buffer.pieces().is_empty());
    let contents = table.buffer.contents();
    assert_eq!(contents.segments.len(), 3);
    assert!(contents.segments.iter().all(|s| !s.is_piece()));
    assert_eq!(totals(&engine, &table).await, expected(1600));
    // Piece files are gone; three segment files remain locally and in deep storage.
    assert_eq!(files(dir.path(), "segments"), 3);
    assert_eq!(files(dir.path(), "deep"), 3);

    engine.close();
    drop(engine);
    let engine = open(dir.path(), &options());
    let table = engine.table("t").unwrap();
    assert_eq!(table.buffer.rows(), 0);
    assert_eq!(totals(&engine, &table).await, expected(1600));
}

#[tokio::test]
async fn hand_off_waits_for_the_chunk_to_close_and_cuts_large_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let options = EngineOptions {
        segment_rows: 1000,
        ..options()
    };
    let engine = open(dir.path(), &options);
    let mut open_def = def("recent");
    open_def.window_period_secs = 3600;
    let recent = engine.create_table(open_def).unwrap();
    let old = engine.create_table(def("old")).unwrap();
    // Rows of an hour long past: closed (window period 0).
    engine
        .append(&old, vec![rows(&old, 0, 2500, 1)])
        .await
        .unwrap();
    // Rows of now: the chunk is open.
    let now = chrono::Utc::now().timestamp_micros();
    let batch = RecordBatch::try_new(
        recent.schema.clone(),
        vec![
            Arc::new(TimestampMicrosecondArray::from(vec![now, now])),
            Arc::new(Int64Array::from(vec![1, 2])),
        ],
    )
    .unwrap();
    engine.append(&recent, vec![batch]).await.unwrap();
    engine.persist().await.unwrap();
    // 2,500 rows with segments of 1,000: three pieces of at most 1,000.
    assert_eq!(old.buffer.pieces().len(), 3);

    let report = engine.hand_off(Due::Closed).await.unwrap();
    assert_eq!(report.rows, 2500);
    let mut sizes: Vec<u64> = old
        .buffer
        .contents()
        .segments
        .iter()
        .map(|s| s.rows)
        .collect();
    sizes.sort();
    assert_eq!(
        sizes,
        vec![500, 1000, 1000],
        "partitions of the target size"
    );
    let partitions: Vec<u32> = old
        .buffer
        .contents()
        .segments
        .iter()
        .map(|s| s.partition)
        .collect();
    assert_eq!(partitions.len(), 3);
    assert_eq!(
        recent.buffer.pieces().len(),
        1,
        "an open chunk is not handed off"
    );
    assert_eq!(totals(&engine, &old).await, expected(2500));
    assert_eq!(totals(&engine, &recent).await, (2, 3));

    // Full segments are not compacted: it would leave as many (and rewrite them forever).
    let report = engine.compact(Some("old"), 2).await.unwrap();
    assert_eq!(
        report.intervals, 0,
        "three segments are what 2,500 rows need"
    );
    // Late rows add a fourth, small segment: now three would do.
    engine
        .append(&old, vec![rows(&old, 2500, 2600, 1)])
        .await
        .unwrap();
    engine.persist().await.unwrap();
    engine.hand_off(Due::All).await.unwrap();
    assert_eq!(old.buffer.contents().segments.len(), 4);
    let report = engine.compact(Some("old"), 2).await.unwrap();
    assert_eq!(
        (report.intervals, report.replaced, report.written),
        (1, 4, 3)
    );
    assert_eq!(totals(&engine, &old).await, expected(2600));
    assert_eq!(engine.compact(Some("old"), 2).await.unwrap().intervals, 0);
}

#[tokio::test]
async fn staged_statements_spill_and_become_visible_at_commit_only() {
    let dir = tempfile::tempdir().unwrap();
    let options = EngineOptions {
        // A small budget makes the stage limit 1 MiB.
        ingest_memory: 4 << 20,
        ..options()
    };
    let engine = open(dir.path(), &options);
    let table = engine.create_table(def("t")).unwrap();

    let mut staged = engine.stage(table.clone());
    for i in 0..40 {
        staged
            .push(rows(&table, i * 10_000, (i + 1) * 10_000, 5))
            .await
            .unwrap();
    }
    assert_eq!(
        totals(&engine, &table).await,
        (0, 0),
        "nothing visible before commit"
    );
    assert!(
        files(dir.path(), "segments") > 0,
        "rows were spilled to disk"
    );
    assert_eq!(staged.commit().await.unwrap(), 400_000);
    assert_eq!(totals(&engine, &table).await, expected(400_000));
    assert_eq!(
        table.buffer.rows(),
        0,
        "a large statement is not held in memory"
    );

    // A statement given up leaves nothing, on disk or visible.
    let before = files(dir.path(), "segments");
    let mut staged = engine.stage(table.clone());
    for i in 40..80 {
        staged
            .push(rows(&table, i * 10_000, (i + 1) * 10_000, 5))
            .await
            .unwrap();
    }
    drop(staged);
    assert_eq!(files(dir.path(), "segments"), before);
    assert_eq!(totals(&engine, &table).await, expected(400_000));

    // A small statement goes through the log.
    let mut staged = engine.stage(table.clone());
    staged
        .push(rows(&table, 400_000, 400_010, 5))
        .await
        .unwrap();
    staged.commit().await.unwrap();
    assert_eq!(table.buffer.rows(), 10);

    engine.close();
    drop(engine);
    let engine = open(dir.path(), &options);
    let table = engine.table("t").unwrap();
    assert_eq!(totals(&engine, &table).await, expected(400_010));
}

#[tokio::test]
async fn files_no_metadata_names_are_deleted_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &options());
    let table = engine.create_table(def("t")).unwrap();
    engine
        .append(&table, vec![rows(&table, 0, 100, 1)])
        .await
        .unwrap();
    engine.checkpoint().await.unwrap();
    let id = table.def.id;
    engine.close();
    drop(engine);
    // What a crash mid-persist, mid-merge or mid-upload leaves behind.
    let segments = dir.path().join("segments");
    std::fs::write(segments.join(format!("{id}_0_1_v0_p99.hseg")), b"piece").unwrap();
    std::fs::write(segments.join(format!("{id}_0_1_v7_p0.hseg")), b"merged").unwrap();
    std::fs::write(
        dir.path().join("deep").join(format!("{id}_0_1_v7_p0.hseg")),
        b"merged",
    )
    .unwrap();
    std::fs::write(segments.join("x.hseg.1.2.tmp"), b"half").unwrap();
    let engine = open(dir.path(), &options());
    engine.remove_orphans().await;
    assert_eq!(files(dir.path(), "segments"), 1);
    assert_eq!(files(dir.path(), "deep"), 1);
    let table = engine.table("t").unwrap();
    assert_eq!(totals(&engine, &table).await, expected(100));
}

#[tokio::test]
async fn writers_wait_at_the_budget_and_persists_free_them() {
    let dir = tempfile::tempdir().unwrap();
    let options = EngineOptions {
        ingest_memory: 64 << 10,
        ingest_wait: Duration::from_millis(500),
        ..options()
    };
    let engine = open(dir.path(), &options);
    let table = engine.create_table(def("t")).unwrap();
    // Fill the budget.
    engine
        .append(&table, vec![rows(&table, 0, 5000, 1)])
        .await
        .unwrap();
    assert!(engine.memory_used() >= engine.memory_budget());
    let error = engine
        .append(&table, vec![rows(&table, 5000, 5100, 1)])
        .await
        .unwrap_err();
    assert!(
        matches!(error, henge_ingest::Error::MemoryExhausted { .. }),
        "{error}"
    );
    assert_eq!(
        totals(&engine, &table).await,
        expected(5000),
        "nothing applied"
    );

    // With the persister running the same write waits, then lands.
    let persister = tokio::spawn(engine.clone().run_persister(henge_ingest::PersistPolicy {
        rows: 0,
        bytes: 0,
        period: Duration::ZERO,
    }));
    engine
        .append(&table, vec![rows(&table, 5000, 5100, 1)])
        .await
        .unwrap();
    persister.abort();
    assert_eq!(totals(&engine, &table).await, expected(5100));
}

#[tokio::test]
async fn memory_reserved_by_running_statements_does_not_trigger_persists() {
    let dir = tempfile::tempdir().unwrap();
    let options = EngineOptions {
        ingest_memory: 8 << 20,
        ..options()
    };
    let engine = open(dir.path(), &options);
    // A window period that keeps the chunk open: a closed one would be persisted anyway.
    let mut open_def = def("t");
    open_def.window_period_secs = 3600;
    let table = engine.create_table(open_def).unwrap();
    // Large statements in flight hold most of the budget in their stages …
    let mut statements = Vec::new();
    for s in 0..6 {
        let mut staged = engine.stage(table.clone());
        for i in 0..5 {
            let from = (s * 5 + i) * 10_000;
            staged
                .push(rows(&table, from, from + 10_000, 1))
                .await
                .unwrap();
        }
        statements.push(staged);
    }
    assert!(engine.memory_used() * 2 >= engine.memory_budget());
    // … while a few rows sit in the buffer: persisting them would free nothing that
    // matters, so the persister leaves them.
    engine
        .append(&table, vec![rows(&table, 1_000_000, 1_000_010, 1)])
        .await
        .unwrap();
    let persister = tokio::spawn(engine.clone().run_persister(henge_ingest::PersistPolicy {
        rows: 0,
        bytes: 0,
        period: Duration::ZERO,
    }));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    persister.abort();
    assert!(
        table.buffer.pieces().is_empty(),
        "{:?}",
        table.buffer.pieces()
    );
    assert_eq!(table.buffer.rows(), 10);
    for staged in statements {
        staged.commit().await.unwrap();
    }
    assert_eq!(totals(&engine, &table).await.0, 300_010);
}

#[tokio::test]
async fn a_closed_chunk_in_memory_is_persisted_so_that_it_hands_off() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), &options());
    let mut open_def = def("open");
    open_def.window_period_secs = 3600;
    let open_table = engine.create_table(open_def).unwrap();
    let policy = henge_ingest::PersistPolicy {
        rows: 0,
        bytes: 0,
        period: Duration::ZERO,
    };
    // Rows of a chunk long past, written now: not closed until quiet for its window.
    engine
        .append(&open_table, vec![rows(&open_table, 0, 100, 1)])
        .await
        .unwrap();
    assert_eq!(engine.persist_reason(&policy), None);
    // With a window period of 0 the chunk is closed at once.
    let closed = engine.create_table(def("closed")).unwrap();
    engine
        .append(&closed, vec![rows(&closed, 0, 100, 1)])
        .await
        .unwrap();
    assert_eq!(engine.persist_reason(&policy), Some("a chunk closed"));
    let persister = tokio::spawn(engine.clone().run_persister(policy));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while closed.buffer.rows() > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    persister.abort();
    assert_eq!(closed.buffer.rows(), 0);
    assert_eq!(closed.buffer.pieces().len(), 1);
    engine.hand_off(Due::Closed).await.unwrap();
    assert_eq!(closed.buffer.contents().segments.len(), 1);
    assert_eq!(totals(&engine, &closed).await, expected(100));
}
