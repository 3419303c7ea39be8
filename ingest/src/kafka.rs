//! Reading a Kafka topic for a pipeline, and records into rows of the source's columns.
//!
//! The client is librdkafka, through the `rdkafka` crate. The pure-Rust `rskafka` was
//! considered and left: it hands out the records of aborted transactions (exactly-once
//! needs `read_committed`), and librdkafka also brings every compression codec, SASL
//! PLAIN/SCRAM and TLS, offsets-for-times and the fetch pipelining that throughput needs,
//! at the cost of building its C sources once.
//!
//! Henge does not commit offsets to Kafka and uses no consumer group: a pipeline assigns
//! itself every partition of the topic at the offsets durable with its rows (see
//! [`crate::stream`]), so Kafka's group protocol has nothing to coordinate.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use henge_storage::stream::{Offsets, RecordField, RecordFormat, SourceDef, StartAt};
use henge_storage::{ColumnDef, Granularity, TableDef};

use crate::json::{self, Kind, Node};
use crate::rows::RowBuilder;

/// How long a metadata or watermark request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A problem talking to Kafka, as librdkafka words it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct KafkaError {
    pub message: String,
    /// The offset a partition was to be read from is not in it (any more).
    pub out_of_range: bool,
}

impl KafkaError {
    pub fn new(message: String) -> KafkaError {
        KafkaError {
            message,
            out_of_range: false,
        }
    }
}

impl From<rdkafka::error::KafkaError> for KafkaError {
    fn from(e: rdkafka::error::KafkaError) -> KafkaError {
        use rdkafka::types::RDKafkaErrorCode;
        // With auto.offset.reset = error, librdkafka reports a fetch from an offset that
        // is out of range as this, and stops fetching that partition.
        let out_of_range = matches!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange)
        );
        KafkaError {
            message: e.to_string(),
            out_of_range,
        }
    }
}

/// One record as read.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// Milliseconds since the epoch.
    pub timestamp: Option<i64>,
}

/// What librdkafka says, kept quiet: its log lines at debug level (it repeats them for as
/// long as brokers are unreachable), its last global error kept for the pipeline to report
/// (why brokers refuse it: a bad password, say), which logs one line per state change.
#[derive(Default)]
pub struct QuietContext {
    last_error: std::sync::Mutex<Option<String>>,
}

impl ClientContext for QuietContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        tracing::debug!(target: "librdkafka", ?level, facility, message);
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::debug!(target: "librdkafka", %error, reason);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.to_owned());
    }
}

impl ConsumerContext for QuietContext {}

/// A consumer of one topic, assigned all of its partitions.
pub struct TopicReader {
    consumer: BaseConsumer<QuietContext>,
    topic: String,
}

