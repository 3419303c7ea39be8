//! Turning the rows of one time chunk into the bytes of a segment file.

use std::collections::HashMap;
use std::path::Path;

use std::sync::Arc;

use arrow::array::{
    new_empty_array, Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt32Array,
};
use arrow::buffer::NullBuffer;
use arrow::compute::{concat, lexsort_to_indices, take, SortColumn, SortOptions};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, TimeUnit, TimestampMicrosecondType,
};
use bytes::Bytes;
use roaring::RoaringBitmap;

use super::encoding::{encode_f32, encode_f64, encode_ints, Encoding};
use super::footer::{BlockRef, Codec, ColumnMeta, DataBlock, Dictionary, Footer, Stat};
use super::{bitpack, ALIGN, BLOCK_ROWS, END_MAGIC, FORMAT_VERSION, MAGIC};
use crate::error::{Error, Result};
use crate::metadata::write_atomically;
use crate::schema::{ColumnDef, TableDef};

/// zstd's level for dictionaries and indexes. Above its default (3): a near-unique text
/// column's dictionary (TPC-H's `l_comment`) is a third of a segment and 6 % smaller at
/// level 7, for an eighth more time building the segment; decompression is as fast.
const ZSTD_LEVEL: i32 = 7;
/// Strings longer than this are not kept as a column's minimum or maximum.
const MAX_STAT_LEN: usize = 256;

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenSegment {
    pub rows: u64,
    /// The whole file, to upload without reading it back.
    pub contents: Bytes,
    /// CRC-32 of the whole file, to verify copies of it.
    pub crc: u32,
}

/// Encodes `batches` (rows of `def`, in any order) as one segment and stores it at `path`
/// durably: a crash leaves either no file or the complete one. The rows are taken, so that
/// each column is released as soon as it is encoded.
pub fn write_segment(
    def: &TableDef,
    batches: Vec<RecordBatch>,
    path: &Path,
) -> Result<WrittenSegment> {
    write_rows(def, batches, path, false)
}

/// [`write_segment`] of rows already in a segment's order (a slice of [`sorted_rows`]).
pub fn write_sorted_segment(
    def: &TableDef,
    batches: Vec<RecordBatch>,
    path: &Path,
) -> Result<WrittenSegment> {
    write_rows(def, batches, path, true)
}

fn write_rows(
    def: &TableDef,
    batches: Vec<RecordBatch>,
    path: &Path,
    sorted: bool,
) -> Result<WrittenSegment> {
    let (bytes, rows) = encode_rows(def, batches, sorted)?;
    write_atomically(path, &bytes)?;
    Ok(WrittenSegment {
        rows,
        crc: crc32fast::hash(&bytes),
        contents: Bytes::from(bytes),
    })
}

/// Encodes `batches` (rows of `def`, in any order) as the bytes of one segment file and
/// returns them with the number of rows.
pub fn encode_segment(def: &TableDef, batches: &[RecordBatch]) -> Result<(Vec<u8>, u64)> {
    encode_rows(def, batches.to_vec(), false)
}

/// `batches` (rows of `def`, in any order) joined into one batch in a segment's order: by
/// the time column, then every string column. Rows of several time chunks sorted at once
/// are each chunk's in one contiguous range, each written with [`write_sorted_segment`].
pub fn sorted_rows(def: &TableDef, batches: Vec<RecordBatch>) -> Result<RecordBatch> {
    let (mut columns, rows) = joined_columns(def, batches)?;
    if let Some(order) = sort_order(def, &columns, rows)? {
        for column in &mut columns {
            let joined = std::mem::replace(column, new_empty_array(&DataType::Null));
            *column = take(joined.as_ref(), &order, None)
                .map_err(|e| Error::SegmentInput(e.to_string()))?;
        }
    }
    RecordBatch::try_new(def.stored_schema(), columns)
        .map_err(|e| Error::SegmentInput(e.to_string()))
}

