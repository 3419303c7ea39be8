//! Round trips through the writer and reader, and damage the reader must survive.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array,
    Float32Array, Float64Array, Int16Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use arrow::compute::concat_batches;
use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::error::Error;
use crate::granularity::Granularity;
use crate::schema::{ColumnDef, ColumnType, TableDef};

fn column(name: &str, ty: ColumnType) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        ty,
        nullable: name != "ts",
        rollup: None,
        default: None,
    }
}

/// A table with a column of every type.
fn every_type() -> TableDef {
    TableDef {
        id: 7,
        name: "t".into(),
        columns: vec![
            column("ts", ColumnType::Timestamp),
            column("b", ColumnType::Boolean),
            column("i2", ColumnType::SmallInt),
            column("i4", ColumnType::Integer),
            column("i8", ColumnType::BigInt),
            column("f4", ColumnType::Real),
            column("f8", ColumnType::Double),
            column(
                "n",
                ColumnType::Numeric {
                    precision: 38,
                    scale: 4,
                },
            ),
            column("s", ColumnType::Text),
            column("v", ColumnType::Varchar { max_len: Some(10) }),
            column("d", ColumnType::Date),
            column("tz", ColumnType::TimestampTz),
            column("x", ColumnType::Bytea),
        ],
        time_column: Some("ts".into()),
        segment_granularity: Granularity::Hour,
        window_period_secs: crate::schema::DEFAULT_WINDOW_PERIOD_SECS,
        rollup: false,
        query_granularity: None,
        limits: Default::default(),
    }
}

/// One generated row: every value may be NULL except the time.
#[derive(Debug, Clone)]
struct Row {
    ts: i64,
    b: Option<bool>,
    i2: Option<i16>,
    i4: Option<i32>,
    i8: Option<i64>,
    f4: Option<f32>,
    f8: Option<f64>,
    n: Option<i128>,
    s: Option<String>,
    v: Option<String>,
    d: Option<i32>,
    tz: Option<i64>,
    x: Option<Vec<u8>>,
}

fn row() -> impl Strategy<Value = Row> {
    let text = prop_oneof![
        Just(String::new()),
        "[a-c]{1,2}",
        "\\PC{0,12}", // any printable unicode
    ];
    let decimal = prop_oneof![
        any::<i64>().prop_map(i128::from),
        any::<i128>().prop_map(|v| v % 10i128.pow(38))
    ];
    (
        (
            0i64..3_600_000_000,
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<i16>()),
            proptest::option::of(any::<i32>()),
            proptest::option::of(any::<i64>()),
            proptest::option::of(any::<f32>()),
            proptest::option::of(prop_oneof![
                any::<f64>(),
                (-100_000i64..100_000).prop_map(|c| c as f64 / 100.0)
            ]),
        ),
        (
            proptest::option::of(decimal),
            proptest::option::of(text.clone()),
            proptest::option::of(text),
            proptest::option::of(any::<i32>()),
            proptest::option::of(any::<i64>()),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        ),
    )
        .prop_map(|((ts, b, i2, i4, i8, f4, f8), (n, s, v, d, tz, x))| Row {
            ts,
            b,
            i2,
            i4,
            i8,
            f4,
            f8,
            n,
            s,
            v,
            d,
            tz,
            x,
        })
}

fn batch(def: &TableDef, rows: &[Row]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from(
            rows.iter().map(|r| r.ts).collect::<Vec<_>>(),
        )),
        Arc::new(rows.iter().map(|r| r.b).collect::<BooleanArray>()),
        Arc::new(rows.iter().map(|r| r.i2).collect::<Int16Array>()),
        Arc::new(rows.iter().map(|r| r.i4).collect::<Int32Array>()),
        Arc::new(rows.iter().map(|r| r.i8).collect::<Int64Array>()),
        Arc::new(rows.iter().map(|r| r.f4).collect::<Float32Array>()),
        Arc::new(rows.iter().map(|r| r.f8).collect::<Float64Array>()),
        Arc::new(
            rows.iter()
                .map(|r| r.n)
                .collect::<Decimal128Array>()
                .with_precision_and_scale(38, 4)
                .unwrap(),
        ),
        Arc::new(rows.iter().map(|r| r.s.as_deref()).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| r.v.as_deref()).collect::<StringArray>()),
        Arc::new(rows.iter().map(|r| r.d).collect::<Date32Array>()),
        Arc::new(
            rows.iter()
                .map(|r| r.tz)
                .collect::<TimestampMicrosecondArray>()
                .with_timezone(crate::schema::UTC),
        ),
        Arc::new(rows.iter().map(|r| r.x.as_deref()).collect::<BinaryArray>()),
    ];
    RecordBatch::try_new(def.arrow_schema(), columns).unwrap()
}

