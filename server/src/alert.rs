//! Alerts: continuous rules that watch a table's rows as they are acknowledged and report
//! each match to the clients that LISTEN and to an alerts table.
//!
//! ```sql
//! CREATE ALERT card_failures ON transactions
//!     WHERE status = 'failed'                      -- which rows count (optional)
//!     PARTITION BY card                            -- one window per key
//!     WITHIN INTERVAL '1 hour'                     -- the window's length
//!     WHEN count(*) >= 3                           -- over the window's rows
//!     NOTIFY card_alerts                           -- a LISTEN channel (optional)
//!     INTO alerts;                                 -- the alerts table (default: alerts)
//! ALTER ALERT card_failures DISABLE | ENABLE;
//! DROP ALERT [IF EXISTS] card_failures;
//! ```
//!
//! The condition combines, with AND and OR, comparisons of `count(*)`, `count(x)`,
//! `count(DISTINCT x)`, `sum(x)`, `min(x)` and `max(x)` — each optionally with
//! `FILTER (WHERE …)` — against numbers (`count(*) >= 3 AND count(*) FILTER (WHERE
//! category = 'Electronics') >= 1`), and `sequence(a, b, …)` holds when the window has
//! a row where `a` holds, then one at a later time where `b` holds, and so on.
//!
//! **Semantics, in event time.** For each key, every distinct time `e` of a counted row
//! ends one window: the key's counted rows with a time in `[e - w, e]`. A window matches
//! when the condition holds over its rows, and each matching window is reported exactly
//! once: three failures at 10:00, 10:20 and 10:59 within an hour match once (the window
//! ending at 10:59); at 10:00, 10:30 and 11:01 they never do. The set of reports is thus a
//! function of the rows, whatever order they arrive in, for conditions that only grow true
//! as a window gains rows (counts, `max(x) >=`, `min(x) <=`, sums of non-negative values);
//! a report, once sent, is never taken back. Rows may arrive late by up to the table's
//! `window_period`: the windows still open end no earlier than the newest time seen less
//! that period, and a row older than that less the window length is counted as late and
//! left out. A rule counts the rows whose time is after the newest row its table held when
//! the rule was created (or enabled again).
//!
//! **Durability.** Each match is written to the alerts table (durably, through the
//! write-ahead log) before its notification is sent. After a restart every rule rebuilds
//! its windows from the stored rows and the alerts table, and reports the matches the
//! crash kept it from reporting: no match is reported twice, none is lost.
//!
//! The rules' thread is fed by the engine with every commit of a watched table (in commit
//! order): INSERT, COPY (in memory or spilled to pieces), transaction blocks and Kafka
//! pipelines. It hands each batch to the rules' groups, one per core, which evaluate their
//! rules side by side on threads of their own, and reports the commit's matches once every
//! group has evaluated it.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::sync::{Arc, RwLock};

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::execution::context::SessionContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::{col, lit};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    ObjectName, UnaryOperator, Value,
};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use futures::StreamExt;
use henge_ingest::observe::{CommitObserver, Committed, Evaluated};
use henge_ingest::Engine;
use henge_storage::alert::AlertDef;
use henge_storage::schema::TableDef;
use pgwire::api::results::{Response, Tag};

use crate::error::{code, PgError};
use crate::notify::{Hub, Notification};
use crate::session::Session;

mod windows;
use windows::{Input, Keys, Windows};

/// The alerts table a rule writes to when it names none.
pub const DEFAULT_ALERTS_TABLE: &str = "alerts";

/// One of the statements above.
#[derive(Debug, Clone)]
pub enum AlertCommand {
    Create(Box<CreateAlert>),
    Alter { name: String, enable: bool },
    Drop { name: String, if_exists: bool },
}

#[derive(Debug, Clone)]
pub struct CreateAlert {
    name: String,
    table: String,
    filter: Option<Expr>,
    keys: Vec<Expr>,
    window_micros: i64,
    window_text: String,
    condition: Expr,
    channel: Option<String>,
    into: Option<String>,
}

