//! PostgreSQL's intervals and time arithmetic where DataFusion's differ.
//!
//! An interval is months, days and microseconds, each with its own sign (Arrow's
//! `IntervalMonthDayNano` holds the same three counts). What changes here:
//! - **Operators** ([`PgTimeOperators`], an expression planner that sees each operator with
//!   its operands' types): `number * interval` and `interval / number` cascade fractions
//!   into smaller units as PostgreSQL does (DataFusion has neither); `date ± interval` is a
//!   timestamp (DataFusion's is a date, silently dropping the time); `timestamp -
//!   timestamp` is an interval of days and time (DataFusion's is a duration); and intervals
//!   compare as PostgreSQL compares them, a month as 30 days and a day as 24 hours
//!   (DataFusion compares the three counts one after the other, so `'1 day' = '24 hours'`
//!   would be false).
//! - **Text**: intervals are read and written by PostgreSQL's rules
//!   ([`henge_ingest::interval`]): the literal `INTERVAL '1 day 01:30:00'`, casts to and
//!   from text ([`PgIntervalCasts`]).
//! - **Functions**: `make_interval`, `justify_days`, `justify_hours`, `justify_interval`,
//!   `age`, and `AT TIME ZONE` in both directions (a `timestamptz` becomes the wall-clock
//!   `timestamp` of the zone; DataFusion's kept the instant and its type).

use std::hash::{Hash, Hasher};
use std::ops::ControlFlow;
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Int32Array, IntervalMonthDayNanoArray, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Float64Type, Int32Type, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit,
    TimeUnit, TimestampMicrosecondType,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::expr::{Between, Cast, InList, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::sql::sqlparser::ast::{
    self as ast, BinaryOperator, CastKind, FunctionArg, FunctionArgExpr, FunctionArgOperator,
    FunctionArguments, VisitMut, VisitorMut,
};
use henge_ingest::interval::{format_interval, parse_interval, Interval};

use super::rewrite::{call, function_name, plain_arguments};
use super::settings::parse_zone;
use super::{no_such_function, on_arrays, SqlStateError};

const USECS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;
const USECS_PER_DAY: i64 = SECS_PER_DAY * USECS_PER_SEC;
const DAYS_PER_MONTH: i32 = 30;
const MONTHS_PER_YEAR: i32 = 12;

/// Arrow's type of a PostgreSQL interval.
pub const INTERVAL: DataType = DataType::Interval(IntervalUnit::MonthDayNano);
/// Arrow's type of a PostgreSQL timestamp (without time zone).
const TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);

/// `make_interval`'s parameters, in order; each defaults to zero.
const MAKE_INTERVAL_PARAMETERS: [&str; 7] =
    ["years", "months", "weeks", "days", "hours", "mins", "secs"];

fn out_of_range() -> DataFusionError {
    SqlStateError::new("22008", "interval out of range").into()
}

/// Rewrites the syntax DataFusion would read its own way: an `INTERVAL '…'` literal without
/// fields is a cast of its text (read by PostgreSQL's rules), `x AT TIME ZONE z` a call of
/// `pg_at_time_zone`, `age(x)` is `age(current_date, x)`, and `make_interval` takes its
/// parameters by name or position with zeros for the rest.
pub fn rewrite(mut statement: ast::Statement) -> ast::Statement {
    struct Syntax;
    impl VisitorMut for Syntax {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut ast::Expr) -> ControlFlow<()> {
            match expr {
                ast::Expr::Interval(ast::Interval {
                    value,
                    leading_field: None,
                    leading_precision: None,
                    last_field: None,
                    fractional_seconds_precision: None,
                }) => {
                    *expr = ast::Expr::Cast {
                        kind: CastKind::Cast,
                        expr: value.clone(),
                        data_type: ast::DataType::Interval {
                            fields: None,
                            precision: None,
                        },
                        array: false,
                        format: None,
                    };
                }
                ast::Expr::AtTimeZone {
                    timestamp,
                    time_zone,
                } => {
                    *expr = call(
                        "pg_at_time_zone",
                        vec![(**timestamp).clone(), (**time_zone).clone()],
                    );
                }
                ast::Expr::Function(ast::Function {
                    over: Some(ast::WindowType::WindowSpec(spec)),
                    ..
                }) => frame_intervals(spec),
                _ => match function_name(expr).as_deref() {
                    // timezone(zone, t) is `t AT TIME ZONE zone`.
                    Some("timezone") => {
                        if let Some([zone, stamp]) = plain_arguments(expr).as_deref() {
                            *expr =
                                call("pg_at_time_zone", vec![(*stamp).clone(), (*zone).clone()]);
                        }
                    }
                    // date_trunc(field, interval): PostgreSQL truncates the interval's
                    // fields; DataFusion's date_trunc takes only timestamps and times.
                    Some("date_trunc") => {
                        if let Some([field, value]) = plain_arguments(expr).as_deref() {
                            if matches!(
                                value,
                                ast::Expr::Cast {
                                    data_type: ast::DataType::Interval { .. },
                                    ..
                                }
                            ) {
                                *expr = call(
                                    "pg_interval_trunc",
                                    vec![(*field).clone(), (*value).clone()],
                                );
                            }
                        }
                    }
                    Some("make_interval") => {
                        if let Some(args) = make_interval_arguments(expr) {
                            *expr = call("make_interval", args);
                        }
                    }
                    Some("age") => {
                        if let ast::Expr::Function(f) = expr {
                            if let FunctionArguments::List(list) = &mut f.args {
                                if list.args.len() == 1 {
                                    let today = ast::Expr::Cast {
                                        kind: CastKind::Cast,
                                        expr: Box::new(ast::Expr::Function(ast::Function {
                                            name: ast::ObjectName::from(vec![ast::Ident::new(
                                                "current_date",
                                            )]),
                                            uses_odbc_syntax: false,
                                            parameters: FunctionArguments::None,
                                            args: FunctionArguments::None,
                                            filter: None,
                                            null_treatment: None,
                                            over: None,
                                            within_group: Vec::new(),
                                        })),
                                        data_type: ast::DataType::Timestamp(
                                            None,
                                            ast::TimezoneInfo::None,
                                        ),
                                        array: false,
                                        format: None,
                                    };
                                    list.args.insert(
                                        0,
                                        FunctionArg::Unnamed(FunctionArgExpr::Expr(today)),
                                    );
                                }
                            }
                        }
                    }
                    _ => {}
                },
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Syntax);
    let _ = statement.visit(&mut TableFunctionConstants);
    statement
}

/// A window frame's interval offsets (`RANGE BETWEEN INTERVAL '10 seconds' PRECEDING …`)
/// as written: DataFusion takes only an interval constant there, which the rewrite above
/// has just made a cast, so it is made a constant again, in months, days and microseconds
/// as PostgreSQL read the text.
fn frame_intervals(spec: &mut ast::WindowSpec) {
    let Some(frame) = spec.window_frame.as_mut() else {
        return;
    };
    for bound in std::iter::once(&mut frame.start_bound).chain(frame.end_bound.as_mut()) {
        let (ast::WindowFrameBound::Preceding(Some(offset))
        | ast::WindowFrameBound::Following(Some(offset))) = bound
        else {
            continue;
        };
        let ast::Expr::Cast {
            expr: inner,
            data_type: ast::DataType::Interval { .. },
            ..
        } = offset.as_ref()
        else {
            continue;
        };
        let ast::Expr::Value(ast::ValueWithSpan {
            value: ast::Value::SingleQuotedString(text),
            ..
        }) = inner.as_ref()
        else {
            continue;
        };
        let Ok(v) = parse_interval(text) else {
            continue;
        };
        let spelled = format!(
            "{} months {} days {} microseconds",
            v.months, v.days, v.micros
        );
        **offset = ast::Expr::Interval(ast::Interval {
            value: Box::new(ast::Expr::value(ast::Value::SingleQuotedString(spelled))),
            leading_field: None,
            leading_precision: None,
            last_field: None,
            fractional_seconds_precision: None,
        });
    }
}

/// A table function's arguments are evaluated while the query is planned, with Arrow's
/// parsers rather than Henge's analyzer rules: its timestamp and interval constants are
/// written out again in a form both read alike (`TIMESTAMP '2024-01-01 03:00'` with its
/// seconds, an interval as months, days and microseconds).
struct TableFunctionConstants;

impl VisitorMut for TableFunctionConstants {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut ast::TableFactor) -> ControlFlow<()> {
        if let ast::TableFactor::Table {
            args: Some(args), ..
        } = factor
        {
            for arg in &mut args.args {
                if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg {
                    canonical_constant(e);
                }
            }
        }
        ControlFlow::Continue(())
    }
}

