//! Adapting the SQL clients send to what DataFusion plans.
//!
//! Catalog queries (those reading `pg_catalog` or `information_schema`) go through all of
//! `datafusion-pg-catalog`'s rewrites, including its substitutions of whole psql and
//! driver queries. Those rewrites are built for catalog queries and are not all safe for
//! others (one turns correlated subqueries in a select list into NULL), so every other
//! statement gets only the ones that cannot change an answer: `pg_catalog.` prefixes on
//! functions dropped, `COLLATE` dropped, `OPERATOR(pg_catalog.~)` as `~`, `::regclass`
//! casts of names resolved, `current_user` as a function, and `version()`'s column name.

use std::borrow::Cow;
use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

use datafusion::sql::sqlparser::ast::{
    visit_relations, CastKind, DataType as SqlType, Expr, Ident, ObjectName, Query, SelectItem,
    SetExpr, SetOperator, SetQuantifier, Statement, Value, VisitMut, Visitor, VisitorMut,
};
use datafusion_pg_catalog::sql::rules::{
    CurrentUserVariableToSessionUserFunctionCall, FixVersionColumnName, RewritePgCatalogOperator,
    RewriteRegCastToSubquery, SqlStatementRewriteRule, StripCallableQualifier, StripCollate,
};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

struct Rewriter {
    catalog: PostgresCompatibilityParser,
    safe: Vec<Arc<dyn SqlStatementRewriteRule>>,
}

fn rewriter() -> &'static Rewriter {
    static REWRITER: OnceLock<Rewriter> = OnceLock::new();
    REWRITER.get_or_init(|| Rewriter {
        catalog: PostgresCompatibilityParser::new(),
        safe: vec![
            Arc::new(StripCallableQualifier),
            Arc::new(CurrentUserVariableToSessionUserFunctionCall),
            Arc::new(StripCollate),
            Arc::new(RewritePgCatalogOperator),
            Arc::new(RewriteRegCastToSubquery::new()),
            Arc::new(FixVersionColumnName),
        ],
    })
}

/// Whether a statement reads a catalog: `pg_catalog.*`, `information_schema.*`, or one of
/// `pg_catalog`'s tables by its bare name (PostgreSQL searches `pg_catalog` first).
pub fn reads_catalog(statement: &Statement) -> bool {
    let is_catalog = |name: &ObjectName| {
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident())
            .map(|i| i.value.to_ascii_lowercase())
            .collect();
        match parts.as_slice() {
            [.., schema, _] => schema == "pg_catalog" || schema == "information_schema",
            [table] => super::roles::is_catalog_table(table),
            [] => false,
        }
    };
    visit_relations(statement, |name| {
        if is_catalog(name) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
}

/// Rewrites one statement: all catalog rewrites for catalog queries, the safe ones
/// otherwise.
pub fn statement(statement: Statement) -> Statement {
    let rewriter = rewriter();
    // Named first: later rewrites replace `current_user` with `session_user()`.
    let statement = regtype_literals(oid_alias_text(like_escapes(column_names(statement))));
    let statement = counted_set_operations(query_clauses(spellings(statement)));
    let statement = super::regex::rewrite(super::similar::rewrite(mod_operator(statement)));
    let statement = super::ordered_set::rewrite(super::srf::rewrite(statement));
    let statement = super::subquery::rewrite(super::interval::rewrite(statement));
    let statement = super::subquery::set_comparisons(statement);
    let statement = super::json::rewrite(super::formatting::rewrite(statement));
    if reads_catalog(&statement) {
        return catalog_rewrites(rewriter.catalog.rewrite(statement));
    }
    let statement = rewriter
        .safe
        .iter()
        .fold(statement, |s, rule| rule.rewrite(s));
    super::numbers::rewrite(statement)
}

/// Names result columns as PostgreSQL does where DataFusion would name them after the
/// whole expression: a function call after the function (`count`, `version`), a cast
/// after what is cast or the type, CASE `case`, other expressions `?column?`. A name that
/// repeats within a select list (which DataFusion does not allow) is made unique by a
/// suffix the client never sees ([`shown_name`]); select lists with a wildcard are left
/// alone.
pub fn column_names(mut statement: Statement) -> Statement {
    struct Namer;
    impl VisitorMut for Namer {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            name_set_expr(&mut query.body);
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            array_subquery(expr);
            current_role(expr);
            ControlFlow::Continue(())
        }
        fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
            // pg_catalog is searched first, as in PostgreSQL, for the catalogs Henge adds
            // to the library's (which qualifies its own).
            if let [part] = relation.0.as_slice() {
                let extra = part.as_ident().is_some_and(|i| {
                    i.quote_style.is_none()
                        && super::roles::EXTRA_TABLES
                            .contains(&i.value.to_ascii_lowercase().as_str())
                });
                if extra {
                    relation.0.insert(
                        0,
                        datafusion::sql::sqlparser::ast::ObjectNamePart::Identifier(Ident::new(
                            "pg_catalog",
                        )),
                    );
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Namer);
    statement
}

/// Chains of AND or OR longer than this are rebalanced.
const LONG_CHAIN: usize = 32;

/// Long chains of AND or OR (`a = 1 OR a = 2 OR …`, as tools generate them) as balanced
/// trees: the parser makes a chain as deep as it is long, which every recursive walk after
/// it (sqlparser's visitors, DataFusion's planning, whose cost grows with the cube of the
/// depth) would have to go down. AND and OR are associative in SQL's logic of three
/// values, and SQL fixes no order of evaluation, so the answer is the same. Chains are
/// taken apart without recursion; short ones are left as written. Run it before any other
/// walk of a freshly parsed statement (the session does, and [`crate::view::statement`]).
pub fn balance_boolean_chains(mut statement: Statement) -> Statement {
    use datafusion::sql::sqlparser::ast::BinaryOperator;
    struct Balance;
    impl VisitorMut for Balance {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let op = match expr {
                Expr::BinaryOp {
                    op: op @ (BinaryOperator::And | BinaryOperator::Or),
                    ..
                } => op.clone(),
                _ => return ControlFlow::Continue(()),
            };
            // The parser's chains are left-deep: their length is that of the left spine.
            let mut spine = 0;
            let mut node = &*expr;
            while let Expr::BinaryOp { left, op: o, .. } = node {
                if *o != op || spine > LONG_CHAIN {
                    break;
                }
                spine += 1;
                node = left;
            }
            if spine <= LONG_CHAIN {
                return ControlFlow::Continue(());
            }
            let mut terms = Vec::new();
            let mut todo = vec![std::mem::replace(expr, Expr::value(Value::Null))];
            while let Some(next) = todo.pop() {
                match next {
                    Expr::BinaryOp { left, op: o, right } if o == op => {
                        todo.push(*right);
                        todo.push(*left);
                    }
                    other => terms.push(other),
                }
            }
            *expr = balanced(terms, &op);
            ControlFlow::Continue(())
        }
    }
    fn balanced(mut terms: Vec<Expr>, op: &BinaryOperator) -> Expr {
        if terms.len() == 1 {
            return terms.pop().unwrap_or_else(|| Expr::value(Value::Null));
        }
        let right = terms.split_off(terms.len() / 2);
        Expr::BinaryOp {
            left: Box::new(balanced(terms, op)),
            op: op.clone(),
            right: Box::new(balanced(right, op)),
        }
    }
    let _ = statement.visit(&mut Balance);
    statement
}

/// `current_user`, `current_role` and `user`: the role a session acts as, which
/// `SET ROLE` changes, as `henge_current_user()` (the catalog library's rewrites read them
/// as `session_user`, which is the role that logged in).
fn current_role(expr: &mut Expr) {
    use datafusion::sql::sqlparser::ast::FunctionArguments;
    let Expr::Function(f) = expr else {
        return;
    };
    let [part] = f.name.0.as_slice() else {
        return;
    };
    let is_current = part.as_ident().is_some_and(|i| {
        i.quote_style.is_none()
            && matches!(
                i.value.to_ascii_lowercase().as_str(),
                "current_user" | "current_role" | "user"
            )
    });
    if is_current && matches!(f.args, FunctionArguments::None) {
        *expr = call("henge_current_user", Vec::new());
    }
}

/// `ARRAY(SELECT x FROM … [ORDER BY …])`, the subquery's rows as an array (`{}` when there
/// are none), as `coalesce((SELECT array_agg(x ORDER BY …) FROM …), make_array())`:
/// DataFusion has no array constructor over a subquery. Only a plain one-column SELECT is
/// rewritten (no DISTINCT, grouping, LIMIT or set operation); others stay as they are and
/// are refused.
fn array_subquery(expr: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{
        FunctionArgumentClause, FunctionArguments, GroupByExpr, OrderByKind,
    };
    let Expr::Function(f) = expr else {
        return;
    };
    let is_array = matches!(f.name.0.as_slice(), [part]
        if part.as_ident().is_some_and(|i| i.quote_style.is_none() && i.value.eq_ignore_ascii_case("array")));
    let FunctionArguments::Subquery(query) = &f.args else {
        return;
    };
    if !is_array || query.limit_clause.is_some() || query.fetch.is_some() || query.with.is_some() {
        return;
    }
    let mut query = query.clone();
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let plain_group =
        matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    if select.distinct.is_some() || !plain_group || select.having.is_some() {
        return;
    }
    let [item] = select.projection.as_mut_slice() else {
        return;
    };
    let value = match item {
        SelectItem::UnnamedExpr(e) => e.clone(),
        SelectItem::ExprWithAlias { expr, .. } => expr.clone(),
        _ => return,
    };
    let mut aggregate = call("array_agg", vec![value]);
    if let (Expr::Function(agg), Some(order)) = (&mut aggregate, query.order_by.take()) {
        let OrderByKind::Expressions(items) = order.kind else {
            return;
        };
        if let FunctionArguments::List(list) = &mut agg.args {
            list.clauses.push(FunctionArgumentClause::OrderBy(items));
        }
    }
    *item = SelectItem::UnnamedExpr(aggregate);
    *expr = call(
        "coalesce",
        vec![Expr::Subquery(query), call("make_array", Vec::new())],
    );
}

fn name_set_expr(body: &mut SetExpr) {
    let select = match body {
        SetExpr::Select(select) => select,
        SetExpr::SetOperation { left, .. } => return name_set_expr(left),
        _ => return,
    };
    let items = &mut select.projection;
    if items.iter().any(|i| {
        matches!(
            i,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    }) {
        return;
    }
    // Names columns keep whatever happens: plain column references and explicit aliases.
    let mut taken: Vec<String> = Vec::new();
    for item in items.iter_mut() {
        let (expr, name) = match item {
            SelectItem::UnnamedExpr(expr) => {
                let name = pg_name(expr);
                (expr.clone(), name)
            }
            SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), folded(alias)),
            _ => continue,
        };
        // `current_schema` and `current_catalog` without parentheses are calls, which
        // DataFusion would name `current_schema()`.
        let keyword_call = matches!(
            item,
            SelectItem::UnnamedExpr(Expr::Identifier(i)) if i.quote_style.is_none()
                && matches!(i.value.to_ascii_lowercase().as_str(), "current_schema" | "current_catalog")
        );
        let keeps_own_name = !keyword_call
            && matches!(
                item,
                SelectItem::UnnamedExpr(Expr::Identifier(_) | Expr::CompoundIdentifier(_))
                    | SelectItem::ExprWithAlias { .. }
            );
        let repeats = taken.iter().filter(|t| **t == name).count();
        taken.push(name.clone());
        if repeats == 0 && keeps_own_name {
            continue;
        }
        // PostgreSQL allows a name to repeat in a select list, DataFusion does not: the
        // repeats carry a suffix after a NUL, which no SQL name can hold and which the
        // wire protocol's field names drop ([`shown_name`]).
        let alias = match repeats {
            0 => name,
            n => format!("{name}{DUPLICATE_MARK}{n}"),
        };
        *item = SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', alias),
        };
    }
}

