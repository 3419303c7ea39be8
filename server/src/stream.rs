//! Streams in SQL: Kafka sources and the pipelines that feed tables from them.
//!
//! ```sql
//! CREATE SOURCE clicks_in (
//!     ts TIMESTAMPTZ PATH '$.time',          -- a JSON path into the record's value
//!     user_id TEXT PATH '$.user.id',
//!     url TEXT,                              -- by default the member of its own name
//!     k TEXT KAFKA KEY, p INTEGER KAFKA PARTITION,
//!     o BIGINT KAFKA OFFSET, kt TIMESTAMPTZ KAFKA TIMESTAMP
//! ) WITH (connector = 'kafka', brokers = 'host:9092', topic = 'clicks',
//!         start = 'earliest' | 'latest' | '2024-06-01 00:00:00+00',
//!         format = 'json' | 'csv', delimiter = ',',
//!         on_data_loss = 'fail' | 'earliest' | 'latest',
//!         security_protocol = 'sasl_ssl', sasl_mechanism = 'SCRAM-SHA-256',
//!         sasl_username = '…', sasl_password = '…', ssl_ca_location = '…');
//! CREATE PIPELINE clicks_load [WITH (on_error = 'skip' | 'stop')]
//!     AS INSERT INTO clicks SELECT ts, lower(user_id), … FROM clicks_in WHERE …;
//! ALTER PIPELINE clicks_load PAUSE | RESUME
//!     | RESET OFFSETS [TO EARLIEST | LATEST | '<timestamp>'];
//! DROP PIPELINE [IF EXISTS] clicks_load;
//! DROP SOURCE [IF EXISTS] clicks_in;
//! ```
//!
//! The statements are Henge's own words around sqlparser's pieces (names, data types,
//! string literals, `WITH` options, the INSERT), parsed here before sqlparser sees the rest,
//! as `CHECKPOINT` is: no fork of the parser.

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::ast::{ObjectName, SetExpr, Statement, TableFactor, TableObject};
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use henge_storage::stream::{
    KafkaOptions, OnDataLoss, OnError, PipelineDef, RecordField, RecordFormat, SourceColumn,
    SourceDef, StartAt,
};
use pgwire::api::results::{Response, Tag};

use crate::error::{code, PgError};
use crate::session::Session;

/// One of the statements above.
#[derive(Debug, Clone)]
pub enum StreamCommand {
    CreateSource {
        name: String,
        columns: Vec<SourceColumn>,
        options: Vec<(String, String)>,
    },
    DropSource {
        name: String,
        if_exists: bool,
    },
    CreatePipeline {
        name: String,
        options: Vec<(String, String)>,
        insert: Box<Statement>,
    },
    AlterPipeline {
        name: String,
        action: PipelineAction,
    },
    DropPipeline {
        name: String,
        if_exists: bool,
    },
}

#[derive(Debug, Clone)]
pub enum PipelineAction {
    Pause,
    Resume,
    /// Read again from here, every partition.
    Reset(StartAt),
}

/// Whether the statement next in `parser` is one of these.
pub fn starts(parser: &Parser) -> bool {
    let word = |n: usize| match parser.peek_nth_token(n).token {
        Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
        _ => String::new(),
    };
    match word(0).as_str() {
        "CREATE" | "DROP" => matches!(word(1).as_str(), "SOURCE" | "PIPELINE"),
        "ALTER" => word(1) == "PIPELINE",
        _ => false,
    }
}

fn syntax(e: ParserError) -> PgError {
    PgError::syntax(e.to_string())
}

/// The next word, upper-cased, if it is an unquoted word.
fn peek_word(parser: &Parser) -> Option<String> {
    match parser.peek_token().token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

fn expect_word(parser: &mut Parser, word: &str) -> Result<(), PgError> {
    match peek_word(parser) {
        Some(w) if w == word => {
            parser.next_token();
            Ok(())
        }
        _ => Err(PgError::syntax(format!(
            "syntax error at or near \"{}\": expected {word}",
            parser.peek_token().token
        ))),
    }
}

fn name(parser: &mut Parser) -> Result<String, PgError> {
    let name: ObjectName = parser.parse_object_name(false).map_err(syntax)?;
    crate::ddl::table_name(&name)
}

fn if_exists(parser: &mut Parser) -> bool {
    parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS])
}

