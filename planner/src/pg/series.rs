//! `generate_series` as PostgreSQL has it, for integers, numerics and timestamps.
//!
//! DataFusion's function of that name takes only bigints and nanosecond timestamps (1677
//! to 2262), so `generate_series(1, 3)` was a bigint, `generate_series(0.5, 2.0, 0.5)` and
//! a series of dates were refused, and microsecond timestamps (PostgreSQL's, and Henge's)
//! were not accepted. Here the series has PostgreSQL's type: `integer` for integers that
//! fit in one, `bigint` when an argument is one, `numeric` with the largest scale of its
//! arguments, `timestamp` or `timestamptz` as the arguments are (dates are `timestamptz`
//! at midnight in the session's time zone). A step of zero is 22023; a NULL argument gives
//! no rows; a series stops before it would leave its type's range.
//!
//! In FROM it is a table function that makes its rows a batch at a time; in a select list
//! (unnested there, see [`super::srf`]) a function that lists each row's series.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, Decimal128Array, Int32Array, Int64Array, ListArray, RecordBatch,
    TimestampMicrosecondArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, IntervalMonthDayNano, IntervalUnit, Schema, SchemaRef, TimeUnit,
    TimestampMicrosecondType,
};
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TableType, Volatility,
};
use datafusion::physical_plan::memory::{LazyBatchGenerator, LazyMemoryExec};
use datafusion::physical_plan::ExecutionPlan;
use parking_lot::RwLock;

use super::{Settings, SqlStateError};

const NAME: &str = "generate_series";

fn err(code: &'static str, message: impl Into<String>) -> DataFusionError {
    SqlStateError::new(code, message).into()
}

/// The series' type for arguments of these types (the session's time zone for dates).
fn series_type(args: &[DataType], zone: &str) -> Result<DataType> {
    let no_function = || {
        let names: Vec<String> = args
            .iter()
            .map(|t| super::types::of_arrow(t).data_type)
            .collect();
        err(
            "42883",
            format!(
                "function generate_series({}) does not exist",
                names.join(", ")
            ),
        )
    };
    if !(2..=3).contains(&args.len()) {
        return Err(no_function());
    }
    let (bounds, step) = (&args[..2], args.get(2));
    let known = |t: &&DataType| !t.is_null();
    let mut bounds_known = bounds.iter().filter(known);
    let Some(first) = bounds_known.next().cloned() else {
        return Ok(DataType::Int32);
    };
    let temporal = |t: &DataType| matches!(t, DataType::Timestamp(_, _) | DataType::Date32);
    if temporal(&first) {
        let step_ok = step.is_some_and(|s| s.is_null() || matches!(s, DataType::Interval(_)));
        if !step_ok || !bounds.iter().filter(known).all(temporal) {
            return Err(no_function());
        }
        // A timestamptz among the bounds makes the series one (dates are read as
        // timestamptz, as PostgreSQL's implicit cast reads them).
        let zoned = bounds.iter().find_map(|t| match t {
            DataType::Timestamp(_, Some(z)) => Some(z.clone()),
            _ => None,
        });
        let plain = bounds
            .iter()
            .all(|t| matches!(t, DataType::Timestamp(_, None) | DataType::Null));
        return Ok(match (zoned, plain) {
            (Some(z), _) => DataType::Timestamp(TimeUnit::Microsecond, Some(z)),
            (None, true) => DataType::Timestamp(TimeUnit::Microsecond, None),
            (None, false) => DataType::Timestamp(TimeUnit::Microsecond, Some(zone.into())),
        });
    }
    let all: Vec<&DataType> = args.iter().filter(known).collect();
    if !all.iter().all(|t| t.is_integer() || t.is_decimal()) {
        return Err(no_function());
    }
    if let Some(scale) = all
        .iter()
        .filter_map(|t| match t {
            DataType::Decimal128(_, s) => Some(*s),
            _ => None,
        })
        .max()
    {
        return Ok(DataType::Decimal128(38, scale.max(0)));
    }
    Ok(if all.iter().any(|t| matches!(t, DataType::Int64)) {
        DataType::Int64
    } else {
        DataType::Int32
    })
}

