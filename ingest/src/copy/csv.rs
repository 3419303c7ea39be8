//! PostgreSQL's COPY CSV format: delimiter-separated fields that may be quoted; inside
//! quotes the escape character (by default the quote itself, doubled) protects quotes.
//! An unquoted field equal to the NULL string is NULL; a quoted one never is, unless
//! FORCE_NULL says so.

use super::{CopyOptions, Fields};
use crate::error::{Error, Result};

/// Splits one record (without its final newline) into fields.
pub(crate) fn split(record: &[u8], options: &CopyOptions, out: &mut Fields) -> Result<()> {
    let CopyOptions {
        delimiter,
        quote,
        escape,
        ..
    } = *options;
    let null = options.null.as_bytes();
    let mut i = 0;
    loop {
        let data_start = out.data.len();
        let raw_start = i;
        let mut quoted = false;
        while i < record.len() && record[i] != delimiter {
            if record[i] != quote {
                out.data.push(record[i]);
                i += 1;
                continue;
            }
            quoted = true;
            i += 1;
            loop {
                let Some(&b) = record.get(i) else {
                    return Err(Error::BadCopyData("unterminated CSV quoted field".into()));
                };
                if b == escape && matches!(record.get(i + 1), Some(&n) if n == quote || n == escape)
                {
                    out.data.push(record[i + 1]);
                    i += 2;
                } else if b == quote {
                    i += 1;
                    break;
                } else {
                    out.data.push(b);
                    i += 1;
                }
            }
        }
        let is_null = !quoted && &record[raw_start..i] == null;
        if is_null {
            out.data.truncate(data_start);
        }
        out.end_field(is_null, quoted);
        if i >= record.len() {
            break;
        }
        i += 1;
    }
    Ok(())
}
