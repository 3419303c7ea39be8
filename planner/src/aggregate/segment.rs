//! Aggregating one part of a scan: a segment, block by block from its indexes and decoded
//! columns (or from its bitmaps alone), or a batch of buffered rows.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, UInt32Array,
};
use datafusion::arrow::compute::{cast, filter as filter_array, filter_record_batch, take};
use datafusion::arrow::datatypes::UInt32Type;
use datafusion::common::cast::as_boolean_array;
use datafusion::error::Result;
use henge_storage::segment::footer::Stat;
use henge_storage::segment::SegmentReader;
use roaring::RoaringBitmap;

use super::partials::{Code, DenseIds, Held, Keys, Partials};
use super::{evaluate, lock, AggregatePlan, Key};
use crate::scan::{
    candidates, selected_blocks, storage_error, Candidates, Left, Picked, Residual, ScanMetrics,
    ScanSource,
};

/// The partial aggregation of buffered rows: added to `shared` when given, else emitted.
pub(super) fn aggregate_batch(
    plan: &Arc<AggregatePlan>,
    source: &ScanSource,
    batch: RecordBatch,
    shared: Option<&Mutex<Partials>>,
    held: &Held,
) -> Result<Option<RecordBatch>> {
    let mut read = batch.project(&source.columns.read)?;
    if let Some(filter) = &source.filter {
        let mask = evaluate(&filter.predicate, &read)?;
        read = filter_record_batch(&read, as_boolean_array(&mask)?)?;
    }
    let keys = plan
        .keys
        .iter()
        .map(|key| match key {
            Key::Ids(at) => Ok(read.column(*at).clone()),
            Key::Int(at) => Ok(read.column(*at).clone()),
            Key::Time(expr) | Key::Expr(expr) => evaluate(expr, &read),
        })
        .collect::<Result<Vec<_>>>()?;
    let keys = Keys::Rows(keys);
    match shared {
        Some(shared) => {
            let mut shared = lock(shared);
            shared.add(&read, &keys)?;
            held.shared(shared.size());
            Ok(None)
        }
        None => {
            let mut partials = Partials::new(plan.clone(), false, None)?;
            partials.add(&read, &keys)?;
            held.local(partials.size())?;
            let out = partials.finish(|_, array| Ok(array));
            held.local(0)?;
            out
        }
    }
}

/// The partial aggregation of one segment. It may be run again on a healed copy of the
/// segment after damage was found in a block; it then goes on from that block.
pub(super) struct SegmentAggregation<'a> {
    pub(super) plan: &'a Arc<AggregatePlan>,
    pub(super) source: &'a ScanSource,
    pub(super) metrics: &'a ScanMetrics,
    /// What the partition's partials hold of the query memory pool.
    pub(super) held: &'a Held,
    /// Whether the segment's rows go to the partition's shared partials.
    pub(super) into_shared: OnceLock<bool>,
    /// The first block not yet added.
    pub(super) next_block: AtomicUsize,
    /// Rows added so far.
    pub(super) rows: AtomicUsize,
}

