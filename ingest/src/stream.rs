//! Sources and pipelines in the engine: their definitions (kept in the metadata store) and
//! the offsets each pipeline has made durable with its rows.
//!
//! A pipeline's rows and its offsets after them are one write-ahead-log record
//! ([`Engine::append_from`]); a persist records the offsets of the rows it persists in the
//! same metadata change as their pieces; a start takes the recorded offsets and then those
//! of the log records replayed. So the offsets a pipeline resumes from are exactly those
//! whose rows are durable. Resetting the offsets is a log record too, ordered with the
//! pipeline's rows.

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use henge_storage::stream::{Offsets, PipelineDef, SourceDef};

use crate::engine::{Engine, Table};
use crate::error::{Error, Result};

/// How many of a pipeline's record errors are kept to show.
pub const ERRORS_KEPT: usize = 10;

/// What a running pipeline reports (`sys.pipelines`); kept in memory only.
#[derive(Debug, Clone, Default)]
pub struct PipelineStatus {
    /// `starting`, `running`, `retrying`, `paused`, `stopped` or `failed`.
    pub state: &'static str,
    /// Why it retries or failed.
    pub detail: Option<String>,
    /// Each partition's high watermark (the offset after its last record), as last seen.
    pub high_watermarks: BTreeMap<i32, i64>,
    /// Since the server started: records read, rows written, bytes of record values.
    pub records: u64,
    pub rows: u64,
    pub bytes: u64,
    /// Records left out (that did not parse, or whose values did not fit).
    pub skipped: u64,
    /// The first record errors: partition, offset and why.
    pub errors: Vec<(i32, i64, String)>,
    /// The last record error.
    pub last_error: Option<(i32, i64, String)>,
    /// Rows written per second, over the last few seconds.
    pub rows_per_second: f64,
}

impl PipelineStatus {
    /// Counts `count` records lost from partition `partition` from `offset` on (deleted
    /// from the topic before they were read), `why` kept as an error.
    pub fn lose(&mut self, partition: i32, offset: i64, count: u64, why: String) {
        self.skipped += count;
        let error = (partition, offset, why);
        if self.errors.len() < ERRORS_KEPT {
            self.errors.push(error.clone());
        }
        self.last_error = Some(error);
    }

    /// Counts records left out, keeping the first few and the last.
    pub fn skip(&mut self, errors: &[(i32, i64, String)]) {
        self.skipped += errors.len() as u64;
        let room = ERRORS_KEPT.saturating_sub(self.errors.len());
        self.errors.extend(errors.iter().take(room).cloned());
        if let Some(last) = errors.last() {
            self.last_error = Some(last.clone());
        }
    }
}

impl Engine {
    /// Every source, ordered by name.
    pub fn sources(&self) -> Vec<SourceDef> {
        self.metadata.sources()
    }

    /// The source of this name.
    pub fn source(&self, name: &str) -> Option<SourceDef> {
        self.metadata.sources().into_iter().find(|s| s.name == name)
    }

    /// Creates a source (its `id` is assigned here).
    pub fn create_source(&self, def: SourceDef) -> Result<SourceDef> {
        let _ddl = self.ddl.lock();
        let def = self.metadata.create_source(def)?;
        self.bump_generation();
        tracing::info!(source = %def.name, id = def.id, topic = %def.kafka.topic, "source created");
        Ok(def)
    }

    /// Drops a source no pipeline reads.
    pub fn drop_source(&self, name: &str) -> Result<()> {
        let _ddl = self.ddl.lock();
        if let Some((pipeline, _)) = self
            .metadata
            .pipelines()
            .into_iter()
            .find(|(p, _)| p.source == name)
        {
            return Err(Error::Dependents(format!(
                "cannot drop source {name} because pipeline {} reads it",
                pipeline.name
            )));
        }
        self.metadata.drop_source(name)?;
        self.bump_generation();
        tracing::info!(source = %name, "source dropped");
        Ok(())
    }

    /// Every pipeline, ordered by name.
    pub fn pipelines(&self) -> Vec<PipelineDef> {
        self.metadata
            .pipelines()
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    }

    /// The pipeline of this name.
    pub fn pipeline(&self, name: &str) -> Option<PipelineDef> {
        self.pipelines().into_iter().find(|p| p.name == name)
    }

