//! PostgreSQL's regular-expression functions that DataFusion lacks: `regexp_matches` and
//! `regexp_split_to_table` (set-returning: in a select list they yield rows, see
//! [`super::srf`]), `regexp_split_to_array`, `regexp_count`, `regexp_instr` and
//! `regexp_substr`, with PostgreSQL's flags (`g` all matches, `i` case-insensitive, `c`
//! case-sensitive, `n`/`m` newline-sensitive, `s` not, `x` expanded, `q` the pattern is
//! literal text). As in PostgreSQL, `.` matches a newline unless `n` is given. A flag
//! PostgreSQL does not know is 22023.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, ListArray, StringArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{Signature, TypeSignature, Volatility};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Statement, Value,
    VisitMut, VisitorMut,
};
use regex::Regex;

use super::functions::RowFunction;
use super::rewrite::function_name;
use super::SqlStateError;
use super::{integer_arg as integer, text_arg as text};

/// The set-returning functions here, which a select list unnests.
pub const LISTING: [&str; 2] = ["regexp_matches", "regexp_split_to_table"];

/// A pattern with PostgreSQL's flags; whether `g` was among them.
/// `function` names the function in the error for a `g` it does not take.
fn compile(
    pattern: &str,
    flags: &str,
    function: &str,
    global_allowed: bool,
) -> Result<(Regex, bool)> {
    let mut global = false;
    let mut case_insensitive = false;
    let mut newline_sensitive = false;
    let mut expanded = false;
    let mut literal = false;
    for f in flags.chars() {
        match f {
            'g' if global_allowed => global = true,
            'i' => case_insensitive = true,
            'c' => case_insensitive = false,
            'n' | 'm' => newline_sensitive = true,
            's' => newline_sensitive = false,
            'x' => expanded = true,
            't' => expanded = false,
            'q' => literal = true,
            'g' => {
                return Err(SqlStateError::new(
                    "22023",
                    format!("{function}() does not support the \"global\" option"),
                )
                .into())
            }
            other => {
                return Err(SqlStateError::new(
                    "22023",
                    format!("invalid regular expression option: \"{other}\""),
                )
                .into())
            }
        }
    }
    let body = if literal {
        regex::escape(pattern)
    } else {
        pattern.to_owned()
    };
    let prefix = match (case_insensitive, expanded) {
        (false, false) => "",
        (true, false) => "(?i)",
        (false, true) => "(?x)",
        (true, true) => "(?ix)",
    };
    let regex =
        Regex::new(&format!("{prefix}{}", translated(&body, newline_sensitive))).map_err(|e| {
            SqlStateError::new(
                "2201B",
                format!("invalid regular expression: {}", first_line(&e.to_string())),
            )
        })?;
    Ok((regex, global))
}

fn first_line(s: &str) -> &str {
    s.lines().last().unwrap_or(s).trim()
}

/// The subject, pattern and flags (none when not given) of a call; `None` if one is NULL.
fn arguments(args: &[ScalarValue]) -> Option<(&str, &str, &str)> {
    Some((
        text(&args[0])?,
        text(&args[1])?,
        args.get(2).map_or(Some(""), text)?,
    ))
}

fn text_list(items: Vec<Option<String>>) -> ScalarValue {
    let values: ArrayRef = Arc::new(StringArray::from(items.clone()));
    ScalarValue::List(Arc::new(ListArray::new(
        Arc::new(Field::new_list_field(DataType::Utf8, true)),
        OffsetBuffer::from_lengths([items.len()]),
        values,
        None,
    )))
}

/// The parts of `subject` between matches of `regex` (an empty pattern splits between
/// characters, as in PostgreSQL).
fn split(subject: &str, regex: &Regex) -> Vec<Option<String>> {
    let mut parts = Vec::new();
    let mut start = 0;
    for m in regex.find_iter(subject) {
        if m.start() == m.end() {
            // A zero-length match splits only between characters, never at either end.
            if m.start() == 0 || m.start() >= subject.len() || m.start() == start && start != 0 {
                continue;
            }
        }
        parts.push(Some(subject[start..m.start()].to_owned()));
        start = m.end();
    }
    parts.push(Some(subject[start..].to_owned()));
    parts
}

/// Each match's capture groups (or the whole match where the pattern has none).
fn matches(subject: &str, regex: &Regex, global: bool) -> Vec<Vec<Option<String>>> {
    let groups = regex.captures_len() - 1;
    let mut out = Vec::new();
    for c in regex.captures_iter(subject) {
        let row = if groups == 0 {
            vec![Some(c[0].to_owned())]
        } else {
            (1..=groups)
                .map(|i| c.get(i).map(|m| m.as_str().to_owned()))
                .collect()
        };
        out.push(row);
        if !global {
            break;
        }
    }
    out
}

