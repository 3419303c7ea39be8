//! CREATE [OR REPLACE] VIEW and DROP VIEW, and what DROP TABLE must know of views: which
//! depend on a table, with PostgreSQL's errors and its CASCADE.

use std::collections::BTreeSet;

use datafusion::sql::sqlparser::ast::{CreateTableOptions, CreateView, ObjectName};
use henge_ingest::Engine;
use henge_planner::pg::types::of_field;
use henge_planner::view;
use henge_storage::ViewDef;
use pgwire::api::results::{Response, Tag};

use crate::ddl::{normalize, table_name};
use crate::error::{code, PgError};
use crate::session::Session;

/// `CREATE [OR REPLACE] VIEW name [(columns)] AS query`.
pub async fn create(session: &Session, create: &CreateView) -> Result<Response, PgError> {
    if create.materialized {
        return Err(PgError::unsupported("materialized views are not supported"));
    }
    if create.temporary {
        return Err(PgError::unsupported("temporary views are not supported"));
    }
    if !matches!(create.options, CreateTableOptions::None) {
        return Err(PgError::unsupported("view options are not supported"));
    }
    let engine = &session.shared.engine;
    let name = table_name(&create.name)?;
    if engine.table(&name).is_some() {
        return Err(match create.or_replace {
            true => PgError::new(code::WRONG_OBJECT_TYPE, format!("\"{name}\" is not a view")),
            false => PgError::new(
                code::DUPLICATE_TABLE,
                format!("relation \"{name}\" already exists"),
            ),
        });
    }
    let old = engine.view(&name);
    if old.is_some() && !create.or_replace {
        if create.if_not_exists {
            return Ok(Response::Execution(Tag::new("CREATE VIEW")));
        }
        return Err(PgError::new(
            code::DUPLICATE_TABLE,
            format!("relation \"{name}\" already exists"),
        ));
    }
    let query = create.query.to_string();
    let mut def = ViewDef {
        id: 0,
        name: name.clone(),
        query,
        columns: create.columns.iter().map(|c| normalize(&c.name)).collect(),
        depends_on: Vec::new(),
    };
    // Planned as every later read will plan it: an error in it is the CREATE's error.
    let state = session.ctx.state();
    let plan = view::plan(&state, &def).await?;
    let fields = plan.schema().fields().len();
    if def.columns.len() > fields {
        return Err(PgError::new(
            code::SYNTAX_ERROR,
            "CREATE VIEW specifies more column names than columns",
        ));
    }
    let names = view::column_names(&plan, &def.columns);
    def.depends_on = view::dependencies(&state, engine, &view::statement(&def.query)?)?;
    if let Some(old) = old {
        // A view that reads itself, through others, could never be planned.
        if reads(engine, &def.depends_on).contains(&name) {
            return Err(PgError::new(
                code::INVALID_RECURSION,
                format!("infinite recursion detected in rules for relation \"{name}\""),
            ));
        }
        // Statements planned against the old view keep working: its columns stay, with
        // their names and types, and new ones may only follow them.
        if let Ok(before) = view::plan(&state, &old).await {
            let old_names = view::column_names(&before, &old.columns);
            if old_names.len() > names.len() {
                return Err(PgError::new(
                    code::INVALID_TABLE_DEFINITION,
                    "cannot drop columns from view",
                ));
            }
            let old_fields = before.schema().fields();
            let new_fields = plan.schema().fields();
            for (i, old_name) in old_names.iter().enumerate() {
                if *old_name != names[i] {
                    return Err(PgError::new(
                        code::INVALID_TABLE_DEFINITION,
                        format!(
                            "cannot change name of view column \"{old_name}\" to \"{}\"",
                            names[i]
                        ),
                    )
                    .with_hint(
                        "Use ALTER VIEW ... RENAME COLUMN ... to change name of view column \
                         instead.",
                    ));
                }
                let (was, is) = (of_field(&old_fields[i]), of_field(&new_fields[i]));
                if was != is {
                    return Err(PgError::new(
                        code::INVALID_TABLE_DEFINITION,
                        format!(
                            "cannot change data type of view column \"{old_name}\" from {} to {}",
                            was.data_type, is.data_type
                        ),
                    ));
                }
            }
        }
    }
    let owner = session.settings.identity().current().0;
    engine.create_view_owned(def, create.or_replace, owner)?;
    Ok(Response::Execution(Tag::new("CREATE VIEW")))
}

