//! PostgreSQL's ordered-set aggregates DataFusion lacks: `percentile_disc(f) WITHIN GROUP
//! (ORDER BY x)` (the first value at or past the fraction `f` of the ordered values) and
//! `mode() WITHIN GROUP (ORDER BY x)` (the most frequent value, the first in the order
//! among equally frequent ones), for any type that can be ordered. `percentile_disc` and
//! `percentile_cont` also take an array of fractions and answer an array; DataFusion's
//! `percentile_cont` takes one fraction, so a call with an array literal is planned as
//! Henge's (`henge_percentile_cont`, [`rewrite`]), which interpolates as PostgreSQL does.
//!
//! Like DataFusion's `percentile_cont`, they hold a group's values until the end; the
//! query memory pool counts them (`size`), so a large group spills or fails cleanly.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListArray, RecordBatch};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::{concat, filter, is_not_null, partition, sort_to_indices, take};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Signature, Volatility,
};
use datafusion::scalar::ScalarValue;

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::ast::{self, VisitMut, VisitorMut};
use std::ops::ControlFlow;

use super::SqlStateError;

/// Registers `percentile_disc` and `mode`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udaf(AggregateUDF::new_from_impl(OrderedSet::new(
        Kind::PercentileDisc,
    )));
    ctx.register_udaf(AggregateUDF::new_from_impl(OrderedSet::new(Kind::Mode)));
    ctx.register_udaf(AggregateUDF::new_from_impl(OrderedSet::new(
        Kind::PercentileCont,
    )));
}

/// `percentile_cont(ARRAY[…]) WITHIN GROUP (…)` as `henge_percentile_cont(…)`.
pub fn rewrite(mut statement: Statement) -> Statement {
    struct Arrays;
    impl VisitorMut for Arrays {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut ast::Expr) -> ControlFlow<()> {
            if let ast::Expr::Function(f) = expr {
                let named = matches!(f.name.0.as_slice(), [n] if n
                    .as_ident()
                    .is_some_and(|i| i.value.eq_ignore_ascii_case("percentile_cont")));
                let listed = match &f.args {
                    ast::FunctionArguments::List(list) => matches!(
                        list.args.as_slice(),
                        [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(
                            ast::Expr::Array(_)
                        ))]
                    ),
                    _ => false,
                };
                if named && listed && !f.within_group.is_empty() {
                    f.name = ast::ObjectName::from(vec![ast::Ident::new(CONT_OF_ARRAY)]);
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Arrays);
    statement
}

/// The name `percentile_cont` of an array of fractions is planned under.
const CONT_OF_ARRAY: &str = "henge_percentile_cont";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    PercentileDisc,
    Mode,
    /// `percentile_cont` of an array of fractions.
    PercentileCont,
}

