//! DELETE, UPDATE, TRUNCATE and REPLACE: statements that rewrite a table's stored rows as
//! new versions of its time chunks ([`henge_ingest::rewrite`]), each atomic.
//!
//! The statement's WHERE and SET expressions become a query, `SELECT (where), (value)::type
//! … FROM table`, that DataFusion plans with Henge's rules and parameters like any other;
//! [`henge_planner::dml::RowChange`] evaluates its expressions on the stored rows.
//!
//! `REPLACE INTO t OVERWRITE WHERE cond query` (and `OVERWRITE ALL`) is Henge's form of an
//! overwrite, after Druid's: the rows matching `cond` are deleted and the query's rows
//! inserted, in one step.

use std::sync::Arc;

use datafusion::common::ParamValues;
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, Delete, Expr, FromTable, ObjectName, Query, Statement, TableFactor, Truncate,
    Update, Visit, Visitor,
};
use henge_ingest::{StagedWrite, Table};
use henge_planner::dml::RowChange;
use henge_storage::ColumnType;
use pgwire::api::results::{Response, Tag};

use crate::ddl::{normalize, table_name};
use crate::error::{code, PgError};
use crate::session::Session;

/// `REPLACE INTO table OVERWRITE (ALL | WHERE condition) query`.
#[derive(Debug, Clone)]
pub struct Replace {
    pub table: ObjectName,
    /// `None` for `OVERWRITE ALL`.
    pub condition: Option<Expr>,
    pub query: Box<Query>,
}

/// What a DELETE or UPDATE names: its table and the query its expressions make.
struct Target {
    table: Arc<Table>,
    /// `SELECT (where), (value)::type … FROM table [AS alias]`.
    sql: String,
    filtered: bool,
    /// The positions of the columns the values go to.
    columns: Vec<usize>,
}

/// The query whose parameters a DELETE or UPDATE takes, to describe them when it is
/// prepared; `None` for other statements.
pub fn parameter_query(session: &Session, statement: &Statement) -> Option<String> {
    match statement {
        Statement::Delete(delete) => delete_target(session, delete).ok().map(|t| t.sql),
        Statement::Update(update) => update_target(session, update).ok().map(|t| t.sql),
        _ => None,
    }
}

/// DELETE FROM table [WHERE condition].
pub async fn delete(
    session: &Session,
    delete: &Delete,
    params: Vec<ScalarValue>,
) -> Result<Response, PgError> {
    outside_blocks(session, "DELETE")?;
    let target = delete_target(session, delete)?;
    target.run(session, params, "DELETE").await
}

/// UPDATE table SET column = value, … [WHERE condition].
pub async fn update(
    session: &Session,
    update: &Update,
    params: Vec<ScalarValue>,
) -> Result<Response, PgError> {
    outside_blocks(session, "UPDATE")?;
    let target = update_target(session, update)?;
    target.run(session, params, "UPDATE").await
}

/// TRUNCATE [TABLE] table.
pub async fn truncate(session: &Session, truncate: &Truncate) -> Result<Response, PgError> {
    outside_blocks(session, "TRUNCATE")?;
    let [target] = truncate.table_names.as_slice() else {
        return Err(PgError::unsupported(
            "TRUNCATE of several tables at once is not supported: truncate them one by one",
        ));
    };
    if truncate.partitions.is_some() || truncate.identity.is_some() {
        return Err(PgError::unsupported(
            "TRUNCATE takes no PARTITION or IDENTITY option",
        ));
    }
    let table = table_of(session, &target.name, "truncate")?;
    session
        .shared
        .engine
        .rewrite(&table, &RowChange::all(table.def.clone()), None)
        .await?;
    Ok(Response::Execution(Tag::new("TRUNCATE TABLE")))
}

/// REPLACE INTO table OVERWRITE … query.
pub async fn replace(session: &Session, replace: &Replace) -> Result<Response, PgError> {
    outside_blocks(session, "REPLACE")?;
    let table = table_of(session, &replace.table, "replace rows of")?;
    let change = match &replace.condition {
        None => RowChange::all(table.def.clone()),
        Some(condition) => {
            refuse_metrics(&table, condition)?;
            let target = Target {
                sql: format!(
                    "SELECT ({condition}) AS __henge_where FROM {}",
                    replace.table
                ),
                table: table.clone(),
                filtered: true,
                columns: Vec::new(),
            };
            target.plan(session, Vec::new()).await?
        }
    };
    let staged = stage_query(session, &replace.table, &replace.query).await?;
    let report = session
        .shared
        .engine
        .rewrite(&table, &change, staged)
        .await?;
    Ok(Response::Execution(
        Tag::new("INSERT")
            .with_oid(0)
            .with_rows(report.inserted as usize),
    ))
}