fn word_is(parser: &Parser, n: usize, word: &str) -> bool {
    matches!(parser.peek_nth_token(n).token,
        Token::Word(ref w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

/// Whether the statement next in `parser` is one of these.
pub fn starts(parser: &Parser) -> bool {
    (word_is(parser, 0, "create") || word_is(parser, 0, "alter") || word_is(parser, 0, "drop"))
        && word_is(parser, 1, "alert")
}

fn syntax(e: ParserError) -> PgError {
    PgError::syntax(e.to_string())
}

/// A name as PostgreSQL reads it: folded to lower case unless quoted.
fn name_of(parser: &mut Parser) -> Result<String, PgError> {
    let ident = parser.parse_identifier().map_err(syntax)?;
    Ok(match ident.quote_style {
        Some(_) => ident.value,
        None => ident.value.to_lowercase(),
    })
}

fn table_of(name: &ObjectName) -> Result<String, PgError> {
    crate::ddl::table_name(name)
}

/// Parses one of the statements above.
pub fn parse(parser: &mut Parser) -> Result<AlertCommand, PgError> {
    let verb = parser.next_token().token.to_string().to_lowercase();
    parser.next_token(); // ALERT
    match verb.as_str() {
        "create" => parse_create(parser).map(|c| AlertCommand::Create(Box::new(c))),
        "alter" => {
            let name = name_of(parser)?;
            let enable = match parser.parse_one_of_keywords(&[Keyword::ENABLE, Keyword::DISABLE]) {
                Some(Keyword::ENABLE) => true,
                Some(_) => false,
                None => {
                    return Err(PgError::syntax(format!(
                        "expected ENABLE or DISABLE after ALTER ALERT {name}, found {}",
                        parser.peek_token()
                    )))
                }
            };
            Ok(AlertCommand::Alter { name, enable })
        }
        _ => {
            let if_exists = parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let name = name_of(parser)?;
            Ok(AlertCommand::Drop { name, if_exists })
        }
    }
}

fn parse_create(parser: &mut Parser) -> Result<CreateAlert, PgError> {
    let name = name_of(parser)?;
    parser.expect_keyword(Keyword::ON).map_err(syntax)?;
    let table = table_of(&parser.parse_object_name(false).map_err(syntax)?)?;
    let filter = match parser.parse_keyword(Keyword::WHERE) {
        true => Some(parser.parse_expr().map_err(syntax)?),
        false => None,
    };
    parser
        .expect_keywords(&[Keyword::PARTITION, Keyword::BY])
        .map_err(syntax)?;
    let keys = parser
        .parse_comma_separated(Parser::parse_expr)
        .map_err(syntax)?;
    parser.expect_keyword(Keyword::WITHIN).map_err(syntax)?;
    let _ = parser.parse_keyword(Keyword::INTERVAL);
    let window_text = parser.parse_literal_string().map_err(syntax)?;
    let window_micros = crate::ddl::parse_period(&window_text)
        .filter(|s| *s > 0)
        .and_then(|s| i64::try_from(s).ok()?.checked_mul(1_000_000))
        .ok_or_else(|| {
            PgError::new(
                code::INVALID_PARAMETER_VALUE,
                format!(
                    "invalid window \"{window_text}\": give a positive duration such as '1 hour'"
                ),
            )
        })?;
    parser.expect_keyword(Keyword::WHEN).map_err(syntax)?;
    let condition = parser.parse_expr().map_err(syntax)?;
    let (mut channel, mut into) = (None, None);
    loop {
        if channel.is_none() && parser.parse_keyword(Keyword::NOTIFY) {
            let ident = parser.parse_identifier().map_err(syntax)?;
            channel = Some(crate::notify::channel_name(&ident)?);
        } else if into.is_none() && parser.parse_keyword(Keyword::INTO) {
            into = Some(table_of(&parser.parse_object_name(false).map_err(syntax)?)?);
        } else {
            break;
        }
    }
    Ok(CreateAlert {
        name,
        table,
        filter,
        keys,
        window_micros,
        window_text,
        condition,
        channel,
        into,
    })
}

/// Runs one of the statements.
pub async fn execute(session: &Session, command: &AlertCommand) -> Result<Response, PgError> {
    crate::privileges::check_superuser(session, "managing alerts")?;
    let shared = &session.shared;
    let engine = &shared.engine;
    match command {
        AlertCommand::Create(create) => {
            if engine.alert(&create.name).is_some() {
                return Err(henge_storage::Error::AlertExists(create.name.clone()).into());
            }
            let table = engine
                .table(&create.table)
                .ok_or_else(|| henge_storage::Error::TableNotFound(create.table.clone()))?;
            let alerts_table = create
                .into
                .clone()
                .unwrap_or_else(|| DEFAULT_ALERTS_TABLE.to_owned());
            if alerts_table == table.def.name {
                return Err(PgError::new(
                    code::INVALID_PARAMETER_VALUE,
                    "an alert cannot write its matches into the table it watches",
                ));
            }
            let mut def = AlertDef {
                id: 0,
                name: create.name.clone(),
                table_id: table.def.id,
                filter: create.filter.as_ref().map(ToString::to_string),
                keys: create.keys.iter().map(ToString::to_string).collect(),
                window_micros: create.window_micros,
                window_text: create.window_text.clone(),
                condition: create.condition.to_string(),
                channel: create.channel.clone(),
                alerts_table,
                enabled: true,
                after: None,
                reported_from: None,
            };
            // Compiled (checked) before anything is recorded.
            let rule = Rule::compile(&session.ctx, def.clone(), &table.def)?;
            ensure_alerts_table(session, &def, &table.def).await?;
            // No commit to the table between reading its newest time and the rule's start.
            let _quiet = engine.hold_writes(&table).await;
            def.after = newest_time(&session.ctx, &table.def).await?;
            let def = engine.put_alert(def, true)?;
            running(session)?.install(Rule { def, ..rule });
            Ok(Response::Execution(Tag::new("CREATE ALERT")))
        }
        AlertCommand::Alter { name, enable } => {
            let mut def = engine
                .alert(name)
                .ok_or_else(|| henge_storage::Error::AlertNotFound(name.clone()))?;
            if def.enabled != *enable {
                match *enable {
                    true => {
                        let table = engine
                            .tables()
                            .into_iter()
                            .find(|t| t.def.id == def.table_id)
                            .ok_or_else(|| {
                                PgError::new(
                                    code::UNDEFINED_TABLE,
                                    format!("the table alert \"{name}\" watches was dropped"),
                                )
                            })?;
                        let rule = Rule::compile(&session.ctx, def.clone(), &table.def)?;
                        let _quiet = engine.hold_writes(&table).await;
                        def.after = newest_time(&session.ctx, &table.def).await?;
                        def.reported_from = None;
                        def.enabled = true;
                        let def = engine.put_alert(def, false)?;
                        running(session)?.install(Rule { def, ..rule });
                    }
                    false => {
                        def.enabled = false;
                        engine.put_alert(def, false)?;
                        running(session)?.remove(name);
                    }
                }
            }
            Ok(Response::Execution(Tag::new("ALTER ALERT")))
        }
        AlertCommand::Drop { name, if_exists } => {
            if engine.alert(name).is_none() {
                if *if_exists {
                    session.notice(format!("alert \"{name}\" does not exist, skipping"));
                    return Ok(Response::Execution(Tag::new("DROP ALERT")));
                }
                return Err(henge_storage::Error::AlertNotFound(name.clone()).into());
            }
            drop_rule(session, name)?;
            Ok(Response::Execution(Tag::new("DROP ALERT")))
        }
    }
}

/// The rules that watch `table`, and (with `as_target`) those that write into it.
pub fn depending_on(session: &Session, table: &TableDef, as_target: bool) -> Vec<String> {
    session
        .shared
        .engine
        .alerts()
        .into_iter()
        .filter(|a| a.table_id == table.id || (as_target && a.alerts_table == table.name))
        .map(|a| a.name)
        .collect()
}

/// Drops rule `name` (DROP ALERT, or a DROP TABLE … CASCADE).
pub fn drop_rule(session: &Session, name: &str) -> Result<(), PgError> {
    running(session)?.remove(name);
    session.shared.engine.drop_alert(name)?;
    Ok(())
}

fn running(session: &Session) -> Result<&Arc<Alerts>, PgError> {
    session
        .shared
        .alerts
        .get()
        .ok_or_else(|| internal("alert rules have not started"))
}

/// The alerts table's columns: the window's end is its time column.
const ALERT_COLUMNS: [&str; 6] = [
    "window_end",
    "rule",
    "key",
    "window_start",
    "fired_at",
    "payload",
];

/// Creates the rule's alerts table if it does not exist, or checks that it has the
/// alert columns.
async fn ensure_alerts_table(
    session: &Session,
    def: &AlertDef,
    watched: &TableDef,
) -> Result<(), PgError> {
    let engine = &session.shared.engine;
    let time_type = match watched.time_column_index().map(|i| watched.columns[i].ty) {
        Some(henge_storage::schema::ColumnType::TimestampTz) => "TIMESTAMPTZ",
        _ => "TIMESTAMP",
    };
    match engine.table(&def.alerts_table) {
        Some(table) => {
            let names: Vec<&str> = table.def.columns.iter().map(|c| c.name.as_str()).collect();
            if names != ALERT_COLUMNS || table.def.time_column.as_deref() != Some("window_end") {
                return Err(PgError::new(
                    code::WRONG_OBJECT_TYPE,
                    format!(
                        "table \"{}\" is not an alerts table: it needs the columns {} with window_end as its time column",
                        def.alerts_table,
                        ALERT_COLUMNS.join(", ")
                    ),
                ));
            }
            Ok(())
        }
        None => {
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {} (window_end {time_type} NOT NULL, rule TEXT NOT NULL, \
                 key TEXT NOT NULL, window_start {time_type} NOT NULL, fired_at TIMESTAMPTZ NOT NULL, \
                 payload JSON NOT NULL) WITH (time_column = 'window_end')",
                quote_ident(&def.alerts_table)
            );
            for command in crate::session::parse(&sql)? {
                let prepared = Box::pin(session.prepare(command)).await?;
                Box::pin(session.execute(&prepared, Vec::new(), None)).await?;
            }
            Ok(())
        }
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The newest time of the table's rows, if it has any.
async fn newest_time(ctx: &SessionContext, table: &TableDef) -> Result<Option<i64>, PgError> {
    let time = table.time_column.as_deref().unwrap_or_default();
    let sql = format!(
        "SELECT max({}) FROM {}",
        quote_ident(time),
        quote_ident(&table.name)
    );
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(internal)?
        .collect()
        .await
        .map_err(internal)?;
    let Some(batch) = batches.first().filter(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    let micros = micros_of(batch.column(0))?;
    Ok(micros.is_valid(0).then(|| micros.value(0)))
}

fn internal(e: impl std::fmt::Display) -> PgError {
    PgError::new(code::INTERNAL_ERROR, e.to_string())
}

/// A time column's values as microseconds since the epoch.
fn micros_of(array: &ArrayRef) -> Result<TimestampMicrosecondArray, PgError> {
    cast_as(array, &DataType::Timestamp(TimeUnit::Microsecond, None))
}

/// `array` cast to `to`, as the Arrow array type of `to`.
fn cast_as<A: Array + Clone + 'static>(array: &ArrayRef, to: &DataType) -> Result<A, PgError> {
    let cast = cast(array, to).map_err(internal)?;
    Ok(cast
        .as_any()
        .downcast_ref::<A>()
        .expect("a cast gives its type's array")
        .clone())
}

/// `expr` evaluated over `batch`, cast to `to`.
fn evaluate_as<A: Array + Clone + 'static>(
    expr: &Arc<dyn PhysicalExpr>,
    batch: &RecordBatch,
    to: &DataType,
) -> Result<A, PgError> {
    let array = expr
        .evaluate(batch)
        .and_then(|v| v.into_array(batch.num_rows()))
        .map_err(internal)?;
    cast_as(&array, to)
}

/// An aggregate of a rule's condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    CountStar,
    Count,
    CountDistinct,
    Sum,
    Min,
    Max,
    /// `sequence(a, b, …)`: 1 when the window holds a row where `a` holds, then one at a
    /// later time where `b` holds, and so on; else 0.
    Sequence,
}

struct Aggregate {
    kind: Kind,
    arg: Option<Arc<dyn PhysicalExpr>>,
    filter: Option<Arc<dyn PhysicalExpr>>,
    /// The steps of a sequence.
    steps: Vec<Arc<dyn PhysicalExpr>>,
    /// As written: the name of its value in reports.
    label: String,
}

/// The condition: comparisons of aggregates with numbers, under AND and OR.
#[derive(Debug, Clone)]
enum Condition {
    All(Box<Condition>, Box<Condition>),
    Any(Box<Condition>, Box<Condition>),
    Compare {
        aggregate: usize,
        op: BinaryOperator,
        value: f64,
    },
}

impl Condition {
    fn holds(&self, values: &[Option<f64>]) -> bool {
        match self {
            Condition::All(a, b) => a.holds(values) && b.holds(values),
            Condition::Any(a, b) => a.holds(values) || b.holds(values),
            Condition::Compare {
                aggregate,
                op,
                value,
            } => match values[*aggregate] {
                None => false,
                Some(v) => match op {
                    BinaryOperator::Gt => v > *value,
                    BinaryOperator::GtEq => v >= *value,
                    BinaryOperator::Lt => v < *value,
                    BinaryOperator::LtEq => v <= *value,
                    _ => v == *value,
                },
            },
        }
    }
}

/// A match to report.
struct Match {
    rule: String,
    channel: Option<String>,
    alerts_table: String,
    key: String,
    start: i64,
    end: i64,
    payload: String,
}

/// A watched table's id and a rule's key expressions.
type Partitioning = (u64, Vec<String>);

/// A compiled rule and its windows.
pub struct Rule {
    def: AlertDef,
    time_index: usize,
    time_zone: Option<Arc<str>>,
    /// How late rows may come: the table's window_period.
    lateness: i64,
    filter: Option<Arc<dyn PhysicalExpr>>,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    aggregates: Vec<Aggregate>,
    condition: Condition,
    watermark: Option<i64>,
    /// The newest time seen before the commit being evaluated.
    commit_watermark: Option<i64>,
    windows: Windows,
    /// Reports the alerts table held at a restart, as (key, window end), while the rule
    /// is rebuilt (the rebuilt rows then carry them).
    reported: HashSet<(Box<str>, i64)>,
    /// The table and key expressions (see [`Rule::partitioning`]).
    partitioning: Partitioning,
    /// Whether the keys and the aggregates' arguments, FILTERs and steps are all columns
    /// (or none): then a batch's counted rows are read where they are, not copied.
    reads_columns_only: bool,
}

impl Rule {
    /// Compiles a rule against its table (as it is now).
    fn compile(ctx: &SessionContext, def: AlertDef, table: &TableDef) -> Result<Rule, PgError> {
        let refuse = |message: String| PgError::new(code::FEATURE_NOT_SUPPORTED, message);
        let time_index = table.time_column_index().ok_or_else(|| {
            refuse(format!(
                "alerts watch a table with a time column; \"{}\" has none",
                table.name
            ))
        })?;
        if table.rollup {
            return Err(refuse(format!(
                "alerts cannot watch the rolled-up table \"{}\": its stored rows are not the rows ingested",
                table.name
            )));
        }
        let schema = table.stored_schema();
        let time_zone = match schema.field(time_index).data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            other => {
                return Err(refuse(format!(
                    "alerts need a timestamp time column; \"{}\" is {other}",
                    table.name
                )))
            }
        };
        let df_schema = DFSchema::try_from(schema.as_ref().clone()).map_err(internal)?;
        let compile = |sql: &str| -> Result<Arc<dyn PhysicalExpr>, PgError> {
            let expr = ctx
                .parse_sql_expr(sql, &df_schema)
                .map_err(|e| rule_error(sql, e))?;
            ctx.create_physical_expr(expr, &df_schema)
                .map_err(|e| rule_error(sql, e))
        };
        let filter = def.filter.as_deref().map(compile).transpose()?;
        let keys = def
            .keys
            .iter()
            .map(|k| compile(k))
            .collect::<Result<Vec<_>, _>>()?;
        let condition_ast = Parser::new(&crate::dialect::HengeDialect)
            .try_with_sql(&def.condition)
            .and_then(|mut p| p.parse_expr())
            .map_err(syntax)?;
        let mut aggregates = Vec::new();
        let condition = condition_of(&condition_ast, &mut aggregates, &compile)?;
        let reads_columns_only = keys.iter().all(is_column)
            && aggregates
                .iter()
                .all(|a: &Aggregate| a.arg.iter().chain(&a.filter).chain(&a.steps).all(is_column));
        Ok(Rule {
            partitioning: (def.table_id, def.keys.clone()),
            reads_columns_only,
            lateness: (table.window_period_secs as i64).saturating_mul(1_000_000),
            def,
            time_index,
            time_zone,
            filter,
            keys,
            condition,
            watermark: None,
            commit_watermark: None,
            windows: Windows::new(aggregates.len()),
            aggregates,
            reported: HashSet::new(),
        })
    }

    /// Feeds rows of the watched table; returns the matches they complete. `keys` are the
    /// key ids of the rules that partition as this one does, started on this batch.
    fn observe(
        &mut self,
        batch: &RecordBatch,
        keys: &mut Keys,
        engine: &Engine,
    ) -> Result<Vec<Match>, PgError> {
        // Only the counted rows go on (a rule's filter often keeps few), with their places
        // in the batch (which its key ids are cached by). Keys and inputs that are columns
        // are read in place; any other expression sees only the counted rows (it could
        // fail on the others: `sum(1 / x)` over `WHERE x <> 0`).
        let filtered;
        let (batch, places) = match &self.filter {
            Some(filter) => {
                let counted: BooleanArray = evaluate_as(filter, batch, &DataType::Boolean)?;
                let counted = match counted.null_count() {
                    0 => counted,
                    _ => datafusion::arrow::compute::prep_null_mask_filter(&counted),
                };
                if counted.true_count() == 0 {
                    return Ok(Vec::new());
                }
                let places: Vec<usize> = counted.values().set_indices().collect();
                match self.reads_columns_only {
                    true => (batch, Some((places, true))),
                    false => {
                        filtered = filter_record_batch(batch, &counted).map_err(internal)?;
                        (&filtered, Some((places, false)))
                    }
                }
            }
            None => (batch, None),
        };
        // The rows to count: (row of `batch`, place in the batch given).
        let rows: Box<dyn Iterator<Item = (usize, usize)> + '_> = match &places {
            None => Box::new((0..batch.num_rows()).map(|r| (r, r))),
            Some((places, true)) => Box::new(places.iter().map(|&p| (p, p))),
            Some((places, false)) => Box::new(places.iter().copied().enumerate()),
        };
        let times = micros_of(batch.column(self.time_index))?;
        let key_values = self
            .keys
            .iter()
            .map(|k| evaluate_as::<StringArray>(k, batch, &DataType::Utf8))
            .collect::<Result<Vec<_>, _>>()?;
        let inputs = self
            .aggregates
            .iter()
            .map(|a| Inputs::of(a, batch))
            .collect::<Result<Vec<_>, _>>()?;
        let (mut seen, mut late) = (0u64, 0u64);
        let mut matches = Vec::new();
        let window = self.def.window_micros;
        // The key's rows the windows of a row may hold, and the ends of those windows
        // (buffers for the batch).
        let (mut near, mut ends, mut values) = (Vec::new(), Vec::new(), Vec::new());
        for (row, place) in rows {
            if times.is_null(row) {
                continue;
            }
            let time = times.value(row);
            if self.def.after.is_some_and(|after| time <= after) {
                continue;
            }
            seen += 1;
            // Late against the newest time before this commit: a commit's rows arrive
            // together, in whatever order it holds them (a spilled one comes back by chunk).
            if let Some(w) = self.commit_watermark {
                if time < w.saturating_sub(self.lateness).saturating_sub(window) {
                    late += 1;
                    continue;
                }
            }
            let key = keys.of_row(place, || key_text(&key_values, row));
            self.windows
                .push(keys, key, time, |i, texts| inputs[i].at(row, texts));
            self.watermark = Some(self.watermark.map_or(time, |w| w.max(time)));
            // The windows this row is in, of those still open: ending at its own time or a
            // later one of the key's, within one window length.
            let open_from = match self.commit_watermark {
                Some(w) => time.max(w.saturating_sub(self.lateness)),
                None => time,
            };
            let last_end = time.saturating_add(window);
            self.windows
                .rows_of(key, open_from.saturating_sub(window), last_end, &mut near);
            ends.clear();
            ends.extend(
                near.iter()
                    .filter(|(t, _)| (open_from..=last_end).contains(t))
                    .map(|(t, _)| *t),
            );
            ends.dedup();
            for &end in &ends {
                // The window's rows, and those of them at its end.
                let from = near.partition_point(|(t, _)| *t < end.saturating_sub(window));
                let to = near.partition_point(|(t, _)| *t <= end);
                let at_end = near.partition_point(|(t, _)| *t < end);
                let last = &near[at_end..to];
                if last.iter().any(|(_, a)| self.windows.fired(*a)) {
                    continue;
                }
                let before_restart = !self.reported.is_empty()
                    && self
                        .reported
                        .contains(&(Box::<str>::from(keys.text(key)), end));
                if !before_restart {
                    window_values(
                        &self.aggregates,
                        &self.windows,
                        &near[from..to],
                        &mut values,
                    );
                    if !self.condition.holds(&values) {
                        continue;
                    }
                }
                self.windows.fire(last[0].1);
                if !before_restart {
                    matches.push(self.report(keys.text(key), end, &values));
                }
            }
        }
        let (keys_held, rows_held) = (self.windows.keys() as u64, self.windows.rows() as u64);
        engine.report_alert(&self.def.name, |s| {
            s.rows_seen += seen;
            s.late_rows += late;
            s.keys = keys_held;
            s.rows = rows_held;
        });
        Ok(matches)
    }

    /// Before a commit's rows: the durable progress (`reported_from`) to record, the
    /// rule's newest time so far, if that is more than an hour (or a window) past the one
    /// recorded, so that a restart rebuilds little; the first commit records where it
    /// starts.
    /// The table and key expressions, which rules partitioning alike share key ids by.
    fn partitioning(&self) -> &Partitioning {
        &self.partitioning
    }

    fn progress(&self, batch: &RecordBatch) -> Option<i64> {
        let start = match self.watermark {
            Some(w) => w,
            None => {
                datafusion::arrow::compute::min(&micros_of(batch.column(self.time_index)).ok()?)?
            }
        };
        let step = self.def.window_micros.max(3_600_000_000);
        match self.def.reported_from {
            Some(p) if start.saturating_sub(p) <= step => None,
            _ => Some(start),
        }
    }

    /// Before a commit's rows: the newest time so far becomes the one its rows are judged
    /// late against, and rows and reports no open window can need any more are forgotten:
    /// those of the keys whose rows, in arrival order, are older than any open window
    /// (rows arrive mostly in time order; one that came before newer ones waits for them).
    /// Within one commit nothing is forgotten: its rows may come in any order (a statement
    /// spanning a long time holds its counted rows' inputs until it is evaluated).
    fn begin_commit(&mut self, keys: &mut Keys) {
        self.commit_watermark = self.watermark;
        let Some(w) = self.watermark else { return };
        let keep_from = w
            .saturating_sub(self.lateness)
            .saturating_sub(self.def.window_micros);
        self.windows.forget_before(keep_from, keys);
    }

    /// The match of the window of `key` ending at `end`; `key` as [`key_text`] made it.
    fn report(&self, key: &str, end: i64, values: &[Option<f64>]) -> Match {
        let start = end - self.def.window_micros;
        // Several keys' text is a JSON array already.
        let key_json = match self.keys.len() {
            1 => json_text(key),
            _ => key.to_owned(),
        };
        let values_json = self
            .aggregates
            .iter()
            .zip(values)
            .map(|(a, v)| format!("{}:{}", json_text(&a.label), json_number(*v)))
            .collect::<Vec<_>>()
            .join(",");
        let payload = format!(
            "{{\"rule\":{},\"key\":{key_json},\"window_start\":{},\"window_end\":{},\"values\":{{{values_json}}}}}",
            json_text(&self.def.name),
            json_text(&self.time_text(start)),
            json_text(&self.time_text(end)),
        );
        Match {
            rule: self.def.name.clone(),
            channel: self.def.channel.clone(),
            alerts_table: self.def.alerts_table.clone(),
            key: key.to_owned(),
            start,
            end,
            payload,
        }
    }

    /// A time as PostgreSQL prints the time column's type.
    fn time_text(&self, micros: i64) -> String {
        let Some(t) = chrono::DateTime::from_timestamp_micros(micros) else {
            return micros.to_string();
        };
        let mut text = t.format("%Y-%m-%d %H:%M:%S").to_string();
        let fraction = micros.rem_euclid(1_000_000);
        if fraction != 0 {
            let digits = format!("{fraction:06}");
            text.push('.');
            text.push_str(digits.trim_end_matches('0'));
        }
        if self.time_zone.is_some() {
            text.push_str("+00");
        }
        text
    }
}

