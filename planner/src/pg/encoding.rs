//! PostgreSQL's `encode(bytea, format)` and `decode(text, format)` for the formats
//! `hex`, `base64` (padded, in lines of 76 characters) and `escape`, and `chr` with
//! PostgreSQL's limits. DataFusion's `encode` writes base64 without padding and knows no
//! `escape`. Also `convert_to(text, encoding)` and `convert_from(bytea, encoding)` for
//! UTF8 and LATIN1 (others are refused), `octet_length` of bytea as of text, and
//! `unistr`, which reads PostgreSQL's Unicode escapes. Explicit casts between `bytea` and
//! text ([`cast`]) go through bytea's text form, as PostgreSQL's do.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryBuilder, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::expr::{Cast, ScalarFunction};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::scalar::ScalarValue;

use super::functions::RowFunction;
use super::{on_arrays, text_arg, SqlStateError};

/// Registers `encode`, `decode` and `chr`.
pub fn register(ctx: &SessionContext) {
    for decoding in [false, true] {
        ctx.register_udf(ScalarUDF::new_from_impl(Codec {
            decoding,
            signature: Signature::user_defined(Volatility::Immutable),
        }));
    }
    ctx.register_udf(ScalarUDF::new_from_impl(Chr {
        signature: Signature::user_defined(Volatility::Immutable),
    }));
    register_conversions(ctx);
}

/// The encodings `convert_to` and `convert_from` convert between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charset {
    Utf8,
    Latin1,
}

impl Charset {
    /// An encoding by one of PostgreSQL's names for it (case and punctuation ignored);
    /// `Err` with PostgreSQL's message for a name it does not know, 0A000 for one Henge
    /// does not convert.
    fn named(name: &str, role: &str) -> Result<Charset> {
        let key: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match key.as_str() {
            "utf8" | "unicode" => Ok(Charset::Utf8),
            "latin1" | "iso88591" => Ok(Charset::Latin1),
            "sqlascii" | "latin2" | "latin3" | "latin4" | "latin5" | "latin6" | "latin7"
            | "latin8" | "latin9" | "latin10" | "win1250" | "win1251" | "win1252" | "win1253"
            | "win1254" | "win1255" | "win1256" | "win1257" | "win1258" | "win866" | "win874"
            | "koi8r" | "koi8u" | "eucjp" | "euccn" | "euckr" | "euctw" | "sjis" | "big5"
            | "gbk" | "gb18030" | "uhc" | "johab" | "mule" | "iso88595" | "iso88596"
            | "iso88597" | "iso88598" => Err(SqlStateError::new(
                "0A000",
                format!("conversion to or from encoding \"{name}\" is not supported"),
            )
            .into()),
            _ => Err(invalid(format!("invalid {role} encoding name \"{name}\""))),
        }
    }
}

