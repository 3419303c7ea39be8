//! COPY … FROM STDIN: PostgreSQL's text and CSV formats, parsed incrementally as the client
//! sends data, into Arrow batches of the target table.
//!
//! The parser writes nothing itself: the caller takes the batches as they fill and stages
//! them ([`crate::stage`]), committing only at the end of the input, so a bad line
//! anywhere loads nothing.

mod csv;
mod text;

use std::sync::Arc;

use arrow::array::RecordBatch;
use henge_storage::TableDef;

use crate::error::{Error, Result};
use crate::rows::RowBuilder;

/// The data format of a COPY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    Text,
    Csv,
}

/// COPY's options, with PostgreSQL's defaults per format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    pub format: CopyFormat,
    pub delimiter: u8,
    pub null: String,
    /// The first line is a header, skipped on input and written on output.
    pub header: bool,
    pub quote: u8,
    pub escape: u8,
    /// Columns (by name) whose quoted values equal to the NULL string become NULL (CSV).
    pub force_null: Vec<String>,
    /// Columns (by name) whose values equal to the NULL string are not NULL (CSV).
    pub force_not_null: Vec<String>,
    /// Columns (by name) always quoted on output (CSV, COPY TO); `None` for none, and an
    /// empty list for all (`FORCE_QUOTE *`).
    pub force_quote: Option<Vec<String>>,
    /// The session's time zone, as Arrow names it: `timestamptz` values written without
    /// an offset are local time there. `None` is UTC.
    pub time_zone: Option<String>,
}

impl CopyOptions {
    /// The defaults of a format: tab and `\N` for text, comma, empty string and `"` for CSV.
    pub fn new(format: CopyFormat) -> CopyOptions {
        match format {
            CopyFormat::Text => CopyOptions {
                format,
                delimiter: b'\t',
                null: "\\N".into(),
                header: false,
                quote: b'"',
                escape: b'"',
                force_null: Vec::new(),
                force_not_null: Vec::new(),
                force_quote: None,
                time_zone: None,
            },
            CopyFormat::Csv => CopyOptions {
                format,
                delimiter: b',',
                null: String::new(),
                header: false,
                quote: b'"',
                escape: b'"',
                force_null: Vec::new(),
                force_not_null: Vec::new(),
                force_quote: None,
                time_zone: None,
            },
        }
    }
}

/// Parses the rows of one COPY FROM, fed in pieces of any size.
pub struct CopyReader {
    options: CopyOptions,
    /// For each input field, the table column it loads.
    targets: Vec<usize>,
    force_null: Vec<bool>,
    force_not_null: Vec<bool>,
    builder: RowBuilder,
    pending: Vec<u8>,
    /// Where the search for the end of the current record resumes, and the CSV quote
    /// state there.
    scan_from: usize,
    in_quote: bool,
    line: u64,
    rows: u64,
    header_pending: bool,
    finished: bool,
    fields: Fields,
}

/// The fields of one record, decoded into one buffer.
#[derive(Default)]
pub(crate) struct Fields {
    pub data: Vec<u8>,
    /// Per field: end offset in `data`, whether it is NULL, whether it was quoted.
    pub ends: Vec<(usize, bool, bool)>,
}

impl Fields {
    fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    fn end_field(&mut self, null: bool, quoted: bool) {
        self.ends.push((self.data.len(), null, quoted));
    }
}

impl CopyReader {
    /// Prepares to load `columns` (table column positions, in input order) of `def`.
    pub fn new(
        def: Arc<TableDef>,
        columns: Vec<usize>,
        options: CopyOptions,
    ) -> Result<CopyReader> {
        let mark = |names: &[String]| -> Result<Vec<bool>> {
            let mut marks = vec![false; columns.len()];
            for name in names {
                let position = columns
                    .iter()
                    .position(|&c| def.columns[c].name == *name)
                    .ok_or_else(|| {
                        Error::BadCopyOption(format!(
                            "column \"{name}\" of a FORCE option is not referenced by COPY"
                        ))
                    })?;
                marks[position] = true;
            }
            Ok(marks)
        };
        let force_null = mark(&options.force_null)?;
        let force_not_null = mark(&options.force_not_null)?;
        let builder = RowBuilder::new(def).with_time_zone(options.time_zone.as_deref());
        Ok(CopyReader {
            header_pending: options.header,
            options,
            targets: columns,
            force_null,
            force_not_null,
            builder,
            pending: Vec::new(),
            scan_from: 0,
            in_quote: false,
            line: 0,
            rows: 0,
            finished: false,
            fields: Fields::default(),
        })
    }

    /// Consumes a piece of input, parsing every record it completes.
    pub fn feed(&mut self, data: &[u8]) -> Result<()> {
        if self.finished {
            return Ok(());
        }
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(end) = self.find_record_end(start) {
            let record = std::mem::take(&mut self.pending);
            let result = self.record(&record[start..end]);
            self.pending = record;
            result?;
            start = end + 1;
            self.scan_from = start;
            if self.finished {
                break;
            }
        }
        self.pending.drain(..start);
        self.scan_from -= start.min(self.scan_from);
        Ok(())
    }

