//! COPY: options from the statement, COPY FROM STDIN into a table, COPY TO STDOUT from a
//! table or a query.

use std::sync::Arc;

use datafusion::arrow::util::display::FormatOptions;
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Ident, ObjectName,
    Statement,
};
use futures::{stream, StreamExt};
use henge_ingest::copy::{CopyFormat, CopyOptions, ParallelCopy};
use henge_ingest::{SessionWrites, Table};
use pgwire::api::results::{CopyResponse, Response};
use pgwire::messages::copy::CopyData;

use crate::ddl::{normalize, table_name};
use crate::error::{code, PgError};
use crate::session::{CopyIn, Session};
use crate::wire::encode::ColumnEncoder;

fn names(idents: &[Ident]) -> Vec<String> {
    idents.iter().map(normalize).collect()
}

/// Reads COPY's options (both the modern `(FORMAT csv, …)` and the legacy `CSV HEADER`
/// forms), checking them as PostgreSQL does.
fn copy_options(
    options: &[CopyOption],
    legacy: &[CopyLegacyOption],
) -> Result<CopyOptions, PgError> {
    let invalid = |m: &str| PgError::new(code::INVALID_PARAMETER_VALUE, m);
    let mut format = CopyFormat::Text;
    for option in options {
        if let CopyOption::Format(name) = option {
            format = match name.value.to_lowercase().as_str() {
                "text" => CopyFormat::Text,
                "csv" => CopyFormat::Csv,
                "binary" => {
                    return Err(PgError::unsupported(
                        "COPY format \"binary\" is not supported",
                    ))
                }
                other => return Err(invalid(&format!("COPY format \"{other}\" not recognized"))),
            };
        }
    }
    for option in legacy {
        match option {
            CopyLegacyOption::Csv(_) => format = CopyFormat::Csv,
            CopyLegacyOption::Binary => {
                return Err(PgError::unsupported(
                    "COPY format \"binary\" is not supported",
                ))
            }
            _ => {}
        }
    }
    let mut out = CopyOptions::new(format);
    let single_byte = |c: char, what: &str| -> Result<u8, PgError> {
        if c.is_ascii() && c != '\r' && c != '\n' {
            Ok(c as u8)
        } else {
            Err(invalid(&format!(
                "COPY {what} must be a single one-byte character"
            )))
        }
    };
    let csv_only = |what: &str| -> Result<(), PgError> {
        if format == CopyFormat::Csv {
            Ok(())
        } else {
            Err(PgError::unsupported(format!(
                "COPY {what} available only in CSV mode"
            )))
        }
    };
    for option in options {
        match option {
            CopyOption::Format(_) => {}
            CopyOption::Delimiter(c) => out.delimiter = single_byte(*c, "delimiter")?,
            CopyOption::Null(s) => out.null = s.clone(),
            CopyOption::Header(true) => out.header = true,
            CopyOption::Header(false) => out.header = false,
            CopyOption::Quote(c) => {
                csv_only("quote")?;
                out.quote = single_byte(*c, "quote")?;
            }
            CopyOption::Escape(c) => {
                csv_only("escape")?;
                out.escape = single_byte(*c, "escape")?;
            }
            CopyOption::ForceNull(cols) => {
                csv_only("force null")?;
                out.force_null = names(cols);
            }
            CopyOption::ForceNotNull(cols) => {
                csv_only("force not null")?;
                out.force_not_null = names(cols);
            }
            CopyOption::ForceQuote(cols) => {
                csv_only("force quote")?;
                out.force_quote = Some(names(cols));
            }
            CopyOption::Encoding(e)
                if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
            CopyOption::Freeze(_) => {}
            other => {
                return Err(PgError::unsupported(format!(
                    "COPY option {other} is not supported"
                )))
            }
        }
    }
    for option in legacy {
        match option {
            CopyLegacyOption::Csv(csv) => {
                for c in csv {
                    match c {
                        CopyLegacyCsvOption::Header => out.header = true,
                        CopyLegacyCsvOption::Quote(q) => out.quote = single_byte(*q, "quote")?,
                        CopyLegacyCsvOption::Escape(e) => out.escape = single_byte(*e, "escape")?,
                        CopyLegacyCsvOption::ForceQuote(cols) => {
                            out.force_quote = Some(names(cols))
                        }
                        CopyLegacyCsvOption::ForceNotNull(cols) => out.force_not_null = names(cols),
                    }
                }
            }
            CopyLegacyOption::Delimiter(c) => out.delimiter = single_byte(*c, "delimiter")?,
            CopyLegacyOption::Null(s) => out.null = s.clone(),
            CopyLegacyOption::Header => out.header = true,
            other => {
                return Err(PgError::unsupported(format!(
                    "COPY option {other} is not supported"
                )))
            }
        }
    }
    if out.format == CopyFormat::Csv && out.delimiter == out.quote {
        return Err(invalid("COPY delimiter and quote must be different"));
    }
    if out.null.contains(out.delimiter as char) {
        return Err(invalid(
            "COPY delimiter character must not appear in the NULL specification",
        ));
    }
    if out.format == CopyFormat::Text
        && (out.delimiter == b'\\' || out.delimiter.is_ascii_alphanumeric())
    {
        return Err(invalid(
            "COPY delimiter cannot be a backslash, letter or digit",
        ));
    }
    Ok(out)
}

