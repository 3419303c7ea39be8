//! `HengeSchema`: the `public` schema, listing the tables of the ingest engine.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::SchemaProvider;
use datafusion::datasource::TableProvider;
use datafusion::error::Result;
use henge_ingest::Engine;

use crate::table::HengeTable;

/// The schema holding every Henge table.
#[derive(Debug)]
pub struct HengeSchema {
    engine: Arc<Engine>,
}

impl HengeSchema {
    pub fn new(engine: Arc<Engine>) -> HengeSchema {
        HengeSchema { engine }
    }
}

#[async_trait]
impl SchemaProvider for HengeSchema {
    fn table_names(&self) -> Vec<String> {
        self.engine
            .tables()
            .iter()
            .map(|t| t.def.name.clone())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(self
            .engine
            .table(name)
            .map(|t| Arc::new(HengeTable::new(self.engine.clone(), t)) as Arc<dyn TableProvider>))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.engine.table(name).is_some()
    }
}
