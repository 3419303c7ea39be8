//! Reading a segment file: memory-mapped, every block checked against its checksum before
//! use, columns handed out as Arrow arrays (without copying where the layout allows).

use std::fs::File;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use arrow::array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, RecordBatch, RecordBatchOptions, StringArray,
    TimestampMicrosecondArray, UInt32Array,
};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{ArrowNativeType, DataType, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use memmap2::Mmap;
use roaring::RoaringBitmap;

use super::encoding::{
    decode_ids, decode_ints_as, decode_scaled, decode_scaled_f32, decodes_alone, Encoding, Rows,
};
use super::footer::{BlockRef, Codec, ColumnMeta, DataBlock, Footer};
use super::{END_MAGIC, FORMAT_VERSION, HEADER_LEN, MAGIC, TRAILER_LEN};
use crate::error::{Error, Result};

/// No block expands to more than this (a larger claim is damage).
const MAX_BLOCK: u64 = 1 << 34;

/// An open segment file.
#[derive(Debug)]
pub struct SegmentReader {
    name: String,
    bytes: Bytes,
    footer: Footer,
    schema: SchemaRef,
    nulls: Vec<OnceLock<RoaringBitmap>>,
    /// This reader's number among every reader opened, for its decoded dictionaries in
    /// [`super::dictionaries`].
    id: u64,
}

impl Drop for SegmentReader {
    fn drop(&mut self) {
        super::dictionaries::cache().forget(self.id, self.footer.columns.len());
    }
}

impl SegmentReader {
    /// Memory-maps the file at `path`; `name` identifies the segment in errors.
    pub fn open(path: &Path, name: &str) -> Result<SegmentReader> {
        let file = File::open(path).map_err(Error::io("open", path))?;
        let len = file.metadata().map_err(Error::io("stat", path))?.len();
        if len < (HEADER_LEN + TRAILER_LEN) as u64 {
            return Err(corrupt(name, format!("the file is only {len} bytes long")));
        }
        // SAFETY: segment files are immutable once written: Henge never modifies one in
        // place (replacements are renamed over it, which leaves this mapping intact), and
        // every byte read is checked against a checksum, so changed contents are caught.
        // What a mapping cannot survive is the file being cut short by another program while
        // it is in use: that faults (SIGBUS). `SegmentCache` compares the file's length with
        // the published one before each use, which catches truncation between queries but
        // not during one; nothing but Henge should write to the data directory.
        let map = unsafe { Mmap::map(&file) }.map_err(Error::io("map", path))?;
        SegmentReader::from_bytes(Bytes::from_owner(map), name)
    }

    /// Reads a segment held in memory; `name` identifies it in errors.
    pub fn from_bytes(bytes: Bytes, name: &str) -> Result<SegmentReader> {
        let footer = parse(&bytes).map_err(|reason| corrupt(name, reason))?;
        let schema = Arc::new(Schema::new(
            footer
                .columns
                .iter()
                .map(|c| c.ty.arrow_field(&c.name))
                .collect::<Vec<_>>(),
        ));
        let columns = footer.columns.len();
        Ok(SegmentReader {
            name: name.to_owned(),
            bytes,
            footer,
            schema,
            nulls: (0..columns).map(|_| OnceLock::new()).collect(),
            id: {
                static OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
        })
    }

    /// The segment's name, as used in errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    pub fn rows(&self) -> u64 {
        self.footer.rows
    }

    /// The Arrow schema of the columns (all nullable), in file order.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Number of row blocks.
    pub fn blocks(&self) -> usize {
        self.footer.columns.first().map_or(0, |c| c.blocks.len())
    }

    /// Number of rows in block `block` (0 past the last).
    pub fn block_rows(&self, block: usize) -> usize {
        self.footer
            .columns
            .first()
            .and_then(|c| c.blocks.get(block))
            .map_or(0, |b| b.rows as usize)
    }

    /// Reads every row of the columns in `projection` (indexes into the file's columns; all
    /// of them when `None`), one batch per block.
    pub fn read(&self, projection: Option<&[usize]>) -> Result<Vec<RecordBatch>> {
        let all: Vec<usize>;
        let projection = match projection {
            Some(p) => p,
            None => {
                all = (0..self.footer.columns.len()).collect();
                &all
            }
        };
        (0..self.blocks())
            .map(|b| self.read_block(b, projection))
            .collect()
    }

    /// Reads block `block` of the columns in `projection`.
    pub fn read_block(&self, block: usize, projection: &[usize]) -> Result<RecordBatch> {
        self.read_block_rows(block, projection, None)
    }

    /// The rows of block `block` at positions `at` (ascending, within the block), or all of
    /// them. Values encoded so that each can be read alone are decoded alone: a few rows
    /// of a block (a selective bitmap index) cost a few values, not the block.
    pub fn read_block_rows(
        &self,
        block: usize,
        projection: &[usize],
        at: Option<&[u32]>,
    ) -> Result<RecordBatch> {
        let rows = self
            .footer
            .columns
            .first()
            .and_then(|c| c.blocks.get(block))
            .map(|b| b.rows as usize)
            .ok_or_else(|| self.corrupt(format!("there is no block {block}")))?;
        if at.is_some_and(|at| at.last().is_some_and(|&last| last as usize >= rows)) {
            return Err(self.corrupt(format!("block {block} has no such row")));
        }
        let columns = projection
            .iter()
            .map(|&c| self.column_block(c, block, at))
            .collect::<Result<Vec<_>>>()?;
        let schema = Arc::new(
            self.schema
                .project(projection)
                .map_err(|e| self.corrupt(e.to_string()))?,
        );
        RecordBatch::try_new_with_options(
            schema,
            columns,
            &RecordBatchOptions::new().with_row_count(Some(at.map_or(rows, <[u32]>::len))),
        )
        .map_err(|e| self.corrupt(e.to_string()))
    }

    /// The sorted distinct values of string column `column`, decoded (or found decoded in
    /// the process's [`super::dictionaries`] cache).
    pub fn dictionary(&self, column: usize) -> Result<Arc<StringArray>> {
        let cache = super::dictionaries::cache();
        if let Some(dictionary) = cache.get((self.id, column)) {
            return Ok(dictionary);
        }
        let meta = self.column_meta(column)?;
        let dictionary = meta
            .dictionary
            .as_ref()
            .ok_or_else(|| self.corrupt(format!("column \"{}\" has no dictionary", meta.name)))?;
        let offsets = self.block_bytes(&dictionary.offsets)?;
        let values = self.block_bytes(&dictionary.values)?;
        let offsets = checked_offsets(&offsets, dictionary.len as usize, values.len())
            .ok_or_else(|| self.corrupt("dictionary offsets are out of order".into()))?;
        // A copy, not a view of the mapping: the dictionary may outlive this reader.
        let array = StringArray::try_new(offsets, Buffer::from_slice_ref(&values), None)
            .map_err(|e| self.corrupt(e.to_string()))?;
        Ok(cache.insert((self.id, column), array))
    }

    /// Block `block` of string column `column` as dictionary ids (positions in
    /// [`SegmentReader::dictionary`]), NULL where the column is: the strings themselves are
    /// never built.
    pub fn read_ids(&self, column: usize, block: usize) -> Result<UInt32Array> {
        self.read_ids_rows(column, block, None)
    }

    /// [`SegmentReader::read_ids`] of the rows at positions `at` of the block (ascending),
    /// or of all of them.
    pub fn read_ids_rows(
        &self,
        column: usize,
        block: usize,
        at: Option<&[u32]>,
    ) -> Result<UInt32Array> {
        let meta = self.column_meta(column)?;
        let data = meta.blocks.get(block).ok_or_else(|| {
            self.corrupt(format!("column \"{}\" has no block {block}", meta.name))
        })?;
        let rows = which_rows(data.rows as usize, at);
        let nulls = self.block_nulls(column, block * self.footer.block_rows as usize, rows)?;
        if meta.dictionary.as_ref().is_some_and(|d| d.len == 0) {
            // No values at all: every row is NULL.
            if nulls.as_ref().map_or(0, |n| n.null_count()) != rows.len() {
                return Err(self.corrupt(format!(
                    "rows without a value in column \"{}\", block {block}",
                    meta.name
                )));
            }
            return Ok(UInt32Array::new_null(rows.len()));
        }
        let ids = self.ids(meta, data.encoding, &data.data, rows)?;
        UInt32Array::try_new(ids.into(), nulls).map_err(|e| self.corrupt(e.to_string()))
    }

    /// The rows where string column `column` equals `value` (empty when it never does).
    pub fn rows_equal(&self, column: usize, value: &str) -> Result<RoaringBitmap> {
        let dictionary = self.dictionary(column)?;
        let mut lo = 0usize;
        let mut hi = dictionary.len();
        while lo < hi {
            let mid = (lo + hi) / 2;
            if dictionary.value(mid) < value {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == dictionary.len() || dictionary.value(lo) != value {
            return Ok(RoaringBitmap::new());
        }
        self.value_bitmap(column, lo as u32)
    }

    /// The rows holding dictionary value `id` of string column `column`.
    pub fn value_bitmap(&self, column: usize, id: u32) -> Result<RoaringBitmap> {
        let meta = self.column_meta(column)?;
        let dictionary = meta
            .dictionary
            .as_ref()
            .ok_or_else(|| self.corrupt(format!("column \"{}\" has no dictionary", meta.name)))?;
        let Some(bitmaps) = dictionary.bitmaps else {
            return self.scan_ids(column, id);
        };
        let bytes = self.block_bytes(&bitmaps)?;
        let word = |i: usize| -> Option<u64> {
            let at = i.checked_mul(8)?;
            Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
        };
        let count = word(0).ok_or_else(|| self.corrupt("bitmap index is cut short".into()))?;
        if count != u64::from(dictionary.len) || id >= dictionary.len {
            return Err(self.corrupt("bitmap index does not match the dictionary".into()));
        }
        let base = 8 * (count as usize + 2);
        let range = word(1 + id as usize)
            .zip(word(2 + id as usize))
            .and_then(|(start, end)| {
                let start = base.checked_add(usize::try_from(start).ok()?)?;
                let end = base.checked_add(usize::try_from(end).ok()?)?;
                (start <= end).then_some(start..end)
            })
            .and_then(|r| bytes.get(r))
            .ok_or_else(|| self.corrupt("bitmap index offsets are out of range".into()))?;
        let bitmap = RoaringBitmap::deserialize_from(range)
            .map_err(|e| self.corrupt(format!("bitmap of value {id}: {e}")))?;
        if bitmap
            .max()
            .is_some_and(|m| u64::from(m) >= self.footer.rows)
        {
            return Err(self.corrupt("a bitmap names rows past the end".into()));
        }
        Ok(bitmap)
    }

    /// The rows of `column` that are NULL.
    pub fn null_rows(&self, column: usize) -> Result<RoaringBitmap> {
        Ok(self.null_bitmap(column)?.cloned().unwrap_or_default())
    }

    /// Checks every block's checksum (the whole file), decoding nothing.
    pub fn verify(&self) -> Result<()> {
        for column in &self.footer.columns {
            let refs = column
                .blocks
                .iter()
                .map(|b| &b.data)
                .chain(column.nulls.iter())
                .chain(column.dictionary.iter().flat_map(|d| {
                    [Some(&d.offsets), Some(&d.values), d.bitmaps.as_ref()]
                        .into_iter()
                        .flatten()
                }));
            for block in refs {
                self.stored_bytes(block)?;
            }
        }
        Ok(())
    }

    fn corrupt(&self, reason: String) -> Error {
        corrupt(&self.name, reason)
    }

    fn column_meta(&self, column: usize) -> Result<&ColumnMeta> {
        self.footer
            .columns
            .get(column)
            .ok_or_else(|| self.corrupt(format!("there is no column {column}")))
    }

    /// The stored bytes of a block, after checking its checksum.
    fn stored_bytes(&self, block: &BlockRef) -> Result<Bytes> {
        let start = usize::try_from(block.offset).ok();
        let end = start
            .zip(usize::try_from(block.len).ok())
            .and_then(|(s, l)| s.checked_add(l));
        let (Some(start), Some(end)) = (start, end) else {
            return Err(self.corrupt("a block lies outside the file".into()));
        };
        if end > self.bytes.len() {
            return Err(self.corrupt("a block lies outside the file".into()));
        }
        let bytes = self.bytes.slice(start..end);
        if crc32fast::hash(&bytes) != block.crc {
            return Err(self.corrupt(format!("checksum mismatch in the block at byte {start}")));
        }
        Ok(bytes)
    }

    /// The bytes of a block, checked and decompressed.
    fn block_bytes(&self, block: &BlockRef) -> Result<Bytes> {
        let stored = self.stored_bytes(block)?;
        let raw_len = usize::try_from(block.raw_len)
            .map_err(|_| self.corrupt("a block claims an impossible size".into()))?;
        let expanded = match block.codec {
            Codec::None => return Ok(stored),
            Codec::Lz4 => {
                let mut raw = vec![0u8; raw_len];
                lz4_flex::block::decompress_into(&stored, &mut raw)
                    .map_err(|e| e.to_string())
                    .map(|n| raw.truncate(n))
                    .map(|()| raw)
            }
            Codec::Zstd => zstd_decompress(&stored, raw_len).map_err(|e| e.to_string()),
        };
        match expanded {
            Ok(raw) if raw.len() == raw_len => Ok(Bytes::from(raw)),
            Ok(raw) => Err(self.corrupt(format!(
                "a block expanded to {} bytes, not {raw_len}",
                raw.len()
            ))),
            Err(e) => Err(self.corrupt(format!("a block does not decompress: {e}"))),
        }
    }

    fn null_bitmap(&self, column: usize) -> Result<Option<&RoaringBitmap>> {
        let meta = self.column_meta(column)?;
        let Some(block) = meta.nulls else {
            return Ok(None);
        };
        let cell = &self.nulls[column];
        if cell.get().is_none() {
            let bytes = self.block_bytes(&block)?;
            let bitmap = RoaringBitmap::deserialize_from(&bytes[..])
                .map_err(|e| self.corrupt(format!("null bitmap of \"{}\": {e}", meta.name)))?;
            if bitmap.len() != meta.null_count
                || bitmap
                    .max()
                    .is_some_and(|m| u64::from(m) >= self.footer.rows)
            {
                return Err(
                    self.corrupt(format!("null bitmap of \"{}\" is inconsistent", meta.name))
                );
            }
            let _ = cell.set(bitmap);
        }
        Ok(cell.get())
    }

    fn block_nulls(&self, column: usize, start: usize, rows: Rows) -> Result<Option<NullBuffer>> {
        let Some(bitmap) = self.null_bitmap(column)? else {
            return Ok(None);
        };
        let mut valid = arrow::array::BooleanBufferBuilder::new(rows.len());
        valid.append_n(rows.len(), true);
        match rows {
            Rows::All(count) => {
                let (from, to) = (start as u32, (start + count) as u32);
                for row in bitmap.range(from..to) {
                    valid.set_bit((row - from) as usize, false);
                }
            }
            Rows::At(at) => {
                for (i, &row) in at.iter().enumerate() {
                    if bitmap.contains(start as u32 + row) {
                        valid.set_bit(i, false);
                    }
                }
            }
        }
        Ok(Some(NullBuffer::new(valid.finish())).filter(|n| n.null_count() > 0))
    }

    fn scan_ids(&self, column: usize, id: u32) -> Result<RoaringBitmap> {
        let len = self.footer.columns[column]
            .dictionary
            .as_ref()
            .map_or(0, |d| d.len as usize);
        let mut wanted = vec![false; len];
        if let Some(slot) = wanted.get_mut(id as usize) {
            *slot = true;
        }
        self.rows_with_ids(column, &wanted)
    }

    /// The rows of string column `column` whose dictionary id is marked in `wanted` (which
    /// is indexed by id), NULL rows left out: one pass over the ids, which is how a filter
    /// finds its rows in a segment that keeps no bitmaps for the column.
    pub fn rows_with_ids(&self, column: usize, wanted: &[bool]) -> Result<RoaringBitmap> {
        let meta = self.column_meta(column)?;
        let mut rows = RoaringBitmap::new();
        if meta.dictionary.as_ref().is_some_and(|d| d.len == 0) {
            // No values at all: every row is NULL.
            return Ok(rows);
        }
        // Each block's matches as a bitset of its rows, set without a branch per row, then
        // made one Roaring container (a block is 65,536 rows, a container's span).
        let (mut bits, mut bytes): (Vec<u64>, Vec<u8>) = (Vec::new(), Vec::new());
        let mut start = 0u32;
        for block in &meta.blocks {
            let ids = self.ids(
                meta,
                block.encoding,
                &block.data,
                Rows::All(block.rows as usize),
            )?;
            bits.clear();
            bits.resize(ids.len().div_ceil(64), 0);
            for (word, ids) in bits.iter_mut().zip(ids.chunks(64)) {
                for (bit, &id) in ids.iter().enumerate() {
                    let hit = wanted.get(id as usize).copied().unwrap_or(false);
                    *word |= u64::from(hit) << bit;
                }
            }
            bytes.clear();
            bytes.extend(bits.iter().flat_map(|w| w.to_le_bytes()));
            rows |= RoaringBitmap::from_lsb0_bytes(start, &bytes);
            start += block.rows;
        }
        if let Some(nulls) = self.null_bitmap(column)? {
            rows -= nulls;
        }
        Ok(rows)
    }

    fn ids(
        &self,
        meta: &ColumnMeta,
        encoding: Encoding,
        data: &BlockRef,
        rows: Rows,
    ) -> Result<Vec<u32>> {
        let (Encoding::Ids { width }, Some(dictionary)) = (encoding, &meta.dictionary) else {
            return Err(self.corrupt(format!(
                "column \"{}\" is not dictionary-encoded",
                meta.name
            )));
        };
        let bytes = self.block_bytes(data)?;
        decode_ids(width, &bytes, rows, dictionary.len)
            .ok_or_else(|| self.corrupt(format!("ids of column \"{}\" are damaged", meta.name)))
    }

    fn column_block(&self, column: usize, block: usize, at: Option<&[u32]>) -> Result<ArrayRef> {
        let meta = self.column_meta(column)?;
        let data = meta.blocks.get(block).ok_or_else(|| {
            self.corrupt(format!("column \"{}\" has no block {block}", meta.name))
        })?;
        if let Some(at) = at.filter(|_| !decodes_alone(data.encoding)) {
            // Decoded whole, then the rows taken.
            let whole = self.column_block(column, block, None)?;
            let at = UInt32Array::from(at.to_vec());
            return arrow::compute::take(&whole, &at, None)
                .map_err(|e| self.corrupt(e.to_string()));
        }
        let rows = which_rows(data.rows as usize, at);
        // What the encodings read only whole (plain, bits, binary) are read for.
        let count = rows.len();
        if meta.ty.arrow_type() == DataType::Utf8 {
            // Strings are their dictionary ids (which carry the nulls) looked up.
            let ids = self.read_ids_rows(column, block, at)?;
            if ids.null_count() == rows.len() {
                return Ok(arrow::array::new_null_array(&DataType::Utf8, rows.len()));
            }
            let dictionary = self.dictionary(column)?;
            return arrow::compute::take(dictionary.as_ref(), &ids, None)
                .map_err(|e| self.corrupt(e.to_string()));
        }
        let start = block * self.footer.block_rows as usize;
        let nulls = self.block_nulls(column, start, rows)?;
        let bad =
            |what: &str| self.corrupt(format!("{what} in column \"{}\", block {block}", meta.name));
        let arrow_err = |e: arrow::error::ArrowError| self.corrupt(e.to_string());
        let ints = || -> Result<Vec<i64>> {
            let bytes = self.block_bytes(&data.data)?;
            decode_ints_as(data.encoding, &bytes, rows, i64::MIN..=i64::MAX, |v| v)
                .ok_or_else(|| bad("undecodable integers"))
        };
        // Narrower integers are decoded straight into their width, range-checked.
        fn narrow<T: Bounded>(
            reader: &SegmentReader,
            data: &DataBlock,
            rows: Rows,
        ) -> Result<Vec<T>> {
            let bytes = reader.block_bytes(&data.data)?;
            decode_ints_as(data.encoding, &bytes, rows, T::RANGE, T::wrap).ok_or_else(|| {
                reader.corrupt("undecodable integers or a value out of range".to_owned())
            })
        }
        let array: ArrayRef = match meta.ty.arrow_type() {
            DataType::Int16 => {
                let values = narrow::<i16>(self, data, rows)?;
                Arc::new(Int16Array::try_new(values.into(), nulls).map_err(arrow_err)?)
            }
            DataType::Int32 => {
                let values = narrow::<i32>(self, data, rows)?;
                Arc::new(Int32Array::try_new(values.into(), nulls).map_err(arrow_err)?)
            }
            DataType::Date32 => {
                let values = narrow::<i32>(self, data, rows)?;
                Arc::new(Date32Array::try_new(values.into(), nulls).map_err(arrow_err)?)
            }
            DataType::Int64 => {
                Arc::new(Int64Array::try_new(ints()?.into(), nulls).map_err(arrow_err)?)
            }
            DataType::Timestamp(TimeUnit::Microsecond, tz) => Arc::new(
                TimestampMicrosecondArray::try_new(ints()?.into(), nulls)
                    .map_err(arrow_err)?
                    .with_timezone_opt(tz),
            ),
            DataType::Decimal128(precision, scale) => {
                let values: ScalarBuffer<i128> = match data.encoding {
                    Encoding::Plain => le_values(self.block_bytes(&data.data)?, count)
                        .ok_or_else(|| bad("a short block"))?,
                    encoding => {
                        let bytes = self.block_bytes(&data.data)?;
                        decode_ints_as(encoding, &bytes, rows, i64::MIN..=i64::MAX, i128::from)
                            .ok_or_else(|| bad("undecodable integers"))?
                            .into()
                    }
                };
                Arc::new(
                    Decimal128Array::try_new(values, nulls)
                        .and_then(|a| a.with_precision_and_scale(precision, scale))
                        .map_err(arrow_err)?,
                )
            }
            DataType::Float64 => {
                let bytes = self.block_bytes(&data.data)?;
                let values: ScalarBuffer<f64> = match data.encoding {
                    Encoding::Plain => {
                        le_values(bytes, count).ok_or_else(|| bad("a short block"))?
                    }
                    encoding => decode_scaled(encoding, &bytes, rows)
                        .ok_or_else(|| bad("undecodable numbers"))?
                        .into(),
                };
                Arc::new(Float64Array::try_new(values, nulls).map_err(arrow_err)?)
            }
            DataType::Float32 => {
                let bytes = self.block_bytes(&data.data)?;
                let values: ScalarBuffer<f32> = match data.encoding {
                    Encoding::Plain => {
                        le_values(bytes, count).ok_or_else(|| bad("a short block"))?
                    }
                    encoding => decode_scaled_f32(encoding, &bytes, rows)
                        .ok_or_else(|| bad("undecodable numbers"))?
                        .into(),
                };
                Arc::new(Float32Array::try_new(values, nulls).map_err(arrow_err)?)
            }
            DataType::Boolean => {
                let bytes = self.block_bytes(&data.data)?;
                if data.encoding != Encoding::Bits || bytes.len() < count.div_ceil(8) {
                    return Err(bad("a short block"));
                }
                let values = BooleanBuffer::new(Buffer::from(bytes), 0, count);
                Arc::new(BooleanArray::new(values, nulls))
            }
            DataType::Binary => {
                if data.encoding != Encoding::Binary {
                    return Err(bad("an unknown encoding"));
                }
                let bytes = self.block_bytes(&data.data)?;
                let header = count
                    .checked_add(1)
                    .and_then(|n| n.checked_mul(4))
                    .filter(|&h| h <= bytes.len())
                    .ok_or_else(|| bad("a short block"))?;
                let values = bytes.slice(header..);
                let offsets = checked_offsets(&bytes[..header], count, values.len())
                    .ok_or_else(|| bad("offsets out of order"))?;
                Arc::new(
                    BinaryArray::try_new(offsets, Buffer::from(values), nulls)
                        .map_err(arrow_err)?,
                )
            }
            other => return Err(bad(&format!("unsupported type {other}"))),
        };
        Ok(array)
    }
}

/// Which rows of a block of `count` to decode.
/// A zstd block decompressed with the thread's own context: making one per block was 6 %
/// of a query that reads a few bitmaps of each segment (zstd allocates and clears it).
fn zstd_decompress(stored: &[u8], raw_len: usize) -> std::io::Result<Vec<u8>> {
    thread_local! {
        static CONTEXT: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    CONTEXT.with(|context| {
        let mut context = context.borrow_mut();
        let decompressor = match &mut *context {
            Some(decompressor) => decompressor,
            None => context.insert(zstd::bulk::Decompressor::new()?),
        };
        decompressor.decompress(stored, raw_len)
    })
}

/// An integer type narrower than the `i64`s blocks store: the values it holds, and a
/// value among them made one of it.
trait Bounded: Sized {
    const RANGE: std::ops::RangeInclusive<i64>;
    fn wrap(value: i64) -> Self;
}

impl Bounded for i16 {
    const RANGE: std::ops::RangeInclusive<i64> = i16::MIN as i64..=i16::MAX as i64;
    fn wrap(value: i64) -> Self {
        value as i16
    }
}

impl Bounded for i32 {
    const RANGE: std::ops::RangeInclusive<i64> = i32::MIN as i64..=i32::MAX as i64;
    fn wrap(value: i64) -> Self {
        value as i32
    }
}

fn which_rows(count: usize, at: Option<&[u32]>) -> Rows<'_> {
    match at {
        Some(at) => Rows::At(at),
        None => Rows::All(count),
    }
}

fn corrupt(segment: &str, reason: String) -> Error {
    Error::CorruptSegment {
        segment: segment.to_owned(),
        reason,
    }
}

/// `count + 1` little-endian `i32` offsets from 0, never decreasing, ending at `values_len`.
fn checked_offsets(bytes: &[u8], count: usize, values_len: usize) -> Option<OffsetBuffer<i32>> {
    if bytes.len() != count.checked_add(1)?.checked_mul(4)? {
        return None;
    }
    let offsets: Vec<i32> = bytes
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let ordered = offsets.first() == Some(&0)
        && offsets.windows(2).all(|w| w[0] <= w[1])
        && offsets.last().and_then(|&l| usize::try_from(l).ok()) == Some(values_len);
    ordered.then(|| OffsetBuffer::new(offsets.into()))
}

/// `count` little-endian values, viewing `bytes` in place when it is suitably aligned.
fn le_values<T: ArrowNativeType>(bytes: Bytes, count: usize) -> Option<ScalarBuffer<T>> {
    if bytes.len() != count.checked_mul(std::mem::size_of::<T>())? {
        return None;
    }
    let buffer = if (bytes.as_ptr() as usize).is_multiple_of(std::mem::align_of::<T>()) {
        Buffer::from(bytes)
    } else {
        Buffer::from_slice_ref(&bytes)
    };
    Some(ScalarBuffer::new(buffer, 0, count))
}

/// Checks the header, trailer and footer, and that every block reference is plausible.
fn parse(bytes: &[u8]) -> std::result::Result<Footer, String> {
    let len = bytes.len();
    if len < HEADER_LEN + TRAILER_LEN {
        return Err(format!("the file is only {len} bytes long"));
    }
    if &bytes[..8] != MAGIC {
        return Err("it is not a Henge segment (bad magic bytes)".into());
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let long = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(w)
    };
    if crc32fast::hash(&bytes[..12]) != word(12) {
        return Err("checksum mismatch in the header".into());
    }
    if word(8) != FORMAT_VERSION {
        return Err(format!(
            "format version {} is not {FORMAT_VERSION}",
            word(8)
        ));
    }
    let trailer = len - TRAILER_LEN;
    if &bytes[len - 8..] != END_MAGIC {
        return Err("the file is cut short (no end marker)".into());
    }
    if crc32fast::hash(&bytes[trailer..trailer + 20]) != word(trailer + 20) {
        return Err("checksum mismatch in the trailer".into());
    }
    let footer_offset = long(trailer);
    let footer_len = long(trailer + 8);
    if footer_offset < HEADER_LEN as u64
        || footer_offset.checked_add(footer_len) != Some(trailer as u64)
    {
        return Err("the footer lies outside the file".into());
    }
    let footer_bytes = &bytes[footer_offset as usize..trailer];
    if crc32fast::hash(footer_bytes) != word(trailer + 16) {
        return Err("checksum mismatch in the footer".into());
    }
    let footer: Footer = serde_json::from_slice(footer_bytes)
        .map_err(|e| format!("the footer is unreadable: {e}"))?;
    check_footer(&footer, footer_offset)?;
    Ok(footer)
}

fn check_footer(footer: &Footer, data_end: u64) -> std::result::Result<(), String> {
    if footer.block_rows == 0 || footer.rows > u64::from(u32::MAX) {
        return Err("impossible block or row counts".into());
    }
    let block_ok = |b: &BlockRef| {
        b.offset >= HEADER_LEN as u64
            && b.offset
                .checked_add(b.len)
                .is_some_and(|end| end <= data_end)
            && b.raw_len <= MAX_BLOCK
            && match b.codec {
                Codec::None => b.raw_len == b.len,
                Codec::Lz4 => b.raw_len <= b.len.saturating_mul(256).saturating_add(64),
                Codec::Zstd => true,
            }
    };
    let expected_blocks = footer.rows.div_ceil(u64::from(footer.block_rows));
    for column in &footer.columns {
        let bad = |what: &str| Err(format!("column \"{}\": {what}", column.name));
        if column.null_count > footer.rows {
            return bad("more NULLs than rows");
        }
        if column.blocks.len() as u64 != expected_blocks {
            return bad("wrong number of blocks");
        }
        for (i, block) in column.blocks.iter().enumerate() {
            let expected = (footer.rows - i as u64 * u64::from(footer.block_rows))
                .min(u64::from(footer.block_rows));
            if u64::from(block.rows) != expected || !block_ok(&block.data) {
                return bad("a damaged block reference");
            }
        }
        let refs = column
            .nulls
            .iter()
            .chain(column.dictionary.iter().flat_map(|d| {
                [Some(&d.offsets), Some(&d.values), d.bitmaps.as_ref()]
                    .into_iter()
                    .flatten()
            }));
        for block in refs {
            if !block_ok(block) {
                return bad("a damaged block reference");
            }
        }
        if (column.ty.arrow_type() == DataType::Utf8) != column.dictionary.is_some() {
            return bad("dictionary does not match the column type");
        }
        if column.null_count > 0 && column.nulls.is_none() {
            return bad("NULLs without a null bitmap");
        }
    }
    Ok(())
}
