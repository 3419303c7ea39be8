//! PostgreSQL's string functions that DataFusion lacks: `format`, `quote_literal` and
//! `quote_nullable`, each with PostgreSQL's rules for quoting and for NULL.
//!
//! Their arguments are shown as PostgreSQL's text output shows them; a value whose text
//! form Henge does not produce here (dates, timestamps, intervals, arrays) is refused with
//! 0A000 rather than written in another form.

use std::sync::Arc;

use datafusion::arrow::datatypes::Decimal128Type;
use datafusion::arrow::datatypes::{DataType, DecimalType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{Signature, TypeSignature, Volatility};
use datafusion::scalar::ScalarValue;

use super::functions::RowFunction;
use super::SqlStateError;

/// Registers `format`, `quote_literal` and `quote_nullable`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(RowFunction::with_signature(
        "format",
        Signature::one_of(
            vec![TypeSignature::VariadicAny, TypeSignature::Any(1)],
            Volatility::Stable,
        ),
        DataType::Utf8,
        Arc::new(|args| {
            let Some(template) = text(&args[0])? else {
                return Ok(ScalarValue::Utf8(None));
            };
            format(&template, &args[1..]).map(|s| ScalarValue::Utf8(Some(s)))
        }),
    ));
    ctx.register_udf(RowFunction::with_signature(
        "quote_literal",
        Signature::any(1, Volatility::Immutable),
        DataType::Utf8,
        Arc::new(|args| {
            Ok(ScalarValue::Utf8(
                text(&args[0])?.map(|s| quote_literal(&s)),
            ))
        }),
    ));
    ctx.register_udf(RowFunction::with_signature(
        "quote_nullable",
        Signature::any(1, Volatility::Immutable),
        DataType::Utf8,
        Arc::new(|args| {
            Ok(ScalarValue::Utf8(Some(match text(&args[0])? {
                Some(s) => quote_literal(&s),
                None => "NULL".to_owned(),
            })))
        }),
    ));
}

/// A value as PostgreSQL's text output writes it, `None` for NULL.
fn text(value: &ScalarValue) -> Result<Option<String>> {
    if value.is_null() {
        return Ok(None);
    }
    Ok(Some(match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.clone(),
        ScalarValue::Boolean(Some(b)) => if *b { "t" } else { "f" }.to_owned(),
        ScalarValue::Int8(Some(v)) => v.to_string(),
        ScalarValue::Int16(Some(v)) => v.to_string(),
        ScalarValue::Int32(Some(v)) => v.to_string(),
        ScalarValue::Int64(Some(v)) => v.to_string(),
        ScalarValue::Decimal128(Some(v), p, s) => Decimal128Type::format_decimal(*v, *p, *s),
        // Where PostgreSQL writes a double without an exponent, its shortest exact form
        // is Rust's.
        ScalarValue::Float64(Some(v)) if *v == 0.0 || (1e-4..1e15).contains(&v.abs()) => {
            format!("{v}")
        }
        other => {
            return Err(SqlStateError::new(
                "0A000",
                format!(
                    "this function's argument of type {} is not supported",
                    super::types::of_arrow(&other.data_type()).data_type
                ),
            )
            .into())
        }
    }))
}

/// `quote_literal`: a string constant, quotes doubled, with `E` before it where it holds a
/// backslash (which is doubled too).
pub fn quote_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    if s.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// `quote_ident`: quoted unless it is a lower-case name that is no keyword PostgreSQL
/// reserves in any position.
pub fn quote_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
        && !RESERVED.contains(&s);
    match plain {
        true => s.to_owned(),
        false => format!("\"{}\"", s.replace('"', "\"\"")),
    }
}

