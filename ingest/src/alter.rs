//! ALTER TABLE: a table's definition replaced, and where its rows' layout changes (a
//! column added, dropped or renamed) every stored row rewritten in the new layout, all at
//! once.
//!
//! Like a [`crate::rewrite`], it holds the table's write lock and first moves every
//! buffered row of the table into published segments — so the write-ahead log holds none
//! of its rows in the old layout — then, with hand-offs and compactions held off, writes
//! the rows of every segment in the new layout as segments of a fresh version. One
//! metadata change publishes the new definition and segments and forgets the old segments
//! (the commit point; a crash before it leaves the old table and files no metadata names,
//! deleted at the next start). The new table then replaces the old in the engine; a write
//! that waited for the lock on the old table fails with [`Error::TableAltered`] and can be
//! run again.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{Field, FieldRef, Schema};
use henge_storage::{failpoint, SegmentMeta, TableDef};

use crate::engine::{Engine, Table};
use crate::error::{Error, Result};
use crate::rewrite::Rewrite;

impl Engine {
    /// Gives `table` the definition `def` (of the same id); with `layout`, every stored row
    /// is rewritten by it into `def`'s layout. Returns the table as it now is.
    pub async fn alter_table(
        &self,
        table: &Arc<Table>,
        def: TableDef,
        layout: Option<&Layout>,
    ) -> Result<Arc<Table>> {
        debug_assert_eq!(table.def.id, def.id);
        let _held = self.hold_published(table).await?;
        // A NOT NULL column added without a value for the rows there are (checked now that
        // no write can come in between).
        if let Some(Layout::AddColumn {
            position, value, ..
        }) = layout
        {
            let stored = table.buffer.visible_segments().iter().any(|s| s.rows > 0);
            if value.is_null(0) && !def.columns[*position].nullable && stored {
                return Err(Error::ColumnContainsNulls {
                    table: def.name.clone(),
                    column: def.columns[*position].name.clone(),
                });
            }
        }
        let def = Arc::new(def);
        let mut made: Vec<SegmentMeta> = Vec::new();
        let forget = match layout {
            Some(layout) => {
                if let Err(e) = self.write_layout(table, &def, layout, &mut made).await {
                    self.remove_files(&made).await;
                    return Err(e);
                }
                table.buffer.contents().segments
            }
            None => Vec::new(),
        };
        failpoint::hit("alter.uploaded");
        let altered = {
            let _ddl = self.ddl.lock();
            if let Err(e) = self
                .metadata
                .alter_table((*def).clone(), made.clone(), &forget)
            {
                drop(_ddl);
                self.remove_files(&made).await;
                return Err(e.into());
            }
            let segments: Vec<SegmentMeta> = self
                .metadata
                .segments()
                .into_iter()
                .filter(|s| s.table_id == def.id)
                .collect();
            let altered = Arc::new(Table::new((*def).clone(), segments, Vec::new()));
            altered.rows_dropped.store(
                table.rows_dropped.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            self.replace_table(&table.def.name, altered.clone());
            altered
        };
        failpoint::hit("alter.published");
        self.wait_for_openers().await;
        self.remove_files(&forget).await;
        tracing::info!(
            table = %def.name,
            was = %table.def.name,
            segments_written = made.len(),
            "table altered"
        );
        Ok(altered)
    }

    /// Writes the rows of every visible segment of `table`, changed by `layout`, as segments
    /// of `def` of one fresh version.
    async fn write_layout(
        &self,
        table: &Arc<Table>,
        def: &Arc<TableDef>,
        layout: &Layout,
        made: &mut Vec<SegmentMeta>,
    ) -> Result<()> {
        let version = self.metadata.fresh_version();
        for segments in table.buffer.visible_by_interval().into_values() {
            for (partition, segment) in segments.iter().enumerate() {
                let (batches, _held) = self.read_segment(table, segment).await?;
                let batches = batches
                    .into_iter()
                    .map(|b| layout.apply(b).map(|(b, _)| b))
                    .collect::<Result<Vec<_>>>()?;
                let mut new = SegmentMeta {
                    version,
                    partition: partition as u32,
                    rows: 0,
                    bytes: 0,
                    crc: 0,
                    ..segment.clone()
                };
                let contents = self.write_file(def, &mut new, batches).await?;
                made.push(new.clone());
                failpoint::hit("alter.merged");
                self.cache.upload(&new, contents).await?;
            }
        }
        Ok(())
    }
}

/// How ALTER TABLE changes the layout of stored rows.
#[derive(Debug)]
pub enum Layout {
    /// A column added after the table's own (before hidden ones), every stored row given
    /// `value` (an array of one value: NULL, or the column's default); for an
    /// unconstrained numeric, its hidden scale column too, at its position in the new
    /// layout, with the value's scale.
    AddColumn {
        position: usize,
        value: ArrayRef,
        scale: Option<(usize, ArrayRef)>,
    },
    /// The column at this position dropped, and its hidden scale column at the other (in
    /// the old layout) if it has one.
    DropColumn {
        position: usize,
        scale: Option<usize>,
    },
    /// The same columns (renamed: the segments are written again under the new names).
    Same,
}

impl Rewrite for Layout {
    fn apply(&self, batch: RecordBatch) -> Result<(RecordBatch, u64)> {
        let mut columns = batch.columns().to_vec();
        let mut fields: Vec<FieldRef> = batch.schema().fields().iter().cloned().collect();
        match self {
            Layout::AddColumn {
                position,
                value,
                scale,
            } => {
                let indices = UInt32Array::from(vec![0u32; batch.num_rows()]);
                let fill = |value: &ArrayRef| {
                    take(value.as_ref(), &indices, None).map_err(|e| Error::Internal(e.to_string()))
                };
                let filled = fill(value)?;
                fields.insert(
                    *position,
                    Arc::new(Field::new("added", filled.data_type().clone(), true)),
                );
                columns.insert(*position, filled);
                if let Some((at, scale)) = scale {
                    let filled = fill(scale)?;
                    fields.insert(
                        *at,
                        Arc::new(Field::new("added scale", filled.data_type().clone(), true)),
                    );
                    columns.insert(*at, filled);
                }
            }
            Layout::DropColumn { position, scale } => {
                // The scale column is after the table's own: removed first, its position
                // is still the old layout's.
                if let Some(at) = scale {
                    fields.remove(*at);
                    columns.remove(*at);
                }
                fields.remove(*position);
                columns.remove(*position);
            }
            Layout::Same => return Ok((batch, 0)),
        }
        let schema = Arc::new(Schema::new(fields));
        let batch =
            RecordBatch::try_new(schema, columns).map_err(|e| Error::Internal(e.to_string()))?;
        Ok((batch, 0))
    }
}
