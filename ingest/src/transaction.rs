//! Transaction blocks: the writes between BEGIN and COMMIT are staged (in memory up to the
//! stage limit, spilled to uncommitted pieces past it) and become visible to others together
//! at COMMIT, as one durable commit record:
//! - the block wrote one table and spilled nothing: one write-ahead-log record, like any
//!   statement;
//! - otherwise every table's rows are spilled and one metadata change records all the
//!   pieces of every table.
//!
//! ROLLBACK, a failed block that ends, a closed connection or a crash leave nothing visible
//! (the staged pieces are deleted when dropped, or at the next start as files no metadata
//! names). Savepoints are levels: each statement's rows join the newest level when the
//! statement succeeds, ROLLBACK TO discards the levels from the savepoint on, RELEASE folds
//! them into the level below. The block's own queries read its staged rows beside the
//! table's ([`SessionWrites::staged`]).

use std::sync::Arc;

use arrow::array::RecordBatch;
use henge_storage::{failpoint, SegmentMeta};

use crate::engine::{Engine, Table};
use crate::error::{Error, Result};
use crate::stage::StagedWrite;

/// Where a session's writes go: into its open transaction block, or (with none open)
/// straight to the tables, each statement committing its own. Shared by the session and
/// the queries it plans (a DataFusion session extension).
#[derive(Debug, Default)]
pub struct SessionWrites {
    block: tokio::sync::Mutex<Option<Transaction>>,
}

/// The staged writes of one open transaction block.
#[derive(Debug)]
struct Transaction {
    /// The block itself, then one level per savepoint, oldest first.
    levels: Vec<Level>,
}

#[derive(Debug)]
struct Level {
    /// The savepoint's name (`None` for the block's own level).
    name: Option<String>,
    /// At most one write per table.
    writes: Vec<StagedWrite>,
}

impl Level {
    fn new(name: Option<String>) -> Level {
        Level {
            name,
            writes: Vec::new(),
        }
    }

    async fn take(&mut self, write: StagedWrite) -> Result<()> {
        let id = write.table().def.id;
        match self.writes.iter_mut().find(|w| w.table().def.id == id) {
            Some(held) => held.absorb(write).await,
            None => {
                self.writes.push(write);
                Ok(())
            }
        }
    }
}

/// ROLLBACK TO or RELEASE named a savepoint the block does not have.
#[derive(Debug)]
pub struct NoSuchSavepoint(pub String);

impl SessionWrites {
    /// Opens a transaction block (BEGIN); one already open is kept.
    pub async fn begin(&self) {
        let mut block = self.block.lock().await;
        if block.is_none() {
            *block = Some(Transaction {
                levels: vec![Level::new(None)],
            });
        }
    }

    /// Ends the block discarding its writes (ROLLBACK, or the end of a failed block).
    pub async fn rollback(&self) {
        self.block.lock().await.take();
    }

    /// A finished statement's write: inside a block it joins the block's newest level and
    /// `None` is returned; outside one it is handed back for the statement to commit.
    pub async fn keep(&self, write: StagedWrite) -> Result<Option<StagedWrite>> {
        let mut block = self.block.lock().await;
        let Some(t) = block.as_mut() else {
            return Ok(Some(write));
        };
        let limit = write.limit();
        t.levels
            .last_mut()
            .expect("the block's own level stays")
            .take(write)
            .await?;
        // The block holds in memory no more than one statement may: past that, every level
        // spills (many statements, or many savepoints as pgjdbc's autosave makes, would
        // otherwise add up).
        let writes = t.levels.iter().flat_map(|l| l.writes.iter());
        if writes.map(|w| w.bytes_in_memory()).sum::<usize>() > limit {
            for write in t.levels.iter_mut().flat_map(|l| l.writes.iter_mut()) {
                write.spill().await?;
            }
        }
        Ok(None)
    }

    /// SAVEPOINT `name`: a new level (a name may be reused; the newest is found first).
    pub async fn savepoint(&self, name: &str) {
        if let Some(t) = self.block.lock().await.as_mut() {
            t.levels.push(Level::new(Some(name.to_owned())));
        }
    }

    /// ROLLBACK TO SAVEPOINT `name`: discards what was written since, keeping the savepoint.
    pub async fn rollback_to(&self, name: &str) -> std::result::Result<(), NoSuchSavepoint> {
        let mut block = self.block.lock().await;
        let t = block
            .as_mut()
            .ok_or_else(|| NoSuchSavepoint(name.to_owned()))?;
        let at = t.find(name)?;
        t.levels.truncate(at + 1);
        t.levels[at].writes.clear();
        Ok(())
    }

    /// RELEASE SAVEPOINT `name`: the savepoint and those after it are forgotten, their writes
    /// kept by the level before it.
    pub async fn release(&self, name: &str) -> Result<std::result::Result<(), NoSuchSavepoint>> {
        let mut block = self.block.lock().await;
        let Some(t) = block.as_mut() else {
            return Ok(Err(NoSuchSavepoint(name.to_owned())));
        };
        let at = match t.find(name) {
            Ok(at) => at,
            Err(e) => return Ok(Err(e)),
        };
        let released: Vec<Level> = t.levels.drain(at..).collect();
        let below = t.levels.last_mut().expect("the block's own level stays");
        for level in released {
            for write in level.writes {
                below.take(write).await?;
            }
        }
        Ok(Ok(()))
    }

