//! Henge's own session settings, under the `henge.` prefix (`SET henge.pushdown = false`).

use datafusion::common::config::ConfigExtension;
use datafusion::common::extensions_options;

extensions_options! {
    /// Settings of one session, changed with SET and read with SHOW.
    pub struct HengeOptions {
        /// Prune segments and filter through bitmap indexes in the scan. With `false` the
        /// scan reads every segment and evaluates filters on every row: for comparisons.
        pub pushdown: bool, default = true
    }
}

impl ConfigExtension for HengeOptions {
    const PREFIX: &'static str = "henge";
}