fn is_column(expr: &Arc<dyn PhysicalExpr>) -> bool {
    expr.downcast_ref::<datafusion::physical_expr::expressions::Column>()
        .is_some()
}

fn rule_error(sql: &str, e: impl std::fmt::Display) -> PgError {
    PgError::new(
        code::SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION,
        format!("cannot evaluate \"{sql}\" in an alert: {e}"),
    )
}

/// The aggregates' values over a window's rows (as [`Windows::rows_of`] lists them, in
/// time order), into `values`.
fn window_values(
    aggregates: &[Aggregate],
    windows: &Windows,
    rows: &[(i64, u64)],
    values: &mut Vec<Option<f64>>,
) {
    values.clear();
    values.extend(aggregates.iter().enumerate().map(|(i, a)| {
        let inputs = rows
            .iter()
            .filter_map(|&(_, arrival)| windows.input(arrival, i));
        match a.kind {
            Kind::Sequence => Some(sequence_met(windows, rows, i, a.steps.len()) as u8 as f64),
            Kind::CountStar | Kind::Count => Some(inputs.count() as f64),
            Kind::CountDistinct => {
                let mut texts: Vec<u32> = inputs
                    .filter_map(|v| match v {
                        Input::Text(id) => Some(id),
                        _ => None,
                    })
                    .collect();
                texts.sort_unstable();
                texts.dedup();
                Some(texts.len() as f64)
            }
            Kind::Sum | Kind::Min | Kind::Max => {
                let numbers = inputs.filter_map(|v| match v {
                    Input::Number(n) => Some(n),
                    _ => None,
                });
                match a.kind {
                    Kind::Sum => numbers.reduce(|x, y| x + y),
                    Kind::Min => numbers.reduce(f64::min),
                    _ => numbers.reduce(f64::max),
                }
            }
        }
    }));
}

