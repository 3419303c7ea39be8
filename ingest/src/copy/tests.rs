use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use henge_storage::{ColumnDef, ColumnType, Granularity, TableDef};

use super::*;

fn table() -> Arc<TableDef> {
    let column = |name: &str, ty, nullable| ColumnDef {
        name: name.into(),
        ty,
        nullable,
        rollup: None,
        default: None,
    };
    Arc::new(TableDef {
        id: 1,
        name: "ev".into(),
        columns: vec![
            column("ts", ColumnType::Timestamp, false),
            column("page", ColumnType::Text, true),
            column("added", ColumnType::BigInt, true),
        ],
        time_column: Some("ts".into()),
        segment_granularity: Granularity::Hour,
        window_period_secs: henge_storage::schema::DEFAULT_WINDOW_PERIOD_SECS,
        rollup: false,
        query_granularity: None,
        limits: Default::default(),
    })
}

fn load(options: CopyOptions, pieces: &[&[u8]]) -> Result<(u64, Vec<RecordBatch>)> {
    let mut reader = CopyReader::new(table(), vec![0, 1, 2], options)?;
    for piece in pieces {
        reader.feed(piece)?;
    }
    reader.finish()
}

fn pages(batches: &[RecordBatch]) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column(1).as_string::<i32>();
            (0..a.len())
                .map(|i| a.is_valid(i).then(|| a.value(i).to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn text_format_escapes_and_nulls() {
    let input = b"2024-01-01 00:00:00\ta\\tb\\\\c\t1\n2024-01-01 00:00:01\t\\N\t\\N\n2024-01-01 00:00:02\t\t-3\n\\.\nignored";
    let (rows, batches) = load(CopyOptions::new(CopyFormat::Text), &[input]).unwrap();
    assert_eq!(rows, 3);
    assert_eq!(
        pages(&batches),
        vec![Some("a\tb\\c".into()), None, Some(String::new())]
    );
    let added = batches[0].column(2).as_primitive::<Int64Type>();
    assert_eq!(added.value(2), -3);
    assert!(added.is_null(1));
}

#[test]
fn csv_quoted_empty_string_is_not_null_and_records_span_feeds() {
    let mut options = CopyOptions::new(CopyFormat::Csv);
    options.header = true;
    let input: &[u8] = b"ts,page,added\r\n2024-01-01 00:00:00,\"\",1\r\n2024-01-01 00:00:01,,2\n2024-01-01 00:00:02,\"multi\nline, \"\"quoted\"\"\",3";
    // Feed one byte at a time: records and quotes cross every boundary.
    let pieces: Vec<&[u8]> = input.chunks(1).collect();
    let (rows, batches) = load(options, &pieces).unwrap();
    assert_eq!(rows, 3);
    assert_eq!(
        pages(&batches),
        vec![
            Some(String::new()),
            None,
            Some("multi\nline, \"quoted\"".into())
        ]
    );
}

#[test]
fn csv_ends_at_an_unquoted_end_marker() {
    let input = b"2024-01-01 00:00:00,\"\\.\",1\n\\.\n2024-01-01 00:00:01,ignored,2\n";
    let (rows, batches) = load(CopyOptions::new(CopyFormat::Csv), &[input]).unwrap();
    assert_eq!(rows, 1);
    assert_eq!(pages(&batches), vec![Some("\\.".into())]);
}

#[test]
fn force_null_and_force_not_null() {
    let mut options = CopyOptions::new(CopyFormat::Csv);
    options.force_not_null = vec!["page".into()];
    let (_, batches) = load(options, &[b"2024-01-01 00:00:00,,1\n"]).unwrap();
    assert_eq!(pages(&batches), vec![Some(String::new())]);

    let mut options = CopyOptions::new(CopyFormat::Csv);
    options.force_null = vec!["page".into()];
    let (_, batches) = load(options, &[b"2024-01-01 00:00:00,\"\",1\n"]).unwrap();
    assert_eq!(pages(&batches), vec![None]);
}

#[test]
fn a_bad_value_names_its_line_and_column() {
    let mut options = CopyOptions::new(CopyFormat::Csv);
    options.header = true;
    let input = b"ts,page,added\n2024-01-01 00:00:00,a,1\n2024-01-01 00:00:00,b,x\n";
    let err = load(options, &[input]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "COPY ev, line 3, column added: invalid input syntax for type bigint: \"x\""
    );
}

#[test]
fn missing_and_extra_columns_and_not_null() {
    let options = CopyOptions::new(CopyFormat::Csv);
    let err = load(options.clone(), &[b"2024-01-01 00:00:00,a\n"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "COPY ev, line 1: missing data for column \"added\""
    );
    let err = load(options.clone(), &[b"2024-01-01 00:00:00,a,1,2\n"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "COPY ev, line 1: extra data after last expected column"
    );
    let err = load(options.clone(), &[b",a,1\n"]).unwrap_err();
    assert!(matches!(err.root(), Error::NotNull { .. }), "{err}");
    let err = load(options, &[b"2024-01-01 00:00:00,\"open,1\n"]).unwrap_err();
    assert!(
        err.to_string().contains("unterminated CSV quoted field"),
        "{err}"
    );
}

#[test]
fn a_custom_delimiter_null_and_escape() {
    let mut options = CopyOptions::new(CopyFormat::Csv);
    options.delimiter = b'|';
    options.null = "NULL".into();
    options.escape = b'\\';
    let (_, batches) = load(
        options,
        &[b"2024-01-01 00:00:00|\"a\\\"b\"|NULL\n2024-01-01 00:00:00|NULL|7\n"],
    )
    .unwrap();
    assert_eq!(pages(&batches), vec![Some("a\"b".into()), None]);
}

/// Loads `input` as the server does: cut into pieces of at least `piece` bytes, each
/// parsed apart, put back in order; errors numbered from the input's first line.
fn load_in_pieces(
    options: CopyOptions,
    input: &[u8],
    piece: usize,
) -> Result<(u64, Vec<RecordBatch>)> {
    let mut splitter = CopySplitter::new(&options).with_piece_bytes(piece);
    let mut pieces = Vec::new();
    // Fed in messages of 7 bytes, so that records straddle them.
    for message in input.chunks(7) {
        pieces.extend(splitter.push(message));
    }
    pieces.push(splitter.finish());
    // Every piece is parsed (the server parses the next ones while one is staged); the
    // results are taken in order.
    let parsed: Vec<Result<ParsedPiece>> = pieces
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| {
            let mut options = options.clone();
            options.header &= i == 0;
            ParsedPiece::parse(CopyReader::new(table(), vec![0, 1, 2], options)?, bytes)
        })
        .collect();
    let (mut rows, mut lines, mut batches) = (0, 0, Vec::new());
    for parsed in parsed {
        let parsed = parsed.map_err(|e| e.after_lines(lines))?;
        rows += parsed
            .batches
            .iter()
            .map(|b| b.num_rows() as u64)
            .sum::<u64>();
        lines += parsed.lines;
        batches.extend(parsed.batches);
        if parsed.ended {
            break;
        }
    }
    Ok((rows, batches))
}

#[test]
fn pieces_parsed_apart_load_as_the_whole_input_does() {
    let mut text = Vec::new();
    let mut csv = b"ts,page,added\n".to_vec();
    for i in 0..500 {
        let page = match i % 4 {
            0 => "plain".to_owned(),
            1 => format!("tab\\there {i}"),
            2 => "\\N".to_owned(),
            _ => format!("line\\nbreak {i}"),
        };
        text.extend(
            format!(
                "2024-01-01 00:{:02}:{:02}\t{page}\t{i}\n",
                i / 60 % 60,
                i % 60
            )
            .bytes(),
        );
        let page = match i % 4 {
            0 => "plain".to_owned(),
            1 => format!("\"quoted, with \"\"quotes\"\" {i}\""),
            2 => String::new(),
            _ => format!("\"two\nlines {i}\""),
        };
        csv.extend(
            format!(
                "2024-01-01 00:{:02}:{:02},{page},{i}\n",
                i / 60 % 60,
                i % 60
            )
            .bytes(),
        );
    }
    let mut with_header = CopyOptions::new(CopyFormat::Csv);
    with_header.header = true;
    for (options, input) in [
        (CopyOptions::new(CopyFormat::Text), &text),
        (with_header, &csv),
    ] {
        let (rows, whole) = load(options.clone(), &[input]).unwrap();
        assert_eq!(rows, 500);
        for piece in [1, 100, 1000, 1 << 20] {
            let (rows, pieces) = load_in_pieces(options.clone(), input, piece).unwrap();
            assert_eq!(rows, 500, "pieces of {piece}");
            assert_eq!(pages(&pieces), pages(&whole), "pieces of {piece}");
        }
    }
}

#[test]
fn pieces_number_lines_from_the_start_and_stop_at_the_end_marker() {
    let mut text = Vec::new();
    for i in 0..300 {
        text.extend(format!("2024-01-01 00:00:{:02}\tp\t{i}\n", i % 60).bytes());
    }
    text.extend(b"2024-01-01 00:00:00\tp\tnot a number\n");
    let options = CopyOptions::new(CopyFormat::Text);
    let whole = load(options.clone(), &[&text]).unwrap_err().to_string();
    assert!(whole.contains("line 301"), "{whole}");
    for piece in [1, 500, 4000] {
        let pieces = load_in_pieces(options.clone(), &text, piece)
            .unwrap_err()
            .to_string();
        assert_eq!(pieces, whole);
    }
    // An end marker in the middle: the rows after it are not loaded, whatever piece
    // they are in.
    let mut ended = text[..text.len() / 2].to_vec();
    let cut = ended.iter().rposition(|&b| b == b'\n').unwrap() + 1;
    ended.truncate(cut);
    let kept = ended.iter().filter(|&&b| b == b'\n').count() as u64;
    ended.extend(b"\\.\n");
    ended.extend(&text);
    for piece in [1, 500, 4000] {
        let (rows, _) = load_in_pieces(options.clone(), &ended, piece).unwrap();
        assert_eq!(rows, kept);
    }
}
