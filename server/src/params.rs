//! Bind parameters of the extended protocol: from the client's bytes (text or binary) to
//! DataFusion values of the type the query needs.

use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::scalar::ScalarValue;
use henge_ingest::value;
use henge_storage::schema::DEFAULT_NUMERIC;
use pgwire::api::Type;

use crate::error::{code, PgError};
use crate::wire::encode::{pg_type, PG_EPOCH_DAYS, PG_EPOCH_MICROS};

/// The Arrow type a parameter the client declared as `ty` is read as.
pub fn arrow_type(ty: &Type) -> Option<DataType> {
    Some(match *ty {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::NUMERIC => DataType::Decimal128(38, 10),
        Type::TEXT
        | Type::VARCHAR
        | Type::BPCHAR
        | Type::NAME
        | Type::JSON
        | Type::JSONB
        | Type::UUID => DataType::Utf8,
        Type::BYTEA => DataType::Binary,
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
        _ => return None,
    })
}

/// Decodes one parameter. `declared` is the type the client sent (if any), `wanted` the
/// type DataFusion inferred from the query (if any).
pub fn decode(
    bytes: Option<&[u8]>,
    binary: bool,
    declared: Option<&Type>,
    wanted: Option<&DataType>,
    zone: &Tz,
) -> Result<ScalarValue, PgError> {
    // Without a declared type the client read ours from ParameterDescription.
    let described = wanted.map(pg_type).unwrap_or(Type::TEXT);
    let declared = declared.unwrap_or(&described);
    let declared_arrow = arrow_type(declared);
    let target = wanted
        .or(declared_arrow.as_ref())
        .cloned()
        .unwrap_or(DataType::Utf8);
    let Some(bytes) = bytes else {
        return ScalarValue::try_from(&target).map_err(PgError::from);
    };
    let value = if binary {
        decode_binary(bytes, declared)?
    } else {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            PgError::new(
                code::INVALID_TEXT_REPRESENTATION,
                "invalid byte sequence for encoding \"UTF8\"",
            )
        })?;
        decode_text(text, &target, zone)?
    };
    let value = read_as_declared(value, declared)?;
    if value.data_type() == target {
        return Ok(value);
    }
    value.cast_to(&target).map_err(PgError::from)
}

/// A parameter declared `uuid`, `json` or `jsonb` read by that type's input function, as
/// PostgreSQL reads it before the query sees it: refused when it is not one (22P02), in
/// its standard form (a uuid) or normal form (jsonb) when it is.
fn read_as_declared(value: ScalarValue, declared: &Type) -> Result<ScalarValue, PgError> {
    let ScalarValue::Utf8(Some(text)) = &value else {
        return Ok(value);
    };
    let read = match *declared {
        Type::UUID => henge_ingest::uuid::uuid_in(text),
        Type::JSONB => henge_ingest::json::jsonb_in(text),
        Type::JSON => henge_ingest::json::json_in(text).map(|()| text.clone()),
        _ => return Ok(value),
    };
    read.map(|text| ScalarValue::Utf8(Some(text)))
        .map_err(|e| PgError::from(henge_ingest::Error::from(e)))
}

fn decode_text(text: &str, target: &DataType, zone: &Tz) -> Result<ScalarValue, PgError> {
    if let Some(value) = unconstrained(text, target) {
        return value;
    }
    match henge_planner::literal::parse(text, target, zone) {
        Some(value) => value.map_err(|e| PgError::from(henge_ingest::Error::from(e))),
        None => Ok(ScalarValue::Utf8(Some(text.to_owned()))),
    }
}

/// A numeric parameter of the type an unconstrained numeric is held in: PostgreSQL keeps
/// every digit of a parameter (its type has no scale), so one with more places than Henge
/// holds is refused, not rounded. `None` for other types.
fn unconstrained(text: &str, target: &DataType) -> Option<Result<ScalarValue, PgError>> {
    let (precision, scale) = DEFAULT_NUMERIC;
    if *target != DataType::Decimal128(precision, scale) {
        return None;
    }
    Some(
        value::parse_numeric_unconstrained(text)
            .map(|(v, _)| ScalarValue::Decimal128(Some(v), precision, scale))
            .map_err(|e| PgError::from(henge_ingest::Error::from(e))),
    )
}