fn canonical_constant(expr: &mut ast::Expr) {
    match expr {
        ast::Expr::TypedString(ast::TypedString {
            data_type: ast::DataType::Timestamp(_, ast::TimezoneInfo::None),
            value,
            ..
        }) => {
            let ast::Value::SingleQuotedString(text) = &mut value.value else {
                return;
            };
            let parsed = henge_ingest::value::parse_timestamp(text)
                .ok()
                .and_then(DateTime::from_timestamp_micros);
            if let Some(t) = parsed {
                *text = t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string();
            }
        }
        ast::Expr::Cast {
            expr: inner,
            data_type: ast::DataType::Interval { .. },
            ..
        } => {
            let ast::Expr::Value(ast::ValueWithSpan {
                value: ast::Value::SingleQuotedString(text),
                ..
            }) = inner.as_mut()
            else {
                return;
            };
            if let Ok(v) = parse_interval(text) {
                *text = format!(
                    "{} months {} days {} microseconds",
                    v.months, v.days, v.micros
                );
            }
        }
        _ => {}
    }
}

/// `make_interval`'s seven arguments from a call with some of them, by position first and
/// then by name (`make_interval(days => 10)`); `None` if a name is unknown or repeated.
fn make_interval_arguments(expr: &ast::Expr) -> Option<Vec<ast::Expr>> {
    let ast::Expr::Function(f) = expr else {
        return None;
    };
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let zero = ast::Expr::value(ast::Value::Number("0".into(), false));
    let parameter = |name: &str| {
        MAKE_INTERVAL_PARAMETERS
            .iter()
            .position(|p| name.eq_ignore_ascii_case(p))
    };
    let mut args: Vec<Option<ast::Expr>> = vec![None; MAKE_INTERVAL_PARAMETERS.len()];
    let mut position = 0;
    for arg in &list.args {
        let (at, value) = match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => {
                position += 1;
                (position - 1, e)
            }
            FunctionArg::Named {
                name,
                arg: FunctionArgExpr::Expr(e),
                operator: FunctionArgOperator::RightArrow | FunctionArgOperator::Assignment,
            } => (parameter(&name.value)?, e),
            FunctionArg::ExprNamed {
                name: ast::Expr::Identifier(name),
                arg: FunctionArgExpr::Expr(e),
                operator: FunctionArgOperator::RightArrow | FunctionArgOperator::Assignment,
            } => (parameter(&name.value)?, e),
            _ => return None,
        };
        let slot = args.get_mut(at)?;
        if slot.is_some() {
            return None;
        }
        *slot = Some(value.clone());
    }
    Some(
        args.into_iter()
            .map(|a| a.unwrap_or_else(|| zero.clone()))
            .collect(),
    )
}

/// Plans the operators whose PostgreSQL meaning with intervals, dates and timestamps
/// DataFusion lacks or has otherwise (see the module's documentation), and the division
/// of numerics ([`super::division::plan`]).
#[derive(Debug, Default)]
pub struct PgTimeOperators;