/// The rows of `query`, as INSERT INTO `table` would take them, staged but not committed
/// (`None` when there are none): the INSERT runs in a transaction block of its own that is
/// taken apart, not committed.
async fn stage_query(
    session: &Session,
    table: &ObjectName,
    query: &Query,
) -> Result<Option<StagedWrite>, PgError> {
    let sql = format!("INSERT INTO {table} {query}");
    let state = session.ctx.state();
    let name = crate::ddl::table_name(table)?;
    // The query's values are typed as the values the table's sketch columns sketch.
    let plan = henge_planner::schema::planning_insert(
        &session.ctx,
        &name,
        state.create_logical_plan(&sql),
    )
    .await?;
    let plan = henge_planner::pg::numeric::exact_insert(plan)?;
    session.writes.begin().await;
    let staged = async {
        let df = session.ctx.execute_logical_plan(plan).await?;
        df.collect().await?;
        Ok::<_, PgError>(())
    }
    .await;
    let writes = session.writes.take().await;
    staged?;
    Ok(writes?.into_iter().next())
}

impl Target {
    /// Plans the statement and rewrites the table; the tag counts the rows affected.
    async fn run(
        &self,
        session: &Session,
        params: Vec<ScalarValue>,
        tag: &str,
    ) -> Result<Response, PgError> {
        let change = self.plan(session, params).await?;
        let report = session
            .shared
            .engine
            .rewrite(&self.table, &change, None)
            .await?;
        Ok(Response::Execution(
            Tag::new(tag).with_rows(report.affected as usize),
        ))
    }

    async fn plan(
        &self,
        session: &Session,
        params: Vec<ScalarValue>,
    ) -> Result<RowChange, PgError> {
        let params = (!params.is_empty()).then(|| ParamValues::from(params));
        Ok(RowChange::plan(
            &session.ctx,
            self.table.def.clone(),
            &self.sql,
            params,
            self.filtered,
            self.columns.clone(),
        )
        .await?)
    }
}

fn delete_target(session: &Session, delete: &Delete) -> Result<Target, PgError> {
    if delete.using.is_some() || delete.returning.is_some() || delete.output.is_some() {
        return Err(PgError::unsupported(
            "DELETE … USING and RETURNING are not supported",
        ));
    }
    if !delete.order_by.is_empty() || delete.limit.is_some() || !delete.tables.is_empty() {
        return Err(PgError::syntax(
            "DELETE takes no ORDER BY, LIMIT or table list",
        ));
    }
    let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &delete.from;
    let [from] = from.as_slice() else {
        return Err(PgError::unsupported(
            "DELETE from several tables is not supported",
        ));
    };
    if !from.joins.is_empty() {
        return Err(PgError::unsupported("DELETE with a join is not supported"));
    }
    let TableFactor::Table { name, .. } = &from.relation else {
        return Err(PgError::syntax("DELETE needs a table name"));
    };
    let table = table_of(session, name, "delete from")?;
    if let Some(condition) = &delete.selection {
        refuse_metrics(&table, condition)?;
    }
    Ok(Target {
        sql: format!(
            "SELECT ({}) AS __henge_where FROM {}",
            delete
                .selection
                .as_ref()
                .map_or_else(|| "true".to_owned(), |c| c.to_string()),
            from.relation
        ),
        table,
        filtered: true,
        columns: Vec::new(),
    })
}