/// PostgreSQL's keywords that are not unreserved (reserved, column-name and
/// type/function-name keywords): `quote_ident` quotes them.
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "between",
    "bigint",
    "binary",
    "bit",
    "boolean",
    "both",
    "case",
    "cast",
    "char",
    "character",
    "check",
    "coalesce",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "dec",
    "decimal",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "exists",
    "extract",
    "false",
    "fetch",
    "float",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "greatest",
    "group",
    "grouping",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "inout",
    "int",
    "integer",
    "intersect",
    "interval",
    "into",
    "is",
    "isnull",
    "join",
    "json",
    "json_array",
    "json_arrayagg",
    "json_exists",
    "json_object",
    "json_objectagg",
    "json_query",
    "json_scalar",
    "json_serialize",
    "json_table",
    "json_value",
    "lateral",
    "leading",
    "least",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "merge_action",
    "national",
    "natural",
    "nchar",
    "none",
    "normalize",
    "not",
    "notnull",
    "null",
    "nullif",
    "numeric",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "out",
    "outer",
    "overlaps",
    "overlay",
    "placing",
    "position",
    "precision",
    "primary",
    "real",
    "references",
    "returning",
    "right",
    "row",
    "select",
    "session_user",
    "setof",
    "similar",
    "smallint",
    "some",
    "substring",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "then",
    "time",
    "timestamp",
    "to",
    "trailing",
    "treat",
    "trim",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "values",
    "varchar",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
    "xmlattributes",
    "xmlconcat",
    "xmlelement",
    "xmlexists",
    "xmlforest",
    "xmlnamespaces",
    "xmlparse",
    "xmlpi",
    "xmlroot",
    "xmlserialize",
    "xmltable",
];

fn format_error(message: impl Into<String>) -> datafusion::error::DataFusionError {
    SqlStateError::new("22023", message).into()
}

/// PostgreSQL's `format(template, args…)`: `%s` (text, NULL as nothing), `%I` (an
/// identifier, quoted where needed), `%L` (a literal, NULL as `NULL`) and `%%`, each with
/// an optional argument position `n$`, a `-` flag and a width (a number, `*` or `*n$`).
fn format(template: &str, args: &[ScalarValue]) -> Result<String> {
    let chars: Vec<char> = template.chars().collect();
    let mut out = String::new();
    let mut next_arg = 0usize;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '%' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        i += 1;
        let Some(&c) = chars.get(i) else {
            return Err(format_error("unterminated format() type specifier"));
        };
        if c == '%' {
            out.push('%');
            i += 1;
            continue;
        }
        // A position `n$` first, then flags and a width.
        let (position, after) = number_then(&chars, i, '$')?;
        if position.is_some() {
            i = after;
        }
        let mut left = false;
        while chars.get(i) == Some(&'-') {
            left = true;
            i += 1;
        }
        let mut width: Option<i64> = None;
        if chars.get(i) == Some(&'*') {
            i += 1;
            let (at, after) = number_then(&chars, i, '$')?;
            let index = match at {
                Some(n) => {
                    i = after;
                    n - 1
                }
                None => {
                    next_arg += 1;
                    next_arg - 1
                }
            };
            let value = args
                .get(index)
                .ok_or_else(|| format_error("too few arguments for format()"))?;
            width = text(value)?
                .map(|w| w.trim().parse::<i64>())
                .transpose()
                .map_err(|_| format_error("invalid width argument for format()"))?;
            next_arg = index + 1;
        } else {
            let start = i;
            while chars.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
            if i > start {
                let digits: String = chars[start..i].iter().collect();
                width = Some(digits.parse().map_err(|_| {
                    DataFusionError::from(SqlStateError::new("22003", "number is out of range"))
                })?);
            }
        }
        let Some(&kind) = chars.get(i) else {
            return Err(format_error("unterminated format() type specifier"));
        };
        i += 1;
        let index = match position {
            Some(n) => n - 1,
            None => next_arg,
        };
        next_arg = index + 1;
        let value = args
            .get(index)
            .ok_or_else(|| format_error("too few arguments for format()"))?;
        let shown = match kind {
            's' => text(value)?.unwrap_or_default(),
            'I' => match text(value)? {
                Some(s) => quote_ident(&s),
                None => {
                    return Err(SqlStateError::new(
                        "22004",
                        "null values cannot be formatted as an SQL identifier",
                    )
                    .into())
                }
            },
            'L' => match text(value)? {
                Some(s) => quote_literal(&s),
                None => "NULL".to_owned(),
            },
            other => {
                return Err(format_error(format!(
                    "unrecognized format() type specifier \"{other}\""
                )))
            }
        };
        pad(&mut out, &shown, width, left)?;
    }
    Ok(out)
}

