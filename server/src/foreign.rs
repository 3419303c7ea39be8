//! The one place Henge reads the wording of other projects' errors.
//!
//! Henge's own errors carry their SQLSTATE from where they are defined (see
//! `henge_storage::sqlstate`). DataFusion's planning and execution errors, some of Arrow's
//! and sqlparser's carry only text; the ones clients act on are recognised here, by their
//! words, in one table. Each entry names a statement that makes the library raise it, and
//! the test below runs every one: a dependency upgrade that rewords an error fails that
//! test instead of silently changing the code clients see. Anything not in the table
//! keeps the code of its kind (42000 for a planning error, XX000 for an execution error,
//! 22P02 for a failed cast).

use henge_storage::sqlstate as state;
use henge_storage::SqlState;

use crate::error::PgError;

/// What kind of foreign error the text comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `DataFusionError::Plan`.
    Plan,
    /// `DataFusionError::Execution`.
    Execution,
    /// `DataFusionError::Configuration`.
    Configuration,
    /// Arrow's `CastError` and `ParseError`.
    ArrowCast,
    /// Arrow's `InvalidArgumentError`.
    ArrowInvalidArgument,
    /// Arrow's `ComputeError`.
    ArrowCompute,
    /// sqlparser's `ParserError`.
    Parser,
}

