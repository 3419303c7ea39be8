//! Alert rules as the metadata store keeps them: what `CREATE ALERT` declared (its SQL
//! pieces as text, compiled again at every start) and whether it is enabled.

use serde::{Deserialize, Serialize};

/// One continuous rule over a table's rows: see `server/src/alert.rs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertDef {
    pub id: u64,
    pub name: String,
    /// The table watched, by id (a renamed table keeps its rules).
    pub table_id: u64,
    /// Which rows count (`WHERE`), as SQL text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The partition key's expressions, as SQL text.
    pub keys: Vec<String>,
    /// The window's length, in microseconds, and as written.
    pub window_micros: i64,
    pub window_text: String,
    /// The condition over the window's aggregates (`WHEN`), as SQL text.
    pub condition: String,
    /// The LISTEN channel matches are sent to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The table every match is written to.
    pub alerts_table: String,
    pub enabled: bool,
    /// Rows count only when their time is after this one (microseconds): the newest row
    /// the table held when the rule was made. `None`: every row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// The rule's newest time seen (microseconds) before some commit it had not yet fully
    /// reported: after a restart it rebuilds the windows from there on (less its table's
    /// window_period and one window). Moved on now and then, never past a commit still
    /// being reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_from: Option<i64>,
}
