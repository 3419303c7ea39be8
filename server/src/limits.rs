//! Limits on what one statement may ask of the server, checked on its text before it is
//! parsed: its size (54000, "statement is too long") and how deep its expressions nest
//! (54001, "statement is too complex"), so that no statement overflows a thread's stack
//! or keeps the planner busy for minutes.
//!
//! Parsing builds a chain of binary operators (`1 + 1 + … + 1`) as a tree as deep as the
//! chain is long without recursing, but everything after it walks the tree recursively,
//! and DataFusion's planning of such a tree takes time cubic in its depth (each level
//! names and types its whole subtree): 200 operators take a few seconds in a debug build,
//! a fraction of one in a release build. The scan below measures, on the tokens, the
//! longest chain of operators any expression holds (a parenthesised part counts towards
//! the expression it is in) and refuses statements beyond [`MAX_OPERATOR_DEPTH`]. Chains
//! of AND and OR are exempt up to [`MAX_BOOLEAN_TERMS`]: they are rebalanced into trees
//! of logarithmic depth before anything else walks them (see
//! `henge_planner::pg::rewrite::balance_boolean_chains`), so a filter of thousands of
//! conditions plans quickly.

use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::{code, PgError};

/// The longest chain of operators (other than AND and OR) in one expression.
pub const MAX_OPERATOR_DEPTH: usize = 200;
/// The most AND or OR terms at one level of parentheses.
pub const MAX_BOOLEAN_TERMS: usize = 20_000;

/// The largest statement text, in bytes (`max_statement_size` in the configuration).
static MAX_STATEMENT_BYTES: AtomicUsize = AtomicUsize::new(16 << 20);

/// Sets the largest statement text the server takes (at start).
pub fn set_max_statement_bytes(bytes: usize) {
    MAX_STATEMENT_BYTES.store(bytes.max(1024), Ordering::Relaxed);
}

/// Checks a query string against the limits, tokenizing it (the session tokenizes once
/// and uses [`check_size`] and [`check_tokens`]).
#[cfg(test)]
pub fn check(sql: &str) -> Result<(), PgError> {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;
    check_size(sql)?;
    // A text that does not tokenize is the parser's to report.
    match Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize_with_location() {
        Ok(tokens) => check_tokens(&tokens),
        Err(_) => Ok(()),
    }
}

/// Checks the size of a query string (before anything else is done with it).
pub fn check_size(sql: &str) -> Result<(), PgError> {
    check_size_within(sql, MAX_STATEMENT_BYTES.load(Ordering::Relaxed))
}

fn check_size_within(sql: &str, max: usize) -> Result<(), PgError> {
    if sql.len() > max {
        return Err(too_long(sql.len(), max));
    }
    Ok(())
}

/// The largest statement text the server takes, in bytes.
pub fn max_statement_bytes() -> usize {
    MAX_STATEMENT_BYTES.load(Ordering::Relaxed)
}

/// The error for a statement of `bytes` bytes past the limit of `max`.
pub fn too_long(bytes: usize, max: usize) -> PgError {
    PgError::new(
        code::PROGRAM_LIMIT_EXCEEDED,
        format!("statement is too long: {bytes} bytes, the limit is {max} (max_statement_size)"),
    )
}

/// Checks how deep the expressions of a tokenized query string nest (the session hands
/// the same tokens to the parser afterwards).
pub fn check_tokens(tokens: &[TokenWithSpan]) -> Result<(), PgError> {
    let (operators, terms) = depth(tokens.iter().map(|t| &t.token));
    if operators > MAX_OPERATOR_DEPTH {
        return Err(too_complex(format!(
            "an expression chains {operators} operators; the limit is {MAX_OPERATOR_DEPTH}"
        )));
    }
    if terms > MAX_BOOLEAN_TERMS {
        return Err(too_complex(format!(
            "an expression has {terms} AND or OR terms; the limit is {MAX_BOOLEAN_TERMS}"
        )));
    }
    Ok(())
}

fn too_complex(detail: String) -> PgError {
    PgError::new(code::STATEMENT_TOO_COMPLEX, "statement is too complex").with_detail(detail)
}

/// One level of parentheses: the operators chained in the current expression, the most
/// any expression at this level chained, and the AND/OR terms.
#[derive(Default, Clone, Copy)]
struct Level {
    current: usize,
    deepest: usize,
    terms: usize,
}