impl ExprPlanner for PgTimeOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let (Ok(l), Ok(r)) = (expr.left.get_type(schema), expr.right.get_type(schema)) else {
            return Ok(PlannerResult::Original(expr));
        };
        let interval = |t: &DataType| matches!(t, DataType::Interval(_));
        let number = |t: &DataType| t.is_numeric();
        let text = |t: &DataType| matches!(t, DataType::Utf8 | DataType::Utf8View);
        let RawBinaryExpr { op, left, right } = expr;
        if op == BinaryOperator::Divide {
            if let Some(quotient) = super::division::plan(&left, &l, &right, &r) {
                return Ok(PlannerResult::Planned(quotient));
            }
        }
        let compared = comparison(&op).filter(|_| interval(&l) || interval(&r));
        let planned = match (&op, &l, &r) {
            (BinaryOperator::Multiply, a, b) if interval(a) && number(b) => {
                udf(IntervalFunction::scale(false), vec![left, to_f64(right)])
            }
            (BinaryOperator::Multiply, a, b) if number(a) && interval(b) => {
                udf(IntervalFunction::scale(false), vec![right, to_f64(left)])
            }
            (BinaryOperator::Divide, a, b) if interval(a) && number(b) => {
                udf(IntervalFunction::scale(true), vec![left, to_f64(right)])
            }
            (BinaryOperator::Plus, DataType::Date32, b) if interval(b) => {
                binary(to_timestamp(left), Operator::Plus, right)
            }
            (BinaryOperator::Plus, a, DataType::Date32) if interval(a) => {
                binary(to_timestamp(right), Operator::Plus, left)
            }
            // PostgreSQL's `date - date` is an integer number of days.
            (BinaryOperator::Minus, DataType::Date32, DataType::Date32) => Expr::Cast(Cast::new(
                Box::new(binary(left, Operator::Minus, right)),
                DataType::Int32,
            )),
            (BinaryOperator::Minus, DataType::Date32, b) if interval(b) => {
                binary(to_timestamp(left), Operator::Minus, right)
            }
            (
                BinaryOperator::Minus,
                DataType::Timestamp(_, a_zone),
                DataType::Timestamp(_, b_zone),
            ) if a_zone.is_some() == b_zone.is_some() => {
                udf(IntervalFunction::timestamp_mi(), vec![left, right])
            }
            (_, a, b) if (interval(a) || text(a)) && (interval(b) || text(b)) => match compared {
                Some(cmp) => binary(key(left), cmp, key(right)),
                None => return Ok(PlannerResult::Original(RawBinaryExpr { op, left, right })),
            },
            _ => return Ok(PlannerResult::Original(RawBinaryExpr { op, left, right })),
        };
        Ok(PlannerResult::Planned(planned))
    }
}

/// The comparison operator of a SQL operator, if it is one.
fn comparison(op: &BinaryOperator) -> Option<Operator> {
    Some(match op {
        BinaryOperator::Eq => Operator::Eq,
        BinaryOperator::NotEq => Operator::NotEq,
        BinaryOperator::Lt => Operator::Lt,
        BinaryOperator::LtEq => Operator::LtEq,
        BinaryOperator::Gt => Operator::Gt,
        BinaryOperator::GtEq => Operator::GtEq,
        _ => return None,
    })
}

fn binary(left: Expr, op: Operator, right: Expr) -> Expr {
    Expr::BinaryExpr(BinaryExpr::new(Box::new(left), op, Box::new(right)))
}

fn udf(function: IntervalFunction, args: Vec<Expr>) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(function)),
        args,
    ))
}

fn to_f64(expr: Expr) -> Expr {
    Expr::Cast(Cast::new(Box::new(expr), DataType::Float64))
}

fn to_timestamp(expr: Expr) -> Expr {
    Expr::Cast(Cast::new(Box::new(expr), TIMESTAMP))
}

/// An interval's position in PostgreSQL's order (text is cast to an interval first).
fn key(expr: Expr) -> Expr {
    udf(IntervalFunction::key(), vec![expr])
}

/// Casts between intervals and text by PostgreSQL's rules: `CAST(i AS text)` writes
/// `1 day 01:30:00` (DataFusion: `0 years 0 mons 1 days …`) and a cast of text that is not
/// a constant (constants are read when planned, by `PgLiteralInput`) reads PostgreSQL's
/// forms. `ORDER BY`, `BETWEEN` and `IN` of intervals order and compare as PostgreSQL
/// compares intervals; `min` and `max`
/// of an interval, which would compare DataFusion's way, are refused. Add it after
/// `PgLiteralInput`.
#[derive(Debug, Default)]
pub struct PgIntervalCasts;