fn string(parser: &mut Parser) -> Result<String, PgError> {
    parser.parse_literal_string().map_err(syntax)
}

fn options(parser: &mut Parser) -> Result<Vec<(String, String)>, PgError> {
    let options = parser.parse_options(Keyword::WITH).map_err(syntax)?;
    options.iter().map(crate::ddl::option_pair).collect()
}

/// Parses the statement [`starts`] recognised.
pub fn parse(parser: &mut Parser) -> Result<StreamCommand, PgError> {
    let verb = peek_word(parser).unwrap_or_default();
    parser.next_token();
    let object = peek_word(parser).unwrap_or_default();
    parser.next_token();
    match (verb.as_str(), object.as_str()) {
        ("CREATE", "SOURCE") => {
            let name = name(parser)?;
            parser.expect_token(&Token::LParen).map_err(syntax)?;
            let mut columns = Vec::new();
            loop {
                columns.push(source_column(parser)?);
                if !parser.consume_token(&Token::Comma) {
                    break;
                }
            }
            parser.expect_token(&Token::RParen).map_err(syntax)?;
            let options = options(parser)?;
            Ok(StreamCommand::CreateSource {
                name,
                columns,
                options,
            })
        }
        ("DROP", "SOURCE") => {
            let if_exists = if_exists(parser);
            Ok(StreamCommand::DropSource {
                name: name(parser)?,
                if_exists,
            })
        }
        ("CREATE", "PIPELINE") => {
            let name = name(parser)?;
            let options = options(parser)?;
            parser.expect_keyword(Keyword::AS).map_err(syntax)?;
            let insert = parser.parse_statement().map_err(syntax)?;
            if !matches!(insert, Statement::Insert(_)) {
                return Err(PgError::syntax(
                    "a pipeline is CREATE PIPELINE name AS INSERT INTO table SELECT … FROM source",
                ));
            }
            Ok(StreamCommand::CreatePipeline {
                name,
                options,
                insert: Box::new(insert),
            })
        }
        ("ALTER", "PIPELINE") => {
            let name = name(parser)?;
            let action = match peek_word(parser).as_deref() {
                Some("PAUSE") => PipelineAction::Pause,
                Some("RESUME") => PipelineAction::Resume,
                Some("RESET") => {
                    parser.next_token();
                    expect_word(parser, "OFFSETS")?;
                    let to = match peek_word(parser).as_deref() {
                        Some("TO") => {
                            parser.next_token();
                            match peek_word(parser).as_deref() {
                                Some("EARLIEST") => StartAt::Earliest,
                                Some("LATEST") => StartAt::Latest,
                                _ => {
                                    let text = string(parser)?;
                                    return Ok(StreamCommand::AlterPipeline {
                                        name,
                                        action: PipelineAction::Reset(start_at(&text)?),
                                    });
                                }
                            }
                        }
                        _ => {
                            return Ok(StreamCommand::AlterPipeline {
                                name,
                                action: PipelineAction::Reset(StartAt::Earliest),
                            })
                        }
                    };
                    PipelineAction::Reset(to)
                }
                _ => {
                    return Err(PgError::syntax(
                        "ALTER PIPELINE takes PAUSE, RESUME or RESET OFFSETS [TO EARLIEST | LATEST | 'timestamp']",
                    ))
                }
            };
            parser.next_token();
            Ok(StreamCommand::AlterPipeline { name, action })
        }
        ("DROP", "PIPELINE") => {
            let if_exists = if_exists(parser);
            Ok(StreamCommand::DropPipeline {
                name: name(parser)?,
                if_exists,
            })
        }
        _ => Err(PgError::syntax(format!(
            "syntax error at or near \"{verb}\""
        ))),
    }
}

