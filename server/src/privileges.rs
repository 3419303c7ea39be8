//! Privilege checks: a statement runs only if its role holds the privileges on every
//! relation it touches, as PostgreSQL checks its range tables.
//!
//! The relations come from the statement as it will be planned: every table named in a
//! FROM, JOIN or subquery (at any depth, in WITH queries too), the target of an INSERT and
//! the table or query of a COPY. Reading needs SELECT, INSERT and COPY FROM need INSERT.
//! A view needs the privilege on the view; the relations its query reads are checked with
//! the privileges of the view's owner, so a view can give access to part of a table. A
//! name that is a WITH query's somewhere in the statement and also a table's is checked as
//! the table: the check may refuse a statement that shadows a table's name, but never lets
//! one through. Superusers pass everything; the catalogs and `sys` are readable by all,
//! except `pg_authid` and `pg_shadow`, which only superusers read.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    CopySource, ObjectName, Statement, TableFactor, TableObject, Visit, Visitor,
};
use henge_storage::access::{Access, Privileges};

use crate::error::{code, PgError};
use crate::session::Session;

/// Views nested deeper than this are refused (a view cannot read itself; this only bounds
/// the work).
const MAX_VIEW_DEPTH: usize = 64;

/// What a relation name stands for.
enum Relation {
    Table(u64, String),
    View(u64, String, String),
    /// A catalog or `sys` table.
    System(String),
    /// Nothing Henge knows: the planner will say so.
    Unknown,
}

/// Whether an expression reads any column.
pub fn names_columns(expr: &datafusion::sql::sqlparser::ast::Expr) -> bool {
    use datafusion::sql::sqlparser::ast::Expr;
    struct Columns(bool);
    impl Visitor for Columns {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            self.0 |= matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
            ControlFlow::Continue(())
        }
    }
    let mut columns = Columns(false);
    let _ = expr.visit(&mut columns);
    columns.0
}

/// Checks that the session's current role may run `statement`.
pub fn check(session: &Session, statement: &Statement) -> Result<(), PgError> {
    as_current_role(session, |checker, role| checker.statement(role, statement))
}

/// Runs `check` for the session's current role, unless it is a superuser.
fn as_current_role(
    session: &Session,
    check: impl FnOnce(&Checker, u32) -> Result<(), PgError>,
) -> Result<(), PgError> {
    let role = session.settings.identity().current().0;
    let engine = &session.shared.engine;
    if engine.read_access(|a| a.is_superuser(role)) {
        return Ok(());
    }
    let access = engine.access();
    let checker = Checker {
        session,
        access: &access,
    };
    check(&checker, role)
}

/// REPLACE INTO table OVERWRITE … query needs DELETE and INSERT on the table and SELECT on
/// what its query reads.
pub fn check_replace(
    session: &Session,
    table: &ObjectName,
    query: &datafusion::sql::sqlparser::ast::Query,
) -> Result<(), PgError> {
    as_current_role(session, |checker, role| {
        checker.require(role, table, Privileges::DELETE, 0)?;
        checker.require(role, table, Privileges::INSERT, 0)?;
        checker.reads(role, query, 0)
    })
}

/// ALTER TABLE … RESET needs to own the table.
pub fn check_owner(session: &Session, table: &ObjectName) -> Result<(), PgError> {
    as_current_role(session, |checker, role| checker.must_own(role, table))
}

/// CHECKPOINT and COMPACT change the whole server: superusers only.
pub fn check_superuser(session: &Session, what: &str) -> Result<(), PgError> {
    let role = session.settings.identity().current().0;
    if session.shared.engine.read_access(|a| a.is_superuser(role)) {
        Ok(())
    } else {
        Err(PgError::new(
            code::INSUFFICIENT_PRIVILEGE,
            format!("must be superuser to do {what}"),
        ))
    }
}

struct Checker<'a> {
    session: &'a Session,
    access: &'a Access,
}

