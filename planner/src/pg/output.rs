//! Values cast to text as PostgreSQL's output functions write them (see [`OutputText`]).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ScalarUDFImpl, Signature, Volatility};

/// A value cast to text as PostgreSQL's output function writes it, for the types whose
/// text DataFusion's cast writes otherwise: dates and timestamps (`2024-01-01
/// 10:00:00.5`, `0044-03-15 BC`, a `timestamptz` in the session's zone with its offset;
/// DataFusion wrote `2024-01-01T10:00:00.500` and year 0), times, and floating-point
/// numbers (`2`, `1e+20`; DataFusion wrote `2.0`, `1e20`).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct OutputText {
    signature: Signature,
}

impl Default for OutputText {
    fn default() -> OutputText {
        OutputText {
            signature: Signature::any(1, Volatility::Stable),
        }
    }
}

impl ScalarUDFImpl for OutputText {
    fn name(&self) -> &str {
        "henge_output_text"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> Result<datafusion::logical_expr::ColumnarValue> {
        use datafusion::arrow::array::{Array, AsArray, StringBuilder};
        use datafusion::arrow::datatypes::Date32Type;
        let zone = crate::literal::session_zone(&args.config_options);
        let values = args.args[0].to_array(args.number_rows)?;
        let mut out = StringBuilder::with_capacity(values.len(), values.len() * 20);
        match values.data_type() {
            DataType::Date32 => {
                for v in values.as_primitive::<Date32Type>() {
                    out.append_option(v.map(henge_ingest::text::date_text));
                }
            }
            DataType::Timestamp(_, tz) => {
                let micros = datafusion::arrow::compute::cast(
                    &values,
                    &DataType::Timestamp(TimeUnit::Microsecond, None),
                )?;
                let zone = tz.as_ref().map(|_| &zone);
                let micros =
                    micros.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>();
                for v in micros {
                    out.append_option(v.map(|v| henge_ingest::text::timestamp_text(v, zone)));
                }
            }
            DataType::Time64(_) => {
                let micros = datafusion::arrow::compute::cast(
                    &values,
                    &DataType::Time64(TimeUnit::Microsecond),
                )?;
                let micros =
                    micros.as_primitive::<datafusion::arrow::datatypes::Time64MicrosecondType>();
                for v in micros {
                    out.append_option(v.map(henge_ingest::text::time_text));
                }
            }
            DataType::Float64 => {
                for v in values.as_primitive::<datafusion::arrow::datatypes::Float64Type>() {
                    out.append_option(v.map(henge_ingest::text::float8_text));
                }
            }
            DataType::Float32 => {
                for v in values.as_primitive::<datafusion::arrow::datatypes::Float32Type>() {
                    out.append_option(v.map(henge_ingest::text::float4_text));
                }
            }
            other => {
                return Err(DataFusionError::Internal(format!(
                    "henge_output_text of {other}"
                )))
            }
        }
        Ok(datafusion::logical_expr::ColumnarValue::Array(Arc::new(
            out.finish(),
        )))
    }
}