/// What a group's sorted values are asked for.
#[derive(Debug, Clone)]
enum Wanted {
    Mode,
    /// `percentile_disc` (`continuous` false) or `percentile_cont` of one fraction, or of
    /// each of an array's (NULL where the array has NULL).
    Percentiles {
        continuous: bool,
        fractions: Vec<Option<f64>>,
        array: bool,
    },
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct OrderedSet {
    kind: Kind,
    signature: Signature,
}

impl OrderedSet {
    fn new(kind: Kind) -> OrderedSet {
        OrderedSet {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for OrderedSet {
    fn name(&self) -> &str {
        match self.kind {
            Kind::PercentileDisc => "percentile_disc",
            Kind::Mode => "mode",
            Kind::PercentileCont => CONT_OF_ARRAY,
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let fractions = DataType::new_list(DataType::Float64, true);
        match (self.kind, arg_types) {
            (Kind::PercentileDisc, [value, DataType::List(_)]) => {
                Ok(vec![value.clone(), fractions])
            }
            (Kind::PercentileDisc, [value, _]) => Ok(vec![value.clone(), DataType::Float64]),
            (Kind::Mode, [value]) => Ok(vec![value.clone()]),
            (Kind::PercentileCont, [value, DataType::List(_)])
                if value.is_numeric() || *value == DataType::Null =>
            {
                Ok(vec![DataType::Float64, fractions])
            }
            _ => Err(super::no_such_function(
                match self.kind {
                    Kind::PercentileCont => "percentile_cont",
                    _ => self.name(),
                },
                arg_types,
            )),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match arg_types {
            [value, DataType::List(_)] => DataType::new_list(value.clone(), true),
            _ => arg_types[0].clone(),
        })
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Field::new_list_field(args.input_fields[0].data_type().clone(), true);
        Ok(vec![Arc::new(Field::new(
            format!("{}[values]", args.name),
            DataType::List(Arc::new(item)),
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        // Arrow orders an interval's months, days and time one after the other, not as
        // PostgreSQL compares intervals. (Refused here: an error from the coercion would
        // reach the client wrapped in DataFusion's own.)
        if matches!(args.expr_fields[0].data_type(), DataType::Interval(_)) {
            return Err(SqlStateError::new(
                "0A000",
                format!("{}(interval) is not supported", self.name()),
            )
            .into());
        }
        let wanted = match self.kind {
            Kind::Mode => Wanted::Mode,
            Kind::PercentileDisc | Kind::PercentileCont => {
                let (fractions, array) = fractions(&args)?;
                Wanted::Percentiles {
                    continuous: self.kind == Kind::PercentileCont,
                    fractions,
                    array,
                }
            }
        };
        let descending = args
            .order_bys
            .first()
            .is_some_and(|order| order.options.descending);
        Ok(Box::new(Values {
            data_type: args.expr_fields[0].data_type().clone(),
            values: Vec::new(),
            bytes: 0,
            descending,
            wanted,
        }))
    }

    fn supports_within_group_clause(&self) -> bool {
        true
    }
}

/// The fractions of `percentile_disc` or `percentile_cont`: a constant between 0 and 1,
/// or a constant array of them (each NULL or between 0 and 1); and whether it was an array.
fn fractions(args: &AccumulatorArgs) -> Result<(Vec<Option<f64>>, bool)> {
    // A constant evaluates without any row (a column would fail to).
    let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
    let constant = match args.exprs.get(1).map(|e| e.evaluate(&empty)) {
        Some(Ok(ColumnarValue::Scalar(value))) => value,
        _ => return Err(not_constant()),
    };
    let checked = |value: &ScalarValue| -> Result<Option<f64>> {
        if value.is_null() {
            return Ok(None);
        }
        let ScalarValue::Float64(Some(v)) = value.cast_to(&DataType::Float64)? else {
            return Err(not_constant());
        };
        if !(0.0..=1.0).contains(&v) {
            return Err(SqlStateError::new(
                "22003",
                format!("percentile value {v} is not between 0 and 1"),
            )
            .into());
        }
        Ok(Some(v))
    };
    match &constant {
        ScalarValue::List(list) if !list.is_null(0) => {
            let items = list.value(0);
            let fractions = (0..items.len())
                .map(|i| checked(&ScalarValue::try_from_array(&items, i)?))
                .collect::<Result<Vec<_>>>()?;
            Ok((fractions, true))
        }
        ScalarValue::List(_) => Err(not_constant()),
        value if value.is_null() => Err(not_constant()),
        value => Ok((vec![checked(value)?], false)),
    }
}

fn not_constant() -> DataFusionError {
    SqlStateError::new(
        "0A000",
        "percentile_disc with a fraction that is not a constant is not supported",
    )
    .into()
}

/// A group's values (NULLs left out), in the arrays they came in.
#[derive(Debug)]
struct Values {
    data_type: DataType,
    values: Vec<ArrayRef>,
    bytes: usize,
    descending: bool,
    wanted: Wanted,
}

impl Values {
    fn add(&mut self, array: &ArrayRef) -> Result<()> {
        let kept = match array.null_count() {
            0 => array.clone(),
            _ => filter(array, &is_not_null(array)?)?,
        };
        if !kept.is_empty() {
            self.bytes += kept.get_array_memory_size();
            self.values.push(kept);
        }
        Ok(())
    }

    /// The values in the WITHIN GROUP order.
    fn sorted(&self, all: &ArrayRef) -> Result<ArrayRef> {
        let order = SortOptions {
            descending: self.descending,
            nulls_first: false,
        };
        Ok(take(all, &sort_to_indices(all, Some(order), None)?, None)?)
    }

    /// `mode()`: the longest run of equal values; the first of the longest ones.
    fn mode(&self, all: &ArrayRef) -> Result<ScalarValue> {
        if all.is_empty() {
            return ScalarValue::try_from(&self.data_type);
        }
        let sorted = self.sorted(all)?;
        let runs = partition(std::slice::from_ref(&sorted))?;
        let row = runs
            .ranges()
            .into_iter()
            .fold((0, 0), |(best, len), r| match r.end - r.start > len {
                true => (r.start, r.end - r.start),
                false => (best, len),
            })
            .0;
        ScalarValue::try_from_array(&sorted, row)
    }

    fn all(&self) -> Result<ArrayRef> {
        match self.values.as_slice() {
            [] => Ok(datafusion::arrow::array::new_empty_array(&self.data_type)),
            [one] => Ok(one.clone()),
            many => {
                let refs: Vec<&dyn Array> = many.iter().map(|a| a.as_ref()).collect();
                Ok(concat(&refs)?)
            }
        }
    }
}

impl Accumulator for Values {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for list in lists.iter().flatten() {
            self.add(&list)?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let all = self.all()?;
        let list = ListArray::new(
            Arc::new(Field::new_list_field(self.data_type.clone(), true)),
            OffsetBuffer::from_lengths([all.len()]),
            all,
            None,
        );
        Ok(vec![ScalarValue::List(Arc::new(list))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let all = self.all()?;
        let (fractions, continuous, array) = match &self.wanted {
            Wanted::Mode => return self.mode(&all),
            Wanted::Percentiles {
                continuous,
                fractions,
                array,
            } => (fractions, *continuous, *array),
        };
        let item = match continuous {
            true => DataType::Float64,
            false => self.data_type.clone(),
        };
        if all.is_empty() {
            return ScalarValue::try_from(&match array {
                true => DataType::new_list(item, true),
                false => item,
            });
        }
        let sorted = self.sorted(&all)?;
        let n = sorted.len();
        let value_at = |f: f64| -> Result<ScalarValue> {
            if !continuous {
                // The first value whose position reaches the fraction of the count.
                let row = ((f * n as f64).ceil() as usize).clamp(1, n) - 1;
                return ScalarValue::try_from_array(&sorted, row);
            }
            // Between the values around the fraction of the positions, in proportion.
            let position = f * (n - 1) as f64;
            let (first, second) = (position.floor() as usize, position.ceil() as usize);
            let at = |row: usize| -> Result<f64> {
                match ScalarValue::try_from_array(&sorted, row)?.cast_to(&DataType::Float64)? {
                    ScalarValue::Float64(Some(v)) => Ok(v),
                    _ => Ok(f64::NAN),
                }
            };
            let low = at(first)?;
            let value = match first == second {
                true => low,
                false => low + (at(second)? - low) * (position - first as f64),
            };
            Ok(ScalarValue::Float64(Some(value)))
        };
        if !array {
            return value_at(fractions[0].unwrap_or_default());
        }
        let values = fractions
            .iter()
            .map(|f| match f {
                Some(f) => value_at(*f),
                None => ScalarValue::try_from(&item),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ScalarValue::List(ScalarValue::new_list_nullable(
            &values, &item,
        )))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.bytes
    }
}
