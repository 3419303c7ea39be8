//! A client session: its query context and the statements it runs.
//!
//! Statements are parsed with DataFusion's sqlparser in the PostgreSQL dialect (plus
//! Henge's own `CHECKPOINT`) and dispatched here: DDL, COPY and CHECKPOINT are Henge's own;
//! queries, INSERT and EXPLAIN are planned and run by DataFusion over Henge's tables.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef, UInt64Type};
use datafusion::arrow::util::display::FormatOptions;
use datafusion::common::config::ExtensionOptions;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::scalar::ScalarValue;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{ObjectName, ObjectType, Set, Statement, TableObject};

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use futures::{stream, StreamExt};
use henge_ingest::copy::ParallelCopy;
use henge_ingest::{Engine, SessionWrites, StagedWrite};
use henge_planner::memory::{PhysicalSlot, Planned};
use henge_planner::options::HengeOptions;
use henge_planner::pg::rewrite;
use henge_planner::reuse::Reuse;
use henge_planner::Settings;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::messages::data::DataRow;

use crate::ddl;
use crate::error::{code, PgError};
use crate::set;
use crate::wire::encode::{pg_field_type, ColumnEncoder};

/// Server-wide state every session shares.
pub struct Shared {
    pub engine: Arc<Engine>,
    pub parallelism: usize,
    /// Runtime queries execute on, apart from the one serving connections, so a busy
    /// query never starves the protocol (new connections, cancel requests).
    pub query_runtime: tokio::runtime::Handle,
    /// The memory pool (`query_memory`) and spill directory every query shares.
    pub query_env: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    /// What one statement may hold of that pool (`statement_memory`).
    pub statement_memory: usize,
    /// The pipelines running on this server.
    pub pipelines: Arc<crate::pipeline::Pipelines>,
    /// Which sessions listen on which notification channel.
    pub notifications: Arc<crate::notify::Hub>,
    /// The running alert rules (set once they have started).
    pub alerts: std::sync::OnceLock<Arc<crate::alert::Alerts>>,
}

/// A COPY FROM STDIN in progress: the parser and the rows staged so far, or the error that
/// stopped it.
pub struct CopyIn {
    pub reader: Option<ParallelCopy>,
    pub staged: Option<StagedWrite>,
    pub error: Option<PgError>,
}

/// One client's session.
pub struct Session {
    pub shared: Arc<Shared>,
    pub ctx: SessionContext,
    pub copy_in: Mutex<Option<CopyIn>>,
    /// Cancels the session's result streams (cancel requests, `pg_cancel_backend`).
    pub canceler: Arc<crate::results::Canceler>,
    /// PostgreSQL's session parameters (`statement_timeout`, `TimeZone`, `search_path` …).
    pub settings: Arc<Settings>,
    /// Inside a transaction block: the values `SET LOCAL` replaced, to restore at its end.
    local: Mutex<Option<Vec<(String, String)>>>,
    /// The open transaction block's staged writes (shared with the planner's INSERTs and
    /// scans).
    pub writes: Arc<SessionWrites>,
    /// Notices the running statement raised, for the client before its result.
    notices: Mutex<Vec<Notice>>,
    /// LISTEN, UNLISTEN and NOTIFY: the session's channels, mailbox and pending actions.
    pub listener: Arc<crate::notify::Listener>,
    /// The id `txid_current()` gave the open transaction, if it asked for one.
    pub transaction_id: Arc<Mutex<Option<i64>>>,
    /// Queries sent whole as simple-protocol strings, as they were prepared: a string
    /// sent again (a dashboard's refresh, a pool's `SELECT 1`) keeps what its planning
    /// may keep, as a prepared statement does.
    simple_queries: Mutex<SimpleQueries>,
    /// The scale each numeric parameter of the statement being run was sent with (by
    /// position; `None` for the others), for the values an INSERT writes to unconstrained
    /// numeric columns (see [`crate::fast_insert`]).
    pub parameter_scales: Mutex<Vec<Option<i16>>>,
}

/// The session's most recently run simple-protocol queries, by their text.
#[derive(Default)]
struct SimpleQueries {
    plans: HashMap<String, (Arc<Prepared>, u64)>,
    /// Uses so far: an entry's last use orders eviction.
    uses: u64,
}

/// Simple-protocol queries a session keeps planned, at most.
const SIMPLE_QUERIES_KEPT: usize = 32;

/// The longest query string a session keeps planned: what it keeps stays small (a
/// statement may be 16 MiB), and a string that long is not sent again and again.
const SIMPLE_QUERY_BYTES: usize = 64 << 10;

/// A notice or warning a statement raised, for the client before its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub severity: &'static str,
    pub code: henge_storage::SqlState,
    pub message: String,
}

/// One statement of a query string.
#[derive(Debug, Clone)]
pub enum Command {
    /// Anything sqlparser understands.
    Sql(Box<Statement>),
    /// `CHECKPOINT`: move every buffered row into published segments now.
    Checkpoint,
    /// `COMPACT [table]`: merge each interval's published segments into one new version.
    Compact(Option<String>),
    /// `REPLACE INTO table OVERWRITE …`: delete rows and insert a query's, at once.
    Replace(Box<crate::dml::Replace>),
    /// `ALTER TABLE name RESET (option, …)`.
    ResetOptions(Box<crate::alter::ResetOptions>),
    /// Roles and privileges: CREATE/ALTER/DROP ROLE, GRANT, REVOKE.
    Access(crate::roles::AccessCommand),
    /// Sources and pipelines: CREATE/DROP SOURCE, CREATE/ALTER/DROP PIPELINE.
    Stream(Box<crate::stream::StreamCommand>),
    /// CREATE, ALTER and DROP ALERT.
    Alert(Box<crate::alert::AlertCommand>),
}