/// `name type [PATH 'json path' | KAFKA KEY | PARTITION | OFFSET | TIMESTAMP]`.
fn source_column(parser: &mut Parser) -> Result<SourceColumn, PgError> {
    let ident = parser.parse_identifier().map_err(syntax)?;
    let name = crate::ddl::normalize(&ident);
    let data_type = parser.parse_data_type().map_err(syntax)?;
    let ty = crate::ddl::column_type(&data_type)?;
    let field = match peek_word(parser).as_deref() {
        Some("PATH") => {
            parser.next_token();
            let path = string(parser)?;
            if henge_ingest::kafka::parse_path(&path).is_none() {
                return Err(PgError::new(
                    code::INVALID_PARAMETER_VALUE,
                    format!(
                        "invalid JSON path \"{path}\" for column \"{name}\": write $, $.member, $['member'] or $[index] steps"
                    ),
                ));
            }
            RecordField::Value { path: Some(path) }
        }
        Some("KAFKA") => {
            parser.next_token();
            let what = peek_word(parser).unwrap_or_default();
            parser.next_token();
            let (field, fits) = match what.as_str() {
                "KEY" => (RecordField::Key, true),
                "PARTITION" => (
                    RecordField::Partition,
                    matches!(
                        ty,
                        henge_storage::ColumnType::Integer | henge_storage::ColumnType::BigInt
                    ),
                ),
                "OFFSET" => (RecordField::Offset, ty == henge_storage::ColumnType::BigInt),
                "TIMESTAMP" => (RecordField::Timestamp, ty.is_timestamp()),
                other => {
                    return Err(PgError::syntax(format!(
                        "KAFKA takes KEY, PARTITION, OFFSET or TIMESTAMP, not \"{other}\""
                    )))
                }
            };
            if !fits {
                return Err(PgError::new(
                    code::DATATYPE_MISMATCH,
                    format!(
                        "column \"{name}\" cannot hold the record's {}: it is {}",
                        what.to_lowercase(),
                        ty.sql_name()
                    ),
                ));
            }
            field
        }
        _ => RecordField::Value { path: None },
    };
    Ok(SourceColumn { name, ty, field })
}

/// `earliest`, `latest` or a timestamp (with time zone; UTC without one).
fn start_at(text: &str) -> Result<StartAt, PgError> {
    match text.to_ascii_lowercase().as_str() {
        "earliest" => Ok(StartAt::Earliest),
        "latest" => Ok(StartAt::Latest),
        _ => henge_ingest::value::parse_timestamptz(text, 0)
            .map(|micros| StartAt::Time { micros })
            .map_err(|_| {
                PgError::new(
                    code::INVALID_PARAMETER_VALUE,
                    format!("invalid start \"{text}\": give earliest, latest or a timestamp"),
                )
            }),
    }
}

