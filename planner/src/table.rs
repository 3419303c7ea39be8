//! `HengeTable`: a Henge table as a DataFusion `TableProvider`.
//!
//! Scans read a snapshot of the table (published segments and the real-time buffer) with
//! [`HengeScanExec`], which applies the query's filters itself: segments are pruned by time
//! and statistics ([`crate::prune`]), rows narrowed by bitmap indexes ([`crate::filter`]).
//! INSERT writes through the ingest engine, so it is logged and atomic like COPY; inside a
//! transaction block its rows wait for COMMIT, and the block's scans read them too.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::DFSchema;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use futures::TryStreamExt;
use henge_ingest::{Engine, SessionWrites, Table};

use crate::filter::IndexFilter;
use crate::options::HengeOptions;
use crate::prune::prune;
use crate::scan::{HengeScanExec, ScanColumns, ScanFilter, ScanInput};

/// One Henge table, as DataFusion plans and runs queries over it.
#[derive(Debug)]
pub struct HengeTable {
    engine: Arc<Engine>,
    table: Arc<Table>,
    schema: SchemaRef,
    /// The columns' DEFAULTs, for INSERTs that leave columns out.
    defaults: HashMap<String, Expr>,
    /// Whether this is the table as INSERT writes it: sketch columns typed as the values
    /// they sketch (and not readable), rather than as the sketches queries read.
    for_insert: bool,
    /// Whether the rows an INSERT brings carry the scales of their unconstrained numerics'
    /// values after the table's columns (see [`HengeTable::for_scaled_insert`]).
    scaled: bool,
}

impl HengeTable {
    /// The table's definition, with PostgreSQL's column types.
    pub fn def(&self) -> &henge_storage::schema::TableDef {
        &self.table.def
    }

    pub fn new(engine: Arc<Engine>, table: Arc<Table>) -> HengeTable {
        let schema = table.def.query_schema();
        let defaults = defaults(&table.def);
        HengeTable {
            engine,
            table,
            schema,
            defaults,
            for_insert: false,
            scaled: false,
        }
    }

    /// The table as the target of an INSERT: its columns as statements bring them, a
    /// sketch column's values rather than the sketches stored. Its sketch columns cannot
    /// be read (an INSERT that reads the table it writes).
    pub fn for_insert(engine: Arc<Engine>, table: Arc<Table>) -> HengeTable {
        HengeTable {
            schema: table.def.arrow_schema(),
            for_insert: true,
            ..HengeTable::new(engine, table)
        }
    }

    /// The table as the target of an INSERT whose rows carry the scale of each value of
    /// an unconstrained numeric after the table's columns ([`henge_storage::TableDef::scaled_schema`]).
    pub fn for_scaled_insert(&self) -> HengeTable {
        HengeTable {
            engine: self.engine.clone(),
            table: self.table.clone(),
            schema: self.table.def.scaled_schema(),
            defaults: self.defaults.clone(),
            for_insert: true,
            scaled: true,
        }
    }

    /// The DEFAULT of each column that has one, as INSERT fills it in.
    pub fn column_defaults(&self) -> HashMap<String, Expr> {
        self.defaults.clone()
    }

    /// The same table with its hidden columns (a rolled-up table's count of ingested rows)
    /// after its own, for [`crate::rollup`]'s rewrites. The hidden columns follow the
    /// table's own in the stored rows too, so column positions are the same in both.
    pub fn with_hidden(&self) -> HengeTable {
        HengeTable {
            engine: self.engine.clone(),
            table: self.table.clone(),
            schema: self.table.schema.clone(),
            defaults: self.defaults.clone(),
            for_insert: false,
            scaled: false,
        }
    }
}

/// The DEFAULT of each column that has one, as a literal (checked when it was declared).
fn defaults(def: &henge_storage::TableDef) -> HashMap<String, Expr> {
    def.columns
        .iter()
        .filter_map(|c| {
            let value = henge_ingest::rows::default_value(c).ok()??;
            let scalar = datafusion::scalar::ScalarValue::try_from_array(&value, 0).ok()?;
            Some((c.name.clone(), Expr::Literal(scalar, None)))
        })
        .collect()
}

