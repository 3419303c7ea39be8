//! `avg`, `stddev`/`stddev_samp`, `stddev_pop`, `variance`/`var_samp` and `var_pop` of
//! integers and numerics as PostgreSQL computes them: exact numerics, where DataFusion's
//! are doubles. Of doubles, the variances follow PostgreSQL's algorithm, so that they
//! round alike (`avg` of doubles stays DataFusion's: the same sum over the count).
//!
//! PostgreSQL keeps the count, the sum and (for the variances) the sum of squares exactly,
//! then divides with `numeric`'s rules: the quotient has at least 16 significant digits
//! and never fewer places than the operands, rounded half away from zero; a standard
//! deviation is the square root of that variance at the same places. Here the sums are
//! 256-bit integers at the input's scale (its square's, for the sum of squares), and the
//! result is a decimal with one scale for the column (20 places, or more when the input
//! has more): each value is PostgreSQL's, rounded where PostgreSQL rounds it, printed
//! with trailing zeros up to the column's places (see [`super::division`]).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Decimal256Array, Float64Array,
    Int16Array, Int64Array, ListArray,
};
use datafusion::arrow::datatypes::{
    i256, DataType, Decimal128Type, Decimal256Type, Field, FieldRef, Float64Type, Int16Type,
    Int64Type,
};
use datafusion::error::Result;
use datafusion::execution::context::SessionContext;
use datafusion::functions_aggregate::{average, stddev, variance};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, ReversedUDAF,
    Signature, Volatility,
};
use datafusion::scalar::ScalarValue;
use num_bigint::BigInt;

use super::display::{display_array, display_type, numeric_text, quotient_at};
use super::division::{divide_wide, pg_scale_shown};
use super::SqlStateError;

/// Registers the exact `avg` and the standard deviations and variances.
pub fn register(ctx: &SessionContext) {
    let functions = [
        (average::avg_udaf(), Kind::Avg, vec![]),
        (stddev::stddev_udaf(), Kind::Stddev { sample: true }, vec![]),
        (
            stddev::stddev_pop_udaf(),
            Kind::Stddev { sample: false },
            vec![],
        ),
        (
            variance::var_samp_udaf(),
            Kind::Variance { sample: true },
            vec!["variance"],
        ),
        (
            variance::var_pop_udaf(),
            Kind::Variance { sample: false },
            vec![],
        ),
    ];
    for (inner, kind, extra) in functions {
        let mut aliases = inner.aliases().to_vec();
        aliases.extend(extra.into_iter().map(String::from));
        ctx.register_udaf(AggregateUDF::new_from_impl(Exact {
            signature: Signature::user_defined(Volatility::Immutable),
            inner,
            kind,
            aliases,
            display: false,
            scaled: false,
        }));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Avg,
    Stddev { sample: bool },
    Variance { sample: bool },
}

/// The most decimal digits an Arrow Decimal128 holds.
const MAX_PRECISION: u8 = 38;
/// The places a result keeps at least (as a column quotient does).
const RESULT_SCALE: i8 = 20;

/// One of the aggregates: exact over integers and numerics, DataFusion's otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Exact {
    inner: Arc<AggregateUDF>,
    kind: Kind,
    signature: Signature,
    aliases: Vec<String>,
    /// Whether the result is a display numeric (see [`super::display`]).
    display: bool,
    /// Whether a second argument gives each value's own scale (a stored unconstrained
    /// numeric's): the result is shown with the places PostgreSQL gives it from the
    /// largest of them rather than from the input type's scale.
    scaled: bool,
}

/// How an aggregate is computed for an input type.
enum Path {
    /// Exactly, over integers and numerics.
    Exact,
    /// A variance of doubles, as PostgreSQL computes it.
    Float,
    /// DataFusion's (`avg` of doubles and intervals).
    Inner,
}

impl Exact {
    /// This aggregate giving display numerics, where it is exact over `input`.
    pub(crate) fn display(&self, input: &DataType) -> Option<Exact> {
        let coerced = self.coerce_types(std::slice::from_ref(input)).ok()?;
        matches!(self.path(&coerced[0]), Path::Exact).then(|| Exact {
            display: true,
            ..self.clone()
        })
    }