    /// Creates a pipeline from `def.source` into `def.table` (its `id` is assigned here;
    /// the caller has checked its query).
    pub fn create_pipeline(&self, def: PipelineDef) -> Result<PipelineDef> {
        let _ddl = self.ddl.lock();
        if self.source(&def.source).is_none() {
            return Err(Error::Storage(henge_storage::Error::TableNotFound(
                def.source.clone(),
            )));
        }
        if self.table(&def.table).is_none() {
            return Err(Error::TableNotFound(def.table.clone()));
        }
        let def = self.metadata.put_pipeline(def, true)?;
        self.stream_offsets.lock().insert(def.id, Offsets::new());
        tracing::info!(pipeline = %def.name, id = def.id, source = %def.source, table = %def.table, "pipeline created");
        Ok(def)
    }

    /// Pauses or resumes a pipeline (kept across restarts).
    pub fn set_paused(&self, name: &str, paused: bool) -> Result<PipelineDef> {
        let _ddl = self.ddl.lock();
        let mut def = self
            .pipeline(name)
            .ok_or_else(|| henge_storage::Error::PipelineNotFound(name.to_owned()))?;
        def.paused = paused;
        let def = self.metadata.put_pipeline(def, false)?;
        tracing::info!(pipeline = %name, paused, "pipeline state changed");
        Ok(def)
    }

    /// Drops a pipeline and its offsets (the caller has stopped it).
    pub fn drop_pipeline(&self, name: &str) -> Result<()> {
        let _ddl = self.ddl.lock();
        let def = self
            .pipeline(name)
            .ok_or_else(|| henge_storage::Error::PipelineNotFound(name.to_owned()))?;
        self.metadata.drop_pipeline(name)?;
        self.stream_offsets.lock().remove(&def.id);
        self.pipeline_status.lock().remove(&def.id);
        tracing::info!(pipeline = %name, "pipeline dropped");
        Ok(())
    }

    /// The pipelines that write into table `name`.
    pub fn pipelines_into(&self, name: &str) -> Vec<PipelineDef> {
        self.pipelines()
            .into_iter()
            .filter(|p| p.table == name)
            .collect()
    }

    /// What pipeline `id` last reported.
    pub fn pipeline_status(&self, id: u64) -> PipelineStatus {
        self.pipeline_status
            .lock()
            .get(&id)
            .cloned()
            .unwrap_or_default()
    }

    /// Changes what pipeline `id` reports.
    pub fn report(&self, id: u64, change: impl FnOnce(&mut PipelineStatus)) {
        let mut all = self.pipeline_status.lock();
        let status = all.entry(id).or_default();
        let before = status.state;
        change(status);
        if status.state != before {
            tracing::info!(pipeline = id, state = status.state, detail = ?status.detail, "pipeline state");
        }
    }

    /// Whether `batch` (rows of `table`'s columns) could be appended: its values fit the
    /// table and its times are within the table's limits.
    pub fn admissible(&self, table: &Table, batch: RecordBatch) -> Result<()> {
        let valid = crate::rows::validate_batch(&table.def, batch)?;
        if let Some(window) = crate::limits::TimeWindow::of(&table.def) {
            window.admit(valid)?;
        }
        Ok(())
    }