/// The columns of `batches`, each joined into one array, and the number of rows.
fn joined_columns(def: &TableDef, batches: Vec<RecordBatch>) -> Result<(Vec<ArrayRef>, usize)> {
    let stored = def.stored_columns();
    let schema = def.stored_schema();
    let input = |message: String| Error::SegmentInput(message);
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if rows > u32::MAX as usize {
        return Err(input(format!(
            "{rows} rows do not fit in one segment (at most {})",
            u32::MAX
        )));
    }
    let mut parts: Vec<Vec<ArrayRef>> = vec![Vec::with_capacity(batches.len()); stored.len()];
    for batch in batches {
        if batch.num_columns() != parts.len() {
            return Err(input(format!(
                "a batch of {} columns for a table of {}",
                batch.num_columns(),
                parts.len()
            )));
        }
        for ((column, field), part) in batch.columns().iter().zip(schema.fields()).zip(&mut parts) {
            if column.data_type() != field.data_type() {
                return Err(input(format!(
                    "column {} is {}, not {}",
                    field.name(),
                    column.data_type(),
                    field.data_type()
                )));
            }
            part.push(column.clone());
        }
    }
    let columns = parts
        .into_iter()
        .zip(schema.fields())
        .map(|(part, field)| match part.as_slice() {
            [] => Ok(new_empty_array(field.data_type())),
            [one] => Ok(one.clone()),
            _ => {
                let arrays: Vec<&dyn Array> = part.iter().map(|a| a.as_ref()).collect();
                concat(&arrays).map_err(|e| input(e.to_string()))
            }
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok((columns, rows))
}

/// The order of a segment's rows (`None` when they need none): by the sort keys, strings
/// by their rank in the column's dictionary.
fn sort_order(def: &TableDef, columns: &[ArrayRef], rows: usize) -> Result<Option<UInt32Array>> {
    let input = |message: String| Error::SegmentInput(message);
    let keys = sort_keys(def);
    if keys.is_empty() || rows < 2 {
        return Ok(None);
    }
    if let Some(order) = packed_order(&keys, columns, rows) {
        return Ok(Some(order));
    }
    // Strings are sorted by their rank in the column's dictionary: the same order,
    // compared as integers rather than byte by byte. The last key is compared only
    // between rows equal in all the others, and is often nearly unique (a comment): its
    // strings are compared as they are, where ranking them sorted every value.
    let last = keys.len() - 1;
    let sort_columns: Vec<SortColumn> = keys
        .iter()
        .enumerate()
        .map(|(k, &i)| SortColumn {
            values: match columns[i].data_type() {
                DataType::Utf8 if k < last => {
                    let strings = columns[i].as_string::<i32>();
                    let (_, ranks) = dictionary(strings);
                    Arc::new(UInt32Array::new(ranks.into(), strings.nulls().cloned()))
                }
                _ => columns[i].clone(),
            },
            options: Some(SortOptions {
                descending: false,
                nulls_first: true,
            }),
        })
        .collect();
    let order = lexsort_to_indices(&sort_columns, None).map_err(|e| input(e.to_string()))?;
    Ok(Some(order))
}

/// The order of [`sort_order`], found faster where the keys allow: every key but a
/// last string key is made a code that sorts as it does (NULL 0, then the value less
/// the column's smallest plus 1, or a string's dictionary rank plus 1), and the codes
/// packed into one integer of at most 128 bits, time first. Rows are sorted by that
/// integer; rows equal in it by the last key's strings (NULL first). `None` where a key
/// is of another type or the codes need more bits: the general sort then.
fn packed_order(keys: &[usize], columns: &[ArrayRef], rows: usize) -> Option<UInt32Array> {
    let last = keys.len() - 1;
    let tie: Option<&StringArray> = match columns[keys[last]].data_type() {
        DataType::Utf8 => Some(columns[keys[last]].as_string::<i32>()),
        _ => None,
    };
    let coded = match tie {
        Some(_) => &keys[..last],
        None => keys,
    };
    let mut packed = vec![0u128; rows];
    let mut bits = 0u32;
    // Makes room for codes up to `largest` and puts each row's in.
    let mut add = |largest: u64, code: &dyn Fn(usize) -> u64| -> Option<()> {
        let b = 64 - largest.leading_zeros();
        bits += b;
        if bits > 128 {
            return None;
        }
        for (row, key) in packed.iter_mut().enumerate() {
            *key = (*key << b) | u128::from(code(row));
        }
        Some(())
    };
    for &k in coded {
        let column = &columns[k];
        match column.data_type() {
            DataType::Utf8 => {
                let strings = column.as_string::<i32>();
                let (distinct, ranks) = dictionary(strings);
                let code = |i: usize| match strings.is_null(i) {
                    true => 0,
                    false => u64::from(ranks[i]) + 1,
                };
                add(distinct.len() as u64, &code)?;
            }
            DataType::Timestamp(TimeUnit::Microsecond, _)
            | DataType::Int64
            | DataType::Int32
            | DataType::Int16
            | DataType::Date32 => {
                let wide = arrow::compute::cast(column, &DataType::Int64).ok()?;
                let wide = wide.as_primitive::<Int64Type>();
                let (min, max) = match (arrow::compute::min(wide), arrow::compute::max(wide)) {
                    (Some(min), Some(max)) => (min, max),
                    // Every value NULL: one code.
                    _ => (0, -1),
                };
                let span = u64::try_from(i128::from(max) - i128::from(min) + 1).ok()?;
                let code = |i: usize| match wide.is_null(i) {
                    true => 0,
                    false => (wide.value(i) as u64).wrapping_sub(min as u64) + 1,
                };
                add(span, &code)?;
            }
            _ => return None,
        }
    }
    let order = match bits {
        0..=64 => sorted_by(packed, |key| key as u64, tie),
        _ => sorted_by(packed, |key| key, tie),
    };
    Some(UInt32Array::from(order))
}

/// The row positions in the order of their packed keys (as `K`, narrower where they fit),
/// rows of equal key by [`tie_break`].
fn sorted_by<K: Copy + Ord>(
    packed: Vec<u128>,
    key: impl Fn(u128) -> K,
    tie: Option<&StringArray>,
) -> Vec<u32> {
    let mut keyed: Vec<(K, u32)> = (packed.iter().enumerate())
        .map(|(row, &packed)| (key(packed), row as u32))
        .collect();
    drop(packed);
    keyed.sort_unstable();
    tie_break(&mut keyed, tie)
}

/// Rows sorted by their packed key, those of equal key then by `tie`'s strings (NULL
/// first): the row positions, in order.
fn tie_break<K: Copy + Eq>(keyed: &mut [(K, u32)], tie: Option<&StringArray>) -> Vec<u32> {
    if let Some(strings) = tie {
        let mut from = 0;
        while from < keyed.len() {
            let key = keyed[from].0;
            let mut to = from + 1;
            while to < keyed.len() && keyed[to].0 == key {
                to += 1;
            }
            if to - from > 1 {
                keyed[from..to].sort_unstable_by(|(_, a), (_, b)| {
                    let value = |i: u32| {
                        strings
                            .is_valid(i as usize)
                            .then(|| strings.value(i as usize))
                    };
                    value(*a).cmp(&value(*b))
                });
            }
            from = to;
        }
    }
    keyed.iter().map(|(_, row)| *row).collect()
}

/// [`encode_segment`] of rows it owns (`sorted`: already in a segment's order). Beside the output, the rows are held about once: the
/// batches' columns are released as each column is joined into one array, and each joined
/// column once its sorted copy is made, which is released once encoded. (Buffers the
/// caller still shares stay, of course.)
fn encode_rows(def: &TableDef, batches: Vec<RecordBatch>, sorted: bool) -> Result<(Vec<u8>, u64)> {
    let stored = def.stored_columns();
    let input = |message: String| Error::SegmentInput(message);
    let (mut columns, rows) = joined_columns(def, batches)?;
    let keys = sort_keys(def);
    let order = match sorted {
        true => None,
        false => sort_order(def, &columns, rows)?,
    };
    let mut file = FileBuilder::new();
    let mut metas = Vec::with_capacity(columns.len());
    for (column, slot) in stored.iter().zip(&mut columns) {
        let joined = std::mem::replace(slot, new_empty_array(&DataType::Null));
        let array = match &order {
            Some(order) => take(joined.as_ref(), order, None).map_err(|e| input(e.to_string()))?,
            None => joined,
        };
        metas.push(file.column(column, &array)?);
    }
    let footer = Footer {
        rows: rows as u64,
        block_rows: BLOCK_ROWS as u32,
        sort_columns: keys.iter().map(|&i| stored[i].name.clone()).collect(),
        columns: metas,
    };
    Ok((file.finish(&footer)?, rows as u64))
}

/// The distinct values of `strings`, sorted, and each row's position among them (0 for a
/// NULL). The values are told apart by hashing, each compared once with the others only
/// among the distinct ones (sorting every row's value took most of a segment's encoding).
fn dictionary(strings: &StringArray) -> (Vec<&str>, Vec<u32>) {
    let mut first_seen: HashMap<&str, u32, foldhash::fast::RandomState> = HashMap::default();
    let mut distinct: Vec<&str> = Vec::new();
    let seen: Vec<u32> = strings
        .iter()
        .map(|s| match s {
            None => u32::MAX,
            Some(s) => *first_seen.entry(s).or_insert_with(|| {
                distinct.push(s);
                distinct.len() as u32 - 1
            }),
        })
        .collect();
    let mut order: Vec<u32> = (0..distinct.len() as u32).collect();
    order.sort_unstable_by_key(|&i| distinct[i as usize]);
    let mut rank = vec![0u32; distinct.len()];
    for (position, &i) in order.iter().enumerate() {
        rank[i as usize] = position as u32;
    }
    let ranks = seen
        .iter()
        .map(|&i| rank.get(i as usize).copied().unwrap_or(0))
        .collect();
    let sorted = order.iter().map(|&i| distinct[i as usize]).collect();
    (sorted, ranks)
}

/// The columns rows are sorted by: the time column, then every string column, so equal
/// dictionary ids form runs.
fn sort_keys(def: &TableDef) -> Vec<usize> {
    def.time_column_index()
        .into_iter()
        .chain(
            def.columns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.ty.arrow_type() == DataType::Utf8)
                .map(|(i, _)| i),
        )
        .collect()
}

/// The file being assembled: header, blocks, then footer and trailer.
struct FileBuilder {
    out: Vec<u8>,
}

impl FileBuilder {
    fn new() -> FileBuilder {
        let mut out = Vec::with_capacity(1 << 20);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        FileBuilder { out }
    }

    /// Appends one block of data read by scans, lz4-compressed when that saves at least an
    /// eighth.
    fn block(&mut self, raw: Vec<u8>) -> BlockRef {
        self.put(raw, false)
    }

    /// Appends one block of a dictionary or index, compressed with whichever of lz4 and
    /// zstd saves at least an eighth, zstd when it is a fifth smaller than lz4.
    fn cold_block(&mut self, raw: Vec<u8>) -> BlockRef {
        self.put(raw, true)
    }

    fn put(&mut self, raw: Vec<u8>, try_zstd: bool) -> BlockRef {
        let raw_len = raw.len() as u64;
        let worth = |len: usize| len < raw.len() - raw.len() / 8;
        let mut best: Option<(Vec<u8>, Codec)> = None;
        if raw.len() >= 64 {
            let lz4 = lz4_flex::block::compress(&raw);
            if worth(lz4.len()) {
                best = Some((lz4, Codec::Lz4));
            }
            if try_zstd {
                if let Ok(zstd) = zstd::bulk::compress(&raw, ZSTD_LEVEL) {
                    let bar = best
                        .as_ref()
                        .map_or(raw.len(), |(b, _)| b.len() - b.len() / 5);
                    if worth(zstd.len()) && zstd.len() < bar {
                        best = Some((zstd, Codec::Zstd));
                    }
                }
            }
        }
        let (bytes, codec) = best.unwrap_or((raw, Codec::None));
        self.out.resize(self.out.len().next_multiple_of(ALIGN), 0);
        let offset = self.out.len() as u64;
        self.out.extend_from_slice(&bytes);
        BlockRef {
            offset,
            len: bytes.len() as u64,
            raw_len,
            crc: crc32fast::hash(&bytes),
            codec,
        }
    }

    fn finish(mut self, footer: &Footer) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(footer).map_err(|e| Error::SegmentInput(e.to_string()))?;
        let footer_offset = self.out.len() as u64;
        self.out.extend_from_slice(&json);
        let mut trailer = Vec::with_capacity(32);
        trailer.extend_from_slice(&footer_offset.to_le_bytes());
        trailer.extend_from_slice(&(json.len() as u64).to_le_bytes());
        trailer.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
        let crc = crc32fast::hash(&trailer);
        trailer.extend_from_slice(&crc.to_le_bytes());
        trailer.extend_from_slice(END_MAGIC);
        self.out.extend_from_slice(&trailer);
        Ok(self.out)
    }

    fn column(&mut self, def: &ColumnDef, array: &ArrayRef) -> Result<ColumnMeta> {
        let nulls = array.nulls().filter(|n| n.null_count() > 0);
        let null_block = match nulls {
            Some(nulls) => {
                let mut rows: RoaringBitmap = (0..array.len() as u32)
                    .filter(|&i| nulls.is_null(i as usize))
                    .collect();
                rows.optimize();
                let mut raw = Vec::with_capacity(rows.serialized_size());
                rows.serialize_into(&mut raw)
                    .map_err(|e| Error::SegmentInput(e.to_string()))?;
                Some(self.cold_block(raw))
            }
            None => None,
        };
        let mut meta = ColumnMeta {
            name: def.name.clone(),
            ty: def.ty,
            null_count: array.null_count() as u64,
            min: None,
            max: None,
            nulls: null_block,
            dictionary: None,
            blocks: Vec::new(),
        };
        match array.data_type() {
            DataType::Int16 => self.ints(&mut meta, ints_of::<Int16Type>(array, i64::from), nulls),
            DataType::Int32 => self.ints(&mut meta, ints_of::<Int32Type>(array, i64::from), nulls),
            DataType::Int64 => self.ints(&mut meta, ints_of::<Int64Type>(array, |v| v), nulls),
            DataType::Date32 => {
                self.ints(&mut meta, ints_of::<Date32Type>(array, i64::from), nulls)
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => self.ints(
                &mut meta,
                ints_of::<TimestampMicrosecondType>(array, |v| v),
                nulls,
            ),
            DataType::Decimal128(_, _) => self.decimals(&mut meta, array, nulls),
            DataType::Float64 => {
                let values = array.as_primitive::<Float64Type>().values();
                self.floats(&mut meta, values, nulls, |v| v, encode_f64)
            }
            DataType::Float32 => {
                let values = array.as_primitive::<Float32Type>().values();
                self.floats(&mut meta, values, nulls, f64::from, encode_f32)
            }
            DataType::Boolean => self.booleans(&mut meta, array),
            DataType::Utf8 => self.strings(&mut meta, array)?,
            DataType::Binary => self.binaries(&mut meta, array)?,
            other => {
                return Err(Error::SegmentInput(format!(
                    "column \"{}\" has type {other}, which segments cannot hold",
                    def.name
                )))
            }
        }
        Ok(meta)
    }

    fn ints(&mut self, meta: &mut ColumnMeta, mut values: Vec<i64>, nulls: Option<&NullBuffer>) {
        fill_nulls(&mut values, nulls, 0);
        let valid = valid_values(&values, nulls);
        meta.min = valid.clone().min().map(Stat::Int);
        meta.max = valid.max().map(Stat::Int);
        self.blocks(meta, &values, encode_ints);
    }

    /// Cuts `values` into blocks of [`BLOCK_ROWS`] and appends each as `encode` makes it.
    fn blocks<T>(
        &mut self,
        meta: &mut ColumnMeta,
        values: &[T],
        encode: impl Fn(&[T]) -> (Encoding, Vec<u8>),
    ) {
        for chunk in values.chunks(BLOCK_ROWS) {
            let (encoding, raw) = encode(chunk);
            let data = self.block(raw);
            meta.blocks.push(DataBlock {
                rows: chunk.len() as u32,
                encoding,
                data,
            });
        }
    }

    fn decimals(&mut self, meta: &mut ColumnMeta, array: &ArrayRef, nulls: Option<&NullBuffer>) {
        let mut values = array.as_primitive::<Decimal128Type>().values().to_vec();
        fill_nulls(&mut values, nulls, 0);
        let valid = valid_values(&values, nulls);
        meta.min = valid.clone().min().map(|v| Stat::Decimal(v.to_string()));
        meta.max = valid.max().map(|v| Stat::Decimal(v.to_string()));
        let narrow: Option<Vec<i64>> = values.iter().map(|&v| i64::try_from(v).ok()).collect();
        match narrow {
            Some(narrow) => self.blocks(meta, &narrow, encode_ints),
            None => self.blocks(meta, &values, |chunk| {
                (
                    Encoding::Plain,
                    chunk.iter().flat_map(|v| v.to_le_bytes()).collect(),
                )
            }),
        }
    }

    fn floats<T: Copy + Default>(
        &mut self,
        meta: &mut ColumnMeta,
        values: &[T],
        nulls: Option<&NullBuffer>,
        widen: impl Fn(T) -> f64,
        encode: impl Fn(&[T]) -> (Encoding, Vec<u8>),
    ) {
        let mut values = values.to_vec();
        fill_nulls(&mut values, nulls, T::default());
        let numbers = valid_values(&values, nulls)
            .map(&widen)
            .filter(|v| !v.is_nan());
        let (min, max) = numbers.fold((None, None), |(lo, hi): (Option<f64>, Option<f64>), v| {
            (
                Some(lo.map_or(v, |lo| if v.total_cmp(&lo).is_lt() { v } else { lo })),
                Some(hi.map_or(v, |hi| if v.total_cmp(&hi).is_gt() { v } else { hi })),
            )
        });
        meta.min = min.map(|v| Stat::Float(v.to_bits()));
        meta.max = max.map(|v| Stat::Float(v.to_bits()));
        self.blocks(meta, &values, encode);
    }

    fn booleans(&mut self, meta: &mut ColumnMeta, array: &ArrayRef) {
        let booleans = array.as_boolean();
        meta.min = booleans.iter().flatten().min().map(Stat::Bool);
        meta.max = booleans.iter().flatten().max().map(Stat::Bool);
        for start in (0..array.len()).step_by(BLOCK_ROWS) {
            let len = BLOCK_ROWS.min(array.len() - start);
            let bits: Vec<u64> = (start..start + len)
                .map(|i| u64::from(booleans.values().value(i)))
                .collect();
            let data = self.block(bitpack::pack(&bits, 1));
            meta.blocks.push(DataBlock {
                rows: len as u32,
                encoding: Encoding::Bits,
                data,
            });
        }
    }

    fn strings(&mut self, meta: &mut ColumnMeta, array: &ArrayRef) -> Result<()> {
        let strings = array.as_string::<i32>();
        let (distinct, ranks) = dictionary(strings);
        let row_ids: Vec<u64> = ranks.iter().map(|&id| u64::from(id)).collect();

        let mut offsets = Vec::with_capacity((distinct.len() + 1) * 4);
        let mut values = Vec::new();
        offsets.extend_from_slice(&0i32.to_le_bytes());
        for s in &distinct {
            values.extend_from_slice(s.as_bytes());
            let end = i32::try_from(values.len()).map_err(|_| {
                Error::SegmentInput(format!(
                    "the distinct values of column \"{}\" exceed 2 GiB",
                    meta.name
                ))
            })?;
            offsets.extend_from_slice(&end.to_le_bytes());
        }
        let width = bitpack::width_for(distinct.len().saturating_sub(1) as u64);
        let bitmaps = if !super::near_unique(distinct.len() as u64, array.len() as u64) {
            let mut bitmaps = vec![RoaringBitmap::new(); distinct.len()];
            for (row, s) in strings.iter().enumerate() {
                if s.is_some() {
                    bitmaps[row_ids[row] as usize].insert(row as u32);
                }
            }
            // Runs of a value (rows sorted by time, then strings) become run containers.
            for bitmap in &mut bitmaps {
                bitmap.optimize();
            }
            let bitmaps = serialize_bitmaps(&bitmaps)?;
            pays(bitmaps.len(), array.len(), width).then(|| self.cold_block(bitmaps))
        } else {
            None
        };
        meta.min = distinct
            .first()
            .filter(|s| s.len() <= MAX_STAT_LEN)
            .map(|s| Stat::Text(s.to_string()));
        meta.max = distinct
            .last()
            .filter(|s| s.len() <= MAX_STAT_LEN)
            .map(|s| Stat::Text(s.to_string()));
        meta.dictionary = Some(Dictionary {
            len: distinct.len() as u32,
            offsets: self.cold_block(offsets),
            values: self.cold_block(values),
            bitmaps,
        });
        for chunk in row_ids.chunks(BLOCK_ROWS) {
            let data = self.block(bitpack::pack(chunk, width));
            meta.blocks.push(DataBlock {
                rows: chunk.len() as u32,
                encoding: Encoding::Ids { width },
                data,
            });
        }
        Ok(())
    }

    fn binaries(&mut self, meta: &mut ColumnMeta, array: &ArrayRef) -> Result<()> {
        let binaries = array.as_binary::<i32>();
        for start in (0..array.len()).step_by(BLOCK_ROWS) {
            let len = BLOCK_ROWS.min(array.len() - start);
            let mut offsets = Vec::with_capacity((len + 1) * 4);
            let mut data = Vec::new();
            offsets.extend_from_slice(&0i32.to_le_bytes());
            for i in start..start + len {
                if binaries.is_valid(i) {
                    data.extend_from_slice(binaries.value(i));
                }
                let end = i32::try_from(data.len()).map_err(|_| {
                    Error::SegmentInput(format!(
                        "a block of column \"{}\" exceeds 2 GiB",
                        meta.name
                    ))
                })?;
                offsets.extend_from_slice(&end.to_le_bytes());
            }
            offsets.extend_from_slice(&data);
            let data = self.cold_block(offsets);
            meta.blocks.push(DataBlock {
                rows: len as u32,
                encoding: Encoding::Binary,
                data,
            });
        }
        Ok(())
    }
}

/// Every value of a primitive column as an `i64`.
fn ints_of<T: arrow::datatypes::ArrowPrimitiveType>(
    array: &ArrayRef,
    widen: impl Fn(T::Native) -> i64,
) -> Vec<i64> {
    array
        .as_primitive::<T>()
        .values()
        .iter()
        .map(|&v| widen(v))
        .collect()
}

/// Gives NULL slots the value before them (or `default`), so they cost no bits.
fn fill_nulls<T: Copy>(values: &mut [T], nulls: Option<&NullBuffer>, default: T) {
    let Some(nulls) = nulls else { return };
    let mut last = (0..values.len())
        .find(|&i| nulls.is_valid(i))
        .map_or(default, |i| values[i]);
    for (i, value) in values.iter_mut().enumerate() {
        if nulls.is_valid(i) {
            last = *value;
        } else {
            *value = last;
        }
    }
}

fn valid_values<'a, T: Copy>(
    values: &'a [T],
    nulls: Option<&'a NullBuffer>,
) -> impl Iterator<Item = T> + Clone + 'a {
    values
        .iter()
        .enumerate()
        .filter(move |(i, _)| nulls.is_none_or(|n| n.is_valid(*i)))
        .map(|(_, v)| *v)
}

