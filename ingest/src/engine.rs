//! The write path's entry point: tables, their real-time buffers and the log behind them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use henge_storage::{Catalog, TableDef};

use crate::buffer::RealtimeBuffer;
use crate::error::{Error, Result};
use crate::rows::validate_batch;
use crate::wal::Wal;

/// A table that can be written and read.
#[derive(Debug)]
pub struct Table {
    pub def: Arc<TableDef>,
    /// The Arrow schema of the rows, made once from `def`.
    pub schema: SchemaRef,
    pub buffer: RealtimeBuffer,
}

impl Table {
    fn new(def: TableDef) -> Table {
        let def = Arc::new(def);
        let schema = def.arrow_schema();
        Table {
            buffer: RealtimeBuffer::new(def.clone(), schema.clone()),
            schema,
            def,
        }
    }
}

/// Settings of the write path.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// fsync the write-ahead log before acknowledging a write. Turning this off loses
    /// acknowledged writes on power failure (not on a process crash); for benchmarks only.
    pub wal_fsync: bool,
}

/// All tables of a data directory and the write-ahead log that makes writes durable.
pub struct Engine {
    catalog: Catalog,
    wal: Wal,
    tables: RwLock<HashMap<String, Arc<Table>>>,
    /// Serialises CREATE and DROP so the catalog file and the table map change together.
    ddl: Mutex<()>,
    /// Bumped by every CREATE and DROP, so cached query plans know to re-plan.
    generation: AtomicU64,
}

impl Engine {
    /// Opens the data directory: loads the catalog and replays the write-ahead log into the
    /// real-time buffers.
    pub fn open(data_dir: &Path, options: &EngineOptions) -> Result<Engine> {
        let catalog = Catalog::open(data_dir)?;
        let (wal, records) = Wal::open(&data_dir.join("wal"), options.wal_fsync)?;
        let tables: HashMap<String, Arc<Table>> = catalog
            .tables()
            .into_iter()
            .map(|def| (def.name.clone(), Arc::new(Table::new(def))))
            .collect();
        let by_id: HashMap<u64, &Arc<Table>> = tables.values().map(|t| (t.def.id, t)).collect();
        let (mut replayed, mut skipped) = (0usize, 0usize);
        for record in records {
            match by_id.get(&record.table_id) {
                Some(table) if schemas_match(&table.schema, &record.batches) => {
                    replayed += record.batches.iter().map(|b| b.num_rows()).sum::<usize>();
                    table.buffer.append(&record.batches)?;
                }
                // Rows of a table dropped since they were written.
                _ => skipped += 1,
            }
        }
        tracing::info!(
            data_dir = %data_dir.display(),
            tables = tables.len(),
            replayed_rows = replayed,
            skipped_records = skipped,
            "data directory opened"
        );
        Ok(Engine {
            catalog,
            wal,
            tables: RwLock::new(tables),
            ddl: Mutex::new(()),
            generation: AtomicU64::new(0),
        })
    }

    /// The table called `name`, if it exists.
    pub fn table(&self, name: &str) -> Option<Arc<Table>> {
        self.tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Every table, ordered by name.
    pub fn tables(&self) -> Vec<Arc<Table>> {
        let mut tables: Vec<_> = self
            .tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        tables.sort_by(|a, b| a.def.name.cmp(&b.def.name));
        tables
    }

    /// Changes whenever a table is created or dropped.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Creates a table from a validated definition (its `id` is assigned here).
    pub fn create_table(&self, def: TableDef) -> Result<Arc<Table>> {
        let _ddl = self.ddl.lock().unwrap_or_else(|e| e.into_inner());
        let def = self.catalog.create(def)?;
        let table = Arc::new(Table::new(def));
        self.tables
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(table.def.name.clone(), table.clone());
        self.generation.fetch_add(1, Ordering::SeqCst);
        tracing::info!(table = %table.def.name, id = table.def.id, "table created");
        Ok(table)
    }

    /// Drops a table and its rows.
    pub fn drop_table(&self, name: &str) -> Result<()> {
        let _ddl = self.ddl.lock().unwrap_or_else(|e| e.into_inner());
        self.catalog.drop_table(name)?;
        self.tables
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        self.generation.fetch_add(1, Ordering::SeqCst);
        tracing::info!(table = %name, "table dropped");
        Ok(())
    }

    /// Writes the rows of one statement: all of them or, on any error, none. When this
    /// returns `Ok`, the rows are in the fsynced log and visible to every later query.
    pub async fn append(&self, table: &Table, batches: Vec<RecordBatch>) -> Result<u64> {
        let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        for batch in &batches {
            validate_batch(&table.def, batch)?;
        }
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        if rows == 0 {
            return Ok(0);
        }
        if self.table(&table.def.name).map(|t| t.def.id) != Some(table.def.id) {
            return Err(Error::TableNotFound(table.def.name.clone()));
        }
        self.wal
            .append(table.def.id, table.schema.clone(), &batches)
            .await?;
        table.buffer.append(&batches)?;
        Ok(rows)
    }

    /// Stops the write-ahead log after the writes in flight are durable.
    pub fn close(&self) {
        self.wal.close();
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("tables", &self.tables().len())
            .finish_non_exhaustive()
    }
}

fn schemas_match(schema: &SchemaRef, batches: &[RecordBatch]) -> bool {
    batches
        .iter()
        .all(|b| b.schema().fields() == schema.fields())
}