/// What separates a repeated column name from its suffix ([`column_names`]).
const DUPLICATE_MARK: char = '\0';

/// A result column's name as the client sees it: without the suffix that
/// [`column_names`] gives a name that repeats in a select list.
pub fn shown_name(name: &str) -> &str {
    name.split(DUPLICATE_MARK).next().unwrap_or(name)
}

/// An identifier as PostgreSQL resolves it: lower case unless quoted.
fn folded(ident: &Ident) -> String {
    match ident.quote_style {
        None => ident.value.to_lowercase(),
        Some(_) => ident.value.clone(),
    }
}

/// PostgreSQL's name for an unnamed select-list expression.
fn pg_name(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(i) => folded(i),
        Expr::CompoundIdentifier(parts) => parts.last().map_or("?column?".into(), folded),
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map_or("?column?".into(), |i| i.value.to_lowercase()),
        Expr::Nested(inner) => pg_name(inner),
        // The cast value's name if it has one of its own, else the type's (PostgreSQL
        // lets the outermost cast of a constant name the column).
        Expr::Cast {
            expr, data_type, ..
        } => {
            if named_by_itself(expr) {
                pg_name(expr)
            } else {
                type_name(data_type)
            }
        }
        Expr::Case { .. } => "case".into(),
        Expr::AtTimeZone { .. } => "timezone".into(),
        Expr::BinaryOp {
            op: datafusion::sql::sqlparser::ast::BinaryOperator::Overlaps,
            ..
        } => "overlaps".into(),
        Expr::Exists { .. } => "exists".into(),
        Expr::Array(_) => "array".into(),
        Expr::Extract { .. } => "extract".into(),
        Expr::Substring { .. } => "substring".into(),
        Expr::Position { .. } => "position".into(),
        Expr::Trim { .. } => "btrim".into(),
        Expr::Ceil { .. } => "ceil".into(),
        Expr::Floor { .. } => "floor".into(),
        Expr::TypedString(t) => type_name(&t.data_type),
        Expr::Value(v) if matches!(v.value, Value::Boolean(_)) => "bool".into(),
        _ => "?column?".into(),
    }
}

/// Whether an expression names its column by something of its own (a column, a
/// function, CASE …) rather than by a type or `?column?`.
fn named_by_itself(expr: &Expr) -> bool {
    match expr {
        Expr::Cast { expr, .. } | Expr::Nested(expr) => named_by_itself(expr),
        Expr::Value(_) | Expr::TypedString(_) => false,
        other => pg_name(other) != "?column?",
    }
}

/// `pg_type` names of the types a constant is commonly cast to.
fn type_name(ty: &SqlType) -> String {
    let text = ty.to_string().to_ascii_lowercase();
    let base = text.split('(').next().unwrap_or(&text).trim();
    match base {
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "real" | "float4" => "float4",
        "double precision" | "float8" | "double" | "float" => "float8",
        "boolean" | "bool" => "bool",
        "varchar" | "character varying" => "varchar",
        "char" | "character" | "bpchar" => "bpchar",
        "decimal" | "numeric" => "numeric",
        "timestamp with time zone" | "timestamptz" => "timestamptz",
        "timestamp" | "timestamp without time zone" => "timestamp",
        other => return other.rsplit('.').next().unwrap_or(other).to_owned(),
    }
    .to_owned()
}

