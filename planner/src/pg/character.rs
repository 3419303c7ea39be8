//! Casts to `varchar(n)` and `char(n)`, which DataFusion reads as plain text.
//!
//! An explicit cast to `varchar(n)` cuts the text to `n` characters in PostgreSQL (an
//! INSERT into such a column refuses longer text instead; see the write path), and one to
//! `char(n)` (`char` alone is `char(1)`) cuts or pads it to `n`. Henge holds no padded
//! text: trailing spaces of a `char(n)` value are dropped, as PostgreSQL drops them
//! whenever the value is used as text (`'ab'::char(5) || '|'` is `ab|`, its length 2).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::{self, CharacterLength};
use henge_storage::schema::{BPCHAR_EXTENSION, EXTENSION_NAME_KEY, VARCHAR_EXTENSION};

use super::rewrite::call;

/// Field metadata: the length `n` of a `char(n)` value, which PostgreSQL writes padded
/// with spaces to `n` characters (Henge holds it without them).
pub const CHAR_LENGTH_KEY: &str = "henge.char_length";

/// The `char(n)` length a result field's values are written padded to, if it has one.
pub fn padded_length(field: &Field) -> Option<usize> {
    field.metadata().get(CHAR_LENGTH_KEY)?.parse().ok()
}

/// Rewrites a cast to `varchar(n)`, `char(n)` or `char` into `pg_varchar(text, n)` or
/// `pg_bpchar(text, n)`, and one to `varchar` into `pg_varchar(text, NULL)` (in place;
/// other expressions are left alone). Done on the syntax, so the value's type stays text
/// and VALUES rows need not agree on a length; the functions' fields name the type
/// (`character varying`, `character`) for `pg_typeof` and the wire.
pub fn rewrite_cast(expr: &mut ast::Expr) {
    // `varchar(2) 'abc'` is `'abc'::varchar(2)`.
    if let ast::Expr::TypedString(typed) = expr {
        if matches!(
            typed.data_type,
            ast::DataType::Varchar(_)
                | ast::DataType::CharacterVarying(_)
                | ast::DataType::Char(_)
                | ast::DataType::Character(_)
        ) {
            *expr = ast::Expr::Cast {
                kind: ast::CastKind::DoubleColon,
                expr: Box::new(ast::Expr::Value(typed.value.clone())),
                data_type: typed.data_type.clone(),
                array: false,
                format: None,
            };
        }
    }
    let ast::Expr::Cast {
        expr: inner,
        data_type,
        ..
    } = expr
    else {
        return;
    };
    let length = |l: &Option<CharacterLength>| match l {
        Some(CharacterLength::IntegerLength { length, .. }) => Some(*length),
        _ => None,
    };
    let (function, n) = match &*data_type {
        ast::DataType::Varchar(l) | ast::DataType::CharacterVarying(l) => match length(l) {
            Some(n) => ("pg_varchar", Some(n)),
            // Text, typed as `character varying`.
            None => ("pg_varchar", None),
        },
        ast::DataType::Char(l) | ast::DataType::Character(l) => match (l.is_none(), length(l)) {
            (true, _) => ("pg_bpchar", Some(1)),
            (_, Some(n)) => ("pg_bpchar", Some(n)),
            _ => return,
        },
        _ => return,
    };
    let text = ast::Expr::Cast {
        kind: ast::CastKind::DoubleColon,
        expr: inner.clone(),
        data_type: ast::DataType::Text,
        array: false,
        format: None,
    };
    let n = ast::Expr::value(match n {
        Some(n) => ast::Value::Number(n.to_string(), false),
        None => ast::Value::Null,
    });
    *expr = call(function, vec![text, n]);
}