impl TopicReader {
    /// Connects to the source's brokers. `client` names the consumer in the brokers' logs.
    pub fn connect(source: &SourceDef, client: &str) -> Result<TopicReader, KafkaError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &source.kafka.brokers)
            .set("client.id", client)
            // Required by librdkafka's consumer; no group is joined (partitions are
            // assigned, not subscribed) and no offset is committed.
            .set("group.id", client)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "error")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "50")
            // Records read ahead are bounded (64 MiB); when that bound is reached,
            // librdkafka waits fetch.queue.backoff.ms before fetching again, by default a
            // second, which left the pipeline idle most of the time.
            .set("queued.max.messages.kbytes", "65536")
            .set("fetch.queue.backoff.ms", "10");
        for (key, value) in &source.kafka.security {
            config.set(key, value);
        }
        let consumer: BaseConsumer<QuietContext> =
            config.create_with_context(QuietContext::default())?;
        Ok(TopicReader {
            consumer,
            topic: source.kafka.topic.clone(),
        })
    }

    /// The client's last complaint about its brokers (unreachable, refusing credentials),
    /// taken: `None` when it has none since last asked.
    pub fn take_client_error(&self) -> Option<String> {
        // Its complaints arrive as events of the consumer's queue, served by polling it:
        // done here only while no partition is assigned, so no record can come instead.
        let unassigned = self
            .consumer
            .assignment()
            .map(|a| a.count() == 0)
            .unwrap_or(false);
        if unassigned {
            for _ in 0..5 {
                if self.consumer.poll(Duration::from_millis(50)).is_some() {
                    break;
                }
            }
        }
        self.consumer
            .context()
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// The topic's partitions, as the brokers know them now.
    pub fn partitions(&self) -> Result<Vec<i32>, KafkaError> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topic), REQUEST_TIMEOUT)?;
        let topic = metadata
            .topics()
            .iter()
            .find(|t| t.name() == self.topic)
            .ok_or_else(|| KafkaError::new(format!("topic \"{}\" does not exist", self.topic)))?;
        if let Some(error) = topic.error() {
            return Err(KafkaError::new(format!(
                "topic \"{}\": {error:?}",
                self.topic
            )));
        }
        let mut partitions: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
        partitions.sort_unstable();
        Ok(partitions)
    }

    /// The lowest and the next offset of a partition (its log start and high watermark).
    /// Every one of `partitions`' first and next offsets, in two requests for all of them
    /// (the earliest and the latest offsets, as [`TopicReader::watermarks`] asks one
    /// partition for), not two per partition.
    pub fn all_watermarks(
        &self,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, (i64, i64)>, KafkaError> {
        let ask = |at: Offset| -> Result<BTreeMap<i32, i64>, KafkaError> {
            let mut list = TopicPartitionList::new();
            for &partition in partitions {
                list.add_partition_offset(&self.topic, partition, at)?;
            }
            let found = self.consumer.offsets_for_times(list, REQUEST_TIMEOUT)?;
            let mut offsets = BTreeMap::new();
            for element in found.elements() {
                element.error()?;
                match element.offset() {
                    Offset::Offset(offset) => offsets.insert(element.partition(), offset),
                    other => {
                        return Err(KafkaError::new(format!(
                            "partition {} has no offset to start at ({other:?})",
                            element.partition()
                        )))
                    }
                };
            }
            Ok(offsets)
        };
        let low = ask(Offset::Beginning)?;
        let high = ask(Offset::End)?;
        Ok(low
            .into_iter()
            .filter_map(|(p, low)| high.get(&p).map(|&high| (p, (low, high))))
            .collect())
    }

    pub fn watermarks(&self, partition: i32) -> Result<(i64, i64), KafkaError> {
        Ok(self
            .consumer
            .fetch_watermarks(&self.topic, partition, REQUEST_TIMEOUT)?)
    }

    /// Where reading `partitions` begins for a pipeline that has no offsets for them.
    pub fn start_offsets(&self, partitions: &[i32], start: StartAt) -> Result<Offsets, KafkaError> {
        let mut offsets = Offsets::new();
        match start {
            StartAt::Earliest | StartAt::Latest => {
                let marks = self.all_watermarks(partitions)?;
                for (partition, (low, high)) in marks {
                    offsets.insert(
                        partition,
                        if start == StartAt::Earliest {
                            low
                        } else {
                            high
                        },
                    );
                }
            }
            StartAt::Time { micros } => {
                let mut list = TopicPartitionList::new();
                for &partition in partitions {
                    list.add_partition_offset(
                        &self.topic,
                        partition,
                        Offset::Offset(micros / 1000),
                    )?;
                }
                let found = self.consumer.offsets_for_times(list, REQUEST_TIMEOUT)?;
                for element in found.elements() {
                    let offset = match element.offset() {
                        Offset::Offset(offset) => offset,
                        // No record that late: from the end.
                        _ => self.watermarks(element.partition())?.1,
                    };
                    offsets.insert(element.partition(), offset);
                }
            }
        }
        Ok(offsets)
    }

    /// Reads every partition of `offsets` from its offset on.
    pub fn assign(&self, offsets: &Offsets) -> Result<(), KafkaError> {
        let mut list = TopicPartitionList::new();
        for (&partition, &offset) in offsets {
            list.add_partition_offset(&self.topic, partition, Offset::Offset(offset))?;
        }
        self.consumer.assign(&list)?;
        Ok(())
    }

    /// Each assigned partition's position: the offset of the next record the consumer will
    /// hand out (past transaction markers and aborted records it skipped), where known.
    pub fn positions(&self) -> Result<Offsets, KafkaError> {
        let mut positions = Offsets::new();
        for element in self.consumer.position()?.elements() {
            if let Offset::Offset(offset) = element.offset() {
                positions.insert(element.partition(), offset);
            }
        }
        Ok(positions)
    }

    /// The next record, waiting at most `timeout`; `None` when none came.
    pub fn poll(&self, timeout: Duration) -> Option<Result<Record, KafkaError>> {
        let message = self.consumer.poll(timeout)?;
        Some(
            message
                .map(|m| Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    timestamp: m.timestamp().to_millis(),
                })
                .map_err(KafkaError::from),
        )
    }
}

