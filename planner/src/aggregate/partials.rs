//! The states a pushed-down aggregation keeps: groups found by hashing or, for keys of few
//! values, by indexing a table with their combined codes, and DataFusion's accumulators.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Int64Array, PrimitiveArray,
    RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::{cast, filter as filter_array, take};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Field, Int32Type, Int64Type, Schema, UInt32Type,
};
use datafusion::common::cast::as_boolean_array;
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::GroupsAccumulatorAdapter;
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

use super::{evaluate, AggregatePlan, Key};

/// Groups a partition's shared partials hold at most before they are emitted.
pub(super) const SHARED_GROUPS: usize = 1 << 20;

/// What one partition's partial states hold of the query memory pool (`query_memory`): the
/// partition's shared partials plus the segment's own being built, grown as groups are
/// added. Shared partials the pool cannot hold are emitted early (their states merge all
/// the same); a segment's own partials that it cannot hold fail the query with "resources
/// exhausted" (53200) rather than grow past the pool.
pub(super) struct Held {
    reservation: Mutex<MemoryReservation>,
    shared: AtomicUsize,
    local: AtomicUsize,
    /// The shared partials outgrew the pool: emit them after this part.
    over: std::sync::atomic::AtomicBool,
}

impl Held {
    pub(super) fn new(pool: &Arc<dyn MemoryPool>, partition: usize) -> Held {
        Held {
            reservation: Mutex::new(
                MemoryConsumer::new(format!("HengeAggregateExec[{partition}]")).register(pool),
            ),
            shared: AtomicUsize::new(0),
            local: AtomicUsize::new(0),
            over: Default::default(),
        }
    }