/// In a VALUES list, a column one row casts to a character type has that type in every
/// row where the others are constants (`VALUES ('abc'::varchar(2)), ('xyz')` is a varchar
/// column, `xyz` kept whole), as PostgreSQL resolves it; beside rows of other expressions
/// the casts' values are plain text. DataFusion requires the rows' field metadata — which
/// names the character type — to agree. Run after [`rewrite_cast`] made the casts calls.
pub fn values_alike(values: &mut ast::Values) {
    let typed = |e: &ast::Expr| {
        super::rewrite::function_name(e).filter(|n| n == "pg_varchar" || n == "pg_bpchar")
    };
    let as_text = |e: ast::Expr| ast::Expr::Cast {
        kind: ast::CastKind::DoubleColon,
        expr: Box::new(e),
        data_type: ast::DataType::Text,
        array: false,
        format: None,
    };
    let width = values.rows.first().map_or(0, |r| r.content.len());
    for column in 0..width {
        let cells = || values.rows.iter().filter_map(|row| row.content.get(column));
        let mut names: Vec<String> = cells().filter_map(typed).collect();
        names.sort();
        names.dedup();
        let Some(name) = names.first().cloned() else {
            continue;
        };
        let constants = cells().all(|e| typed(e).is_some() || matches!(e, ast::Expr::Value(_)));
        for row in &mut values.rows {
            let Some(cell) = row.content.get_mut(column) else {
                continue;
            };
            let taken = std::mem::replace(cell, ast::Expr::value(ast::Value::Null));
            *cell = match (typed(&taken).is_some(), constants && names.len() == 1) {
                (false, true) => call(
                    &name,
                    vec![as_text(taken), ast::Expr::value(ast::Value::Null)],
                ),
                (true, false) => as_text(taken),
                _ => taken,
            };
        }
    }
}

/// Registers `pg_varchar` and `pg_bpchar`.
pub fn register(ctx: &SessionContext) {
    for pad in [false, true] {
        ctx.register_udf(ScalarUDF::new_from_impl(Cut {
            pad,
            signature: Signature::any(2, Volatility::Immutable),
        }));
    }
}

/// PostgreSQL's longest `varchar(n)` and `char(n)`.
const MAX_LENGTH: i64 = 10_485_760;

#[derive(Debug, PartialEq, Eq, Hash)]
struct Cut {
    pad: bool,
    signature: Signature,
}

impl ScalarUDFImpl for Cut {
    fn name(&self) -> &str {
        match self.pad {
            true => "pg_bpchar",
            false => "pg_varchar",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    /// Refuses a length PostgreSQL's types do not take, when the query is planned.
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let name = if self.pad { "char" } else { "varchar" };
        if let Some(Some(n)) = args.scalar_arguments.get(1) {
            let n = n.cast_to(&DataType::Int64)?;
            let message = match n {
                ScalarValue::Int64(Some(n)) if n < 1 => {
                    format!("length for type {name} must be at least 1")
                }
                ScalarValue::Int64(Some(n)) if n > MAX_LENGTH => {
                    format!("length for type {name} cannot exceed {MAX_LENGTH}")
                }
                _ => String::new(),
            };
            if !message.is_empty() {
                return Err(super::SqlStateError::new("22023", message).into());
            }
        }
        let extension = match self.pad {
            true => BPCHAR_EXTENSION,
            false => VARCHAR_EXTENSION,
        };
        let mut metadata: std::collections::HashMap<String, String> =
            [(EXTENSION_NAME_KEY.to_owned(), extension.to_owned())]
                .into_iter()
                .collect();
        // A char(n)'s values are written padded to n.
        if let (true, Some(Some(n))) = (self.pad, args.scalar_arguments.get(1)) {
            if let ScalarValue::Int64(Some(n)) = n.cast_to(&DataType::Int64)? {
                metadata.insert(CHAR_LENGTH_KEY.to_owned(), n.to_string());
            }
        }
        Ok(Arc::new(
            Field::new(self.name(), DataType::Utf8, true).with_metadata(metadata),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let length = match &args.args[1] {
            ColumnarValue::Scalar(n) => match n.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(Some(n)) if n >= 0 => n as usize,
                _ => usize::MAX,
            },
            ColumnarValue::Array(_) => usize::MAX,
        };
        super::on_arrays(&args, |arrays| {
            let text = datafusion::arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
            if length == usize::MAX && !self.pad {
                return Ok(text);
            }
            let out: StringArray = text
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(|s| cut(s, length, self.pad)))
                .collect();
            Ok(Arc::new(out) as ArrayRef)
        })
    }
}

/// `s` cut to `length` characters; for `char(n)` without trailing spaces.
fn cut(s: &str, length: usize, pad: bool) -> String {
    let cut = match s.char_indices().nth(length) {
        Some((at, _)) => &s[..at],
        None => s,
    };
    match pad {
        true => cut.trim_end_matches(' ').to_owned(),
        false => cut.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_by_characters() {
        assert_eq!(cut("abc", 2, false), "ab");
        assert_eq!(cut("äöü", 2, false), "äö");
        assert_eq!(cut("ab", 5, false), "ab");
        assert_eq!(cut("ab   x", 4, true), "ab");
        assert_eq!(cut("65", 1, true), "6");
    }
}
