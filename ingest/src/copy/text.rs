//! PostgreSQL's COPY text format: delimiter-separated fields, backslash escapes, and a
//! NULL marker (`\N` by default) compared against the field before de-escaping.

use super::{CopyOptions, Fields};
use crate::error::Result;

/// Splits one record (without its newline) into de-escaped fields.
pub(crate) fn split(record: &[u8], options: &CopyOptions, out: &mut Fields) -> Result<()> {
    let delimiter = options.delimiter;
    let null = options.null.as_bytes();
    // Most records have no escapes: their fields are the bytes between delimiters.
    if memchr::memchr(b'\\', record).is_none() {
        let mut start = 0;
        for end in memchr::memchr_iter(delimiter, record).chain([record.len()]) {
            let raw = &record[start..end];
            let is_null = raw == null;
            if !is_null {
                out.data.extend_from_slice(raw);
            }
            out.end_field(is_null, false);
            start = end + 1;
        }
        return Ok(());
    }
    let mut i = 0;
    loop {
        let field_raw_start = i;
        let data_start = out.data.len();
        loop {
            // Plain bytes up to the next delimiter or backslash, copied as one run.
            let run = memchr::memchr2(delimiter, b'\\', &record[i..]).unwrap_or(record.len() - i);
            out.data.extend_from_slice(&record[i..i + run]);
            i += run;
            if i >= record.len() || record[i] == delimiter {
                break;
            }
            let b = record[i];
            let Some(&next) = record.get(i + 1) else {
                // A backslash ending the line stands for itself.
                out.data.push(b);
                i += 1;
                continue;
            };
            i += 2;
            match next {
                b'b' => out.data.push(8),
                b'f' => out.data.push(12),
                b'n' => out.data.push(b'\n'),
                b'r' => out.data.push(b'\r'),
                b't' => out.data.push(b'\t'),
                b'v' => out.data.push(11),
                b'0'..=b'7' => {
                    let mut value = u32::from(next - b'0');
                    for _ in 0..2 {
                        match record.get(i) {
                            Some(&d @ b'0'..=b'7') => {
                                value = value * 8 + u32::from(d - b'0');
                                i += 1;
                            }
                            _ => break,
                        }
                    }
                    out.data.push((value & 0xff) as u8);
                }
                b'x' => {
                    let mut value = 0u32;
                    let mut count = 0;
                    while count < 2 {
                        match record.get(i).and_then(|&d| (d as char).to_digit(16)) {
                            Some(d) => {
                                value = value * 16 + d;
                                i += 1;
                                count += 1;
                            }
                            None => break,
                        }
                    }
                    if count == 0 {
                        out.data.push(b'x');
                    } else {
                        out.data.push(value as u8);
                    }
                }
                other => out.data.push(other),
            }
        }
        let raw = &record[field_raw_start..i];
        let is_null = raw == null;
        if is_null {
            out.data.truncate(data_start);
        }
        out.end_field(is_null, false);
        if i >= record.len() {
            break;
        }
        // Skip the delimiter; a record ending in one has an empty last field.
        i += 1;
    }
    Ok(())
}