/// Whether the rows (in time order) hold the `steps` steps of the sequence whose inputs
/// are the `i`-th, each at a later time than the one before: the earliest row meeting each
/// step is taken, which finds the sequence whenever it is there (whatever the order of
/// rows of equal time).
fn sequence_met(windows: &Windows, rows: &[(i64, u64)], i: usize, steps: usize) -> bool {
    let mut step = 0;
    let mut after = i64::MIN;
    for &(time, arrival) in rows {
        if step == steps {
            break;
        }
        if let Some(Input::Steps(mask)) = windows.input(arrival, i) {
            if mask & (1 << step) != 0 && (step == 0 || time > after) {
                step += 1;
                after = time;
            }
        }
    }
    step == steps
}

/// One aggregate's inputs for a batch.
enum Inputs {
    /// `count(*)` without FILTER: every row counts.
    Always,
    /// The FILTER's truth (if any) and the argument's values.
    Rows(Option<BooleanArray>, Argument),
    /// A sequence: whether each step holds.
    Steps(Vec<BooleanArray>),
}

/// An aggregate's argument over a batch, as what it computes reads it.
enum Argument {
    None,
    /// Only whether it is NULL (`count(x)`).
    Present(ArrayRef),
    Text(StringArray),
    Number(Float64Array),
}

