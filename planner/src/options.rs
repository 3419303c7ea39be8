//! Henge's own session settings, under the `henge.` prefix (`SET henge.pushdown = false`).

use datafusion::common::config::ConfigExtension;
use datafusion::common::extensions_options;

extensions_options! {
    /// Settings of one session, changed with SET and read with SHOW.
    pub struct HengeOptions {
        /// Prune segments, filter through bitmap indexes and aggregate in the scan. With
        /// `false` the scan reads every segment and evaluates filters on every row, and
        /// DataFusion aggregates what it returns: for comparisons.
        pub pushdown: bool, default = true
    }
}

impl ConfigExtension for HengeOptions {
    const PREFIX: &'static str = "henge";
}