/// `text` in `charset`.
fn encoded(text: &str, charset: Charset) -> Result<Vec<u8>> {
    match charset {
        Charset::Utf8 => Ok(text.as_bytes().to_vec()),
        Charset::Latin1 => text
            .chars()
            .map(|c| {
                u8::try_from(u32::from(c)).map_err(|_| {
                    let mut buffer = [0; 4];
                    let bytes = c
                        .encode_utf8(&mut buffer)
                        .bytes()
                        .map(|b| format!("0x{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(" ");
                    SqlStateError::new(
                        "22P05",
                        format!(
                            "character with byte sequence {bytes} in encoding \"UTF8\" has no equivalent in encoding \"LATIN1\""
                        ),
                    )
                    .into()
                })
            })
            .collect(),
    }
}

/// `bytes` read in `charset`.
fn decoded(bytes: &[u8], charset: Charset) -> Result<String> {
    match charset {
        Charset::Latin1 => Ok(bytes.iter().map(|b| char::from(*b)).collect()),
        Charset::Utf8 => match std::str::from_utf8(bytes) {
            Ok(text) if !text.contains('\0') => Ok(text.to_owned()),
            Ok(text) => {
                let at = text.find('\0').unwrap_or(0);
                Err(invalid_utf8(&bytes[at..]))
            }
            Err(e) => Err(invalid_utf8(&bytes[e.valid_up_to()..])),
        },
    }
}

/// PostgreSQL's error for bytes that are no UTF-8 text, naming those at fault.
fn invalid_utf8(rest: &[u8]) -> datafusion::error::DataFusionError {
    let shown = rest
        .iter()
        .take(if rest.first().is_some_and(|b| *b >= 0xc0) {
            2
        } else {
            1
        })
        .map(|b| format!("0x{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ");
    SqlStateError::new(
        "22021",
        format!("invalid byte sequence for encoding \"UTF8\": {shown}"),
    )
    .into()
}

fn bytes_of(value: &ScalarValue) -> Option<&[u8]> {
    match value {
        ScalarValue::Binary(b) | ScalarValue::LargeBinary(b) | ScalarValue::BinaryView(b) => {
            b.as_deref()
        }
        _ => None,
    }
}

/// An explicit cast between `bytea` and text as PostgreSQL makes it, `None` for other
/// expressions: bytea's text is its output form (`\x610062`, as `bytea_output` is
/// `hex`), and text becomes bytea as bytea input reads it (`'\x41'` is one byte, `\\` a
/// backslash, other backslashes refused with 22P02). Arrow's casts took the bytes as
/// they are, so `E'a\\000b'::bytea::text` sent a NUL inside a text.
pub fn cast(expr: &Expr, schema: &DFSchema) -> Option<Expr> {
    let Expr::Cast(Cast { expr: inner, field }) = expr else {
        return None;
    };
    let text =
        |t: &DataType| matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
    let bytes = |t: &DataType| {
        matches!(
            t,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView
        )
    };
    let from = inner.get_type(schema).ok()?;
    let to = field.data_type();
    let function = if bytes(&from) && text(to) {
        RowFunction::udf(
            "byteaout",
            vec![vec![DataType::Binary]],
            DataType::Utf8,
            Volatility::Immutable,
            Arc::new(|args| {
                let hex = |b: &[u8]| format!("\\x{}", encode(b, Format::Hex));
                Ok(ScalarValue::Utf8(bytes_of(&args[0]).map(hex)))
            }),
        )
    } else if text(&from) && bytes(to) {
        RowFunction::udf(
            "byteain",
            vec![vec![DataType::Utf8]],
            DataType::Binary,
            Volatility::Immutable,
            Arc::new(|args| {
                let value = text_arg(&args[0])
                    .map(henge_ingest::value::parse_bytea)
                    .transpose()
                    .map_err(|e| {
                        DataFusionError::External(Box::new(henge_ingest::Error::from(e)))
                    })?;
                Ok(ScalarValue::Binary(value))
            }),
        )
    } else {
        return None;
    };
    let converted = Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(function),
        vec![(**inner).clone()],
    ));
    // The outer cast keeps the target's own kind of text or bytes (a no-op for the usual).
    Some(Expr::Cast(Cast {
        expr: Box::new(converted),
        field: field.clone(),
    }))
}

/// `convert_to`, `convert_from`, `octet_length` and `unistr`.
fn register_conversions(ctx: &SessionContext) {
    let (text, bytea) = (|| DataType::Utf8, || DataType::Binary);
    ctx.register_udf(RowFunction::udf(
        "convert_to",
        vec![vec![text(), text()]],
        bytea(),
        Volatility::Stable,
        Arc::new(|args| {
            let (Some(value), Some(name)) = (text_arg(&args[0]), text_arg(&args[1])) else {
                return Ok(ScalarValue::Binary(None));
            };
            let charset = Charset::named(name, "destination")?;
            Ok(ScalarValue::Binary(Some(encoded(value, charset)?)))
        }),
    ));
    ctx.register_udf(RowFunction::udf(
        "convert_from",
        vec![vec![bytea(), text()]],
        text(),
        Volatility::Stable,
        Arc::new(|args| {
            let (Some(value), Some(name)) = (bytes_of(&args[0]), text_arg(&args[1])) else {
                return Ok(ScalarValue::Utf8(None));
            };
            let charset = Charset::named(name, "source")?;
            Ok(ScalarValue::Utf8(Some(decoded(value, charset)?)))
        }),
    ));
    ctx.register_udf(RowFunction::udf(
        "octet_length",
        vec![vec![text()], vec![bytea()]],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(|args| {
            let length = text_arg(&args[0])
                .map(str::len)
                .or_else(|| bytes_of(&args[0]).map(<[u8]>::len));
            Ok(ScalarValue::Int32(length.map(|n| n as i32)))
        }),
    ));
    ctx.register_udf(RowFunction::udf(
        "unistr",
        vec![vec![text()]],
        text(),
        Volatility::Immutable,
        Arc::new(|args| {
            Ok(ScalarValue::Utf8(
                text_arg(&args[0]).map(unistr).transpose()?,
            ))
        }),
    ));
}

/// `unistr(text)`: `\\` is a backslash, and `\XXXX`, `\+XXXXXX`, `\uXXXX` and
/// `\UXXXXXXXX` (hexadecimal) the code point, a UTF-16 surrogate pair making one.
fn unistr(text: &str) -> Result<String> {
    let escape_error = || -> datafusion::error::DataFusionError {
        SqlStateError::new(
            "42601",
            "invalid Unicode escape: Unicode escapes must be \\XXXX, \\+XXXXXX, \\uXXXX, or \\UXXXXXXXX",
        )
        .into()
    };
    let pair_error = || -> datafusion::error::DataFusionError {
        SqlStateError::new("42601", "invalid Unicode surrogate pair").into()
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut high: Option<u32> = None;
    while let Some(at) = rest.find('\\') {
        if high.is_some() && at != 0 {
            return Err(pair_error());
        }
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('\\') {
            if high.is_some() {
                return Err(pair_error());
            }
            out.push('\\');
            rest = after;
            continue;
        }
        let (digits, skip) = match rest.as_bytes().first() {
            Some(b'+') => (6, 1),
            Some(b'u') => (4, 1),
            Some(b'U') => (8, 1),
            _ => (4, 0),
        };
        let hex = rest
            .get(skip..skip + digits)
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(escape_error)?;
        let code = u32::from_str_radix(hex, 16).map_err(|_| escape_error())?;
        if code == 0 {
            return Err(SqlStateError::new(
                "22023",
                format!("invalid Unicode code point: {:04X}", code),
            )
            .into());
        }
        rest = &rest[skip + digits..];
        match (high.take(), code) {
            (None, 0xD800..=0xDBFF) => high = Some(code),
            (Some(h), 0xDC00..=0xDFFF) => {
                let combined = 0x10000 + ((h - 0xD800) << 10) + (code - 0xDC00);
                out.push(char::from_u32(combined).ok_or_else(escape_error)?);
            }
            (Some(_), _) | (None, 0xDC00..=0xDFFF) => return Err(pair_error()),
            (None, _) => out.push(char::from_u32(code).ok_or_else(escape_error)?),
        }
    }
    if high.is_some() {
        return Err(pair_error());
    }
    out.push_str(rest);
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Hex,
    Base64,
    Escape,
}

fn format_named(name: &str) -> Result<Format> {
    match name.to_ascii_lowercase().as_str() {
        "hex" => Ok(Format::Hex),
        "base64" => Ok(Format::Base64),
        "escape" => Ok(Format::Escape),
        _ => Err(invalid(format!("unrecognized encoding: \"{name}\""))),
    }
}

fn invalid(message: impl Into<String>) -> datafusion::error::DataFusionError {
    SqlStateError::new("22023", message).into()
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `bytes` in one of PostgreSQL's text formats.
fn encode(bytes: &[u8], format: Format) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    match format {
        Format::Hex => {
            for b in bytes {
                out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
                out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
            }
        }
        Format::Base64 => {
            let mut line = 0;
            for chunk in bytes.chunks(3) {
                // PostgreSQL breaks the text into lines of 76 characters.
                if line == 76 {
                    out.push('\n');
                    line = 0;
                }
                let n = chunk
                    .iter()
                    .enumerate()
                    .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
                for i in 0..4 {
                    if i <= chunk.len() {
                        out.push(char::from(BASE64[(n >> (18 - 6 * i) & 63) as usize]));
                    } else {
                        out.push('=');
                    }
                }
                line += 4;
            }
        }
        Format::Escape => {
            for &b in bytes {
                match b {
                    b'\\' => out.push_str("\\\\"),
                    0 | 0x80..=0xff => out.push_str(&format!("\\{b:03o}")),
                    _ => out.push(char::from(b)),
                }
            }
        }
    }
    out
}

/// The bytes a text in one of PostgreSQL's formats stands for.
fn decode(text: &str, format: Format) -> Result<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    match format {
        Format::Hex => {
            let digit = |c: u8| -> Result<u8> {
                (c as char).to_digit(16).map(|d| d as u8).ok_or_else(|| {
                    invalid(format!(
                        "invalid hexadecimal digit: \"{}\"",
                        String::from_utf8_lossy(&[c])
                    ))
                })
            };
            let mut i = 0;
            while i < bytes.len() {
                if matches!(bytes[i], b' ' | b'\n' | b'\t' | b'\r') {
                    i += 1;
                    continue;
                }
                let high = digit(bytes[i])?;
                let Some(&low) = bytes.get(i + 1) else {
                    return Err(invalid("invalid hexadecimal data: odd number of digits"));
                };
                out.push(high << 4 | digit(low)?);
                i += 2;
            }
        }
        Format::Base64 => {
            let mut n = 0u32;
            let mut count = 0;
            let mut padding = 0;
            let mut ended = false;
            for (at, &c) in bytes.iter().enumerate() {
                if matches!(c, b' ' | b'\n' | b'\t' | b'\r') {
                    continue;
                }
                if ended {
                    return Err(base64_end());
                }
                let value = if c == b'=' {
                    // Padding only ends a group of four.
                    if count < 2 {
                        return Err(base64_end());
                    }
                    padding += 1;
                    0
                } else if padding > 0 {
                    return Err(base64_end());
                } else {
                    match BASE64.iter().position(|&b| b == c) {
                        Some(p) => p as u32,
                        None => {
                            let symbol = text[at..].chars().next().unwrap_or('?');
                            return Err(invalid(format!(
                                "invalid symbol \"{symbol}\" found while decoding base64 sequence"
                            )));
                        }
                    }
                };
                n = n << 6 | value;
                count += 1;
                if count == 4 {
                    let group = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
                    out.extend_from_slice(&group[..3 - padding]);
                    n = 0;
                    count = 0;
                    ended = padding > 0;
                }
            }
            if count != 0 {
                return Err(base64_end());
            }
        }
        Format::Escape => {
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] != b'\\' {
                    out.push(bytes[i]);
                    i += 1;
                } else if bytes.get(i + 1) == Some(&b'\\') {
                    out.push(b'\\');
                    i += 2;
                } else {
                    let octal = bytes.get(i + 1..i + 4).filter(|d| {
                        matches!(d[0], b'0'..=b'3')
                            && d[1..].iter().all(|c| matches!(c, b'0'..=b'7'))
                    });
                    let Some(d) = octal else {
                        return Err(SqlStateError::new(
                            "22P02",
                            "invalid input syntax for type bytea",
                        )
                        .into());
                    };
                    out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
                    i += 4;
                }
            }
        }
    }
    Ok(out)
}