/// Parses a query string through the catalog parser, which first swaps known client
/// queries DataFusion cannot plan for equivalent ones, then applies every catalog rewrite.
pub fn parse_catalog_query(sql: &str) -> Option<Vec<Statement>> {
    let statements = rewriter().catalog.parse(sql).ok()?;
    Some(statements.into_iter().map(catalog_rewrites).collect())
}

/// `LIKE … ESCAPE 'c'` with another escape character than backslash (the only one
/// DataFusion takes), rewritten to the same pattern escaped with backslashes.
pub fn like_escapes(mut statement: Statement) -> Statement {
    fn pattern(text: &str, escape: char) -> String {
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == escape {
                if let Some(next) = chars.next() {
                    out.push('\\');
                    out.push(next);
                }
            } else if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        out
    }
    struct Escapes;
    impl VisitorMut for Escapes {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let (Expr::Like {
                pattern: p,
                escape_char,
                ..
            }
            | Expr::ILike {
                pattern: p,
                escape_char,
                ..
            }) = expr
            else {
                return ControlFlow::Continue(());
            };
            let escape = match escape_char.as_ref().map(|v| &v.value) {
                Some(Value::SingleQuotedString(e)) if e.chars().count() == 1 && e != "\\" => {
                    e.chars().next()
                }
                _ => None,
            };
            let Some(escape) = escape else {
                return ControlFlow::Continue(());
            };
            // A literal, or literals joined with `||` (joined here first).
            fn literal(expr: &Expr) -> Option<String> {
                match expr {
                    Expr::Value(v) => match &v.value {
                        Value::SingleQuotedString(s) => Some(s.clone()),
                        _ => None,
                    },
                    Expr::Nested(e) => literal(e),
                    Expr::BinaryOp {
                        left,
                        op: datafusion::sql::sqlparser::ast::BinaryOperator::StringConcat,
                        right,
                    } => Some(literal(left)? + &literal(right)?),
                    _ => None,
                }
            }
            if let Some(text) = literal(p) {
                **p = Expr::value(Value::SingleQuotedString(pattern(&text, escape)));
                *escape_char = None;
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Escapes);
    statement
}

/// Whether a type is one of `names` (with or without its schema).
fn type_is(ty: &SqlType, names: &[&str]) -> bool {
    let text = ty.to_string().to_ascii_lowercase();
    let base = text.rsplit('.').next().unwrap_or(&text).trim();
    names.contains(&base)
}

/// `x::regtype::text` and `x::regclass::text` (an OID shown by name), which DataFusion
/// would show as the number: `format_type(x, NULL)` and the relation's name.
pub fn oid_alias_text(mut statement: Statement) -> Statement {
    struct Names;
    impl VisitorMut for Names {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let Expr::Cast {
                expr: inner,
                data_type,
                ..
            } = expr
            else {
                return ControlFlow::Continue(());
            };
            if !type_is(data_type, &["text", "varchar", "name"]) {
                return ControlFlow::Continue(());
            }
            let Expr::Cast {
                expr: value,
                data_type: alias,
                ..
            } = inner.as_ref()
            else {
                return ControlFlow::Continue(());
            };
            // A name (`'int8'::regtype`) keeps its cast, which a later rewrite resolves
            // to the OID.
            let value = match value.as_ref() {
                Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)) => {
                    (**inner).clone()
                }
                other => other.clone(),
            };
            if type_is(alias, &["regtype"]) {
                *expr = call("format_type", vec![value, Expr::value(Value::Null)]);
            } else if type_is(alias, &["regclass"]) {
                *expr = call("pg_relation_name", vec![value]);
            }
            ControlFlow::Continue(())
        }
    }
    // Only in select lists: a sort key that stays a cast is matched to its select-list
    // column by DataFusion, where a new function call would need hidden columns.
    struct Lists;
    impl VisitorMut for Lists {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            fn select_lists(body: &mut SetExpr) {
                match body {
                    SetExpr::Select(select) => {
                        for item in &mut select.projection {
                            if let SelectItem::UnnamedExpr(e)
                            | SelectItem::ExprWithAlias { expr: e, .. } = item
                            {
                                // A column that is a regtype or regclass is shown by
                                // name, as PostgreSQL's output function writes it.
                                if let Expr::Cast { data_type, .. } = &*e {
                                    if type_is(data_type, &["regtype", "regclass"]) {
                                        *e = Expr::Cast {
                                            kind: CastKind::DoubleColon,
                                            expr: Box::new(e.clone()),
                                            data_type: SqlType::Text,
                                            format: None,
                                            array: false,
                                        };
                                    }
                                }
                                let _ = e.visit(&mut Names);
                            }
                        }
                    }
                    SetExpr::SetOperation { left, right, .. } => {
                        select_lists(left);
                        select_lists(right);
                    }
                    _ => {}
                }
            }
            select_lists(&mut query.body);
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Lists);
    statement
}

/// `'integer'::regtype` as `pg_regtype_found('int4'::regtype, 'integer')`: the catalog
/// library looks the name up as pg_type's `typname`, and finds nothing (NULL) for a name
/// that is no type, where PostgreSQL says so (42704). `'t'::regclass` likewise as
/// `pg_regclass_found('t'::regclass, 't')`: a relation that does not exist is 42P01.
fn regtype_literals(mut statement: Statement) -> Statement {
    struct Literals;
    impl VisitorMut for Literals {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let Expr::Cast {
                expr: value,
                data_type,
                ..
            } = expr
            else {
                return ControlFlow::Continue(());
            };
            let name = match value.as_mut() {
                Expr::Value(v) => match &mut v.value {
                    Value::SingleQuotedString(name) if type_is(data_type, &["regtype"]) => name,
                    Value::SingleQuotedString(name) if type_is(data_type, &["regclass"]) => {
                        let written = Expr::value(Value::SingleQuotedString(name.clone()));
                        *expr = call("pg_regclass_found", vec![expr.clone(), written]);
                        return ControlFlow::Continue(());
                    }
                    _ => return ControlFlow::Continue(()),
                },
                _ => return ControlFlow::Continue(()),
            };
            let written = name.clone();
            if let Some(typname) = regtype_typname(name) {
                *name = typname;
            }
            *expr = call(
                "pg_regtype_found",
                vec![
                    expr.clone(),
                    Expr::value(Value::SingleQuotedString(written)),
                ],
            );
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Literals);
    statement
}

/// The `pg_type.typname` of a type name as `regtype` reads it (`integer` → `int4`,
/// `character varying(10)` → `varchar`, `integer[]` → `_int4`), or `None` where the name
/// is already one (or unknown, which the lookup then answers).
fn regtype_typname(name: &str) -> Option<String> {
    let lower = name.trim().to_ascii_lowercase();
    let lower = lower.strip_prefix("pg_catalog.").unwrap_or(&lower);
    let (base, array) = match lower.strip_suffix("[]") {
        Some(base) => (base.trim_end(), true),
        None => (lower, false),
    };
    // A type modifier does not change the type.
    let base = match base.find('(') {
        Some(open) if base.ends_with(')') => base[..open].trim_end(),
        _ => base,
    };
    let base = base.split_whitespace().collect::<Vec<_>>().join(" ");
    let typname = match base.as_str() {
        "integer" | "int" => "int4",
        "smallint" => "int2",
        "bigint" => "int8",
        "real" => "float4",
        "double precision" | "float" => "float8",
        "boolean" => "bool",
        "character varying" => "varchar",
        "character" | "char" => "bpchar",
        "decimal" | "dec" => "numeric",
        "timestamp without time zone" => "timestamp",
        "timestamp with time zone" => "timestamptz",
        "time without time zone" => "time",
        "time with time zone" => "timetz",
        "bit varying" => "varbit",
        other => other,
    };
    let typname = match array {
        true => format!("_{typname}"),
        false => typname.to_owned(),
    };
    (typname != name).then_some(typname)
}

