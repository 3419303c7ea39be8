//! PostgreSQL's names for the types of result columns, for catalogs that report them;
//! and the types DataFusion has no type of its own for: [`PgTypes`] plans their names
//! (`json`, `jsonb`, `uuid`, `numeric` without a scale) and [`PgCasts`] gives casts to
//! them PostgreSQL's meaning.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::DFSchema;
use datafusion::error::Result;
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, Operator, Values};
use datafusion::optimizer::AnalyzerRule;
use datafusion::sql::sqlparser::ast::{self, ExactNumberInfo};
use henge_storage::schema::{
    BPCHAR_EXTENSION, EXTENSION_NAME_KEY, JSONB_EXTENSION, JSON_EXTENSION, NAME_EXTENSION,
    REGCLASS_EXTENSION, UUID_EXTENSION, VARCHAR_EXTENSION, VOID_EXTENSION,
};
use henge_storage::ColumnType;

/// Plans the type names DataFusion does not know (`json`, `jsonb`, `uuid`) or knows
/// otherwise (`numeric` without a scale, see [`super::numeric`]), and hands the others to
/// the type planner that was there before (the catalog library's, for `regclass` and
/// friends): a session has one.
#[derive(Debug)]
pub struct PgTypes {
    pub others: Option<Arc<dyn TypePlanner>>,
    /// The session's parameters: `timestamptz` is in its `TimeZone`.
    pub settings: Arc<super::Settings>,
}

impl TypePlanner for PgTypes {
    fn plan_type_field(&self, sql_type: &ast::DataType) -> Result<Option<FieldRef>> {
        use super::json::JsonType;
        match sql_type {
            ast::DataType::JSON => Ok(Some(Arc::new(JsonType::Json.field("")))),
            ast::DataType::JSONB => Ok(Some(Arc::new(JsonType::Jsonb.field("")))),
            ast::DataType::Uuid => Ok(Some(Arc::new(super::uuid::field("")))),
            ast::DataType::Numeric(ExactNumberInfo::None)
            | ast::DataType::Decimal(ExactNumberInfo::None) => {
                Ok(Some(Arc::new(super::numeric::unconstrained_field())))
            }
            // PostgreSQL's timestamps are microseconds, from 4713 BC to 294276 AD;
            // DataFusion's default nanoseconds only reach 1677 to 2262.
            ast::DataType::Timestamp(None | Some(6), zone) => {
                let zone = match zone {
                    ast::TimezoneInfo::None | ast::TimezoneInfo::WithoutTimeZone => None,
                    ast::TimezoneInfo::WithTimeZone | ast::TimezoneInfo::Tz => {
                        Some(self.settings.time_zone_name().into())
                    }
                };
                let ty = DataType::Timestamp(TimeUnit::Microsecond, zone);
                Ok(Some(Arc::new(Field::new("", ty, true))))
            }
            other => match &self.others {
                Some(others) => others.plan_type_field(other),
                None => Ok(None),
            },
        }
    }
}

/// Gives the types of [`PgTypes`] PostgreSQL's meaning in a plan: doubles and numerics
/// meeting in one result are doubles ([`super::unify`]), casts to `numeric` without a
/// scale keep their value's scale, casts to `json`, `jsonb` and `uuid` become
/// their input functions, casts between `bytea` and text go through bytea's text form, and JSON values are not ordered (see [`super::json::typed`]).
/// A cast's type may change here, so every node's schema is computed again.
#[derive(Debug)]
pub struct PgCasts;