impl Inputs {
    fn of(aggregate: &Aggregate, batch: &RecordBatch) -> Result<Inputs, PgError> {
        let truths = |e| evaluate_as::<BooleanArray>(e, batch, &DataType::Boolean);
        if aggregate.kind == Kind::Sequence {
            let steps = aggregate
                .steps
                .iter()
                .map(truths)
                .collect::<Result<_, _>>()?;
            return Ok(Inputs::Steps(steps));
        }
        let filter = aggregate.filter.as_ref().map(truths).transpose()?;
        let argument = match (&aggregate.arg, aggregate.kind) {
            (None, _) if filter.is_none() => return Ok(Inputs::Always),
            (None, _) => Argument::None,
            (Some(arg), Kind::Count) => Argument::Present(
                arg.evaluate(batch)
                    .and_then(|v| v.into_array(batch.num_rows()))
                    .map_err(internal)?,
            ),
            (Some(arg), Kind::CountDistinct) => {
                Argument::Text(evaluate_as(arg, batch, &DataType::Utf8)?)
            }
            (Some(arg), _) => Argument::Number(evaluate_as(arg, batch, &DataType::Float64)?),
        };
        Ok(Inputs::Rows(filter, argument))
    }

    /// Row `row`'s input; a text it counts is held in `texts`.
    fn at(&self, row: usize, texts: &mut windows::Interner) -> Option<Input> {
        let (filter, argument) = match self {
            Inputs::Always => return Some(Input::Counted),
            Inputs::Steps(steps) => {
                let mask = steps
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.is_valid(row) && s.value(row))
                    .fold(0u64, |m, (i, _)| m | (1 << i));
                return (mask != 0).then_some(Input::Steps(mask));
            }
            Inputs::Rows(filter, argument) => (filter, argument),
        };
        if filter
            .as_ref()
            .is_some_and(|f| !f.is_valid(row) || !f.value(row))
        {
            return None;
        }
        match argument {
            Argument::None => Some(Input::Counted),
            Argument::Present(a) => a.is_valid(row).then_some(Input::Counted),
            Argument::Text(a) => a
                .is_valid(row)
                .then(|| Input::Text(texts.hold_text(a.value(row)))),
            Argument::Number(a) => a.is_valid(row).then(|| Input::Number(a.value(row))),
        }
    }
}

/// A row's key as text: its one value, or a JSON array of several.
fn key_text(keys: &[StringArray], row: usize) -> std::borrow::Cow<'_, str> {
    match keys {
        [one] if one.is_null(row) => "".into(),
        [one] => one.value(row).into(),
        many => format!(
            "[{}]",
            many.iter()
                .map(|k| match k.is_null(row) {
                    true => "null".to_owned(),
                    false => json_text(k.value(row)),
                })
                .collect::<Vec<_>>()
                .join(",")
        )
        .into(),
    }
}

fn json_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_number(v: Option<f64>) -> String {
    match v {
        None => "null".to_owned(),
        Some(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 => format!("{}", v as i64),
        Some(v) if v.is_finite() => format!("{v}"),
        Some(_) => "null".to_owned(),
    }
}

/// Compiles one SQL expression of a rule against its table.
type Compile<'a> = &'a dyn Fn(&str) -> Result<Arc<dyn PhysicalExpr>, PgError>;

/// The condition of a rule, collecting its aggregates.
fn condition_of(
    expr: &Expr,
    aggregates: &mut Vec<Aggregate>,
    compile: Compile<'_>,
) -> Result<Condition, PgError> {
    let refuse = |what: String| {
        PgError::new(
            code::FEATURE_NOT_SUPPORTED,
            format!(
                "an alert's WHEN compares count(*), count(x), count(DISTINCT x), sum(x), min(x) or max(x) \
                 with numbers, or holds sequence(a, b, …), under AND and OR; not {what}"
            ),
        )
    };
    if let Some(sequence) = sequence_of(expr, aggregates, compile) {
        return sequence;
    }
    match expr {
        Expr::Nested(inner) => condition_of(inner, aggregates, compile),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And => Ok(Condition::All(
                Box::new(condition_of(left, aggregates, compile)?),
                Box::new(condition_of(right, aggregates, compile)?),
            )),
            BinaryOperator::Or => Ok(Condition::Any(
                Box::new(condition_of(left, aggregates, compile)?),
                Box::new(condition_of(right, aggregates, compile)?),
            )),
            BinaryOperator::Gt
            | BinaryOperator::GtEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Eq => {
                let (aggregate, number, op) = match (number_of(left), number_of(right)) {
                    (None, Some(n)) => (left, n, op.clone()),
                    (Some(n), None) => (right, n, flipped(op)),
                    _ => return Err(refuse(format!("\"{expr}\""))),
                };
                let index = aggregate_of(aggregate, aggregates, compile)
                    .ok_or_else(|| refuse(format!("\"{aggregate}\"")))??;
                Ok(Condition::Compare {
                    aggregate: index,
                    op,
                    value: number,
                })
            }
            _ => Err(refuse(format!("the operator {op}"))),
        },
        other => Err(refuse(format!("\"{other}\""))),
    }
}

fn flipped(op: &BinaryOperator) -> BinaryOperator {
    match op {
        BinaryOperator::Gt => BinaryOperator::Lt,
        BinaryOperator::GtEq => BinaryOperator::LtEq,
        BinaryOperator::Lt => BinaryOperator::Gt,
        BinaryOperator::LtEq => BinaryOperator::GtEq,
        other => other.clone(),
    }
}

fn number_of(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => number_of(expr).map(|n| -n),
        Expr::Nested(inner) => number_of(inner),
        _ => None,
    }
}