    /// [`Exact::display`] of values whose scales a second argument gives.
    pub(crate) fn scaled_display(&self, input: &DataType) -> Option<Exact> {
        matches!(input, DataType::Decimal128(..)).then_some(())?;
        Some(Exact {
            scaled: true,
            ..self.display(input)?
        })
    }

    /// Whether this is a [`Exact::scaled_display`].
    pub(crate) fn is_scaled(&self) -> bool {
        self.scaled
    }

    fn path(&self, input: &DataType) -> Path {
        match input {
            DataType::Int64 | DataType::Decimal128(..) => Path::Exact,
            t if t.is_floating() && self.kind != Kind::Avg => Path::Float,
            _ => Path::Inner,
        }
    }

    /// How the sums over an integer or decimal input become the result.
    fn finish(&self, input: &DataType) -> Finish {
        let (scale, wanted) = match (input, self.kind) {
            // An average of bigints has at most 19 digits before the point.
            (DataType::Int64, Kind::Avg) => (0, MAX_PRECISION as i8 - 19),
            (DataType::Decimal128(_, s), Kind::Avg) => (*s, (*s).max(RESULT_SCALE)),
            (DataType::Decimal128(_, s), _) => (*s, s.saturating_mul(2).max(RESULT_SCALE)),
            _ => (0, RESULT_SCALE),
        };
        Finish {
            kind: self.kind,
            scale,
            out: wanted.min(MAX_PRECISION as i8 - 1),
            display: self.display,
        }
    }
}

impl AggregateUDFImpl for Exact {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [value @ DataType::Decimal128(..), _] if self.scaled => {
                Ok(vec![value.clone(), DataType::Int16])
            }
            [t] if t.is_integer() => Ok(vec![DataType::Int64]),
            [DataType::Decimal128(..)] => Ok(arg_types.to_vec()),
            // Other types as DataFusion's function takes them.
            _ => super::inner_coercion(&self.inner, arg_types),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match self.path(&arg_types[0]) {
            Path::Exact => {
                let value = DataType::Decimal128(MAX_PRECISION, self.finish(&arg_types[0]).out);
                Ok(match self.display {
                    true => display_type(value),
                    false => value,
                })
            }
            Path::Float => Ok(DataType::Float64),
            Path::Inner => self.inner.return_type(arg_types),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let input = args.expr_fields[0].data_type();
        match self.path(input) {
            Path::Exact => Ok(Box::new(ExactAccumulator {
                finish: self.finish(input),
                input: input.clone(),
                sums: Sums::default(),
                distinct: args.is_distinct.then(HashSet::new),
                scale_counts: Default::default(),
            })),
            Path::Float => Ok(Box::new(FloatAccumulator {
                kind: self.kind,
                youngs: Youngs::default(),
                distinct: args.is_distinct.then(HashSet::new),
            })),
            Path::Inner => self.inner.accumulator(args),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let input = args.input_fields[0].data_type();
        let field = |part: &str, data_type: DataType| -> FieldRef {
            Arc::new(Field::new(
                format_state_name(args.name, part),
                data_type,
                true,
            ))
        };
        let distinct = |item: DataType| {
            vec![field(
                "distinct",
                DataType::List(Arc::new(Field::new_list_field(item, true))),
            )]
        };
        Ok(match (self.path(input), args.is_distinct) {
            (Path::Inner, _) => return self.inner.state_fields(args),
            (Path::Float, true) => distinct(DataType::Float64),
            (Path::Float, false) => ["n", "sx", "sxx"]
                .into_iter()
                .map(|part| field(part, DataType::Float64))
                .collect(),
            (Path::Exact, true) => distinct(input.clone()),
            (Path::Exact, false) => vec![
                field("count", DataType::Int64),
                field("sum", DataType::Decimal256(76, 0)),
                field("squares", DataType::Decimal256(76, 0)),
                field("places", DataType::Int16),
            ],
        })
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        match self.path(args.expr_fields[0].data_type()) {
            Path::Exact => !args.is_distinct,
            Path::Float => false,
            Path::Inner => self.inner.groups_accumulator_supported(args),
        }
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        let input = args.expr_fields[0].data_type();
        match self.path(input) {
            Path::Exact => Ok(Box::new(ExactGroups {
                finish: self.finish(input),
                groups: Vec::new(),
            })),
            _ => self.inner.create_groups_accumulator(args),
        }
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match self.path(args.expr_fields[0].data_type()) {
            Path::Exact => self.accumulator(args),
            Path::Float => Ok(Box::new(SlidingFloat {
                kind: self.kind,
                frame: VecDeque::new(),
            })),
            Path::Inner => self.inner.create_sliding_accumulator(args),
        }
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }

    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        ScalarValue::try_from(data_type)
    }
}