impl AnalyzerRule for PgIntervalCasts {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        let zone = config
            .execution
            .time_zone
            .clone()
            .unwrap_or_else(|| "UTC".into());
        plan.transform_up_with_subqueries(|plan| {
            let mut schema = DFSchema::empty();
            for input in plan.inputs() {
                schema.merge(input.schema());
            }
            // ORDER BY an interval orders by PostgreSQL's order of intervals.
            let sort = matches!(plan, LogicalPlan::Sort(_));
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let saved = names.save(&expr);
                let expr = expr.transform_up(|e| interval_expr(e, &schema, &zone))?;
                let interval = matches!(expr.data.get_type(&schema), Ok(DataType::Interval(_)));
                let expr = match sort && interval {
                    true => Transformed::yes(key(expr.data)),
                    false => expr,
                };
                Ok(expr.update_data(|e| saved.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "pg_interval_casts"
    }
}

fn interval_expr(expr: Expr, schema: &DFSchema, zone: &str) -> Result<Transformed<Expr>> {
    if let Expr::AggregateFunction(aggregate) = &expr {
        let name = aggregate.func.name();
        let interval_argument = aggregate
            .params
            .args
            .iter()
            .any(|a| matches!(a.get_type(schema), Ok(DataType::Interval(_))));
        if interval_argument && matches!(name, "min" | "max") {
            return Err(
                SqlStateError::new("0A000", format!("{name}(interval) is not supported")).into(),
            );
        }
    }
    let is_interval = |e: &Expr| matches!(e.get_type(schema), Ok(DataType::Interval(_)));
    // BETWEEN and IN compare as the comparison operators do.
    match expr {
        Expr::Between(Between {
            expr: value,
            negated,
            low,
            high,
        }) if is_interval(&value) => {
            return Ok(Transformed::yes(Expr::Between(Between::new(
                Box::new(key(*value)),
                negated,
                Box::new(key(*low)),
                Box::new(key(*high)),
            ))))
        }
        Expr::InList(InList {
            expr: value,
            list,
            negated,
        }) if is_interval(&value) => {
            return Ok(Transformed::yes(Expr::InList(InList::new(
                Box::new(key(*value)),
                list.into_iter().map(key).collect(),
                negated,
            ))))
        }
        _ => {}
    }
    let Expr::Cast(Cast { expr: inner, field }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    let Ok(from) = inner.get_type(schema) else {
        return Ok(Transformed::no(expr));
    };
    let to = field.data_type();
    let function = match (&from, to) {
        (DataType::Interval(_), DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) => {
            IntervalFunction::output()
        }
        (DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8, DataType::Interval(_))
            if !matches!(inner.as_ref(), Expr::Literal(..)) =>
        {
            IntervalFunction::input()
        }
        // A timestamptz cast to a timestamp is its wall-clock time in the session's zone
        // (Arrow's cast kept the UTC time: `now()::timestamp` was off by the offset).
        // So are its date and time of day.
        (
            DataType::Timestamp(unit, Some(from_zone)),
            DataType::Timestamp(_, None) | DataType::Date32 | DataType::Time64(_),
        ) => {
            // AT TIME ZONE takes microseconds.
            let micros = match unit {
                TimeUnit::Microsecond => inner.as_ref().clone(),
                _ => Expr::Cast(Cast::new(
                    inner.clone(),
                    DataType::Timestamp(TimeUnit::Microsecond, Some(from_zone.clone())),
                )),
            };
            let local = Expr::ScalarFunction(ScalarFunction::new_udf(
                Arc::new(ScalarUDF::new_from_impl(AtTimeZone::new())),
                vec![micros, datafusion::logical_expr::lit(zone.to_owned())],
            ));
            return Ok(Transformed::yes(match to {
                DataType::Timestamp(TimeUnit::Microsecond, None) => local,
                _ => Expr::Cast(Cast::new(Box::new(local), to.clone())),
            }));
        }
        (
            DataType::Date32
            | DataType::Timestamp(_, _)
            | DataType::Time64(_)
            | DataType::Float32
            | DataType::Float64,
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8,
        ) => {
            let call = Expr::ScalarFunction(ScalarFunction::new_udf(
                Arc::new(ScalarUDF::new_from_impl(
                    super::output::OutputText::default(),
                )),
                vec![inner.as_ref().clone()],
            ));
            return Ok(Transformed::yes(match to {
                DataType::Utf8 => call,
                _ => Expr::Cast(Cast::new(Box::new(call), to.clone())),
            }));
        }
        _ => return Ok(Transformed::no(expr)),
    };
    let returns = function.returns.clone();
    let call = udf(function, vec![inner.as_ref().clone()]);
    Ok(Transformed::yes(match &returns == to {
        true => call,
        false => Expr::Cast(Cast::new(Box::new(call), to.clone())),
    }))
}

/// Registers the functions users call by name.
pub fn register(ctx: &SessionContext) {
    for function in [
        IntervalFunction::justify("justify_days", justify_days),
        IntervalFunction::justify("justify_hours", justify_hours),
        IntervalFunction::justify("justify_interval", justify_interval),
        IntervalFunction::make_interval(),
        IntervalFunction::age(),
        IntervalFunction::new(
            "pg_interval_trunc",
            |types| (types.len() == 2).then(|| vec![DataType::Utf8, INTERVAL]),
            INTERVAL,
            |args, _| {
                let units = args[0].as_string::<i32>();
                let out: IntervalMonthDayNanoArray = units
                    .iter()
                    .zip(intervals(&args[1]).iter())
                    .map(|pair| match pair {
                        (Some(unit), Some(v)) => {
                            let truncated = truncate(from_arrow(v), unit)?;
                            to_arrow(truncated).map(Some).ok_or_else(out_of_range)
                        }
                        _ => Ok(None),
                    })
                    .collect::<Result<_>>()?;
                Ok(Arc::new(out) as ArrayRef)
            },
        ),
    ] {
        ctx.register_udf(ScalarUDF::new_from_impl(function));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(AtTimeZone::new()));
}

/// What a function computes from its arguments' arrays (cast to the types its coercion
/// chose) and the session's options.
type Kernel = Arc<dyn Fn(&[ArrayRef], &ConfigOptions) -> Result<ArrayRef> + Send + Sync>;

/// The types a function's arguments are cast to, from their types; `None` if it takes no
/// such arguments.
type Coercion = fn(&[DataType]) -> Option<Vec<DataType>>;

/// A function of intervals and timestamps, computed on whole arrays.
struct IntervalFunction {
    name: &'static str,
    signature: Signature,
    coercion: Coercion,
    returns: DataType,
    kernel: Kernel,
}

impl IntervalFunction {
    fn new(
        name: &'static str,
        coercion: Coercion,
        returns: DataType,
        kernel: impl Fn(&[ArrayRef], &ConfigOptions) -> Result<ArrayRef> + Send + Sync + 'static,
    ) -> IntervalFunction {
        IntervalFunction {
            name,
            signature: Signature::user_defined(Volatility::Immutable),
            coercion,
            returns,
            kernel: Arc::new(kernel),
        }
    }

    /// `interval * number`, or with `divide` `interval / number`.
    fn scale(divide: bool) -> IntervalFunction {
        IntervalFunction::new(
            if divide {
                "pg_interval_div"
            } else {
                "pg_interval_mul"
            },
            |_| Some(vec![INTERVAL, DataType::Float64]),
            INTERVAL,
            move |args, _| scale_kernel(args, divide),
        )
    }

    fn timestamp_mi() -> IntervalFunction {
        IntervalFunction::new(
            "pg_timestamp_mi",
            |types| match types {
                [a, b] => Some(vec![micros(a)?, micros(b)?]),
                _ => None,
            },
            INTERVAL,
            |args, _| {
                let (a, b) = (timestamps(&args[0]), timestamps(&args[1]));
                let out: IntervalMonthDayNanoArray = a
                    .iter()
                    .zip(b.iter())
                    .map(|pair| match pair {
                        (Some(a), Some(b)) => a
                            .checked_sub(b)
                            .and_then(|micros| {
                                // PostgreSQL's timestamp_mi: whole days out of the time.
                                justify_hours(Interval {
                                    months: 0,
                                    days: 0,
                                    micros,
                                })
                            })
                            .and_then(to_arrow)
                            .map(Some)
                            .ok_or_else(out_of_range),
                        _ => Ok(None),
                    })
                    .collect::<Result<_>>()?;
                Ok(Arc::new(out))
            },
        )
    }

    fn key() -> IntervalFunction {
        IntervalFunction::new(
            "pg_interval_order",
            |_| Some(vec![INTERVAL]),
            DataType::Decimal128(38, 0),
            |args, _| {
                let out: Decimal128Array = intervals(&args[0])
                    .iter()
                    .map(|v| v.map(|v| order_key(from_arrow(v))))
                    .collect();
                Ok(Arc::new(out.with_precision_and_scale(38, 0)?))
            },
        )
    }

    fn output() -> IntervalFunction {
        IntervalFunction::new(
            "pg_interval_out",
            |_| Some(vec![INTERVAL]),
            DataType::Utf8,
            |args, _| {
                let out: StringArray = intervals(&args[0])
                    .iter()
                    .map(|v| v.map(|v| format_interval(from_arrow(v))))
                    .collect();
                Ok(Arc::new(out))
            },
        )
    }

    fn input() -> IntervalFunction {
        IntervalFunction::new(
            "pg_interval_in",
            |_| Some(vec![DataType::Utf8]),
            INTERVAL,
            |args, _| {
                let out: IntervalMonthDayNanoArray = args[0]
                    .as_string::<i32>()
                    .iter()
                    .map(|v| {
                        v.map(|text| {
                            let v = parse_interval(text).map_err(|e| {
                                DataFusionError::External(Box::new(henge_ingest::Error::from(e)))
                            })?;
                            to_arrow(v).ok_or_else(out_of_range)
                        })
                        .transpose()
                    })
                    .collect::<Result<_>>()?;
                Ok(Arc::new(out))
            },
        )
    }

    fn justify(name: &'static str, justify: fn(Interval) -> Option<Interval>) -> IntervalFunction {
        IntervalFunction::new(
            name,
            |_| Some(vec![INTERVAL]),
            INTERVAL,
            move |args, _| justify_kernel(args, justify),
        )
    }

    fn make_interval() -> IntervalFunction {
        IntervalFunction::new(
            "make_interval",
            |types| {
                (types.len() == MAKE_INTERVAL_PARAMETERS.len()).then(|| {
                    let mut t = vec![DataType::Int32; 6];
                    t.push(DataType::Float64);
                    t
                })
            },
            INTERVAL,
            |args, _| {
                let ints: Vec<&Int32Array> = args[..6]
                    .iter()
                    .map(|a| a.as_primitive::<Int32Type>())
                    .collect();
                let secs = args[6].as_primitive::<Float64Type>();
                let out: IntervalMonthDayNanoArray = (0..secs.len())
                    .map(|row| {
                        if ints.iter().any(|a| a.is_null(row)) || secs.is_null(row) {
                            return Ok(None);
                        }
                        let v = |i: usize| ints[i].value(row);
                        make_interval([v(0), v(1), v(2), v(3), v(4), v(5)], secs.value(row))
                            .and_then(to_arrow)
                            .map(Some)
                            .ok_or_else(out_of_range)
                    })
                    .collect::<Result<_>>()?;
                Ok(Arc::new(out))
            },
        )
    }

    fn age() -> IntervalFunction {
        IntervalFunction::new(
            "age",
            |types| match types {
                [a, b] => {
                    let zoned = |t: &DataType| matches!(t, DataType::Timestamp(_, Some(_)));
                    // Both zoned (compared in the session's zone) or both not.
                    let ty = match zoned(a) || zoned(b) {
                        true => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                        false => TIMESTAMP,
                    };
                    Some(vec![ty.clone(), ty])
                }
                _ => None,
            },
            INTERVAL,
            |args, config| {
                let zone = match args[0].data_type() {
                    DataType::Timestamp(_, Some(_)) => Some(crate::literal::session_zone(config)),
                    _ => None,
                };
                let wall = |micros: i64| -> Result<NaiveDateTime> {
                    let utc = DateTime::from_timestamp_micros(micros).ok_or_else(out_of_range)?;
                    Ok(match &zone {
                        Some(zone) => utc.with_timezone(zone).naive_local(),
                        None => utc.naive_utc(),
                    })
                };
                let (a, b) = (timestamps(&args[0]), timestamps(&args[1]));
                let out: IntervalMonthDayNanoArray = a
                    .iter()
                    .zip(b.iter())
                    .map(|pair| match pair {
                        (Some(a), Some(b)) => age(wall(a)?, wall(b)?)
                            .and_then(to_arrow)
                            .map(Some)
                            .ok_or_else(out_of_range),
                        _ => Ok(None),
                    })
                    .collect::<Result<_>>()?;
                Ok(Arc::new(out))
            },
        )
    }
}

impl std::fmt::Debug for IntervalFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntervalFunction")
            .field("name", &self.name)
            .finish()
    }
}

impl PartialEq for IntervalFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for IntervalFunction {}

impl Hash for IntervalFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for IntervalFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        (self.coercion)(arg_types).ok_or_else(|| no_such_function(self.name, arg_types))
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        on_arrays(&args, |arrays| (self.kernel)(arrays, &args.config_options))
    }
}