/// The aggregate `expr` calls (added to `aggregates` unless there already), or `None` if
/// it is not one.
fn aggregate_of(
    expr: &Expr,
    aggregates: &mut Vec<Aggregate>,
    compile: Compile<'_>,
) -> Option<Result<usize, PgError>> {
    let Expr::Function(f) = expr else {
        return None;
    };
    let label = expr.to_string();
    if let Some(i) = aggregates.iter().position(|a| a.label == label) {
        return Some(Ok(i));
    }
    let name = f.name.to_string().to_lowercase();
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
    let arg = match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] => None,
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => Some(e),
        _ => return None,
    };
    let kind = match (name.as_str(), arg, distinct) {
        ("count", None, false) => Kind::CountStar,
        ("count", Some(_), false) => Kind::Count,
        ("count", Some(_), true) => Kind::CountDistinct,
        ("sum", Some(_), false) => Kind::Sum,
        ("min", Some(_), false) => Kind::Min,
        ("max", Some(_), false) => Kind::Max,
        _ => return None,
    };
    if f.over.is_some() || !f.within_group.is_empty() {
        return None;
    }
    let arg = match arg.map(|e| compile(&e.to_string())).transpose() {
        Ok(arg) => arg,
        Err(e) => return Some(Err(e)),
    };
    let filter = match f
        .filter
        .as_ref()
        .map(|e| compile(&e.to_string()))
        .transpose()
    {
        Ok(filter) => filter,
        Err(e) => return Some(Err(e)),
    };
    aggregates.push(Aggregate {
        kind,
        arg,
        filter,
        steps: Vec::new(),
        label,
    });
    Some(Ok(aggregates.len() - 1))
}

/// The most steps a sequence may have.
const MAX_STEPS: usize = 64;

/// `sequence(a, b, …)` as a condition (true once met), or `None` if `expr` is not one.
fn sequence_of(
    expr: &Expr,
    aggregates: &mut Vec<Aggregate>,
    compile: Compile<'_>,
) -> Option<Result<Condition, PgError>> {
    let Expr::Function(f) = expr else {
        return None;
    };
    if !f.name.to_string().eq_ignore_ascii_case("sequence") {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    let steps: Option<Vec<&Expr>> = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect();
    let steps = steps.filter(|s| (2..=MAX_STEPS).contains(&s.len()) && f.filter.is_none())?;
    let label = expr.to_string();
    let index = match aggregates.iter().position(|a| a.label == label) {
        Some(i) => i,
        None => {
            let steps = match steps.iter().map(|s| compile(&s.to_string())).collect() {
                Ok(steps) => steps,
                Err(e) => return Some(Err(e)),
            };
            aggregates.push(Aggregate {
                kind: Kind::Sequence,
                arg: None,
                filter: None,
                steps,
                label,
            });
            aggregates.len() - 1
        }
    };
    Some(Ok(Condition::Compare {
        aggregate: index,
        op: BinaryOperator::GtEq,
        value: 1.0,
    }))
}

/// What the rules' thread is asked to do, in order; rows come with whom to tell once
/// they are evaluated.
enum Message {
    Rows(u64, Vec<RecordBatch>, Option<Done>),
    Pieces(
        u64,
        Vec<Arc<henge_storage::segment::SegmentReader>>,
        Option<Done>,
    ),
    Install(Box<Rule>),
    Remove(String),
}

type Done = tokio::sync::oneshot::Sender<()>;

thread_local! {
    /// Whether this is the rules' thread.
    static ON_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The running rules: the engine's commit observer, feeding the rules' thread.
pub struct Alerts {
    sender: std::sync::Mutex<mpsc::Sender<Message>>,
    /// Tables some enabled rule watches, by id, with how many rules.
    watched: RwLock<HashMap<u64, usize>>,
    /// The table each rule watches, by name.
    rules: std::sync::Mutex<HashMap<String, u64>>,
}

impl CommitObserver for Alerts {
    fn watches(&self, table_id: u64) -> bool {
        self.watched
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&table_id)
    }

    fn committed(&self, table: &TableDef, rows: Committed<'_>) -> Option<Evaluated> {
        // The rules' own writes (to alerts tables) never wait for the rules.
        let (done, evaluated) = match ON_WORKER.get() {
            true => (None, None),
            false => {
                let (done, evaluated) = tokio::sync::oneshot::channel();
                (Some(done), Some(evaluated))
            }
        };
        let message = match rows {
            Committed::Rows(batches) => Message::Rows(table.id, batches.to_vec(), done),
            Committed::Pieces(readers) => Message::Pieces(table.id, readers, done),
        };
        self.send(message);
        evaluated
    }
}

impl Alerts {
    fn send(&self, message: Message) {
        let _ = self
            .sender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(message);
    }

    fn install(&self, rule: Rule) {
        self.remove(&rule.def.name);
        self.register(&rule.def);
        self.send(Message::Install(Box::new(rule)));
    }

    /// Counts a rule the rules' thread has (or is sent) among the running ones.
    fn register(&self, def: &AlertDef) {
        let (name, table) = (def.name.clone(), def.table_id);
        *self
            .watched
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(table)
            .or_default() += 1;
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, table);
    }

    fn remove(&self, name: &str) {
        let Some(table) = self
            .rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
        else {
            return;
        };
        let mut watched = self.watched.write().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = watched.get_mut(&table) {
            *n -= 1;
            if *n == 0 {
                watched.remove(&table);
            }
        }
        drop(watched);
        self.send(Message::Remove(name.to_owned()));
    }
}

/// Starts the rules: rebuilds each enabled one from the stored rows (reporting what a
/// crash kept it from reporting), then watches every commit. Call it before the server
/// takes connections or runs pipelines.
pub async fn start(
    session: &Session,
    runtime: tokio::runtime::Handle,
) -> Result<Arc<Alerts>, PgError> {
    let shared = &session.shared;
    let engine = shared.engine.clone();
    let hub = shared.notifications.clone();
    let (sender, receiver) = mpsc::channel();
    let alerts = Arc::new(Alerts {
        sender: std::sync::Mutex::new(sender),
        watched: RwLock::default(),
        rules: std::sync::Mutex::default(),
    });
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_GROUPS));
    let mut groups: Vec<Group> = (0..threads).map(|_| Group::default()).collect();
    let mut installed = 0;
    for def in engine.alerts().into_iter().filter(|a| a.enabled) {
        let name = def.name.clone();
        let Some(table) = engine
            .tables()
            .into_iter()
            .find(|t| t.def.id == def.table_id)
        else {
            engine.report_alert(&name, |s| {
                s.error = Some("the table it watches was dropped".into())
            });
            continue;
        };
        let group = &mut groups[installed % threads];
        let rebuilt = async {
            let mut rule = Rule::compile(&session.ctx, def, &table.def)?;
            let keys = group.keys.entry(rule.partitioning().clone()).or_default();
            if let Err(e) = rebuild(&mut rule, keys, &session.ctx, &table.def, &engine, &hub).await
            {
                rule.windows.clear(keys);
                return Err(e);
            }
            Ok::<Rule, PgError>(rule)
        };
        match rebuilt.await {
            Ok(rule) => {
                alerts.register(&rule.def);
                group.rules.insert(name, rule);
                installed += 1;
            }
            Err(e) => {
                tracing::error!(alert = %name, error = %e.message, "alert rule cannot start");
                engine.report_alert(&name, |s| s.error = Some(e.message.clone()));
            }
        }
    }
    engine.set_observer(alerts.clone());
    let worker = Worker::new(engine, hub, runtime, groups)?;
    std::thread::Builder::new()
        .name("henge-alerts".into())
        .spawn(move || worker.run(receiver))
        .map_err(internal)?;
    Ok(alerts)
}