/// The count, sum and sum of squares of the values seen, unscaled; and the largest of
/// their own scales, where they have them.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    count: i64,
    sum: i256,
    squares: i256,
    places: Option<i16>,
}

fn out_of_range() -> datafusion::error::DataFusionError {
    SqlStateError::new("22003", "value out of range for an exact aggregate").into()
}

impl Sums {
    /// Adds (`sign` 1) or takes away (-1) one value, to the sum of squares too where the
    /// result needs it.
    fn add(&mut self, value: i128, sign: i64, squares: bool) -> Result<()> {
        let v = i256::from_i128(value);
        self.sum = match sign {
            1 => self.sum.checked_add(v),
            _ => self.sum.checked_sub(v),
        }
        .ok_or_else(out_of_range)?;
        if squares {
            // |v| < 2^127: the square fits 256 bits.
            let square = v.wrapping_mul(v);
            self.squares = match sign {
                1 => self.squares.checked_add(square),
                _ => self.squares.checked_sub(square),
            }
            .ok_or_else(out_of_range)?;
        }
        self.count += sign;
        Ok(())
    }

    fn merge(&mut self, other: Sums) -> Result<()> {
        self.count += other.count;
        self.sum = self.sum.checked_add(other.sum).ok_or_else(out_of_range)?;
        self.squares = self
            .squares
            .checked_add(other.squares)
            .ok_or_else(out_of_range)?;
        self.places = self.places.max(other.places);
        Ok(())
    }

    /// Notes a value's own scale.
    fn scaled(&mut self, places: Option<i16>) {
        self.places = self.places.max(places);
    }
}

/// How an aggregate turns its sums into PostgreSQL's result.
#[derive(Debug, Clone, Copy)]
struct Finish {
    kind: Kind,
    /// The input's scale; the sum of squares has twice as many places.
    scale: i8,
    /// The result's scale.
    out: i8,
    /// Whether results are display numerics, with PostgreSQL's text.
    display: bool,
}

impl Finish {
    /// Whether the result needs the sum of squares.
    fn squares(&self) -> bool {
        self.kind != Kind::Avg
    }

    /// PostgreSQL's result from the sums, unscaled at `self.out`.
    fn result(&self, sums: Sums) -> Result<Option<i128>> {
        let s = self.scale as i32;
        let out = self.out as i32;
        let n = i256::from_i128(i128::from(sums.count));
        if self.kind == Kind::Avg {
            return match sums.count {
                0 => Ok(None),
                _ => divide_wide((sums.sum, s), (n, 0), out).map(Some),
            };
        }
        let Some((value, places)) = self.deviation(sums)? else {
            return Ok(None);
        };
        let value = match places > out {
            true => rounded_div(value, &ten(places - out)),
            false => value * ten(out - places),
        };
        i128::try_from(value)
            .ok()
            .filter(|v| v.unsigned_abs() < 10u128.pow(MAX_PRECISION as u32))
            .map(Some)
            .ok_or_else(out_of_range)
    }

    /// The scale PostgreSQL's sum of the values has: the largest of the values' own, or
    /// the input type's.
    fn shown_scale(&self, sums: &Sums) -> i32 {
        sums.places.map_or(self.scale as i32, i32::from)
    }

    /// PostgreSQL's text of the result: exact at the places PostgreSQL gives it.
    fn text(&self, sums: Sums) -> Result<Option<String>> {
        if self.kind == Kind::Avg {
            if sums.count == 0 {
                return Ok(None);
            }
            let s = self.scale as i32;
            let n = i256::from_i128(i128::from(sums.count));
            let places = pg_scale_shown((sums.sum, s), self.shown_scale(&sums), (n, 0), 0);
            let value = quotient_at(big(sums.sum), s, &big(n), 0, places);
            return Ok(Some(numeric_text(&value, places)));
        }
        Ok(self
            .deviation(sums)?
            .map(|(value, places)| numeric_text(&value, places)))
    }