/// Registers the functions.
pub fn register(ctx: &SessionContext) {
    register_translation(ctx);
    let t = || DataType::Utf8;
    let list_of = |item: DataType| DataType::List(Arc::new(Field::new_list_field(item, true)));
    let with_flags = |n: usize| {
        Signature::one_of(
            vec![
                TypeSignature::Exact(vec![DataType::Utf8; n]),
                TypeSignature::Exact(vec![DataType::Utf8; n + 1]),
            ],
            Volatility::Immutable,
        )
    };
    for (name, global_allowed) in [
        ("regexp_split_to_array", false),
        ("regexp_split_to_table", false),
    ] {
        ctx.register_udf(RowFunction::with_signature(
            name,
            with_flags(2),
            list_of(t()),
            Arc::new(move |args| {
                let (Some(subject), Some(pattern)) = (text(&args[0]), text(&args[1])) else {
                    return Ok(ScalarValue::new_null_list(DataType::Utf8, true, 1));
                };
                let flags = args.get(2).map_or(Some(""), text);
                let Some(flags) = flags else {
                    return Ok(ScalarValue::new_null_list(DataType::Utf8, true, 1));
                };
                let (regex, _) = compile(pattern, flags, name, global_allowed)?;
                Ok(text_list(split(subject, &regex)))
            }),
        ));
    }
    ctx.register_udf(RowFunction::with_signature(
        "regexp_matches",
        with_flags(2),
        list_of(list_of(t())),
        Arc::new(|args| {
            let item = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
            let empty = || {
                let values = datafusion::arrow::array::new_empty_array(&item);
                ScalarValue::List(Arc::new(ListArray::new(
                    Arc::new(Field::new_list_field(item.clone(), true)),
                    OffsetBuffer::from_lengths([0]),
                    values,
                    None,
                )))
            };
            let Some((subject, pattern, flags)) = arguments(args) else {
                return Ok(empty());
            };
            let (regex, global) = compile(pattern, flags, "regexp_matches", true)?;
            let rows = matches(subject, &regex, global);
            let lists: Vec<ScalarValue> = rows.into_iter().map(text_list).collect();
            if lists.is_empty() {
                return Ok(empty());
            }
            Ok(ScalarValue::List(ScalarValue::new_list_nullable(
                &lists, &item,
            )))
        }),
    ));
    ctx.register_udf(RowFunction::with_signature(
        "regexp_count",
        Signature::one_of(
            vec![
                TypeSignature::Exact(vec![t(), t()]),
                TypeSignature::Exact(vec![t(), t(), DataType::Int64]),
                TypeSignature::Exact(vec![t(), t(), DataType::Int64, t()]),
            ],
            Volatility::Immutable,
        ),
        DataType::Int32,
        Arc::new(|args| {
            let (Some(subject), Some(pattern)) = (text(&args[0]), text(&args[1])) else {
                return Ok(ScalarValue::Int32(None));
            };
            let start = match args.get(2) {
                Some(v) => match integer(v) {
                    Some(n) if n >= 1 => n as usize,
                    Some(n) => {
                        return Err(SqlStateError::new(
                            "22023",
                            format!("invalid value for parameter \"start\": {n}"),
                        )
                        .into())
                    }
                    None => return Ok(ScalarValue::Int32(None)),
                },
                None => 1,
            };
            let Some(flags) = args.get(3).map_or(Some(""), text) else {
                return Ok(ScalarValue::Int32(None));
            };
            let (regex, _) = compile(pattern, flags, "regexp_count", false)?;
            let from = subject
                .char_indices()
                .nth(start - 1)
                .map_or(subject.len(), |(i, _)| i);
            Ok(ScalarValue::Int32(Some(
                matches_from(&regex, subject, from).count() as i32,
            )))
        }),
    ));
    // regexp_substr(string, pattern [, start [, n [, flags [, subexpr]]]]) and
    // regexp_instr(string, pattern [, start [, n [, endoption [, flags [, subexpr]]]]]).
    let i = || DataType::Int64;
    ctx.register_udf(RowFunction::with_signature(
        "regexp_substr",
        Signature::one_of(
            vec![
                TypeSignature::Exact(vec![t(), t()]),
                TypeSignature::Exact(vec![t(), t(), i()]),
                TypeSignature::Exact(vec![t(), t(), i(), i()]),
                TypeSignature::Exact(vec![t(), t(), i(), i(), t()]),
                TypeSignature::Exact(vec![t(), t(), i(), i(), t(), i()]),
            ],
            Volatility::Immutable,
        ),
        t(),
        Arc::new(|args| {
            let found = nth_match("regexp_substr", args, 4, None)?;
            Ok(ScalarValue::Utf8(found.and_then(|f| {
                f.span.map(|(from, to)| f.subject[from..to].to_owned())
            })))
        }),
    ));
    ctx.register_udf(RowFunction::with_signature(
        "regexp_instr",
        Signature::one_of(
            vec![
                TypeSignature::Exact(vec![t(), t()]),
                TypeSignature::Exact(vec![t(), t(), i()]),
                TypeSignature::Exact(vec![t(), t(), i(), i()]),
                TypeSignature::Exact(vec![t(), t(), i(), i(), i()]),
                TypeSignature::Exact(vec![t(), t(), i(), i(), i(), t()]),
                TypeSignature::Exact(vec![t(), t(), i(), i(), i(), t(), i()]),
            ],
            Volatility::Immutable,
        ),
        DataType::Int32,
        Arc::new(|args| {
            let Some(found) = nth_match("regexp_instr", args, 5, Some(4))? else {
                return Ok(ScalarValue::Int32(None));
            };
            // A position in characters, from 1 (after the match with endoption 1); 0
            // where nothing matches.
            let at = found.span.map_or(0, |(from, to)| {
                let end = if found.after { to } else { from };
                found.subject[..end].chars().count() as i32 + 1
            });
            Ok(ScalarValue::Int32(Some(at)))
        }),
    ));
}