/// The rows of `batches` as sortable text, so order does not matter.
fn canonical(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = Vec::new();
    for batch in batches {
        for i in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| {
                    if c.is_null(i) {
                        "NULL".to_owned()
                    } else {
                        // Float bits, so -0.0 and NaN payloads are compared exactly.
                        if let Some(f) = c.as_any().downcast_ref::<Float64Array>() {
                            return format!("f8:{:x}", f.value(i).to_bits());
                        }
                        if let Some(f) = c.as_any().downcast_ref::<Float32Array>() {
                            return format!("f4:{:x}", f.value(i).to_bits());
                        }
                        arrow::util::display::array_value_to_string(c, i).unwrap()
                    }
                })
                .collect();
            rows.push(cells.join("|"));
        }
    }
    rows.sort();
    rows
}

fn round_trip(def: &TableDef, input: &[RecordBatch]) -> SegmentReader {
    let (bytes, rows) = encode_segment(def, input).unwrap();
    let reader = SegmentReader::from_bytes(Bytes::from(bytes), "test").unwrap();
    assert_eq!(rows, reader.rows());
    let output = reader.read(None).unwrap();
    assert_eq!(canonical(&output), canonical(input));
    for batch in &output {
        assert_eq!(batch.schema().fields(), def.arrow_schema().fields());
    }
    reader
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_type_round_trips(rows in proptest::collection::vec(row(), 0..300)) {
        let def = every_type();
        round_trip(&def, &[batch(&def, &rows)]);
    }

    #[test]
    fn some_rows_of_a_block_read_as_the_whole_block_taken(
        rows in proptest::collection::vec(row(), 1..300),
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let def = every_type();
        let (bytes, _) = encode_segment(&def, &[batch(&def, &rows)]).unwrap();
        let reader = SegmentReader::from_bytes(Bytes::from(bytes), "picked").unwrap();
        let mut at: Vec<u32> = picks.iter().map(|p| p.index(rows.len()) as u32).collect();
        at.sort_unstable();
        at.dedup();
        let all: Vec<usize> = (0..def.columns.len()).collect();
        let whole = reader.read_block(0, &all).unwrap();
        let taken = arrow::compute::take_record_batch(
            &whole,
            &arrow::array::UInt32Array::from(at.clone()),
        )
        .unwrap();
        let picked = reader.read_block_rows(0, &all, Some(&at)).unwrap();
        prop_assert_eq!(&picked, &taken);
        // A string column's ids likewise.
        let ids = reader.read_ids_rows(8, 0, Some(&at)).unwrap();
        let whole_ids = reader.read_ids(8, 0).unwrap();
        let taken_ids = arrow::compute::take(&whole_ids, &arrow::array::UInt32Array::from(at), None).unwrap();
        prop_assert_eq!(&ids as &dyn Array, taken_ids.as_ref());
    }

    #[test]
    fn damage_is_detected_and_never_panics(
        rows in proptest::collection::vec(row(), 1..60),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let def = every_type();
        let input = batch(&def, &rows);
        let (mut bytes, _) = encode_segment(&def, std::slice::from_ref(&input)).unwrap();
        for (at, bit) in flips {
            let at = at.index(bytes.len());
            bytes[at] ^= 1 << bit;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        // Either an error, or (a flip in alignment padding) exactly the original rows.
        if let Ok(reader) = SegmentReader::from_bytes(Bytes::from(bytes), "fuzz") {
            if let Ok(output) = reader.read(None) {
                prop_assert_eq!(canonical(&output), canonical(&[input]));
            }
            for column in 0..def.columns.len() {
                let _ = reader.null_rows(column);
            }
            let _ = reader.rows_equal(8, "a");
            let _ = reader.verify();
        }
    }

    #[test]
    fn random_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        prop_assert!(SegmentReader::from_bytes(Bytes::from(bytes), "noise").is_err());
    }
}

#[test]
fn empty_and_one_row_segments() {
    let def = every_type();
    let empty = round_trip(&def, &[]);
    assert_eq!(empty.rows(), 0);
    assert_eq!(empty.blocks(), 0);
    let one = Row {
        ts: 5,
        b: Some(true),
        i2: Some(-2),
        i4: None,
        i8: Some(i64::MIN),
        f4: Some(1.5),
        f8: Some(-0.0),
        n: Some(-12_345),
        s: Some("Zürich 東京 🚀".into()),
        v: None,
        d: Some(-719_162),
        tz: Some(i64::MAX),
        x: Some(vec![0, 255]),
    };
    let reader = round_trip(&def, &[batch(&def, &[one])]);
    assert_eq!(
        reader.footer().columns[8].min,
        Some(Stat::Text("Zürich 東京 🚀".into()))
    );
    // A column without any value has an empty dictionary: its ids are all NULL.
    assert_eq!(reader.read_ids(8, 0).unwrap().value(0), 0);
    assert!(reader.read_ids(9, 0).unwrap().is_null(0));
}