/// Records made into rows of the source's columns.
#[derive(Debug, Default)]
pub struct Decoded {
    pub batches: Vec<RecordBatch>,
    /// Each row's record: (partition, offset).
    pub rows: Vec<(i32, i64)>,
    /// Records that could not be read: (partition, offset, why).
    pub errors: Vec<(i32, i64, String)>,
}

/// The table-like definition of a source's rows: its columns, all nullable.
pub fn source_table(source: &SourceDef) -> TableDef {
    TableDef {
        id: source.id,
        name: source.name.clone(),
        columns: source
            .columns
            .iter()
            .map(|c| ColumnDef {
                name: c.name.clone(),
                ty: c.ty,
                nullable: true,
                rollup: None,
                default: None,
            })
            .collect(),
        time_column: None,
        segment_granularity: Granularity::All,
        window_period_secs: 0,
        rollup: false,
        query_granularity: None,
        limits: Default::default(),
    }
}

/// A JSON path (`$`, `$.a.b`, `$.items[0]`, `$['odd key']`) as the steps of
/// [`Node::at_path`]; `None` if it is not one.
pub fn parse_path(path: &str) -> Option<Vec<String>> {
    let mut rest = path.trim().strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end == 0 {
                return None;
            }
            steps.push(after[..end].to_owned());
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix("['") {
            let end = after.find("']")?;
            steps.push(after[..end].to_owned());
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let index: i64 = after[..end].trim().parse().ok()?;
            steps.push(index.to_string());
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

/// Reads `records` as rows of `source`'s columns. A record that does not parse, or whose
/// values do not fit their columns, is left out and named in `errors`.
///
/// JSON values are picked out of each record in one pass without building its document
/// ([`json::Picker`]); values borrow from the records where they can.
pub fn decode(source: &SourceDef, table: &Arc<TableDef>, records: &[Record]) -> Decoded {
    let paths: Vec<Option<Vec<String>>> = source
        .columns
        .iter()
        .map(|c| match &c.field {
            RecordField::Value { path: Some(path) } => parse_path(path),
            RecordField::Value { path: None } => Some(vec![c.name.clone()]),
            _ => None,
        })
        .collect();
    let picker = json::Picker::new(&paths);
    let mut slots: Vec<json::Picked> = vec![None; source.columns.len()];
    let mut decoded = Decoded::default();
    let mut batches = Vec::new();
    // Records whose rows are in `batches`, and those whose rows are in the builder.
    let mut rows: Vec<usize> = Vec::with_capacity(records.len());
    let mut pending: Vec<usize> = Vec::new();
    let mut builder = RowBuilder::new(table.clone());
    for (i, record) in records.iter().enumerate() {
        if let Err(why) = record_texts(source, &paths, &picker, record, &mut slots) {
            decoded.errors.push((record.partition, record.offset, why));
            continue;
        }
        match push_row(&mut builder, &slots) {
            Ok(()) => pending.push(i),
            Err(e) => {
                // The row is part-way into the builder: build the pending rows again
                // without it (at most a batch's rows per bad record; they read as before).
                decoded
                    .errors
                    .push((record.partition, record.offset, e.to_string()));
                builder = RowBuilder::new(table.clone());
                pending.retain(|&j| {
                    let again = record_texts(source, &paths, &picker, &records[j], &mut slots)
                        .map_err(crate::Error::Internal)
                        .and_then(|()| push_row(&mut builder, &slots));
                    // It cannot fail (the same values went in before); if it did, the
                    // record is named, not lost in silence.
                    again
                        .map_err(|e| {
                            let r = &records[j];
                            decoded.errors.push((r.partition, r.offset, e.to_string()))
                        })
                        .is_ok()
                });
            }
        }
        let done = builder.take_batches();
        if !done.is_empty() {
            batches.extend(done);
            rows.append(&mut pending);
        }
    }
    match builder.finish() {
        Ok(done) => {
            batches.extend(done);
            rows.append(&mut pending);
        }
        Err(e) => {
            // Not one record's fault: none of the rows since the last batch is read.
            for &i in &pending {
                let record = &records[i];
                decoded
                    .errors
                    .push((record.partition, record.offset, e.to_string()));
            }
        }
    }
    decoded.batches = batches;
    decoded.rows = rows
        .iter()
        .map(|&i| (records[i].partition, records[i].offset))
        .collect();
    decoded.errors.sort_by_key(|e| (e.0, e.1));
    decoded
}

/// Adds one row of text values to `builder`.
fn push_row(builder: &mut RowBuilder, values: &[json::Picked]) -> crate::Result<()> {
    for (column, value) in values.iter().enumerate() {
        builder.push(column, value.as_deref())?;
    }
    builder.end_row()
}

/// One record's column values as text (`None` for NULL) into `out`.
fn record_texts<'a>(
    source: &SourceDef,
    paths: &[Option<Vec<String>>],
    picker: &json::Picker,
    record: &'a Record,
    out: &mut [json::Picked<'a>],
) -> Result<(), String> {
    let value = match &record.value {
        Some(bytes) => Some(
            std::str::from_utf8(bytes).map_err(|_| "the record's value is not UTF-8".to_owned())?,
        ),
        None => None,
    };
    // NULL unless the record says otherwise (`out` held the record before).
    out.fill(None);
    let not_json = |e: crate::error::ValueError| format!("the record's value is not JSON: {e}");
    match (&source.format, value) {
        // A path crosses an array or ends at one: the whole document.
        (RecordFormat::Json, Some(text)) if !picker.pick(text, out).map_err(not_json)? => {
            let document = json::parse(text).map_err(not_json)?;
            for (slot, path) in out.iter_mut().zip(paths) {
                *slot = path
                    .as_deref()
                    .and_then(|steps| document.at_path(steps))
                    .and_then(json_text)
                    .map(Cow::Owned);
            }
        }
        (RecordFormat::Json, _) => {}
        (RecordFormat::Csv { delimiter }, Some(text)) => {
            let mut fields = csv_fields(text, *delimiter)?.into_iter();
            for (slot, column) in out.iter_mut().zip(&source.columns) {
                if let RecordField::Value { .. } = column.field {
                    *slot = fields.next().flatten().map(Cow::Owned);
                }
            }
        }
        _ => {}
    }
    for (slot, column) in out.iter_mut().zip(&source.columns) {
        match &column.field {
            RecordField::Key => {
                *slot = match &record.key {
                    Some(key) => Some(Cow::Borrowed(
                        std::str::from_utf8(key)
                            .map_err(|_| "the record's key is not UTF-8".to_owned())?,
                    )),
                    None => None,
                }
            }
            RecordField::Partition => *slot = Some(Cow::Owned(record.partition.to_string())),
            RecordField::Offset => *slot = Some(Cow::Owned(record.offset.to_string())),
            RecordField::Timestamp => {
                *slot = record.timestamp.map(|ms| {
                    Cow::Owned(
                        chrono::DateTime::from_timestamp_millis(ms)
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f+00").to_string())
                            .unwrap_or_default(),
                    )
                })
            }
            RecordField::Value { .. } => {}
        }
    }
    Ok(())
}

/// A JSON value as the text a column reads: strings as they are, numbers and booleans as
/// written, objects and arrays as JSON; `None` for JSON null.
fn json_text(node: &Node) -> Option<String> {
    match &node.kind {
        Kind::Null => None,
        Kind::Bool(b) => Some(b.to_string()),
        Kind::Number(n) => Some(n.clone()),
        Kind::String(s) => Some(s.clone()),
        Kind::Array(_) | Kind::Object(_) => {
            let mut out = String::new();
            json::write_compact(node, &mut out).ok()?;
            Some(out)
        }
    }
}

/// The fields of one CSV line: quoted fields may hold the delimiter and doubled quotes; an
/// unquoted empty field is NULL, as COPY's CSV reads it.
fn csv_fields(line: &str, delimiter: u8) -> Result<Vec<Option<String>>, String> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let delimiter = char::from(delimiter);
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            quoted = true;
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated CSV quoted field".into()),
                }
            }
        }
        loop {
            match chars.next() {
                Some(c) if c == delimiter => break,
                Some(c) if quoted => {
                    return Err(format!("unexpected \"{c}\" after a quoted CSV field"))
                }
                Some(c) => field.push(c),
                None => {
                    fields.push((quoted || !field.is_empty()).then_some(field));
                    return Ok(fields);
                }
            }
        }
        fields.push((quoted || !field.is_empty()).then_some(field));
    }
}