/// A statement parsed (and, for queries, planned) once and run many times.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub statement: Command,
    /// The plan of a query-like statement, made when it was prepared.
    pub plan: Option<LogicalPlan>,
    /// Types DataFusion inferred for `$1`, `$2`, …
    pub param_types: Vec<Option<DataType>>,
    /// Catalog generation the plan was made against; a different one means re-plan.
    pub generation: u64,
    /// Settings epoch the plan was made under (`search_path` and `TimeZone` change plans).
    pub settings_epoch: u64,
    /// How much of the plan's planning executions may keep, and what they keep.
    pub reuse: Reuse,
    pub kept: Arc<Mutex<Kept>>,
}

/// The planning a prepared query's executions keep, valid under the catalog generation
/// and settings epoch of the statement's plan.
#[derive(Debug, Default)]
pub struct Kept {
    optimized: Option<LogicalPlan>,
    /// The plan did not optimize before its parameters were known: each execution
    /// optimizes it with them (and does not try again without).
    unoptimizable: bool,
    physical: henge_planner::memory::PhysicalSlot,
}

/// Parses a query string into statements separated by semicolons, rewritten where
/// clients' PostgreSQL needs adapting for DataFusion (see [`rewrite`]).
pub fn parse(sql: &str) -> Result<Vec<Command>, PgError> {
    crate::limits::check_size(sql)?;
    let sql = &*rewrite::substitute(sql);
    let commands = match split(sql) {
        Ok(commands) => commands,
        // Some client catalog queries parse only once swapped for their equivalents
        // (statements refused as they are, not for their syntax, stay refused, and so
        // do statements past the limits).
        Err(e) if [code::FEATURE_NOT_SUPPORTED, code::STATEMENT_TOO_COMPLEX].contains(&e.code) => {
            return Err(e)
        }
        Err(e) => {
            return rewrite::parse_catalog_query(sql)
                .map(|s| s.into_iter().map(|s| Command::Sql(Box::new(s))).collect())
                .ok_or(e)
        }
    };
    // Before anything walks them: long AND/OR chains as balanced trees.
    let commands: Vec<Command> = commands
        .into_iter()
        .map(|c| match c {
            Command::Sql(s) => Command::Sql(Box::new(rewrite::balance_boolean_chains(*s))),
            other => other,
        })
        .collect();
    // The whole string goes through the catalog parser only when every statement is a
    // catalog query: its rewrites are not safe for others.
    let all_catalog = commands.iter().all(|c| match c {
        Command::Sql(s) => rewrite::reads_catalog(s),
        Command::Checkpoint
        | Command::Compact(_)
        | Command::Access(_)
        | Command::Stream(_)
        | Command::Alert(_)
        | Command::Replace(_)
        | Command::ResetOptions(_) => false,
    });
    if all_catalog {
        if let Some(statements) = rewrite::parse_catalog_query(sql) {
            if statements.len() == commands.len() {
                return Ok(statements
                    .into_iter()
                    .map(|s| Command::Sql(Box::new(rewrite::column_names(s))))
                    .collect());
            }
        }
    }
    Ok(commands
        .into_iter()
        .map(|c| match c {
            // A view keeps its query as written; it is rewritten each time it is planned.
            Command::Sql(s) if matches!(*s, Statement::CreateView(_)) => Command::Sql(s),
            Command::Sql(s) => Command::Sql(Box::new(rewrite::statement(*s))),
            other => other,
        })
        .collect())
}

/// Refuses a COPY FROM STDIN that statements follow in its query string: its rows arrive
/// after the string has run, so they would run before them (and sqlparser would take them
/// for inline rows of the COPY, as in a pg_dump file).
fn stdin_copy_ends(parser: &Parser) -> Result<(), PgError> {
    let mut n = 0;
    let mut stdin = false;
    loop {
        match parser.peek_nth_token_ref(n).token {
            Token::EOF => return Ok(()),
            Token::SemiColon => break,
            Token::Word(ref w) if w.keyword == Keyword::STDIN => stdin = true,
            _ => {}
        }
        n += 1;
    }
    let rest = (n + 1..)
        .map(|i| &parser.peek_nth_token_ref(i).token)
        .find(|t| !matches!(t, Token::SemiColon));
    match (stdin, rest) {
        (true, Some(t)) if *t != Token::EOF => Err(PgError::new(
            code::FEATURE_NOT_SUPPORTED,
            "COPY FROM STDIN must be the last statement of a query string",
        )),
        _ => Ok(()),
    }
}

/// Splits a query string into statements, as written.
fn split(sql: &str) -> Result<Vec<Command>, PgError> {
    let syntax = |e: datafusion::sql::sqlparser::parser::ParserError| {
        let message = e.to_string();
        crate::foreign::recognise(crate::foreign::Source::Parser, &message)
            .unwrap_or_else(|| PgError::syntax(message))
    };
    let dialect = crate::dialect::HengeDialect;
    // Tokenized here, not by the parser: the limits look at the tokens before the parser
    // builds anything from them (and sqlparser's own entry point logs the text at debug
    // level, passwords included).
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| syntax(e.into()))?;
    crate::limits::check_tokens(&tokens)?;
    let mut parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let mut commands = Vec::new();
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        let next = parser.peek_token().token;
        let command = match next {
            Token::EOF => break,
            Token::Word(word)
                if word.quote_style.is_none() && word.value.eq_ignore_ascii_case("checkpoint") =>
            {
                parser.next_token();
                Command::Checkpoint
            }
            Token::Word(word)
                if word.quote_style.is_none() && word.value.eq_ignore_ascii_case("compact") =>
            {
                parser.next_token();
                match parser.peek_token().token {
                    Token::EOF | Token::SemiColon => Command::Compact(None),
                    _ => {
                        let name = parser.parse_object_name(false).map_err(syntax)?;
                        Command::Compact(Some(crate::ddl::table_name(&name)?))
                    }
                }
            }
            Token::Word(word)
                if word.keyword == Keyword::REPLACE
                    && matches!(parser.peek_nth_token(1).token,
                        Token::Word(ref into) if into.keyword == Keyword::INTO) =>
            {
                Command::Replace(Box::new(parse_replace(&mut parser).map_err(syntax)?))
            }
            _ if crate::alert::starts(&parser) => {
                Command::Alert(Box::new(crate::alert::parse(&mut parser)?))
            }
            _ if crate::stream::starts(&parser) => {
                Command::Stream(Box::new(crate::stream::parse(&mut parser)?))
            }
            Token::Word(word) if word.keyword == Keyword::ALTER => match parse_reset(&mut parser) {
                Some(reset) => Command::ResetOptions(Box::new(reset)),
                None if crate::roles::starts(&parser) => {
                    Command::Access(crate::roles::parse(&mut parser)?)
                }
                None => Command::Sql(Box::new(parser.parse_statement().map_err(syntax)?)),
            },
            _ if crate::roles::starts(&parser) => {
                Command::Access(crate::roles::parse(&mut parser)?)
            }
            Token::Word(word) if word.keyword == Keyword::COPY => {
                stdin_copy_ends(&parser)?;
                Command::Sql(Box::new(parser.parse_statement().map_err(syntax)?))
            }
            _ => Command::Sql(Box::new(parser.parse_statement().map_err(syntax)?)),
        };
        commands.push(command);
        match parser.peek_token().token {
            Token::EOF | Token::SemiColon => {}
            other => {
                return Err(PgError::syntax(format!(
                    "syntax error at or near \"{other}\""
                )))
            }
        }
    }
    Ok(commands)
}