    /// Sets pipeline `def`'s offsets (every partition's), durably and in order with its
    /// rows; the caller has stopped it.
    pub async fn reset_offsets(&self, def: &PipelineDef, offsets: &Offsets) -> Result<()> {
        let table = self
            .table(&def.table)
            .ok_or_else(|| Error::TableNotFound(def.table.clone()))?;
        self.append_from(&table, Vec::new(), Some((def.id, offsets)))
            .await?;
        tracing::info!(pipeline = %def.name, ?offsets, "pipeline offsets reset");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
    use henge_storage::schema::DEFAULT_WINDOW_PERIOD_SECS;
    use henge_storage::stream::{KafkaOptions, OnError, RecordFormat, StartAt};
    use henge_storage::{ColumnDef, ColumnType, Granularity, TableDef};

    use crate::engine::{Engine, EngineOptions};

    fn open(dir: &std::path::Path) -> Engine {
        Engine::open(dir, &EngineOptions::default()).unwrap()
    }

    fn column(name: &str, ty: ColumnType) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            ty,
            nullable: true,
            rollup: None,
            default: None,
        }
    }

    fn setup(
        engine: &Engine,
    ) -> (
        Arc<crate::engine::Table>,
        henge_storage::stream::PipelineDef,
    ) {
        let table = engine
            .create_table(TableDef {
                id: 0,
                name: "events".into(),
                columns: vec![
                    column("ts", ColumnType::Timestamp),
                    column("n", ColumnType::BigInt),
                ],
                time_column: Some("ts".into()),
                segment_granularity: Granularity::Hour,
                window_period_secs: DEFAULT_WINDOW_PERIOD_SECS,
                rollup: false,
                query_granularity: None,
                limits: Default::default(),
            })
            .unwrap();
        engine
            .create_source(henge_storage::stream::SourceDef {
                id: 0,
                name: "events_in".into(),
                columns: Vec::new(),
                kafka: KafkaOptions {
                    brokers: "127.0.0.1:9092".into(),
                    topic: "events".into(),
                    start: StartAt::Earliest,
                    security: BTreeMap::new(),
                    on_data_loss: Default::default(),
                },
                format: RecordFormat::Json,
            })
            .unwrap();
        let pipeline = engine
            .create_pipeline(henge_storage::stream::PipelineDef {
                id: 0,
                name: "load".into(),
                source: "events_in".into(),
                table: "events".into(),
                query: "SELECT * FROM events_in".into(),
                on_error: OnError::Skip,
                paused: false,
            })
            .unwrap();
        (table, pipeline)
    }

    fn rows(table: &crate::engine::Table, n: i64) -> Vec<RecordBatch> {
        vec![RecordBatch::try_new(
            table.def.arrow_schema(),
            vec![
                Arc::new(TimestampMicrosecondArray::from(vec![0; n as usize])),
                Arc::new(Int64Array::from((0..n).collect::<Vec<_>>())),
            ],
        )
        .unwrap()]
    }

    #[tokio::test]
    async fn offsets_are_durable_with_their_rows_through_the_log_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let pipeline = {
            let engine = open(dir.path());
            let (table, pipeline) = setup(&engine);
            let first: BTreeMap<i32, i64> = [(0, 10), (1, 4)].into();
            engine
                .append_from(&table, rows(&table, 3), Some((pipeline.id, &first)))
                .await
                .unwrap();
            engine.persist().await.unwrap();
            // After the persist: rows and offsets only in the log, and a record of no rows.
            let second: BTreeMap<i32, i64> = [(0, 12), (1, 4), (2, 1)].into();
            engine
                .append_from(&table, rows(&table, 2), Some((pipeline.id, &second)))
                .await
                .unwrap();
            let third: BTreeMap<i32, i64> = [(0, 15), (1, 4), (2, 1)].into();
            engine
                .append_from(&table, Vec::new(), Some((pipeline.id, &third)))
                .await
                .unwrap();
            assert_eq!(engine.pipeline_offsets(pipeline.id), third);
            engine.close();
            pipeline
        };
        // As after a crash: the log is replayed over the persisted offsets.
        let engine = open(dir.path());
        let expected: BTreeMap<i32, i64> = [(0, 15), (1, 4), (2, 1)].into();
        assert_eq!(engine.pipeline_offsets(pipeline.id), expected);
        // The rows after the persist, replayed into memory.
        assert_eq!(engine.table("events").unwrap().buffer.rows(), 2);
        // A persist with no rows buffered still records offsets logged since the last.
        engine.persist().await.unwrap();
        let reset: BTreeMap<i32, i64> = [(0, 0)].into();
        engine.reset_offsets(&pipeline, &reset).await.unwrap();
        engine.persist().await.unwrap();
        engine.close();
        drop(engine);
        let engine = open(dir.path());
        assert_eq!(engine.pipeline_offsets(pipeline.id), reset);
        // Dropping the pipeline forgets them; its source can go then, not before.
        assert!(engine.drop_source("events_in").is_err());
        engine.drop_pipeline("load").unwrap();
        engine.drop_source("events_in").unwrap();
        assert!(engine.pipeline_offsets(pipeline.id).is_empty());
    }
}