/// A timestamp type in microseconds, keeping its zone; `None` for other types.
fn micros(t: &DataType) -> Option<DataType> {
    match t {
        DataType::Timestamp(_, zone) => {
            Some(DataType::Timestamp(TimeUnit::Microsecond, zone.clone()))
        }
        _ => None,
    }
}

fn intervals(array: &ArrayRef) -> &IntervalMonthDayNanoArray {
    array.as_primitive::<IntervalMonthDayNanoType>()
}

fn timestamps(array: &ArrayRef) -> &TimestampMicrosecondArray {
    array.as_primitive::<TimestampMicrosecondType>()
}

fn from_arrow(v: IntervalMonthDayNano) -> Interval {
    Interval {
        months: v.months,
        days: v.days,
        micros: v.nanoseconds / 1000,
    }
}

/// The interval in Arrow's form, whose time is in nanoseconds: `None` past about 2.5
/// million hours, which PostgreSQL's microseconds still hold (such an interval is refused
/// with 22008 rather than wrapped around).
pub fn to_arrow(v: Interval) -> Option<IntervalMonthDayNano> {
    Some(IntervalMonthDayNano::new(
        v.months,
        v.days,
        v.micros.checked_mul(1000)?,
    ))
}

/// PostgreSQL's order of intervals: a month is 30 days, a day 24 hours.
fn order_key(v: Interval) -> i128 {
    (i128::from(v.months) * i128::from(DAYS_PER_MONTH) + i128::from(v.days))
        * i128::from(USECS_PER_DAY)
        + i128::from(v.micros)
}

