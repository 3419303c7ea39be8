//! DELETE and UPDATE as a [`Rewrite`] of stored rows: the statement's WHERE and SET
//! expressions, planned by DataFusion with Henge's rules like any query's, evaluated on each
//! batch of a segment the ingest engine rewrites ([`henge_ingest::rewrite`]).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int16Array, RecordBatch};
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::compute::{filter_record_batch, not, prep_null_mask_filter};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Int64Type};
use datafusion::common::{DFSchema, ParamValues};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_expr::PhysicalExpr;
use henge_storage::schema::{scale_column, DEFAULT_NUMERIC, ROWS_COLUMN};
use henge_storage::ColumnType;
use henge_storage::TableDef;

/// Which rows a statement touches and what it sets in them.
#[derive(Debug)]
pub struct RowChange {
    def: Arc<TableDef>,
    /// `None`: every row (TRUNCATE, a DELETE without WHERE).
    predicate: Option<Arc<dyn PhysicalExpr>>,
    /// Column positions and their new values (UPDATE); none for a DELETE.
    assignments: Vec<(usize, Arc<dyn PhysicalExpr>)>,
    /// For each assignment to an unconstrained numeric whose value is computed from
    /// values with scales of their own (`x * 2`), the scale PostgreSQL gives each result,
    /// over the stored rows (hidden scale columns included).
    scales: Vec<Option<Arc<dyn PhysicalExpr>>>,
}

impl RowChange {
    /// Every row deleted.
    pub fn all(def: Arc<TableDef>) -> RowChange {
        RowChange {
            def,
            predicate: None,
            assignments: Vec::new(),
            scales: Vec::new(),
        }
    }

    /// Plans `SELECT <where>, <value>… FROM <table>` (the statement's expressions, each
    /// value already cast to its column's type), its parameters bound, and compiles its
    /// expressions: the first is the predicate unless `filtered` is false, the rest are the
    /// values of the columns at `columns`.
    pub async fn plan(
        ctx: &SessionContext,
        def: Arc<TableDef>,
        sql: &str,
        params: Option<ParamValues>,
        filtered: bool,
        columns: Vec<usize>,
    ) -> Result<RowChange> {
        let state = ctx.state();
        let plan = state.create_logical_plan(sql).await?;
        let plan = match params {
            Some(params) => plan.with_param_values(params)?,
            None => plan,
        };
        let plan = state
            .analyzer()
            .execute_and_check(plan, state.config_options(), |_, _| {})?;
        let LogicalPlan::Projection(projection) = &plan else {
            return Err(DataFusionError::Plan(format!(
                "expected a projection, planned {}",
                plan.display()
            )));
        };
        if projection
            .expr
            .iter()
            .any(|e| e.contains_outer() || has_subquery(e))
        {
            return Err(crate::pg::SqlStateError::new(
                "0A000",
                "subqueries in the WHERE or SET of a DELETE or UPDATE are not supported",
            )
            .into());
        }
        // The condition is evaluated once to count the rows and again to change them: it
        // must choose the same rows both times.
        if filtered && projection.expr.first().is_some_and(is_volatile) {
            return Err(crate::pg::SqlStateError::new(
                "0A000",
                "a volatile function (random(), …) in the WHERE of a DELETE or UPDATE is not supported",
            )
            .into());
        }
        let input = projection.input.schema();
        let mut exprs = projection
            .expr
            .iter()
            .map(|e| state.create_physical_expr(e.clone(), input))
            .collect::<Result<Vec<_>>>()?
            .into_iter();
        let predicate = if filtered { exprs.next() } else { None };
        // The scales of values computed for unconstrained numerics, over the stored rows.
        let stored = match input.iter().next().and_then(|(q, _)| q.cloned()) {
            Some(q) => DFSchema::try_from_qualified_schema(q, &def.stored_schema())?,
            None => DFSchema::try_from(def.stored_schema().as_ref().clone())?,
        };
        // No value with a scale of its own is written as text with places it was not
        // written with (as for INSERT).
        crate::pg::unscaled::check_written(&plan)?;
        let first = usize::from(filtered);
        let mut scales = Vec::with_capacity(columns.len());
        for (n, column) in columns.iter().enumerate() {
            let value = projection.expr[first + n].clone().unalias_nested().data;
            let def_column = &def.columns[*column];
            let scale = match def_column.ty {
                ColumnType::NumericUnconstrained
                    if crate::pg::display::has_scale_source(&value, &stored) =>
                {
                    crate::pg::display::scale_of_value(&value, &stored)?
                }
                _ => None,
            };
            // PostgreSQL's scale is followed for stored numerics, never for quotients,
            // roots and the like, which Henge computes at a fixed scale.
            if def_column.ty == ColumnType::NumericUnconstrained {
                let (carried, computed) = crate::pg::unscaled::has_own_places(&plan, first + n)?;
                if computed || (carried && scale.is_none()) {
                    return Err(crate::pg::unscaled::unknown_places(&def_column.name));
                }
            }
            scales.push(
                scale
                    .map(|s| state.create_physical_expr(s, &stored))
                    .transpose()?,
            );
        }
        Ok(RowChange {
            def,
            predicate,
            assignments: columns.into_iter().zip(exprs).collect(),
            scales,
        })
    }