/// Henge's own rewrites of catalog queries, after the library's.
fn catalog_rewrites(statement: Statement) -> Statement {
    aggregate_scalar_subqueries(drop_impossible_branches(oid_alias_text(like_escapes(
        statement,
    ))))
}

/// Drops CASE branches whose condition no Henge column meets: a default
/// (`atthasdef`), an identity or generated column, or a collation other than the default.
/// Drivers look those up with correlated subqueries inside CASE, which DataFusion cannot
/// plan; without the branch the answer is the ELSE, as it would be.
fn drop_impossible_branches(mut statement: Statement) -> Statement {
    fn column_is(expr: &Expr, name: &str) -> bool {
        match expr {
            Expr::Identifier(i) => i.value.eq_ignore_ascii_case(name),
            Expr::CompoundIdentifier(parts) => parts
                .last()
                .is_some_and(|i| i.value.eq_ignore_ascii_case(name)),
            Expr::Nested(e) => column_is(e, name),
            _ => false,
        }
    }
    fn never(expr: &Expr) -> bool {
        use datafusion::sql::sqlparser::ast::BinaryOperator;
        match expr {
            Expr::Nested(e) => never(e),
            e if column_is(e, "atthasdef") => true,
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => never(left) || never(right),
            Expr::BinaryOp {
                left,
                op: BinaryOperator::NotEq,
                right,
            } => {
                let empty = matches!(right.as_ref(), Expr::Value(v)
                    if matches!(&v.value, Value::SingleQuotedString(s) if s.is_empty()));
                let zero = matches!(right.as_ref(), Expr::Value(v)
                    if matches!(&v.value, Value::Number(n, _) if n == "0"));
                ((column_is(left, "attidentity") || column_is(left, "attgenerated")) && empty)
                    || (column_is(left, "attcollation") && zero)
            }
            _ => false,
        }
    }
    struct Drop;
    impl VisitorMut for Drop {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Case {
                operand: None,
                conditions,
                else_result,
                ..
            } = expr
            {
                conditions.retain(|c| !never(&c.condition));
                if conditions.is_empty() {
                    *expr = match else_result.take() {
                        Some(e) => *e,
                        None => Expr::value(Value::Null),
                    };
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Drop);
    statement
}

/// Functions that already make a subquery return one row.
const AGGREGATES: &[&str] = &[
    "count",
    "max",
    "min",
    "sum",
    "avg",
    "array_agg",
    "string_agg",
    "bool_or",
    "bool_and",
    "json_agg",
    "jsonb_agg",
    "every",
];

/// Wraps the value of each scalar subquery in `max(…)`. DataFusion plans correlated
/// scalar subqueries only when they are aggregated; catalog queries look up one row by
/// key (a column's default, its collation), where `max` of that row is the row, and of
/// none is NULL, as PostgreSQL answers.
pub fn aggregate_scalar_subqueries(mut statement: Statement) -> Statement {
    /// Subqueries (by address) that are not scalar.
    struct Wrap {
        skip: Vec<usize>,
    }
    impl VisitorMut for Wrap {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            // `x < ALL (SELECT …)` compares with every row: not a scalar subquery.
            if let Expr::AnyOp { right, .. } | Expr::AllOp { right, .. } = expr {
                if let Expr::Subquery(query) = right.as_mut() {
                    self.skip.push(query.as_ref() as *const Query as usize);
                }
                return ControlFlow::Continue(());
            }
            let Expr::Subquery(query) = expr else {
                return ControlFlow::Continue(());
            };
            // The first row by some order is not the largest.
            if self
                .skip
                .contains(&(query.as_ref() as *const Query as usize))
                || query.order_by.is_some()
                || query.limit_clause.is_some()
                || query.fetch.is_some()
            {
                return ControlFlow::Continue(());
            }
            let SetExpr::Select(select) = query.body.as_mut() else {
                return ControlFlow::Continue(());
            };
            let grouped = !matches!(
                &select.group_by,
                datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(e, _) if e.is_empty()
            );
            if grouped || select.projection.len() != 1 || select.distinct.is_some() {
                return ControlFlow::Continue(());
            }
            let item = &mut select.projection[0];
            let value = match item {
                SelectItem::UnnamedExpr(e) => e,
                SelectItem::ExprWithAlias { expr, .. } => expr,
                _ => return ControlFlow::Continue(()),
            };
            let aggregated = matches!(value, Expr::Function(f) if f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| AGGREGATES.contains(&i.value.to_ascii_lowercase().as_str())));
            if !aggregated {
                let inner = std::mem::replace(value, Expr::value(Value::Null));
                *value = max_of(inner);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Wrap { skip: Vec::new() });
    statement
}

fn max_of(expr: Expr) -> Expr {
    use datafusion::sql::sqlparser::ast::{
        Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments,
    };
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new("max")]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Expr(expr))],
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// Fragments of client queries DataFusion cannot plan, with equivalents. They match
/// whatever the whitespace between their words.
const FRAGMENTS: &[(&str, &str)] = &[
    // psql's `\d+`: a table's storage options and its TOAST table's (Henge has neither).
    (
        "pg_catalog.array_to_string(c.reloptions || array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x), ', ')",
        "''",
    ),
    // Grafana's table picker: the schemas of search_path, by splitting its text.
    (
        "SELECT CASE WHEN trim(s[i]) = '\"$user\"' THEN user ELSE trim(s[i]) END FROM generate_series( array_lower(string_to_array(current_setting('search_path'),','),1), array_upper(string_to_array(current_setting('search_path'),','),1) ) as i, string_to_array(current_setting('search_path'),',') s",
        "SELECT unnest(current_schemas(false))",
    ),
];

/// A fragment as a pattern: its characters in order, any whitespace between them.
fn fragment_pattern(fragment: &str) -> regex::Regex {
    let parts: Vec<String> = fragment
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| regex::escape(&c.to_string()))
        .collect();
    regex::Regex::new(&format!("(?i){}", parts.join("\\s*"))).expect("fragment patterns are valid")
}

/// Swaps known unplannable fragments of client queries for equivalents.
pub fn substitute(sql: &str) -> Cow<'_, str> {
    static PATTERNS: OnceLock<Vec<(regex::Regex, &'static str)>> = OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        FRAGMENTS
            .iter()
            .map(|(from, to)| (fragment_pattern(from), *to))
            .collect()
    });
    let mut out = Cow::Borrowed(sql);
    for (pattern, to) in patterns {
        if pattern.is_match(&out) {
            out = Cow::Owned(pattern.replace_all(&out, regex::NoExpand(to)).into_owned());
        }
    }
    if let Some(spelled) = postfix_null_tests(&out) {
        out = Cow::Owned(spelled);
    }
    match keyword_spellings(&out) {
        Some(spelled) => Cow::Owned(spelled),
        None => out,
    }
}

/// The name of the marker [`keyword_spellings`] wraps around the lower bound of `BETWEEN
/// SYMMETRIC`, for [`symmetric_between`].
const SYMMETRIC: &str = "henge_between_symmetric";

