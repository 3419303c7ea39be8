//! What continuous rules (alerts) need from the write path: to be told of rows as they
//! become visible, and a place to report how they are doing (`sys.alerts`).

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use henge_storage::alert::AlertDef;
use henge_storage::metadata::SegmentMeta;
use henge_storage::schema::TableDef;
use henge_storage::segment::SegmentReader;

use crate::engine::Engine;
use crate::error::Result;

/// Rows of one statement (or pipeline batch), as they become visible.
pub enum Committed<'a> {
    /// Rows in memory (and in the write-ahead log).
    Rows(&'a [RecordBatch]),
    /// Rows a large statement wrote to piece files, open (memory-mapped: readable even
    /// once a hand-off deletes the files).
    Pieces(Vec<Arc<SegmentReader>>),
}

/// Told of every commit, in commit order per table, while the commit still holds the
/// table's write lock: it must be quick (hand the rows on, never wait). What it returns
/// resolves once the rows have been evaluated; the statement waits for it after letting
/// go of its locks, so that its acknowledgement comes after its alerts (and a writer
/// faster than the rules is held back, rather than queueing rows without end).
pub trait CommitObserver: Send + Sync {
    /// Whether any rule watches the table (so the engine need not open pieces for it).
    fn watches(&self, table_id: u64) -> bool;
    fn committed(&self, table: &TableDef, rows: Committed<'_>) -> Option<Evaluated>;
}

/// Resolves when the rules have evaluated a commit's rows.
pub type Evaluated = tokio::sync::oneshot::Receiver<()>;

/// Waits for the rules to evaluate a commit's rows, if they watch them.
pub async fn settled(evaluated: Option<Evaluated>) {
    if let Some(evaluated) = evaluated {
        let _ = evaluated.await;
    }
}

/// What one rule reports, for `sys.alerts`.
#[derive(Debug, Clone, Default)]
pub struct AlertStatus {
    /// Partition keys and rows held in the rule's window state.
    pub keys: u64,
    pub rows: u64,
    /// Since the server started: rows that passed the rule's filter, rows too late to
    /// count, and matches fired.
    pub rows_seen: u64,
    pub late_rows: u64,
    pub fired: u64,
    /// When the last match fired (microseconds since the epoch).
    pub last_fired: Option<i64>,
    /// Why the rule is not running, when it is not.
    pub error: Option<String>,
}

impl Engine {
    /// Sets the observer of commits (once, at start).
    pub fn set_observer(&self, observer: Arc<dyn CommitObserver>) {
        let _ = self.observer.set(observer);
    }

    /// Tells the observer of rows just made visible.
    pub(crate) fn observe_rows(
        &self,
        table: &TableDef,
        batches: &[RecordBatch],
    ) -> Option<Evaluated> {
        let observer = self.observer.get()?;
        if observer.watches(table.id) && !batches.is_empty() {
            return observer.committed(table, Committed::Rows(batches));
        }
        None
    }

    /// Tells the observer of pieces just made visible.
    pub(crate) fn observe_pieces(
        &self,
        table: &TableDef,
        pieces: &[SegmentMeta],
    ) -> Option<Evaluated> {
        let observer = self.observer.get()?;
        if !observer.watches(table.id) || pieces.is_empty() {
            return None;
        }
        let mut open = Vec::with_capacity(pieces.len());
        for piece in pieces {
            let name = piece.display_name(&table.name);
            match SegmentReader::open(&self.cache.path(piece), &name) {
                Ok(reader) => open.push(Arc::new(reader)),
                // Committed already: the rule misses these rows, and says so.
                Err(e) => {
                    tracing::error!(piece = %name, error = %e, "alert rules cannot read a piece just committed")
                }
            }
        }
        observer.committed(table, Committed::Pieces(open))
    }

    /// Keeps commits to `table` out until the guard is dropped (queries go on).
    pub async fn hold_writes<'a>(
        &self,
        table: &'a crate::engine::Table,
    ) -> tokio::sync::RwLockWriteGuard<'a, ()> {
        table.dml.write().await
    }

    pub fn alerts(&self) -> Vec<AlertDef> {
        self.metadata.alerts()
    }

    pub fn alert(&self, name: &str) -> Option<AlertDef> {
        self.metadata.alerts().into_iter().find(|a| a.name == name)
    }

    /// Records a new rule (`create`) or a changed one.
    pub fn put_alert(&self, def: AlertDef, create: bool) -> Result<AlertDef> {
        let _ddl = self.ddl.lock();
        Ok(self.metadata.put_alert(def, create)?)
    }

    /// Records how far rules have reported (see `AlertDef::reported_from`), by name.
    pub fn set_alert_progress(&self, progress: Vec<(String, i64)>) -> Result<()> {
        let _ddl = self.ddl.lock();
        Ok(self.metadata.set_alert_progress(progress)?)
    }

    pub fn drop_alert(&self, name: &str) -> Result<()> {
        let _ddl = self.ddl.lock();
        self.metadata.drop_alert(name)?;
        self.alert_status.lock().remove(name);
        Ok(())
    }

    /// What rule `name` reports.
    pub fn alert_status(&self, name: &str) -> AlertStatus {
        self.alert_status
            .lock()
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// Changes what rule `name` reports.
    pub fn report_alert(&self, name: &str, change: impl FnOnce(&mut AlertStatus)) {
        change(self.alert_status.lock().entry(name.to_owned()).or_default());
    }
}