/// One series' state: the next value, where it ends and how it steps.
#[derive(Debug, Clone)]
enum Series {
    /// Integers and numerics (as unscaled values); `max` bounds the type's range.
    Exact {
        next: Option<i128>,
        end: i128,
        step: i128,
        min: i128,
        max: i128,
    },
    Time {
        next: Option<i64>,
        end: i64,
        step: IntervalMonthDayNano,
        forward: bool,
        zone: datafusion::arrow::array::timezone::Tz,
    },
    Empty,
}

impl Series {
    /// The series of these arguments, cast to `ty` (the series' type).
    fn new(args: &[ScalarValue], ty: &DataType) -> Result<Series> {
        if args.iter().any(ScalarValue::is_null) {
            return Ok(Series::Empty);
        }
        match ty {
            DataType::Timestamp(_, zone) => {
                let micros = |v: &ScalarValue| -> Result<i64> {
                    // A date is midnight where the series' zone is.
                    if let (ScalarValue::Date32(Some(days)), Some(z)) = (v, zone) {
                        let zone: datafusion::arrow::array::timezone::Tz = z.parse()?;
                        let midnight = chrono::NaiveDate::from_num_days_from_ce_opt(
                            days + henge_ingest::value::UNIX_EPOCH_CE_DAYS,
                        )
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .ok_or_else(|| err("22008", "date out of range for timestamp"))?;
                        let offset = henge_ingest::value::local_offset(&zone)(midnight);
                        return Ok(
                            midnight.and_utc().timestamp_micros() - i64::from(offset) * 1_000_000
                        );
                    }
                    match v.cast_to(ty)? {
                        ScalarValue::TimestampMicrosecond(Some(v), _) => Ok(v),
                        other => Err(DataFusionError::Internal(format!(
                            "generate_series: {other:?} is not a timestamp"
                        ))),
                    }
                };
                let step = match args[2].cast_to(&DataType::Interval(IntervalUnit::MonthDayNano))? {
                    ScalarValue::IntervalMonthDayNano(Some(s)) => s,
                    _ => return Ok(Series::Empty),
                };
                let span = i128::from(step.months) * 30 * 86_400_000_000_000
                    + i128::from(step.days) * 86_400_000_000_000
                    + i128::from(step.nanoseconds);
                if span == 0 {
                    return Err(err("22023", "step size cannot equal zero"));
                }
                let zone = match zone {
                    Some(z) => z.parse()?,
                    None => crate::literal::utc(),
                };
                Ok(Series::Time {
                    next: Some(micros(&args[0])?),
                    end: micros(&args[1])?,
                    step,
                    forward: span > 0,
                    zone,
                })
            }
            _ => {
                let (unscaled_ty, min, max) = match ty {
                    DataType::Int32 => (ty.clone(), i32::MIN.into(), i32::MAX.into()),
                    DataType::Int64 => (ty.clone(), i64::MIN.into(), i64::MAX.into()),
                    _ => (ty.clone(), -(10i128.pow(38) - 1), 10i128.pow(38) - 1),
                };
                let value = |v: &ScalarValue| -> Result<i128> {
                    let v = v.cast_to(&unscaled_ty).map_err(|_| {
                        err(
                            "22003",
                            format!("{} out of range", super::types::of_arrow(ty).data_type),
                        )
                    })?;
                    match v {
                        ScalarValue::Int32(Some(v)) => Ok(v.into()),
                        ScalarValue::Int64(Some(v)) => Ok(v.into()),
                        ScalarValue::Decimal128(Some(v), _, _) => Ok(v),
                        other => Err(DataFusionError::Internal(format!(
                            "generate_series: {other:?} is not a number"
                        ))),
                    }
                };
                let step = match args.get(2) {
                    Some(s) => value(s)?,
                    None => match ty {
                        DataType::Decimal128(_, s) => 10i128.pow(*s as u32),
                        _ => 1,
                    },
                };
                if step == 0 {
                    return Err(err("22023", "step size cannot equal zero"));
                }
                Ok(Series::Exact {
                    next: Some(value(&args[0])?),
                    end: value(&args[1])?,
                    step,
                    min,
                    max,
                })
            }
        }
    }