fn scale_kernel(args: &[ArrayRef], divide: bool) -> Result<ArrayRef> {
    let factors = args[1].as_primitive::<Float64Type>();
    let out: IntervalMonthDayNanoArray = intervals(&args[0])
        .iter()
        .zip(factors.iter())
        .map(|pair| match pair {
            (Some(v), Some(f)) => to_arrow(scale(from_arrow(v), f, divide)?)
                .map(Some)
                .ok_or_else(out_of_range),
            _ => Ok(None),
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(out))
}

fn justify_kernel(
    args: &[ArrayRef],
    justify: fn(Interval) -> Option<Interval>,
) -> Result<ArrayRef> {
    let out: IntervalMonthDayNanoArray = intervals(&args[0])
        .iter()
        .map(|v| match v {
            Some(v) => justify(from_arrow(v))
                .and_then(to_arrow)
                .map(Some)
                .ok_or_else(out_of_range),
            None => Ok(None),
        })
        .collect::<Result<_>>()?;
    Ok(Arc::new(out))
}

/// `date_trunc(unit, interval)`: the interval with every field below `unit` zeroed, its
/// fields as PostgreSQL splits them (years and months from the months, days, then hours,
/// minutes, seconds and microseconds from the time, each keeping the sign).
fn truncate(v: Interval, unit: &str) -> Result<Interval> {
    let unit = unit.trim().to_ascii_lowercase();
    // How coarse the unit is: 0 keeps everything, 12 keeps only whole millennia.
    let rank = match unit.as_str() {
        "microsecond" | "microseconds" | "us" | "usec" | "usecs" | "useconds" => 0,
        "millisecond" | "milliseconds" | "ms" | "msec" | "msecs" | "mseconds" => 1,
        "second" | "seconds" | "s" | "sec" | "secs" => 2,
        "minute" | "minutes" | "m" | "min" | "mins" => 3,
        "hour" | "hours" | "h" | "hr" | "hrs" => 4,
        "day" | "days" | "d" => 5,
        "month" | "months" | "mon" | "mons" => 6,
        "quarter" | "qtr" => 7,
        "year" | "years" | "y" | "yr" | "yrs" => 8,
        "decade" | "decades" | "dec" | "decs" => 9,
        "century" | "centuries" | "c" | "cent" => 10,
        "millennium" | "millennia" | "mil" | "mils" => 11,
        "week" | "weeks" | "w" => {
            return Err(SqlStateError::new(
                "0A000",
                format!("unit \"{unit}\" not supported for type interval"),
            )
            .into())
        }
        _ => {
            return Err(SqlStateError::new(
                "22023",
                format!("unit \"{unit}\" not recognized for type interval"),
            )
            .into())
        }
    };
    const HOUR: i64 = 3_600_000_000;
    let (mut years, mut months) = (v.months / 12, v.months % 12);
    let mut days = v.days;
    let (mut hours, mut rest) = (v.micros / HOUR, v.micros % HOUR);
    let (mut minutes, mut seconds, mut micros) = (
        rest / 60_000_000,
        (rest % 60_000_000) / 1_000_000,
        rest % 1_000_000,
    );
    for (level, divisor) in [(11, 1000), (10, 100), (9, 10)] {
        if rank >= level {
            years = (years / divisor) * divisor;
        }
    }
    if rank >= 8 {
        months = 0;
    }
    if rank >= 7 {
        months = 3 * (months / 3);
    }
    if rank >= 6 {
        days = 0;
    }
    if rank >= 5 {
        hours = 0;
    }
    if rank >= 4 {
        minutes = 0;
    }
    if rank >= 3 {
        seconds = 0;
    }
    if rank >= 2 {
        micros = 0;
    } else if rank == 1 {
        micros = (micros / 1000) * 1000;
    }
    rest = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + micros;
    Ok(Interval {
        months: years * 12 + months,
        days,
        micros: rest,
    })
}

/// Rounds to whole microseconds of a second, as PostgreSQL's `TSROUND` does.
fn round_to_micros(seconds: f64) -> f64 {
    (seconds * USECS_PER_SEC as f64).round_ties_even() / USECS_PER_SEC as f64
}

fn fits_i32(v: f64) -> Option<i32> {
    (v.is_finite() && v >= f64::from(i32::MIN) && v < -(f64::from(i32::MIN))).then_some(v as i32)
}

/// `interval * factor` (or `/ factor`) as PostgreSQL computes it: each count scaled and
/// truncated, what a fraction of a month leaves carried into days (30 to the month) and
/// what a fraction of a day leaves into the time; never back up into larger units.
fn scale(v: Interval, factor: f64, divide: bool) -> Result<Interval> {
    if divide && factor == 0.0 {
        return Err(SqlStateError::new("22012", "division by zero").into());
    }
    let apply = |x: f64| if divide { x / factor } else { x * factor };
    let months = fits_i32(apply(f64::from(v.months))).ok_or_else(out_of_range)?;
    let mut days = fits_i32(apply(f64::from(v.days))).ok_or_else(out_of_range)?;
    let month_remainder_days = round_to_micros(
        (apply(f64::from(v.months)) - f64::from(months)) * f64::from(DAYS_PER_MONTH),
    );
    let whole_remainder_days = month_remainder_days as i32;
    let mut sec_remainder = round_to_micros(
        (apply(f64::from(v.days)) - f64::from(days) + month_remainder_days
            - f64::from(whole_remainder_days))
            * SECS_PER_DAY as f64,
    );
    if sec_remainder.abs() >= SECS_PER_DAY as f64 {
        let extra = (sec_remainder / SECS_PER_DAY as f64) as i32;
        days = days.checked_add(extra).ok_or_else(out_of_range)?;
        sec_remainder -= f64::from(extra) * SECS_PER_DAY as f64;
    }
    days = days
        .checked_add(whole_remainder_days)
        .ok_or_else(out_of_range)?;
    let micros = (apply(v.micros as f64) + sec_remainder * USECS_PER_SEC as f64).round_ties_even();
    if !micros.is_finite() || micros < i64::MIN as f64 || micros >= -(i64::MIN as f64) {
        return Err(out_of_range());
    }
    Ok(Interval {
        months,
        days,
        micros: micros as i64,
    })
}

/// `justify_hours`: 24-hour periods of the time become days.
fn justify_hours(v: Interval) -> Option<Interval> {
    let whole = i32::try_from(v.micros / USECS_PER_DAY).ok()?;
    let mut micros = v.micros % USECS_PER_DAY;
    let mut days = v.days.checked_add(whole)?;
    if days > 0 && micros < 0 {
        micros += USECS_PER_DAY;
        days -= 1;
    } else if days < 0 && micros > 0 {
        micros -= USECS_PER_DAY;
        days += 1;
    }
    Some(Interval {
        months: v.months,
        days,
        micros,
    })
}

/// `justify_days`: 30-day periods become months.
fn justify_days(v: Interval) -> Option<Interval> {
    let whole = v.days / DAYS_PER_MONTH;
    let mut days = v.days % DAYS_PER_MONTH;
    let mut months = v.months.checked_add(whole)?;
    if months > 0 && days < 0 {
        days += DAYS_PER_MONTH;
        months -= 1;
    } else if months < 0 && days > 0 {
        days -= DAYS_PER_MONTH;
        months += 1;
    }
    Some(Interval {
        months,
        days,
        micros: v.micros,
    })
}

/// `justify_interval`: both, with the signs of all three counts made to agree.
fn justify_interval(v: Interval) -> Option<Interval> {
    let whole_days = i32::try_from(v.micros / USECS_PER_DAY).ok()?;
    let mut micros = v.micros % USECS_PER_DAY;
    let mut days = v.days.checked_add(whole_days)?;
    let whole_months = days / DAYS_PER_MONTH;
    days %= DAYS_PER_MONTH;
    let mut months = v.months.checked_add(whole_months)?;
    if months > 0 && (days < 0 || (days == 0 && micros < 0)) {
        days += DAYS_PER_MONTH;
        months -= 1;
    } else if months < 0 && (days > 0 || (days == 0 && micros > 0)) {
        days -= DAYS_PER_MONTH;
        months += 1;
    }
    if days > 0 && micros < 0 {
        micros += USECS_PER_DAY;
        days -= 1;
    } else if days < 0 && micros > 0 {
        micros -= USECS_PER_DAY;
        days += 1;
    }
    Some(Interval {
        months,
        days,
        micros,
    })
}

/// `make_interval(years, months, weeks, days, hours, mins, secs)`.
fn make_interval(fields: [i32; 6], secs: f64) -> Option<Interval> {
    let [years, months, weeks, days, hours, mins] = fields;
    let months = years.checked_mul(MONTHS_PER_YEAR)?.checked_add(months)?;
    let days = weeks.checked_mul(7)?.checked_add(days)?;
    let micros = (secs * USECS_PER_SEC as f64).round_ties_even();
    if !micros.is_finite() || micros.abs() >= 9.2e18 {
        return None;
    }
    let micros = i64::from(hours)
        .checked_mul(3600 * USECS_PER_SEC)?
        .checked_add(i64::from(mins).checked_mul(60 * USECS_PER_SEC)?)?
        .checked_add(micros as i64)?;
    Some(Interval {
        months,
        days,
        micros,
    })
}

/// `age(a, b)`: `a - b` in years, months and days of the calendar (field by field,
/// borrowing from the next larger field as PostgreSQL's `timestamp_age` does), not in
/// 30-day months.
fn age(a: NaiveDateTime, b: NaiveDateTime) -> Option<Interval> {
    let negative = a < b;
    let fields = |t: &NaiveDateTime| {
        [
            i64::from(t.year()),
            i64::from(t.month()),
            i64::from(t.day()),
            i64::from(t.hour()),
            i64::from(t.minute()),
            i64::from(t.second()),
            i64::from(t.nanosecond() / 1000),
        ]
    };
    let (fa, fb) = (fields(&a), fields(&b));
    let mut d: Vec<i64> = fa.iter().zip(fb.iter()).map(|(x, y)| x - y).collect();
    if negative {
        d.iter_mut().for_each(|x| *x = -*x);
    }
    let [year, month, day, hour, minute, second, usec] = d.as_mut_slice() else {
        return None;
    };
    // The month whose length a negative day count borrows: the earlier timestamp's.
    let borrow_from = if negative { &a } else { &b };
    let borrowed_month_days = days_in_month(borrow_from.year(), borrow_from.month())?;
    while *usec < 0 {
        *usec += USECS_PER_SEC;
        *second -= 1;
    }
    while *second < 0 {
        *second += 60;
        *minute -= 1;
    }
    while *minute < 0 {
        *minute += 60;
        *hour -= 1;
    }
    while *hour < 0 {
        *hour += 24;
        *day -= 1;
    }
    while *day < 0 {
        *day += borrowed_month_days;
        *month -= 1;
    }
    while *month < 0 {
        *month += i64::from(MONTHS_PER_YEAR);
        *year -= 1;
    }
    let sign = if negative { -1 } else { 1 };
    let months = i32::try_from(sign * (*year * i64::from(MONTHS_PER_YEAR) + *month)).ok()?;
    let days = i32::try_from(sign * *day).ok()?;
    let micros = sign * (((*hour * 60 + *minute) * 60 + *second) * USECS_PER_SEC + *usec);
    Some(Interval {
        months,
        days,
        micros,
    })
}

fn days_in_month(year: i32, month: u32) -> Option<i64> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = match month {
        12 => NaiveDate::from_ymd_opt(year + 1, 1, 1)?,
        _ => NaiveDate::from_ymd_opt(year, month + 1, 1)?,
    };
    Some((next - first).num_days())
}