impl Session {
    /// Starts a COPY: for FROM STDIN, prepares the parser and asks for data; for TO STDOUT,
    /// runs the query and streams the rows.
    pub async fn copy(&self, statement: &Statement) -> Result<Response, PgError> {
        let Statement::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            values,
        } = statement
        else {
            return Err(PgError::syntax("not a COPY statement"));
        };
        if !values.is_empty() {
            return Err(PgError::unsupported(
                "inline COPY data is not supported; send it with COPY FROM STDIN",
            ));
        }
        let mut options = copy_options(options, legacy_options)?;
        options.time_zone = Some(self.settings.time_zone_name());
        match (to, target) {
            (false, CopyTarget::Stdin) => self.copy_from(source, options),
            (true, CopyTarget::Stdout) => self.copy_to(source, options).await,
            (false, _) => Err(PgError::unsupported(
                "COPY FROM a file or program is not supported; use COPY FROM STDIN (psql: \\copy)",
            )),
            (true, _) => Err(PgError::unsupported(
                "COPY TO a file or program is not supported; use COPY TO STDOUT (psql: \\copy)",
            )),
        }
    }

    fn copy_from(&self, source: &CopySource, options: CopyOptions) -> Result<Response, PgError> {
        let CopySource::Table {
            table_name: name,
            columns,
        } = source
        else {
            return Err(PgError::syntax("COPY FROM needs a table, not a query"));
        };
        let table = self.resolve_table(name)?;
        let targets = column_positions(&table.def, columns)?;
        let count = targets.len();
        let reader = ParallelCopy::new(table.def.clone(), targets, options)?;
        *self.copy_in.lock().unwrap_or_else(|e| e.into_inner()) = Some(CopyIn {
            staged: Some(self.shared.engine.stage(table)),
            reader: Some(reader),
            error: None,
        });
        Ok(Response::CopyIn(CopyResponse::new(
            0,
            count,
            stream::empty(),
        )))
    }

    fn resolve_table(&self, name: &ObjectName) -> Result<Arc<Table>, PgError> {
        let name = table_name(name)?;
        if self.shared.engine.view(&name).is_some() {
            return Err(PgError::new(
                code::WRONG_OBJECT_TYPE,
                format!("cannot copy to view \"{name}\""),
            ));
        }
        self.shared.engine.table(&name).ok_or_else(|| {
            PgError::new(
                code::UNDEFINED_TABLE,
                format!("relation \"{name}\" does not exist"),
            )
        })
    }

    async fn copy_to(
        &self,
        source: &CopySource,
        options: CopyOptions,
    ) -> Result<Response, PgError> {
        let query = match source {
            CopySource::Table {
                table_name: name,
                columns,
            } => {
                if self.shared.engine.view(&table_name(name)?).is_some() {
                    return Err(PgError::new(
                        code::WRONG_OBJECT_TYPE,
                        format!("cannot copy from view \"{}\"", table_name(name)?),
                    )
                    .with_hint("Try the COPY (SELECT ...) TO variant."));
                }
                let table = self.resolve_table(name)?;
                let positions = column_positions(&table.def, columns)?;
                let list: Vec<String> = positions
                    .iter()
                    .map(|&i| quote_ident(&table.def.columns[i].name))
                    .collect();
                format!(
                    "SELECT {} FROM {}",
                    list.join(", "),
                    quote_ident(&table.def.name)
                )
            }
            CopySource::Query(query) => query.to_string(),
        };
        let statement = match crate::session::parse(&query)?.pop() {
            Some(crate::session::Command::Sql(statement)) => *statement,
            _ => return Err(PgError::syntax("COPY needs a query")),
        };
        let plan = self
            .ctx
            .state()
            .statement_to_plan(datafusion::sql::parser::Statement::Statement(Box::new(
                statement,
            )))
            .await?;
        // The rows go to the client, numerics with PostgreSQL's places as a query's.
        let state = self.ctx.state();
        let plan = state
            .analyzer()
            .execute_and_check(plan, state.config_options(), |_, _| {})?;
        let plan = henge_planner::pg::display::for_client(plan)?;
        let df = self.ctx.execute_logical_plan(plan).await?;
        let schema = df.schema().as_arrow().clone();
        let mut header = Vec::new();
        if options.header {
            for (i, field) in schema.fields().iter().enumerate() {
                if i > 0 {
                    header.push(options.delimiter);
                }
                let name = henge_planner::pg::rewrite::shown_name(field.name());
                write_field(&mut header, Some(name.as_bytes()), &options, false);
            }
            header.push(b'\n');
        }
        let force: Vec<bool> = schema
            .fields()
            .iter()
            .map(|f| match &options.force_quote {
                Some(cols) => cols.is_empty() || cols.iter().any(|c| c == f.name()),
                None => false,
            })
            .collect();
        let zone = self.settings.time_zone();
        let batches = self
            .stream(henge_planner::memory::Planned::Logical(df), None)
            .await?;
        // One CopyData message per row, as PostgreSQL sends them (psycopg 3 reads a row per
        // message), batch by batch as they are produced.
        let data = batches.flat_map(move |batch| {
            match batch.and_then(|b| copy_lines(&b, &options, &force, &zone)) {
                Ok(lines) => {
                    stream::iter(lines.into_iter().map(|l| Ok(CopyData::new(l)))).left_stream()
                }
                Err(e) => stream::iter([Err(e.into())]).right_stream(),
            }
        });
        let header = (!header.is_empty()).then(|| Ok(CopyData::new(header.into())));
        let columns = schema.fields().len();
        Ok(Response::CopyOut(CopyResponse::new(
            0,
            columns,
            stream::iter(header).chain(data),
        )))
    }
}

