//! `HengeSchema`: the `public` schema, listing the tables and views of the ingest engine.

use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use datafusion::catalog::SchemaProvider;
use datafusion::datasource::TableProvider;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionState;
use henge_ingest::Engine;
use henge_storage::ViewDef;
use parking_lot::RwLock;

use crate::pg::SqlStateError;
use crate::table::HengeTable;
use crate::view;

/// The schema holding every Henge table and view.
#[derive(Debug)]
pub struct HengeSchema {
    engine: Arc<Engine>,
    /// The session's state, which plans its views (set once the session's context exists).
    session: OnceLock<Weak<RwLock<SessionState>>>,
}

impl HengeSchema {
    pub fn new(engine: Arc<Engine>) -> HengeSchema {
        HengeSchema {
            engine,
            session: OnceLock::new(),
        }
    }

    /// The session whose settings views are planned with.
    pub fn attach(&self, session: Weak<RwLock<SessionState>>) {
        let _ = self.session.set(session);
    }
}

/// Whether `def` reads itself, directly or through other views.
fn reads_itself(engine: &Engine, def: &ViewDef) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut todo = def.depends_on.clone();
    while let Some(name) = todo.pop() {
        if name == def.name {
            return true;
        }
        if seen.insert(name.clone()) {
            if let Some(view) = engine.view(&name) {
                todo.extend(view.depends_on);
            }
        }
    }
    false
}

#[async_trait]
impl SchemaProvider for HengeSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .engine
            .tables()
            .iter()
            .map(|t| t.def.name.clone())
            .chain(self.engine.views().into_iter().map(|v| v.name))
            .collect();
        names.sort();
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        if let Some(table) = self.engine.table(name) {
            return Ok(Some(Arc::new(HengeTable::new(self.engine.clone(), table))));
        }
        let Some(def) = self.engine.view(name) else {
            return Ok(None);
        };
        // Views that read each other (stored by CREATE OR REPLACE racing another) would be
        // planned without end: an error instead.
        if reads_itself(&self.engine, &def) {
            return Err(SqlStateError::new(
                "42P17",
                format!("infinite recursion detected in rules for relation \"{name}\""),
            )
            .into());
        }
        let state = self
            .session
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| DataFusionError::Internal("a view read without a session".into()))?;
        // A copy, so that no lock is held while the view is planned.
        let state = state.read().clone();
        view::table(&state, &def).await.map(Some)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.engine.table(name).is_some() || self.engine.view(name).is_some()
    }
}