impl Checker<'_> {
    fn statement(&self, role: u32, statement: &Statement) -> Result<(), PgError> {
        match statement {
            Statement::Query(query) => self.reads(role, query.as_ref(), 0),
            Statement::Explain { statement, .. } => self.statement(role, statement),
            Statement::Insert(insert) => {
                if let TableObject::TableName(name) = &insert.table {
                    self.require(role, name, Privileges::INSERT, 0)?;
                }
                match &insert.source {
                    Some(source) => self.reads(role, source.as_ref(), 0),
                    None => Ok(()),
                }
            }
            Statement::Copy { source, to, .. } => match source {
                CopySource::Table { table_name, .. } => {
                    let privilege = if *to {
                        Privileges::SELECT
                    } else {
                        Privileges::INSERT
                    };
                    self.require(role, table_name, privilege, 0)
                }
                CopySource::Query(query) => self.reads(role, query.as_ref(), 0),
            },
            // Reading the target's columns (in WHERE or a SET value) needs SELECT on it, as
            // in PostgreSQL; `UPDATE t SET a = 1` alone does not.
            Statement::Update(update) => {
                self.relations_in(role, &update.table.relation, Privileges::UPDATE, 0)?;
                let reads_target = update.selection.is_some()
                    || update.assignments.iter().any(|a| names_columns(&a.value));
                if reads_target {
                    self.relations_in(role, &update.table.relation, Privileges::SELECT, 0)?;
                }
                for assignment in &update.assignments {
                    self.reads(role, &assignment.value, 0)?;
                }
                match &update.selection {
                    Some(selection) => self.reads(role, selection, 0),
                    None => Ok(()),
                }
            }
            // Every relation a DELETE names is read; the one it deletes from needs DELETE.
            Statement::Delete(delete) => {
                use datafusion::sql::sqlparser::ast::FromTable;
                let (FromTable::WithFromKeyword(tables) | FromTable::WithoutKeyword(tables)) =
                    &delete.from;
                for table in tables.iter().take(1) {
                    self.relations_in(role, &table.relation, Privileges::DELETE, 0)?;
                    if delete.selection.is_some() {
                        self.relations_in(role, &table.relation, Privileges::SELECT, 0)?;
                    }
                }
                match &delete.selection {
                    Some(selection) => self.reads(role, selection, 0),
                    None => Ok(()),
                }
            }
            Statement::Truncate(truncate) => {
                for target in &truncate.table_names {
                    self.require(role, &target.name, Privileges::TRUNCATE, 0)?;
                }
                Ok(())
            }
            Statement::CreateTable(_) => self.may_create(role),
            Statement::CreateView(create) => {
                // Replacing a view is its owner's business; creating one needs CREATE.
                if create.or_replace && matches!(self.resolve(&create.name), Relation::View(..)) {
                    self.must_own(role, &create.name)
                } else {
                    self.may_create(role)
                }
            }
            Statement::Drop { names, .. } => {
                for name in names {
                    self.must_own(role, name)?;
                }
                Ok(())
            }
            Statement::AlterTable(alter) => self.must_own(role, &alter.name),
            _ => Ok(()),
        }
    }

    /// Every relation a statement part reads needs SELECT.
    fn reads<V: Visit>(&self, role: u32, part: &V, depth: usize) -> Result<(), PgError> {
        let mut names = Names::default();
        let _ = part.visit(&mut names);
        for name in &names.relations {
            self.require(role, name, Privileges::SELECT, depth)?;
        }
        Ok(())
    }

    fn relations_in(
        &self,
        role: u32,
        factor: &TableFactor,
        privilege: Privileges,
        depth: usize,
    ) -> Result<(), PgError> {
        if let TableFactor::Table { name, .. } = factor {
            self.require(role, name, privilege, depth)?;
        }
        Ok(())
    }

    fn resolve(&self, name: &ObjectName) -> Relation {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|p| {
                p.as_ident()
                    .map(crate::ddl::normalize)
                    .unwrap_or_else(|| p.to_string())
            })
            .collect();
        let engine = &self.session.shared.engine;
        let ours = |table: &str| {
            if let Some(t) = engine.table(table) {
                return Some(Relation::Table(t.def.id, table.to_owned()));
            }
            engine
                .view(table)
                .map(|v| Relation::View(v.id, table.to_owned(), v.query))
        };
        let system = |schema: &str, table: &str| match schema {
            "pg_catalog" | "information_schema" | "sys" => Relation::System(table.to_owned()),
            _ => Relation::Unknown,
        };
        match parts.as_slice() {
            [table] => ours(table).unwrap_or_else(|| {
                if henge_planner::pg::roles::is_catalog_table(table) {
                    Relation::System(table.clone())
                } else {
                    Relation::Unknown
                }
            }),
            [schema, table] | [_, schema, table] if schema == henge_planner::SCHEMA => {
                ours(table).unwrap_or(Relation::Unknown)
            }
            [schema, table] | [_, schema, table] => system(schema, table),
            _ => Relation::Unknown,
        }
    }

    /// Requires `privilege` on the relation `name` names; for a view, SELECT on what its
    /// query reads, with its owner's privileges.
    fn require(
        &self,
        role: u32,
        name: &ObjectName,
        privilege: Privileges,
        depth: usize,
    ) -> Result<(), PgError> {
        if self.access.is_superuser(role) {
            return Ok(());
        }
        match self.resolve(name) {
            Relation::Unknown => Ok(()),
            Relation::System(table) => {
                if matches!(table.as_str(), "pg_authid" | "pg_shadow")
                    || privilege != Privileges::SELECT
                {
                    Err(denied("table", &table))
                } else {
                    Ok(())
                }
            }
            Relation::Table(id, table) => {
                if self.access.privileges(role, id).contains(privilege) {
                    Ok(())
                } else {
                    Err(denied("table", &table))
                }
            }
            Relation::View(id, view, query) => {
                if !self.access.privileges(role, id).contains(privilege) {
                    return Err(denied("view", &view));
                }
                if depth >= MAX_VIEW_DEPTH {
                    return Err(PgError::new(
                        code::STATEMENT_TOO_COMPLEX,
                        format!("views nested too deeply under \"{view}\""),
                    ));
                }
                let statement = henge_planner::view::statement(&query)?;
                let owner = self.access.owner(id);
                self.reads(owner, &statement, depth + 1)
            }
        }
    }

    /// CREATE TABLE and CREATE VIEW: CREATE on schema public.
    fn may_create(&self, role: u32) -> Result<(), PgError> {
        let held = self
            .access
            .privileges(role, henge_planner::pg::roles::SCHEMA_PUBLIC);
        if self.access.is_superuser(role) || held.contains(Privileges::CREATE) {
            Ok(())
        } else {
            Err(PgError::new(
                code::INSUFFICIENT_PRIVILEGE,
                format!("permission denied for schema {}", henge_planner::SCHEMA),
            ))
        }
    }

    /// DROP: the relation's owner (or a member of it) only.
    fn must_own(&self, role: u32, name: &ObjectName) -> Result<(), PgError> {
        match self.resolve(name) {
            Relation::Table(id, table) if !self.access.owns(role, id) => Err(PgError::new(
                code::INSUFFICIENT_PRIVILEGE,
                format!("must be owner of table {table}"),
            )),
            Relation::View(id, view, _) if !self.access.owns(role, id) => Err(PgError::new(
                code::INSUFFICIENT_PRIVILEGE,
                format!("must be owner of view {view}"),
            )),
            Relation::System(table) => Err(PgError::new(
                code::INSUFFICIENT_PRIVILEGE,
                format!("permission denied: \"{table}\" is a system catalog"),
            )),
            _ => Ok(()),
        }
    }
}

fn denied(kind: &str, name: &str) -> PgError {
    PgError::new(
        code::INSUFFICIENT_PRIVILEGE,
        format!("permission denied for {kind} {name}"),
    )
}

/// The relation names of a statement part.
#[derive(Default)]
struct Names {
    relations: Vec<ObjectName>,
}

impl Visitor for Names {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        // Table functions (`generate_series(…)` in FROM) are not relations.
        if let TableFactor::Table {
            name, args: None, ..
        } = factor
        {
            self.relations.push(name.clone());
        }
        ControlFlow::Continue(())
    }
}