/// Whether a string column's bitmap index (`bitmap_bytes` serialized) is worth keeping
/// beside its ids (`rows` of `width` bits each).
///
/// The bitmaps and the ids hold the same information; the bitmaps only make a filter's
/// rows cheaper to find: a filter reads the bitmaps of the values it selects, where
/// without them it reads every id once ([`super::SegmentReader::rows_with_ids`]). Where a
/// column's values form runs (few values, or rows sorted by the column after time), the
/// bitmaps are small and kept. Where each value's rows lie scattered (events sorted by
/// distinct timestamps), a Roaring bitmap spends about two bytes on each row of each
/// value, more than the ids themselves, and a segment that kept them all would be several
/// times the size of its data: they are kept only while they cost no more than
/// [`BITMAP_BUDGET`] times the packed ids. An index of at most [`SMALL_INDEX`] bytes is
/// kept whatever it costs against the ids: it is little in any case, and a small segment
/// (the hand-off of a quiet table's hour) keeps the answers bitmaps give without reading a
/// row, such as `count(*)` grouped by a string column.
fn pays(bitmap_bytes: usize, rows: usize, width: u8) -> bool {
    let ids_bytes = (rows * usize::from(width)).div_ceil(8);
    bitmap_bytes <= (ids_bytes * BITMAP_BUDGET).max(SMALL_INDEX)
}