impl AnalyzerRule for PgCasts {
    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        let zone = config
            .execution
            .time_zone
            .clone()
            .unwrap_or_else(|| "+00:00".into());
        plan.transform_up_with_subqueries(|plan| {
            let mut schema = DFSchema::empty();
            for input in plan.inputs() {
                schema.merge(input.schema());
            }
            super::json::check_plan(&plan, &schema)?;
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let saved = names.save(&expr);
                let expr = expr.transform_up(|e| {
                    super::json::check_expr(&e, &schema)?;
                    if let Expr::ScalarSubquery(_) = &e {
                        if !e.nullable(&schema).unwrap_or(true) {
                            return Ok(Transformed::yes(super::subquery::nullable(e)));
                        }
                    }
                    if let Some(truncated) = super::datetime::date_trunc_of_date(&e, &schema, &zone)
                    {
                        return Ok(Transformed::yes(truncated));
                    }
                    if let Some(sum) = super::checked_sum::numeric_sum(&e, &schema) {
                        return Ok(Transformed::yes(sum));
                    }
                    // A quotient whose operand became a numeric here (`sum(bigint) / 3`)
                    // divides as numerics do.
                    if let Expr::BinaryExpr(b) = &e {
                        if b.op == Operator::Divide {
                            let (left, right) =
                                (b.left.get_type(&schema), b.right.get_type(&schema));
                            if let (Ok(l), Ok(r)) = (left, right) {
                                if let Some(q) = super::division::plan(&b.left, &l, &b.right, &r) {
                                    return Ok(Transformed::yes(q));
                                }
                            }
                        }
                    }
                    if let Some(unified) = super::unify::expr(&e, &schema) {
                        return Ok(Transformed::yes(unified));
                    }
                    if let Some(cast) = super::arrays::cast(&e, &schema) {
                        return Ok(Transformed::yes(cast));
                    }
                    if let Some(cast) = super::encoding::cast(&e, &schema) {
                        return Ok(Transformed::yes(cast));
                    }
                    match super::numeric::cast(&e, |inner| inner.get_type(&schema).ok()) {
                        Some(cast) => Ok(Transformed::yes(cast)),
                        None => super::json::typed(e, &schema),
                    }
                })?;
                Ok(expr.update_data(|e| saved.restore(e)))
            })?
            .map_data(|plan| match plan {
                LogicalPlan::Values(values) => values_typed(values),
                LogicalPlan::Union(_) => super::unify::union(plan),
                LogicalPlan::Join(_) => super::unify::join(plan),
                plan => plan.recompute_schema(),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "pg_casts"
    }
}

/// In a VALUES list, a column that one row casts to a type Henge marks on its fields
/// (`json`, `jsonb`, `uuid`, `numeric` without a scale) has that type in every row, as
/// PostgreSQL resolves a VALUES column to one type: the other rows' constants are cast too
/// (DataFusion requires the rows' field metadata to agree).
pub fn cast_values_alike(values: &mut ast::Values) {
    let marked = |t: &ast::DataType| {
        matches!(
            t,
            ast::DataType::JSON
                | ast::DataType::JSONB
                | ast::DataType::Uuid
                | ast::DataType::Numeric(ExactNumberInfo::None)
                | ast::DataType::Decimal(ExactNumberInfo::None)
        )
    };
    let width = values.rows.first().map_or(0, |r| r.content.len());
    for column in 0..width {
        let cast = values
            .rows
            .iter()
            .find_map(|row| match row.content.get(column) {
                Some(ast::Expr::Cast { data_type, .. }) if marked(data_type) => {
                    Some(data_type.clone())
                }
                _ => None,
            });
        let Some(data_type) = cast else {
            continue;
        };
        // Numerics beside doubles (or reals) are doubles (or reals) in PostgreSQL.
        let numeric = matches!(
            data_type,
            ast::DataType::Numeric(_) | ast::DataType::Decimal(_)
        );
        let float = floating_cast(values, column);
        if let (true, Some(float)) = (numeric, float) {
            for row in &mut values.rows {
                if let Some(ast::Expr::Cast { data_type: t, .. }) = row.content.get_mut(column) {
                    if *t == data_type {
                        *t = float.clone();
                    }
                }
            }
            continue;
        }
        for row in &mut values.rows {
            let Some(value) = row.content.get_mut(column) else {
                continue;
            };
            // Only constants take the column's type, as PostgreSQL's unknown literals do;
            // a value of a type of its own (`1e30::float8`) keeps it and meets the
            // others' type as PostgreSQL resolves it.
            if matches!(value, ast::Expr::Value(_)) {
                let inner = std::mem::replace(value, ast::Expr::value(ast::Value::Null));
                *value = ast::Expr::Cast {
                    kind: ast::CastKind::DoubleColon,
                    expr: Box::new(inner),
                    data_type: data_type.clone(),
                    array: false,
                    format: None,
                };
            }
        }
    }
}

/// The floating-point type a VALUES column's rows are cast to, if any: double precision
/// where one is, else real.
fn floating_cast(values: &ast::Values, column: usize) -> Option<ast::DataType> {
    let mut found = None;
    for row in &values.rows {
        if let Some(ast::Expr::Cast { data_type, .. }) = row.content.get(column) {
            match data_type {
                ast::DataType::Real | ast::DataType::Float4 if found.is_none() => {
                    found = Some(ast::DataType::Real)
                }
                ast::DataType::DoublePrecision
                | ast::DataType::Double(_)
                | ast::DataType::Float8
                | ast::DataType::Float(_)
                | ast::DataType::Float64 => found = Some(ast::DataType::DoublePrecision),
                _ => {}
            }
        }
    }
    found
}

/// VALUES whose columns of unconstrained numeric casts take the widest scale of their
/// rows (each row cast to it); the other columns keep their types.
fn values_typed(values: Values) -> Result<LogicalPlan> {
    let empty = DFSchema::empty();
    let width = values.schema.fields().len();
    // A column of doubles and numerics is one of doubles, as in PostgreSQL; DataFusion
    // cast every row to a 15-place decimal (the rows' casts to the column type are
    // looked through).
    let floats: Vec<Option<DataType>> = (0..width)
        .map(|i| {
            let column = values.schema.field(i).data_type();
            let types: Vec<DataType> = values
                .values
                .iter()
                .filter_map(|row| unwrapped(&row[i], column).get_type(&empty).ok())
                .collect();
            super::unify::floating(&types)
        })
        .collect();
    let mut values = values;
    if floats.iter().any(Option::is_some) {
        for row in &mut values.values {
            for (e, float) in row.iter_mut().zip(&floats) {
                if let Some(to) = float {
                    let column = e.get_type(&empty)?;
                    *e = unwrapped(e, &column).clone().cast_to(to, &empty)?;
                }
            }
        }
    }
    let mut types: Vec<DataType> = Vec::with_capacity(width);
    for (i, field) in values.schema.fields().iter().enumerate() {
        if let Some(to) = &floats[i] {
            types.push(to.clone());
            continue;
        }
        if !super::numeric::is_unconstrained(field) {
            types.push(field.data_type().clone());
            continue;
        }
        let mut column: Option<DataType> = None;
        for row in &values.values {
            let t = row[i].get_type(&empty)?;
            column = Some(match (column, t) {
                (None, t) => t,
                (Some(DataType::Decimal128(_, a)), DataType::Decimal128(_, b)) => {
                    DataType::Decimal128(38, a.max(b))
                }
                (Some(a), b) if a == b || b == DataType::Null => a,
                (Some(DataType::Null), b) => b,
                (Some(_), _) => field.data_type().clone(),
            });
        }
        types.push(column.unwrap_or_else(|| field.data_type().clone()));
    }
    let rows = values
        .values
        .into_iter()
        .map(|row| {
            row.into_iter()
                .zip(&types)
                .map(|(e, t)| match e.get_type(&empty) {
                    Ok(have) if &have == t => Ok(e),
                    _ => e.cast_to(t, &empty),
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<Vec<_>>>()?;
    let fields: Vec<(Option<datafusion::common::TableReference>, Arc<Field>)> = values
        .schema
        .iter()
        .zip(&types)
        .map(|((q, f), t)| {
            let field = match super::numeric::is_unconstrained(f) || f.data_type() != t {
                true => Field::new(f.name(), t.clone(), f.is_nullable()),
                false => f.as_ref().clone(),
            };
            (q.cloned(), Arc::new(field))
        })
        .collect();
    let schema = DFSchema::new_with_metadata(fields, values.schema.metadata().clone())?;
    Ok(LogicalPlan::Values(Values {
        schema: Arc::new(schema),
        values: rows,
    }))
}

/// A VALUES row's expression without the cast to its column's type that planning added.
fn unwrapped<'a>(e: &'a Expr, column: &DataType) -> &'a Expr {
    match e {
        Expr::Cast(Cast { expr, field }) if field.data_type() == column => expr,
        other => other,
    }
}

/// How `information_schema.columns` describes a column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeInfo {
    /// SQL's name (`bigint`, `timestamp without time zone`, `ARRAY` …).
    pub data_type: String,
    /// The type's name in `pg_type` (`int8`, `timestamp`, `_text` …).
    pub udt_name: String,
    pub character_maximum_length: Option<i32>,
    pub numeric_precision: Option<i32>,
    pub numeric_precision_radix: Option<i32>,
    pub numeric_scale: Option<i32>,
    pub datetime_precision: Option<i32>,
}

impl TypeInfo {
    fn named(data_type: &str, udt_name: &str) -> TypeInfo {
        TypeInfo {
            data_type: data_type.to_owned(),
            udt_name: udt_name.to_owned(),
            character_maximum_length: None,
            numeric_precision: None,
            numeric_precision_radix: None,
            numeric_scale: None,
            datetime_precision: None,
        }
    }

    fn number(data_type: &str, udt_name: &str, precision: i32, radix: i32) -> TypeInfo {
        TypeInfo {
            numeric_precision: Some(precision),
            numeric_precision_radix: Some(radix),
            // Integers have scale 0; floating-point types none.
            numeric_scale: (radix == 10 || udt_name.starts_with("int")).then_some(0),
            ..TypeInfo::named(data_type, udt_name)
        }
    }

    fn timestamp(data_type: &str, udt_name: &str) -> TypeInfo {
        TypeInfo {
            datetime_precision: Some(6),
            ..TypeInfo::named(data_type, udt_name)
        }
    }
}

/// A Henge column's type, with its declared length or precision.
pub fn of_column(ty: &ColumnType) -> TypeInfo {
    match ty {
        ColumnType::Varchar { max_len } => TypeInfo {
            character_maximum_length: max_len.map(|n| n as i32),
            ..TypeInfo::named("character varying", "varchar")
        },
        ColumnType::Json => TypeInfo::named("json", "json"),
        ColumnType::Jsonb => TypeInfo::named("jsonb", "jsonb"),
        ColumnType::Uuid => TypeInfo::named("uuid", "uuid"),
        ColumnType::NumericUnconstrained => TypeInfo {
            numeric_precision_radix: Some(10),
            ..TypeInfo::named("numeric", "numeric")
        },
        other => of_arrow(&other.arrow_type()),
    }
}

/// A Henge column's `pg_type` OID and type modifier, as `pg_attribute` records them
/// (`varchar(n)`: n + 4; `numeric(p,s)`: (p << 16 | s) + 4; otherwise -1).
pub fn pg_attribute_type(ty: &ColumnType) -> (i32, i32) {
    match ty {
        ColumnType::Boolean => (16, -1),
        ColumnType::SmallInt => (21, -1),
        ColumnType::Integer => (23, -1),
        ColumnType::BigInt => (20, -1),
        ColumnType::Real => (700, -1),
        ColumnType::Double => (701, -1),
        ColumnType::Numeric { precision, scale } => (
            1700,
            ((i32::from(*precision) << 16) | (i32::from(*scale) & 0xffff)) + 4,
        ),
        ColumnType::NumericUnconstrained => (1700, -1),
        ColumnType::Text => (25, -1),
        ColumnType::Varchar { max_len } => (1043, max_len.map_or(-1, |n| n as i32 + 4)),
        ColumnType::Date => (1082, -1),
        ColumnType::Timestamp => (1114, -1),
        ColumnType::TimestampTz => (1184, -1),
        ColumnType::Bytea => (17, -1),
        ColumnType::Json => (114, -1),
        ColumnType::Jsonb => (3802, -1),
        ColumnType::Uuid => (2950, -1),
    }
}

/// The PostgreSQL type of a result column: its field's extension type (`json`, `jsonb`)
/// where it has one, else its Arrow type's.
pub fn of_field(field: &Field) -> TypeInfo {
    match extension(field) {
        Some(JSON_EXTENSION) => TypeInfo::named("json", "json"),
        Some(JSONB_EXTENSION) => TypeInfo::named("jsonb", "jsonb"),
        Some(UUID_EXTENSION) => TypeInfo::named("uuid", "uuid"),
        Some(VOID_EXTENSION) => TypeInfo::named("void", "void"),
        Some(REGCLASS_EXTENSION) => TypeInfo::named("regclass", "regclass"),
        Some(NAME_EXTENSION) => TypeInfo::named("name", "name"),
        Some(VARCHAR_EXTENSION) => TypeInfo::named("character varying", "varchar"),
        Some(BPCHAR_EXTENSION) => TypeInfo::named("character", "bpchar"),
        _ => of_arrow(field.data_type()),
    }
}

/// Whether a field holds text of a character type (`text`, `varchar`, `char`), not text
/// standing for another type (`json`, `uuid`).
pub fn is_text(field: &Field) -> bool {
    matches!(
        extension(field),
        None | Some(VARCHAR_EXTENSION | BPCHAR_EXTENSION)
    ) && matches!(
        field.data_type(),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
    )
}

/// The Arrow extension type a field's metadata names.
pub fn extension(field: &Field) -> Option<&str> {
    field.metadata().get(EXTENSION_NAME_KEY).map(String::as_str)
}

/// The PostgreSQL type an Arrow type is sent to clients as.
pub fn of_arrow(data_type: &DataType) -> TypeInfo {
    match data_type {
        DataType::Boolean => TypeInfo::named("boolean", "bool"),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => {
            TypeInfo::number("smallint", "int2", 16, 2)
        }
        DataType::Int32 | DataType::UInt16 => TypeInfo::number("integer", "int4", 32, 2),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => {
            TypeInfo::number("bigint", "int8", 64, 2)
        }
        DataType::Float16 | DataType::Float32 => TypeInfo {
            numeric_scale: None,
            ..TypeInfo::number("real", "float4", 24, 2)
        },
        DataType::Float64 => TypeInfo {
            numeric_scale: None,
            ..TypeInfo::number("double precision", "float8", 53, 2)
        },
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => TypeInfo {
            numeric_precision: Some(*p as i32),
            numeric_precision_radix: Some(10),
            numeric_scale: Some(*s as i32),
            ..TypeInfo::named("numeric", "numeric")
        },
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            TypeInfo::named("text", "text")
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => TypeInfo::named("bytea", "bytea"),
        DataType::Date32 | DataType::Date64 => TypeInfo {
            datetime_precision: Some(0),
            ..TypeInfo::named("date", "date")
        },
        DataType::Time32(_) | DataType::Time64(_) => {
            TypeInfo::timestamp("time without time zone", "time")
        }
        DataType::Timestamp(_, None) => {
            TypeInfo::timestamp("timestamp without time zone", "timestamp")
        }
        DataType::Timestamp(_, Some(_)) => {
            TypeInfo::timestamp("timestamp with time zone", "timestamptz")
        }
        DataType::Interval(_) | DataType::Duration(_) => {
            TypeInfo::timestamp("interval", "interval")
        }
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            let inner = of_arrow(item.data_type());
            TypeInfo::named("ARRAY", &format!("_{}", inner.udt_name))
        }
        DataType::Null => TypeInfo::named("text", "text"),
        DataType::Dictionary(_, value) => of_arrow(value),
        _ => TypeInfo::named("USER-DEFINED", "text"),
    }
}

/// PostgreSQL's check of an `INSERT … SELECT`'s columns against the table's: a value of a
/// type with no assignment cast to the column's type (an integer into a boolean, a boolean
/// into a number, a number into a date, a text column into an integer) is 42804, where
/// DataFusion would cast it. A constant string in the select list is an unknown-typed
/// constant in PostgreSQL, read by the column type's input function: allowed.
pub fn check_insert_assignments(plan: &LogicalPlan) -> Result<()> {
    use datafusion::logical_expr::{DmlStatement, WriteOp};
    let LogicalPlan::Dml(DmlStatement {
        op: WriteOp::Insert(_),
        input,
        ..
    }) = plan
    else {
        return Ok(());
    };
    let LogicalPlan::Projection(projection) = input.as_ref() else {
        return Ok(());
    };
    let source = projection.input.as_ref();
    #[derive(PartialEq)]
    enum Kind {
        Bool,
        Number,
        DateTime,
        Text,
        Other,
    }
    let kind = |t: &DataType| match t {
        DataType::Boolean => Kind::Bool,
        t if t.is_numeric() => Kind::Number,
        DataType::Date32 | DataType::Timestamp(..) | DataType::Time64(_) => Kind::DateTime,
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => Kind::Text,
        _ => Kind::Other,
    };
    for (expr, field) in projection.expr.iter().zip(projection.schema.fields()) {
        let inner = match expr {
            Expr::Alias(alias) => alias.expr.as_ref(),
            other => other,
        };
        let Expr::Cast(Cast { expr: value, .. }) = inner else {
            continue;
        };
        let Ok(given) = value.get_type(source.schema()) else {
            continue;
        };
        let (from, to) = (kind(&given), kind(field.data_type()));
        let refused = match (&from, &to) {
            (Kind::Bool, Kind::Number | Kind::DateTime)
            | (Kind::Number, Kind::Bool | Kind::DateTime)
            | (Kind::DateTime, Kind::Bool | Kind::Number) => true,
            // Text into another type: refused unless the select list's own constant.
            (Kind::Text, Kind::Bool | Kind::Number | Kind::DateTime) => {
                !select_list_constant(value, source)
            }
            _ => false,
        };
        if refused {
            return Err(super::SqlStateError::new(
                "42804",
                format!(
                    "column \"{}\" is of type {} but expression is of type {}",
                    field.name(),
                    of_arrow(field.data_type()).data_type,
                    of_arrow(&given).data_type
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// Whether `value` is a string constant of the select list below (or itself one).
fn select_list_constant(value: &Expr, source: &LogicalPlan) -> bool {
    let unaliased = |e: &Expr| match e {
        Expr::Alias(alias) => matches!(alias.expr.as_ref(), Expr::Literal(..)),
        e => matches!(e, Expr::Literal(..)),
    };
    match (value, source) {
        (Expr::Literal(..), _) => true,
        (Expr::Column(column), LogicalPlan::Projection(p)) => p
            .schema
            .index_of_column(column)
            .ok()
            .and_then(|i| p.expr.get(i))
            .is_some_and(unaliased),
        _ => false,
    }
}

/// Types the parameters of `LIMIT $n` and `OFFSET $n` as PostgreSQL does, `bigint`
/// (DataFusion leaves them untyped, and a client is then asked for text).
pub fn type_limit_parameters(plan: LogicalPlan) -> Result<LogicalPlan> {
    // DataFusion's type coercion may have put the parameter inside a cast to bigint.
    let typed = |expr: Option<Box<Expr>>| -> Result<(Option<Box<Expr>>, bool)> {
        let Some(expr) = expr else {
            return Ok((None, false));
        };
        let typed = (*expr).transform_up(|e| match e {
            Expr::Placeholder(mut p) if p.field.is_none() => {
                p.field = Some(Arc::new(Field::new("", DataType::Int64, true)));
                Ok(Transformed::yes(Expr::Placeholder(p)))
            }
            // The cast is of nothing now: the parameter is a bigint (and a prepared plan
            // optimized before its parameters are known has its limit as a constant).
            Expr::Cast(Cast { expr, field })
                if *field.data_type() == DataType::Int64
                    && matches!(&*expr, Expr::Placeholder(p)
                        if p.field.as_ref().is_some_and(|f| *f.data_type() == DataType::Int64)) =>
            {
                Ok(Transformed::yes(*expr))
            }
            other => Ok(Transformed::no(other)),
        })?;
        Ok((Some(Box::new(typed.data)), typed.transformed))
    };
    plan.transform_up_with_subqueries(|node| match node {
        LogicalPlan::Limit(mut limit) => {
            let (skip, skip_typed) = typed(limit.skip.take())?;
            let (fetch, fetch_typed) = typed(limit.fetch.take())?;
            limit.skip = skip;
            limit.fetch = fetch;
            let node = LogicalPlan::Limit(limit);
            Ok(match skip_typed || fetch_typed {
                true => Transformed::yes(node),
                false => Transformed::no(node),
            })
        }
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::TimeUnit;

    #[test]
    fn names_follow_postgresql() {
        assert_eq!(of_arrow(&DataType::Int64).data_type, "bigint");
        assert_eq!(of_arrow(&DataType::Int64).numeric_scale, Some(0));
        assert_eq!(of_arrow(&DataType::Int32).numeric_scale, Some(0));
        assert_eq!(of_arrow(&DataType::Float64).numeric_scale, None);
        assert_eq!(
            of_arrow(&DataType::Timestamp(TimeUnit::Microsecond, None)).data_type,
            "timestamp without time zone"
        );
        let tz = of_arrow(&DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("+00:00".into()),
        ));
        assert_eq!(
            (tz.data_type.as_str(), tz.udt_name.as_str()),
            ("timestamp with time zone", "timestamptz")
        );
        let numeric = of_column(&ColumnType::Numeric {
            precision: 12,
            scale: 2,
        });
        assert_eq!(
            (numeric.numeric_precision, numeric.numeric_scale),
            (Some(12), Some(2))
        );
        let varchar = of_column(&ColumnType::Varchar { max_len: Some(20) });
        assert_eq!(varchar.data_type, "character varying");
        assert_eq!(varchar.character_maximum_length, Some(20));
    }
}
