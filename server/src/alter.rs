//! ALTER TABLE: `ADD COLUMN`, `DROP COLUMN`, `RENAME COLUMN`, `RENAME TO`, and
//! `SET (option = …)` / `RESET (option, …)` of the options that may change (retention, the
//! rejection periods, `on_rejection`, `window_period`). The statement is checked and the new
//! definition made here; the engine applies it ([`henge_ingest::alter`]), rewriting the
//! stored rows when their layout changes.

use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, ArrayRef, Int16Array};
use datafusion::sql::sqlparser::ast::{
    AlterTable, AlterTableOperation, Ident, ObjectName, RenameTableNameKind, SqlOption,
};
use henge_ingest::alter::Layout;
use henge_ingest::Table;
use henge_storage::schema::{scale_column, DEFAULT_WINDOW_PERIOD_SECS};
use henge_storage::{OnRejection, TableDef};
use pgwire::api::results::{Response, Tag};

use crate::ddl::{column_def, normalize, not_reserved, option_pair, period_option, table_name};
use crate::error::{code, PgError};
use crate::session::Session;

/// `ALTER TABLE name RESET (option, …)`, which sqlparser does not read.
#[derive(Debug, Clone)]
pub struct ResetOptions {
    pub table: ObjectName,
    pub if_exists: bool,
    pub options: Vec<Ident>,
}

/// The layout change of column `position` of `def` added, every stored row given `value`:
/// an unconstrained numeric's hidden scale column gets the scale of its value (as written
/// in its DEFAULT).
fn added(def: &TableDef, position: usize, value: ArrayRef) -> Result<Layout, PgError> {
    let column = &def.columns[position];
    let scale = match stored_position(def, &scale_column(&column.name)) {
        Some(at) => {
            let scale = match &column.default {
                Some(text) => Some(
                    henge_ingest::value::parse_numeric_unconstrained(text)
                        .map_err(henge_ingest::Error::from)?
                        .1,
                ),
                None => None,
            };
            let scale: ArrayRef = Arc::new(Int16Array::from(vec![scale]));
            Some((at, scale))
        }
        None => None,
    };
    Ok(Layout::AddColumn {
        position,
        value,
        scale,
    })
}

/// The position of the stored column named `name` (a hidden one) in `def`'s rows.
fn stored_position(def: &TableDef, name: &str) -> Option<usize> {
    def.stored_columns().iter().position(|c| c.name == name)
}

/// ALTER TABLE.
pub async fn alter_table(session: &Session, alter: &AlterTable) -> Result<Response, PgError> {
    let Some(table) = existing(session, &alter.name, alter.if_exists)? else {
        return Ok(Response::Execution(Tag::new("ALTER TABLE")));
    };
    let mut def = (*table.def).clone();
    let mut layout = None;
    for operation in &alter.operations {
        let (changed, skipped) = change(&mut def, operation)?;
        if let Some(notice) = skipped {
            session.notice(notice);
        }
        // A column added with a DEFAULT: the stored rows get its value.
        let changed = match (changed, operation) {
            (
                Some(Layout::AddColumn { position, .. }),
                AlterTableOperation::AddColumn { column_def, .. },
            ) => {
                crate::ddl::defaults(session, &mut def.columns, std::slice::from_ref(column_def))
                    .await?;
                let column = &def.columns[position];
                let value = match henge_ingest::rows::default_value(column)? {
                    Some(value) => value,
                    // A NOT NULL column without a default is refused by the engine if the
                    // table holds rows once no write can come in between.
                    None => new_null_array(&column.ty.arrow_type(), 1),
                };
                Some(added(&def, position, value)?)
            }
            (changed, _) => changed,
        };
        if let Some(changed) = changed {
            if layout.is_some() {
                return Err(PgError::unsupported(
                    "ALTER TABLE with more than one ADD, DROP or RENAME COLUMN is not supported: run them one by one",
                ));
            }
            layout = Some(changed);
        }
    }
    let renamed = def.name != table.def.name;
    if layout.is_some() || renamed {
        no_dependent_views(session, &table.def.name)?;
    }
    // A rule reads the table's columns by name and writes its alerts table by name.
    let blocking = session.shared.engine.alerts().into_iter().find(|a| {
        (layout.is_some() && a.table_id == table.def.id)
            || ((layout.is_some() || renamed) && a.alerts_table == table.def.name)
    });
    {
        if let Some(alert) = blocking.map(|a| a.name) {
            return Err(PgError::new(
                code::DEPENDENT_OBJECTS_STILL_EXIST,
                format!(
                    "cannot alter table \"{}\" because alert \"{alert}\" depends on it",
                    table.def.name
                ),
            )
            .with_hint("Drop the alert, alter the table, and create the alert again."));
        }
    }
    session
        .shared
        .engine
        .alter_table(&table, def, layout.as_ref())
        .await?;
    Ok(Response::Execution(Tag::new("ALTER TABLE")))
}

