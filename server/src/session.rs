//! A client session: its query context and the statements it runs.
//!
//! Statements are parsed with DataFusion's sqlparser in the PostgreSQL dialect (plus
//! Henge's own `CHECKPOINT`) and dispatched here: DDL, COPY and CHECKPOINT are Henge's own;
//! queries, INSERT and EXPLAIN are planned and run by DataFusion over Henge's tables.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, SchemaRef, UInt64Type};
use datafusion::arrow::util::display::FormatOptions;
use datafusion::common::config::ExtensionOptions;
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::LogicalPlan;
use datafusion::scalar::ScalarValue;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    Expr, ObjectName, ObjectType, Reset, ResetStatement, Set, Statement, UnaryOperator, Value,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;
use futures::stream;
use henge_ingest::copy::CopyReader;
use henge_ingest::{Engine, Table};
use henge_planner::options::HengeOptions;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::messages::data::DataRow;

use crate::ddl;
use crate::error::{code, PgError};
use crate::timeout;
use crate::wire::encode::{pg_type, ColumnEncoder};

/// Server-wide state every session shares.
pub struct Shared {
    pub engine: Arc<Engine>,
    pub parallelism: usize,
    /// Runtime queries execute on, apart from the one serving connections, so a busy
    /// query never starves the protocol (new connections, cancel requests).
    pub query_runtime: tokio::runtime::Handle,
}

/// A COPY FROM STDIN in progress: the parser, or the error that stopped it.
pub struct CopyIn {
    pub table: Arc<Table>,
    pub reader: Option<CopyReader>,
    pub error: Option<PgError>,
}

/// One client's session.
pub struct Session {
    pub shared: Arc<Shared>,
    pub ctx: SessionContext,
    pub copy_in: Mutex<Option<CopyIn>>,
    /// How long a query may run before it is canceled (`statement_timeout`); zero: no limit.
    statement_timeout: Mutex<Duration>,
}

/// One statement of a query string.
#[derive(Debug, Clone)]
pub enum Command {
    /// Anything sqlparser understands.
    Sql(Box<Statement>),
    /// `CHECKPOINT`: move every buffered row into published segments now.
    Checkpoint,
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
}

/// Parses a query string into statements separated by semicolons.
pub fn parse(sql: &str) -> Result<Vec<Command>, PgError> {
    let syntax =
        |e: datafusion::sql::sqlparser::parser::ParserError| PgError::syntax(e.to_string());
    let dialect = PostgreSqlDialect {};
    let mut parser = Parser::new(&dialect).try_with_sql(sql).map_err(syntax)?;
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
        Command::Checkpoint => false,
    }
}

impl Session {
    pub fn new(shared: Arc<Shared>) -> Session {
        let ctx = henge_planner::new_context(shared.engine.clone(), shared.parallelism);
        Session {
            shared,
            ctx,
            copy_in: Mutex::new(None),
            statement_timeout: Mutex::new(Duration::ZERO),
        }
    }

    /// Plans a statement for repeated execution.
    pub async fn prepare(&self, statement: Command) -> Result<Prepared, PgError> {
        let generation = self.shared.engine.generation();
        let Command::Sql(sql) = &statement else {
            return Ok(Prepared {
                statement,
                plan: None,
                param_types: Vec::new(),
                generation,
            });
        };
        if !is_query_like(&statement) {
            return Ok(Prepared {
                statement,
                plan: None,
                param_types: Vec::new(),
                generation,
            });
        }
        let plan = self.plan(sql).await?;
        let types = plan.get_parameter_types().map_err(PgError::from)?;
        let count = types
            .keys()
            .filter_map(|k| k.strip_prefix('$')?.parse::<usize>().ok())
            .max()
            .unwrap_or(0);
        let param_types = (1..=count)
            .map(|i| types.get(&format!("${i}")).cloned().flatten())
            .collect();
        Ok(Prepared {
            statement,
            plan: Some(plan),
            param_types,
            generation,
        })
    }