/// Rebuilds a rule's windows after a start: the stored rows of the windows that may still
/// be open, and the matches the alerts table holds; matches missing from it are reported.
async fn rebuild(
    rule: &mut Rule,
    keys: &mut Keys,
    ctx: &SessionContext,
    table: &TableDef,
    engine: &Arc<Engine>,
    hub: &Hub,
) -> Result<(), PgError> {
    let Some(newest) = newest_time(ctx, table).await? else {
        return Ok(());
    };
    let window = rule.def.window_micros;
    // The newest time the rule had seen before the first commit it may not have reported
    // (every row after `after`, if it recorded none: it never started on a commit).
    let from = match rule.def.reported_from {
        Some(from) => from.min(newest),
        None => rule.def.after.unwrap_or(i64::MIN / 4),
    };
    // The windows live evaluation still had open then, and the rows they hold.
    let open_from = from.saturating_sub(rule.lateness).saturating_sub(window);
    let rows_from = open_from.saturating_sub(window);
    let tz = rule.time_zone.clone();
    let at = |micros: i64| lit(ScalarValue::TimestampMicrosecond(Some(micros), tz.clone()));
    let time = table.time_column.clone().unwrap_or_default();
    // The reports already made.
    if let Some(alerts_table) = engine.table(&rule.def.alerts_table) {
        let tz = match alerts_table.schema.field(0).data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        };
        let since = lit(ScalarValue::TimestampMicrosecond(Some(open_from), tz));
        let mut done = ctx
            .table(quote_ident(&rule.def.alerts_table))
            .await
            .map_err(internal)?
            .filter(
                col("rule")
                    .eq(lit(rule.def.name.clone()))
                    .and(col("window_end").gt_eq(since)),
            )
            .map_err(internal)?
            .select_columns(&["key", "window_end"])
            .map_err(internal)?
            .execute_stream()
            .await
            .map_err(internal)?;
        while let Some(batch) = done.next().await {
            let batch = batch.map_err(internal)?;
            let keys: StringArray = cast_as(batch.column(0), &DataType::Utf8)?;
            let ends = micros_of(batch.column(1))?;
            for i in 0..batch.num_rows() {
                rule.reported.insert((keys.value(i).into(), ends.value(i)));
            }
        }
    }
    // The rows, oldest first, as if they arrived again; the windows evaluated are those
    // ending from `open_from` on.
    rule.watermark = Some(from.saturating_sub(window));
    rule.commit_watermark = rule.watermark;
    let mut rows = ctx
        .table(quote_ident(&table.name))
        .await
        .map_err(internal)?
        .filter(col(quote_ident(&time)).gt_eq(at(rows_from)))
        .map_err(internal)?
        .sort(vec![col(quote_ident(&time)).sort(true, true)])
        .map_err(internal)?
        .execute_stream()
        .await
        .map_err(internal)?;
    let mut matches = Vec::new();
    while let Some(batch) = rows.next().await {
        let batch = batch.map_err(internal)?;
        let batch = stored_columns(&batch, table)?;
        keys.start_batch(batch.num_rows());
        matches.extend(rule.observe(&batch, keys, engine)?);
    }
    // The rebuilt rows carry the reports made before (those of the windows still open).
    rule.reported = HashSet::new();
    rule.watermark = Some(newest);
    if !matches.is_empty() {
        tracing::info!(alert = %rule.def.name, reports = matches.len(), "reporting matches a restart had not reported");
        deliver(matches, engine, hub).await;
    }
    Ok(())
}

/// A scan's rows in the layout commits hand the rules: the table's stored columns, in
/// their order and types (a column a scan does not show, such as a hidden one, is NULL).
fn stored_columns(batch: &RecordBatch, table: &TableDef) -> Result<RecordBatch, PgError> {
    let schema = table.stored_schema();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        columns.push(match batch.column_by_name(field.name()) {
            Some(column) => cast(column, field.data_type()).map_err(internal)?,
            None => datafusion::arrow::array::new_null_array(field.data_type(), batch.num_rows()),
        });
    }
    RecordBatch::try_new_with_options(
        schema,
        columns,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
    .map_err(internal)
}

/// Writes matches to the rule's alerts table (durably), then sends their notifications.
async fn deliver(matches: Vec<Match>, engine: &Arc<Engine>, hub: &Hub) {
    if matches.is_empty() {
        return;
    }
    // A crash here: the rows are acknowledged, their matches neither written nor sent.
    henge_storage::failpoint::hit("alert.before_write");
    // One write per alerts table, whatever the number of rules.
    let mut tables: Vec<&str> = matches.iter().map(|m| m.alerts_table.as_str()).collect();
    tables.sort_unstable();
    tables.dedup();
    let mut failed: HashMap<&str, String> = HashMap::new();
    for table in tables {
        let these: Vec<&Match> = matches.iter().filter(|m| m.alerts_table == table).collect();
        if let Err(e) = write_matches(table, &these, engine).await {
            tracing::error!(alerts_table = %table, error = %e.message, "alert matches could not be written to their table");
            failed.insert(table, e.message);
        }
    }
    // A crash here: the matches are written, not sent.
    henge_storage::failpoint::hit("alert.before_notify");
    let now = chrono::Utc::now().timestamp_micros();
    let mut counts: HashMap<&str, (u64, Option<String>)> = HashMap::new();
    for m in &matches {
        let count = counts.entry(&m.rule).or_default();
        count.0 += 1;
        count.1 = failed.get(m.alerts_table.as_str()).cloned();
    }
    for (rule, (fired, error)) in counts {
        engine.report_alert(rule, |s| {
            s.fired += fired;
            s.last_fired = Some(now);
            s.error = error;
        });
    }
    for m in matches {
        if let Some(channel) = m.channel {
            hub.send(&Notification {
                channel,
                payload: m.payload,
                pid: 0,
            });
        }
    }
}

async fn write_matches(
    alerts_table: &str,
    matches: &[&Match],
    engine: &Arc<Engine>,
) -> Result<(), PgError> {
    let table = engine
        .table(alerts_table)
        .ok_or_else(|| henge_storage::Error::TableNotFound(alerts_table.to_owned()))?;
    let now = chrono::Utc::now().timestamp_micros();
    let times = |f: &dyn Fn(&Match) -> i64| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(
            matches.iter().map(|m| f(m)).collect::<Vec<_>>(),
        ))
    };
    let texts = |f: &dyn Fn(&Match) -> &str| -> ArrayRef {
        Arc::new(StringArray::from(
            matches.iter().map(|m| f(m)).collect::<Vec<_>>(),
        ))
    };
    let values: Vec<ArrayRef> = vec![
        times(&|m| m.end),
        texts(&|m| &m.rule),
        texts(&|m| &m.key),
        times(&|m| m.start),
        times(&|_| now),
        texts(&|m| &m.payload),
    ];
    let schema = table.schema.clone();
    let mut columns = Vec::with_capacity(values.len());
    for (field, value) in schema.fields().iter().zip(values) {
        columns.push(cast(&value, field.data_type()).map_err(internal)?);
    }
    let batch = RecordBatch::try_new(schema, columns).map_err(internal)?;
    engine.append(&table, vec![batch]).await?;
    Ok(())
}

/// The most threads the rules of one commit are evaluated on.
const MAX_GROUPS: usize = 8;

/// Rules evaluated together on one thread: their windows, and the key ids they share.
#[derive(Default)]
struct Group {
    rules: HashMap<String, Rule>,
    /// The key ids of the group's rules of each [`Rule::partitioning`].
    keys: HashMap<Partitioning, Keys>,
}

impl Group {
    /// Lets go of a rule that is dropped or replaced: its keys, and the key ids of its
    /// partitioning if no other rule of the group has it.
    fn forget(&mut self, name: &str) -> bool {
        let Some(mut rule) = self.rules.remove(name) else {
            return false;
        };
        let partitioning = rule.partitioning().clone();
        if let Some(keys) = self.keys.get_mut(&partitioning) {
            rule.windows.clear(keys);
        }
        if !self
            .rules
            .values()
            .any(|r| *r.partitioning() == partitioning)
        {
            self.keys.remove(&partitioning);
        }
        true
    }