    /// What this session's open block has written to `table` and not committed: rows in
    /// memory and spilled pieces (nothing outside a block).
    pub async fn staged(&self, table: &Table) -> (Vec<RecordBatch>, Vec<SegmentMeta>) {
        let block = self.block.lock().await;
        let mut batches = Vec::new();
        let mut pieces = Vec::new();
        for level in block.iter().flat_map(|t| &t.levels) {
            for write in level
                .writes
                .iter()
                .filter(|w| w.table().def.id == table.def.id)
            {
                let (b, p) = write.contents();
                batches.extend(b);
                pieces.extend(p);
            }
        }
        (batches, pieces)
    }

    /// Ends the block without committing it and hands over its writes, one per table (a
    /// statement that commits them itself, with more, stages its rows this way).
    pub async fn take(&self) -> Result<Vec<StagedWrite>> {
        let Some(t) = self.block.lock().await.take() else {
            return Ok(Vec::new());
        };
        let mut tables = Level::new(None);
        for level in t.levels {
            for write in level.writes {
                tables.take(write).await?;
            }
        }
        Ok(tables.writes)
    }

    /// COMMIT: makes every row the block wrote visible, in one durable step, and ends the
    /// block (also when the commit fails: nothing of it is then applied). Returns the rows.
    pub async fn commit(&self, engine: &Arc<Engine>) -> Result<u64> {
        let Some(t) = self.block.lock().await.take() else {
            return Ok(0);
        };
        let mut tables = Level::new(None);
        for level in t.levels {
            for write in level.writes {
                tables.take(write).await?;
            }
        }
        let mut writes = tables.writes;
        writes.retain(|w| w.rows() > 0);
        match writes.len() {
            0 => Ok(0),
            1 => writes.pop().expect("one write").commit().await,
            _ => commit_tables(engine, writes).await,
        }
    }
}

impl Transaction {
    /// The newest level of savepoint `name`.
    fn find(&self, name: &str) -> std::result::Result<usize, NoSuchSavepoint> {
        self.levels
            .iter()
            .rposition(|l| l.name.as_deref() == Some(name))
            .ok_or_else(|| NoSuchSavepoint(name.to_owned()))
    }
}

/// Commits the writes of several tables as one metadata change: every row is spilled to
/// pieces first, then one record adds them all. A table dropped meanwhile loses its rows as
/// if the DROP had come just after the COMMIT; the others are applied.
async fn commit_tables(engine: &Arc<Engine>, mut writes: Vec<StagedWrite>) -> Result<u64> {
    let rows = writes.iter().map(|w| w.rows()).sum();
    for write in &mut writes {
        write.spill().await?;
    }
    // In one order for every committer: a rewrite queued on a table's lock stops new
    // readers, so two commits taking them in opposite orders could wait on each other.
    let mut tables: Vec<Arc<Table>> = writes.iter().map(|w| w.table().clone()).collect();
    tables.sort_by_key(|t| t.def.id);
    let mut writing = Vec::with_capacity(tables.len());
    for table in &tables {
        writing.push(table.dml.read().await);
        // Rows staged for a table altered since are in its old layout (those of a table
        // dropped since are left out below).
        if !engine.is_current(table) {
            if let e @ Error::TableAltered(_) = engine.not_current(table) {
                return Err(e);
            }
        }
    }
    failpoint::hit("stage.committing");
    let pieces: Vec<SegmentMeta> = writes.iter().flat_map(|w| w.pieces.clone()).collect();
    let orphans = engine
        .metadata
        .persist(pieces, 0, Default::default())
        .map_err(Error::from)?;
    // Recorded: the files are the tables' now, not the writes' to delete.
    let mut tables: Vec<(Arc<Table>, Vec<SegmentMeta>)> = Vec::new();
    for write in &mut writes {
        let pieces = std::mem::take(&mut write.pieces);
        write.table().count_dropped(write.dropped());
        tables.push((write.table().clone(), pieces));
    }
    // Visible before anything else is awaited (a dropped future must not leave recorded
    // pieces out of the buffers).
    let mut evaluated = Vec::new();
    for (table, mut pieces) in tables {
        pieces.retain(|p| !orphans.contains(p));
        if !pieces.is_empty() {
            evaluated.push(engine.observe_pieces(&table.def, &pieces));
            table.buffer.add_pieces(pieces);
        }
    }
    drop(writing);
    for evaluated in evaluated {
        crate::observe::settled(evaluated).await;
    }
    engine.remove_files(&orphans).await;
    tracing::info!(
        tables = writes.len(),
        rows,
        "transaction committed as persisted pieces"
    );
    Ok(rows)
}