    /// The shared partials now take `bytes`; past what the pool grants they are marked to
    /// be emitted ([`Held::over`]).
    pub(super) fn shared(&self, bytes: usize) {
        self.shared.store(bytes, Ordering::Relaxed);
        if self.resize().is_err() {
            self.over.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the shared partials outgrew the pool since this was last asked.
    pub(super) fn over(&self) -> bool {
        self.over.swap(false, Ordering::Relaxed)
    }

    /// The segment's own partials now take `bytes` (0 once emitted).
    pub(super) fn local(&self, bytes: usize) -> Result<()> {
        self.local.store(bytes, Ordering::Relaxed);
        self.resize()
    }

    fn resize(&self) -> Result<()> {
        let total = self.shared.load(Ordering::Relaxed) + self.local.load(Ordering::Relaxed);
        self.reservation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_resize(total)
    }
}

/// Accumulators with the groups they hold.
enum Groups {
    /// No GROUP BY: one accumulator per aggregate, fed whole arrays.
    Global(Vec<Box<dyn Accumulator>>),
    Keyed {
        index: GroupIndex,
        accumulators: Vec<Box<dyn GroupsAccumulator>>,
        /// The group of each row of the batch being added (reused).
        indices: Vec<usize>,
    },
}

/// How rows find their group.
enum GroupIndex {
    /// By hashing the keys (DataFusion's own group tables).
    Hashed(Box<dyn GroupValues>),
    /// Every key a string grouped on dictionary ids, and few combinations of them.
    Dense(DenseIds),
}

/// How a key's values become small numbers (codes) in [`DenseIds`].
#[derive(Debug, Clone, Copy)]
pub(super) enum Code {
    /// Dictionary ids, as they are.
    Id,
    /// Integers (dates, timestamps) counted from the segment's smallest value.
    Offset(i64),
}

/// Groups found without hashing: the codes of a row's keys, combined into one number, index
/// a table of groups. For keys of few values: strings by dictionary id, integers within a
/// narrow range.
pub(super) struct DenseIds {
    codes: Vec<Code>,
    /// For each key, its number of values plus one: the last code stands for NULL.
    sizes: Vec<u32>,
    /// The group of each combination of codes, `u32::MAX` where there is none yet.
    slots: Vec<u32>,
    /// The combination of each group.
    groups: Vec<u32>,
    /// The combination of each row of the batch being added (reused).
    combined: Vec<u32>,
}

impl DenseIds {
    /// A table for keys coded by `codes` with `values` values each, when the combinations
    /// are few enough for one (at most `limit`).
    pub(super) fn new(codes: Vec<(Code, u64)>, limit: usize) -> Option<DenseIds> {
        let sizes: Vec<u32> = codes
            .iter()
            .map(|&(_, values)| u32::try_from(values.checked_add(1)?).ok())
            .collect::<Option<_>>()?;
        let combinations = sizes
            .iter()
            .try_fold(1usize, |n, &s| n.checked_mul(s as usize))
            .filter(|&n| n <= limit)?;
        Some(DenseIds {
            codes: codes.into_iter().map(|(c, _)| c).collect(),
            sizes,
            slots: vec![u32::MAX; combinations],
            groups: Vec::new(),
            combined: Vec::new(),
        })
    }

    fn intern(&mut self, keys: &[ArrayRef], indices: &mut Vec<usize>) -> Result<()> {
        let rows = keys.first().map_or(0, |k| k.len());
        self.combined.clear();
        self.combined.resize(rows, 0);
        let outside =
            || DataFusionError::Internal("a group key outside its segment's range".into());
        for ((key, &size), code) in keys.iter().zip(&self.sizes).zip(&self.codes) {
            let within = match (code, key.data_type()) {
                (Code::Id, _) => {
                    let ids = key.as_primitive::<UInt32Type>();
                    combine(&mut self.combined, ids, size, |&id| u64::from(id))
                }
                (Code::Offset(min), DataType::Int32) => {
                    let values = key.as_primitive::<Int32Type>();
                    combine(&mut self.combined, values, size, |&v| {
                        i64::from(v).wrapping_sub(*min) as u64
                    })
                }
                (Code::Offset(min), DataType::Date32) => {
                    let values = key.as_primitive::<Date32Type>();
                    combine(&mut self.combined, values, size, |&v| {
                        i64::from(v).wrapping_sub(*min) as u64
                    })
                }
                (Code::Offset(min), _) => {
                    let values = cast(key, &DataType::Int64)?;
                    let values = values.as_primitive::<Int64Type>();
                    combine(&mut self.combined, values, size, |&v| {
                        v.wrapping_sub(*min) as u64
                    })
                }
            };
            if !within {
                return Err(outside());
            }
        }
        indices.clear();
        let (slots, groups) = (&mut self.slots, &mut self.groups);
        let mut within = true;
        indices.extend(self.combined.iter().map(|&c| {
            let Some(slot) = slots.get_mut(c as usize) else {
                within = false;
                return 0;
            };
            if *slot == u32::MAX {
                *slot = groups.len() as u32;
                groups.push(c);
            }
            *slot as usize
        }));
        within.then_some(()).ok_or_else(outside)
    }

    /// The keys of every group: dictionary ids, or the integers as `Int64`.
    fn emit(&mut self) -> Vec<ArrayRef> {
        let mut codes: Vec<Vec<Option<u32>>> =
            vec![Vec::with_capacity(self.groups.len()); self.sizes.len()];
        for &group in &self.groups {
            let mut c = group;
            for (k, &size) in self.sizes.iter().enumerate().rev() {
                let code = c % size;
                c /= size;
                codes[k].push((code != size - 1).then_some(code));
            }
        }
        self.groups.clear();
        self.slots.fill(u32::MAX);
        codes
            .into_iter()
            .zip(&self.codes)
            .map(|(codes, code)| match code {
                Code::Id => Arc::new(UInt32Array::from(codes)) as ArrayRef,
                Code::Offset(min) => Arc::new(Int64Array::from_iter(
                    codes.into_iter().map(|c| c.map(|c| min + i64::from(c))),
                )),
            })
            .collect()
    }
}

/// Folds one key's codes into the combined codes of the rows: `combined * size + code`,
/// NULL rows taking the last code. `code` is a value's distance from the key's least (a
/// value below it wraps to a huge one); `false` when a value has no code. One pass without
/// a branch per row: codes are checked together.
fn combine<T: ArrowPrimitiveType>(
    combined: &mut [u32],
    values: &PrimitiveArray<T>,
    size: u32,
    code: impl Fn(&T::Native) -> u64,
) -> bool {
    let null = size - 1;
    let mut within = true;
    match values.nulls().filter(|n| n.null_count() > 0) {
        None => {
            for (c, value) in combined.iter_mut().zip(values.values().iter()) {
                let code = code(value);
                within &= code < u64::from(null);
                *c = *c * size + code as u32;
            }
        }
        Some(nulls) => {
            for ((i, c), value) in combined.iter_mut().enumerate().zip(values.values().iter()) {
                let code = match nulls.is_valid(i) {
                    true => {
                        let code = code(value);
                        within &= code < u64::from(null);
                        code
                    }
                    false => u64::from(null),
                };
                *c = *c * size + code as u32;
            }
        }
    }
    within
}

/// An array of `value` at least `rows` long. Arrays of a block's rows (the usual size) of
/// fixed-width values are made once for the process and shared: `count(*)` counts a constant, and making its 64 Ki
/// values afresh for every query and partition (fresh pages, each zeroed by the kernel) was a
/// fifth of a `count(*)` the indexes answer.
fn constant_array(value: &ScalarValue, rows: usize) -> Result<ArrayRef> {
    const SHARED_ROWS: usize = 1 << 16;
    /// Distinct constants kept at most (aggregate arguments are few): with 16-byte values,
    /// 8 MiB at most.
    const KEPT: usize = 8;
    static SHARED: Mutex<Vec<(ScalarValue, ArrayRef)>> = Mutex::new(Vec::new());
    // Only fixed-width values: a long string constant would be kept 64 Ki times.
    let fixed = value.data_type().primitive_width().is_some() || value.is_null();
    if rows > SHARED_ROWS || !fixed {
        return value.to_array_of_size(rows.max(SHARED_ROWS));
    }
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, array)) = shared.iter().find(|(v, _)| v == value) {
        return Ok(array.clone());
    }
    let array = value.to_array_of_size(SHARED_ROWS)?;
    if shared.len() >= KEPT {
        shared.clear();
    }
    shared.push((value.clone(), array.clone()));
    Ok(array)
}