fn update_target(session: &Session, update: &Update) -> Result<Target, PgError> {
    if update.from.is_some() || update.returning.is_some() || update.output.is_some() {
        return Err(PgError::unsupported(
            "UPDATE … FROM and RETURNING are not supported",
        ));
    }
    if update.or.is_some() || !update.order_by.is_empty() || update.limit.is_some() {
        return Err(PgError::syntax("UPDATE takes no OR, ORDER BY or LIMIT"));
    }
    if !update.table.joins.is_empty() {
        return Err(PgError::unsupported("UPDATE with a join is not supported"));
    }
    let TableFactor::Table { name, .. } = &update.table.relation else {
        return Err(PgError::syntax("UPDATE needs a table name"));
    };
    let table = table_of(session, name, "update")?;
    let def = &table.def;
    if def.rollup {
        return Err(PgError::unsupported(format!(
            "UPDATE of rolled-up table \"{}\" is not supported: its rows each combine several ingested rows (DELETE them and insert new ones)",
            def.name
        )));
    }
    let mut columns = Vec::new();
    let mut values = Vec::new();
    for assignment in &update.assignments {
        let AssignmentTarget::ColumnName(column) = &assignment.target else {
            return Err(PgError::unsupported(
                "UPDATE of a tuple of columns is not supported",
            ));
        };
        let name = column
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(normalize)
            .unwrap_or_default();
        let index = crate::ddl::column_position(def, &name)?;
        if columns.contains(&index) {
            return Err(PgError::new(
                code::SYNTAX_ERROR,
                format!("multiple assignments to same column \"{name}\""),
            ));
        }
        if def.time_column.as_deref() == Some(name.as_str()) {
            return Err(PgError::unsupported(format!(
                "UPDATE of the time column \"{name}\" is not supported: it would move rows to other time chunks (DELETE them and insert new ones)"
            )));
        }
        let value = match &assignment.value {
            Expr::Identifier(word)
                if word.value.eq_ignore_ascii_case("default") && word.quote_style.is_none() =>
            {
                match &def.columns[index].default {
                    Some(text) => format!("'{}'", text.replace('\'', "''")),
                    None => "NULL".to_owned(),
                }
            }
            other => other.to_string(),
        };
        values.push(format!(
            "CAST(({value}) AS {}) AS __henge_set_{}",
            cast_type(&def.columns[index].ty),
            values.len()
        ));
        columns.push(index);
    }
    let condition = update
        .selection
        .as_ref()
        .map_or_else(|| "true".to_owned(), |c| c.to_string());
    Ok(Target {
        sql: format!(
            "SELECT ({condition}) AS __henge_where, {} FROM {}",
            values.join(", "),
            update.table.relation
        ),
        table,
        filtered: true,
        columns,
    })
}

/// The type a SET value is cast to: the column's, but for `varchar(n)`, whose length the
/// write path checks (a cast would cut the value short silently).
pub fn cast_type(ty: &ColumnType) -> String {
    match ty {
        ColumnType::Varchar { .. } => "text".to_owned(),
        other => other.sql_name(),
    }
}

/// The Henge table `name` names; a view, a system table or nothing is an error.
fn table_of(session: &Session, name: &ObjectName, action: &str) -> Result<Arc<Table>, PgError> {
    let table = table_name(name)?;
    if session.shared.engine.view(&table).is_some() {
        return Err(PgError::new(
            code::WRONG_OBJECT_TYPE,
            format!("cannot {action} view \"{table}\""),
        )
        .with_detail("Henge's views are read-only."));
    }
    session.shared.engine.table(&table).ok_or_else(|| {
        PgError::new(
            code::UNDEFINED_TABLE,
            format!("relation \"{table}\" does not exist"),
        )
    })
}

/// A rolled-up table's rows can be chosen by time and dimensions only: a metric's stored
/// value combines several ingested rows.
fn refuse_metrics(table: &Table, condition: &Expr) -> Result<(), PgError> {
    if !table.def.rollup {
        return Ok(());
    }
    struct Names(Vec<String>);
    impl Visitor for Names {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> std::ops::ControlFlow<()> {
            match expr {
                Expr::Identifier(ident) => self.0.push(normalize(ident)),
                Expr::CompoundIdentifier(parts) => {
                    if let Some(last) = parts.last() {
                        self.0.push(normalize(last));
                    }
                }
                _ => {}
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let mut names = Names(Vec::new());
    let _ = condition.visit(&mut names);
    let metric = names.0.into_iter().find(|n| {
        table
            .def
            .columns
            .iter()
            .any(|c| &c.name == n && c.rollup.is_some_and(|r| r.is_metric()))
    });
    match metric {
        Some(metric) => Err(PgError::unsupported(format!(
            "rows of rolled-up table \"{}\" cannot be chosen by metric column \"{metric}\": its stored values each combine several ingested rows",
            table.def.name
        ))),
        None => Ok(()),
    }
}

fn outside_blocks(session: &Session, what: &str) -> Result<(), PgError> {
    if session.in_block() {
        return Err(PgError::unsupported(format!(
            "{what} inside a transaction block is not supported: run it on its own (each statement is atomic)"
        )));
    }
    Ok(())
}