    /// Batches of the rows parsed so far, handed over: the caller stages them as the input
    /// arrives instead of holding the whole input in memory.
    pub fn take_batches(&mut self) -> Vec<RecordBatch> {
        self.builder.take_batches()
    }

    /// Ends the input: parses a last record without a newline and returns every row not
    /// yet taken.
    pub fn finish(mut self) -> Result<(u64, Vec<RecordBatch>)> {
        if !self.finished && !self.pending.is_empty() {
            if self.options.format == CopyFormat::Csv {
                // Completes the quote scan over the remaining bytes.
                let _ = self.find_record_end(0);
                if self.in_quote {
                    self.line += 1;
                    return Err(self.line_error(
                        None,
                        Error::BadCopyData("unterminated CSV quoted field".into()),
                    ));
                }
            }
            let record = std::mem::take(&mut self.pending);
            self.record(&record)?;
        }
        Ok((self.rows, self.builder.finish()?))
    }

    /// Position of the newline ending the record that starts at `start`, if it is there.
    fn find_record_end(&mut self, start: usize) -> Option<usize> {
        let from = self.scan_from.max(start);
        if self.options.format == CopyFormat::Text {
            let found = memchr(b'\n', &self.pending[from..]).map(|i| from + i);
            self.scan_from = found.unwrap_or(self.pending.len());
            return found;
        }
        let (quote, escape) = (self.options.quote, self.options.escape);
        let bytes = &self.pending;
        let mut i = from;
        while i < bytes.len() {
            let b = bytes[i];
            if self.in_quote {
                if b == escape
                    && escape != quote
                    && i + 1 < bytes.len()
                    && (bytes[i + 1] == quote || bytes[i + 1] == escape)
                {
                    i += 2;
                    continue;
                }
                if b == escape && escape != quote && i + 1 == bytes.len() {
                    // Need the next byte to decide.
                    self.scan_from = i;
                    return None;
                }
                if b == quote {
                    self.in_quote = false;
                }
            } else if b == quote {
                self.in_quote = true;
            } else if b == b'\n' {
                self.scan_from = i + 1;
                return Some(i);
            }
            i += 1;
        }
        self.scan_from = bytes.len();
        None
    }

    fn record(&mut self, mut record: &[u8]) -> Result<()> {
        self.line += 1;
        if record.last() == Some(&b'\r') {
            record = &record[..record.len() - 1];
        }
        if self.options.format == CopyFormat::Text && record == b"\\." {
            self.finished = true;
            return Ok(());
        }
        self.fields.clear();
        let split = match self.options.format {
            CopyFormat::Text => text::split(record, &self.options, &mut self.fields),
            CopyFormat::Csv => csv::split(record, &self.options, &mut self.fields),
        };
        if let Err(e) = split {
            return Err(self.line_error(None, e));
        }
        if self.header_pending {
            self.header_pending = false;
            return Ok(());
        }
        if self.fields.ends.len() < self.targets.len() {
            let missing = &self.builder.table().columns[self.targets[self.fields.ends.len()]].name;
            let e = Error::BadCopyData(format!("missing data for column \"{missing}\""));
            return Err(self.line_error(None, e));
        }
        if self.fields.ends.len() > self.targets.len() {
            let e = Error::BadCopyData("extra data after last expected column".into());
            return Err(self.line_error(None, e));
        }
        let data = match std::str::from_utf8(&self.fields.data) {
            Ok(data) => data,
            Err(_) => {
                let e = Error::BadCopyData("invalid byte sequence for encoding \"UTF8\"".into());
                return Err(self.line_error(None, e));
            }
        };
        let mut start = 0;
        for (i, &(end, null, quoted)) in self.fields.ends.iter().enumerate() {
            let raw = &data[start..end];
            start = end;
            let is_null = (null && !self.force_not_null[i])
                || (quoted && self.force_null[i] && raw == self.options.null);
            let value = if is_null { None } else { Some(raw) };
            let column = self.targets[i];
            if let Err(e) = self.builder.push(column, value) {
                let name = self.builder.table().columns[column].name.clone();
                let e = match e {
                    e @ Error::NotNull { .. } => e,
                    e => return Err(self.line_error(Some(name), e)),
                };
                return Err(self.line_error(None, e));
            }
        }
        if let Err(e) = self.builder.end_row() {
            return Err(self.line_error(None, e));
        }
        self.rows += 1;
        Ok(())
    }

    fn line_error(&self, column: Option<String>, source: Error) -> Error {
        Error::CopyLine {
            table: self.builder.table().name.clone(),
            line: self.line,
            column,
            source: Box::new(source),
        }
    }
}

use memchr::memchr;

#[cfg(test)]
mod tests;