#[test]
fn rows_are_sorted_by_time_then_strings_and_indexed() {
    let def = every_type();
    let rows: Vec<Row> = (0..200_000)
        .map(|i| Row {
            ts: (i % 3) * 1_000,
            b: None,
            i2: None,
            i4: Some(i as i32),
            i8: None,
            f4: None,
            f8: Some((i % 1000) as f64 / 100.0),
            n: None,
            s: Some(["x", "y", "z"][(i * 7 % 3) as usize].into()),
            v: (i % 10 != 0).then(|| "v".into()),
            d: None,
            tz: None,
            x: None,
        })
        .collect();
    let reader = round_trip(&def, &[batch(&def, &rows)]);
    assert_eq!(reader.blocks(), 200_000usize.div_ceil(BLOCK_ROWS));
    assert_eq!(reader.footer().sort_columns, vec!["ts", "s", "v"]);
    let parts = reader.read(Some(&[0, 8])).unwrap();
    let all = concat_batches(&parts[0].schema(), &parts).unwrap();
    let ts = all
        .column(0)
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    assert!(ts.values().windows(2).all(|w| w[0] <= w[1]));
    let s = all
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    for i in 1..all.num_rows() {
        if ts.value(i) == ts.value(i - 1) {
            assert!(s.value(i - 1) <= s.value(i));
        }
    }
    // The bitmap of a value names exactly its rows.
    let ys = reader.rows_equal(8, "y").unwrap();
    assert_eq!(
        ys.len(),
        (0..all.num_rows()).filter(|&i| s.value(i) == "y").count() as u64
    );
    assert!(ys.iter().all(|r| s.value(r as usize) == "y"));
    assert!(reader.rows_equal(8, "nope").unwrap().is_empty());
    assert_eq!(reader.null_rows(9).unwrap().len(), 20_000);
    // Ids name the same strings, block by block, NULL where the column is.
    let dictionary = reader.dictionary(9).unwrap();
    let strings = reader.read(Some(&[9])).unwrap();
    for (block, strings) in strings.iter().enumerate() {
        let ids = reader.read_ids(9, block).unwrap();
        let strings = strings.column(0).as_string::<i32>();
        assert_eq!(ids.len(), strings.len());
        for row in 0..ids.len() {
            assert_eq!(ids.is_null(row), strings.is_null(row));
            if ids.is_valid(row) {
                assert_eq!(
                    dictionary.value(ids.value(row) as usize),
                    strings.value(row)
                );
            }
        }
    }
    // Sorted times and scaled decimals pack narrow.
    let time_block = &reader.footer().columns[0].blocks[0];
    assert!(matches!(
        time_block.encoding,
        encoding::Encoding::Delta { width, .. } | encoding::Encoding::For { width, .. } if width <= 11
    ));
    assert!(matches!(
        reader.footer().columns[6].blocks[0].encoding,
        encoding::Encoding::Scaled { exponent: 2, .. }
    ));
    reader.verify().unwrap();
}

#[test]
fn a_dictionary_of_a_million_distinct_values() {
    let def = TableDef {
        columns: vec![
            column("ts", ColumnType::Timestamp),
            column("s", ColumnType::Text),
        ],
        ..every_type()
    };
    let n = 1_000_000;
    let values: Vec<String> = (0..n)
        .map(|i| format!("user-{:07}-ü", (i * 7919) % n))
        .collect();
    let input = RecordBatch::try_new(
        def.arrow_schema(),
        vec![
            Arc::new(TimestampMicrosecondArray::from(vec![0i64; n])),
            Arc::new(StringArray::from_iter_values(&values)),
        ],
    )
    .unwrap();
    let (bytes, _) = encode_segment(&def, std::slice::from_ref(&input)).unwrap();
    let reader = SegmentReader::from_bytes(Bytes::from(bytes), "big").unwrap();
    assert_eq!(reader.dictionary(1).unwrap().len(), n);
    assert_eq!(reader.rows_equal(1, "user-0000042-ü").unwrap().len(), 1);
    let output = concat_batches(&reader.schema(), &reader.read(None).unwrap()).unwrap();
    let strings = output
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let mut expected = values.clone();
    expected.sort();
    assert!(strings
        .iter()
        .zip(&expected)
        .all(|(a, b)| a == Some(b.as_str())));
}