/// The matches of `regex` in `subject` from byte `from` on, one after another as
/// PostgreSQL finds them: searched in the whole text (so `^` and word boundaries see what
/// comes before `from`), each from the end of the one before, or a character further
/// after an empty one.
fn matches_from<'r, 's>(
    regex: &'r Regex,
    subject: &'s str,
    from: usize,
) -> impl Iterator<Item = regex::Captures<'s>> + use<'r, 's> {
    let mut at = Some(from);
    std::iter::from_fn(move || {
        let start = at?;
        let captures = regex.captures_at(subject, start)?;
        let whole = captures.get(0)?;
        at = match whole.is_empty() {
            false => Some(whole.end()),
            true => subject[whole.end()..]
                .chars()
                .next()
                .map(|c| whole.end() + c.len_utf8()),
        };
        Some(captures)
    })
}

/// The match [`nth_match`] found.
struct Found<'a> {
    subject: &'a str,
    /// Byte offsets of the match (or of the asked-for group); `None` if there is none.
    span: Option<(usize, usize)>,
    /// regexp_instr's endoption: the position after the match.
    after: bool,
}

/// The `n`th match (from the `start`th character) of `regexp_substr` or `regexp_instr`,
/// or of its `subexpr`th parenthesised group; `None` if an argument is NULL. Arguments
/// out of range are 22023 as in PostgreSQL. `flags_at` is where the flags argument is,
/// `endoption_at` where regexp_instr's endoption is.
fn nth_match<'a>(
    function: &str,
    args: &'a [ScalarValue],
    flags_at: usize,
    endoption_at: Option<usize>,
) -> Result<Option<Found<'a>>> {
    let bad = |parameter: &str, value: i64| -> DataFusionError {
        SqlStateError::new(
            "22023",
            format!("invalid value for parameter \"{parameter}\": {value}"),
        )
        .into()
    };
    let (Some(subject), Some(pattern)) = (text(&args[0]), text(&args[1])) else {
        return Ok(None);
    };
    // An optional integer argument: its value, its default when not given; `None` if NULL.
    let number = |at: usize, default: i64| args.get(at).map_or(Some(default), integer);
    let (Some(start), Some(n), Some(subexpr)) =
        (number(2, 1), number(3, 1), number(flags_at + 1, 0))
    else {
        return Ok(None);
    };
    let Some(endoption) = endoption_at.map_or(Some(0), |at| number(at, 0)) else {
        return Ok(None);
    };
    let Some(flags) = args.get(flags_at).map_or(Some(""), text) else {
        return Ok(None);
    };
    if start < 1 {
        return Err(bad("start", start));
    }
    if n < 1 {
        return Err(bad("n", n));
    }
    if endoption != 0 && endoption != 1 {
        return Err(bad("endoption", endoption));
    }
    if subexpr < 0 {
        return Err(bad("subexpr", subexpr));
    }
    let (regex, _) = compile(pattern, flags, function, false)?;
    let from = subject
        .char_indices()
        .nth(start as usize - 1)
        .map_or(subject.len(), |(i, _)| i);
    let span = matches_from(&regex, subject, from)
        .nth(n as usize - 1)
        .and_then(|captures| captures.get(subexpr as usize))
        .map(|m| (m.start(), m.end()));
    Ok(Some(Found {
        subject,
        span,
        after: endoption == 1,
    }))
}