/// Whether planning failed because two computed columns have one name.
fn duplicate_names(e: &datafusion::error::DataFusionError) -> bool {
    use datafusion::common::SchemaError;
    use datafusion::error::DataFusionError;
    match e.find_root() {
        DataFusionError::SchemaError(err, _) => matches!(
            **err,
            SchemaError::DuplicateQualifiedField { .. }
                | SchemaError::DuplicateUnqualifiedField { .. }
        ),
        DataFusionError::Plan(message) => message.contains("require unique expression names"),
        _ => false,
    }
}

/// The types of a plan's parameters `$1`, `$2`, … as DataFusion inferred them.
fn parameter_types(plan: &LogicalPlan) -> Result<Vec<Option<DataType>>, PgError> {
    let types = plan.get_parameter_types().map_err(PgError::from)?;
    let count = types
        .keys()
        .filter_map(|k| k.strip_prefix('$')?.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    Ok((1..=count)
        .map(|i| types.get(&format!("${i}")).cloned().flatten())
        .collect())
}

/// Whether DataFusion plans and runs this statement.
fn is_query_like(command: &Command) -> bool {
    match command {
        Command::Sql(statement) => matches!(
            **statement,
            Statement::Query(_)
                | Statement::Insert(_)
                | Statement::Explain { .. }
                | Statement::ShowVariable { .. }
        ),
        Command::Checkpoint
        | Command::Compact(_)
        | Command::Access(_)
        | Command::Stream(_)
        | Command::Alert(_)
        | Command::Replace(_)
        | Command::ResetOptions(_) => false,
    }
}

/// `ALTER TABLE [IF EXISTS] name RESET (option, …)`, if that is what comes next.
fn parse_reset(parser: &mut Parser) -> Option<crate::alter::ResetOptions> {
    parser
        .maybe_parse(|p| {
            p.expect_keywords(&[Keyword::ALTER, Keyword::TABLE])?;
            let if_exists = p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let table = p.parse_object_name(false)?;
            p.expect_keyword(Keyword::RESET)?;
            p.expect_token(&Token::LParen)?;
            let options = p.parse_comma_separated(|p| p.parse_identifier())?;
            p.expect_token(&Token::RParen)?;
            Ok(crate::alter::ResetOptions {
                table,
                if_exists,
                options,
            })
        })
        .ok()
        .flatten()
}

/// `REPLACE INTO table OVERWRITE (ALL | WHERE condition) query`, after `REPLACE`.
fn parse_replace(
    parser: &mut Parser,
) -> Result<crate::dml::Replace, datafusion::sql::sqlparser::parser::ParserError> {
    parser.expect_keyword(Keyword::REPLACE)?;
    parser.expect_keyword(Keyword::INTO)?;
    let table = parser.parse_object_name(false)?;
    parser.expect_keyword(Keyword::OVERWRITE)?;
    let condition = if parser.parse_keyword(Keyword::ALL) {
        None
    } else {
        parser.expect_keyword(Keyword::WHERE)?;
        Some(parser.parse_expr()?)
    };
    let query = parser.parse_query()?;
    Ok(crate::dml::Replace {
        table,
        condition,
        query,
    })
}

impl Session {
    pub fn new(shared: Arc<Shared>) -> Session {
        let settings = Arc::new(Settings::new());
        let writes = Arc::new(SessionWrites::default());
        let ctx = henge_planner::new_context(
            shared.engine.clone(),
            shared.parallelism,
            settings.clone(),
            shared.query_env.clone(),
            writes.clone(),
        );
        let listener = Arc::new(crate::notify::Listener::new(shared.notifications.clone()));
        Session {
            shared,
            ctx,
            copy_in: Mutex::new(None),
            canceler: Arc::default(),
            settings,
            local: Mutex::new(None),
            writes,
            notices: Mutex::default(),
            listener,
            transaction_id: Arc::default(),
            simple_queries: Mutex::default(),
            parameter_scales: Mutex::default(),
        }
    }

    /// The preparation of simple-protocol string `text`, if it is a query prepared before
    /// (see [`Session::prepare_simple`]) under the current catalog and settings.
    pub fn kept_simple(&self, text: &str) -> Option<Arc<Prepared>> {
        let (generation, epoch) = (self.shared.engine.generation(), self.settings.epoch());
        let mut kept = self
            .simple_queries
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let kept = &mut *kept;
        kept.uses += 1;
        let (prepared, used) = kept.plans.get_mut(text)?;
        if prepared.generation != generation || prepared.settings_epoch != epoch {
            return None;
        }
        *used = kept.uses;
        Some(prepared.clone())
    }

    /// Prepares a statement of a simple-protocol string; `text`, the whole string if it
    /// holds this statement alone. A query (`SELECT`, `VALUES`, `WITH` …) of a string of at
    /// most [`SIMPLE_QUERY_BYTES`] is kept by its text for [`Session::kept_simple`], which
    /// the caller asked first.
    pub async fn prepare_simple(
        &self,
        statement: Command,
        text: Option<&str>,
    ) -> Result<Arc<Prepared>, PgError> {
        let text = match (&statement, text) {
            (Command::Sql(sql), Some(text))
                if matches!(**sql, Statement::Query(_)) && text.len() <= SIMPLE_QUERY_BYTES =>
            {
                text
            }
            _ => return self.prepare(statement).await.map(Arc::new),
        };
        let prepared = Arc::new(self.prepare(statement).await?);
        if prepared.plan.is_some() {
            let mut kept = self
                .simple_queries
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if kept.plans.len() >= SIMPLE_QUERIES_KEPT && !kept.plans.contains_key(text) {
                let oldest = kept
                    .plans
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(text, _)| text.clone());
                if let Some(oldest) = oldest {
                    kept.plans.remove(&oldest);
                }
            }
            let used = kept.uses;
            kept.plans.insert(text.to_owned(), (prepared.clone(), used));
        }
        Ok(prepared)
    }

    /// A transaction ended (committed or not): its notifications go out or are dropped,
    /// and the next one has an id of its own.
    pub fn end_transaction(&self, committed: bool) {
        self.listener.finish(committed);
        *self
            .transaction_id
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// A NOTICE for the client (`table "x" does not exist, skipping`).
    pub fn notice(&self, message: String) {
        self.raise(Notice {
            severity: "NOTICE",
            code: code::SUCCESSFUL_COMPLETION,
            message,
        });
    }

    /// A WARNING for the client (`no privileges were granted for "t"`).
    pub fn warning(&self, code: henge_storage::SqlState, message: String) {
        self.raise(Notice {
            severity: "WARNING",
            code,
            message,
        });
    }

    fn raise(&self, notice: Notice) {
        self.notices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(notice);
    }

    /// The notices raised since the last call.
    pub fn take_notices(&self) -> Vec<Notice> {
        std::mem::take(&mut *self.notices.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether a transaction block is open.
    pub fn in_block(&self) -> bool {
        self.local
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// A transaction block begins.
    pub fn begin_block(&self) {
        *self.local.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
    }

    /// A transaction block ends: `SET LOCAL` values are undone, newest first.
    pub fn end_block(&self) {
        let undo = self.local.lock().unwrap_or_else(|e| e.into_inner()).take();
        for (name, value) in undo.unwrap_or_default().into_iter().rev() {
            let _ = self.settings.set(&name, &value);
        }
    }

    /// Before a SET: for `SET LOCAL`, notes the value to restore when the block ends.
    /// Whether to go on: outside a block `SET LOCAL` has no effect, as in PostgreSQL.
    pub fn remember_local(&self, name: &str, local: bool) -> Result<bool, PgError> {
        if !local {
            return Ok(true);
        }
        let mut block = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let Some(undo) = block.as_mut() else {
            return Ok(false);
        };
        undo.push((name.to_owned(), self.settings.get(name)?));
        Ok(true)
    }

    /// Passes the parameters that change how queries run on to DataFusion: the time zone
    /// of `timestamptz` values and the schema unqualified names resolve in.
    pub fn apply_settings(&self) -> Result<(), PgError> {
        let zone = self.settings.time_zone_name();
        let catalog = self.ctx.catalog(henge_planner::CATALOG);
        let schema = self
            .settings
            .search_path()
            .into_iter()
            .find(|s| catalog.as_ref().is_some_and(|c| c.schema(s).is_some()))
            .unwrap_or_else(|| henge_planner::SCHEMA.to_owned());
        let state = self.ctx.state_ref();
        let mut state = state.write();
        let options = state.config_mut().options_mut();
        options.execution.time_zone = Some(zone);
        options.catalog.default_schema = schema;
        Ok(())
    }

    /// Plans a statement for repeated execution.
    pub async fn prepare(&self, statement: Command) -> Result<Prepared, PgError> {
        let generation = self.shared.engine.generation();
        let settings_epoch = self.settings.epoch();
        // Not planned: commands of Henge's own, and an INSERT of constants (see
        // `fast_insert`; should it need planning after all, `execute` plans it).
        let unplanned = match &statement {
            Command::Sql(sql) => match sql.as_ref() {
                Statement::Insert(insert) => crate::fast_insert::candidate(self, insert),
                _ => false,
            },
            _ => true,
        };
        let (Command::Sql(sql), false) = (&statement, unplanned) else {
            return Ok(Prepared {
                statement,
                plan: None,
                param_types: Vec::new(),
                generation,
                settings_epoch,
                reuse: Reuse::Nothing,
                kept: Arc::default(),
            });
        };
        if !is_query_like(&statement) {
            // DELETE and UPDATE describe the parameters of the query their expressions make.
            let param_types = match crate::dml::parameter_query(self, sql) {
                Some(query) => {
                    let plan = self.ctx.state().create_logical_plan(&query).await?;
                    parameter_types(&plan)?
                }
                None => Vec::new(),
            };
            return Ok(Prepared {
                statement,
                plan: None,
                param_types,
                generation,
                settings_epoch,
                reuse: Reuse::Nothing,
                kept: Arc::default(),
            });
        }
        let plan = self.plan(sql).await?;
        let param_types = parameter_types(&plan)?;
        Ok(Prepared {
            statement,
            reuse: henge_planner::reuse::reuse(&plan),
            plan: Some(plan),
            param_types,
            generation,
            settings_epoch,
            kept: Arc::default(),
        })
    }

    async fn plan(&self, statement: &Statement) -> Result<LogicalPlan, PgError> {
        if let Some((sqlstate, reason)) = rewrite::refused(statement) {
            return Err(PgError::new(sqlstate, reason));
        }
        let mut sketch_target = None;
        if let Statement::Insert(insert) = statement {
            if let TableObject::TableName(name) = &insert.table {
                let name = ddl::table_name(name)?;
                if self.shared.engine.view(&name).is_some() {
                    return Err(PgError::unsupported(format!(
                        "cannot insert into view \"{name}\""
                    ))
                    .with_detail("Henge's views are read-only."));
                }
                if let Some(table) = self.shared.engine.table(&name) {
                    if table.def.has_sketches() {
                        sketch_target = Some(name);
                    }
                }
            }
        }
        let state = self.ctx.state();
        // A query's plan is analyzed here, once (see `henge_planner::reuse`).
        let analyzed = |plan: LogicalPlan| -> Result<LogicalPlan, PgError> {
            let plan =
                state
                    .analyzer()
                    .execute_and_check(plan, state.config_options(), |_, _| {})?;
            let plan = henge_planner::pg::types::type_limit_parameters(plan)?;
            // The rows go to the client: numerics PostgreSQL shows with places of their
            // own are sent so.
            Ok(henge_planner::pg::display::for_client(plan)?)
        };
        if let Statement::ShowVariable { variable } = statement {
            // `SHOW TIME ZONE` comes as `time.zone`; see `set::parameter_name`.
            let name = ObjectName::from(variable.clone())
                .to_string()
                .to_ascii_lowercase();
            if let Some(key) = name.strip_prefix("henge.") {
                // DataFusion's SHOW knows only its own settings.
                let value = state
                    .config_options()
                    .extensions
                    .get::<HengeOptions>()
                    .and_then(|o| o.entries().into_iter().find(|e| e.key == key))
                    .and_then(|e| e.value)
                    .ok_or_else(|| {
                        PgError::new(
                            code::UNDEFINED_OBJECT,
                            format!("unrecognized configuration parameter \"{name}\""),
                        )
                    })?;
                let sql = format!(
                    "SELECT '{name}' AS name, '{}' AS value",
                    value.replace('\'', "''")
                );
                return analyzed(state.create_logical_plan(&sql).await?);
            }
            if !name.starts_with("datafusion.") {
                let sql = set::show_sql(&self.settings, &set::parameter_name(&name))?;
                return analyzed(state.create_logical_plan(&sql).await?);
            }
        }
        let planning = state.statement_to_plan(DFStatement::Statement(Box::new(statement.clone())));
        let plan = match sketch_target {
            // The INSERT's values are typed as the values its sketch columns sketch.
            Some(table) => {
                henge_planner::schema::planning_insert(&self.ctx, &table, planning).await?
            }
            None => match planning.await {
                Ok(plan) => plan,
                // Two aggregates of one column under different casts (see
                // `rewrite::cast_arguments_named`).
                Err(e) if duplicate_names(&e) => {
                    let aggregates = state.aggregate_functions();
                    let named = rewrite::cast_arguments_named(statement.clone(), |name| {
                        aggregates.contains_key(name)
                    });
                    match named {
                        Some(named) => {
                            state
                                .statement_to_plan(DFStatement::Statement(Box::new(named)))
                                .await?
                        }
                        None => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            },
        };
        // Henge's analyzer rules may change a result column's type (a cast to numeric
        // keeps its value's scale, a double meeting a numeric makes both doubles): the
        // columns are described, and values encoded, by the analyzed plan's types.
        if matches!(
            plan,
            LogicalPlan::Dml(_) | LogicalPlan::Statement(_) | LogicalPlan::Ddl(_)
        ) {
            henge_planner::pg::types::check_insert_assignments(&plan)?;
            return Ok(henge_planner::pg::numeric::exact_insert(plan)?);
        }
        analyzed(plan)
    }

    /// The columns a prepared statement returns (empty for statements without rows).
    pub fn result_fields(prepared: &Prepared, formats: Option<&Format>) -> Vec<FieldInfo> {
        match &prepared.plan {
            Some(plan) if !matches!(plan, LogicalPlan::Dml(_) | LogicalPlan::Statement(_)) => {
                fields(plan.schema().as_arrow(), formats)
            }
            _ => Vec::new(),
        }
    }

    /// Runs one statement with its parameters; rows are encoded in `formats`.
    pub async fn execute(
        &self,
        prepared: &Prepared,
        params: Vec<ScalarValue>,
        formats: Option<&Format>,
    ) -> Result<Response, PgError> {
        let statement = match &prepared.statement {
            Command::Checkpoint => {
                crate::privileges::check_superuser(self, "CHECKPOINT")?;
                let report = self.shared.engine.checkpoint().await?;
                tracing::debug!(segments = report.segments, rows = report.rows, "CHECKPOINT");
                return Ok(Response::Execution(Tag::new("CHECKPOINT")));
            }
            Command::Compact(table) => {
                crate::privileges::check_superuser(self, "COMPACT")?;
                let report = self.shared.engine.compact(table.as_deref(), 2).await?;
                tracing::debug!(
                    intervals = report.intervals,
                    replaced = report.replaced,
                    "COMPACT"
                );
                return Ok(Response::Execution(Tag::new("COMPACT")));
            }
            Command::Replace(replace) => {
                if self.settings.get("transaction_read_only").as_deref() == Ok("on") {
                    return Err(PgError::new(
                        code::READ_ONLY_SQL_TRANSACTION,
                        "cannot execute REPLACE in a read-only transaction",
                    ));
                }
                crate::privileges::check_replace(self, &replace.table, &replace.query)?;
                return crate::dml::replace(self, replace).await;
            }
            Command::ResetOptions(reset) => {
                if self.settings.get("transaction_read_only").as_deref() == Ok("on") {
                    return Err(PgError::new(
                        code::READ_ONLY_SQL_TRANSACTION,
                        "cannot execute ALTER TABLE in a read-only transaction",
                    ));
                }
                crate::privileges::check_owner(self, &reset.table)?;
                return crate::alter::reset_options(self, reset).await;
            }
            Command::Access(command) => {
                if self.settings.get("transaction_read_only").as_deref() == Ok("on") {
                    return Err(PgError::new(
                        code::READ_ONLY_SQL_TRANSACTION,
                        "cannot execute a role or privilege statement in a read-only transaction",
                    ));
                }
                return crate::roles::execute(self, command);
            }
            Command::Alert(command) => {
                if self.settings.get("transaction_read_only").as_deref() == Ok("on") {
                    return Err(PgError::new(
                        code::READ_ONLY_SQL_TRANSACTION,
                        "cannot manage alerts in a read-only transaction",
                    ));
                }
                return crate::alert::execute(self, command).await;
            }
            Command::Stream(command) => {
                if self.settings.get("transaction_read_only").as_deref() == Ok("on") {
                    return Err(PgError::new(
                        code::READ_ONLY_SQL_TRANSACTION,
                        "cannot manage sources or pipelines in a read-only transaction",
                    ));
                }
                return crate::stream::execute(self, command).await;
            }
            Command::Sql(statement) => statement.as_ref(),
        };
        self.check_writable(statement)?;
        crate::privileges::check(self, statement)?;
        if let Some(result) = set::run(self, statement).await {
            return result;
        }
        match statement {
            s if is_query_like(&prepared.statement) => {
                if let Statement::Insert(insert) = s {
                    let fast = match (&prepared.plan, params.is_empty()) {
                        (None, true) => crate::fast_insert::run(self, insert).await?,
                        (_, false) => {
                            crate::fast_insert::run_with_parameters(self, insert, &params).await?
                        }
                        (Some(_), true) => None,
                    };
                    if let Some(rows) = fast {
                        return Ok(Response::Execution(
                            Tag::new("INSERT").with_oid(0).with_rows(rows as usize),
                        ));
                    }
                }
                // SHOW is planned again each time: a henge.* value is part of its plan.
                match &prepared.plan {
                    Some(plan)
                        if prepared.generation == self.shared.engine.generation()
                            && prepared.settings_epoch == self.settings.epoch()
                            && !matches!(s, Statement::ShowVariable { .. }) =>
                    {
                        self.run_prepared(prepared, plan, params, formats).await
                    }
                    _ => {
                        let plan = self.plan(s).await?;
                        let reuse = henge_planner::reuse::reuse(&plan);
                        self.run_analyzed(plan, reuse, params, formats).await
                    }
                }
            }
            Statement::CreateTable(create) => {
                let mut def = ddl::table_def(create)?;
                ddl::defaults(self, &mut def.columns, &create.columns).await?;
                let owner = self.settings.identity().current().0;
                match self.shared.engine.create_table_owned(def, owner) {
                    Ok(_) => Ok(Response::Execution(Tag::new("CREATE TABLE"))),
                    Err(henge_ingest::Error::Storage(henge_storage::Error::TableExists(_)))
                        if create.if_not_exists =>
                    {
                        Ok(Response::Execution(Tag::new("CREATE TABLE")))
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Statement::CreateView(create) => crate::view::create(self, create).await,
            Statement::Drop {
                object_type: ObjectType::View,
                if_exists,
                names,
                cascade,
                ..
            } => crate::view::drop(self, names, *if_exists, *cascade),
            Statement::Drop {
                object_type: ObjectType::Table,
                if_exists,
                names,
                cascade,
                ..
            } => ddl::drop_tables(self, names, *if_exists, *cascade).await,
            Statement::Copy { .. } => self.copy(statement).await,
            Statement::Delete(delete) => crate::dml::delete(self, delete, params).await,
            Statement::Update(update) => crate::dml::update(self, update, params).await,
            Statement::Truncate(truncate) => crate::dml::truncate(self, truncate).await,
            Statement::AlterTable(alter) => crate::alter::alter_table(self, alter).await,
            // DataFusion's own settings (`datafusion.execution.target_partitions` …) and
            // Henge's (`henge.pushdown`), for this session only.
            Statement::Set(Set::SingleAssignment {
                variable, values, ..
            }) if ["datafusion.", "henge."].iter().any(|prefix| {
                variable
                    .to_string()
                    .to_ascii_lowercase()
                    .starts_with(prefix)
            }) =>
            {
                let name = variable.to_string().to_ascii_lowercase();
                // Where spill files go, how SQL is parsed and which catalog is used are the
                // server's business, not a session's.
                if [
                    "datafusion.runtime.",
                    "datafusion.catalog.",
                    "datafusion.sql_parser.",
                ]
                .iter()
                .any(|p| name.starts_with(p))
                {
                    return Err(PgError::new(
                        code::INSUFFICIENT_PRIVILEGE,
                        format!("permission denied to set parameter \"{variable}\""),
                    ));
                }
                let plan = self.plan(statement).await?;
                match self.ctx.execute_logical_plan(plan).await {
                    Ok(_) => {
                        self.settings.changed_elsewhere();
                        Ok(Response::Execution(Tag::new("SET")))
                    }
                    Err(e) if PgError::from(&e).code == code::UNDEFINED_OBJECT => {
                        Err(PgError::new(
                            code::UNDEFINED_OBJECT,
                            format!("unrecognized configuration parameter \"{variable}\""),
                        ))
                    }
                    Err(e) => {
                        let value = values
                            .iter()
                            .map(|v| v.to_string().trim_matches('\'').to_owned())
                            .collect::<Vec<_>>()
                            .join(", ");
                        Err(PgError::new(
                            code::INVALID_PARAMETER_VALUE,
                            format!(
                                "invalid value for parameter \"{variable}\": \"{value}\" ({e})"
                            ),
                        ))
                    }
                }
            }
            other => Err(PgError::unsupported(format!(
                "statement not supported: {}",
                other
                    .to_string()
                    .split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" ")
            ))),
        }
    }

    /// The runtime of one statement: the shared memory pool, of which it may hold
    /// `statement_memory`.
    fn statement_env(
        &self,
    ) -> Result<Arc<datafusion::execution::runtime_env::RuntimeEnv>, PgError> {
        Ok(henge_planner::memory::statement_runtime(
            &self.shared.query_env,
            self.shared.statement_memory,
        )?)
    }

    /// Runs a query to completion on the query runtime. Dropping the returned future (a
    /// cancel request) aborts the query there.
    pub async fn collect(&self, planned: Planned) -> Result<Vec<RecordBatch>, PgError> {
        struct AbortOnDrop(tokio::task::JoinHandle<datafusion::error::Result<Vec<RecordBatch>>>);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let env = self.statement_env()?;
        let mut task = AbortOnDrop(
            self.shared
                .query_runtime
                .spawn(henge_planner::memory::collect(planned, env)),
        );
        let finished = match self.settings.statement_timeout() {
            Duration::ZERO => (&mut task.0).await,
            limit => match tokio::time::timeout(limit, &mut task.0).await {
                Ok(finished) => finished,
                // Dropping the task aborts the query.
                Err(_) => {
                    return Err(PgError::new(
                        code::QUERY_CANCELED,
                        "canceling statement due to statement timeout",
                    ))
                }
            },
        };
        match finished {
            Ok(result) => Ok(result?),
            Err(e) => Err(PgError::new(
                code::INTERNAL_ERROR,
                format!("query task failed: {e}"),
            )),
        }
    }

    /// Refuses a statement that writes inside a read-only transaction (`BEGIN READ ONLY`,
    /// `default_transaction_read_only`), as PostgreSQL does, with 25006.
    fn check_writable(&self, statement: &Statement) -> Result<(), PgError> {
        if self.settings.get("transaction_read_only").as_deref() != Ok("on") {
            return Ok(());
        }
        let what = match statement {
            Statement::Insert(_) => "INSERT",
            Statement::Update(_) => "UPDATE",
            Statement::Delete(_) => "DELETE",
            Statement::Copy { to: false, .. } => "COPY FROM",
            Statement::CreateTable(_) => "CREATE TABLE",
            Statement::CreateView(_) => "CREATE VIEW",
            Statement::AlterTable(_) => "ALTER TABLE",
            Statement::Truncate(_) => "TRUNCATE",
            Statement::Drop {
                object_type: ObjectType::View,
                ..
            } => "DROP VIEW",
            Statement::Drop { .. } => "DROP TABLE",
            _ => return Ok(()),
        };
        Err(PgError::new(
            code::READ_ONLY_SQL_TRANSACTION,
            format!("cannot execute {what} in a read-only transaction"),
        ))
    }

    /// Starts a query and streams its batches, within `statement_timeout`; a cancel
    /// request for the session ends the stream.
    pub async fn stream(
        &self,
        planned: Planned,
        keep: Option<PhysicalSlot>,
    ) -> Result<futures::stream::BoxStream<'static, Result<RecordBatch, PgError>>, PgError> {
        crate::results::stream_batches(
            planned,
            keep,
            self.statement_env()?,
            &self.shared.query_runtime,
            &self.canceler,
            self.settings.statement_timeout(),
        )
        .await
    }

    /// Runs a plan as [`Session::plan`] makes them (analyzed, unless DataFusion analyzes it:
    /// EXPLAIN and statements, whose `reuse` is `Nothing`) with its parameters.
    async fn run_analyzed(
        &self,
        plan: LogicalPlan,
        reuse: Reuse,
        params: Vec<ScalarValue>,
        formats: Option<&Format>,
    ) -> Result<Response, PgError> {
        let plan = match params.is_empty() {
            true => plan,
            false => plan.with_param_values(params)?,
        };
        let stage = match reuse {
            Reuse::Nothing => Reuse::Nothing,
            _ => Reuse::Analyzed,
        };
        self.run_plan(plan, stage, None, formats).await
    }

    /// Runs a prepared query whose plan is current, keeping for the next execution what
    /// may be kept of this one's planning (see `henge_planner::reuse`).
    async fn run_prepared(
        &self,
        prepared: &Prepared,
        plan: &LogicalPlan,
        params: Vec<ScalarValue>,
        formats: Option<&Format>,
    ) -> Result<Response, PgError> {
        let reuse = prepared.reuse;
        let (optimized, unoptimizable, physical) = {
            let kept = prepared.kept.lock().unwrap_or_else(|e| e.into_inner());
            (
                kept.optimized.clone(),
                kept.unoptimizable,
                kept.physical.clone(),
            )
        };
        if matches!(reuse, Reuse::Nothing | Reuse::Analyzed) || unoptimizable {
            return self
                .run_analyzed(plan.clone(), reuse, params, formats)
                .await;
        }
        let optimized = match optimized {
            Some(optimized) => optimized,
            None => {
                let optimized = henge_planner::reuse::optimize(&self.ctx.state(), plan.clone());
                {
                    let mut kept = prepared.kept.lock().unwrap_or_else(|e| e.into_inner());
                    kept.optimized = optimized.as_ref().ok().cloned();
                    kept.unoptimizable = optimized.is_err();
                }
                match optimized {
                    Ok(optimized) => optimized,
                    // Not every plan optimizes before its parameters are known: such a
                    // plan is optimized with them, every time.
                    Err(e) => {
                        tracing::debug!(error = %e, "a prepared plan is optimized at each execution");
                        return self
                            .run_analyzed(plan.clone(), reuse, params, formats)
                            .await;
                    }
                }
            }
        };
        if reuse == Reuse::Physical {
            return self
                .run_plan(optimized, Reuse::Physical, Some(physical), formats)
                .await;
        }
        let options = self.ctx.copied_config().options().clone();
        let plan = henge_planner::reuse::bind(optimized, params, options)?;
        self.run_plan(plan, Reuse::Optimized, None, formats).await
    }

    /// Runs a plan: statements to completion, queries as a stream of encoded rows. `stage`
    /// says how far its planning has come: `Nothing`, straight from SQL; `Analyzed`,
    /// analyzed; `Optimized`, optimized too; `Physical`, optimized, and `kept` holds its
    /// physical plan or is where the one made now is kept.
    pub async fn run_plan(
        &self,
        plan: LogicalPlan,
        stage: Reuse,
        kept: Option<PhysicalSlot>,
        formats: Option<&Format>,
    ) -> Result<Response, PgError> {
        let tag = match &plan {
            LogicalPlan::Dml(_) => Some("INSERT"),
            LogicalPlan::Statement(_) => Some("SET"),
            _ => None,
        };
        let explain = matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_));
        let made = kept.as_ref().and_then(|slot| slot.lock().clone());
        let (schema, planned): (SchemaRef, _) = match (stage, made) {
            (Reuse::Physical, Some(physical)) => (
                Arc::new(plan.schema().as_arrow().clone()),
                Planned::Physical(physical, self.ctx.session_id(), self.ctx.copied_config()),
            ),
            (stage, _) => {
                let df = self.ctx.execute_logical_plan(plan).await?;
                let schema = Arc::new(df.schema().as_arrow().clone());
                (
                    schema,
                    match stage {
                        Reuse::Nothing => Planned::Logical(df),
                        Reuse::Analyzed => Planned::Analyzed(df),
                        Reuse::Optimized | Reuse::Physical => Planned::Optimized(df),
                    },
                )
            }
        };
        let Some(tag) = tag else {
            let fields = Arc::new(fields(&schema, formats));
            let zone = self.settings.time_zone();
            let encoding = fields.clone();
            let rows = self.stream(planned, kept).await?.flat_map(move |batch| {
                let batch = match explain {
                    true => batch.and_then(shown_plan),
                    false => batch,
                };
                let rows = batch.and_then(|b| encode_rows(&[b], &encoding, &zone));
                match rows {
                    Ok(rows) => stream::iter(rows.into_iter().map(Ok)).left_stream(),
                    Err(e) => stream::iter([Err(e.into())]).right_stream(),
                }
            });
            let mut response = QueryResponse::new(fields, rows);
            if explain {
                response.set_command_tag("EXPLAIN");
            }
            return Ok(Response::Query(response));
        };
        let batches = self.collect(planned).await?;
        match tag {
            "INSERT" => {
                let rows: u64 = batches
                    .iter()
                    .filter(|b| b.num_columns() > 0)
                    .map(|b| {
                        let counts = b.column(0).as_primitive_opt::<UInt64Type>();
                        counts.map_or(0, |c| c.iter().flatten().sum::<u64>())
                    })
                    .sum();
                Ok(Response::Execution(
                    Tag::new("INSERT").with_oid(0).with_rows(rows as usize),
                ))
            }
            tag => Ok(Response::Execution(Tag::new(tag))),
        }
    }
}

/// An EXPLAIN's text as the client may see it: a result column whose name repeats in the
/// select list carries a NUL before its suffix inside the plan (see
/// `henge_planner::pg::rewrite::shown_name`), which no text value may hold (psql's output
/// stopped at it); it is shown as `name:n`.
fn shown_plan(batch: RecordBatch) -> Result<RecordBatch, PgError> {
    use datafusion::arrow::array::{ArrayRef, StringArray};
    let columns = batch
        .columns()
        .iter()
        .map(|column| match column.as_string_opt::<i32>() {
            Some(text) if text.iter().flatten().any(|t| t.contains('\0')) => {
                let shown: StringArray = text
                    .iter()
                    .map(|t| t.map(|t| t.replace('\0', ":")))
                    .collect();
                Arc::new(shown) as ArrayRef
            }
            _ => column.clone(),
        })
        .collect();
    RecordBatch::try_new(batch.schema(), columns)
        .map_err(|e| PgError::from(datafusion::error::DataFusionError::from(e)))
}

/// Row description of a result schema.
fn fields(
    schema: &datafusion::arrow::datatypes::Schema,
    formats: Option<&Format>,
) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let format = formats.map_or(FieldFormat::Text, |fmt| fmt.format_for(i));
            let name = henge_planner::pg::rewrite::shown_name(f.name()).to_owned();
            FieldInfo::new(name, None, None, pg_field_type(f), format)
        })
        .collect()
}

/// Encodes batches as DataRow messages.
fn encode_rows(
    batches: &[RecordBatch],
    fields: &[FieldInfo],
    zone: &Tz,
) -> Result<Vec<DataRow>, PgError> {
    let options = FormatOptions::default();
    let mut rows = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    for batch in batches {
        let schema = batch.schema();
        let encoders = batch
            .columns()
            .iter()
            .zip(fields)
            .zip(schema.fields())
            .map(|((array, field), result)| {
                ColumnEncoder::new(array, field.format(), &options, zone)
                    .map(|e| e.sent_as(field.datatype()).padded_as(result))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let mut data = bytes::BytesMut::with_capacity(16 * encoders.len());
            for encoder in &encoders {
                encoder.encode(row, &mut data)?;
            }
            rows.push(DataRow::new(data, encoders.len() as i16));
        }
    }
    Ok(rows)
}
impl Drop for Session {
    fn drop(&mut self) {
        henge_planner::pg::uninstall(&self.ctx);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A session over a fresh data directory in `dir`, as the server makes one (with the
    /// tokio runtime of the calling test for its queries).
    pub(crate) fn session(dir: &std::path::Path) -> Session {
        let engine = Arc::new(Engine::open(dir, &henge_ingest::EngineOptions::default()).unwrap());
        let query_env = henge_planner::query_runtime(256 << 20, &dir.join("tmp")).unwrap();
        let pipelines = Arc::new(crate::pipeline::Pipelines::new(
            engine.clone(),
            query_env.clone(),
            tokio::runtime::Handle::current(),
        ));
        Session::new(Arc::new(Shared {
            engine,
            parallelism: 2,
            query_runtime: tokio::runtime::Handle::current(),
            query_env,
            statement_memory: 128 << 20,
            pipelines,
            notifications: Arc::default(),
            alerts: Default::default(),
        }))
    }
}