/// The longest operator chain and the most AND/OR terms of any expression in `tokens`.
fn depth<'a>(tokens: impl Iterator<Item = &'a Token>) -> (usize, usize) {
    let mut levels = vec![Level::default()];
    let (mut operators, mut terms) = (0, 0);
    // Whether the previous significant token ends an operand (so that `-` is binary).
    let mut after_operand = false;
    for token in tokens {
        let top = levels.len() - 1;
        match token {
            Token::Whitespace(_) => continue,
            Token::LParen | Token::LBracket => {
                levels.push(Level::default());
                after_operand = false;
                continue;
            }
            Token::RParen | Token::RBracket => {
                if levels.len() > 1 {
                    let inner = levels.pop().unwrap_or_default();
                    let outer = levels.last_mut().expect("the outermost level stays");
                    outer.current += inner.deepest.max(inner.current);
                    outer.deepest = outer.deepest.max(outer.current);
                    operators = operators.max(outer.deepest);
                }
                after_operand = true;
                continue;
            }
            Token::Comma | Token::SemiColon => {
                let level = &mut levels[top];
                level.current = 0;
                level.terms = 0;
                after_operand = false;
                continue;
            }
            Token::Word(w) if w.quote_style.is_none() => match w.keyword {
                Keyword::AND | Keyword::OR => {
                    let level = &mut levels[top];
                    level.terms += 1;
                    level.current = 0;
                    terms = terms.max(level.terms);
                    after_operand = false;
                    continue;
                }
                Keyword::SELECT
                | Keyword::FROM
                | Keyword::WHERE
                | Keyword::GROUP
                | Keyword::HAVING
                | Keyword::ORDER
                | Keyword::LIMIT
                | Keyword::OFFSET
                | Keyword::VALUES
                | Keyword::WHEN
                | Keyword::THEN
                | Keyword::ELSE
                | Keyword::END
                | Keyword::ON
                | Keyword::SET
                | Keyword::RETURNING
                | Keyword::UNION
                | Keyword::INTERSECT
                | Keyword::EXCEPT => {
                    let level = &mut levels[top];
                    level.current = 0;
                    level.terms = 0;
                    after_operand = false;
                    continue;
                }
                Keyword::NOT | Keyword::CASE => {
                    after_operand = false;
                    continue;
                }
                _ => {
                    after_operand = true;
                    continue;
                }
            },
            Token::Word(_)
            | Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::DollarQuotedString(_)
            | Token::Placeholder(_) => {
                after_operand = true;
                continue;
            }
            _ => {}
        }
        // An operator: binary after an operand (prefix operators nest through the
        // parser's own recursion limit).
        if after_operand {
            let level = &mut levels[top];
            level.current += 1;
            level.deepest = level.deepest.max(level.current);
            operators = operators.max(level.deepest);
        }
        after_operand = false;
    }
    (operators, terms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn chain(sql: &str) -> (usize, usize) {
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize()
            .unwrap();
        depth(tokens.iter())
    }

    #[test]
    fn chains_are_measured_per_expression() {
        assert_eq!(chain("SELECT 1 + 2 * 3").0, 2);
        assert_eq!(chain("SELECT 1 + 2, 3 + 4 + 5").0, 2);
        assert_eq!(chain("SELECT (1 + 2 + 3) * 4").0, 3);
        assert_eq!(chain("SELECT -1, -2, f(-3)").0, 0);
        assert_eq!(
            chain("SELECT * FROM t WHERE a = 1 AND b = 2 AND c = 3"),
            (1, 2)
        );
        assert_eq!(chain("INSERT INTO t VALUES (1, -2), (3, -4)").0, 0);
        assert_eq!(chain("SELECT a::text || 'x'").0, 2);
    }

    #[test]
    fn deep_statements_are_refused_before_parsing() {
        let deep = format!("SELECT 1{}", " + 1".repeat(MAX_OPERATOR_DEPTH + 1));
        let e = check(&deep).unwrap_err();
        assert_eq!(
            (e.code.code(), e.message.as_str()),
            ("54001", "statement is too complex")
        );
        let ok = format!("SELECT 1{}", " + 1".repeat(MAX_OPERATOR_DEPTH));
        assert!(check(&ok).is_ok());
        let nested = format!("SELECT {}1{}", "(1 + ".repeat(150), ")".repeat(150));
        assert!(check(&nested).is_ok(), "150 deep: within the limit");
        let nested = format!("SELECT {}1{}", "(1 + ".repeat(250), ")".repeat(250));
        assert!(check(&nested).is_err(), "parentheses add up");
        let wide = format!(
            "SELECT 1 WHERE true{}",
            " OR x = 1".repeat(MAX_BOOLEAN_TERMS - 1)
        );
        assert!(check(&wide).is_ok());
        let wider = format!(
            "SELECT 1 WHERE true{}",
            " OR x = 1".repeat(MAX_BOOLEAN_TERMS + 1)
        );
        assert!(check(&wider).is_err());
    }

    #[test]
    fn long_statements_are_refused() {
        let e = check_size_within(&format!("SELECT '{}'", "x".repeat(5000)), 4096).unwrap_err();
        assert_eq!(e.code, "54000");
        assert!(check_size_within("SELECT 1", 4096).is_ok());
    }
}
