//! Record batches as PostgreSQL's COPY text format (tab-separated, `\N` for NULL), the input
//! every system loads: Henge and PostgreSQL over the wire, DuckDB from a file.

use std::fmt::Write as _;

use arrow::array::{
    Array, AsArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    TimestampMicrosecondArray,
};
use arrow::datatypes::DataType;
use arrow::temporal_conversions::{date32_to_datetime, timestamp_us_to_datetime};

/// Appends the rows of `batch` to `out`, one line each.
///
/// # Panics
/// On a column type the benchmark data does not use.
pub fn encode(batch: &RecordBatch, out: &mut String) {
    for row in 0..batch.num_rows() {
        for (i, column) in batch.columns().iter().enumerate() {
            if i > 0 {
                out.push('\t');
            }
            if column.is_null(row) {
                out.push_str("\\N");
                continue;
            }
            match column.data_type() {
                DataType::Int32 => {
                    let v = column.as_any().downcast_ref::<Int32Array>().expect("int32");
                    write!(out, "{}", v.value(row)).expect("write to a String");
                }
                DataType::Int64 => {
                    let v = column.as_any().downcast_ref::<Int64Array>().expect("int64");
                    write!(out, "{}", v.value(row)).expect("write to a String");
                }
                DataType::Float64 => {
                    let v = column.as_any().downcast_ref::<Float64Array>().expect("f64");
                    write!(out, "{}", v.value(row)).expect("write to a String");
                }
                DataType::Utf8 => escape(column.as_string::<i32>().value(row), out),
                DataType::Date32 => {
                    let v = column.as_any().downcast_ref::<Date32Array>().expect("date");
                    let date = date32_to_datetime(v.value(row)).expect("date in range");
                    write!(out, "{}", date.format("%Y-%m-%d")).expect("write to a String");
                }
                DataType::Timestamp(_, None) => {
                    let v = column
                        .as_any()
                        .downcast_ref::<TimestampMicrosecondArray>()
                        .expect("timestamp in microseconds");
                    let at = timestamp_us_to_datetime(v.value(row)).expect("timestamp in range");
                    write!(out, "{}", at.format("%Y-%m-%d %H:%M:%S%.6f"))
                        .expect("write to a String");
                }
                other => panic!("no COPY text encoding for {other}"),
            }
        }
        out.push('\n');
    }
}

fn escape(value: &str, out: &mut String) {
    if !value.contains(['\\', '\t', '\n', '\r']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, StringArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn text_format_escapes_and_nulls() {
        let schema = Schema::new(vec![
            Field::new("t", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new(
                "ts",
                DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
                false,
            ),
        ]);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![Some("a\tb\\c"), None])),
            Arc::new(Int64Array::from(vec![None, Some(-7)])),
            Arc::new(TimestampMicrosecondArray::from(vec![0, 1_500_000])),
        ];
        let batch = RecordBatch::try_new(Arc::new(schema), columns).unwrap();
        let mut out = String::new();
        encode(&batch, &mut out);
        assert_eq!(
            out,
            "a\\tb\\\\c\t\\N\t1970-01-01 00:00:00.000000\n\\N\t-7\t1970-01-01 00:00:01.500000\n"
        );
    }
}
