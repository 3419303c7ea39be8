//! PostgreSQL's `uuid` values, held as their standard text: 32 lower-case hex digits in
//! groups of 8-4-4-4-12. In that form text order is PostgreSQL's order of uuids (bytewise)
//! and text equality theirs, so sorting, grouping and filtering work on the text.

use crate::error::{ValueError, ValueErrorKind};

/// Reads a uuid as PostgreSQL's input does: hex digits in either case, optionally in
/// braces, with or without a hyphen after any group of four digits; returns the standard
/// form.
pub fn uuid_in(input: &str) -> Result<String, ValueError> {
    let bad = || {
        ValueError::of_kind(
            ValueErrorKind::InvalidSyntax,
            format!("invalid input syntax for type uuid: \"{input}\""),
        )
    };
    let text = match input.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}').ok_or_else(bad)?,
        None => input,
    };
    let mut digits = [0u8; 32];
    let mut count = 0;
    let mut bytes = text.bytes().peekable();
    while let Some(b) = bytes.next() {
        if !b.is_ascii_hexdigit() || count == 32 {
            return Err(bad());
        }
        digits[count] = b.to_ascii_lowercase();
        count += 1;
        // A hyphen may follow a group of four, never end the value.
        if count % 4 == 0 && bytes.peek() == Some(&b'-') {
            bytes.next();
            if bytes.peek().is_none() {
                return Err(bad());
            }
        }
    }
    if count != 32 {
        return Err(bad());
    }
    Ok(standard(&digits))
}

/// The standard text of 32 lower-case hex digits.
fn standard(digits: &[u8; 32]) -> String {
    let mut out = String::with_capacity(36);
    for (i, d) in digits.iter().enumerate() {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        out.push(*d as char);
    }
    out
}

/// The 16 bytes of a uuid in standard form (uuid's binary wire format).
pub fn uuid_bytes(standard: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = standard.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// The standard text of 16 bytes.
pub fn uuid_text(bytes: &[u8; 16]) -> String {
    let mut digits = [0u8; 32];
    for (i, b) in bytes.iter().enumerate() {
        let hex = format!("{b:02x}");
        digits[2 * i] = hex.as_bytes()[0];
        digits[2 * i + 1] = hex.as_bytes()[1];
    }
    standard(&digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_postgresql_forms() {
        let want = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        for input in [
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        ] {
            assert_eq!(uuid_in(input).unwrap(), want, "{input}");
        }
        for bad in [
            "not-a-uuid",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
            "a0eeb-c99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "",
        ] {
            assert!(uuid_in(bad).is_err(), "{bad}");
        }
        let bytes = uuid_bytes(want).unwrap();
        assert_eq!(bytes[0], 0xa0);
        assert_eq!(uuid_text(&bytes), want);
    }
}