    /// Up to `n` more values, as an array of `ty`; empty at the end.
    fn take(&mut self, n: usize, ty: &DataType) -> Result<ArrayRef> {
        match self {
            Series::Exact {
                next,
                end,
                step,
                min,
                max,
            } => {
                let mut values = Vec::new();
                while let Some(v) = *next {
                    if values.len() == n || (*step > 0 && v > *end) || (*step < 0 && v < *end) {
                        break;
                    }
                    values.push(v);
                    *next = v.checked_add(*step).filter(|v| (*min..=*max).contains(v));
                }
                Ok(match ty {
                    DataType::Int32 => Arc::new(Int32Array::from_iter_values(
                        values.into_iter().map(|v| v as i32),
                    )),
                    DataType::Int64 => Arc::new(Int64Array::from_iter_values(
                        values.into_iter().map(|v| v as i64),
                    )),
                    _ => Arc::new(
                        Decimal128Array::from_iter_values(values).with_data_type(ty.clone()),
                    ),
                })
            }
            Series::Time {
                next,
                end,
                step,
                forward,
                zone,
            } => {
                let mut values = Vec::new();
                while let Some(v) = *next {
                    if values.len() == n || (*forward && v > *end) || (!*forward && v < *end) {
                        break;
                    }
                    values.push(v);
                    *next = TimestampMicrosecondType::add_month_day_nano(v, *step, *zone);
                }
                let DataType::Timestamp(_, tz) = ty else {
                    unreachable!("a time series has a timestamp type")
                };
                Ok(Arc::new(
                    TimestampMicrosecondArray::from(values).with_timezone_opt(tz.clone()),
                ))
            }
            Series::Empty => Ok(datafusion::arrow::array::new_empty_array(ty)),
        }
    }
}

/// Registers both forms of `generate_series` in place of DataFusion's.
pub fn register(ctx: &SessionContext, settings: Arc<Settings>) {
    ctx.register_udf(ScalarUDF::new_from_impl(Listing {
        signature: Signature::variadic_any(Volatility::Immutable),
        settings,
    }));
    ctx.register_udtf(NAME, Arc::new(Table));
}

/// The value of a table function's constant argument.
fn constant(expr: &Expr, session: &dyn Session) -> Result<ScalarValue> {
    match expr {
        Expr::Literal(v, _) => Ok(v.clone()),
        Expr::Cast(Cast { expr: inner, field }) => {
            if let Expr::Literal(
                ScalarValue::Utf8(Some(text)) | ScalarValue::Utf8View(Some(text)),
                _,
            ) = inner.as_ref()
            {
                let zone = crate::literal::session_zone(session.config_options());
                if let Some(read) = crate::literal::parse(text, field.data_type(), &zone) {
                    return read.map_err(|e| {
                        DataFusionError::External(Box::new(henge_ingest::Error::from(e)))
                    });
                }
            }
            Ok(constant(inner, session)?.cast_to(field.data_type())?)
        }
        Expr::Negative(inner) => constant(inner, session)?.arithmetic_negate(),
        _ => Err(err(
            "0A000",
            "generate_series in FROM takes constant arguments",
        )),
    }
}

#[derive(Debug)]
struct Table;

