//! Streams in: the definitions of Kafka sources and of the pipelines that feed tables from
//! them, and the offsets a pipeline has made durable. The consumers are `henge-ingest`'s.
//!
//! A source says where records come from (brokers, topic, where to start, how to connect)
//! and how a record becomes a row of its columns (a JSON path per column, or CSV fields in
//! order, and the record's Kafka key, partition, offset and timestamp). A pipeline is an
//! `INSERT INTO table SELECT … FROM source WHERE …`, kept as its SQL text and planned again
//! when it starts. A pipeline's offsets are, per partition, the offset of the next record
//! to read: the rows of every record before it are durable in the table, and no row of a
//! record after it is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::schema::ColumnType;

/// A Kafka source: `CREATE SOURCE name (columns) WITH (connector = 'kafka', …)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDef {
    /// From the tables' sequence (one space of object ids).
    pub id: u64,
    pub name: String,
    pub columns: Vec<SourceColumn>,
    pub kafka: KafkaOptions,
    pub format: RecordFormat,
}

/// One column of a source, and where in a record its value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceColumn {
    pub name: String,
    pub ty: ColumnType,
    pub field: RecordField,
}

/// Where a source column's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum RecordField {
    /// The record's value: for JSON, the value at `path` (`$.user.id`, `$.items[0]`, `$`
    /// for the whole document; by default `$.<column name>`); for CSV, the field at the
    /// column's position among the value columns.
    Value {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
    /// The record's key, as text.
    Key,
    Partition,
    Offset,
    /// The record's timestamp (producer's create time or the broker's log-append time).
    Timestamp,
}

/// How a record's value is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum RecordFormat {
    /// One JSON object per record.
    Json,
    /// One CSV line per record.
    Csv { delimiter: u8 },
}

/// Where a pipeline with no offsets yet starts reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case")]
pub enum StartAt {
    Earliest,
    Latest,
    /// The first record whose timestamp is at or after this (microseconds since the epoch).
    Time {
        micros: i64,
    },
}

/// How to reach a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaOptions {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    pub topic: String,
    pub start: StartAt,
    /// Client settings for security (librdkafka's names: `security.protocol`,
    /// `sasl.mechanism`, `sasl.username`, `sasl.password`, `ssl.ca.location`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub security: BTreeMap<String, String>,
    /// What to do when the next offset to read is no longer in the topic.
    #[serde(default)]
    pub on_data_loss: OnDataLoss,
}

/// What a pipeline does when the offset it would read next is no longer in its partition
/// (the topic's retention deleted the records before they were read, or the topic was
/// deleted and made again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDataLoss {
    /// Stop the pipeline (`failed`), saying which records are gone; `ALTER PIPELINE …
    /// RESET OFFSETS` goes on.
    #[default]
    Fail,
    /// Go on from the partition's earliest record, counting the lost ones as skipped.
    Earliest,
    /// Go on from the partition's end, counting the lost ones as skipped.
    Latest,
}

/// What a pipeline does with a record it cannot ingest (that does not parse, or whose
/// values do not fit the table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Leave it out and count it (the first errors are kept, with partition and offset).
    #[default]
    Skip,
    /// Stop the pipeline at it, to be fixed and resumed.
    Stop,
}

/// A pipeline: `CREATE PIPELINE name AS INSERT INTO table SELECT … FROM source …`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineDef {
    /// From the tables' sequence; names the pipeline's offsets in the log and metadata.
    pub id: u64,
    pub name: String,
    pub source: String,
    pub table: String,
    /// The `SELECT` whose rows are inserted, as written.
    pub query: String,
    #[serde(default)]
    pub on_error: OnError,
    /// `ALTER PIPELINE … PAUSE`d (kept across restarts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

/// A pipeline's offsets: per partition, the offset of the next record to read.
pub type Offsets = BTreeMap<i32, i64>;

/// The serialized form of offsets by pipeline: a list of `[pipeline, [[partition, offset],
/// …]]`, since JSON object keys are strings (and the journal's flattened records cannot read
/// integers back from them).
pub mod offsets_by_pipeline {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Offsets;

    type Listed = Vec<(u64, Vec<(i32, i64)>)>;

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<u64, Offsets>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let listed: Listed = map
            .iter()
            .map(|(&pipeline, offsets)| (pipeline, offsets.iter().map(|(&p, &o)| (p, o)).collect()))
            .collect();
        listed.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<u64, Offsets>, D::Error> {
        let listed = Listed::deserialize(deserializer)?;
        Ok(listed
            .into_iter()
            .map(|(pipeline, offsets)| (pipeline, offsets.into_iter().collect()))
            .collect())
    }
}
