//! Set-returning functions as PostgreSQL runs them.
//!
//! In a select list, `generate_series(1, 3)` yields three rows in PostgreSQL, where
//! DataFusion's function of that name returns one list; wrapped in `unnest` it yields the
//! rows, several of them in one select list side by side and padded with NULLs, as
//! PostgreSQL 10 and later do. In FROM, PostgreSQL names the single column of
//! `generate_series(…) AS s` after the alias (`s`), or `generate_series` without one, where
//! DataFusion calls it `value`; and `WITH ORDINALITY` adds the row's position, which
//! DataFusion does not know. Both become a derived table over DataFusion's table function.
//! `FROM unnest(array)` names its column `unnest` (or after the alias) the same way.

use std::ops::ControlFlow;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::error::Result;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};
use datafusion::sql::sqlparser::ast::{
    Expr, Ident, Statement, TableAlias, TableAliasColumnDef, TableFactor, Value, VisitMut,
    VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::rewrite::{call, function_name, plain_arguments};

/// The set-returning functions DataFusion answers with one list per call.
const LISTING: [&str; 2] = ["generate_series", "pg_listening_channels"];

/// Whether a select list's call of `name` yields a list to unnest.
fn listing(name: &str) -> bool {
    LISTING.contains(&name) || super::json::LISTING.contains(&name) || listed_only(name)
}

/// Whether `name` yields a list and has no table function of its own: in FROM, it is
/// unnested in a derived table.
fn listed_only(name: &str) -> bool {
    super::regex::LISTING.contains(&name)
        || super::arrays::LISTING.contains(&name)
        || super::jsonpath::LISTING.contains(&name)
}

/// Rewrites the set-returning function calls of `statement`.
pub fn rewrite(mut statement: Statement) -> Statement {
    let _ = statement.visit(&mut SetReturning { in_unnest_table: 0 });
    statement
}

struct SetReturning {
    /// How many `FROM unnest(…)` factors are being visited: their arguments are lists.
    in_unnest_table: usize,
}

impl VisitorMut for SetReturning {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if matches!(factor, TableFactor::UNNEST { .. }) {
            self.in_unnest_table += 1;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if matches!(factor, TableFactor::UNNEST { .. }) {
            self.in_unnest_table -= 1;
        }
        // After its children, so that the derived table's own call is not visited.
        if let Some(derived) = table_function(factor).or_else(|| unnest_with_ordinality(factor)) {
            *factor = derived;
        }
        name_unnest_column(factor);
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if self.in_unnest_table > 0 {
            return ControlFlow::Continue(());
        }
        match function_name(expr).as_deref() {
            Some(name) if listing(name) => {
                let listed = std::mem::replace(expr, Expr::value(Value::Null));
                *expr = call("unnest", vec![tagged(listed)]);
            }
            // `unnest(generate_series(…))` as written: the inner call was just wrapped.
            Some("unnest") => {
                if let Some(inner) = only_argument(expr) {
                    let listed_inside = function_name(inner).as_deref() == Some("unnest")
                        && only_argument(inner)
                            .map(untagged)
                            .and_then(function_name)
                            .is_some_and(|n| listing(&n));
                    if listed_inside {
                        *expr = inner.clone();
                    } else if function_name(inner).as_deref() != Some(TAG) {
                        *expr = call("unnest", vec![tagged(inner.clone())]);
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// The identity function that names the list a select list unnests after the text it was
/// written with.
const TAG: &str = "henge_unnested";

/// `list` as `henge_unnested(list, '<list as written>')`. DataFusion plans the lists of a
/// select list's `unnest` calls as columns named after the lists' expressions, and takes
/// two calls with the same name for one: a name leaves out casts, so `unnest(ARRAY[1.5])`
/// and `unnest(ARRAY[1.5]::int[])` were one column (the first's values twice). The text
/// tells them apart; calls written alike are still one.
fn tagged(list: Expr) -> Expr {
    let text = list.to_string();
    call(
        TAG,
        vec![list, Expr::value(Value::SingleQuotedString(text))],
    )
}

/// What [`tagged`] wrapped, or `expr` if it is not a tag.
pub(crate) fn untagged(expr: &Expr) -> &Expr {
    match function_name(expr).as_deref() {
        Some(TAG) => plain_arguments(expr)
            .and_then(|args| args.first().copied())
            .unwrap_or(expr),
        _ => expr,
    }
}

/// [`TAG`]: its first argument as it is.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Unnested {
    signature: Signature,
}

impl ScalarUDFImpl for Unnested {
    fn name(&self) -> &str {
        TAG
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(args[0].clone())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        Ok(args.arg_fields[0].clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(args.args[0].clone())
    }
}

/// Registers [`TAG`].
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(Unnested {
        signature: Signature::any(2, Volatility::Immutable),
    }));
}

/// The single plain argument of a function call.
fn only_argument(expr: &Expr) -> Option<&Expr> {
    match plain_arguments(expr)?.as_slice() {
        [arg] => Some(*arg),
        _ => None,
    }
}

/// `FROM unnest(array) [AS u]`: PostgreSQL names the column `unnest` (or `u`), where
/// DataFusion names it after the whole call.
fn name_unnest_column(factor: &mut TableFactor) {
    let TableFactor::UNNEST {
        alias,
        array_exprs,
        with_offset: false,
        with_ordinality: false,
        ..
    } = factor
    else {
        return;
    };
    if array_exprs.len() != 1 {
        return;
    }
    let alias = alias.get_or_insert_with(|| TableAlias {
        explicit: false,
        name: Ident::new("unnest"),
        columns: Vec::new(),
        at: None,
    });
    if alias.columns.is_empty() {
        let name = alias.name.clone();
        alias.columns.push(TableAliasColumnDef {
            name,
            data_type: None,
        });
    }
}

/// `unnest(array) WITH ORDINALITY [AS t[(v[, n])]]`, which DataFusion does not plan, as
/// `(SELECT value AS v, row_number() OVER () AS n FROM (SELECT unnest(array) AS value) AS
/// unnest) AS t`: the elements in order, numbered from 1.
fn unnest_with_ordinality(factor: &TableFactor) -> Option<TableFactor> {
    let TableFactor::UNNEST {
        alias,
        array_exprs,
        with_offset: false,
        with_ordinality: true,
        ..
    } = factor
    else {
        return None;
    };
    let [array] = array_exprs.as_slice() else {
        return None;
    };
    let columns: Vec<String> = alias
        .as_ref()
        .map(|a| a.columns.iter().map(|c| c.name.value.clone()).collect())
        .unwrap_or_default();
    let name = alias
        .as_ref()
        .map_or_else(|| Ident::new("unnest"), |a| a.name.clone());
    let value = columns
        .first()
        .cloned()
        .unwrap_or_else(|| name.value.clone());
    let position = columns
        .get(1)
        .cloned()
        .unwrap_or_else(|| "ordinality".into());
    let quoted = |name: &str| Ident::with_quote('"', name).to_string();
    let select = format!(
        "SELECT value AS {}, row_number() OVER () AS {} FROM (SELECT unnest({array}) AS value) AS unnest",
        quoted(&value),
        quoted(&position)
    );
    derived(&select, name)
}

/// The query `select` as a derived table named `name`.
fn derived(select: &str, name: Ident) -> Option<TableFactor> {
    let query = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(select)
        .ok()?
        .parse_query()
        .ok()?;
    Some(TableFactor::Derived {
        lateral: false,
        subquery: query,
        alias: Some(TableAlias {
            explicit: true,
            name,
            columns: Vec::new(),
            at: None,
        }),
        sample: None,
    })
}

/// `generate_series(args) [WITH ORDINALITY] [AS s[(v[, n])]]` in FROM as a derived table
/// `(SELECT value AS v[, row_number() OVER () AS n] FROM generate_series(args)) AS s`.
fn table_function(factor: &TableFactor) -> Option<TableFactor> {
    let TableFactor::Table {
        name,
        alias,
        args: Some(args),
        with_ordinality,
        ..
    } = factor
    else {
        return None;
    };
    let function = name.0.last()?.as_ident()?.value.to_lowercase();
    // A list function with no table function of its own is unnested in the derived table.
    let unnested = listed_only(&function);
    if !LISTING.contains(&function.as_str()) && !unnested {
        return None;
    }
    let columns: Vec<String> = alias
        .as_ref()
        .map(|a| a.columns.iter().map(|c| c.name.value.clone()).collect())
        .unwrap_or_default();
    let value = columns
        .first()
        .cloned()
        .or_else(|| alias.as_ref().map(|a| a.name.value.clone()))
        .unwrap_or_else(|| function.clone());
    let quoted = |name: &str| Ident::with_quote('"', name).to_string();
    let arguments = args
        .args
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut select = format!("SELECT value AS {}", quoted(&value));
    // The table function yields its rows in order, in one partition.
    if *with_ordinality {
        let position = columns
            .get(1)
            .cloned()
            .unwrap_or_else(|| "ordinality".into());
        select.push_str(&format!(", row_number() OVER () AS {}", quoted(&position)));
    }
    match unnested {
        true => select.push_str(&format!(
            " FROM (SELECT unnest({function}({arguments})) AS value) AS {function}"
        )),
        false => select.push_str(&format!(" FROM {function}({arguments})")),
    }
    let name = alias
        .as_ref()
        .map_or_else(|| Ident::new(function.clone()), |a| a.name.clone());
    derived(&select, name)
}