/// Runs of rows in one group at least this long are aggregated on their own, the way
/// aggregates without GROUP BY are (a sum over a slice, in lanes), and the run's state merged
/// into its group's. Row by row, every row of a run adds to the same group's state, each add
/// waiting for the one before: that was half of a yearly GROUP BY's time, and (for runs of
/// one string key) of TPC-H's sums by return flag and line status.
const LONG_RUN: usize = 512;

/// The runs of rows of one group in `indices` (each row's group), with each run's group in
/// `groups`, when runs of at least [`LONG_RUN`] rows hold half the rows or more; `None`
/// (and `groups` left as it was) otherwise.
fn group_runs(indices: &[usize], groups: &mut Vec<usize>) -> Option<Vec<Range<usize>>> {
    let rows = indices.len();
    if rows < 2 * LONG_RUN {
        return None;
    }
    // Sixteen windows of sixteen rows spread over the batch: where a group changes within
    // every one of them, runs are short, and counting them row by row (a mispredicted
    // branch on most rows: a tenth of a GROUP BY of dates in random order) is not worth it.
    let step = rows / 16;
    let quiet = (0..16).any(|w| {
        let window = &indices[w * step..w * step + 16];
        window.iter().all(|&g| g == window[0])
    });
    if !quiet {
        return None;
    }
    let (mut runs, mut run_groups) = (Vec::new(), Vec::new());
    let (mut start, mut short) = (0, 0);
    while start < rows {
        let group = indices[start];
        let end = run_end(indices, start, group);
        if end - start < LONG_RUN {
            short += end - start;
            // More than half the rows in short runs: not worth it.
            if short * 2 > rows {
                return None;
            }
        }
        runs.push(start..end);
        run_groups.push(group);
        start = end;
    }
    *groups = run_groups;
    Some(runs)
}