/// `ts AT TIME ZONE zone`: a `timestamp` read as the zone's wall-clock time gives the
/// instant (`timestamptz`); a `timestamptz` gives the zone's wall-clock time then
/// (`timestamp`). Text is read as a `timestamptz`, as PostgreSQL reads an untyped literal.
#[derive(Debug, PartialEq, Eq, Hash)]
struct AtTimeZone {
    signature: Signature,
}

impl AtTimeZone {
    fn new() -> AtTimeZone {
        AtTimeZone {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for AtTimeZone {
    fn name(&self) -> &str {
        "pg_at_time_zone"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let zoned = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
        match arg_types {
            [DataType::Timestamp(_, zone), _] => Ok(vec![
                DataType::Timestamp(TimeUnit::Microsecond, zone.clone()),
                DataType::Utf8,
            ]),
            [DataType::Date32, _] => Ok(vec![zoned, DataType::Utf8]),
            [DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8, _] => {
                Ok(vec![zoned, DataType::Utf8])
            }
            [other, _] => Err(SqlStateError::new(
                "42883",
                format!(
                    "function timezone(text, {}) does not exist",
                    super::types::of_arrow(other).data_type
                ),
            )
            .into()),
            _ => Err(DataFusionError::Plan(
                "AT TIME ZONE takes two operands".into(),
            )),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match arg_types.first() {
            Some(DataType::Timestamp(_, Some(_))) => TIMESTAMP,
            _ => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        on_arrays(&args, at_time_zone)
    }
}

/// `pg_at_time_zone` of timestamps (microseconds, zoned or not) and zone names.
fn at_time_zone(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let zoned_input = matches!(arrays[0].data_type(), DataType::Timestamp(_, Some(_)));
    // Microseconds since the epoch: of the instant, or of the wall-clock time read as UTC.
    let values = timestamps(&arrays[0]);
    let zones = arrays[1].as_string::<i32>();
    let mut last: Option<(String, Tz)> = None;
    let mut out = Vec::with_capacity(values.len());
    for row in 0..values.len() {
        if values.is_null(row) || zones.is_null(row) {
            out.push(None);
            continue;
        }
        let name = zones.value(row);
        let zone = match &last {
            Some((n, z)) if n == name => *z,
            _ => {
                let z = parse_zone(name).ok_or_else(|| {
                    DataFusionError::from(SqlStateError::new(
                        "22023",
                        format!("time zone \"{name}\" not recognized"),
                    ))
                })?;
                last = Some((name.to_owned(), z));
                z
            }
        };
        let micros = values.value(row);
        let utc = DateTime::from_timestamp_micros(micros).ok_or_else(out_of_range)?;
        out.push(Some(match zoned_input {
            // The zone's wall clock at that instant.
            true => utc
                .with_timezone(&zone)
                .naive_local()
                .and_utc()
                .timestamp_micros(),
            // The instant at which the zone's wall clock shows that time.
            false => {
                let local = utc.naive_utc();
                let offset = henge_ingest::value::local_offset(&zone)(local);
                micros - i64::from(offset) * USECS_PER_SEC
            }
        }));
    }
    let array = TimestampMicrosecondArray::from(out);
    let array: ArrayRef = match zoned_input {
        true => Arc::new(array),
        false => Arc::new(array.with_timezone("+00:00")),
    };
    Ok(array)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(text: &str) -> Interval {
        parse_interval(text).unwrap()
    }

    fn show(v: Interval) -> String {
        format_interval(v)
    }

    #[test]
    fn multiplication_and_division_cascade_as_postgresql() {
        // Each answer is PostgreSQL 15's.
        assert_eq!(
            show(scale(iv("1 second"), 900.0, false).unwrap()),
            "00:15:00"
        );
        assert_eq!(show(scale(iv("1 hour"), 3.5, false).unwrap()), "03:30:00");
        assert_eq!(
            show(scale(iv("1 day"), 1.5, false).unwrap()),
            "1 day 12:00:00"
        );
        assert_eq!(
            show(scale(iv("1 month"), 1.5, false).unwrap()),
            "1 mon 15 days"
        );
        assert_eq!(show(scale(iv("1 month"), 2.0, true).unwrap()), "15 days");
        assert_eq!(show(scale(iv("1 day"), 3.0, true).unwrap()), "08:00:00");
        assert_eq!(
            show(scale(iv("3 days"), 2.0, true).unwrap()),
            "1 day 12:00:00"
        );
        assert_eq!(show(scale(iv("1 hour"), 1.5, true).unwrap()), "00:40:00");
        assert_eq!(
            show(scale(iv("3 hours"), -1.0, false).unwrap()),
            "-03:00:00"
        );
        assert!(scale(iv("1 day"), 0.0, true).is_err());
        assert!(scale(iv("1000000 days"), 1e6, false).is_err());
    }

    #[test]
    fn justify_as_postgresql() {
        assert_eq!(show(justify_days(iv("35 days")).unwrap()), "1 mon 5 days");
        assert_eq!(
            show(justify_hours(iv("27 hours")).unwrap()),
            "1 day 03:00:00"
        );
        assert_eq!(
            show(justify_interval(iv("1 mon -1 hour")).unwrap()),
            "29 days 23:00:00"
        );
        assert_eq!(
            show(
                justify_hours(Interval {
                    months: 0,
                    days: 0,
                    micros: -(USECS_PER_DAY + 3_600_000_000)
                })
                .unwrap()
            ),
            "-1 days -01:00:00"
        );
    }

    #[test]
    fn intervals_order_as_postgresql() {
        assert_eq!(order_key(iv("1 day")), order_key(iv("24 hours")));
        assert_eq!(order_key(iv("1 mon")), order_key(iv("30 days")));
        assert!(order_key(iv("25 hours")) > order_key(iv("1 day")));
    }

    #[test]
    fn age_counts_calendar_fields() {
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(
            show(age(at("2001-04-10 00:00:00"), at("1957-06-13 00:00:00")).unwrap()),
            "43 years 9 mons 27 days"
        );
        assert_eq!(
            show(age(at("1957-06-13 00:00:00"), at("2001-04-10 00:00:00")).unwrap()),
            "-43 years -9 mons -27 days"
        );
        assert_eq!(
            show(age(at("2024-03-01 00:00:00"), at("2024-02-28 12:00:00")).unwrap()),
            "1 day 12:00:00"
        );
    }

    #[test]
    fn make_interval_adds_its_fields() {
        assert_eq!(
            show(make_interval([1, 2, 3, 4, 5, 6], 7.5).unwrap()),
            "1 year 2 mons 25 days 05:06:07.5"
        );
        assert!(make_interval([i32::MAX, 0, 0, 0, 0, 0], 0.0).is_none());
    }
}