/// Every partition's offset after `records` (the next to read), on top of `offsets`.
pub fn advance(offsets: &Offsets, records: &[Record]) -> Offsets {
    let mut after: BTreeMap<i32, i64> = offsets.clone();
    for record in records {
        let next = after.entry(record.partition).or_insert(0);
        *next = (*next).max(record.offset + 1);
    }
    after
}

#[cfg(test)]
mod tests {
    use super::*;
    use henge_storage::stream::{KafkaOptions, SourceColumn};
    use henge_storage::ColumnType;

    fn source(format: RecordFormat, columns: Vec<(&str, ColumnType, RecordField)>) -> SourceDef {
        SourceDef {
            id: 9,
            name: "s".into(),
            columns: columns
                .into_iter()
                .map(|(name, ty, field)| SourceColumn {
                    name: name.into(),
                    ty,
                    field,
                })
                .collect(),
            kafka: KafkaOptions {
                brokers: "b".into(),
                topic: "t".into(),
                start: StartAt::Earliest,
                security: Default::default(),
                on_data_loss: Default::default(),
            },
            format,
        }
    }

    fn record(offset: i64, value: &str) -> Record {
        Record {
            partition: 2,
            offset,
            key: Some(b"k".to_vec()),
            value: Some(value.as_bytes().to_vec()),
            timestamp: Some(1_717_200_000_123),
        }
    }

