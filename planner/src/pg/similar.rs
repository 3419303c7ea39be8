//! `SIMILAR TO` as PostgreSQL means it.
//!
//! DataFusion takes a `SIMILAR TO` pattern for a regular expression as it stands, so
//! `'abc' SIMILAR TO 'a%'` is false there. PostgreSQL translates the SQL pattern (`%`, `_`,
//! `|`, `(…)`, bracket expressions, an escape character) into a regular expression
//! anchored at both ends with its function `similar_to_escape`, then matches with `~`.
//! Henge does the same: [`rewrite`] turns `x [NOT] SIMILAR TO p [ESCAPE e]` into
//! `x [!]~ similar_to_escape(p[, e])`, and [`similar_to_escape`] is PostgreSQL's function,
//! callable on its own too.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::Volatility;
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, Statement, VisitMut, VisitorMut};

use super::functions::RowFunction;
use super::SqlStateError;

/// Rewrites every `SIMILAR TO` of `statement` into a regular-expression match.
pub fn rewrite(mut statement: Statement) -> Statement {
    struct Similar;
    impl VisitorMut for Similar {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let Expr::SimilarTo {
                negated,
                expr: subject,
                pattern,
                escape_char,
            } = expr
            else {
                return ControlFlow::Continue(());
            };
            let mut args = vec![pattern.as_ref().clone()];
            if let Some(escape) = escape_char {
                args.push(Expr::Value(escape.clone()));
            }
            let regex = super::rewrite::call("similar_to_escape", args);
            *expr = Expr::Nested(Box::new(Expr::BinaryOp {
                left: subject.clone(),
                op: match negated {
                    true => BinaryOperator::PGRegexNotMatch,
                    false => BinaryOperator::PGRegexMatch,
                },
                right: Box::new(regex),
            }));
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Similar);
    statement
}

/// Registers `similar_to_escape(pattern [, escape])`.
pub fn register(ctx: &SessionContext) {
    let text = DataType::Utf8;
    ctx.register_udf(RowFunction::udf(
        "similar_to_escape",
        vec![vec![text.clone()], vec![text.clone(), text.clone()]],
        text,
        Volatility::Immutable,
        Arc::new(|args| {
            let string = |v: &ScalarValue| match v {
                ScalarValue::Utf8(s) | ScalarValue::Utf8View(s) | ScalarValue::LargeUtf8(s) => {
                    s.clone()
                }
                _ => None,
            };
            let Some(pattern) = string(&args[0]) else {
                return Ok(ScalarValue::Utf8(None));
            };
            let escape = match args.get(1) {
                // ESCAPE NULL makes the whole match NULL, as in PostgreSQL.
                Some(v) => match string(v) {
                    None => return Ok(ScalarValue::Utf8(None)),
                    Some(e) => e,
                },
                None => "\\".to_owned(),
            };
            Ok(ScalarValue::Utf8(Some(similar_to_escape(
                &pattern, &escape,
            )?)))
        }),
    ));
}

