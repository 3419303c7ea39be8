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

/// The 16 bytes of a uuid in standard form (uuid's binary wire format); `None` for text
/// that is not one in that form.
pub fn uuid_bytes(standard: &str) -> Option<[u8; 16]> {
    let text = standard.as_bytes();
    if text.len() != 36 || [8, 13, 18, 23].iter().any(|&i| text[i] != b'-') {
        return None;
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let mut digits = text.iter().copied().filter(|b| *b != b'-');
    let mut out = [0u8; 16];
    for byte in &mut out {
        let high = nibble(digits.next()?)?;
        *byte = high << 4 | nibble(digits.next()?)?;
    }
    Some(out)
}

/// The standard text of 16 bytes.
pub fn uuid_text(bytes: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 32];
    for (i, b) in bytes.iter().enumerate() {
        digits[2 * i] = HEX[usize::from(b >> 4)];
        digits[2 * i + 1] = HEX[usize::from(b & 15)];
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
