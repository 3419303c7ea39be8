//! PostgreSQL's `uuid` type: text in the standard form ([`henge_ingest::uuid`]) with the
//! extension type `henge.uuid` on its field, so the wire sends it as `uuid` (OID 2950, 16
//! bytes in binary) and `pg_typeof` names it. Casts to `uuid` read text with PostgreSQL's
//! rules; a uuid compared with untyped text or a parameter reads that as a uuid first, and
//! with a value of another type is refused (42883), as in PostgreSQL.
//! `gen_random_uuid()` makes version 4 uuids.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;
use henge_storage::schema::{EXTENSION_NAME_KEY, UUID_EXTENSION};

use super::SqlStateError;

/// A field holding uuids.
pub fn field(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true).with_metadata(HashMap::from([(
        EXTENSION_NAME_KEY.to_owned(),
        UUID_EXTENSION.to_owned(),
    )]))
}

/// Whether a field holds uuids.
pub fn is_uuid(field: &Field) -> bool {
    super::types::extension(field) == Some(UUID_EXTENSION)
}

pub(crate) fn expr_is_uuid(expr: &Expr, schema: &DFSchema) -> bool {
    expr.to_field(schema).is_ok_and(|(_, f)| is_uuid(&f))
}

/// Text or a parameter, whose type the other operand decides.
pub(crate) fn untyped(expr: &Expr) -> bool {
    matches!(
        expr,
        Expr::Literal(ScalarValue::Utf8(_) | ScalarValue::Null, _) | Expr::Placeholder(_)
    )
}

/// `uuid`'s input function applied to text.
pub fn input(expr: Expr) -> Expr {
    Function::In.call(vec![expr])
}

/// Compares uuids with each other, and with untyped text read as a uuid.
#[derive(Debug)]
pub struct PgUuidOperators;

impl ExprPlanner for PgUuidOperators {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let comparison = matches!(
            expr.op,
            BinaryOperator::Eq
                | BinaryOperator::NotEq
                | BinaryOperator::Lt
                | BinaryOperator::LtEq
                | BinaryOperator::Gt
                | BinaryOperator::GtEq
        );
        let (left, right) = (
            expr_is_uuid(&expr.left, schema),
            expr_is_uuid(&expr.right, schema),
        );
        if !comparison || !(left || right) {
            return Ok(PlannerResult::Original(expr));
        }
        let RawBinaryExpr {
            op,
            left: l,
            right: r,
        } = expr;
        let operand = |e: Expr, is_uuid: bool| -> Result<Expr> {
            match (is_uuid, untyped(&e)) {
                (true, _) => Ok(e),
                (false, true) => Ok(input(e)),
                (false, false) => Err(mismatch(&op, &e, schema)),
            }
        };
        let (l, r) = (operand(l, left)?, operand(r, right)?);
        Ok(PlannerResult::Original(RawBinaryExpr {
            op,
            left: l,
            right: r,
        }))
    }
}

fn mismatch(op: &BinaryOperator, other: &Expr, schema: &DFSchema) -> DataFusionError {
    let other = other
        .get_type(schema)
        .map(|t| super::types::of_arrow(&t).data_type)
        .unwrap_or_else(|_| "unknown".into());
    SqlStateError::new(
        "42883",
        format!("operator does not exist: uuid {op} {other}"),
    )
    .into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Function {
    /// Text to a uuid in standard form.
    In,
    /// `gen_random_uuid()`.
    Random,
}

impl Function {
    fn call(self, args: Vec<Expr>) -> Expr {
        Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(self.udf()), args))
    }

    fn udf(self) -> ScalarUDF {
        let signature = match self {
            Function::In => Signature::any(1, Volatility::Immutable),
            Function::Random => Signature::nullary(Volatility::Volatile),
        };
        ScalarUDF::new_from_impl(UuidFunction {
            function: self,
            signature,
        })
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct UuidFunction {
    function: Function,
    signature: Signature,
}

impl ScalarUDFImpl for UuidFunction {
    fn name(&self) -> &str {
        match self.function {
            Function::In => "pg_uuid_in",
            Function::Random => "gen_random_uuid",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, _args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(Arc::new(field(self.name())))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match self.function {
            Function::Random => {
                let values: StringArray = (0..args.number_rows)
                    .map(|_| Some(uuid::Uuid::new_v4().hyphenated().to_string()))
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(values)))
            }
            Function::In => super::on_arrays(&args, |arrays| {
                let text = datafusion::arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
                let out = text
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.map(henge_ingest::uuid::uuid_in).transpose())
                    .collect::<Result<StringArray, _>>()
                    .map_err(|e| {
                        DataFusionError::External(Box::new(henge_ingest::Error::from(e)))
                    })?;
                Ok(Arc::new(out) as ArrayRef)
            }),
        }
    }
}

/// `CAST(x AS uuid)`: text read as a uuid; other types cannot be cast (42846).
pub fn cast(inner: Expr, from: &DataType) -> Result<Expr> {
    match from {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
            Ok(input(inner))
        }
        other => Err(SqlStateError::new(
            "42846",
            format!(
                "cannot cast type {} to uuid",
                super::types::of_arrow(other).data_type
            ),
        )
        .into()),
    }
}

/// Registers `gen_random_uuid()`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(Function::Random.udf());
}
