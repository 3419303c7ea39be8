//! Segments: the immutable, column-oriented files that hold a table's rows for one time
//! interval, as described in `storage/FORMAT.md`.
//!
//! [`writer`] turns Arrow batches into a file; [`reader`] memory-maps one and hands its
//! columns back as Arrow arrays, checking every block's checksum on the way. [`encoding`] and
//! [`bitpack`] hold the column encodings, [`footer`] the file's self-description, and
//! [`dictionaries`] the decoded dictionaries of string columns, bounded in bytes.

pub mod bitpack;
pub mod dictionaries;
pub mod encoding;
pub mod footer;
pub mod reader;
pub mod writer;

#[cfg(test)]
mod tests;

pub use footer::{ColumnMeta, Footer, Stat};
pub use reader::SegmentReader;
pub use writer::{
    encode_segment, sorted_rows, write_segment, write_sorted_segment, WrittenSegment,
};

#[cfg(target_endian = "big")]
compile_error!("the segment format is little-endian and is read in place");

/// The first eight bytes of every segment file.
pub const MAGIC: &[u8; 8] = b"HENGESEG";
/// The last eight bytes of every complete segment file.
pub const END_MAGIC: &[u8; 8] = b"HSEG-END";
/// The version of the format written by this build; readers refuse any other.
pub const FORMAT_VERSION: u32 = 1;
/// Magic, version and the header's CRC-32.
pub const HEADER_LEN: usize = 16;
/// Footer offset and length, footer CRC, trailer CRC and the end magic.
pub const TRAILER_LEN: usize = 32;
/// Rows per block of every column.
pub const BLOCK_ROWS: usize = 65_536;

/// Whether a string column with `distinct` values over `rows` rows is near-unique: its
/// segment keeps no bitmap index (nearly one value per row answers nothing the ids cannot),
/// and a filter on it is evaluated on the rows, which costs no more than evaluating it on
/// the dictionary.
pub fn near_unique(distinct: u64, rows: u64) -> bool {
    distinct > 1024 && distinct * 4 > rows
}
/// Blocks start at multiples of this, so fixed-width values can be used in place.
pub const ALIGN: usize = 16;