#[async_trait]
impl TableProvider for HengeTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.defaults.get(column)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let output = projection
            .cloned()
            .unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        if self.for_insert {
            if let Some(sketch) = output
                .iter()
                .map(|&i| &self.table.def.columns[i])
                .find(|c| c.rollup.is_some_and(|r| r.is_sketch()))
            {
                return Err(crate::pg::SqlStateError::new(
                    "0A000",
                    format!(
                        "an INSERT into \"{}\" cannot read its sketch column \"{}\"",
                        self.table.def.name, sketch.name
                    ),
                )
                .into());
            }
        }
        let output_schema = Arc::new(self.schema.project(&output)?);
        let pushdown = state
            .config_options()
            .extensions
            .get::<HengeOptions>()
            .is_none_or(|o| o.pushdown);
        let (columns, filter, pruning) = match conjunction(filters.to_vec()) {
            None => (ScanColumns::new(output, &[]), None, None),
            Some(all) => {
                let filter_columns = all
                    .column_refs()
                    .iter()
                    .map(|c| self.schema.index_of(&c.name))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let columns = ScanColumns::new(output, &filter_columns);
                let read = DFSchema::try_from(self.schema.project(&columns.read)?)?;
                let whole = DFSchema::try_from(self.schema.as_ref().clone())?;
                let pruning = if pushdown {
                    PruningPredicateBuilder::new()
                        .with_file_schema(self.schema.clone())
                        .build(state.create_physical_expr(all.clone(), &whole)?)
                } else {
                    None
                };
                let index = match pushdown {
                    true => IndexFilter::new(filters, &self.schema, state),
                    false => IndexFilter::unindexed(),
                };
                let filter = ScanFilter {
                    predicate: state.create_physical_expr(all, &read)?,
                    rest: index
                        .rest()
                        .map(|rest| state.create_physical_expr(rest, &read))
                        .transpose()?,
                    index,
                    text: filters.iter().map(|f| f.to_string()).collect(),
                };
                (columns, Some(filter), pruning)
            }
        };
        // The rows this session's open transaction block wrote, beside everyone's.
        let (staged_batches, staged_pieces) = match state.config().get_extension::<SessionWrites>()
        {
            Some(writes) => writes.staged(&self.table).await,
            None => Default::default(),
        };
        // Until the snapshot's files are open, nothing may delete them.
        let opening = self.engine.opening_files().await;
        let mut snapshot = self.table.buffer.snapshot();
        snapshot.segments.extend(staged_pieces);
        snapshot.batches.extend(staged_batches);
        let time = self
            .table
            .def
            .time_column_index()
            .map(|i| self.schema.field(i));
        let segments = prune(
            &self.engine,
            &self.table.def.name,
            snapshot.segments,
            time,
            pruning.as_deref(),
        )
        .await?;
        drop(opening);
        let input = ScanInput {
            table: self.table.def.name.clone(),
            schema: output_schema,
            read_schema: Arc::new(self.schema.project(&columns.read)?),
            time: self
                .table
                .def
                .time_column_index()
                .and_then(|t| columns.read.binary_search(&t).ok()),
            columns,
            filter,
            segments,
            batches: snapshot.batches,
            // Every filter is applied in the scan, so the first rows are answers.
            limit,
        };
        Ok(Arc::new(HengeScanExec::new(
            self.engine.clone(),
            input,
            state.config().target_partitions(),
        )))
    }

    /// Every filter is applied by the scan itself, exactly: through the indexes where they
    /// answer it, by evaluating it on the rows otherwise.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Exact; filters.len()])
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !self.for_insert && self.table.def.has_sketches() {
            return Err(DataFusionError::Internal(format!(
                "an INSERT into \"{}\" planned without its sketch columns' input types",
                self.table.def.name
            )));
        }
        if insert_op != InsertOp::Append {
            return Err(DataFusionError::NotImplemented(format!(
                "{insert_op} is not supported for Henge tables"
            )));
        }
        let sink = BufferSink {
            engine: self.engine.clone(),
            table: self.table.clone(),
            schema: match self.scaled {
                true => self.table.def.scaled_schema(),
                false => self.table.def.arrow_schema(),
            },
        };
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

/// Receives the rows of an INSERT and writes them, all at once, through a staged write.
#[derive(Debug)]
pub struct BufferSink {
    engine: Arc<Engine>,
    table: Arc<Table>,
    schema: SchemaRef,
}

impl DisplayAs for BufferSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HengeInsert: table={}", self.table.def.name)
    }
}

#[async_trait]
impl DataSink for BufferSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        context: &Arc<TaskContext>,
    ) -> Result<u64> {
        // Rows are staged as they arrive (spilled to disk past the stage limit, not
        // collected) and become visible together when the input ends.
        let external = |e: henge_ingest::Error| DataFusionError::External(Box::new(e));
        let mut staged = self.engine.stage(self.table.clone());
        while let Some(batch) = data.try_next().await? {
            // The input is already cast to the table's types; give it the table's names.
            let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())?;
            staged.push(batch).await.map_err(external)?;
        }
        let rows = staged.rows();
        // Inside a transaction block the rows wait for its COMMIT.
        let staged = match context.session_config().get_extension::<SessionWrites>() {
            Some(writes) => writes.keep(staged).await.map_err(external)?,
            None => Some(staged),
        };
        match staged {
            Some(staged) => staged.commit().await.map_err(external),
            None => Ok(rows),
        }
    }
}