/// PostgreSQL's spellings sqlparser does not read, respelled before parsing: `TABLE t` (a
/// statement or set operand) as `SELECT * FROM t`; `x BETWEEN SYMMETRIC a AND b` with its
/// lower bound marked (`BETWEEN henge_between_symmetric(a) AND b`, the bound ends at the
/// first AND outside parentheses, as in PostgreSQL's grammar) for [`symmetric_between`];
/// `BETWEEN ASYMMETRIC` as plain BETWEEN. Text in string constants is left alone.
fn keyword_spellings(sql: &str) -> Option<String> {
    use datafusion::sql::sqlparser::keywords::Keyword;
    use datafusion::sql::sqlparser::tokenizer::Token;
    // Only statements that may hold one of the spellings are tokenized (without copying
    // the text: INSERTs can be large).
    static SPELLINGS: OnceLock<regex::Regex> = OnceLock::new();
    let spellings = SPELLINGS.get_or_init(|| {
        regex::Regex::new(concat!(
            r"(?i)\bbetween\s+a?symmetric\b|\bsimilar\b",
            r"|(?:^|[;(]|\b(?:union|intersect|except|all|distinct))\s*table\b",
            r"|\bselect\s*(?:;|\)|$|(?:where|group|having|order|limit|offset|union|intersect|except)\b)",
        ))
        .expect("a valid pattern")
    });
    if !spellings.is_match(sql) {
        return None;
    }
    let located = located_tokens(sql)?;
    let (tokens, offset) = (&located.tokens, |l, c| located.offset(l, c));
    let significant: Vec<_> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let keyword = |i: usize, k: Keyword| matches!(significant.get(i).map(|t| &t.token), Some(Token::Word(w)) if w.keyword == k && w.quote_style.is_none());
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for i in 0..significant.len() {
        let t = significant[i];
        let at = || offset(t.span.start.line, t.span.start.column);
        if keyword(i, Keyword::TABLE) {
            let set_operation = |j: usize| {
                [Keyword::UNION, Keyword::INTERSECT, Keyword::EXCEPT]
                    .iter()
                    .any(|k| keyword(j, *k))
            };
            let starts_query = i == 0
                || matches!(significant[i - 1].token, Token::SemiColon | Token::LParen)
                || set_operation(i - 1)
                || (i >= 2
                    && set_operation(i - 2)
                    && (keyword(i - 1, Keyword::ALL) || keyword(i - 1, Keyword::DISTINCT)));
            let names_table = matches!(
                significant.get(i + 1).map(|t| &t.token),
                Some(Token::Word(_))
            );
            if starts_query && names_table {
                let at = at()?;
                edits.push((at, at + "table".len(), "SELECT * FROM".into()));
            }
        }
        // `substring(x SIMILAR p ESCAPE e)` as `substring(x FROM similar_to_escape(p, e))`,
        // PostgreSQL's own reading of it (see `super::similar::PgSubstring`).
        if keyword(i, Keyword::SUBSTRING)
            && matches!(
                significant.get(i + 1).map(|t| &t.token),
                Some(Token::LParen)
            )
        {
            let mut depth = 0i32;
            let (mut similar, mut escape, mut close) = (None, None, None);
            for (j, t) in significant.iter().enumerate().skip(i + 1) {
                match t.token {
                    Token::LParen => depth += 1,
                    Token::RParen => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    close = Some(j);
                    break;
                }
                if depth == 1 && keyword(j, Keyword::SIMILAR) && similar.is_none() {
                    similar = Some(j);
                }
                if depth == 1 && keyword(j, Keyword::ESCAPE) && similar.is_some() {
                    escape = Some(j);
                }
            }
            if let (Some(similar), Some(escape), Some(close)) = (similar, escape, close) {
                let at = |j: usize| {
                    let t = significant[j];
                    offset(t.span.start.line, t.span.start.column)
                };
                let similar_at = at(similar)?;
                edits.push((
                    similar_at,
                    similar_at + "similar".len(),
                    "FROM similar_to_escape(".into(),
                ));
                let escape_at = at(escape)?;
                edits.push((escape_at, escape_at + "escape".len(), ",".into()));
                let close_at = at(close)?;
                edits.push((close_at, close_at, ")".into()));
            }
        }
        // `SELECT` with no select list and no FROM (`SELECT`, `SELECT WHERE false`): one
        // row of no columns (or none), read from a one-row FROM.
        if keyword(i, Keyword::SELECT) {
            let next = significant.get(i + 1).map(|t| &t.token);
            let nothing = match next {
                None | Some(Token::EOF | Token::SemiColon | Token::RParen) => true,
                Some(Token::Word(w)) => {
                    w.quote_style.is_none()
                        && matches!(
                            w.keyword,
                            Keyword::WHERE
                                | Keyword::GROUP
                                | Keyword::HAVING
                                | Keyword::ORDER
                                | Keyword::LIMIT
                                | Keyword::OFFSET
                                | Keyword::UNION
                                | Keyword::INTERSECT
                                | Keyword::EXCEPT
                        )
                }
                _ => false,
            };
            if nothing {
                let at = at()? + "select".len();
                edits.push((at, at, " FROM (VALUES (NULL)) AS henge_no_from".into()));
            }
        }
        if keyword(i, Keyword::BETWEEN) && keyword(i + 1, Keyword::ASYMMETRIC) {
            let a = significant[i + 1];
            let at = offset(a.span.start.line, a.span.start.column)?;
            edits.push((at, at + "asymmetric".len(), String::new()));
        }
        if keyword(i, Keyword::BETWEEN) && keyword(i + 1, Keyword::SYMMETRIC) {
            let mut depth = 0i32;
            let end = (i + 2..significant.len()).find(|&j| {
                match significant[j].token {
                    Token::LParen => depth += 1,
                    Token::RParen => depth -= 1,
                    _ => {}
                }
                depth == 0 && keyword(j, Keyword::AND)
            })?;
            let s = significant[i + 1];
            let at = offset(s.span.start.line, s.span.start.column)?;
            edits.push((at, at + "symmetric".len(), format!("{SYMMETRIC}(")));
            let and = significant[end];
            let at = offset(and.span.start.line, and.span.start.column)?;
            edits.push((at, at, ") ".into()));
        }
    }
    edits.sort_by_key(|e| e.0);
    respelled(sql, edits)
}

use datafusion::sql::sqlparser::tokenizer::TokenWithSpan;

/// A statement's tokens, with where each line starts so that a token's position (line
/// and column, as the tokenizer counts them, from 1) gives its byte offset.
struct Located<'a> {
    sql: &'a str,
    tokens: Vec<TokenWithSpan>,
    lines: Vec<usize>,
}

impl Located<'_> {
    fn offset(&self, line: u64, column: u64) -> Option<usize> {
        let start = *self.lines.get(line.checked_sub(1)? as usize)?;
        let nth = column.checked_sub(1)? as usize;
        self.sql[start..]
            .char_indices()
            .nth(nth)
            .map(|(i, _)| start + i)
    }
}

fn located_tokens(sql: &str) -> Option<Located<'_>> {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .ok()?;
    let lines = std::iter::once(0)
        .chain(sql.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    Some(Located { sql, tokens, lines })
}

/// `sql` with each byte range `at..end` (in order, not overlapping) replaced by its text;
/// `None` when there is nothing to replace.
fn respelled<S: AsRef<str>>(sql: &str, edits: Vec<(usize, usize, S)>) -> Option<String> {
    if edits.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(sql.len() + 32 * edits.len());
    let mut from = 0;
    for (at, end, spelled) in edits {
        out.push_str(sql.get(from..at)?);
        out.push_str(spelled.as_ref());
        from = end;
    }
    out.push_str(&sql[from..]);
    Some(out)
}

