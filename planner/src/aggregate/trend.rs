//! Which time-bucket expressions move one way as time grows, so that equal values at both
//! ends of a range of sorted rows mean equal values throughout.

use std::sync::Arc;

use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::sort_properties::SortProperties;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, Literal};
use datafusion::physical_expr::{
    EquivalenceProperties, PhysicalExpr, PhysicalSortExpr, ScalarFunctionExpr,
};

/// Whether `expr`, a function of the time column alone (at `time` in `schema`), never
/// decreases or never increases as time grows: `date_trunc`, `date_bin`, `extract(epoch …)`,
/// `floor`, `ceil`, `round`, order-keeping casts and arithmetic with constants, or what
/// DataFusion's ordering rules tell of other functions.
pub(super) fn monotonic(expr: &Arc<dyn PhysicalExpr>, schema: &SchemaRef, time: usize) -> bool {
    matches!(
        trend(expr, schema, time),
        Trend::Constant | Trend::Up | Trend::Down
    )
}

/// How an expression moves as time grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trend {
    Constant,
    Up,
    Down,
    Unknown,
}

impl Trend {
    fn flip(self) -> Trend {
        match self {
            Trend::Up => Trend::Down,
            Trend::Down => Trend::Up,
            other => other,
        }
    }

    /// The trend of a sum of two expressions with these trends.
    fn plus(self, other: Trend) -> Trend {
        match (self, other) {
            (Trend::Constant, t) | (t, Trend::Constant) => t,
            (a, b) if a == b => a,
            _ => Trend::Unknown,
        }
    }
}

fn trend(expr: &Arc<dyn PhysicalExpr>, schema: &SchemaRef, time: usize) -> Trend {
    if let Some(column) = expr.downcast_ref::<Column>() {
        return match column.index() == time {
            true => Trend::Up,
            false => Trend::Unknown,
        };
    }
    if sign(expr).is_some() {
        return Trend::Constant;
    }
    if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        let keeps_order = cast.cast_type().is_numeric() || cast.cast_type().is_temporal();
        return match keeps_order {
            true => trend(cast.expr(), schema, time),
            false => Trend::Unknown,
        };
    }
    if let Some(binary) = expr.downcast_ref::<BinaryExpr>() {
        return binary_trend(*binary.op(), binary.left(), binary.right(), schema, time);
    }
    if let Some(function) = expr.downcast_ref::<ScalarFunctionExpr>() {
        let args = function.args();
        // PostgreSQL's checked arithmetic (`pg::arith`) moves as the operator does.
        if let (Some(op), [left, right]) = (crate::pg::arith::operator_of(function.name()), args) {
            return binary_trend(op, left, right, schema, time);
        }
        // PostgreSQL's numeric division (`pg::division`).
        if let ("pg_numeric_div", [left, right]) = (function.name(), args) {
            return binary_trend(Operator::Divide, left, right, schema, time);
        }
        // The argument that moves with time; every other one must be constant.
        let moving = |at: usize| {
            let constant = args
                .iter()
                .enumerate()
                .all(|(i, a)| i == at || trend(a, schema, time) == Trend::Constant);
            match (constant, args.get(at)) {
                (true, Some(arg)) => trend(arg, schema, time),
                _ => Trend::Unknown,
            }
        };
        let epoch = args.first().is_some_and(|part| {
            part.downcast_ref::<Literal>().is_some_and(|l| {
                matches!(l.value(), ScalarValue::Utf8(Some(p)) if p.eq_ignore_ascii_case("epoch"))
            })
        });
        match function.name() {
            "floor" | "ceil" | "round" | "trunc" => return moving(0),
            // A float or numeric cast to an integer, rounded (`pg::arith`).
            name if name.starts_with("pg_round_to_") => return moving(0),
            "date_trunc" | "datetrunc" => return moving(1),
            "date_bin" => return moving(1),
            // Druid's buckets (`crate::druid`).
            "time_floor" | "time_ceil" => return moving(0),
            "date_part" | "datepart" | "pg_extract" if epoch => return moving(1),
            _ => {}
        }
    }
    // Anything else: what DataFusion's ordering rules make of it.
    let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(schema.field(time).name(), time));
    let mut properties = EquivalenceProperties::new(schema.clone());
    properties.add_ordering([PhysicalSortExpr::new(column, SortOptions::default())]);
    match properties.get_expr_properties(expr.clone()).sort_properties {
        SortProperties::Ordered(o) if o.descending => Trend::Down,
        SortProperties::Ordered(_) => Trend::Up,
        SortProperties::Singleton => Trend::Constant,
        SortProperties::Unordered => Trend::Unknown,
    }
}

