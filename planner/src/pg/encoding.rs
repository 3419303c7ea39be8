//! PostgreSQL's `encode(bytea, format)` and `decode(text, format)` for the formats
//! `hex`, `base64` (padded, in lines of 76 characters) and `escape`, and `chr` with
//! PostgreSQL's limits. DataFusion's `encode` writes base64 without padding and knows no
//! `escape`.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryBuilder, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::error::Result;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{on_arrays, SqlStateError};

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