/// PostgreSQL's spellings DataFusion plans otherwise or not at all, in one pass:
/// [`symmetric_between`], [`time_keyword`] and [`prefix_operator`].
fn spellings(mut statement: Statement) -> Statement {
    struct Spellings;
    impl VisitorMut for Spellings {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            symmetric_between(expr);
            time_keyword(expr);
            prefix_operator(expr);
            operator_function(expr);
            row_comparison(expr);
            array_subquery(expr);
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Spellings);
    statement
}

fn sql_cast(expr: Expr, data_type: SqlType) -> Expr {
    Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(expr),
        data_type,
        array: false,
        format: None,
    }
}

/// PostgreSQL's `localtimestamp` and `localtime` (the session's wall-clock time, which
/// DataFusion does not know) as casts of `now()`; and `ntile(n) OVER (…)` as the `integer`
/// PostgreSQL's is (DataFusion's is a bigint).
fn time_keyword(expr: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{FunctionArguments, TimezoneInfo};
    let Expr::Function(f) = expr else {
        return;
    };
    let [name] = f.name.0.as_slice() else {
        return;
    };
    let Some(name) = name.as_ident().filter(|n| n.quote_style.is_none()) else {
        return;
    };
    let bare = matches!(f.args, FunctionArguments::None);
    let local = || {
        sql_cast(
            call("now", Vec::new()),
            SqlType::Timestamp(Some(6), TimezoneInfo::None),
        )
    };
    match name.value.to_ascii_lowercase().as_str() {
        "localtimestamp" if bare => *expr = local(),
        "localtime" if bare => *expr = sql_cast(local(), SqlType::Time(None, TimezoneInfo::None)),
        "ntile" if f.over.is_some() => *expr = sql_cast(expr.clone(), SqlType::Int(None)),
        _ => {}
    }
}

/// PostgreSQL's prefix operators DataFusion does not plan, as the functions they are:
/// `|/ x` is `sqrt` and `||/ x` is `cbrt` of a double, `@ x` is `abs(x)`, and `~ x` (of an
/// integer) is `-1 - x`.
fn prefix_operator(expr: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, UnaryOperator};
    let Expr::UnaryOp { op, expr: operand } = expr else {
        return;
    };
    let double = |e: &Expr| sql_cast(e.clone(), SqlType::DoublePrecision);
    *expr = match op {
        UnaryOperator::PGSquareRoot => call("sqrt", vec![double(operand)]),
        UnaryOperator::PGCubeRoot => call("cbrt", vec![double(operand)]),
        UnaryOperator::PGAbs => call("abs", vec![(**operand).clone()]),
        // -1 - x: every integer's complement, without overflow.
        UnaryOperator::BitwiseNot => Expr::Nested(Box::new(Expr::BinaryOp {
            left: Box::new(Expr::value(Value::Number("-1".into(), false))),
            op: BinaryOperator::Minus,
            right: Box::new(Expr::Nested(operand.clone())),
        })),
        _ => return,
    };
}

/// PostgreSQL's binary operators DataFusion does not plan, as the functions they are:
/// `a ^@ b` is `starts_with(a, b)`, `a && b` (of arrays) `pg_array_overlap(a, b)`, and
/// `(s1, e1) OVERLAPS (s2, e2)` `pg_overlaps(s1, e1, s2, e2)` ([`super::datetime`]).
fn operator_function(expr: &mut Expr) {
    use datafusion::sql::sqlparser::ast::BinaryOperator;
    let Expr::BinaryOp { left, op, right } = expr else {
        return;
    };
    let name = match op {
        BinaryOperator::PGStartsWith => "starts_with",
        BinaryOperator::PGOverlap => "pg_array_overlap",
        BinaryOperator::Overlaps => {
            // (start, end or length) OVERLAPS (start, end or length).
            if let (Expr::Tuple(a), Expr::Tuple(b)) = (left.as_ref(), right.as_ref()) {
                if let ([s1, e1], [s2, e2]) = (a.as_slice(), b.as_slice()) {
                    let args = vec![s1.clone(), e1.clone(), s2.clone(), e2.clone()];
                    *expr = call("pg_overlaps", args);
                }
            }
            return;
        }
        _ => return,
    };
    *expr = call(name, vec![(**left).clone(), (**right).clone()]);
}

/// A comparison of two rows (`(a, b) < (c, d)`, `ROW(…) = ROW(…)`), which DataFusion
/// does not plan for tuples, spelled out as PostgreSQL defines it: `=` when every pair is
/// equal, `<>` when any differs, and the orderings decided by the first pair that is not
/// equal — NULL wherever a pair that decides is NULL, which SQL's AND and OR give.
fn row_comparison(expr: &mut Expr) {
    use datafusion::sql::sqlparser::ast::BinaryOperator;
    let elements = |e: &Expr| -> Option<Vec<Expr>> {
        match e {
            Expr::Tuple(items) => Some(items.clone()),
            Expr::Function(_) if function_name(e).as_deref() == Some("row") => {
                Some(plain_arguments(e)?.into_iter().cloned().collect())
            }
            _ => None,
        }
    };
    let Expr::BinaryOp { left, op, right } = expr else {
        return;
    };
    let (Some(a), Some(b)) = (elements(left), elements(right)) else {
        return;
    };
    if a.is_empty() || a.len() != b.len() {
        return;
    }
    let binary = |l: &Expr, op: BinaryOperator, r: &Expr| {
        Expr::Nested(Box::new(Expr::BinaryOp {
            left: Box::new(Expr::Nested(Box::new(l.clone()))),
            op,
            right: Box::new(Expr::Nested(Box::new(r.clone()))),
        }))
    };
    let pairs = |op: BinaryOperator, join: BinaryOperator| {
        a.iter()
            .zip(&b)
            .map(|(l, r)| binary(l, op.clone(), r))
            .reduce(|acc, e| binary(&acc, join.clone(), &e))
    };
    let strict = match op {
        BinaryOperator::Eq => {
            *expr = pairs(BinaryOperator::Eq, BinaryOperator::And).expect("not empty");
            return;
        }
        BinaryOperator::NotEq => {
            *expr = pairs(BinaryOperator::NotEq, BinaryOperator::Or).expect("not empty");
            return;
        }
        BinaryOperator::Lt | BinaryOperator::LtEq => BinaryOperator::Lt,
        BinaryOperator::Gt | BinaryOperator::GtEq => BinaryOperator::Gt,
        _ => return,
    };
    // From the last pair back: (a_i strict b_i) OR (a_i = b_i AND the rest).
    let n = a.len();
    let mut decided = binary(&a[n - 1], op.clone(), &b[n - 1]);
    for i in (0..n - 1).rev() {
        let tied = binary(&a[i], BinaryOperator::Eq, &b[i]);
        decided = binary(
            &binary(&a[i], strict.clone(), &b[i]),
            BinaryOperator::Or,
            &binary(&tied, BinaryOperator::And, &decided),
        );
    }
    *expr = decided;
}

/// `x BETWEEN henge_between_symmetric(a) AND b` (see [`keyword_spellings`]) as PostgreSQL
/// reads BETWEEN SYMMETRIC: `(x BETWEEN a AND b OR x BETWEEN b AND a)`.
fn symmetric_between(expr: &mut Expr) {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, UnaryOperator};
    let Expr::Between {
        expr: value,
        negated,
        low,
        high,
    } = expr
    else {
        return;
    };
    if function_name(low).as_deref() != Some(SYMMETRIC) {
        return;
    }
    let bound = match plain_arguments(low).as_deref() {
        Some([bound]) => (*bound).clone(),
        _ => return,
    };
    let between = |low: &Expr, high: &Expr| Expr::Between {
        expr: value.clone(),
        negated: false,
        low: Box::new(low.clone()),
        high: Box::new(high.clone()),
    };
    let either = Expr::Nested(Box::new(Expr::BinaryOp {
        left: Box::new(between(&bound, high)),
        op: BinaryOperator::Or,
        right: Box::new(between(high, &bound)),
    }));
    *expr = match negated {
        true => Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr: Box::new(either),
        },
        false => either,
    };
}