    /// A variance or standard deviation, unscaled at the places PostgreSQL gives it.
    fn deviation(&self, sums: Sums) -> Result<Option<(BigInt, i32)>> {
        let s = self.scale as i32;
        let n = i256::from_i128(i128::from(sums.count));
        let (sample, root) = match self.kind {
            Kind::Avg => return Ok(None),
            Kind::Stddev { sample } => (sample, true),
            Kind::Variance { sample } => (sample, false),
        };
        if sums.count == 0 || (sample && sums.count == 1) {
            return Ok(None);
        }
        // (N·Σx² − (Σx)²) / (N·(N−1)) or / N², at 2s places over 0.
        let numerator = n
            .checked_mul(sums.squares)
            .zip(sums.sum.checked_mul(sums.sum))
            .and_then(|(a, b)| a.checked_sub(b))
            .ok_or_else(out_of_range)?;
        let pairs = match sample {
            true => n.wrapping_mul(n.wrapping_sub(i256::ONE)),
            false => n.wrapping_mul(n),
        };
        if numerator <= i256::ZERO {
            // PostgreSQL's zero, without places.
            return Ok(Some((BigInt::from(0), 0)));
        }
        // PostgreSQL's places for the quotient, which the root keeps.
        let places = pg_scale_shown(
            (numerator, 2 * s),
            2 * self.shown_scale(&sums),
            (pairs, 0),
            0,
        );
        let variance = match places >= 2 * s {
            true => rounded_div(big(numerator) * ten(places - 2 * s), &big(pairs)),
            false => rounded_div(big(numerator), &(big(pairs) * ten(2 * s - places))),
        };
        let value = match root {
            true => rounded_sqrt(variance * ten(places)),
            false => variance,
        };
        Ok(Some((value, places)))
    }

    /// The result of each group's sums: values, or display numerics.
    fn results(&self, groups: Vec<Sums>) -> Result<ArrayRef> {
        let values = groups
            .iter()
            .map(|sums| self.result(*sums))
            .collect::<Result<Decimal128Array>>()?
            .with_precision_and_scale(MAX_PRECISION, self.out)?;
        if !self.display {
            return Ok(Arc::new(values));
        }
        let texts = groups
            .into_iter()
            .map(|sums| self.text(sums))
            .collect::<Result<Vec<_>>>()?;
        Ok(display_array(values, texts))
    }
}

fn big(v: i256) -> BigInt {
    BigInt::from_signed_bytes_le(&v.to_le_bytes())
}

fn ten(n: i32) -> BigInt {
    BigInt::from(10).pow(n.max(0) as u32)
}

/// `n / d` of positive numbers, rounded half up.
fn rounded_div(n: BigInt, d: &BigInt) -> BigInt {
    (n * 2 + d) / (d * 2)
}

/// The square root of a positive number, rounded half up: the radicand passes
/// (root + ½)² exactly when it exceeds root² + root.
fn rounded_sqrt(radicand: BigInt) -> BigInt {
    let root = radicand.sqrt();
    match &radicand - &root * &root > root {
        true => root + 1,
        false => root,
    }
}

/// Calls `f` with the row and unscaled value of each non-NULL integer or decimal.
fn for_each_value(array: &ArrayRef, mut f: impl FnMut(usize, i128) -> Result<()>) -> Result<()> {
    match array.data_type() {
        DataType::Int64 => {
            for (row, v) in array.as_primitive::<Int64Type>().iter().enumerate() {
                if let Some(v) = v {
                    f(row, i128::from(v))?;
                }
            }
        }
        DataType::Decimal128(..) => {
            for (row, v) in array.as_primitive::<Decimal128Type>().iter().enumerate() {
                if let Some(v) = v {
                    f(row, v)?;
                }
            }
        }
        other => {
            return Err(datafusion::error::DataFusionError::Internal(format!(
                "exact aggregate of {other}"
            )))
        }
    }
    Ok(())
}

/// Whether a filter (FILTER (WHERE …)) keeps `row`.
fn kept(filter: Option<&BooleanArray>, row: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(row) && f.value(row))
}