/// `DROP VIEW [IF EXISTS] names [CASCADE | RESTRICT]`: all of them or none; a NOTICE for
/// each name skipped and each view a CASCADE takes with them.
pub fn drop(
    session: &Session,
    names: &[ObjectName],
    if_exists: bool,
    cascade: bool,
) -> Result<Response, PgError> {
    let engine = &session.shared.engine;
    let mut views = Vec::new();
    for name in names {
        let name = table_name(name)?;
        if engine.table(&name).is_some() {
            return Err(
                PgError::new(code::WRONG_OBJECT_TYPE, format!("\"{name}\" is not a view"))
                    .with_hint("Use DROP TABLE to remove a table."),
            );
        }
        match engine.view(&name) {
            Some(_) => views.push(name),
            None if if_exists => {
                session.notice(format!("view \"{name}\" does not exist, skipping"));
            }
            None => {
                return Err(PgError::new(
                    code::UNDEFINED_TABLE,
                    format!("view \"{name}\" does not exist"),
                ))
            }
        }
    }
    if views.is_empty() {
        return Ok(Response::Execution(Tag::new("DROP VIEW")));
    }
    let dependents = dependents(engine, &views);
    if !dependents.is_empty() {
        if !cascade {
            let first = &views[0];
            return Err(still_needed(engine, "view", first, &dependents));
        }
        for d in &dependents {
            session.notice(format!("drop cascades to view {d}"));
        }
    }
    views.extend(dependents);
    engine.drop_views(&views)?;
    Ok(Response::Execution(Tag::new("DROP VIEW")))
}

/// The views that read any of `names`, directly or through other views, not counting
/// `names` themselves; each after the views it depends on.
pub fn dependents(engine: &Engine, names: &[String]) -> Vec<String> {
    let views = engine.views();
    let mut gone: Vec<String> = names.to_vec();
    let mut found = Vec::new();
    loop {
        let next: Vec<String> = views
            .iter()
            .filter(|v| !gone.contains(&v.name))
            .filter(|v| v.depends_on.iter().any(|d| gone.contains(d)))
            .map(|v| v.name.clone())
            .collect();
        if next.is_empty() {
            return found;
        }
        gone.extend(next.iter().cloned());
        found.extend(next);
    }
}

/// PostgreSQL's error for dropping `name` (a `kind`) without CASCADE while views use it.
pub fn still_needed(engine: &Engine, kind: &str, name: &str, dependents: &[String]) -> PgError {
    let views = engine.views();
    let mut lines = Vec::new();
    for d in dependents {
        let Some(def) = views.iter().find(|v| &v.name == d) else {
            continue;
        };
        for on in &def.depends_on {
            let on_kind = match engine.table(on) {
                Some(_) => "table",
                None => "view",
            };
            if on == name || dependents.contains(on) {
                lines.push(format!("view {d} depends on {on_kind} {on}"));
            }
        }
    }
    PgError::new(
        code::DEPENDENT_OBJECTS_STILL_EXIST,
        format!("cannot drop {kind} {name} because other objects depend on it"),
    )
    .with_detail(lines.join("\n"))
    .with_hint("Use DROP ... CASCADE to drop the dependent objects too.")
}

/// Every table and view that `names` read, directly or through views.
fn reads(engine: &Engine, names: &[String]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = names.to_vec();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(v) = engine.view(&name) {
            todo.extend(v.depends_on);
        }
    }
    seen
}