/// `x ISNULL` and `x NOTNULL`, PostgreSQL's postfix spellings of `IS NULL` and
/// `IS NOT NULL`, spelled out: the parser would take either word for a column alias and
/// answer `x` itself. Only unquoted words are changed (not `AS isnull`, not `t.isnull`), in
/// place, so that the rest of the text (string constants included) stays byte for byte.
fn postfix_null_tests(sql: &str) -> Option<String> {
    use datafusion::sql::sqlparser::tokenizer::Token;
    static POSTFIX: OnceLock<regex::Regex> = OnceLock::new();
    let postfix =
        POSTFIX.get_or_init(|| regex::Regex::new(r"(?i)isnull|notnull").expect("a valid pattern"));
    if !postfix.is_match(sql) {
        return None;
    }
    let located = located_tokens(sql)?;
    let (tokens, offset) = (&located.tokens, |l, c| located.offset(l, c));
    let mut edits = Vec::new();
    let mut previous: Option<&Token> = None;
    for t in tokens {
        if let Token::Word(w) = &t.token {
            let names_something = match previous {
                Some(Token::Period) => true,
                Some(Token::Word(p)) => {
                    p.quote_style.is_none() && p.value.eq_ignore_ascii_case("as")
                }
                _ => false,
            };
            let spelled = match w.value.to_ascii_lowercase().as_str() {
                "isnull" => Some("IS NULL"),
                "notnull" => Some("IS NOT NULL"),
                _ => None,
            };
            if let (None, false, Some(spelled)) = (w.quote_style, names_something, spelled) {
                let at = offset(t.span.start.line, t.span.start.column)?;
                let end = at + w.value.len();
                if !sql.get(at..end)?.eq_ignore_ascii_case(&w.value) {
                    return None;
                }
                edits.push((at, end, spelled));
            }
        }
        if !matches!(t.token, Token::Whitespace(_)) {
            previous = Some(&t.token);
        }
    }
    respelled(sql, edits)
}

/// `EXCEPT ALL` and `INTERSECT ALL`, which DataFusion answers as if each row were there
/// once on the right, by their meaning: the copies of each row are numbered on each side
/// (`row_number() OVER (PARTITION BY every column)`) and the numbered rows compared with
/// EXCEPT or INTERSECT, so a row that is m times on the left and n on the right remains
/// max(m - n, 0) times (EXCEPT) or min(m, n) times (INTERSECT). Only where the left
/// side's columns can be counted without planning (no `*`); others stay refused.
fn counted_set_operations(mut statement: Statement) -> Statement {
    struct Counted;
    impl VisitorMut for Counted {
        type Break = ();
        fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            numbered(query.body.as_mut());
            ControlFlow::Continue(())
        }
    }
    /// The names of a set expression's columns, if they can be told without planning.
    fn columns(body: &SetExpr) -> Option<Vec<String>> {
        match body {
            SetExpr::Select(select) => select
                .projection
                .iter()
                .map(|item| match item {
                    // As named (a repeated name keeps its hidden suffix).
                    SelectItem::ExprWithAlias { alias, .. } => Some(folded(alias)),
                    SelectItem::UnnamedExpr(e) => Some(pg_name(e)),
                    _ => None,
                })
                .collect(),
            SetExpr::Values(values) => Some(
                (1..=values.rows.first()?.len())
                    .map(|i| format!("column{i}"))
                    .collect(),
            ),
            SetExpr::SetOperation { left, .. } => columns(left),
            SetExpr::Query(q) => columns(&q.body),
            _ => None,
        }
    }
    fn numbered(body: &mut SetExpr) {
        let SetExpr::SetOperation {
            op,
            set_quantifier,
            left,
            right,
        } = body
        else {
            return;
        };
        numbered(left);
        numbered(right);
        let keyword = match op {
            SetOperator::Except | SetOperator::Minus => "EXCEPT",
            SetOperator::Intersect => "INTERSECT",
            _ => return,
        };
        if !matches!(set_quantifier, SetQuantifier::All) {
            return;
        }
        let Some(names) = columns(left) else {
            return;
        };
        let quoted = |n: &str| Ident::with_quote('"', n).to_string();
        let cols: Vec<String> = (1..=names.len()).map(|i| format!("henge_c{i}")).collect();
        let list = cols.join(", ");
        let side = |query: &SetExpr, alias: &str| {
            format!(
                "SELECT {list}, row_number() OVER (PARTITION BY {list}) AS henge_copy FROM ({query}) AS {alias} ({list})"
            )
        };
        let shown: Vec<String> = cols
            .iter()
            .zip(&names)
            .map(|(c, n)| format!("{c} AS {}", quoted(n)))
            .collect();
        let text = format!(
            "SELECT {} FROM ({} {keyword} {}) AS henge_counted",
            shown.join(", "),
            side(left, "henge_left"),
            side(right, "henge_right")
        );
        let parsed = datafusion::sql::sqlparser::parser::Parser::new(
            &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
        )
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_query());
        if let Ok(query) = parsed {
            *body = *query.body;
        }
    }
    let _ = statement.visit(&mut Counted);
    statement
}