/// The three state arrays (count, sum, sum of squares) of some sums.
fn state_arrays(sums: &[Sums]) -> Result<Vec<ArrayRef>> {
    let counts: Int64Array = sums.iter().map(|s| Some(s.count)).collect();
    let wide = |part: fn(&Sums) -> i256| -> Result<ArrayRef> {
        let values: Decimal256Array = sums.iter().map(|s| Some(part(s))).collect();
        Ok(Arc::new(values.with_precision_and_scale(76, 0)?))
    };
    let places: Int16Array = sums.iter().map(|s| s.places).collect();
    Ok(vec![
        Arc::new(counts),
        wide(|s| s.sum)?,
        wide(|s| s.squares)?,
        Arc::new(places),
    ])
}

/// The scales a scaled aggregate's second argument gives, if it has one.
fn scales_of(values: &[ArrayRef]) -> Result<Option<ArrayRef>> {
    values
        .get(1)
        .map(|a| datafusion::arrow::compute::cast(a, &DataType::Int16))
        .transpose()
        .map_err(Into::into)
}

/// The scale in `row` of `scales`, if given.
fn scale_at(scales: &Option<ArrayRef>, row: usize) -> Option<i16> {
    let scales = scales.as_ref()?.as_primitive::<Int16Type>();
    scales.is_valid(row).then(|| scales.value(row))
}

/// The sums of each group: the aggregates without DISTINCT in a GROUP BY.
#[derive(Debug)]
struct ExactGroups {
    finish: Finish,
    groups: Vec<Sums>,
}

impl GroupsAccumulator for ExactGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize(total_num_groups, Sums::default());
        let squares = self.finish.squares();
        let groups = &mut self.groups;
        let scales = scales_of(values)?;
        for_each_value(&values[0], |row, v| match kept(opt_filter, row) {
            true => {
                let group = &mut groups[group_indices[row]];
                group.scaled(scale_at(&scales, row));
                group.add(v, 1, squares)
            }
            false => Ok(()),
        })
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        self.finish.results(emit_to.take_needed(&mut self.groups))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        state_arrays(&emit_to.take_needed(&mut self.groups))
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize(total_num_groups, Sums::default());
        let counts = values[0].as_primitive::<Int64Type>();
        let sums = values[1].as_primitive::<Decimal256Type>();
        let squares = values[2].as_primitive::<Decimal256Type>();
        let places = values[3].as_primitive::<Int16Type>();
        for (row, &group) in group_indices.iter().enumerate() {
            if !counts.is_null(row) {
                self.groups[group].merge(Sums {
                    count: counts.value(row),
                    sum: sums.value(row),
                    squares: squares.value(row),
                    places: places.is_valid(row).then(|| places.value(row)),
                })?;
            }
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let mut rows = vec![Sums::default(); values[0].len()];
        let squares = self.finish.squares();
        let scales = scales_of(values)?;
        for_each_value(&values[0], |row, v| match kept(opt_filter, row) {
            true => {
                rows[row].scaled(scale_at(&scales, row));
                rows[row].add(v, 1, squares)
            }
            false => Ok(()),
        })?;
        state_arrays(&rows)
    }

    fn size(&self) -> usize {
        self.groups.capacity() * std::mem::size_of::<Sums>()
    }
}

/// One aggregate's sums: without GROUP BY, with DISTINCT, or over a window frame.
#[derive(Debug)]
struct ExactAccumulator {
    finish: Finish,
    input: DataType,
    sums: Sums,
    /// With DISTINCT, the distinct values seen (unscaled).
    distinct: Option<HashSet<i128>>,
    /// How many values of each own scale the sums hold (a scaled aggregate's, over a
    /// window frame that moves: the largest scale left after values leave it).
    scale_counts: std::collections::BTreeMap<i16, u64>,
}

impl ExactAccumulator {
    /// Unscaled values as an array of the input's type.
    fn values_array(&self, values: Vec<i128>) -> Result<ArrayRef> {
        Ok(match self.input {
            DataType::Decimal128(p, s) => {
                Arc::new(Decimal128Array::from(values).with_precision_and_scale(p, s)?)
            }
            _ => Arc::new(Int64Array::from(
                values.into_iter().map(|v| v as i64).collect::<Vec<_>>(),
            )),
        })
    }
}