/// ALTER TABLE … RESET (option, …): the options back to their defaults.
pub async fn reset_options(session: &Session, reset: &ResetOptions) -> Result<Response, PgError> {
    let Some(table) = existing(session, &reset.table, reset.if_exists)? else {
        return Ok(Response::Execution(Tag::new("ALTER TABLE")));
    };
    let mut def = (*table.def).clone();
    for option in &reset.options {
        match normalize(option).as_str() {
            "retention" => def.limits.retention_secs = None,
            "late_message_rejection" => def.limits.late_secs = None,
            "early_message_rejection" => def.limits.early_secs = None,
            "on_rejection" => def.limits.on_rejection = OnRejection::Error,
            "window_period" => def.window_period_secs = DEFAULT_WINDOW_PERIOD_SECS,
            other => return Err(unchangeable(other)),
        }
    }
    session.shared.engine.alter_table(&table, def, None).await?;
    Ok(Response::Execution(Tag::new("ALTER TABLE")))
}

/// The table `name` names; `None` (with a notice) when it does not exist and IF EXISTS was
/// given.
fn existing(
    session: &Session,
    name: &ObjectName,
    if_exists: bool,
) -> Result<Option<Arc<Table>>, PgError> {
    let name = table_name(name)?;
    if session.shared.engine.view(&name).is_some() {
        return Err(PgError::new(
            code::WRONG_OBJECT_TYPE,
            format!("\"{name}\" is not a table"),
        )
        .with_hint("Use DROP VIEW and CREATE VIEW to change a view."));
    }
    match session.shared.engine.table(&name) {
        Some(table) => Ok(Some(table)),
        None if if_exists => {
            session.notice(format!("relation \"{name}\" does not exist, skipping"));
            Ok(None)
        }
        None => Err(PgError::new(
            code::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        )),
    }
}

/// Applies one operation to `def`; returns how stored rows change, if they do, and the
/// notice of an operation skipped (IF [NOT] EXISTS).
fn change(
    def: &mut TableDef,
    operation: &AlterTableOperation,
) -> Result<(Option<Layout>, Option<String>), PgError> {
    let name = def.name.clone();
    match operation {
        AlterTableOperation::AddColumn {
            if_not_exists,
            column_def: column,
            column_position: None,
            ..
        } => {
            let column = column_def(column)?;
            if def.column_index(&column.name).is_some() {
                if *if_not_exists {
                    return Ok((
                        None,
                        Some(format!(
                            "column \"{}\" of relation \"{name}\" already exists, skipping",
                            column.name
                        )),
                    ));
                }
                return Err(exists(&column.name, &name));
            }
            not_rolled_up(def, "ADD COLUMN")?;
            if column.rollup.is_some() {
                return Err(PgError::new(
                    code::INVALID_TABLE_DEFINITION,
                    format!(
                        "column \"{}\" cannot have a rollup: table \"{name}\" is not rolled up",
                        column.name
                    ),
                ));
            }
            let value = new_null_array(&column.ty.arrow_type(), 1);
            def.columns.push(column);
            Ok((Some(added(def, def.columns.len() - 1, value)?), None))
        }
        AlterTableOperation::DropColumn {
            column_names,
            if_exists,
            ..
        } => {
            let [column] = column_names.as_slice() else {
                return Err(PgError::unsupported(
                    "DROP COLUMN of several columns at once is not supported",
                ));
            };
            let column = normalize(column);
            let Some(position) = def.column_index(&column) else {
                if *if_exists {
                    return Ok((
                        None,
                        Some(format!(
                            "column \"{column}\" of relation \"{name}\" does not exist, skipping"
                        )),
                    ));
                }
                return Err(missing(&column, &name));
            };
            not_rolled_up(def, "DROP COLUMN")?;
            if def.time_column.as_deref() == Some(column.as_str()) {
                return Err(PgError::unsupported(format!(
                    "cannot drop column \"{column}\": it is the time column of table \"{name}\""
                )));
            }
            if def.columns.len() == 1 {
                return Err(PgError::unsupported(format!(
                    "cannot drop column \"{column}\": it is the only column of table \"{name}\""
                )));
            }
            let scale = stored_position(def, &scale_column(&column));
            def.columns.remove(position);
            Ok((Some(Layout::DropColumn { position, scale }), None))
        }
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => {
            let (old, new) = (normalize(old_column_name), normalize(new_column_name));
            let position = def.column_index(&old).ok_or_else(|| missing(&old, &name))?;
            not_reserved(&new)?;
            if def.column_index(&new).is_some() {
                return Err(exists(&new, &name));
            }
            if def.time_column.as_deref() == Some(old.as_str()) {
                def.time_column = Some(new.clone());
            }
            def.columns[position].name = new;
            Ok((Some(Layout::Same), None))
        }
        AlterTableOperation::RenameTable {
            table_name: RenameTableNameKind::To(new) | RenameTableNameKind::As(new),
        } => {
            def.name = table_name(new)?;
            Ok((None, None))
        }
        AlterTableOperation::SetOptionsParens { options } => {
            for option in options {
                set_option(def, option)?;
            }
            Ok((None, None))
        }
        other => Err(PgError::unsupported(format!(
            "ALTER TABLE … {} is not supported",
            other
                .to_string()
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        ))),
    }
}

