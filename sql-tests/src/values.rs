//! Result values as sqllogictest compares them: PostgreSQL's text form, `NULL` for NULL
//! and `(empty)` for the empty string, whichever protocol and format carried them.

use tokio_postgres::types::{FromSql, Type};

/// Any value, as the raw bytes the server sent.
pub struct Raw<'a>(pub &'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// How a text value is written in an .slt file.
pub fn display_text(value: Option<&str>) -> String {
    match value {
        None => "NULL".into(),
        Some("") => "(empty)".into(),
        Some(s) => s.to_owned(),
    }
}

/// The text form of a binary-format value of type `ty`.
pub fn binary_to_text(ty: &Type, b: &[u8]) -> String {
    let be8 = |b: &[u8]| <[u8; 8]>::try_from(b).unwrap_or_default();
    let be4 = |b: &[u8]| <[u8; 4]>::try_from(b).unwrap_or_default();
    match *ty {
        Type::BOOL => (if b.first() == Some(&1) { "t" } else { "f" }).into(),
        Type::INT2 => i16::from_be_bytes(<[u8; 2]>::try_from(b).unwrap_or_default()).to_string(),
        Type::INT4 => i32::from_be_bytes(be4(b)).to_string(),
        Type::INT8 => i64::from_be_bytes(be8(b)).to_string(),
        Type::FLOAT4 => float_text(
            f64::from(f32::from_be_bytes(be4(b))),
            format!("{:e}", f32::from_be_bytes(be4(b))),
            6,
        ),
        Type::FLOAT8 => {
            let v = f64::from_be_bytes(be8(b));
            float_text(v, format!("{v:e}"), 15)
        }
        Type::NUMERIC => numeric_text(b),
        Type::BYTEA => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("\\x{hex}")
        }
        Type::DATE => henge_ingest::text::date_text(i32::from_be_bytes(be4(b)) + 10_957),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => {
            let micros = i64::from_be_bytes(be8(b)) + 946_684_800_000_000;
            let utc = henge_ingest::value::utc();
            let zone = (*ty == Type::TIMESTAMPTZ).then_some(&utc);
            henge_ingest::text::timestamp_text(micros, zone)
        }
        Type::TIME => time_of_day(i64::from_be_bytes(be8(b))),
        Type::UUID => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            )
        }
        // A version byte (1), then the text.
        Type::JSONB => match b.split_first() {
            Some((1, text)) => String::from_utf8_lossy(text).into_owned(),
            _ => format!("<bad jsonb {b:?}>"),
        },
        // Microseconds, days, months; written as PostgreSQL writes an interval.
        Type::INTERVAL if b.len() == 16 => {
            henge_ingest::interval::format_interval(henge_ingest::interval::Interval {
                micros: i64::from_be_bytes(be8(&b[..8])),
                days: i32::from_be_bytes(be4(&b[8..12])),
                months: i32::from_be_bytes(be4(&b[12..])),
            })
        }
        _ if matches!(ty.kind(), tokio_postgres::types::Kind::Array(_)) => array_text(b),
        _ => display_text(Some(&String::from_utf8_lossy(b))),
    }
}

/// A binary array (dimensions, then elements in row-major order) in PostgreSQL's text
/// form: `{{1,2},{3,4}}`, elements quoted where PostgreSQL quotes them.
fn array_text(b: &[u8]) -> String {
    let int = |at: usize| {
        b.get(at..at + 4)
            .map(|w| i32::from_be_bytes(<[u8; 4]>::try_from(w).unwrap_or_default()))
            .unwrap_or(-1)
    };
    let dims = int(0).max(0) as usize;
    let element = Type::from_oid(int(8) as u32).unwrap_or(Type::TEXT);
    let lengths: Vec<usize> = (0..dims).map(|d| int(12 + 8 * d).max(0) as usize).collect();
    let mut at = 12 + 8 * dims;
    let mut cells = Vec::new();
    for _ in 0..lengths.iter().product::<usize>() {
        let len = int(at);
        at += 4;
        if len < 0 {
            cells.push("NULL".to_owned());
            continue;
        }
        let raw = &b[at..at + len as usize];
        at += len as usize;
        let text = binary_to_text(&element, raw);
        let text = if text == "(empty)" && raw.is_empty() {
            String::new()
        } else {
            text
        };
        let quoted = text.is_empty()
            || text.eq_ignore_ascii_case("null")
            || text
                .chars()
                .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_ascii_whitespace());
        cells.push(match quoted {
            true => format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"")),
            false => text,
        });
    }
    if lengths.is_empty() {
        return "{}".into();
    }
    fn nest(cells: &mut std::vec::IntoIter<String>, lengths: &[usize]) -> String {
        let parts: Vec<String> = (0..lengths[0])
            .map(|_| match lengths.len() {
                1 => cells.next().unwrap_or_default(),
                _ => nest(cells, &lengths[1..]),
            })
            .collect();
        format!("{{{}}}", parts.join(","))
    }
    nest(&mut cells.into_iter(), &lengths)
}

/// Microseconds since midnight as `HH:MM:SS[.fraction]`.
fn time_of_day(micros: i64) -> String {
    let (secs, frac) = (micros / 1_000_000, micros % 1_000_000);
    let mut s = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if frac != 0 {
        s.push_str(format!(".{frac:06}").trim_end_matches('0'));
    }
    s
}

fn float_text(v: f64, exp_form: String, max_plain: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let (mantissa, exponent) = exp_form.split_once('e').unwrap_or((&exp_form, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if v != 0.0 && (exponent < -4 || exponent >= max_plain) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    // Within the plain range Rust's shortest representation matches PostgreSQL's.
    format!("{v}")
}

fn numeric_text(b: &[u8]) -> String {
    let word = |i: usize| i16::from_be_bytes([b[i], b[i + 1]]);
    if b.len() < 8 {
        return String::new();
    }
    let (ndigits, weight, sign, dscale) = (
        word(0) as usize,
        word(2) as i32,
        word(4) as u16,
        word(6) as usize,
    );
    if sign == 0xC000 {
        return "NaN".into();
    }
    let digits: Vec<i16> = (0..ndigits).map(|i| word(8 + 2 * i)).collect();
    let mut int = String::new();
    for i in 0..=weight.max(-1) {
        let d = digits.get(i as usize).copied().unwrap_or(0);
        if int.is_empty() {
            if d != 0 {
                int = d.to_string();
            }
        } else {
            int.push_str(&format!("{d:04}"));
        }
    }
    if int.is_empty() {
        int.push('0');
    }
    let mut frac = String::new();
    let mut i = weight + 1;
    while frac.len() < dscale {
        let d = if i >= 0 {
            digits.get(i as usize).copied().unwrap_or(0)
        } else {
            0
        };
        frac.push_str(&format!("{d:04}"));
        i += 1;
    }
    frac.truncate(dscale);
    let sign = if sign == 0x4000 { "-" } else { "" };
    if dscale > 0 {
        format!("{sign}{int}.{frac}")
    } else {
        format!("{sign}{int}")
    }
}

/// Every row of every result of `sql` (simple protocol), each value as its text.
pub async fn text_rows(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, tokio_postgres::Error> {
    Ok(client
        .simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}