/// The end of the run of rows of `group` that starts at `start` in `indices`. Whole chunks
/// of rows are compared at once, without a branch per row: the rows of a long run cost
/// little more than reading them (comparing row by row was a sixth of TPC-H's sums by
/// return flag and line status).
fn run_end(indices: &[usize], start: usize, group: usize) -> usize {
    const CHUNK: usize = 32;
    let mut at = start + 1;
    while let Some(chunk) = indices.get(at..at + CHUNK) {
        if chunk.iter().fold(0, |differ, &g| differ | (g ^ group)) != 0 {
            break;
        }
        at += CHUNK;
    }
    while indices.get(at) == Some(&group) {
        at += 1;
    }
    at
}

/// The states of aggregate `aggregate` over the rows of `run` of its arguments `values`
/// (those `filter` keeps), as one-row arrays for `merge_batch`.
fn run_states(
    aggregate: &AggregateFunctionExpr,
    values: &[ArrayRef],
    filter: Option<&BooleanArray>,
    run: &Range<usize>,
) -> Result<Vec<ArrayRef>> {
    let mut values: Vec<ArrayRef> = values
        .iter()
        .map(|v| v.slice(run.start, run.len()))
        .collect();
    if let Some(filter) = filter {
        let filter = filter.slice(run.start, run.len());
        values = values
            .iter()
            .map(|v| Ok(filter_array(v, &filter)?))
            .collect::<Result<_>>()?;
    }
    let mut accumulator = aggregate.create_accumulator()?;
    accumulator.update_batch(&values)?;
    accumulator.state()?.iter().map(|s| s.to_array()).collect()
}

/// Groups found by hashing each combination of keys once rather than each row, where the
/// keys are time keys constant over runs of rows (a time bucket: one run per day or week of
/// a segment's sorted rows) and dictionary ids (a string dimension of few values): each
/// row's combination is its run and its ids, which index a small table of the combinations
/// met in the batch; only the first row of each is interned in the hashed groups. Hashing
/// every row's bucket and ids was most of a weekly Grafana panel grouped by a dimension.
#[derive(Default)]
struct Combinations {
    /// The combination of each row, then its place among `firsts`.
    combined: Vec<u32>,
    /// The place among `firsts` of each combination, `u32::MAX` where none is met yet.
    slots: Vec<u32>,
    /// The first row of each combination met.
    firsts: Vec<u32>,
    /// The group of each combination met.
    groups: Vec<usize>,
}