/// Clauses of a query in PostgreSQL's spellings DataFusion does not plan:
/// - `FETCH FIRST n ROWS ONLY` (standard SQL's LIMIT; `FETCH FIRST ROW ONLY` is one row),
///   after an `OFFSET` or not; `WITH TIES` and `PERCENT` are left alone (refused);
/// - `GROUP BY ()`, the one group of all rows: grouping by nothing, made an aggregation
///   (one row, even of no rows) by a HAVING that every group meets.
fn query_clauses(mut statement: Statement) -> Statement {
    use datafusion::sql::sqlparser::ast::{BinaryOperator, GroupByExpr, LimitClause};
    struct Clauses;
    impl VisitorMut for Clauses {
        type Break = ();
        fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            let plain_fetch = query
                .fetch
                .as_ref()
                .is_some_and(|f| !f.with_ties && !f.percent);
            let no_limit = match &query.limit_clause {
                None => true,
                Some(LimitClause::LimitOffset {
                    limit: None,
                    limit_by,
                    ..
                }) => limit_by.is_empty(),
                _ => false,
            };
            if plain_fetch && no_limit {
                let fetch = query.fetch.take().expect("checked");
                let limit = fetch
                    .quantity
                    .unwrap_or_else(|| Expr::value(Value::Number("1".into(), false)));
                let offset = match query.limit_clause.take() {
                    Some(LimitClause::LimitOffset { offset, .. }) => offset,
                    _ => None,
                };
                query.limit_clause = Some(LimitClause::LimitOffset {
                    limit: Some(limit),
                    offset,
                    limit_by: Vec::new(),
                });
            }
            if let SetExpr::Select(select) = query.body.as_mut() {
                if let GroupByExpr::Expressions(keys, modifiers) = &mut select.group_by {
                    let empty = |e: &Expr| matches!(e, Expr::Tuple(items) if items.is_empty());
                    if keys.iter().any(empty) && modifiers.is_empty() {
                        keys.retain(|e| !empty(e));
                        if keys.is_empty() {
                            let every_group = Expr::BinaryOp {
                                left: Box::new(call("count", vec![Expr::value(Value::Null)])),
                                op: BinaryOperator::GtEq,
                                right: Box::new(Expr::value(Value::Number("0".into(), false))),
                            };
                            select.having = Some(match select.having.take() {
                                Some(h) => Expr::BinaryOp {
                                    left: Box::new(Expr::Nested(Box::new(h))),
                                    op: BinaryOperator::And,
                                    right: Box::new(every_group),
                                },
                                None => every_group,
                            });
                        }
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Clauses);
    statement
}

/// `mod(a, b)` as `a % b`: PostgreSQL's function is the operator (DataFusion has no such
/// function), so it takes the operator's checks (22012 for a zero divisor) and types.
fn mod_operator(mut statement: Statement) -> Statement {
    use datafusion::sql::sqlparser::ast::BinaryOperator;
    struct Mod;
    impl VisitorMut for Mod {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if function_name(expr).as_deref() != Some("mod") {
                return ControlFlow::Continue(());
            }
            if let Some([a, b]) = plain_arguments(expr).as_deref() {
                *expr = Expr::Nested(Box::new(Expr::BinaryOp {
                    left: Box::new((*a).clone()),
                    op: BinaryOperator::Modulo,
                    right: Box::new((*b).clone()),
                }));
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Mod);
    statement
}

/// The lower-case name of a plain function call (no OVER; `pg_catalog.` allowed), if
/// `expr` is one.
pub(crate) fn function_name(expr: &Expr) -> Option<String> {
    let Expr::Function(f) = expr else {
        return None;
    };
    let name = match f.name.0.as_slice() {
        [name] => name.as_ident()?,
        [schema, name]
            if schema
                .as_ident()
                .is_some_and(|s| s.value.eq_ignore_ascii_case("pg_catalog")) =>
        {
            name.as_ident()?
        }
        _ => return None,
    };
    f.over.is_none().then(|| name.value.to_lowercase())
}

/// The arguments of a function call, when all are plain expressions (no names, no
/// DISTINCT, no clauses such as ORDER BY).
pub(crate) fn plain_arguments(expr: &Expr) -> Option<Vec<&Expr>> {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    let Expr::Function(f) = expr else {
        return None;
    };
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return None;
    }
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect()
}

/// A call of function `name` with `args`, as the parser would produce it.
pub fn call(name: &str, args: Vec<Expr>) -> Expr {
    use datafusion::sql::sqlparser::ast::{
        Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments,
    };
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|a| FunctionArg::Unnamed(FunctionArgExpr::Expr(a)))
                .collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// Why Henge refuses `statement`, with the SQLSTATE, where DataFusion would plan it with
/// another meaning than PostgreSQL's:
/// - `ORDER BY name` where two different select-list expressions have that name (42702, as
///   in PostgreSQL; [`column_names`] lets names repeat, so DataFusion would order by the
///   first);
/// - `EXCEPT ALL` and `INTERSECT ALL` (0A000) that [`counted_set_operations`] could not
///   spell out (a left side of `*`): DataFusion drops every copy of a row the other side
///   holds once, where PostgreSQL subtracts counts.
pub fn refused(statement: &Statement) -> Option<(&'static str, String)> {
    struct Refusals(Option<(&'static str, String)>);
    impl Visitor for Refusals {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            fn check(body: &SetExpr) -> Option<String> {
                let SetExpr::SetOperation {
                    op,
                    set_quantifier,
                    left,
                    right,
                } = body
                else {
                    return None;
                };
                let all = matches!(
                    set_quantifier,
                    SetQuantifier::All | SetQuantifier::AllByName
                );
                match op {
                    SetOperator::Except | SetOperator::Minus if all => {
                        Some("EXCEPT ALL is not supported".to_owned())
                    }
                    SetOperator::Intersect if all => {
                        Some("INTERSECT ALL is not supported".to_owned())
                    }
                    _ => check(left).or_else(|| check(right)),
                }
            }
            if let Some(reason) = check(&query.body) {
                self.0 = Some(("0A000", reason));
                return ControlFlow::Break(());
            }
            if let Some(name) = ambiguous_order_by(query) {
                self.0 = Some(("42702", format!("ORDER BY \"{name}\" is ambiguous")));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut refusals = Refusals(None);
    let _ = datafusion::sql::sqlparser::ast::Visit::visit(statement, &mut refusals);
    if refusals.0.is_none() {
        if let Some(table) = super::subquery::same_table_set_comparison(statement) {
            return Some((
                "0A000",
                format!("comparing with ANY or ALL of a subquery that reads \"{table}\" again is not supported; give one of them an alias"),
            ));
        }
    }
    refusals.0
}

/// The name `ORDER BY` uses that several different select-list expressions of `query` have.
fn ambiguous_order_by(query: &Query) -> Option<String> {
    use datafusion::sql::sqlparser::ast::OrderByKind;
    let (SetExpr::Select(select), Some(order_by)) = (query.body.as_ref(), &query.order_by) else {
        return None;
    };
    let OrderByKind::Expressions(keys) = &order_by.kind else {
        return None;
    };
    let named: Vec<(String, &Expr)> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { expr, alias } => {
                Some((shown_name(&folded(alias)).to_owned(), expr))
            }
            SelectItem::UnnamedExpr(expr) => Some((pg_name(expr), expr)),
            _ => None,
        })
        .collect();
    keys.iter().find_map(|key| {
        let Expr::Identifier(ident) = &key.expr else {
            return None;
        };
        let name = folded(ident);
        let mut exprs = named.iter().filter(|(n, _)| *n == name).map(|(_, e)| *e);
        let first = exprs.next()?;
        exprs.any(|e| e != first).then_some(name)
    })
}

/// The function [`cast_arguments_named`] wraps a cast argument in: its first argument,
/// unchanged.
const CAST_NAMED: &str = "henge_cast_named";

/// Casts in the arguments of aggregate and window calls, each wrapped in a call that
/// names its type (`henge_cast_named(x::int8, 'BIGINT')`, the value unchanged); `None`
/// if the statement has none.
///
/// DataFusion names a column computed by a cast after the cast's operand, so `sum(x)` and
/// `sum(x::int8)` in one select list are both `sum(t.x)`, and planning fails ("specified
/// more than once"). PostgreSQL answers such a query; planned again with this rewrite,
/// so does Henge. Only a statement that failed so is rewritten.
pub fn cast_arguments_named(
    mut statement: Statement,
    aggregate: impl Fn(&str) -> bool,
) -> Option<Statement> {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    struct Named<F> {
        aggregate: F,
        changed: bool,
    }
    impl<F: Fn(&str) -> bool> VisitorMut for Named<F> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let Expr::Function(f) = expr else {
                return ControlFlow::Continue(());
            };
            let name = f.name.to_string().to_lowercase();
            if f.over.is_none() && !(self.aggregate)(&name) {
                return ControlFlow::Continue(());
            }
            let FunctionArguments::List(list) = &mut f.args else {
                return ControlFlow::Continue(());
            };
            for arg in &mut list.args {
                if let FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) = arg {
                    if let Expr::Cast { data_type, .. } = e {
                        let tag = Expr::value(Value::SingleQuotedString(data_type.to_string()));
                        *e = call(CAST_NAMED, vec![e.clone(), tag]);
                        self.changed = true;
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut named = Named {
        aggregate,
        changed: false,
    };
    let _ = statement.visit(&mut named);
    named.changed.then_some(statement)
}

/// Registers [`CAST_NAMED`].
pub fn register(ctx: &datafusion::execution::context::SessionContext) {
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(
        super::subquery::FirstArgument::new(CAST_NAMED, 2),
    ));
}