/// A source's definition from its options.
fn source_def(
    name: String,
    columns: Vec<SourceColumn>,
    options: &[(String, String)],
) -> Result<SourceDef, PgError> {
    let invalid = |message: String| PgError::new(code::INVALID_PARAMETER_VALUE, message);
    let mut given: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, value) in options {
        if given.insert(key, value).is_some() {
            return Err(invalid(format!("option \"{key}\" is given twice")));
        }
    }
    let mut take = |key: &str| given.remove(key).map(str::to_owned);
    match take("connector").as_deref() {
        Some(c) if c.eq_ignore_ascii_case("kafka") => {}
        Some(other) => {
            return Err(PgError::unsupported(format!(
                "connector \"{other}\" is not supported: Henge reads Kafka"
            )))
        }
        None => return Err(invalid("a source needs connector = 'kafka'".into())),
    }
    let brokers =
        take("brokers").ok_or_else(|| invalid("a source needs brokers = 'host:port'".into()))?;
    let topic = take("topic").ok_or_else(|| invalid("a source needs topic = '…'".into()))?;
    let start = match take("start") {
        Some(text) => start_at(&text)?,
        None => StartAt::Earliest,
    };
    let format = match take("format").map(|f| f.to_ascii_lowercase()).as_deref() {
        None | Some("json") => RecordFormat::Json,
        Some("csv") => {
            let delimiter = match take("delimiter").as_deref() {
                None => b',',
                Some(d) if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
                Some(d) => {
                    return Err(invalid(format!(
                        "delimiter \"{d}\" must be one ASCII character"
                    )))
                }
            };
            RecordFormat::Csv { delimiter }
        }
        Some(other) => {
            return Err(invalid(format!(
                "unrecognized format \"{other}\": give json or csv"
            )))
        }
    };
    let on_data_loss = match take("on_data_loss")
        .map(|f| f.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("fail") => OnDataLoss::Fail,
        Some("earliest") => OnDataLoss::Earliest,
        Some("latest") => OnDataLoss::Latest,
        Some(other) => {
            return Err(invalid(format!(
                "invalid on_data_loss \"{other}\": give fail, earliest or latest"
            )))
        }
    };
    let mut security = BTreeMap::new();
    for (option, setting) in [
        ("security_protocol", "security.protocol"),
        ("sasl_mechanism", "sasl.mechanism"),
        ("sasl_username", "sasl.username"),
        ("sasl_password", "sasl.password"),
        ("ssl_ca_location", "ssl.ca.location"),
        ("ssl_certificate_location", "ssl.certificate.location"),
        ("ssl_key_location", "ssl.key.location"),
        ("ssl_key_password", "ssl.key.password"),
    ] {
        if let Some(value) = take(option) {
            security.insert(setting.to_owned(), value);
        }
    }
    if let Some((key, _)) = given.into_iter().next() {
        return Err(invalid(format!("unrecognized source option \"{key}\"")));
    }
    let csv = matches!(format, RecordFormat::Csv { .. });
    if let Some(c) = columns
        .iter()
        .find(|c| csv && matches!(&c.field, RecordField::Value { path: Some(_) }))
    {
        return Err(invalid(format!(
            "column \"{}\" has a JSON path, but the source's format is csv",
            c.name
        )));
    }
    Ok(SourceDef {
        id: 0,
        name,
        columns,
        kafka: KafkaOptions {
            brokers,
            topic,
            start,
            security,
            on_data_loss,
        },
        format,
    })
}

/// Runs one of the statements.
pub async fn execute(session: &Session, command: &StreamCommand) -> Result<Response, PgError> {
    crate::privileges::check_superuser(session, "managing sources and pipelines")?;
    let engine = &session.shared.engine;
    let pipelines = &session.shared.pipelines;
    match command {
        StreamCommand::CreateSource {
            name,
            columns,
            options,
        } => {
            let def = source_def(name.clone(), columns.clone(), options)?;
            engine.create_source(def)?;
            Ok(Response::Execution(Tag::new("CREATE SOURCE")))
        }
        StreamCommand::DropSource { name, if_exists } => {
            if engine.source(name).is_none() && *if_exists {
                session.notice(format!("source \"{name}\" does not exist, skipping"));
                return Ok(Response::Execution(Tag::new("DROP SOURCE")));
            }
            engine.drop_source(name)?;
            Ok(Response::Execution(Tag::new("DROP SOURCE")))
        }
        StreamCommand::CreatePipeline {
            name,
            options,
            insert,
        } => {
            let def = pipeline_def(session, name, options, insert)?;
            let source = engine.source(&def.source).ok_or_else(|| {
                PgError::new(
                    code::UNDEFINED_TABLE,
                    format!("source \"{}\" does not exist", def.source),
                )
            })?;
            // Checked now: a statement that does not plan is refused, not run.
            crate::pipeline::plan(engine, &session.shared.query_env, &def, &source).await?;
            let def = engine.create_pipeline(def)?;
            pipelines.start(def);
            Ok(Response::Execution(Tag::new("CREATE PIPELINE")))
        }
        StreamCommand::AlterPipeline { name, action } => {
            let def = engine.pipeline(name).ok_or_else(|| no_pipeline(name))?;
            match action {
                PipelineAction::Pause => {
                    stop(session, def.id).await;
                    engine.set_paused(name, true)?;
                    engine.report(def.id, |s| s.state = "paused");
                }
                PipelineAction::Resume => {
                    let def = engine.set_paused(name, false)?;
                    pipelines.start(def);
                }
                PipelineAction::Reset(to) => {
                    stop(session, def.id).await;
                    let source = engine.source(&def.source).ok_or_else(|| {
                        PgError::new(
                            code::UNDEFINED_TABLE,
                            format!("source \"{}\" does not exist", def.source),
                        )
                    })?;
                    let at = *to;
                    let offsets = tokio::task::spawn_blocking(move || {
                        let reader = henge_ingest::kafka::TopicReader::connect(
                            &source,
                            "henge-reset-offsets",
                        )?;
                        let partitions = reader.partitions()?;
                        reader.start_offsets(&partitions, at)
                    })
                    .await
                    .map_err(|e| PgError::new(code::INTERNAL_ERROR, e.to_string()))?
                    .map_err(|e| {
                        PgError::new(
                            code::IO_ERROR,
                            format!("cannot read the topic's offsets: {e}"),
                        )
                    })?;
                    engine.reset_offsets(&def, &offsets).await?;
                    if !def.paused {
                        pipelines.start(def);
                    }
                }
            }
            Ok(Response::Execution(Tag::new("ALTER PIPELINE")))
        }
        StreamCommand::DropPipeline { name, if_exists } => {
            let Some(def) = engine.pipeline(name) else {
                if *if_exists {
                    session.notice(format!("pipeline \"{name}\" does not exist, skipping"));
                    return Ok(Response::Execution(Tag::new("DROP PIPELINE")));
                }
                return Err(no_pipeline(name));
            };
            stop(session, def.id).await;
            engine.drop_pipeline(name)?;
            Ok(Response::Execution(Tag::new("DROP PIPELINE")))
        }
    }
}