impl Accumulator for ExactAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let squares = self.finish.squares();
        match &mut self.distinct {
            Some(seen) => for_each_value(&values[0], |_, v| {
                seen.insert(v);
                Ok(())
            }),
            None => {
                let scales = scales_of(values)?;
                let counts = &mut self.scale_counts;
                for_each_value(&values[0], |row, v| {
                    let scale = scale_at(&scales, row);
                    if let Some(s) = scale {
                        *counts.entry(s).or_default() += 1;
                    }
                    self.sums.scaled(scale);
                    self.sums.add(v, 1, squares)
                })
            }
        }
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let squares = self.finish.squares();
        let scales = scales_of(values)?;
        let counts = &mut self.scale_counts;
        for_each_value(&values[0], |row, v| {
            if let Some(s) = scale_at(&scales, row) {
                if let Some(n) = counts.get_mut(&s) {
                    *n -= 1;
                    if *n == 0 {
                        counts.remove(&s);
                    }
                }
            }
            self.sums.add(v, -1, squares)
        })?;
        if scales.is_some() {
            self.sums.places = self.scale_counts.keys().next_back().copied();
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        self.distinct.is_none()
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        if let Some(seen) = &mut self.distinct {
            let lists: &ListArray = states[0].as_list();
            for i in 0..lists.len() {
                if !lists.is_null(i) {
                    for_each_value(&lists.value(i), |_, v| {
                        seen.insert(v);
                        Ok(())
                    })?;
                }
            }
            return Ok(());
        }
        let mut one = ExactGroups {
            finish: self.finish,
            groups: vec![self.sums],
        };
        one.merge_batch(states, &vec![0; states[0].len()], 1)?;
        self.sums = one.groups[0];
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        if let Some(seen) = &self.distinct {
            let values = self.values_array(seen.iter().copied().collect())?;
            return Ok(vec![ScalarValue::List(Arc::new(single_list(values)))]);
        }
        Ok(vec![
            ScalarValue::Int64(Some(self.sums.count)),
            ScalarValue::Decimal256(Some(self.sums.sum), 76, 0),
            ScalarValue::Decimal256(Some(self.sums.squares), 76, 0),
            ScalarValue::Int16(self.sums.places),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let sums = match &self.distinct {
            Some(seen) => {
                let mut sums = Sums::default();
                for v in seen {
                    sums.add(*v, 1, self.finish.squares())?;
                }
                sums
            }
            None => self.sums,
        };
        ScalarValue::try_from_array(&self.finish.results(vec![sums])?, 0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .distinct
                .as_ref()
                .map_or(0, |s| s.capacity() * std::mem::size_of::<i128>())
    }
}

/// Youngs and Cramer's running count, sum and sum of squared deviations of doubles,
/// updated and combined as PostgreSQL's `float8_accum` and `float8_combine` do, so that
/// the variances round as PostgreSQL's.
#[derive(Debug, Default, Clone, Copy)]
struct Youngs {
    n: f64,
    sx: f64,
    sxx: f64,
}

fn float_overflow() -> datafusion::error::DataFusionError {
    SqlStateError::new("22003", "value out of range: overflow").into()
}

impl Youngs {
    fn add(&mut self, x: f64) -> Result<()> {
        let previous = self.n;
        self.n += 1.0;
        let sx = self.sx + x;
        if previous > 0.0 {
            let tmp = x * self.n - sx;
            self.sxx += tmp * tmp / (self.n * previous);
            if sx.is_infinite() || self.sxx.is_infinite() {
                if self.sx.is_finite() && x.is_finite() {
                    return Err(float_overflow());
                }
                self.sxx = f64::NAN;
            }
        } else if !x.is_finite() {
            self.sxx = f64::NAN;
        }
        self.sx = sx;
        Ok(())
    }

    fn combine(&mut self, other: Youngs) -> Result<()> {
        if other.n == 0.0 {
            return Ok(());
        }
        if self.n == 0.0 {
            *self = other;
            return Ok(());
        }
        let n = self.n + other.n;
        let tmp = self.sx / self.n - other.sx / other.n;
        let sxx = self.sxx + other.sxx + self.n * other.n * tmp * tmp / n;
        if sxx.is_infinite() && self.sxx.is_finite() && other.sxx.is_finite() {
            return Err(float_overflow());
        }
        *self = Youngs {
            n,
            sx: self.sx + other.sx,
            sxx,
        };
        Ok(())
    }

    /// The variance or standard deviation; NULL without enough values.
    fn result(&self, kind: Kind) -> Option<f64> {
        let (sample, root) = match kind {
            Kind::Stddev { sample } => (sample, true),
            Kind::Variance { sample } => (sample, false),
            Kind::Avg => return (self.n > 0.0).then(|| self.sx / self.n),
        };
        if self.n == 0.0 || (sample && self.n <= 1.0) {
            return None;
        }
        let variance = self.sxx / if sample { self.n - 1.0 } else { self.n };
        Some(if root { variance.sqrt() } else { variance })
    }
}

/// The doubles of an array (reals widened), NULLs skipped.
fn doubles(array: &ArrayRef) -> Result<Vec<f64>> {
    let doubles = datafusion::arrow::compute::cast(array, &DataType::Float64)?;
    Ok(doubles
        .as_primitive::<Float64Type>()
        .iter()
        .flatten()
        .collect())
}

/// A variance or standard deviation of doubles; with DISTINCT, of the distinct values,
/// taken in ascending order as PostgreSQL's sort for DISTINCT gives them.
#[derive(Debug)]
struct FloatAccumulator {
    kind: Kind,
    youngs: Youngs,
    /// With DISTINCT, the bits of the distinct values seen (-0 as 0, one NaN).
    distinct: Option<HashSet<u64>>,
}

/// The bits a double is kept as among distinct values: values PostgreSQL holds equal
/// (0 and -0, every NaN) have the same bits.
fn distinct_bits(x: f64) -> u64 {
    if x.is_nan() {
        f64::NAN.to_bits()
    } else if x == 0.0 {
        0.0f64.to_bits()
    } else {
        x.to_bits()
    }
}

impl Accumulator for FloatAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = doubles(&values[0])?;
        match &mut self.distinct {
            Some(seen) => seen.extend(values.into_iter().map(distinct_bits)),
            None => {
                for x in values {
                    self.youngs.add(x)?;
                }
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        if let Some(seen) = &mut self.distinct {
            let lists: &ListArray = states[0].as_list();
            for i in (0..lists.len()).filter(|i| !lists.is_null(*i)) {
                seen.extend(doubles(&lists.value(i))?.into_iter().map(distinct_bits));
            }
            return Ok(());
        }
        let part = |i: usize| states[i].as_primitive::<Float64Type>();
        let (n, sx, sxx) = (part(0), part(1), part(2));
        for row in (0..n.len()).filter(|row| !n.is_null(*row)) {
            self.youngs.combine(Youngs {
                n: n.value(row),
                sx: sx.value(row),
                sxx: sxx.value(row),
            })?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        if let Some(seen) = &self.distinct {
            let values: Float64Array = seen.iter().map(|b| Some(f64::from_bits(*b))).collect();
            return Ok(vec![ScalarValue::List(Arc::new(single_list(Arc::new(
                values,
            ))))]);
        }
        Ok([self.youngs.n, self.youngs.sx, self.youngs.sxx]
            .into_iter()
            .map(|v| ScalarValue::Float64(Some(v)))
            .collect())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let youngs = match &self.distinct {
            Some(seen) => {
                let mut values: Vec<f64> = seen.iter().map(|b| f64::from_bits(*b)).collect();
                values.sort_by(f64::total_cmp);
                let mut youngs = Youngs::default();
                for x in values {
                    youngs.add(x)?;
                }
                youngs
            }
            None => self.youngs,
        };
        Ok(ScalarValue::Float64(youngs.result(self.kind)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .distinct
                .as_ref()
                .map_or(0, |s| s.capacity() * std::mem::size_of::<u64>())
    }
}

/// A variance or standard deviation of doubles over a sliding window frame: the frame's
/// values are kept (rows leave from the front) and summed afresh for each result, as
/// PostgreSQL does; taking leaving rows back out of running sums would drift.
#[derive(Debug)]
struct SlidingFloat {
    kind: Kind,
    frame: VecDeque<f64>,
}

impl Accumulator for SlidingFloat {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.frame.extend(doubles(&values[0])?);
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let leaving = doubles(&values[0])?.len();
        self.frame.drain(..leaving.min(self.frame.len()));
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, _states: &[ArrayRef]) -> Result<()> {
        Err(datafusion::error::DataFusionError::Internal(
            "a window frame's variance is not merged".into(),
        ))
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Err(datafusion::error::DataFusionError::Internal(
            "a window frame's variance has no state".into(),
        ))
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut youngs = Youngs::default();
        for x in &self.frame {
            youngs.add(*x)?;
        }
        Ok(ScalarValue::Float64(youngs.result(self.kind)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.frame.capacity() * std::mem::size_of::<f64>()
    }
}

/// A list array of one row holding `values`.
fn single_list(values: ArrayRef) -> ListArray {
    let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
    let offsets = datafusion::arrow::buffer::OffsetBuffer::from_lengths([values.len()]);
    ListArray::new(field, offsets, values, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL's text of an aggregate of integers, as its display numeric holds it.
    fn text(kind: Kind, values: &[i64]) -> Option<String> {
        let finish = Finish {
            kind,
            scale: 0,
            out: RESULT_SCALE,
            display: true,
        };
        let mut sums = Sums::default();
        for v in values {
            sums.add(i128::from(*v), 1, finish.squares()).unwrap();
        }
        finish.text(sums).unwrap()
    }

    #[test]
    fn texts_have_postgresql_places() {
        let avg = |values: &[i64]| text(Kind::Avg, values).unwrap();
        // Equal first base-10000 words: four places more.
        assert_eq!(avg(&[1, 1, 1, 1, 1]), "1.00000000000000000000");
        assert_eq!(avg(&[10, 10]), "10.0000000000000000");
        assert_eq!(avg(&[0, 0, 1]), "0.33333333333333333333");
        assert_eq!(avg(&[1, 2]), "1.5000000000000000");
        assert_eq!(avg(&[-1, -2]), "-1.5000000000000000");
        assert_eq!(text(Kind::Avg, &[]), None);
        let variance = |values: &[i64]| text(Kind::Variance { sample: true }, values);
        assert_eq!(variance(&[1, 2, 4]).unwrap(), "2.3333333333333333");
        assert_eq!(variance(&[3, 3]).unwrap(), "0");
        assert_eq!(variance(&[3]), None);
    }

    /// The aggregate of `values` by the single-group accumulator; checked against the
    /// grouped one, which sees the values in two partial states merged into one group.
    fn accumulate(kind: Kind, values: &[i64]) -> String {
        let finish = Finish {
            kind,
            scale: 0,
            out: RESULT_SCALE,
            display: false,
        };
        let mut acc = ExactAccumulator {
            finish,
            input: DataType::Int64,
            sums: Sums::default(),
            distinct: None,
            scale_counts: Default::default(),
        };
        let array: ArrayRef = Arc::new(Int64Array::from(values.to_vec()));
        acc.update_batch(std::slice::from_ref(&array)).unwrap();
        let single = acc.evaluate().unwrap().to_string();

        let half = values.len() / 2;
        let mut partial = ExactGroups {
            finish,
            groups: Vec::new(),
        };
        let groups: Vec<usize> = (0..values.len()).map(|i| usize::from(i >= half)).collect();
        partial.update_batch(&[array], &groups, None, 2).unwrap();
        let state = partial.state(EmitTo::All).unwrap();
        let mut last = ExactGroups {
            finish,
            groups: Vec::new(),
        };
        last.merge_batch(&state, &[0, 0], 1).unwrap();
        let grouped = last.evaluate(EmitTo::All).unwrap();
        let grouped = ScalarValue::try_from_array(&grouped, 0)
            .unwrap()
            .to_string();
        assert_eq!(single, grouped);
        single
    }

    #[test]
    fn postgresqls_values() {
        // PostgreSQL 15: avg 2.3333333333333333, stddev 1.5275252316519467,
        // stddev_pop 1.2472191289246471, var_pop 1.5555555555555556.
        assert_eq!(accumulate(Kind::Avg, &[1, 2, 4]), "2.33333333333333330000");
        assert_eq!(
            accumulate(Kind::Stddev { sample: true }, &[1, 2, 4]),
            "1.52752523165194670000"
        );
        assert_eq!(
            accumulate(Kind::Stddev { sample: false }, &[1, 2, 4]),
            "1.24721912892464710000"
        );
        assert_eq!(
            accumulate(Kind::Variance { sample: false }, &[1, 2, 4]),
            "1.55555555555555560000"
        );
        assert_eq!(accumulate(Kind::Variance { sample: true }, &[5]), "NULL");
        assert_eq!(
            accumulate(Kind::Variance { sample: true }, &[5, 5]),
            "0.00000000000000000000"
        );
    }
}
