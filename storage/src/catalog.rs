//! The catalog: the durable list of table definitions.
//!
//! It lives in one JSON file, `catalog.json`, in the data directory. Every change writes a
//! complete new file beside it, fsyncs it, renames it over the old one and fsyncs the
//! directory, so after a crash the file holds either the old catalog or the new one, never a
//! mix. A handful of tables changing rarely does not need an embedded database; a plain file
//! is easy to inspect and to back up.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schema::TableDef;

const FILE_NAME: &str = "catalog.json";
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    format_version: u32,
    next_table_id: u64,
    tables: BTreeMap<String, TableDef>,
}

/// The table catalog of one data directory.
#[derive(Debug)]
pub struct Catalog {
    path: PathBuf,
    state: Mutex<State>,
}

impl Catalog {
    /// Opens the catalog in `dir`, creating an empty one if there is none.
    pub fn open(dir: &Path) -> Result<Catalog> {
        fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
        let path = dir.join(FILE_NAME);
        let state = match fs::read(&path) {
            Ok(bytes) => {
                let state: State =
                    serde_json::from_slice(&bytes).map_err(|e| Error::CorruptMetadata {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                if state.format_version != FORMAT_VERSION {
                    return Err(Error::CorruptMetadata {
                        path,
                        reason: format!(
                            "format version {} is not {FORMAT_VERSION}",
                            state.format_version
                        ),
                    });
                }
                state
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State {
                format_version: FORMAT_VERSION,
                next_table_id: 1,
                tables: BTreeMap::new(),
            },
            Err(e) => return Err(Error::io("read", &path)(e)),
        };
        Ok(Catalog {
            path,
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-changed: every change
        // is applied to a copy first and stored only after it was persisted.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// All tables, ordered by name.
    pub fn tables(&self) -> Vec<TableDef> {
        self.lock().tables.values().cloned().collect()
    }

    /// The table called `name`, if any.
    pub fn get(&self, name: &str) -> Option<TableDef> {
        self.lock().tables.get(name).cloned()
    }

    /// Adds a table, giving it a fresh id (the `id` passed in is ignored), and persists the
    /// catalog before returning the stored definition.
    pub fn create(&self, mut def: TableDef) -> Result<TableDef> {
        let mut state = self.lock();
        if state.tables.contains_key(&def.name) {
            return Err(Error::TableExists(def.name));
        }
        def.id = state.next_table_id;
        let mut tables = state.tables.clone();
        tables.insert(def.name.clone(), def.clone());
        let next = State {
            format_version: FORMAT_VERSION,
            next_table_id: def.id + 1,
            tables,
        };
        self.persist(&next)?;
        *state = next;
        Ok(def)
    }

    /// Removes a table and persists the catalog; returns the removed definition.
    pub fn drop_table(&self, name: &str) -> Result<TableDef> {
        let mut state = self.lock();
        let mut tables = state.tables.clone();
        let def = tables
            .remove(name)
            .ok_or_else(|| Error::TableNotFound(name.to_owned()))?;
        let next = State {
            format_version: FORMAT_VERSION,
            next_table_id: state.next_table_id,
            tables,
        };
        self.persist(&next)?;
        *state = next;
        Ok(def)
    }

    fn persist(&self, state: &State) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| Error::CorruptMetadata {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        write_atomically(&self.path, &bytes)
    }
}

/// Replaces the file at `path` with `bytes` so that a crash leaves either the old or the new
/// content: write a temporary file, fsync it, rename it over `path`, fsync the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(Error::io("create", &tmp))?;
    file.write_all(bytes).map_err(Error::io("write", &tmp))?;
    file.sync_all().map_err(Error::io("fsync", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(Error::io("rename", &tmp))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::io("fsync directory", dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::granularity::Granularity;
    use crate::schema::{ColumnDef, ColumnType};

    fn table(name: &str) -> TableDef {
        TableDef {
            id: 0,
            name: name.into(),
            columns: vec![ColumnDef {
                name: "ts".into(),
                ty: ColumnType::Timestamp,
                nullable: false,
            }],
            time_column: Some("ts".into()),
            segment_granularity: Granularity::Hour,
        }
    }

    #[test]
    fn definitions_survive_reopening_and_ids_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).unwrap();
        let a = catalog.create(table("a")).unwrap();
        let b = catalog.create(table("b")).unwrap();
        assert_ne!(a.id, b.id);
        assert!(matches!(
            catalog.create(table("a")),
            Err(Error::TableExists(_))
        ));
        catalog.drop_table("a").unwrap();
        assert!(matches!(
            catalog.drop_table("a"),
            Err(Error::TableNotFound(_))
        ));

        let reopened = Catalog::open(dir.path()).unwrap();
        assert_eq!(reopened.tables(), vec![b.clone()]);
        let a2 = reopened.create(table("a")).unwrap();
        assert!(a2.id > b.id);
    }

    #[test]
    fn a_damaged_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        assert!(matches!(
            Catalog::open(dir.path()),
            Err(Error::CorruptMetadata { .. })
        ));
    }
}