fn base64_end() -> datafusion::error::DataFusionError {
    invalid("invalid base64 end sequence")
}

/// `encode(bytea, text) → text` or `decode(text, text) → bytea`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Codec {
    decoding: bool,
    signature: Signature,
}

impl ScalarUDFImpl for Codec {
    fn name(&self) -> &str {
        if self.decoding {
            "decode"
        } else {
            "encode"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let text = |t: &DataType| {
            matches!(
                t,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
            )
        };
        let binary = |t: &DataType| {
            matches!(
                t,
                DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::Null
            )
        };
        match arg_types {
            [data, format] if text(format) && !self.decoding && binary(data) => {
                Ok(vec![DataType::Binary, DataType::Utf8])
            }
            [data, format] if text(format) && self.decoding && text(data) => {
                Ok(vec![DataType::Utf8, DataType::Utf8])
            }
            _ => Err(super::no_such_function(self.name(), arg_types)),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(if self.decoding {
            DataType::Binary
        } else {
            DataType::Utf8
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let decoding = self.decoding;
        on_arrays(&args, |arrays| {
            let formats = arrays[1].as_string::<i32>();
            // The format is almost always a constant: read it once per distinct text.
            let mut last: Option<(&str, Format)> = None;
            let mut format_of = |row: usize| -> Result<Option<Format>> {
                if formats.is_null(row) {
                    return Ok(None);
                }
                let name = formats.value(row);
                if let Some((n, f)) = last {
                    if n == name {
                        return Ok(Some(f));
                    }
                }
                let format = format_named(name)?;
                last = Some((name, format));
                Ok(Some(format))
            };
            if decoding {
                let texts = arrays[0].as_string::<i32>();
                let mut out = BinaryBuilder::new();
                for row in 0..texts.len() {
                    match (texts.is_null(row), format_of(row)?) {
                        (false, Some(format)) => {
                            out.append_value(decode(texts.value(row), format)?)
                        }
                        _ => out.append_null(),
                    }
                }
                Ok(Arc::new(out.finish()) as ArrayRef)
            } else {
                let data: &BinaryArray = arrays[0].as_binary::<i32>();
                let mut out = StringBuilder::new();
                for row in 0..data.len() {
                    match (data.is_null(row), format_of(row)?) {
                        (false, Some(format)) => out.append_value(encode(data.value(row), format)),
                        _ => out.append_null(),
                    }
                }
                Ok(Arc::new(out.finish()) as ArrayRef)
            }
        })
    }
}

/// `chr(n)`: the character of code point `n`, refusing 0, negatives and what UTF-8
/// cannot hold (54000) as PostgreSQL does.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Chr {
    signature: Signature,
}

impl ScalarUDFImpl for Chr {
    fn name(&self) -> &str {
        "chr"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [t] if t.is_integer() || t == &DataType::Null => Ok(vec![DataType::Int64]),
            _ => Err(super::no_such_function("chr", arg_types)),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        on_arrays(&args, |arrays| {
            let codes = arrays[0].as_primitive::<Int64Type>();
            let limit = |message: String| -> datafusion::error::DataFusionError {
                SqlStateError::new("54000", message).into()
            };
            let chars = codes
                .iter()
                .map(|code| {
                    code.map(|n| match n {
                        0 => Err(limit("null character not permitted".into())),
                        n if n < 0 => Err(SqlStateError::new(
                            "22023",
                            "character number must be positive",
                        )
                        .into()),
                        n if n > 0x10FFFF => Err(limit(format!(
                            "requested character too large for encoding: {n}"
                        ))),
                        n => char::from_u32(n as u32).map(String::from).ok_or_else(|| {
                            limit(format!("requested character not valid for encoding: {n}"))
                        }),
                    })
                    .transpose()
                })
                .collect::<Result<StringArray>>()?;
            Ok(Arc::new(chars) as ArrayRef)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_with_padding_and_lines() {
        assert_eq!(encode(b"hello", Format::Base64), "aGVsbG8=");
        assert_eq!(encode(b"hi", Format::Base64), "aGk=");
        assert_eq!(encode(b"", Format::Base64), "");
        let long = vec![b'x'; 100];
        let text = encode(&long, Format::Base64);
        assert_eq!(text.lines().next().unwrap().len(), 76);
        assert_eq!(decode(&text, Format::Base64).unwrap(), long);
        assert!(decode("aGVsbA", Format::Base64).is_err());
        assert!(decode("aGVs=bG8", Format::Base64).is_err());
        assert!(decode("a!==", Format::Base64).is_err());
    }

    #[test]
    fn hex_and_escape() {
        assert_eq!(encode(b"123\0\x01", Format::Hex), "3132330001");
        assert_eq!(decode("31 32", Format::Hex).unwrap(), b"12");
        assert!(decode("313", Format::Hex).is_err());
        assert_eq!(encode(b"a\\\0\xff", Format::Escape), "a\\\\\\000\\377");
        assert_eq!(
            decode("a\\\\\\000\\377", Format::Escape).unwrap(),
            b"a\\\0\xff"
        );
        assert!(decode("\\9", Format::Escape).is_err());
    }
}
