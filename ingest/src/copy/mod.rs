//! COPY … FROM STDIN: PostgreSQL's text and CSV formats, parsed incrementally as the client
//! sends data, into Arrow batches of the target table.
//!
//! The parser writes nothing itself: [`ParallelCopy`] cuts the input into pieces, parses
//! them on every core and stages their batches in order ([`crate::stage`]), committing only
//! at the end of the input, so a bad line anywhere loads nothing.

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
        let scan = CsvScan {
            quote: self.options.quote,
            escape: self.options.escape,
        };
        let (found, stopped) = scan.record_ends(&self.pending, from, &mut self.in_quote, true);
        self.scan_from = match found {
            Some(i) => i + 1,
            None => stopped,
        };
        found
    }

    fn record(&mut self, mut record: &[u8]) -> Result<()> {
        self.line += 1;
        if record.last() == Some(&b'\r') {
            record = &record[..record.len() - 1];
        }
        // The end-of-data marker, in both formats (in CSV a quoted `\.` is data).
        if record == b"\\." {
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

/// A COPY's input cut into pieces of whole records, to be parsed apart (on several cores)
/// and put back in order: each piece is at least [`CopySplitter::PIECE_BYTES`] long
/// (but the last) and ends with a record's newline. The header and the end marker are
/// left to the parser of the piece that holds them ([`ParsedPiece`]).
pub struct CopySplitter {
    options: CopyOptions,
    pending: Vec<u8>,
    /// How far `pending` was scanned for record ends, the CSV quote state there, and the
    /// end of the last complete record found (one past its newline).
    scanned: usize,
    in_quote: bool,
    complete: usize,
    piece_bytes: usize,
}

impl CopySplitter {
    /// The least bytes of a piece: enough that handing it to another core costs little.
    pub const PIECE_BYTES: usize = 4 << 20;

    pub fn new(options: &CopyOptions) -> CopySplitter {
        CopySplitter {
            options: options.clone(),
            pending: Vec::new(),
            scanned: 0,
            in_quote: false,
            complete: 0,
            piece_bytes: Self::PIECE_BYTES,
        }
    }

    /// Pieces of at least `bytes` (tests cut small inputs into many).
    pub fn with_piece_bytes(mut self, bytes: usize) -> CopySplitter {
        self.piece_bytes = bytes.max(1);
        self
    }

    /// Takes more input; returns a piece once there is one: every complete record held,
    /// when they are at least the piece size together.
    pub fn push(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        self.pending.extend_from_slice(data);
        if self.pending.len() < self.piece_bytes {
            return None;
        }
        self.scan();
        if self.complete < self.piece_bytes {
            return None;
        }
        let rest = self.pending.split_off(self.complete);
        self.scanned -= self.complete;
        self.complete = 0;
        Some(std::mem::replace(&mut self.pending, rest))
    }

    /// The input not yet handed out: the last piece (perhaps without a final newline).
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }

    /// Scans the bytes not yet scanned for record ends.
    fn scan(&mut self) {
        let bytes = &self.pending;
        if self.options.format == CopyFormat::Text {
            if let Some(i) = memchr::memrchr(b'\n', &bytes[self.scanned..]) {
                self.complete = self.scanned + i + 1;
            }
            self.scanned = bytes.len();
            return;
        }
        let scan = CsvScan {
            quote: self.options.quote,
            escape: self.options.escape,
        };
        let (last, stopped) = scan.record_ends(bytes, self.scanned, &mut self.in_quote, false);
        if let Some(i) = last {
            self.complete = i + 1;
        }
        self.scanned = stopped;
    }
}

/// Finds the newlines that end CSV records: those outside quotes.
struct CsvScan {
    quote: u8,
    escape: u8,
}

impl CsvScan {
    /// Scans `bytes` from `from` with the quote state `in_quote` (kept up to date): the
    /// first record end (`first`) or the last one, and where the scan stopped — the end,
    /// or an escape character whose meaning the next byte, not there yet, decides.
    fn record_ends(
        &self,
        bytes: &[u8],
        from: usize,
        in_quote: &mut bool,
        first: bool,
    ) -> (Option<usize>, usize) {
        let (quote, escape) = (self.quote, self.escape);
        let mut found = None;
        let mut i = from;
        while i < bytes.len() {
            let b = bytes[i];
            if *in_quote {
                if b == escape && escape != quote {
                    if i + 1 == bytes.len() {
                        return (found, i);
                    }
                    if bytes[i + 1] == quote || bytes[i + 1] == escape {
                        i += 2;
                        continue;
                    }
                }
                if b == quote {
                    *in_quote = false;
                }
            } else if b == quote {
                *in_quote = true;
            } else if b == b'\n' {
                found = Some(i);
                if first {
                    return (found, i + 1);
                }
            }
            i += 1;
        }
        (found, bytes.len())
    }
}

/// The places for pieces of COPY input being parsed or waiting to be staged, for the
/// whole process: two per core and two more (each piece is about 4 MiB of text and its
/// rows).
fn pieces_in_flight() -> Arc<tokio::sync::Semaphore> {
    static PLACES: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    PLACES
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            Arc::new(tokio::sync::Semaphore::new(2 * cores + 2))
        })
        .clone()
}

/// One piece of a COPY's input, parsed.
pub struct ParsedPiece {
    /// Its lines (records), to number the lines of the pieces after it.
    pub lines: u64,
    pub batches: Vec<RecordBatch>,
    /// It held the end-of-data marker (`\.`): what follows is not loaded.
    pub ended: bool,
}