/// The COPY TO lines of one batch, one per row.
fn copy_lines(
    batch: &datafusion::arrow::array::RecordBatch,
    options: &CopyOptions,
    force: &[bool],
    zone: &datafusion::arrow::array::timezone::Tz,
) -> Result<Vec<bytes::Bytes>, PgError> {
    let format_options = FormatOptions::default();
    let schema = batch.schema();
    let encoders = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(a, field)| {
            ColumnEncoder::new(
                a,
                pgwire::api::results::FieldFormat::Text,
                &format_options,
                zone,
            )
            .map(|e| e.padded_as(field))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut lines = Vec::with_capacity(batch.num_rows());
    let mut value = Vec::new();
    for row in 0..batch.num_rows() {
        let mut line = Vec::new();
        for (i, encoder) in encoders.iter().enumerate() {
            if i > 0 {
                line.push(options.delimiter);
            }
            value.clear();
            let present = encoder.text(row, &mut value)?;
            write_field(&mut line, present.then_some(&value[..]), options, force[i]);
        }
        line.push(b'\n');
        lines.push(line.into());
    }
    Ok(lines)
}

/// Table column positions named by a COPY column list (all columns when empty).
fn column_positions(
    def: &henge_storage::TableDef,
    columns: &[Ident],
) -> Result<Vec<usize>, PgError> {
    if columns.is_empty() {
        return Ok((0..def.columns.len()).collect());
    }
    let mut positions: Vec<usize> = Vec::with_capacity(columns.len());
    for ident in columns {
        let name = normalize(ident);
        let position = crate::ddl::column_position(def, &name)?;
        if positions.contains(&position) {
            return Err(PgError::new(
                code::DUPLICATE_COLUMN,
                format!("column \"{name}\" specified more than once"),
            ));
        }
        positions.push(position);
    }
    Ok(positions)
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Appends one field of COPY TO output in the chosen format.
fn write_field(line: &mut Vec<u8>, value: Option<&[u8]>, options: &CopyOptions, force_quote: bool) {
    let Some(value) = value else {
        line.extend_from_slice(options.null.as_bytes());
        return;
    };
    match options.format {
        CopyFormat::Text => {
            for &b in value {
                match b {
                    b'\\' => line.extend_from_slice(b"\\\\"),
                    b'\n' => line.extend_from_slice(b"\\n"),
                    b'\r' => line.extend_from_slice(b"\\r"),
                    b'\t' => line.extend_from_slice(b"\\t"),
                    8 => line.extend_from_slice(b"\\b"),
                    12 => line.extend_from_slice(b"\\f"),
                    11 => line.extend_from_slice(b"\\v"),
                    b if b == options.delimiter => {
                        line.push(b'\\');
                        line.push(b);
                    }
                    b => line.push(b),
                }
            }
        }
        CopyFormat::Csv => {
            let needs_quote = force_quote
                || value.is_empty() && options.null.is_empty()
                || value == options.null.as_bytes()
                || value.iter().any(|&b| {
                    b == options.delimiter || b == options.quote || b == b'\n' || b == b'\r'
                })
                || value.first().is_some_and(|b| b.is_ascii_whitespace())
                || value == b"\\.";
            if !needs_quote {
                line.extend_from_slice(value);
                return;
            }
            line.push(options.quote);
            for &b in value {
                if b == options.quote || b == options.escape {
                    line.push(options.escape);
                }
                line.push(b);
            }
            line.push(options.quote);
        }
    }
}

/// Shared by the COPY data handlers: feeds data to the parser unless it already failed, and
/// stages the rows it completes (parsed on every core, staged in input order).
pub async fn feed(copy: &mut CopyIn, data: &[u8]) {
    if copy.error.is_some() {
        return;
    }
    let (Some(reader), Some(staged)) = (copy.reader.as_mut(), copy.staged.as_mut()) else {
        return;
    };
    if let Err(e) = reader.feed(data, staged).await {
        copy.error = Some(e.into());
        // Dropping the staged rows deletes what was spilled.
        copy.reader = None;
        copy.staged = None;
    }
}

/// Finishes a COPY FROM: every row or none (inside a transaction block, kept for its
/// COMMIT).
pub async fn finish(copy: CopyIn, writes: &SessionWrites) -> Result<u64, PgError> {
    if let Some(error) = copy.error {
        return Err(error);
    }
    let (Some(reader), Some(mut staged)) = (copy.reader, copy.staged) else {
        return Err(PgError::new(
            code::PROTOCOL_VIOLATION,
            "COPY was not started",
        ));
    };
    reader.finish(&mut staged).await?;
    let rows = staged.rows();
    match writes.keep(staged).await? {
        Some(staged) => Ok(staged.commit().await?),
        None => Ok(rows),
    }
}