impl SegmentAggregation<'_> {
    /// Adds the segment's rows to partials of its own when its keys have few values
    /// (grouped without hashing) or are dictionary ids, emitted at the end with each group's
    /// strings looked up in the dictionaries; to `shared` otherwise.
    pub(super) fn run(
        &self,
        reader: &SegmentReader,
        shared: Option<&Mutex<Partials>>,
    ) -> Result<Option<RecordBatch>> {
        let plan = self.plan;
        let read = &self.source.columns.read;
        let candidates = candidates(reader, self.source.filter.as_deref())?;
        let dense = self.dense(reader)?;
        // Decided on the first run and kept on a run after healing, which must go on the
        // way the first began.
        let into_shared = *self
            .into_shared
            .get_or_init(|| dense.is_none() && shared.is_some());
        if let (true, Some(shared)) = (into_shared, shared) {
            self.walk(reader, &candidates, |batch, keys| {
                let mut shared = lock(shared);
                shared.add(batch, keys)?;
                self.held.shared(shared.size());
                Ok(())
            })?;
            return Ok(None);
        }
        // A fresh start on every run: these partials die with a failed one.
        self.next_block.store(0, Ordering::Relaxed);
        self.rows.store(0, Ordering::Relaxed);
        if let Some(counts) = self.counts_from_bitmaps(reader, &candidates)? {
            return Ok(counts);
        }
        let mut partials = Partials::new(plan.clone(), true, dense)?;
        self.walk(reader, &candidates, |batch, keys| {
            partials.add(batch, keys)?;
            self.held.local(partials.size())
        })?;
        let held = self.held;
        let out = partials.finish(|i, array| {
            let array = match plan.keys.get(i) {
                Some(Key::Ids(at)) => {
                    let dictionary = reader.dictionary(read[*at]).map_err(storage_error)?;
                    take(
                        dictionary.as_ref(),
                        array.as_primitive::<UInt32Type>(),
                        None,
                    )?
                }
                _ => array,
            };
            let wanted = plan.schema.field(i).data_type();
            Ok(match array.data_type() == wanted {
                true => array,
                false => cast(&array, wanted)?,
            })
        });
        held.local(0)?;
        out
    }

    /// `count(*)` grouped by one string column, or that column's distinct values alone
    /// (what `count(DISTINCT c)` plans), where the indexes answer the filter exactly: no row
    /// is decoded. A group's count is the number of candidate rows in its value's bitmap;
    /// the distinct values are those whose bitmaps meet the candidates, and without a filter
    /// the dictionary's (a segment's dictionary holds exactly the values its rows have).
    /// Applies to columns with few values for counts, and with up to a quarter as many as
    /// rows for distinct values. `None` when this does not apply; `Some(None)` when no row
    /// counts.
    fn counts_from_bitmaps(
        &self,
        reader: &SegmentReader,
        found: &Candidates,
    ) -> Result<Option<Option<RecordBatch>>> {
        let plan = self.plan;
        let exact = found.residual == Residual::None;
        let (true, true, [Key::Ids(at)]) = (plan.counts_only, exact, plan.keys.as_slice()) else {
            return Ok(None);
        };
        let candidates = &found.rows;
        let column = self.source.columns.read[*at];
        let distinct_only = plan.aggregates.is_empty();
        let dictionary = reader.dictionary(column).map_err(storage_error)?;
        let (mut ids, mut counts) = (Vec::new(), Vec::new());
        if distinct_only && candidates.is_none() {
            ids.extend((0..dictionary.len() as u32).map(Some));
            if !reader.null_rows(column).map_err(storage_error)?.is_empty() {
                ids.push(None);
            }
            self.rows.store(reader.rows() as usize, Ordering::Relaxed);
            return self.groups(dictionary.as_ref(), ids, Vec::new()).map(Some);
        }
        let indexed = reader
            .footer()
            .columns
            .get(column)
            .and_then(|c| c.dictionary.as_ref())
            .is_some_and(|d| d.bitmaps.is_some());
        let limit = match distinct_only {
            true => reader.rows() as usize / 4,
            false => reader.rows() as usize / 64,
        };
        if !indexed || dictionary.len() > limit.max(64) {
            return Ok(None);
        }
        let count = |rows: RoaringBitmap| match candidates {
            Some(candidates) if distinct_only => u64::from(!rows.is_disjoint(candidates)),
            Some(candidates) => rows.intersection_len(candidates),
            None => rows.len(),
        };
        for id in 0..dictionary.len() as u32 {
            let rows = reader.value_bitmap(column, id).map_err(storage_error)?;
            match count(rows) {
                0 => {}
                n => {
                    ids.push(Some(id));
                    counts.push(n as i64);
                }
            }
        }
        match count(reader.null_rows(column).map_err(storage_error)?) {
            0 => {}
            n => {
                ids.push(None);
                counts.push(n as i64);
            }
        }
        if distinct_only {
            let rows = candidates.as_ref().map_or(reader.rows(), |c| c.len());
            self.rows.store(rows as usize, Ordering::Relaxed);
            return self.groups(dictionary.as_ref(), ids, Vec::new()).map(Some);
        }
        let rows: i64 = counts.iter().sum();
        self.rows.store(rows as usize, Ordering::Relaxed);
        self.groups(dictionary.as_ref(), ids, counts).map(Some)
    }

    /// The partial states of the groups of dictionary `ids` (`None` for NULL), each
    /// aggregate a count of `counts`; `None` when there are no groups.
    fn groups(
        &self,
        dictionary: &dyn Array,
        ids: Vec<Option<u32>>,
        counts: Vec<i64>,
    ) -> Result<Option<RecordBatch>> {
        let plan = self.plan;
        if ids.is_empty() {
            return Ok(None);
        }
        let strings = take(dictionary, &UInt32Array::from(ids), None)?;
        let wanted = plan.schema.field(0).data_type();
        let mut columns = vec![match strings.data_type() == wanted {
            true => strings,
            false => cast(&strings, wanted)?,
        }];
        let counts: ArrayRef = Arc::new(Int64Array::from(counts));
        columns.extend(plan.aggregates.iter().map(|_| counts.clone()));
        Ok(Some(RecordBatch::try_new(plan.schema.clone(), columns)?))
    }

    /// A table of groups without hashing for this segment, when every key is a string or an
    /// integer column and their values combine into few enough numbers: for strings, as
    /// many as four times the rows; for integers, whose groups are otherwise shared by the
    /// whole partition, an eighth of the rows (segments then emit few groups each).
    fn dense(&self, reader: &SegmentReader) -> Result<Option<DenseIds>> {
        if self.plan.keys.is_empty() {
            return Ok(None);
        }
        let read = &self.source.columns.read;
        let rows = reader.rows() as usize;
        let mut codes = Vec::new();
        let mut integers = false;
        for key in &self.plan.keys {
            match key {
                Key::Ids(at) => {
                    let values = reader.dictionary(read[*at]).map_err(storage_error)?.len();
                    codes.push((Code::Id, values as u64));
                }
                Key::Int(at) => {
                    integers = true;
                    let meta = reader.footer().columns.get(read[*at]);
                    match meta.map(|m| (&m.min, &m.max)) {
                        Some((Some(Stat::Int(min)), Some(Stat::Int(max)))) if min <= max => {
                            let Some(span) =
                                max.checked_sub(*min).and_then(|s| u64::try_from(s).ok())
                            else {
                                return Ok(None);
                            };
                            codes.push((Code::Offset(*min), span + 1));
                        }
                        // Every value NULL.
                        Some((None, None))
                            if meta.is_some_and(|m| m.null_count == reader.rows()) =>
                        {
                            codes.push((Code::Offset(0), 0))
                        }
                        _ => return Ok(None),
                    }
                }
                Key::Time(_) | Key::Expr(_) => return Ok(None),
            }
        }
        let limit = match integers {
            false => rows.saturating_mul(4).clamp(1 << 12, 1 << 20),
            true => (rows / 8).clamp(1 << 12, 1 << 20),
        };
        Ok(DenseIds::new(codes, limit))
    }

    /// Decodes what the aggregation needs of each block holding candidate rows, from
    /// `next_block` on, and hands the matching rows and their group keys to `add`.
    fn walk(
        &self,
        reader: &SegmentReader,
        found: &Candidates,
        mut add: impl FnMut(&RecordBatch, &Keys) -> Result<()>,
    ) -> Result<()> {
        let (plan, source, metrics) = (self.plan, self.source, self.metrics);
        let read = &source.columns.read;
        let candidates = &found.rows;
        // Only the columns what is left of the filter reads are decoded.
        let (layout, residual) = match source.filter.as_ref().map(|f| f.left(found.residual)) {
            Some(Left::Rest(rest)) => (&plan.rest, Some(rest)),
            Some(Left::Whole(predicate)) => (&plan.residual, Some(predicate)),
            Some(Left::Nothing) | None => (&plan.exact, None),
        };
        let decode: Vec<usize> = layout.decoded.iter().map(|&p| read[p]).collect();
        let id_columns: Vec<usize> = plan
            .keys
            .iter()
            .filter_map(|k| match k {
                Key::Ids(at) => Some(read[*at]),
                Key::Int(_) | Key::Time(_) | Key::Expr(_) => None,
            })
            .collect();
        let from = self.next_block.load(Ordering::Relaxed);
        for (block, selection) in selected_blocks(reader, candidates.as_ref(), metrics) {
            if block < from {
                continue;
            }
            // A few rows of the block are decoded alone (see `scan::Picked`).
            let at = selection.as_ref().and_then(Picked::positions);
            let mut values = match decode.is_empty() {
                true => Vec::new(),
                false => reader
                    .read_block_rows(block, &decode, at)
                    .map_err(storage_error)?
                    .columns()
                    .to_vec(),
            };
            let mut ids = id_columns
                .iter()
                .map(|&c| {
                    let ids = reader.read_ids_rows(c, block, at).map_err(storage_error)?;
                    Ok(Arc::new(ids) as ArrayRef)
                })
                .collect::<Result<Vec<_>>>()?;
            let mut rows = at.map_or(reader.block_rows(block), <[u32]>::len);
            if !decode.is_empty() || !ids.is_empty() {
                metrics.blocks_decoded.add(1);
                metrics.rows_decoded.add(rows);
            }
            if let Some(Picked::Mask(mask)) = &selection {
                keep(&mut values, &mut ids, mask)?;
                rows = mask.true_count();
            }
            let mut batch = layout.batch(values, rows)?;
            if let Some(predicate) = residual {
                let mask = evaluate(predicate, &batch)?;
                let mask = as_boolean_array(&mask)?;
                let mut values: Vec<ArrayRef> = layout
                    .decoded
                    .iter()
                    .map(|&p| batch.column(p).clone())
                    .collect();
                keep(&mut values, &mut ids, mask)?;
                batch = layout.batch(values, mask.true_count())?;
            }
            let keys = plan.keys(&batch, ids)?;
            add(&batch, &keys)?;
            self.rows.fetch_add(batch.num_rows(), Ordering::Relaxed);
            self.next_block.store(block + 1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Keeps the rows `mask` selects of every array.
fn keep(values: &mut [ArrayRef], ids: &mut [ArrayRef], mask: &BooleanArray) -> Result<()> {
    for array in values.iter_mut().chain(ids.iter_mut()) {
        *array = filter_array(array.as_ref(), mask)?;
    }
    Ok(())
}