impl Combinations {
    /// The group of every row in `indices`, interning new groups in `values`, when every
    /// key is either timed (`timed(k)`: one value per run, each row's run in `runs`) or
    /// dictionary ids (one per row), and their combinations are at most the rows; `false`
    /// (nothing done) otherwise.
    fn intern(
        &mut self,
        values: &mut dyn GroupValues,
        keys: &[ArrayRef],
        timed: impl Fn(usize) -> bool,
        runs: &UInt32Array,
        indices: &mut Vec<usize>,
    ) -> Result<bool> {
        let rows = runs.len();
        let Some(&last) = runs.values().last() else {
            return Ok(false);
        };
        let mut combinations = last as usize + 1;
        let limit = rows.max(1024);
        let mut ids = Vec::new();
        for (k, key) in keys.iter().enumerate() {
            if timed(k) {
                continue;
            }
            let Some(key) = key.as_primitive_opt::<UInt32Type>() else {
                return Ok(false);
            };
            // The values seen and one more code for NULL.
            let size = key.values().iter().copied().max().unwrap_or(0) as usize + 2;
            combinations = match combinations.checked_mul(size) {
                Some(n) if n <= limit => n,
                _ => return Ok(false),
            };
            ids.push((key, size as u32));
        }
        self.combined.clear();
        self.combined.extend_from_slice(runs.values());
        for (key, size) in ids {
            let null = size - 1;
            match key.nulls().filter(|n| n.null_count() > 0) {
                None => {
                    for (c, &id) in self.combined.iter_mut().zip(key.values().iter()) {
                        *c = *c * size + id;
                    }
                }
                Some(nulls) => {
                    for (row, (c, &id)) in self
                        .combined
                        .iter_mut()
                        .zip(key.values().iter())
                        .enumerate()
                    {
                        *c = *c * size + if nulls.is_valid(row) { id } else { null };
                    }
                }
            }
        }
        self.slots.clear();
        self.slots.resize(combinations, u32::MAX);
        self.firsts.clear();
        for (row, c) in self.combined.iter_mut().enumerate() {
            let slot = &mut self.slots[*c as usize];
            if *slot == u32::MAX {
                *slot = self.firsts.len() as u32;
                self.firsts.push(row as u32);
            }
            *c = *slot;
        }
        let firsts = UInt32Array::from_iter_values(self.firsts.iter().copied());
        let first_runs = take(runs, &firsts, None)?;
        let first_keys = keys
            .iter()
            .enumerate()
            .map(|(k, key)| match timed(k) {
                true => Ok(take(key, &first_runs, None)?),
                false => Ok(take(key, &firsts, None)?),
            })
            .collect::<Result<Vec<_>>>()?;
        values.intern(&first_keys, &mut self.groups)?;
        indices.clear();
        indices.extend(self.combined.iter().map(|&c| self.groups[c as usize]));
        Ok(true)
    }
}

/// The group keys of a batch of rows.
pub(super) enum Keys {
    /// One array per key with a value for every row.
    Rows(Vec<ArrayRef>),
    /// One array per key with a value for every run of rows: `runs` are the runs.
    Runs(Vec<ArrayRef>, Vec<Range<usize>>),
    /// One array per key, with a value for every row but for time keys, which have one per
    /// run of rows: the second array is each row's run (ascending).
    Spread(Vec<ArrayRef>, UInt32Array),
}

impl Keys {
    /// The keys with a value for every row: the time keys of `Spread` spread over their
    /// runs' rows, the others as they are.
    fn rows(&self, plan: &AggregatePlan) -> Result<Cow<'_, [ArrayRef]>> {
        match self {
            Keys::Rows(keys) | Keys::Runs(keys, _) => Ok(Cow::Borrowed(keys)),
            Keys::Spread(keys, run_of_row) => keys
                .iter()
                .zip(&plan.keys)
                .map(|(k, key)| match key {
                    Key::Time(_) => Ok(take(k, run_of_row, None)?),
                    _ => Ok(k.clone()),
                })
                .collect::<Result<Vec<_>>>()
                .map(Cow::Owned),
        }
    }
}

/// The aggregates' states in the groups of a part (a segment or a buffered batch) or of a
/// whole partition.
pub(super) struct Partials {
    plan: Arc<AggregatePlan>,
    groups: Groups,
    /// Arrays of the constant arguments (`count(*)` counts a literal 1), kept to be sliced.
    constants: Vec<Option<ArrayRef>>,
    /// The group of each run of the batch being added (reused).
    run_indices: Vec<usize>,
    /// Finds the groups of rows keyed by time buckets and dictionary ids (reused).
    combinations: Combinations,
    /// Rows added so far.
    rows: usize,
}