impl TableFunctionImpl for Table {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let session = args.session();
        let values = args
            .exprs()
            .iter()
            .map(|e| constant(e, session))
            .collect::<Result<Vec<_>>>()?;
        let zone = session
            .config_options()
            .execution
            .time_zone
            .clone()
            .unwrap_or_else(|| "+00:00".into());
        let types: Vec<DataType> = values.iter().map(ScalarValue::data_type).collect();
        let ty = series_type(&types, &zone)?;
        let series = Series::new(&values, &ty)?;
        let schema = Arc::new(Schema::new(vec![Field::new("value", ty.clone(), false)]));
        Ok(Arc::new(SeriesTable { schema, series, ty }))
    }
}

#[derive(Debug)]
struct SeriesTable {
    schema: SchemaRef,
    series: Series,
    ty: DataType,
}

#[async_trait]
impl TableProvider for SeriesTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let generator = Generator {
            schema: self.schema.clone(),
            start: self.series.clone(),
            series: self.series.clone(),
            ty: self.ty.clone(),
            batch: state.config_options().execution.batch_size.get(),
        };
        let exec =
            LazyMemoryExec::try_new(self.schema.clone(), vec![Arc::new(RwLock::new(generator))])?
                .with_projection(projection.cloned());
        Ok(Arc::new(exec))
    }
}

#[derive(Debug)]
struct Generator {
    schema: SchemaRef,
    start: Series,
    series: Series,
    ty: DataType,
    batch: usize,
}

impl fmt::Display for Generator {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{NAME}: {}", self.ty)
    }
}

impl LazyBatchGenerator for Generator {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn generate_next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let values = self.series.take(self.batch, &self.ty)?;
        if values.is_empty() {
            return Ok(None);
        }
        Ok(Some(RecordBatch::try_new(
            self.schema.clone(),
            vec![values],
        )?))
    }

    fn reset_state(&self) -> Arc<RwLock<dyn LazyBatchGenerator>> {
        Arc::new(RwLock::new(Generator {
            schema: self.schema.clone(),
            start: self.start.clone(),
            series: self.start.clone(),
            ty: self.ty.clone(),
            batch: self.batch,
        }))
    }
}

/// `generate_series` in a select list: each row's series as a list.
#[derive(Debug)]
struct Listing {
    signature: Signature,
    settings: Arc<Settings>,
}

impl PartialEq for Listing {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.settings, &other.settings)
    }
}

impl Eq for Listing {}

impl std::hash::Hash for Listing {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        NAME.hash(state);
    }
}

impl ScalarUDFImpl for Listing {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Err(DataFusionError::Internal(
            "return_field_from_args is used".into(),
        ))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let ty = series_type(&types, &self.settings.time_zone_name())?;
        Ok(Arc::new(Field::new(
            NAME,
            DataType::List(Arc::new(Field::new_list_field(ty, false))),
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let DataType::List(item) = args.return_field.data_type() else {
            unreachable!("the series is a list")
        };
        let ty = item.data_type().clone();
        let rows = args.number_rows;
        let columns: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<_>>()?;
        let mut offsets = Vec::with_capacity(rows);
        let mut parts: Vec<ArrayRef> = Vec::with_capacity(rows);
        let mut nulls = Vec::with_capacity(rows);
        for row in 0..rows {
            let values = columns
                .iter()
                .map(|c| ScalarValue::try_from_array(c, row))
                .collect::<Result<Vec<_>>>()?;
            let mut series = Series::new(&values, &ty)?;
            nulls.push(!values.iter().any(ScalarValue::is_null));
            let mut length = 0;
            loop {
                let part = series.take(8192, &ty)?;
                if part.is_empty() {
                    break;
                }
                length += part.len();
                parts.push(part);
            }
            offsets.push(length);
        }
        let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
        let values = if refs.is_empty() {
            datafusion::arrow::array::new_empty_array(&ty)
        } else {
            datafusion::arrow::compute::concat(&refs)?
        };
        let list = ListArray::try_new(
            item.clone(),
            OffsetBuffer::from_lengths(offsets),
            values,
            Some(nulls.into()),
        )?;
        Ok(ColumnarValue::Array(Arc::new(list)))
    }
}
