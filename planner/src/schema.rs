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
    /// The table the statement being planned INSERTs into, read as [`HengeTable::for_insert`].
    inserting: parking_lot::Mutex<Option<String>>,
}

impl HengeSchema {
    pub fn new(engine: Arc<Engine>) -> HengeSchema {
        HengeSchema {
            engine,
            session: OnceLock::new(),
            inserting: parking_lot::Mutex::new(None),
        }
    }

    /// Plans the statement `plan` makes as an INSERT into `table`: until it returns, the
    /// table is read as INSERT writes it (sketch columns typed as their values).
    pub async fn planning_insert<T>(
        &self,
        table: &str,
        plan: impl std::future::Future<Output = T>,
    ) -> T {
        struct Clear<'a>(&'a parking_lot::Mutex<Option<String>>);
        impl Drop for Clear<'_> {
            fn drop(&mut self) {
                *self.0.lock() = None;
            }
        }
        *self.inserting.lock() = Some(table.to_owned());
        let _clear = Clear(&self.inserting);
        plan.await
    }

    /// The session whose settings views are planned with.
    pub fn attach(&self, session: Weak<RwLock<SessionState>>) {
        let _ = self.session.set(session);
    }
}

/// Plans, with `ctx`'s Henge schema, the INSERT into `table` that `plan` makes
/// ([`HengeSchema::planning_insert`]).
pub async fn planning_insert<T>(
    ctx: &datafusion::execution::context::SessionContext,
    table: &str,
    plan: impl std::future::Future<Output = T>,
) -> T {
    let schema = ctx
        .catalog(crate::CATALOG)
        .and_then(|c| c.schema(crate::SCHEMA));
    match schema
        .as_ref()
        .and_then(|s| s.downcast_ref::<HengeSchema>())
    {
        Some(schema) => schema.planning_insert(table, plan).await,
        None => plan.await,
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
            if self.inserting.lock().as_deref() == Some(name) {
                return Ok(Some(Arc::new(HengeTable::for_insert(
                    self.engine.clone(),
                    table,
                ))));
            }
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