fn decode_binary(b: &[u8], ty: &Type) -> Result<ScalarValue, PgError> {
    let wrong_size = || {
        PgError::new(
            code::PROTOCOL_VIOLATION,
            format!(
                "incorrect binary data format in bind parameter of type {}",
                ty.name()
            ),
        )
    };
    fn be<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
        b.try_into().ok()
    }
    Ok(match *ty {
        Type::BOOL => match b {
            [v] => ScalarValue::Boolean(Some(*v != 0)),
            _ => return Err(wrong_size()),
        },
        Type::INT2 => ScalarValue::Int16(Some(i16::from_be_bytes(be(b).ok_or_else(wrong_size)?))),
        Type::INT4 => ScalarValue::Int32(Some(i32::from_be_bytes(be(b).ok_or_else(wrong_size)?))),
        Type::INT8 => ScalarValue::Int64(Some(i64::from_be_bytes(be(b).ok_or_else(wrong_size)?))),
        Type::FLOAT4 => {
            ScalarValue::Float32(Some(f32::from_be_bytes(be(b).ok_or_else(wrong_size)?)))
        }
        Type::FLOAT8 => {
            ScalarValue::Float64(Some(f64::from_be_bytes(be(b).ok_or_else(wrong_size)?)))
        }
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON => {
            ScalarValue::Utf8(Some(
                String::from_utf8(b.to_vec()).map_err(|_| wrong_size())?,
            ))
        }
        Type::UUID => ScalarValue::Utf8(Some(henge_ingest::uuid::uuid_text(
            &be::<16>(b).ok_or_else(wrong_size)?,
        ))),
        // jsonb's binary form is its text after a version byte, 1.
        Type::JSONB => match b.split_first() {
            Some((1, text)) => ScalarValue::Utf8(Some(
                String::from_utf8(text.to_vec()).map_err(|_| wrong_size())?,
            )),
            _ => return Err(wrong_size()),
        },
        Type::BYTEA => ScalarValue::Binary(Some(b.to_vec())),
        Type::DATE => ScalarValue::Date32(Some(
            i32::from_be_bytes(be(b).ok_or_else(wrong_size)?) + PG_EPOCH_DAYS,
        )),
        Type::TIMESTAMP => ScalarValue::TimestampMicrosecond(
            Some(i64::from_be_bytes(be(b).ok_or_else(wrong_size)?) + PG_EPOCH_MICROS),
            None,
        ),
        Type::TIMESTAMPTZ => ScalarValue::TimestampMicrosecond(
            Some(i64::from_be_bytes(be(b).ok_or_else(wrong_size)?) + PG_EPOCH_MICROS),
            Some("+00:00".into()),
        ),
        Type::NUMERIC => {
            let text = numeric_binary_to_text(b).ok_or_else(wrong_size)?;
            let (precision, scale) = DEFAULT_NUMERIC;
            unconstrained(&text, &DataType::Decimal128(precision, scale))
                .unwrap_or_else(|| unreachable!("the default numeric is unconstrained's"))?
        }
        _ => {
            return Err(PgError::unsupported(format!(
                "binary parameters of type {} are not supported",
                ty.name()
            )))
        }
    })
}

/// PostgreSQL's binary numeric to its decimal text.
/// The scale a numeric parameter was sent with (its text's places, or the display scale of
/// its binary form), for a value an unconstrained numeric column keeps with it; `None`
/// for NULL or a value that is no numeric.
pub fn numeric_scale(bytes: Option<&[u8]>, binary: bool) -> Option<i16> {
    let bytes = bytes?;
    if binary {
        let dscale = i16::from_be_bytes(bytes.get(6..8)?.try_into().ok()?);
        return (dscale >= 0).then_some(dscale);
    }
    let text = std::str::from_utf8(bytes).ok()?;
    value::parse_numeric_unconstrained(text)
        .ok()
        .map(|(_, scale)| scale)
}

pub(crate) fn numeric_binary_to_text(b: &[u8]) -> Option<String> {
    let word =
        |i: usize| -> Option<i16> { Some(i16::from_be_bytes(b.get(i..i + 2)?.try_into().ok()?)) };
    let ndigits = word(0)? as usize;
    let weight = i32::from(word(2)?);
    let sign = word(4)? as u16;
    if sign == 0xC000 {
        return None;
    }
    let mut digits = String::new();
    for i in 0..ndigits {
        digits.push_str(&format!("{:04}", word(8 + 2 * i)?));
    }
    // The value is 0.digits * 10000^(weight + 1).
    let exponent = 4 * (weight + 1) - digits.len() as i32;
    let sign = if sign == 0x4000 { "-" } else { "" };
    Some(format!("{sign}0{digits}e{exponent}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use henge_planner::literal::utc;

    #[test]
    fn numeric_from_binary() {
        // 12345.67: ndigits 3, weight 1, [1, 2345, 6700]
        let b = [0, 3, 0, 1, 0, 0, 0, 2, 0, 1, 0x09, 0x29, 0x1a, 0x2c];
        let v = decode(
            Some(&b),
            true,
            Some(&Type::NUMERIC),
            Some(&DataType::Decimal128(10, 2)),
            &utc(),
        )
        .unwrap();
        assert_eq!(v, ScalarValue::Decimal128(Some(1234567), 10, 2));
    }

    #[test]
    fn uuid_and_json_parameters_are_read_by_their_input_functions() {
        let read = |bytes: &[u8], binary: bool, ty: &Type| {
            decode(Some(bytes), binary, Some(ty), None, &utc())
        };
        assert_eq!(
            read(b"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", false, &Type::UUID).unwrap(),
            ScalarValue::Utf8(Some("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()))
        );
        assert_eq!(read(b"nope", false, &Type::UUID).unwrap_err().code, "22P02");
        assert_eq!(
            read(br#"{"b":1, "a":2}"#, false, &Type::JSONB).unwrap(),
            ScalarValue::Utf8(Some(r#"{"a": 2, "b": 1}"#.into()))
        );
        assert_eq!(
            read(b"\x01{bad", true, &Type::JSONB).unwrap_err().code,
            "22P02"
        );
        assert_eq!(read(b"{bad", false, &Type::JSON).unwrap_err().code, "22P02");
        assert_eq!(
            read(b"[1,  2]", false, &Type::JSON).unwrap(),
            ScalarValue::Utf8(Some("[1,  2]".into()))
        );
    }

    #[test]
    fn text_parameters_take_the_inferred_type() {
        let v = decode(Some(b"42"), false, None, Some(&DataType::Int64), &utc()).unwrap();
        assert_eq!(v, ScalarValue::Int64(Some(42)));
        let e = decode(Some(b"x"), false, None, Some(&DataType::Int32), &utc()).unwrap_err();
        assert_eq!(e.code, code::INVALID_TEXT_REPRESENTATION);
        let v = decode(None, false, Some(&Type::INT4), None, &utc()).unwrap();
        assert_eq!(v, ScalarValue::Int32(None));
    }
}
