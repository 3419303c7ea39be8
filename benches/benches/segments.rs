//! The segment format measured: build rate, decode rate per column encoding, full scan
//! rate, and size against Parquet with zstd, on TPC-H lineitem and a Druid-style event
//! stream. Single-threaded, so every rate is per core.
//!
//! `cargo bench -p henge-bench --bench segments` (scale factor from `HENGE_BENCH_SF`,
//! default 0.1). Figures are recorded in `benches/RESULTS.md`.

use std::hint::black_box;

use arrow::array::RecordBatch;
use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput};
use henge_bench::{events, events_def, lineitem, lineitem_def, parquet_zstd_size};
use henge_storage::segment::{encode_segment, SegmentReader};
use henge_storage::TableDef;

fn segment(def: &TableDef, batches: &[RecordBatch]) -> SegmentReader {
    let (bytes, _) = encode_segment(def, batches).expect("encode");
    SegmentReader::from_bytes(Bytes::from(bytes), "bench").expect("read back")
}

/// Sizes of the data as Arrow in memory, as Henge segments (one per time chunk, as a
/// CHECKPOINT writes them) and as one Parquet file with zstd.
fn report_sizes(name: &str, def: &TableDef, batches: &[RecordBatch]) {
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let arrow: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let time = def.time_column_index().expect("a time column");
    let mut chunks: std::collections::BTreeMap<i64, Vec<RecordBatch>> = Default::default();
    for batch in batches {
        let times = batch
            .column(time)
            .as_any()
            .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
            .expect("timestamps");
        let mut starts: Vec<i64> = times
            .values()
            .iter()
            .map(|&t| def.segment_granularity.chunk_start(t))
            .collect();
        starts.dedup();
        for start in starts
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>()
        {
            let end = def.segment_granularity.chunk_end(start);
            let mask: arrow::array::BooleanArray = times
                .values()
                .iter()
                .map(|&t| Some(t >= start && t < end))
                .collect();
            let part = arrow::compute::filter_record_batch(batch, &mask).expect("filter");
            chunks.entry(start).or_default().push(part);
        }
    }
    let mut henge = 0;
    // Bytes per column: data blocks, dictionary, bitmap index, null bitmap.
    let mut parts_by_column = vec![[0u64; 4]; def.columns.len()];
    for parts in chunks.values() {
        let (bytes, _) = encode_segment(def, parts).expect("encode");
        henge += bytes.len();
        let reader = SegmentReader::from_bytes(Bytes::from(bytes), "size").expect("read back");
        for (i, column) in reader.footer().columns.iter().enumerate() {
            let sizes = &mut parts_by_column[i];
            sizes[0] += column.blocks.iter().map(|b| b.data.len).sum::<u64>();
            if let Some(d) = &column.dictionary {
                sizes[1] += d.offsets.len + d.values.len;
                sizes[2] += d.bitmaps.map_or(0, |b| b.len);
            }
            sizes[3] += column.nulls.map_or(0, |b| b.len);
        }
    }
    for (column, [data, dictionary, bitmaps, nulls]) in def.columns.iter().zip(&parts_by_column) {
        println!(
            "  {name}.{}: data {data} B, dictionary {dictionary} B, bitmaps {bitmaps} B, nulls {nulls} B",
            column.name
        );
    }
    let parquet = parquet_zstd_size(batches);
    println!(
        "size {name}: {rows} rows, {} segments; arrow {arrow} B; henge {henge} B ({:.1} B/row); parquet+zstd {parquet} B ({:.1} B/row); henge/parquet {:.3}",
        chunks.len(),
        henge as f64 / rows as f64,
        parquet as f64 / rows as f64,
        henge as f64 / parquet as f64
    );
}

fn bench_table(
    c: &mut Criterion,
    name: &str,
    def: &TableDef,
    batches: &[RecordBatch],
    columns: &[&str],
) {
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_function("build", |b| {
        b.iter(|| black_box(encode_segment(def, batches).expect("encode")))
    });
    let reader = segment(def, batches);
    group.bench_function("scan_all_columns", |b| {
        b.iter(|| black_box(reader.read(None).expect("read")))
    });
    for column in columns {
        let index = def
            .columns
            .iter()
            .position(|c| c.name == *column)
            .expect("column");
        group.bench_with_input(BenchmarkId::new("decode", column), &index, |b, &index| {
            b.iter(|| black_box(reader.read(Some(&[index])).expect("read")))
        });
    }
    group.finish();
}

fn main() {
    let scale: f64 = std::env::var("HENGE_BENCH_SF")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.1);
    let lineitem_batches = lineitem(scale);
    let events_batches = vec![events(1_000_000)];
    report_sizes(
        &format!("lineitem_sf{scale}"),
        &lineitem_def(),
        &lineitem_batches,
    );
    report_sizes("events", &events_def(), &events_batches);

    let mut c = Criterion::default().configure_from_args();
    bench_table(
        &mut c,
        &format!("lineitem_sf{scale}"),
        &lineitem_def(),
        &lineitem_batches,
        &[
            "l_orderkey",
            "l_extendedprice",
            "l_shipdate",
            "l_shipmode",
            "l_comment",
        ],
    );
    bench_table(
        &mut c,
        "events_1m",
        &events_def(),
        &events_batches,
        &["ts", "country", "user_name", "delta"],
    );
    c.final_summary();
}