/// `SET (option = value)` of an option that may change.
fn set_option(def: &mut TableDef, option: &SqlOption) -> Result<(), PgError> {
    let (key, value) = option_pair(option)?;
    if def.time_column.is_none() && key != "window_period" {
        return Err(PgError::new(
            code::INVALID_TABLE_DEFINITION,
            format!("table option \"{key}\" needs a time_column"),
        ));
    }
    match key.as_str() {
        "retention" => def.limits.retention_secs = Some(period_option(&key, &value)?),
        "late_message_rejection" => def.limits.late_secs = Some(period_option(&key, &value)?),
        "early_message_rejection" => def.limits.early_secs = Some(period_option(&key, &value)?),
        "on_rejection" => def.limits.on_rejection = crate::ddl::on_rejection(&value)?,
        "window_period" => def.window_period_secs = period_option(&key, &value)?,
        other => return Err(unchangeable(other)),
    }
    Ok(())
}

fn unchangeable(option: &str) -> PgError {
    match option {
        "time_column" | "segment_granularity" | "rollup" | "query_granularity" => {
            PgError::unsupported(format!(
                "table option \"{option}\" cannot be changed: it decides how the stored rows are laid out"
            ))
        }
        other => PgError::new(
            code::INVALID_PARAMETER_VALUE,
            format!("unrecognized table option \"{other}\"; ALTER TABLE changes retention, late_message_rejection, early_message_rejection, on_rejection and window_period"),
        ),
    }
}

fn not_rolled_up(def: &TableDef, what: &str) -> Result<(), PgError> {
    if def.rollup {
        return Err(PgError::unsupported(format!(
            "{what} of rolled-up table \"{}\" is not supported",
            def.name
        )));
    }
    Ok(())
}

/// Views read a table by its name and columns: those are not changed under them.
fn no_dependent_views(session: &Session, table: &str) -> Result<(), PgError> {
    let views = session.shared.engine.views();
    match views
        .iter()
        .find(|v| v.depends_on.iter().any(|d| d == table))
    {
        Some(view) => Err(PgError::new(
            code::DEPENDENT_OBJECTS_STILL_EXIST,
            format!(
                "cannot alter table \"{table}\" because view \"{}\" depends on it",
                view.name
            ),
        )
        .with_hint("Drop the view, alter the table, and create the view again.")),
        None => Ok(()),
    }
}

fn exists(column: &str, table: &str) -> PgError {
    PgError::new(
        code::DUPLICATE_COLUMN,
        format!("column \"{column}\" of relation \"{table}\" already exists"),
    )
}

fn missing(column: &str, table: &str) -> PgError {
    PgError::new(
        code::UNDEFINED_COLUMN,
        format!("column \"{column}\" of relation \"{table}\" does not exist"),
    )
}