/// How many times the size of its packed ids a column's bitmap index may take (see [`pays`]).
const BITMAP_BUDGET: usize = 1;
/// The size up to which a bitmap index is kept whatever its ratio to the ids (see [`pays`]).
const SMALL_INDEX: usize = 16 << 10;

/// `u64 count | u64 offsets[count + 1] | serialized bitmaps`, offsets relative to the bitmaps.
fn serialize_bitmaps(bitmaps: &[RoaringBitmap]) -> Result<Vec<u8>> {
    let header = 8 * (bitmaps.len() + 2);
    let mut out =
        Vec::with_capacity(header + bitmaps.iter().map(|b| b.serialized_size()).sum::<usize>());
    out.extend_from_slice(&(bitmaps.len() as u64).to_le_bytes());
    let mut offset = 0u64;
    out.extend_from_slice(&offset.to_le_bytes());
    for bitmap in bitmaps {
        offset += bitmap.serialized_size() as u64;
        out.extend_from_slice(&offset.to_le_bytes());
    }
    for bitmap in bitmaps {
        bitmap
            .serialize_into(&mut out)
            .map_err(|e| Error::SegmentInput(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_sorts_distinct_values_and_ranks_rows() {
        let strings = StringArray::from(vec![
            Some("pear"),
            None,
            Some("apple"),
            Some("pear"),
            Some(""),
            Some("Äpfel"),
            Some("apple"),
        ]);
        let (distinct, ranks) = dictionary(&strings);
        assert_eq!(distinct, vec!["", "apple", "pear", "Äpfel"]);
        assert_eq!(ranks, vec![2, 0, 1, 2, 0, 3, 1]);
        let empty = StringArray::from(Vec::<Option<&str>>::new());
        let (distinct, ranks) = dictionary(&empty);
        assert!(distinct.is_empty() && ranks.is_empty());
    }

    /// Rows in `order` as their key values, to compare two orders that may place rows
    /// equal in every key differently.
    fn keyed_rows(columns: &[ArrayRef], order: &UInt32Array) -> Vec<String> {
        use arrow::util::display::{ArrayFormatter, FormatOptions};
        let options = FormatOptions::default().with_null("NULL");
        let formatters: Vec<ArrayFormatter> = columns
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        order
            .values()
            .iter()
            .map(|&r| {
                let cells: Vec<String> = formatters
                    .iter()
                    .map(|f| f.value(r as usize).to_string())
                    .collect();
                cells.join("|")
            })
            .collect()
    }

    #[test]
    fn packed_keys_sort_as_the_columns_do() {
        use arrow::array::{Int32Array, Int64Array, TimestampMicrosecondArray};
        // A small linear congruential generator: the same rows on every run.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % n
        };
        let rows = 5_000;
        let words = ["", "a", "ab", "b", "zz", "Äpfel"];
        let mut case = |span: i64, wide: bool| -> (Vec<ArrayRef>, Option<UInt32Array>) {
            let times: TimestampMicrosecondArray = (0..rows)
                .map(|_| match next(50) {
                    0 => None,
                    _ if wide => Some(if next(2) == 0 {
                        i64::MIN / 2 + next(3) as i64
                    } else {
                        i64::MAX / 2 - next(3) as i64
                    }),
                    _ => Some(next(span as u64) as i64 - span / 2),
                })
                .collect();
            let small: StringArray = (0..rows)
                .map(|_| (next(10) > 0).then(|| words[next(words.len() as u64) as usize]))
                .collect();
            let numbers: Int32Array = (0..rows)
                .map(|_| (next(10) > 0).then(|| next(7) as i32 - 3))
                .collect();
            let last: StringArray = (0..rows)
                .map(|_| (next(10) > 0).then(|| format!("c{}", next(40))))
                .collect();
            let columns: Vec<ArrayRef> = vec![
                Arc::new(times),
                Arc::new(small),
                Arc::new(numbers),
                Arc::new(last),
            ];
            let order = packed_order(&[0, 1, 2, 3], &columns, rows);
            (columns, order)
        };
        let lexsorted = |columns: &[ArrayRef]| {
            let sort: Vec<SortColumn> = columns
                .iter()
                .map(|c| SortColumn {
                    values: c.clone(),
                    options: Some(SortOptions {
                        descending: false,
                        nulls_first: true,
                    }),
                })
                .collect();
            lexsort_to_indices(&sort, None).unwrap()
        };
        // Narrow times (one 64-bit key), and times 2^63 apart (a 128-bit key).
        for (span, wide) in [(20, false), (1 << 40, false), (0, true)] {
            let (columns, order) = case(span.max(1), wide);
            let order = order.expect("the keys fit in 128 bits");
            assert_eq!(order.len(), rows);
            assert_eq!(
                keyed_rows(&columns, &order),
                keyed_rows(&columns, &lexsorted(&columns))
            );
        }
        // Keys that need more than 128 bits are left to the general sort.
        let full: ArrayRef = Arc::new(Int64Array::from(vec![i64::MIN, i64::MAX, 0]));
        let columns = vec![full.clone(), full.clone(), full];
        assert!(packed_order(&[0, 1, 2], &columns, 3).is_none());
        // A last key that is no string is packed too.
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(3), None, Some(3), Some(-1)])),
            Arc::new(Int32Array::from(vec![Some(2), Some(1), None, Some(9)])),
        ];
        let order = packed_order(&[0, 1], &columns, 4).unwrap();
        assert_eq!(order.values().to_vec(), vec![1, 3, 2, 0]);
    }
}