    async fn plan(&self, statement: &Statement) -> Result<LogicalPlan, PgError> {
        let state = self.ctx.state();
        if let Statement::ShowVariable { variable } = statement {
            let name = ObjectName::from(variable.clone())
                .to_string()
                .to_ascii_lowercase();
            if name == "statement_timeout" {
                let sql = format!(
                    "SELECT '{}' AS statement_timeout",
                    timeout::show(self.statement_timeout())
                );
                return Ok(state.create_logical_plan(&sql).await?);
            }
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
                return Ok(state.create_logical_plan(&sql).await?);
            }
        }
        Ok(state
            .statement_to_plan(DFStatement::Statement(Box::new(statement.clone())))
            .await?)
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
                let report = self.shared.engine.checkpoint().await?;
                tracing::debug!(segments = report.segments, rows = report.rows, "CHECKPOINT");
                return Ok(Response::Execution(Tag::new("CHECKPOINT")));
            }
            Command::Sql(statement) => statement.as_ref(),
        };
        match statement {
            s if is_query_like(&prepared.statement) => {
                // SHOW is planned again each time: a henge.* value is part of its plan.
                let plan = match &prepared.plan {
                    Some(plan)
                        if prepared.generation == self.shared.engine.generation()
                            && !matches!(s, Statement::ShowVariable { .. }) =>
                    {
                        plan.clone()
                    }
                    _ => self.plan(s).await?,
                };
                let plan = if params.is_empty() {
                    plan
                } else {
                    plan.with_param_values(params)?
                };
                self.run_plan(plan, formats).await
            }
            Statement::CreateTable(create) => {
                let def = ddl::table_def(create)?;
                match self.shared.engine.create_table(def) {
                    Ok(_) => Ok(Response::Execution(Tag::new("CREATE TABLE"))),
                    Err(henge_ingest::Error::Storage(henge_storage::Error::TableExists(_)))
                        if create.if_not_exists =>
                    {
                        Ok(Response::Execution(Tag::new("CREATE TABLE")))
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Statement::Drop {
                object_type: ObjectType::Table,
                if_exists,
                names,
                ..
            } => {
                let names = names
                    .iter()
                    .map(ddl::table_name)
                    .collect::<Result<Vec<_>, _>>()?;
                // Check every name first, so a bad one drops nothing.
                if !if_exists {
                    if let Some(missing) =
                        names.iter().find(|n| self.shared.engine.table(n).is_none())
                    {
                        return Err(PgError::new(
                            code::UNDEFINED_TABLE,
                            format!("table \"{missing}\" does not exist"),
                        ));
                    }
                }
                for name in &names {
                    match self.shared.engine.drop_table(name).await {
                        Ok(()) => {}
                        Err(henge_ingest::Error::Storage(henge_storage::Error::TableNotFound(
                            _,
                        ))) if *if_exists => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(Response::Execution(Tag::new("DROP TABLE")))
            }
            Statement::StartTransaction { .. } => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
            Statement::Commit { .. } => Ok(Response::TransactionEnd(Tag::new("COMMIT"))),
            Statement::Rollback { .. } => Ok(Response::TransactionEnd(Tag::new("ROLLBACK"))),
            Statement::Copy { .. } => self.copy(statement).await,
            Statement::Set(Set::SingleAssignment {
                variable, values, ..
            }) if variable
                .to_string()
                .eq_ignore_ascii_case("statement_timeout") =>
            {
                let value = match values.as_slice() {
                    [Expr::Value(v)] => match &v.value {
                        Value::SingleQuotedString(s) => s.clone(),
                        Value::Number(n, _) => n.to_string(),
                        other => other.to_string(),
                    },
                    [Expr::Identifier(i)] if i.value.eq_ignore_ascii_case("default") => "0".into(),
                    [Expr::UnaryOp {
                        op: UnaryOperator::Minus,
                        expr,
                    }] => format!("-{expr}"),
                    other => other
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                *self
                    .statement_timeout
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = timeout::parse(&value)?;
                Ok(Response::Execution(Tag::new("SET")))
            }
            Statement::Reset(ResetStatement {
                reset: Reset::ConfigurationParameter(name),
            }) if name.to_string().eq_ignore_ascii_case("statement_timeout") => {
                *self
                    .statement_timeout
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Duration::ZERO;
                Ok(Response::Execution(Tag::new("RESET")))
            }
            // DataFusion's own settings (`datafusion.execution.target_partitions` …) and
            // Henge's (`henge.pushdown`), for this session only. PostgreSQL's session
            // parameters are not supported yet.
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
                    Ok(_) => Ok(Response::Execution(Tag::new("SET"))),
                    Err(e) if e.to_string().contains("not found") => Err(PgError::new(
                        code::UNDEFINED_OBJECT,
                        format!("unrecognized configuration parameter \"{variable}\""),
                    )),
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

    fn statement_timeout(&self) -> Duration {
        *self
            .statement_timeout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a query to completion on the query runtime. Dropping the returned future (a
    /// cancel request) aborts the query there.
    pub async fn collect(&self, df: DataFrame) -> Result<Vec<RecordBatch>, PgError> {
        struct AbortOnDrop(tokio::task::JoinHandle<datafusion::error::Result<Vec<RecordBatch>>>);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.abort();
            }
        }
        let mut task = AbortOnDrop(self.shared.query_runtime.spawn(df.collect()));
        let finished = match self.statement_timeout() {
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

    /// Runs a plan to completion and encodes its rows.
    pub async fn run_plan(
        &self,
        plan: LogicalPlan,
        formats: Option<&Format>,
    ) -> Result<Response, PgError> {
        let tag = match &plan {
            LogicalPlan::Dml(_) => Some("INSERT"),
            LogicalPlan::Statement(_) => Some("SET"),
            _ => None,
        };
        let explain = matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_));
        let df = self.ctx.execute_logical_plan(plan).await?;
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = self.collect(df).await?;
        match tag {
            Some("INSERT") => {
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
            Some(tag) => Ok(Response::Execution(Tag::new(tag))),
            None => {
                let fields = Arc::new(fields(&schema, formats));
                let rows = encode_rows(&batches, &fields)?;
                let mut response =
                    QueryResponse::new(fields, stream::iter(rows.into_iter().map(Ok)));
                if explain {
                    response.set_command_tag("EXPLAIN");
                }
                Ok(Response::Query(response))
            }
        }
    }
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
            FieldInfo::new(f.name().clone(), None, None, pg_type(f.data_type()), format)
        })
        .collect()
}

/// Encodes batches as DataRow messages.
fn encode_rows(batches: &[RecordBatch], fields: &[FieldInfo]) -> Result<Vec<DataRow>, PgError> {
    let options = FormatOptions::default();
    let mut rows = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    for batch in batches {
        let encoders = batch
            .columns()
            .iter()
            .zip(fields)
            .map(|(array, field)| ColumnEncoder::new(array, field.format(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let mut data = bytes::BytesMut::with_capacity(16 * encoders.len());
            for encoder in &encoders {
                encoder.encode(row, &mut data);
            }
            rows.push(DataRow::new(data, encoders.len() as i16));
        }
    }
    Ok(rows)
}
