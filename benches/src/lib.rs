//! Henge's benchmark data and measurements.
//!
//! [`lineitem`] generates TPC-H `lineitem` with `tpchgen` (no downloads) in the column types
//! Henge's benchmarks use; [`events`] a Druid-style event stream. `benches/segments.rs`
//! measures the segment format on both (criterion), and compares sizes with Parquet.
//! The harness against DuckDB, DataFusion and PostgreSQL is issue 4's.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::compute::cast;
use henge_storage::{ColumnDef, ColumnType, Granularity, TableDef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

fn column(name: &str, ty: ColumnType) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        ty,
        nullable: false,
    }
}

/// The `lineitem` table as the benchmarks define it: `l_shipdate` is the time column
/// (monthly segments), the metrics are double precision.
pub fn lineitem_def() -> TableDef {
    use ColumnType::*;
    TableDef {
        id: 1,
        name: "lineitem".into(),
        columns: vec![
            column("l_orderkey", BigInt),
            column("l_partkey", BigInt),
            column("l_suppkey", BigInt),
            column("l_linenumber", Integer),
            column("l_quantity", Double),
            column("l_extendedprice", Double),
            column("l_discount", Double),
            column("l_tax", Double),
            column("l_returnflag", Text),
            column("l_linestatus", Text),
            column("l_shipdate", Timestamp),
            column("l_commitdate", Date),
            column("l_receiptdate", Date),
            column("l_shipinstruct", Text),
            column("l_shipmode", Text),
            column("l_comment", Text),
        ],
        time_column: Some("l_shipdate".into()),
        segment_granularity: Granularity::Month,
    }
}

/// TPC-H `lineitem` at scale factor `scale`, in the types of [`lineitem_def`].
pub fn lineitem(scale: f64) -> Vec<RecordBatch> {
    let def = lineitem_def();
    let schema = def.arrow_schema();
    let generator = tpchgen::generators::LineItemGenerator::new(scale, 1, 1);
    tpchgen_arrow::LineItemArrow::new(generator)
        .with_batch_size(65_536)
        .map(|batch| {
            let batch = batch.expect("tpchgen produces valid batches");
            let columns: Vec<ArrayRef> = batch
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| cast(c, f.data_type()).expect("lineitem casts to Henge types"))
                .collect();
            RecordBatch::try_new(schema.clone(), columns).expect("same schema")
        })
        .collect()
}

/// A Druid-style event stream: a timestamp, ten string dimensions of varied cardinality
/// and three metrics.
pub fn events_def() -> TableDef {
    use ColumnType::*;
    let mut columns = vec![column("ts", Timestamp)];
    for name in [
        "page", "user", "country", "city", "browser", "os", "device", "referrer", "campaign",
        "language",
    ] {
        columns.push(column(name, Text));
    }
    columns.push(column("added", BigInt));
    columns.push(column("deleted", BigInt));
    columns.push(column("delta", Double));
    TableDef {
        id: 2,
        name: "events".into(),
        columns,
        time_column: Some("ts".into()),
        segment_granularity: Granularity::Hour,
    }
}

/// `rows` events over one hour, deterministic.
pub fn events(rows: usize) -> RecordBatch {
    let def = events_def();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    // Cardinalities of the ten dimensions.
    let cardinality = [50_000u64, 20_000, 60, 400, 12, 8, 5, 300, 40, 30];
    let mut dims: Vec<Vec<String>> = vec![Vec::with_capacity(rows); cardinality.len()];
    let (mut ts, mut added, mut deleted, mut delta) = (vec![], vec![], vec![], vec![]);
    let hour = 1_700_000_000_000_000i64 / 3_600_000_000 * 3_600_000_000;
    for i in 0..rows {
        ts.push(hour + (i as i64 * 3_600_000_000 / rows as i64));
        for (d, &n) in cardinality.iter().enumerate() {
            // Skewed: low ids are far more frequent.
            let r = next() % n;
            let id = r * (next() % n) / n;
            dims[d].push(format!(
                "{}-{id}",
                ["page", "user", "cc", "city", "br", "os", "dev", "ref", "cmp", "lang"][d]
            ));
        }
        let a = (next() % 2000) as i64;
        let del = (next() % 100) as i64;
        added.push(a);
        deleted.push(del);
        delta.push((a - del) as f64 / 10.0);
    }
    let mut columns: Vec<ArrayRef> = vec![Arc::new(TimestampMicrosecondArray::from(ts))];
    for d in dims {
        columns.push(Arc::new(StringArray::from(d)));
    }
    columns.push(Arc::new(Int64Array::from(added)));
    columns.push(Arc::new(Int64Array::from(deleted)));
    columns.push(Arc::new(Float64Array::from(delta)));
    RecordBatch::try_new(def.arrow_schema(), columns).expect("events schema")
}

/// Size in bytes of `batches` written as one Parquet file with zstd (level 3, the default).
pub fn parquet_zstd_size(batches: &[RecordBatch]) -> usize {
    let Some(first) = batches.first() else {
        return 0;
    };
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut out = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut out, first.schema(), Some(properties)).expect("parquet writer");
    for batch in batches {
        writer.write(batch).expect("parquet write");
    }
    writer.close().expect("parquet close");
    out.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_data_fits_its_tables() {
        let rows: usize = lineitem(0.001).iter().map(|b| b.num_rows()).sum();
        assert!(rows > 5_000, "{rows}");
        let events = events(1000);
        assert_eq!(events.schema(), events_def().arrow_schema());
        assert!(parquet_zstd_size(&[events]) > 0);
    }
}