impl ParsedPiece {
    /// Parses a piece of [`CopySplitter`] with a fresh reader of the COPY (one that skips
    /// the header only for the first piece). The piece becomes the reader's input as it
    /// is, not copied. Errors name the line counted from the piece's start: see
    /// [`Error::after_lines`].
    pub fn parse(mut reader: CopyReader, piece: Vec<u8>) -> Result<ParsedPiece> {
        reader.pending = piece;
        reader.feed(&[])?;
        let (ended, lines) = (reader.finished, reader.line);
        let (_, batches) = reader.finish()?;
        Ok(ParsedPiece {
            lines,
            batches,
            ended,
        })
    }
}

/// A COPY FROM parsed on every core: its input cut into pieces ([`CopySplitter`]), each
/// parsed by a blocking task, the pieces' rows staged in input order as they are done.
/// At most as many pieces are in flight as there are cores (and one being received), so
/// the memory a COPY holds before staging stays a few pieces; and the process has at most
/// [`pieces_in_flight`] places for pieces, so many COPYs at once hold no more. A COPY
/// that finds none free first stages its own pieces, then waits holding none (two COPYs
/// never wait for each other's places).
pub struct ParallelCopy {
    def: Arc<TableDef>,
    columns: Vec<usize>,
    options: CopyOptions,
    /// The reader of the first piece, made (and the options checked) before data comes.
    first: Option<CopyReader>,
    splitter: CopySplitter,
    /// Pieces being parsed, each with its place among the process's pieces in flight.
    parsing: std::collections::VecDeque<(
        tokio::task::JoinHandle<Result<ParsedPiece>>,
        tokio::sync::OwnedSemaphorePermit,
    )>,
    /// Lines of the pieces staged so far.
    lines: u64,
    /// A piece held the end-of-data marker: the pieces after it are not loaded.
    ended: bool,
    parallelism: usize,
}

impl ParallelCopy {
    /// Prepares to load `columns` (table column positions, in input order) of `def`.
    pub fn new(
        def: Arc<TableDef>,
        columns: Vec<usize>,
        options: CopyOptions,
    ) -> Result<ParallelCopy> {
        let first = CopyReader::new(def.clone(), columns.clone(), options.clone())?;
        Ok(ParallelCopy {
            splitter: CopySplitter::new(&options),
            first: Some(first),
            def,
            columns,
            options,
            parsing: Default::default(),
            lines: 0,
            ended: false,
            parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
        })
    }

    /// A reader for the next piece: the first one's, then readers without a header.
    fn reader(&mut self) -> Result<CopyReader> {
        match self.first.take() {
            Some(first) => Ok(first),
            None => {
                let mut options = self.options.clone();
                options.header = false;
                CopyReader::new(self.def.clone(), self.columns.clone(), options)
            }
        }
    }

    /// Takes a piece of input of any size; stages the rows of the pieces parsed by now.
    pub async fn feed(&mut self, data: &[u8], staged: &mut crate::StagedWrite) -> Result<()> {
        if self.ended {
            return Ok(());
        }
        if let Some(piece) = self.splitter.push(data) {
            let places = pieces_in_flight();
            let place = match places.clone().try_acquire_owned() {
                Ok(place) => place,
                Err(_) => {
                    while let Some(next) = self.parsing.pop_front() {
                        self.stage(next, staged).await?;
                    }
                    places
                        .acquire_owned()
                        .await
                        .map_err(|e| Error::Internal(e.to_string()))?
                }
            };
            let reader = self.reader()?;
            let parsing = tokio::task::spawn_blocking(move || ParsedPiece::parse(reader, piece));
            self.parsing.push_back((parsing, place));
        }
        while self.parsing.len() > self.parallelism
            || self.parsing.front().is_some_and(|(p, _)| p.is_finished())
        {
            let next = self.parsing.pop_front().expect("a piece in flight");
            self.stage(next, staged).await?;
        }
        Ok(())
    }

    /// Ends the input: parses what is left and stages every row.
    pub async fn finish(mut self, staged: &mut crate::StagedWrite) -> Result<()> {
        while let Some(next) = self.parsing.pop_front() {
            self.stage(next, staged).await?;
        }
        if !self.ended {
            let rest = self.splitter.finish();
            let parsed =
                ParsedPiece::parse(self.reader()?, rest).map_err(|e| e.after_lines(self.lines))?;
            self.take(parsed, staged).await?;
        }
        Ok(())
    }

    /// Stages a piece in flight once parsed; its place is free again after.
    async fn stage(
        &mut self,
        (piece, _place): (
            tokio::task::JoinHandle<Result<ParsedPiece>>,
            tokio::sync::OwnedSemaphorePermit,
        ),
        staged: &mut crate::StagedWrite,
    ) -> Result<()> {
        let parsed = piece
            .await
            .map_err(|e| Error::Internal(format!("parsing COPY data failed: {e}")))?;
        // What follows an end-of-data marker is not loaded, nor read: its errors too.
        if self.ended {
            return Ok(());
        }
        let parsed = parsed.map_err(|e| e.after_lines(self.lines))?;
        self.take(parsed, staged).await
    }

    /// Stages a parsed piece's rows (the pieces before it were).
    async fn take(&mut self, parsed: ParsedPiece, staged: &mut crate::StagedWrite) -> Result<()> {
        self.lines += parsed.lines;
        self.ended = parsed.ended;
        for batch in parsed.batches {
            staged.push(batch).await?;
        }
        Ok(())
    }
}

use memchr::memchr;

#[cfg(test)]
mod tests;