/// How an entry recognises a message.
#[derive(Debug, Clone, Copy)]
enum Words {
    Prefix(&'static str),
    Contains(&'static str),
    /// `table '<name>' not found`, with the name in between.
    Around(&'static str, &'static str),
}

/// What the client is told instead.
#[derive(Debug, Clone, Copy)]
enum Say {
    /// The library's message as it is.
    Same,
    /// PostgreSQL's message.
    Instead(&'static str),
    /// PostgreSQL's message, with the library's as the detail.
    InsteadWithDetail(&'static str),
    /// `relation "<name>" does not exist`, from the name the words surround.
    MissingRelation,
}

/// One recognised foreign error.
#[derive(Debug)]
pub struct Foreign {
    pub source: Source,
    words: Words,
    pub state: SqlState,
    say: Say,
    /// A statement that makes the library raise this error (run by the test).
    #[cfg_attr(not(test), allow(dead_code))]
    pub example: &'static str,
}

const fn entry(
    source: Source,
    words: Words,
    state: SqlState,
    say: Say,
    example: &'static str,
) -> Foreign {
    Foreign {
        source,
        words,
        state,
        say,
        example,
    }
}

use Say::*;
use Source::*;
use Words::*;

/// Every foreign error Henge gives a code by its words.
pub const TABLE: &[Foreign] = &[
    entry(
        Plan,
        Around("table '", "' not found"),
        state::UNDEFINED_TABLE,
        MissingRelation,
        "SELECT * FROM no_such_table",
    ),
    entry(
        Plan,
        Contains("Invalid function"),
        state::UNDEFINED_FUNCTION,
        Same,
        "SELECT no_such_function(1)",
    ),
    entry(
        Plan,
        Contains("No function matches"),
        state::UNDEFINED_FUNCTION,
        Same,
        "SELECT array_append([1], DATE '2024-01-01')",
    ),
    // VALUES rows of types Henge marks differently (json and jsonb).
    entry(
        Plan,
        Prefix("Inconsistent metadata across values list"),
        state::DATATYPE_MISMATCH,
        InsteadWithDetail("VALUES types cannot be matched; cast the rows to one type"),
        "VALUES ('{}'::json), ('{}'::jsonb)",
    ),
    // PostgreSQL: operator does not exist.
    entry(
        Plan,
        Prefix("Cannot coerce arithmetic expression"),
        state::UNDEFINED_FUNCTION,
        Same,
        "SELECT DATE '2024-01-01' - true",
    ),
    entry(
        Plan,
        Prefix("There isn't a common type to coerce"),
        state::UNDEFINED_FUNCTION,
        Same,
        "SELECT 'a' LIKE 1",
    ),
    // A negative row count, written or given as a parameter.
    entry(
        Plan,
        Prefix("LIMIT must be >= 0"),
        state::INVALID_ROW_COUNT_IN_LIMIT_CLAUSE,
        Instead("LIMIT must not be negative"),
        "SELECT 1 LIMIT -1",
    ),
    entry(
        Plan,
        Prefix("OFFSET must be >=0"),
        state::INVALID_ROW_COUNT_IN_RESULT_OFFSET_CLAUSE,
        Instead("OFFSET must not be negative"),
        "SELECT 1 OFFSET -1",
    ),
    // PostgreSQL: CASE types … cannot be matched.
    entry(
        Plan,
        Prefix("Failed to coerce then"),
        state::DATATYPE_MISMATCH,
        Same,
        "SELECT CASE WHEN true THEN ARRAY[1] ELSE 1 END",
    ),
    entry(
        Execution,
        Prefix("Scalar subquery returned more than one row"),
        state::CARDINALITY_VIOLATION,
        Instead("more than one row returned by a subquery used as an expression"),
        "SELECT (SELECT x FROM (VALUES (1), (2)) t(x))",
    ),
    entry(
        Configuration,
        Contains("not found"),
        state::UNDEFINED_OBJECT,
        Same,
        "SET datafusion.execution.no_such_option = 1",
    ),
    entry(
        ArrowCast,
        Contains("Can't cast value"),
        state::NUMERIC_VALUE_OUT_OF_RANGE,
        Same,
        "SELECT arrow_cast(300, 'Int8')",
    ),
    entry(
        ArrowInvalidArgument,
        Contains("is too large to store in a Decimal"),
        state::NUMERIC_VALUE_OUT_OF_RANGE,
        InsteadWithDetail("numeric field overflow"),
        "SELECT arrow_cast(123456.7, 'Decimal128(4, 1)')",
    ),
    entry(
        ArrowCompute,
        Contains("overflow"),
        state::NUMERIC_VALUE_OUT_OF_RANGE,
        Same,
        "SELECT abs(arrow_cast(-128, 'Int8'))",
    ),
    // A window frame's EXCLUDE clause, which sqlparser does not read: PostgreSQL's syntax
    // that Henge does not support, not a syntax error.
    entry(
        Parser,
        Contains("found: EXCLUDE"),
        state::FEATURE_NOT_SUPPORTED,
        Instead("EXCLUDE in a window frame is not supported"),
        "SELECT sum(x) OVER (ORDER BY x ROWS BETWEEN 1 PRECEDING AND CURRENT ROW EXCLUDE TIES) FROM t",
    ),
];

impl Foreign {
    /// The name between the words of an `Around` entry, when `text` is one of them.
    fn matches<'t>(&self, source: Source, text: &'t str) -> Option<&'t str> {
        if self.source != source {
            return None;
        }
        match self.words {
            Prefix(w) => text.starts_with(w).then_some(text),
            Contains(w) => text.contains(w).then_some(text),
            Around(before, after) => text.strip_prefix(before)?.strip_suffix(after),
        }
    }
}

/// The error a client sees for a foreign error's text, when the table knows it.
pub fn recognise(source: Source, text: &str) -> Option<PgError> {
    TABLE.iter().find_map(|e| {
        let inner = e.matches(source, text)?;
        Some(match e.say {
            Same => PgError::new(e.state, text),
            Instead(message) => PgError::new(e.state, message),
            InsteadWithDetail(message) => PgError::new(e.state, message).with_detail(text),
            MissingRelation => {
                let short = inner.rsplit('.').next().unwrap_or(inner);
                PgError::new(e.state, format!("relation \"{short}\" does not exist"))
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::error::ArrowError;
    use datafusion::error::DataFusionError;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    /// The innermost foreign error of `e`: its source and text.
    fn innermost(e: &DataFusionError) -> Option<(Source, String)> {
        fn arrow(e: &ArrowError) -> Option<(Source, String)> {
            match e {
                ArrowError::CastError(m) | ArrowError::ParseError(m) => {
                    Some((ArrowCast, m.clone()))
                }
                ArrowError::InvalidArgumentError(m) => Some((ArrowInvalidArgument, m.clone())),
                ArrowError::ComputeError(m) => Some((ArrowCompute, m.clone())),
                ArrowError::ExternalError(inner) => {
                    innermost(inner.downcast_ref::<DataFusionError>()?)
                }
                _ => None,
            }
        }
        match e {
            DataFusionError::Plan(m) => Some((Plan, m.clone())),
            DataFusionError::Execution(m) => Some((Execution, m.clone())),
            DataFusionError::Configuration(m) => Some((Configuration, m.clone())),
            DataFusionError::ArrowError(a, _) => arrow(a),
            DataFusionError::External(inner) => arrow(inner.downcast_ref::<ArrowError>()?),
            DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
                innermost(inner)
            }
            DataFusionError::Shared(inner) => innermost(inner),
            DataFusionError::Collection(all) => all.first().and_then(innermost),
            _ => None,
        }
    }

    /// Every entry's example raises, in Henge's own query context, an error this very
    /// entry recognises: the libraries still word them so.
    #[tokio::test(flavor = "multi_thread")]
    async fn every_entry_is_raised_by_its_example_with_these_words() {
        let dir = tempfile::tempdir().unwrap();
        let session = crate::session::tests::session(dir.path());
        let mut failures = Vec::new();
        for (i, entry) in TABLE.iter().enumerate() {
            let raised = if entry.source == Parser {
                Parser::new(&PostgreSqlDialect {})
                    .try_with_sql(entry.example)
                    .and_then(|mut p| p.parse_statements())
                    .err()
                    .map(|e| (Parser, e.to_string()))
            } else {
                let outcome = match session.ctx.sql(entry.example).await {
                    Ok(df) => df.collect().await.map(|_| ()),
                    Err(e) => Err(e),
                };
                outcome
                    .err()
                    .map(|e| innermost(&e).unwrap_or((Plan, format!("not a foreign error: {e}"))))
            };
            let Some((source, text)) = raised else {
                failures.push(format!("{}: no error", entry.example));
                continue;
            };
            let found = TABLE
                .iter()
                .position(|e| e.matches(source, &text).is_some());
            if found != Some(i) {
                failures.push(format!(
                    "{}: raised {source:?} \"{text}\", which entry {found:?} recognises, not {i}",
                    entry.example
                ));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn a_missing_table_is_named_as_postgresql_names_it() {
        let e = recognise(Plan, "table 'henge.public.nope' not found").unwrap();
        assert_eq!(
            (e.code, e.message.as_str()),
            (state::UNDEFINED_TABLE, "relation \"nope\" does not exist")
        );
        assert!(recognise(Plan, "something else entirely").is_none());
        assert!(recognise(Execution, "table 'x' not found").is_none());
    }
}