    /// Which rows of `batch` the statement touches (a NULL condition touches none).
    fn touched(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let Some(predicate) = &self.predicate else {
            return Ok(BooleanArray::from(vec![true; batch.num_rows()]));
        };
        let value = predicate.evaluate(batch)?.into_array(batch.num_rows())?;
        let mask = value.as_boolean_opt().ok_or_else(|| {
            crate::pg::SqlStateError::new(
                "42804",
                format!(
                    "argument of WHERE must be type boolean, not type {}",
                    crate::pg::types::of_arrow(value.data_type()).data_type
                ),
            )
        })?;
        Ok(match mask.null_count() {
            0 => mask.clone(),
            _ => prep_null_mask_filter(mask),
        })
    }

    /// How many rows the touched ones stand for: themselves, or in a rolled-up table
    /// their count of ingested rows.
    fn count(&self, batch: &RecordBatch, touched: &BooleanArray) -> u64 {
        match batch.schema().index_of(ROWS_COLUMN) {
            Ok(i) => {
                let rows = batch.column(i).as_primitive::<Int64Type>();
                touched
                    .iter()
                    .zip(rows.iter())
                    .filter(|(t, _)| *t == Some(true))
                    .map(|(_, n)| n.unwrap_or(0) as u64)
                    .sum()
            }
            Err(_) => touched.true_count() as u64,
        }
    }
}

impl henge_ingest::Rewrite for RowChange {
    fn apply(&self, batch: RecordBatch) -> henge_ingest::Result<(RecordBatch, u64)> {
        let touched = self.touched(&batch).map_err(external)?;
        let count = self.count(&batch, &touched);
        if count == 0 && touched.true_count() == 0 {
            return Ok((batch, 0));
        }
        if self.assignments.is_empty() {
            let kept = not(&touched).map_err(|e| external(e.into()))?;
            let kept = filter_record_batch(&batch, &kept).map_err(|e| external(e.into()))?;
            return Ok((kept, count));
        }
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        for (n, (column, value)) in self.assignments.iter().enumerate() {
            // The scales PostgreSQL gives computed values, where they are followed.
            let computed = match self.scales.get(n).and_then(Option::as_ref) {
                Some(scale) => {
                    let scales = scale
                        .evaluate(&batch)
                        .and_then(|v| v.into_array(batch.num_rows()))
                        .map_err(external)?;
                    let scales = datafusion::arrow::compute::cast(&scales, &DataType::Int16)
                        .map_err(|e| external(e.into()))?;
                    Some(scales)
                }
                None => None,
            };
            let new = value
                .evaluate(&batch)
                .and_then(|v| v.into_array(batch.num_rows()))
                .map_err(external)?;
            // Stored strings may come back in another layout (dictionary, view) than the
            // value's.
            let old = &columns[*column];
            let def = &self.def.columns[*column];
            // The places of the value's type, where it has its own (a constant's, a
            // numeric(p, s)'s) rather than an unconstrained numeric's.
            let given = match new.data_type() {
                DataType::Decimal128(_, s) if *s < DEFAULT_NUMERIC.1 => Some(i16::from(*s)),
                t if t.is_integer() => Some(0),
                _ => None,
            };
            let new = match def.ty {
                ColumnType::NumericUnconstrained => henge_ingest::rows::unconstrained_values(&new)?,
                _ => datafusion::arrow::compute::cast(&new, old.data_type())
                    .map_err(|e| external(e.into()))?,
            };
            columns[*column] = zip(&touched, &new, old).map_err(|e| external(e.into()))?;
            // An unconstrained numeric's value keeps the scale of its type where that has
            // one; otherwise it is shown without trailing zeros.
            let scale = scale_column(&def.name);
            if let Ok(at) = batch.schema().index_of(&scale) {
                let kept = DEFAULT_NUMERIC.1;
                let scales: Int16Array = match &computed {
                    // Never fewer places than the value needs.
                    Some(computed) => new
                        .as_primitive::<Decimal128Type>()
                        .iter()
                        .zip(computed.as_primitive::<datafusion::arrow::datatypes::Int16Type>())
                        .map(|(v, s)| {
                            v.map(|v| {
                                let needed = henge_ingest::value::places_needed(v, kept);
                                s.map_or(needed, |s| s.max(needed))
                            })
                        })
                        .collect(),
                    None => new.as_primitive::<Decimal128Type>().unary(|v| match given {
                        Some(given) => given,
                        None => henge_ingest::value::places_needed(v, kept),
                    }),
                };
                columns[at] =
                    zip(&touched, &scales, &columns[at]).map_err(|e| external(e.into()))?;
            }
        }
        let visible = self.def.columns.len();
        let hidden = columns.split_off(visible);
        let own = RecordBatch::try_new(self.def.arrow_schema(), columns)
            .map_err(|e| external(e.into()))?;
        let own = henge_ingest::rows::validate_batch(&self.def, own)?;
        let mut columns = own.columns().to_vec();
        columns.extend(hidden);
        let updated =
            RecordBatch::try_new(batch.schema(), columns).map_err(|e| external(e.into()))?;
        Ok((updated, count))
    }
}

fn is_volatile(expr: &datafusion::logical_expr::Expr) -> bool {
    use datafusion::common::tree_node::TreeNode;
    use datafusion::logical_expr::{Expr, Volatility};
    expr.exists(|e| {
        Ok(matches!(e, Expr::ScalarFunction(f)
            if f.func.signature().volatility == Volatility::Volatile))
    })
    .unwrap_or(true)
}

fn has_subquery(expr: &datafusion::logical_expr::Expr) -> bool {
    use datafusion::common::tree_node::TreeNode;
    use datafusion::logical_expr::Expr;
    expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_)
        ))
    })
    .unwrap_or(true)
}

fn external(e: DataFusionError) -> henge_ingest::Error {
    henge_ingest::Error::Statement(Box::new(e))
}