impl Partials {
    /// Empty partials. `ids` when string keys come as dictionary ids; `dense` with their
    /// dictionaries' lengths to group them without hashing, where that fits.
    pub(super) fn new(
        plan: Arc<AggregatePlan>,
        ids: bool,
        dense: Option<DenseIds>,
    ) -> Result<Partials> {
        let groups = if plan.keys.is_empty() {
            Groups::Global(
                plan.aggregates
                    .iter()
                    .map(|a| a.create_accumulator())
                    .collect::<Result<_>>()?,
            )
        } else {
            let accumulators = plan
                .aggregates
                .iter()
                .map(|a| {
                    if a.groups_accumulator_supported() {
                        a.create_groups_accumulator()
                    } else {
                        let a = a.clone();
                        Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
                            a.create_accumulator()
                        })) as Box<dyn GroupsAccumulator>)
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            let index = match dense {
                Some(dense) => GroupIndex::Dense(dense),
                None => {
                    let fields: Vec<Field> = plan
                        .key_types(ids)
                        .into_iter()
                        .enumerate()
                        .map(|(i, ty)| Field::new(format!("key{i}"), ty, true))
                        .collect();
                    GroupIndex::Hashed(new_group_values(
                        Arc::new(Schema::new(fields)),
                        &GroupOrdering::None,
                    )?)
                }
            };
            Groups::Keyed {
                index,
                accumulators,
                indices: Vec::new(),
            }
        };
        let constants = vec![None; plan.arguments.iter().flatten().count()];
        Ok(Partials {
            plan,
            groups,
            constants,
            run_indices: Vec::new(),
            combinations: Combinations::default(),
            rows: 0,
        })
    }

    /// The number of groups held.
    pub(super) fn groups(&self) -> usize {
        match &self.groups {
            Groups::Global(_) => 1,
            Groups::Keyed { index, .. } => match index {
                GroupIndex::Hashed(values) => values.len(),
                GroupIndex::Dense(dense) => dense.groups.len(),
            },
        }
    }

    /// Memory the groups and their states take.
    pub(super) fn size(&self) -> usize {
        match &self.groups {
            Groups::Global(accumulators) => accumulators.iter().map(|a| a.size()).sum(),
            Groups::Keyed {
                index,
                accumulators,
                indices,
            } => {
                let index = match index {
                    GroupIndex::Hashed(values) => values.size(),
                    GroupIndex::Dense(dense) => {
                        (dense.slots.capacity()
                            + dense.groups.capacity()
                            + dense.combined.capacity())
                            * std::mem::size_of::<u32>()
                    }
                };
                index
                    + accumulators.iter().map(|a| a.size()).sum::<usize>()
                    + indices.capacity() * std::mem::size_of::<usize>()
            }
        }
    }

    /// The arguments of every aggregate for the rows of `batch`.
    fn arguments(&mut self, batch: &RecordBatch) -> Result<Vec<Vec<ArrayRef>>> {
        let rows = batch.num_rows();
        let mut constants = self.constants.iter_mut();
        self.plan
            .arguments
            .iter()
            .map(|arguments| {
                arguments
                    .iter()
                    .map(|e| {
                        let cached = constants.next().ok_or_else(|| {
                            DataFusionError::Internal("an argument without a slot".into())
                        })?;
                        let Some(literal) = e.downcast_ref::<Literal>() else {
                            return evaluate(e, batch);
                        };
                        if cached.as_ref().is_none_or(|c| c.len() < rows) {
                            *cached = Some(constant_array(literal.value(), rows)?);
                        }
                        Ok(cached.as_ref().map_or_else(
                            || new_null_array(&DataType::Null, 0),
                            |c| c.slice(0, rows),
                        ))
                    })
                    .collect()
            })
            .collect()
    }

    /// Adds the rows of `batch` (laid out as the read columns), whose group keys are `keys`.
    pub(super) fn add(&mut self, batch: &RecordBatch, keys: &Keys) -> Result<()> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        let arguments = self.arguments(batch)?;
        let filters = self
            .plan
            .filters
            .iter()
            .map(|f| f.as_ref().map(|f| evaluate(f, batch)).transpose())
            .collect::<Result<Vec<_>>>()?;
        match &mut self.groups {
            Groups::Global(accumulators) => {
                for ((accumulator, values), filter) in
                    accumulators.iter_mut().zip(arguments).zip(&filters)
                {
                    let values = match filter {
                        None => values,
                        Some(mask) => values
                            .iter()
                            .map(|v| Ok(filter_array(v, as_boolean_array(mask)?)?))
                            .collect::<Result<Vec<_>>>()?,
                    };
                    accumulator.update_batch(&values)?;
                }
            }
            Groups::Keyed {
                index,
                accumulators,
                indices,
            } => {
                let runs = match keys {
                    Keys::Runs(_, runs) => Some(runs),
                    Keys::Rows(_) | Keys::Spread(..) => None,
                };
                let target = match runs {
                    Some(_) => &mut self.run_indices,
                    None => &mut *indices,
                };
                let found = match (&mut *index, keys) {
                    (GroupIndex::Hashed(values), Keys::Spread(keys, run_of_row)) => {
                        let plan = &self.plan;
                        let timed = |k: usize| matches!(plan.keys.get(k), Some(Key::Time(_)));
                        self.combinations.intern(
                            values.as_mut(),
                            keys,
                            timed,
                            run_of_row,
                            target,
                        )?
                    }
                    _ => false,
                };
                let count = match index {
                    GroupIndex::Hashed(values) => {
                        if !found {
                            values.intern(&keys.rows(&self.plan)?, target)?;
                        }
                        values.len()
                    }
                    GroupIndex::Dense(dense) => {
                        dense.intern(&keys.rows(&self.plan)?, target)?;
                        dense.groups.len()
                    }
                };
                // Rows of one group in long runs are aggregated run by run too: the rows of a
                // segment are sorted by time and then by their strings, so a day's rows of
                // one string key (TPC-H's return flag and line status) follow each other.
                let found;
                let runs = match runs {
                    Some(runs) => Some(runs),
                    None => {
                        found = group_runs(indices, &mut self.run_indices);
                        found.as_ref()
                    }
                };
                // Rows of long runs are aggregated run by run (below); the others as rows.
                let mut rest: Option<UInt32Array> = None;
                if let Some(runs) = runs {
                    indices.clear();
                    let mut short = Vec::new();
                    for (run, &group) in runs.iter().zip(&self.run_indices) {
                        if run.len() < LONG_RUN {
                            indices.extend(std::iter::repeat_n(group, run.len()));
                            short.extend(run.start as u32..run.end as u32);
                        }
                    }
                    if short.len() < rows {
                        rest = Some(UInt32Array::from(short));
                    }
                }
                for (i, ((accumulator, values), filter)) in accumulators
                    .iter_mut()
                    .zip(arguments)
                    .zip(&filters)
                    .enumerate()
                {
                    let filter = filter.as_ref().map(|f| as_boolean_array(f)).transpose()?;
                    let (Some(runs), Some(short)) = (runs, &rest) else {
                        accumulator.update_batch(&values, indices, filter, count)?;
                        continue;
                    };
                    for (run, &group) in runs.iter().zip(&self.run_indices) {
                        if run.len() >= LONG_RUN {
                            let states =
                                run_states(&self.plan.aggregates[i], &values, filter, run)?;
                            accumulator.merge_batch(&states, &[group], count)?;
                        }
                    }
                    if !short.is_empty() {
                        let values = values
                            .iter()
                            .map(|v| Ok(take(v, short, None)?))
                            .collect::<Result<Vec<_>>>()?;
                        let filter = filter.map(|f| take(f, short, None)).transpose()?;
                        let filter = filter.as_ref().map(|f| f.as_boolean());
                        accumulator.update_batch(&values, indices, filter, count)?;
                    }
                }
            }
        }
        self.rows += rows;
        Ok(())
    }

    /// The groups' keys and states, as the partial aggregation outputs them, or `None` when
    /// no row was added. `key` turns each raw key column (ids for string keys of segments)
    /// into the output's.
    pub(super) fn finish(
        &mut self,
        key: impl Fn(usize, ArrayRef) -> Result<ArrayRef>,
    ) -> Result<Option<RecordBatch>> {
        if self.rows == 0 {
            return Ok(None);
        }
        let mut columns = Vec::new();
        match &mut self.groups {
            Groups::Global(accumulators) => {
                for accumulator in accumulators {
                    for state in accumulator.state()? {
                        columns.push(state.to_array()?);
                    }
                }
            }
            Groups::Keyed {
                index,
                accumulators,
                ..
            } => {
                let keys = match index {
                    GroupIndex::Hashed(values) => values.emit(EmitTo::All)?,
                    GroupIndex::Dense(dense) => dense.emit(),
                };
                for (i, array) in keys.into_iter().enumerate() {
                    columns.push(key(i, array)?);
                }
                for accumulator in accumulators {
                    columns.extend(accumulator.state(EmitTo::All)?);
                }
            }
        }
        self.rows = 0;
        Ok(Some(RecordBatch::try_new(
            self.plan.schema.clone(),
            columns,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_sized_constants_are_made_once() {
        let one = ScalarValue::Int64(Some(1));
        let a = constant_array(&one, 10).unwrap();
        let b = constant_array(&one, 1 << 16).unwrap();
        assert_eq!(a.len(), 1 << 16);
        assert!(a.to_data().ptr_eq(&b.to_data()));
        assert_eq!(a.as_primitive::<Int64Type>().value(65_535), 1);
        // Another type is another array; longer ones and strings are made each time.
        let other = constant_array(&ScalarValue::Int32(Some(1)), 10).unwrap();
        assert_eq!(other.data_type(), &DataType::Int32);
        let long = constant_array(&one, (1 << 16) + 1).unwrap();
        assert_eq!(long.len(), (1 << 16) + 1);
        let text = ScalarValue::Utf8(Some("x".repeat(100)));
        let (c, d) = (
            constant_array(&text, 10).unwrap(),
            constant_array(&text, 10).unwrap(),
        );
        assert!(!c.to_data().ptr_eq(&d.to_data()));
    }

    #[test]
    fn runs_of_one_group_are_found_whole() {
        // Runs of these lengths, groups alternating: every length around the chunk's.
        let batch = |lengths: &[usize]| -> Vec<usize> {
            lengths
                .iter()
                .enumerate()
                .flat_map(|(i, &n)| std::iter::repeat_n(i % 3, n))
                .collect()
        };
        let naive = |indices: &[usize]| -> Vec<Range<usize>> {
            let mut runs: Vec<Range<usize>> = Vec::new();
            for (i, g) in indices.iter().enumerate() {
                match runs.last_mut() {
                    Some(r) if indices[r.start] == *g => r.end = i + 1,
                    _ => runs.push(i..i + 1),
                }
            }
            runs
        };
        for lengths in [
            vec![2000, 1, 31, 32, 33, 600, 64, 65, 1200],
            vec![512, 511, 513, 1024, 3],
            vec![700; 12],
        ] {
            let indices = batch(&lengths);
            let mut groups = vec![99];
            let runs = group_runs(&indices, &mut groups).expect("long runs");
            assert_eq!(runs, naive(&indices));
            let firsts: Vec<usize> = runs.iter().map(|r| indices[r.start]).collect();
            assert_eq!(groups, firsts);
        }
        // Mostly short runs: none, and the groups untouched.
        let indices = batch(&[600, 300, 400, 300, 200, 100, 7, 9]);
        let short: usize = [300, 400, 300, 200, 100, 7, 9].iter().sum();
        assert!(short * 2 > indices.len());
        let mut groups = vec![99];
        assert!(group_runs(&indices, &mut groups).is_none());
        assert_eq!(groups, vec![99]);
    }
}