/// How `left op right` moves with time.
fn binary_trend(
    op: Operator,
    left: &Arc<dyn PhysicalExpr>,
    right: &Arc<dyn PhysicalExpr>,
    schema: &SchemaRef,
    time: usize,
) -> Trend {
    let scaled = |t: Trend, sign: Option<std::cmp::Ordering>| match sign {
        Some(std::cmp::Ordering::Greater) => t,
        Some(std::cmp::Ordering::Less) => t.flip(),
        _ => Trend::Unknown,
    };
    match op {
        Operator::Plus => trend(left, schema, time).plus(trend(right, schema, time)),
        Operator::Minus => trend(left, schema, time).plus(trend(right, schema, time).flip()),
        Operator::Multiply => match (sign(left), sign(right)) {
            (Some(s), _) => scaled(trend(right, schema, time), Some(s)),
            (_, Some(s)) => scaled(trend(left, schema, time), Some(s)),
            _ => Trend::Unknown,
        },
        Operator::Divide => scaled(trend(left, schema, time), sign(right)),
        _ => Trend::Unknown,
    }
}

/// The sign of a constant number (a literal, possibly cast), `None` when `expr` is not one.
fn sign(expr: &Arc<dyn PhysicalExpr>) -> Option<std::cmp::Ordering> {
    if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        return sign(cast.expr());
    }
    let value = expr.downcast_ref::<Literal>()?.value();
    if value.is_null() {
        return None;
    }
    let zero = ScalarValue::new_zero(&value.data_type()).ok()?;
    value.partial_cmp(&zero)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::common::DFSchema;
    use datafusion::prelude::SessionContext;

    /// The physical form of `sql`, an expression over a table of `(ts timestamp, n bigint)`.
    fn physical(sql: &str) -> (Arc<dyn PhysicalExpr>, SchemaRef) {
        planned(sql, false)
    }

    /// `physical` of `sql` after Henge's checked arithmetic replaced its operators and
    /// integer casts (`pg::arith`).
    fn physical_checked(sql: &str) -> (Arc<dyn PhysicalExpr>, SchemaRef) {
        planned(sql, true)
    }

    fn planned(sql: &str, checked: bool) -> (Arc<dyn PhysicalExpr>, SchemaRef) {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
            Field::new("n", DataType::Int64, true),
        ]));
        let context = SessionContext::new();
        crate::druid::register(&context);
        let df_schema = DFSchema::try_from(schema.as_ref().clone()).unwrap();
        let mut expr = context.parse_sql_expr(sql, &df_schema).unwrap();
        if checked {
            expr = crate::pg::arith::checked(expr, &df_schema).unwrap();
            assert!(
                expr.to_string().contains("pg_"),
                "{sql} was not replaced: {expr}"
            );
        }
        let expr = context.create_physical_expr(expr, &df_schema).unwrap();
        (expr, schema)
    }

    #[test]
    fn checked_arithmetic_keeps_time_order() {
        for bucket in [
            "floor(extract(epoch from ts) / 60.0) * 60.0",
            "CAST(floor(extract(epoch from ts) / 60.0) AS bigint) * CAST(60 AS bigint)",
            "CAST(extract(epoch from ts) AS bigint) / CAST(600 AS bigint)",
        ] {
            let (expr, schema) = physical_checked(bucket);
            assert!(monotonic(&expr, &schema, 0), "{bucket}: {expr}");
        }
        let (expr, schema) = physical_checked("extract(epoch from ts) * extract(epoch from ts)");
        assert!(!monotonic(&expr, &schema, 0), "{expr}");
    }

    #[test]
    fn time_buckets_are_monotonic_in_time() {
        for bucket in [
            "date_trunc('month', ts)",
            "date_bin(INTERVAL '15 minutes', ts, TIMESTAMP '2024-01-01 00:00:00')",
            "floor(extract(epoch from ts) / 60) * 60",
            "floor(extract(epoch from ts) / 86400.0) * 86400",
            "extract(epoch from ts)",
            "time_floor(ts, 'PT5M')",
            "time_ceil(ts, 'P1D', NULL, 'America/Los_Angeles')",
        ] {
            let (expr, schema) = physical(bucket);
            assert!(monotonic(&expr, &schema, 0), "{bucket}: {expr}");
        }
        // Decreasing is as good as increasing: equal ends, equal throughout.
        let (expr, schema) = physical("floor(extract(epoch from ts) / -60)");
        assert!(monotonic(&expr, &schema, 0), "{expr}");
        for other in [
            "extract(minute from ts)",
            "extract(epoch from ts) % 60",
            "extract(epoch from ts) * extract(epoch from ts)",
            "60 / extract(epoch from ts)",
            "extract(epoch from ts) / n",
            "date_trunc('hour', ts) - date_trunc('minute', ts)",
            "to_char(ts, 'YYYY-MM')",
        ] {
            let (expr, schema) = physical(other);
            assert!(!monotonic(&expr, &schema, 0), "{other}: {expr}");
        }
    }
}