    /// Evaluates one batch of a commit (`first`: its first) for the group's rules of the
    /// table; returns their matches.
    fn observe(
        &mut self,
        table: u64,
        batch: &RecordBatch,
        first: bool,
        engine: &Engine,
    ) -> Vec<Match> {
        for (partitioning, keys) in self.keys.iter_mut() {
            if partitioning.0 == table {
                keys.start_batch(batch.num_rows());
            }
        }
        let mut found = Vec::new();
        for (name, rule) in self.rules.iter_mut() {
            if rule.def.table_id != table {
                continue;
            }
            if !self.keys.contains_key(rule.partitioning()) {
                self.keys
                    .insert(rule.partitioning().clone(), Keys::default());
            }
            let keys = self.keys.get_mut(rule.partitioning()).expect("made above");
            if first {
                rule.begin_commit(keys);
            }
            // A rule that panics is reported failed; the others go on.
            let observed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                rule.observe(batch, keys, engine)
            }))
            .unwrap_or_else(|_| Err(internal("the rule's evaluation panicked")));
            match observed {
                Ok(matches) => found.extend(matches),
                Err(e) => {
                    tracing::error!(alert = %name, error = %e.message, "alert rule failed on a batch");
                    engine.report_alert(name, |s| s.error = Some(e.message.clone()));
                }
            }
        }
        found
    }
}

/// What a group's thread is asked to do, in order.
enum Job {
    /// One batch of a commit (`first`: its first).
    Observe(u64, RecordBatch, bool),
    /// The end of a commit: the matches found since the last.
    Finish(mpsc::Sender<Vec<Match>>),
    Install(Box<Rule>),
    Remove(String),
}

/// How long a rules' thread waits for more work before it hands back the memory it freed:
/// not after each commit, which would have the next commit's buffers come back from the
/// kernel zeroed (a fifth of the rules' time under a steady load).
const IDLE_AFTER: std::time::Duration = std::time::Duration::from_millis(250);

/// The next message of `receiver`, handing memory back once idle for [`IDLE_AFTER`].
fn next_of<T>(receiver: &mpsc::Receiver<T>) -> Option<T> {
    match receiver.recv_timeout(IDLE_AFTER) {
        Ok(message) => Some(message),
        Err(mpsc::RecvTimeoutError::Disconnected) => None,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            crate::release_when_idle();
            receiver.recv().ok()
        }
    }
}

impl Group {
    /// A group's thread: evaluates its rules on what the rules' thread sends.
    fn run(mut self, jobs: mpsc::Receiver<Job>, engine: Arc<Engine>) {
        ON_WORKER.set(true);
        let mut found = Vec::new();
        while let Some(job) = next_of(&jobs) {
            match job {
                Job::Observe(table, batch, first) => {
                    if first {
                        self.record_progress(table, &batch, &engine);
                    }
                    found.extend(self.observe(table, &batch, first, &engine));
                }
                Job::Finish(reply) => {
                    let _ = reply.send(std::mem::take(&mut found));
                }
                Job::Install(rule) => {
                    self.rules.insert(rule.def.name.clone(), *rule);
                }
                Job::Remove(name) => {
                    self.forget(&name);
                }
            }
        }
    }

    /// Before a commit's first rows, the progress of the group's rules of the table in one
    /// metadata change: the commit is reported only once all of its rows are evaluated.
    fn record_progress(&mut self, table: u64, batch: &RecordBatch, engine: &Engine) {
        let progress: Vec<(String, i64)> = self
            .rules
            .iter()
            .filter(|(_, r)| r.def.table_id == table)
            .filter_map(|(n, r)| Some((n.clone(), r.progress(batch)?)))
            .collect();
        if progress.is_empty() {
            return;
        }
        match engine.set_alert_progress(progress.clone()) {
            Ok(()) => {
                for (name, from) in progress {
                    if let Some(rule) = self.rules.get_mut(&name) {
                        rule.def.reported_from = Some(from);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not record the alert rules' progress"),
        }
    }
}

/// The rules' thread: hands each commit to the groups' threads, which evaluate their rules
/// side by side, and reports the matches they find.
struct Worker {
    engine: Arc<Engine>,
    hub: Arc<Hub>,
    runtime: tokio::runtime::Handle,
    /// Each group's thread, with the names of its rules.
    groups: Vec<(mpsc::SyncSender<Job>, HashSet<String>)>,
}

impl Worker {
    /// Starts a thread for each group.
    fn new(
        engine: Arc<Engine>,
        hub: Arc<Hub>,
        runtime: tokio::runtime::Handle,
        groups: Vec<Group>,
    ) -> Result<Worker, PgError> {
        let mut threads = Vec::new();
        for (i, group) in groups.into_iter().enumerate() {
            // A few batches may wait for a group: reading pieces runs ahead of evaluation
            // that far, no further.
            let (sender, jobs) = mpsc::sync_channel(4);
            let names = group.rules.keys().cloned().collect();
            let engine = engine.clone();
            std::thread::Builder::new()
                .name(format!("henge-alerts-{i}"))
                .spawn(move || group.run(jobs, engine))
                .map_err(internal)?;
            threads.push((sender, names));
        }
        Ok(Worker {
            engine,
            hub,
            runtime,
            groups: threads,
        })
    }

    fn run(mut self, receiver: mpsc::Receiver<Message>) {
        ON_WORKER.set(true);
        while let Some(message) = next_of(&receiver) {
            match message {
                Message::Install(rule) => {
                    self.remove(&rule.def.name);
                    let least = (0..self.groups.len()).min_by_key(|&g| self.groups[g].1.len());
                    if let Some(g) = least {
                        self.groups[g].1.insert(rule.def.name.clone());
                        let _ = self.groups[g].0.send(Job::Install(rule));
                    }
                }
                Message::Remove(name) => self.remove(&name),
                Message::Rows(table, batches, done) => {
                    for (i, batch) in batches.into_iter().enumerate() {
                        self.observe(table, batch, i == 0);
                    }
                    self.finish(done);
                }
                Message::Pieces(table, readers, done) => {
                    let mut first = true;
                    for reader in readers {
                        let projection: Vec<usize> = (0..reader.schema().fields().len()).collect();
                        for block in 0..reader.blocks() {
                            match reader.read_block(block, &projection) {
                                Ok(batch) => self.observe(table, batch, first),
                                Err(e) => {
                                    tracing::error!(piece = reader.name(), error = %e, "alert rules cannot read a committed piece")
                                }
                            }
                            first = false;
                        }
                    }
                    self.finish(done);
                }
            }
        }
    }

    fn remove(&mut self, name: &str) {
        for (sender, names) in &mut self.groups {
            if names.remove(name) {
                let _ = sender.send(Job::Remove(name.to_owned()));
            }
        }
    }

    /// Hands a batch of a commit to every group with rules.
    fn observe(&self, table: u64, batch: RecordBatch, first: bool) {
        for (sender, names) in &self.groups {
            if !names.is_empty() {
                let _ = sender.send(Job::Observe(table, batch.clone(), first));
            }
        }
    }

    /// Reports a commit's matches (all groups', one write per alerts table), then lets the
    /// commit's statement go on.
    fn finish(&self, done: Option<Done>) {
        let mut found = Vec::new();
        for (sender, names) in &self.groups {
            if names.is_empty() {
                continue;
            }
            let (reply, matches) = mpsc::channel();
            if sender.send(Job::Finish(reply)).is_ok() {
                found.extend(matches.recv().unwrap_or_default());
            }
        }
        self.runtime
            .block_on(deliver(found, &self.engine, &self.hub));
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}