/// PostgreSQL's translation of a SQL regular expression (`SIMILAR TO`) into a POSIX one:
/// `%` is `.*`, `_` is `.`, `(` opens a non-capturing group, `.`, `^`, `$` and a
/// backslash match themselves, bracket expressions pass through, the escape character
/// (one character, or none when empty) quotes the next one (before a letter or digit it
/// makes a regular-expression escape such as `\d`), and escape + `"` marks the
/// part `substring` returns (at most two such marks). The result is anchored: `^(?:…)$`.
pub fn similar_to_escape(pattern: &str, escape: &str) -> Result<String> {
    let mut escapes = escape.chars();
    let escape = match (escapes.next(), escapes.next()) {
        (None, _) => None,
        (Some(c), None) => Some(c),
        _ => {
            return Err(SqlStateError::new(
                "22025",
                "invalid escape string\nHINT:  Escape string must be empty or one character.",
            )
            .into())
        }
    };
    let mut out = String::with_capacity(pattern.len() + 8);
    out.push_str("^(?:");
    let mut after_escape = false;
    let mut quotes = 0;
    // Inside a bracket expression, and whether its first character has been seen (a `]`
    // or `^` right after the `[` is part of it).
    let mut bracket_depth = 0;
    let mut bracket_start = false;
    for c in pattern.chars() {
        if after_escape {
            after_escape = false;
            if c == '"' && bracket_depth == 0 {
                quotes += 1;
                match quotes {
                    1 => out.push_str("){1,1}?("),
                    2 => out.push_str("){1,1}(?:"),
                    _ => {
                        return Err(SqlStateError::new(
                            "2201B",
                            "SQL regular expression may not contain more than two escape-double-quote separators",
                        )
                        .into())
                    }
                }
            } else if c.is_ascii_alphanumeric() {
                // As in PostgreSQL: an escaped letter or digit is a regular-expression
                // escape (`\d` is a digit); one both languages lack is an error.
                out.push('\\');
                out.push(c);
            } else {
                literal(c, &mut out);
            }
            continue;
        }
        if Some(c) == escape {
            after_escape = true;
            continue;
        }
        if bracket_depth > 0 {
            if c == '\\' {
                out.push('\\');
            }
            out.push(c);
            if c == ']' && !bracket_start {
                bracket_depth = 0;
            }
            bracket_start = c == '^' && bracket_start;
            continue;
        }
        match c {
            '[' => {
                bracket_depth = 1;
                bracket_start = true;
                out.push('[');
            }
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '(' => out.push_str("(?:"),
            '\\' | '.' | '^' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    if after_escape {
        // A pattern that ends in its escape character: PostgreSQL keeps the escape.
        if let Some(e) = escape {
            literal(e, &mut out);
        }
    }
    out.push_str(")$");
    Ok(out)
}

/// `c` matching itself in a regular expression.
fn literal(c: char, out: &mut String) {
    if "\\.+*?()|[]{}^$#&-~".contains(c) {
        out.push('\\');
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::similar_to_escape;

    #[test]
    fn patterns_translate_as_in_postgresql() {
        let t = |p: &str| similar_to_escape(p, "\\").unwrap();
        assert_eq!(t("a%"), "^(?:a.*)$");
        assert_eq!(t("_b(c|d)"), "^(?:.b(?:c|d))$");
        assert_eq!(t("a.c$"), "^(?:a\\.c\\$)$");
        assert_eq!(t("[a_%]+"), "^(?:[a_%]+)$");
        assert_eq!(t("a\\%"), "^(?:a%)$");
        assert_eq!(t("a\\("), "^(?:a\\()$");
        assert_eq!(t("\\d+"), "^(?:\\d+)$");
        assert_eq!(similar_to_escape("a#+", "#").unwrap(), "^(?:a\\+)$");
        assert_eq!(
            similar_to_escape("%#\"o_a#\"_", "#").unwrap(),
            "^(?:.*){1,1}?(o.a){1,1}(?:.)$"
        );
        assert!(similar_to_escape("a", "ab").is_err());
    }
}

/// `substring(x FROM pattern)` with a text pattern — a constant, or a `SIMILAR` pattern
/// (`substring(x SIMILAR p ESCAPE e)`, which is `substring(x FROM similar_to_escape(p,
/// e))`) — is PostgreSQL's regular-expression substring: the part the first parenthesized
/// group matches, or the whole match (DataFusion's substring takes only positions). Add it
/// before DataFusion's planners.
#[derive(Debug)]
pub struct PgSubstring;

impl datafusion::logical_expr::planner::ExprPlanner for PgSubstring {
    fn plan_substring(
        &self,
        args: Vec<datafusion::logical_expr::Expr>,
    ) -> Result<datafusion::logical_expr::planner::PlannerResult<Vec<datafusion::logical_expr::Expr>>>
    {
        use datafusion::logical_expr::planner::PlannerResult;
        use datafusion::logical_expr::Expr as E;
        let pattern = match args.as_slice() {
            [_, E::Literal(ScalarValue::Utf8(Some(_)) | ScalarValue::Utf8View(Some(_)), _)] => true,
            [_, E::ScalarFunction(f)] => f.name() == "similar_to_escape",
            _ => false,
        };
        if !pattern {
            return Ok(PlannerResult::Original(args));
        }
        let mut args = args.into_iter();
        let (text, pattern) = (args.next().expect("two"), args.next().expect("two"));
        let matched = datafusion::functions::expr_fn::regexp_match(text, pattern, None);
        Ok(PlannerResult::Planned(
            datafusion::functions_nested::expr_fn::array_element(
                matched,
                datafusion::prelude::lit(1i64),
            ),
        ))
    }
}