#[test]
fn bitmaps_are_kept_where_values_form_runs_and_rows_are_found_without_them() {
    let def = TableDef {
        columns: vec![
            column("ts", ColumnType::Timestamp),
            column("runs", ColumnType::Text),
            column("scattered", ColumnType::Text),
        ],
        ..every_type()
    };
    // Distinct times, so the rows stay in time order: `runs` changes every 10,000 rows,
    // `scattered` holds one of 2,000 values in every row, a tenth of them NULL.
    let n = 200_000usize;
    let runs: Vec<String> = (0..n).map(|i| format!("r{}", i / 10_000)).collect();
    let scattered: StringArray = (0..n)
        .map(|i| (i % 10 != 3).then(|| format!("s{}", (i * 7919) % 2000)))
        .collect();
    let input = RecordBatch::try_new(
        def.arrow_schema(),
        vec![
            Arc::new(TimestampMicrosecondArray::from_iter_values(0..n as i64)),
            Arc::new(StringArray::from_iter_values(&runs)),
            Arc::new(scattered.clone()),
        ],
    )
    .unwrap();
    let (bytes, _) = encode_segment(&def, std::slice::from_ref(&input)).unwrap();
    let reader = SegmentReader::from_bytes(Bytes::from(bytes), "pays").unwrap();
    let bitmaps = |c: usize| {
        reader.footer().columns[c]
            .dictionary
            .as_ref()
            .unwrap()
            .bitmaps
    };
    assert!(bitmaps(1).is_some(), "runs cost a few bytes each: indexed");
    assert!(
        bitmaps(2).is_none(),
        "scattered rows cost more than the ids"
    );

    // Without bitmaps, a value's rows come from a pass over the ids: exactly its rows.
    // (The rows kept their order: times are distinct.)
    let rows = reader.rows_equal(2, "s42").unwrap();
    let expected: Vec<u32> = (0..n as u32)
        .filter(|&i| scattered.is_valid(i as usize) && scattered.value(i as usize) == "s42")
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(rows.iter().collect::<Vec<_>>(), expected);
    // Several values at once, NULL rows never among them.
    let dictionary = reader.dictionary(2).unwrap();
    let wanted: Vec<bool> = dictionary
        .iter()
        .map(|v| v.is_some_and(|v| v.ends_with('7')))
        .collect();
    let rows = reader.rows_with_ids(2, &wanted).unwrap();
    let expected = (0..n)
        .filter(|&i| scattered.is_valid(i) && scattered.value(i).ends_with('7'))
        .count();
    assert_eq!(rows.len(), expected as u64);
    assert!(rows
        .iter()
        .all(|r| scattered.value(r as usize).ends_with('7')));
    assert!(reader
        .rows_with_ids(2, &vec![false; wanted.len()])
        .unwrap()
        .is_empty());
    reader.verify().unwrap();
}

#[test]
fn plain_doubles_are_read_in_place() {
    let def = TableDef {
        columns: vec![
            column("ts", ColumnType::Timestamp),
            column("f", ColumnType::Double),
        ],
        ..every_type()
    };
    // Random-looking doubles neither scale nor compress: they stay plain, unaligned by nothing.
    let values: Vec<f64> = (0..1000u64)
        .map(|i| {
            f64::from_bits(0x3ff0_0000_0000_0000 | (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 12))
        })
        .collect();
    let input = RecordBatch::try_new(
        def.arrow_schema(),
        vec![
            Arc::new(TimestampMicrosecondArray::from(
                (0..1000).collect::<Vec<i64>>(),
            )),
            Arc::new(Float64Array::from(values.clone())),
        ],
    )
    .unwrap();
    let (bytes, _) = encode_segment(&def, &[input]).unwrap();
    let bytes = Bytes::from(bytes);
    let reader = SegmentReader::from_bytes(bytes.clone(), "plain").unwrap();
    assert_eq!(
        reader.footer().columns[1].blocks[0].encoding,
        encoding::Encoding::Plain
    );
    let batch = reader.read_block(0, &[1]).unwrap();
    let column = batch
        .column(0)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    assert_eq!(column.values().as_ref(), values.as_slice());
    let inside = bytes.as_ptr_range();
    assert!(
        inside.contains(&(column.values().as_ptr() as *const u8)),
        "the values were copied"
    );
}

#[test]
fn damage_names_the_segment() {
    let def = every_type();
    let (mut bytes, _) = encode_segment(
        &def,
        &[batch(
            &def,
            &[Row {
                ts: 1,
                b: None,
                i2: None,
                i4: Some(1),
                i8: None,
                f4: None,
                f8: None,
                n: None,
                s: Some("a".into()),
                v: None,
                d: None,
                tz: None,
                x: None,
            }],
        )],
    )
    .unwrap();
    bytes[HEADER_LEN + 1] ^= 0x10;
    let reader = SegmentReader::from_bytes(Bytes::from(bytes), "events_v1_p0").unwrap();
    let error = reader.read(None).unwrap_err();
    assert!(
        matches!(&error, Error::CorruptSegment { segment, .. } if segment == "events_v1_p0"),
        "{error}"
    );
    assert!(error.to_string().contains("checksum"), "{error}");
}
