//! The footer of a segment file: what every column holds and where its blocks are.
//!
//! It is JSON, written after the last block and protected by its own checksum, so a file can
//! be inspected with ordinary tools; it is read once when a segment is opened.

use serde::{Deserialize, Serialize};

use super::encoding::Encoding;
use crate::schema::ColumnType;

/// Where one block of bytes lies in the file and how to check and expand it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    /// Byte offset from the start of the file.
    pub offset: u64,
    /// Bytes stored in the file.
    pub len: u64,
    /// Bytes after decompression (equal to `len` when not compressed).
    pub raw_len: u64,
    /// CRC-32 (IEEE) of the stored bytes.
    pub crc: u32,
    /// How the stored bytes are compressed.
    pub codec: Codec,
}

/// Compression of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    None,
    /// An lz4 block (lz4_flex's raw block format): fast to expand, for data read by scans.
    Lz4,
    /// A zstd frame: smaller, for dictionaries and indexes, which are read less often.
    Zstd,
}

/// A run of up to `block_rows` consecutive rows of one column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataBlock {
    pub rows: u32,
    pub encoding: Encoding,
    pub data: BlockRef,
}

/// The dictionary of a string column and its inverted index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dictionary {
    /// Number of distinct values.
    pub len: u32,
    /// `len + 1` little-endian `i32` offsets into `values`.
    pub offsets: BlockRef,
    /// The UTF-8 bytes of every value, sorted by byte order.
    pub values: BlockRef,
    /// One Roaring bitmap of rows per value (see FORMAT.md); absent for near-unique columns.
    pub bitmaps: Option<BlockRef>,
}

/// The smallest or largest value of a column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Stat {
    Int(i64),
    /// IEEE 754 bits of the double (NaN is left out of minimum and maximum).
    Float(u64),
    /// A numeric's unscaled value, in decimal digits.
    Decimal(String),
    Bool(bool),
    Text(String),
}

/// One column of a segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnMeta {
    pub name: String,
    pub ty: ColumnType,
    pub null_count: u64,
    pub min: Option<Stat>,
    pub max: Option<Stat>,
    /// Roaring bitmap of the rows that are NULL; absent when there are none.
    pub nulls: Option<BlockRef>,
    /// For string columns.
    pub dictionary: Option<Dictionary>,
    pub blocks: Vec<DataBlock>,
}

/// Everything a reader needs to know about a segment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Footer {
    pub rows: u64,
    /// Rows per block (the last block of a column may hold fewer).
    pub block_rows: u32,
    /// Columns the rows are sorted by, in order.
    pub sort_columns: Vec<String>,
    pub columns: Vec<ColumnMeta>,
}