/// Reads digits at `at` followed by `end`: the number and the index after `end`; no number
/// if the digits are not followed by `end` (or there are none).
fn number_then(chars: &[char], at: usize, end: char) -> Result<(Option<usize>, usize)> {
    let mut i = at;
    while chars.get(i).is_some_and(char::is_ascii_digit) {
        i += 1;
    }
    if i == at || chars.get(i) != Some(&end) {
        return Ok((None, at));
    }
    let digits: String = chars[at..i].iter().collect();
    let n: usize = digits.parse().map_err(|_| {
        DataFusionError::from(SqlStateError::new("22003", "number is out of range"))
    })?;
    if n == 0 {
        return Err(format_error(
            "format specifies argument 0, but arguments are numbered from 1",
        ));
    }
    Ok((Some(n), i + 1))
}

/// Appends `s` padded with spaces to `width` characters: on the left, or with `left` (or
/// a negative width) on the right.
fn pad(out: &mut String, s: &str, width: Option<i64>, left: bool) -> Result<()> {
    let Some(width) = width else {
        out.push_str(s);
        return Ok(());
    };
    // PostgreSQL's widths are 32-bit, and no text is more than 1 GB.
    if i32::try_from(width).is_err() {
        return Err(SqlStateError::new("22003", "number is out of range").into());
    }
    if out.len() as u64 + width.unsigned_abs() > MAX_TEXT {
        return Err(SqlStateError::new("54000", "out of memory").into());
    }
    let left = left || width < 0;
    let fill = (width.unsigned_abs() as usize).saturating_sub(s.chars().count());
    if !left {
        out.extend(std::iter::repeat_n(' ', fill));
    }
    out.push_str(s);
    if left {
        out.extend(std::iter::repeat_n(' ', fill));
    }
    Ok(())
}

/// The longest text value PostgreSQL makes (1 GB).
const MAX_TEXT: u64 = 1 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    fn f(template: &str, args: &[&str]) -> String {
        let args: Vec<ScalarValue> = args
            .iter()
            .map(|a| match *a {
                "<null>" => ScalarValue::Utf8(None),
                s => ScalarValue::Utf8(Some(s.to_owned())),
            })
            .collect();
        format(template, &args).unwrap()
    }

    #[test]
    fn formats_as_postgresql() {
        // Each answer is PostgreSQL 15's.
        assert_eq!(f("Hello %s, %s", &["World", "42"]), "Hello World, 42");
        assert_eq!(f("%I", &["Foo Bar"]), "\"Foo Bar\"");
        assert_eq!(f("%I", &["table"]), "\"table\"");
        assert_eq!(f("%I", &["name"]), "name");
        assert_eq!(f("%L", &["O'Reilly"]), "'O''Reilly'");
        assert_eq!(
            f("|%10s|%-10s|", &["right", "left"]),
            "|     right|left      |"
        );
        assert_eq!(f("%2$s %1$s", &["a", "b"]), "b a");
        assert_eq!(f("%%", &[]), "%");
        assert_eq!(f("%s|%L", &["<null>", "<null>"]), "|NULL");
        assert_eq!(f("%1$s %s", &["a", "b"]), "a b");
        assert_eq!(f("%*s|", &["5", "x"]), "    x|");
        assert_eq!(f("%-*s|", &["3", "x"]), "x  |");
        assert!(format("%s %s", &[ScalarValue::Utf8(Some("a".into()))]).is_err());
        assert!(format("%x", &[ScalarValue::Utf8(Some("a".into()))]).is_err());
        assert!(format("%I", &[ScalarValue::Utf8(None)]).is_err());
    }

    #[test]
    fn quotes_as_postgresql() {
        assert_eq!(quote_literal("O'Reilly"), "'O''Reilly'");
        assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("_x1"), "_x1");
        assert_eq!(quote_ident("1x"), "\"1x\"");
    }
}