fn no_pipeline(name: &str) -> PgError {
    PgError::new(
        code::UNDEFINED_OBJECT,
        format!("pipeline \"{name}\" does not exist"),
    )
}

/// Stops pipeline `id`'s thread, off the runtime.
async fn stop(session: &Session, id: u64) {
    let pipelines = session.shared.pipelines.clone();
    let _ = tokio::task::spawn_blocking(move || pipelines.stop(id)).await;
}

/// A pipeline's definition from its statement: the table it inserts into, the one source
/// its query reads, and its options.
fn pipeline_def(
    session: &Session,
    name: &str,
    options: &[(String, String)],
    insert: &Statement,
) -> Result<PipelineDef, PgError> {
    let Statement::Insert(ast) = insert else {
        return Err(PgError::syntax("a pipeline's statement must be an INSERT"));
    };
    let TableObject::TableName(table) = &ast.table else {
        return Err(PgError::unsupported(
            "a pipeline inserts into a table by name",
        ));
    };
    let table = crate::ddl::table_name(table)?;
    if session.shared.engine.table(&table).is_none() {
        return Err(PgError::new(
            code::UNDEFINED_TABLE,
            format!("relation \"{table}\" does not exist"),
        ));
    }
    if ast.returning.is_some() || ast.on.is_some() {
        return Err(PgError::unsupported(
            "a pipeline's INSERT takes no RETURNING or ON CONFLICT",
        ));
    }
    let source = ast
        .source
        .as_ref()
        .and_then(|query| match query.body.as_ref() {
            SetExpr::Select(select) => match select.from.as_slice() {
                [from] if from.joins.is_empty() => match &from.relation {
                    TableFactor::Table { name, .. } => crate::ddl::table_name(name).ok(),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        })
        .filter(|s| session.shared.engine.source(s).is_some())
        .ok_or_else(|| {
            PgError::unsupported(
                "a pipeline's INSERT reads one source: INSERT INTO table SELECT … FROM source [WHERE …]",
            )
        })?;
    let mut on_error = OnError::Skip;
    for (key, value) in options {
        match (key.as_str(), value.to_ascii_lowercase().as_str()) {
            ("on_error", "skip") => on_error = OnError::Skip,
            ("on_error", "stop") => on_error = OnError::Stop,
            ("on_error", other) => {
                return Err(PgError::new(
                    code::INVALID_PARAMETER_VALUE,
                    format!("invalid on_error \"{other}\": give skip or stop"),
                ))
            }
            (other, _) => {
                return Err(PgError::new(
                    code::INVALID_PARAMETER_VALUE,
                    format!("unrecognized pipeline option \"{other}\""),
                ))
            }
        }
    }
    Ok(PipelineDef {
        id: 0,
        name: name.to_owned(),
        source,
        table,
        query: insert.to_string(),
        on_error,
        paused: false,
    })
}
