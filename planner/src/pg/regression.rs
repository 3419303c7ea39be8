//! `covar_pop`, `covar_samp`, `corr` and the `regr_*` aggregates as PostgreSQL computes
//! them: in doubles, over its running sums updated by the Youngs-Cramer method (and
//! combined as its parallel workers combine them), so that the last digits agree —
//! DataFusion's own formulas gave `covar_pop` 0.22222222222222224 where PostgreSQL gives
//! 0.2222222222222222. The first argument is Y, the second X, as in PostgreSQL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type};
use datafusion::error::Result;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility,
};
use datafusion::scalar::ScalarValue;

use super::no_such_function;

/// What an aggregate answers from the sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
enum Kind {
    CovarPop,
    CovarSamp,
    Corr,
    Slope,
    Intercept,
    R2,
    Sxx,
    Syy,
    Sxy,
    AvgX,
    AvgY,
    #[default]
    Count,
}

const ALL: [(&str, Kind); 12] = [
    ("covar_pop", Kind::CovarPop),
    ("covar_samp", Kind::CovarSamp),
    ("corr", Kind::Corr),
    ("regr_slope", Kind::Slope),
    ("regr_intercept", Kind::Intercept),
    ("regr_r2", Kind::R2),
    ("regr_sxx", Kind::Sxx),
    ("regr_syy", Kind::Syy),
    ("regr_sxy", Kind::Sxy),
    ("regr_avgx", Kind::AvgX),
    ("regr_avgy", Kind::AvgY),
    ("regr_count", Kind::Count),
];

/// Registers the aggregates in place of DataFusion's.
pub fn register(ctx: &SessionContext) {
    for (name, kind) in ALL {
        ctx.register_udaf(AggregateUDF::new_from_impl(Regression {
            name,
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }));
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Regression {
    name: &'static str,
    kind: Kind,
    signature: Signature,
}

impl AggregateUDFImpl for Regression {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [y, x] if [y, x].iter().all(|t| t.is_numeric() || t.is_null()) => {
                Ok(vec![DataType::Float64, DataType::Float64])
            }
            _ => Err(no_such_function(self.name, arg_types)),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::Count => DataType::Int64,
            _ => DataType::Float64,
        })
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Sums {
            kind: self.kind,
            ..Sums::default()
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(["n", "sx", "sy", "sxx", "syy", "sxy"]
            .iter()
            .map(|s| {
                Arc::new(Field::new(
                    format!("{}[{s}]", args.name),
                    DataType::Float64,
                    true,
                ))
            })
            .collect())
    }
}

/// PostgreSQL's transition state: the count, the sums of X and Y, and the sums of squared
/// and crossed deviations from the means.
#[derive(Debug, Default)]
struct Sums {
    kind: Kind,
    n: f64,
    sx: f64,
    sy: f64,
    sxx: f64,
    syy: f64,
    sxy: f64,
}

impl Sums {
    fn add(&mut self, y: f64, x: f64) {
        let n_old = self.n;
        self.n += 1.0;
        self.sx += x;
        self.sy += y;
        if n_old > 0.0 {
            let tmp_x = x * self.n - self.sx;
            let tmp_y = y * self.n - self.sy;
            let scale = 1.0 / (self.n * n_old);
            self.sxx += tmp_x * tmp_x * scale;
            self.syy += tmp_y * tmp_y * scale;
            self.sxy += tmp_x * tmp_y * scale;
        }
    }

    fn combine(&mut self, other: [f64; 6]) {
        let [n2, sx2, sy2, sxx2, syy2, sxy2] = other;
        if n2 == 0.0 {
            return;
        }
        if self.n == 0.0 {
            (self.n, self.sx, self.sy, self.sxx, self.syy, self.sxy) =
                (n2, sx2, sy2, sxx2, syy2, sxy2);
            return;
        }
        let n1 = self.n;
        let n = n1 + n2;
        let tmp_x = self.sx / n1 - sx2 / n2;
        let tmp_y = self.sy / n1 - sy2 / n2;
        self.sxx += sxx2 + n1 * n2 * tmp_x * tmp_x / n;
        self.syy += syy2 + n1 * n2 * tmp_y * tmp_y / n;
        self.sxy += sxy2 + n1 * n2 * tmp_x * tmp_y / n;
        self.n = n;
        self.sx += sx2;
        self.sy += sy2;
    }
}

impl Accumulator for Sums {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let y = cast(&values[0], &DataType::Float64)?;
        let x = cast(&values[1], &DataType::Float64)?;
        let (y, x) = (
            y.as_primitive::<Float64Type>(),
            x.as_primitive::<Float64Type>(),
        );
        for i in 0..y.len() {
            if y.is_valid(i) && x.is_valid(i) {
                self.add(y.value(i), x.value(i));
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let columns: Vec<_> = states
            .iter()
            .map(|s| s.as_primitive::<Float64Type>())
            .collect();
        for row in 0..columns[0].len() {
            let state: [f64; 6] = std::array::from_fn(|i| columns[i].value(row));
            self.combine(state);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok([self.n, self.sx, self.sy, self.sxx, self.syy, self.sxy]
            .into_iter()
            .map(|v| ScalarValue::Float64(Some(v)))
            .collect())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let (n, sx, sy, sxx, syy, sxy) = (self.n, self.sx, self.sy, self.sxx, self.syy, self.sxy);
        if self.kind == Kind::Count {
            return Ok(ScalarValue::Int64(Some(n as i64)));
        }
        let value = match self.kind {
            _ if n < 1.0 => None,
            Kind::CovarPop => Some(sxy / n),
            Kind::CovarSamp => (n > 1.0).then(|| sxy / (n - 1.0)),
            Kind::Corr => (sxx != 0.0 && syy != 0.0).then(|| sxy / (sxx * syy).sqrt()),
            Kind::Slope => (sxx != 0.0).then(|| sxy / sxx),
            Kind::Intercept => (sxx != 0.0).then(|| (sy - sx * sxy / sxx) / n),
            Kind::R2 => match (sxx == 0.0, syy == 0.0) {
                (true, _) => None,
                (false, true) => Some(1.0),
                (false, false) => Some(sxy * sxy / (sxx * syy)),
            },
            Kind::Sxx => Some(sxx),
            Kind::Syy => Some(syy),
            Kind::Sxy => Some(sxy),
            Kind::AvgX => Some(sx / n),
            Kind::AvgY => Some(sy / n),
            Kind::Count => unreachable!("answered above"),
        };
        Ok(ScalarValue::Float64(value))
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}