    fn shown(decoded: &Decoded) -> Vec<String> {
        let batch = &decoded.batches[0];
        (0..batch.num_rows())
            .map(|r| {
                (0..batch.num_columns())
                    .map(|c| {
                        arrow::util::display::array_value_to_string(batch.column(c), r).unwrap()
                    })
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    }

    #[test]
    fn paths_read_as_steps() {
        assert_eq!(parse_path("$").unwrap(), Vec::<String>::new());
        assert_eq!(parse_path("$.a.b").unwrap(), ["a", "b"]);
        assert_eq!(parse_path("$.items[1].p").unwrap(), ["items", "1", "p"]);
        assert_eq!(parse_path("$['odd key'][-1]").unwrap(), ["odd key", "-1"]);
        for bad in ["a.b", "$.", "$..a", "$[x]", "$['a"] {
            assert!(parse_path(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn json_records_become_rows_and_bad_ones_are_named() {
        let value = |path: &str| RecordField::Value {
            path: Some(path.into()),
        };
        let def = source(
            RecordFormat::Json,
            vec![
                ("ts", ColumnType::TimestampTz, value("$.time")),
                ("user_id", ColumnType::Text, value("$.user.id")),
                ("n", ColumnType::BigInt, RecordField::Value { path: None }),
                ("tags", ColumnType::Jsonb, value("$.tags")),
                ("k", ColumnType::Text, RecordField::Key),
                ("p", ColumnType::Integer, RecordField::Partition),
                ("o", ColumnType::BigInt, RecordField::Offset),
                ("kt", ColumnType::TimestampTz, RecordField::Timestamp),
            ],
        );
        let table = Arc::new(source_table(&def));
        let records = [
            record(
                5,
                r#"{"time": "2024-06-01T10:00:00Z", "user": {"id": "u1"}, "n": 3, "tags": ["a", {"b": 1}]}"#,
            ),
            record(6, "not json"),
            record(7, r#"{"time": "2024-06-01T10:00:01Z", "n": "many"}"#),
            record(8, r#"{"time": "2024-06-01T10:00:02Z", "n": null}"#),
            // A record without a value (a tombstone): its value columns are NULL, not
            // those of the record before.
            Record {
                value: None,
                ..record(9, "")
            },
        ];
        let decoded = decode(&def, &table, &records);
        assert_eq!(
            shown(&decoded),
            [
                "2024-06-01T10:00:00Z|u1|3|[\"a\", {\"b\": 1}]|k|2|5|2024-06-01T00:00:00.123Z",
                "2024-06-01T10:00:02Z||||k|2|8|2024-06-01T00:00:00.123Z",
                "||||k|2|9|2024-06-01T00:00:00.123Z",
            ]
        );
        assert_eq!(decoded.rows, [(2, 5), (2, 8), (2, 9)]);
        let errors: Vec<(i64, &str)> = decoded
            .errors
            .iter()
            .map(|(_, o, why)| (*o, why.as_str()))
            .collect();
        assert_eq!(errors[0].0, 6);
        assert!(errors[0].1.contains("not JSON"), "{}", errors[0].1);
        assert_eq!(errors[1].0, 7);
        assert!(errors[1].1.contains("bigint"), "{}", errors[1].1);
    }

    #[test]
    fn csv_records_fill_the_value_columns_in_order() {
        let value = RecordField::Value { path: None };
        let def = source(
            RecordFormat::Csv { delimiter: b',' },
            vec![
                ("a", ColumnType::Text, value.clone()),
                ("o", ColumnType::BigInt, RecordField::Offset),
                ("b", ColumnType::Integer, value.clone()),
                ("c", ColumnType::Text, value),
            ],
        );
        let table = Arc::new(source_table(&def));
        let decoded = decode(
            &def,
            &table,
            &[
                record(1, "x,7,\"q,\"\"uoted\"\"\"\n"),
                record(2, ",8,"),
                record(3, "\"open,1,2"),
            ],
        );
        assert_eq!(shown(&decoded), ["x|1|7|q,\"uoted\"", "|2|8|"]);
        assert_eq!(decoded.errors.len(), 1);
    }

    #[test]
    fn offsets_advance_past_the_records_read() {
        let before: Offsets = [(0, 10), (1, 3)].into();
        let records = [record(4, "{}"), record(9, "{}")];
        let after = advance(&before, &records);
        assert_eq!(after, [(0, 10), (1, 3), (2, 10)].into());
    }
}