/// A PostgreSQL regular expression as the regex crate reads it: `.` matches a newline
/// unless `newline_sensitive` (PostgreSQL's `n` flag, where `^` and `$` match at lines
/// instead), and PostgreSQL's word-boundary escapes `\m`, `\M`, `\y`, `\Y` and `\Z`.
pub fn translated(pattern: &str, newline_sensitive: bool) -> String {
    let flags = if newline_sensitive { "(?m)" } else { "(?s)" };
    format!("{flags}{}", escapes(pattern))
}

/// PostgreSQL's word-boundary escapes `\m`, `\M`, `\y`, `\Y` and `\Z` in the regex
/// crate's spelling; the rest of the pattern as it is.
pub fn escapes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('m') => out.push_str(r"\b{start}"),
            Some('M') => out.push_str(r"\b{end}"),
            Some('y') => out.push_str(r"\b"),
            Some('Y') => out.push_str(r"\B"),
            Some('Z') => out.push_str(r"\z"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// The patterns of `~`, `~*`, `!~`, `!~*` and of DataFusion's `regexp_replace`,
/// `regexp_match` and `regexp_like` read with PostgreSQL's meaning ([`translated`]): a
/// constant pattern is translated here, another through `henge_regex(pattern, flags)`.
/// The `n` flag (PostgreSQL's newline-sensitive matching; `m` is its synonym) is taken out
/// of the flags, which DataFusion hands to the regex crate.
pub fn rewrite(mut statement: Statement) -> Statement {
    struct Patterns;
    impl VisitorMut for Patterns {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            match expr {
                Expr::BinaryOp {
                    op:
                        BinaryOperator::PGRegexMatch
                        | BinaryOperator::PGRegexIMatch
                        | BinaryOperator::PGRegexNotMatch
                        | BinaryOperator::PGRegexNotIMatch,
                    right,
                    ..
                } => translate(right, false),
                _ => {
                    let (pattern_at, flags_at) = match function_name(expr).as_deref() {
                        Some("regexp_replace") => (1, 3),
                        Some("regexp_match" | "regexp_like") => (1, 2),
                        _ => return ControlFlow::Continue(()),
                    };
                    let Expr::Function(f) = expr else {
                        return ControlFlow::Continue(());
                    };
                    let FunctionArguments::List(list) = &mut f.args else {
                        return ControlFlow::Continue(());
                    };
                    let mut newline = false;
                    if let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))) =
                        list.args.get_mut(flags_at)
                    {
                        if let Value::SingleQuotedString(flags) = &mut v.value {
                            newline = flags.contains(['n', 'm']);
                            flags.retain(|c| c != 'n' && c != 'm');
                            // No flags left: none given (DataFusion reads "" as a bad flag).
                            if flags.is_empty() {
                                list.args.truncate(flags_at);
                            }
                        }
                    }
                    if let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(pattern))) =
                        list.args.get_mut(pattern_at)
                    {
                        translate(pattern, newline);
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    fn translate(pattern: &mut Expr, newline: bool) {
        match pattern {
            Expr::Value(v) => {
                if let Value::SingleQuotedString(text) = &mut v.value {
                    *text = translated(text, newline);
                }
            }
            other => {
                let flags = Expr::value(Value::SingleQuotedString(
                    if newline { "n" } else { "" }.into(),
                ));
                *other = super::rewrite::call("henge_regex", vec![other.clone(), flags]);
            }
        }
    }
    let _ = statement.visit(&mut Patterns);
    statement
}

/// Registers `henge_regex(pattern, flags)`, [`translated`] for patterns that are not
/// constants.
fn register_translation(ctx: &SessionContext) {
    ctx.register_udf(RowFunction::udf(
        "henge_regex",
        vec![vec![DataType::Utf8, DataType::Utf8]],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args| {
            let (Some(pattern), Some(flags)) = (text(&args[0]), text(&args[1])) else {
                return Ok(ScalarValue::Utf8(None));
            };
            Ok(ScalarValue::Utf8(Some(translated(
                pattern,
                flags.contains('n'),
            ))))
        }),
    ));
}
