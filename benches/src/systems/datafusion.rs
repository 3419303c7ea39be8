//! DataFusion in the harness's own process, over a Parquet file of the same rows: the query
//! engine Henge is built on, reading a standard format instead of Henge's segments.

use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

use super::Answer;
use crate::Result;

/// A session with `lineitem` registered over a Parquet file.
pub struct DataFusion {
    context: SessionContext,
    parquet: PathBuf,
}

pub fn version() -> String {
    format!("DataFusion {}", datafusion::DATAFUSION_VERSION)
}

impl DataFusion {
    pub async fn new(parquet: &Path, threads: usize) -> Result<DataFusion> {
        Ok(DataFusion {
            context: context(parquet, threads).await?,
            parquet: parquet.to_owned(),
        })
    }

    pub async fn set_threads(&mut self, threads: usize) -> Result<()> {
        self.context = context(&self.parquet, threads).await?;
        Ok(())
    }

    pub async fn query(&self, sql: &str) -> Result<Answer> {
        let start = Instant::now();
        let batches = self
            .context
            .sql(sql)
            .await
            .map_err(|e| format!("{sql}: {e}"))?
            .collect()
            .await
            .map_err(|e| format!("{sql}: {e}"))?;
        let elapsed = start.elapsed();
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| format!("{sql}: {e}"))?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| f.value(row).to_string())
                        .collect(),
                );
            }
        }
        Ok(Answer { elapsed, rows })
    }
}

async fn context(parquet: &Path, threads: usize) -> Result<SessionContext> {
    let config = SessionConfig::new().with_target_partitions(threads.max(1));
    let context = SessionContext::new_with_config(config);
    let path = parquet.to_str().ok_or("Parquet path is not UTF-8")?;
    context
        .register_parquet("lineitem", path, ParquetReadOptions::default())
        .await
        .map_err(|e| format!("registering {path}: {e}"))?;
    Ok(context)
}
