//! `EXISTS (…)` in a select list, which DataFusion plans only in WHERE: rewritten to a
//! scalar subquery counting the rows, which it plans anywhere (correlated too). IN, ANY
//! and ALL of a subquery in a select list become EXISTS first
//! ([`set_comparison_by_exists`]).
//!
//! `EXISTS (SELECT … FROM … WHERE …)` becomes `(SELECT count(*) > 0 FROM … WHERE …)`, or,
//! for a subquery that calls functions (an aggregate makes one row of none), groups,
//! limits or is not a plain SELECT, `((SELECT count(*) FROM (…) AS exists_rows) > 0)`. `NOT EXISTS` compares with `= 0`. An
//! EXISTS is never NULL, and neither is a count.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, Query, SelectItem, SetExpr, Statement, TableFactor, Value,
    VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// Rewrites the EXISTS of every select list in `statement`.
pub fn rewrite(mut statement: Statement) -> Statement {
    let _ = statement.visit(&mut SelectLists);
    statement
}

struct SelectLists;

impl VisitorMut for SelectLists {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            for item in &mut select.projection {
                let (SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. }) = item
                else {
                    continue;
                };
                let _ = expr.visit(&mut Outermost { depth: 0 });
            }
        }
        ControlFlow::Continue(())
    }
}

/// Rewrites the EXISTS of an expression that are not inside a nested query (those are
/// rewritten when their own query is visited, if they are in its select list).
struct Outermost {
    depth: usize,
}

impl VisitorMut for Outermost {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        if let Expr::Exists { subquery, negated } = expr {
            if let Some(count) = counted(subquery, *negated) {
                *expr = Expr::Nested(Box::new(count));
            }
        } else if let Some(mut spelled) = set_comparison_by_exists(expr) {
            let _ = spelled.visit(&mut Outermost { depth: 0 });
            *expr = spelled;
        }
        ControlFlow::Continue(())
    }
}

/// `x IN (subquery)`, `x NOT IN (subquery)`, `x op ANY (subquery)` and `x op ALL
/// (subquery)` in a select list, which DataFusion plans only in filters, spelled with
/// EXISTS (then counted, as above) in SQL's logic of three values: ANY is true if some row
/// makes the comparison true, else NULL if some row makes it NULL, else false (no rows:
/// false); ALL is false if some row makes it false, else NULL if some makes it NULL, else
/// true. IN is `= ANY` and NOT IN `<> ALL`.
fn set_comparison_by_exists(expr: &Expr) -> Option<Expr> {
    let (left, op, subquery, all) = match expr {
        Expr::InSubquery {
            expr,
            subquery,
            negated,
        } => (
            expr,
            if *negated {
                BinaryOperator::NotEq
            } else {
                BinaryOperator::Eq
            },
            subquery.as_ref(),
            *negated,
        ),
        Expr::AnyOp {
            left,
            compare_op,
            right,
            is_some: _,
        } => match right.as_ref() {
            Expr::Subquery(q) => (left, compare_op.clone(), q.as_ref(), false),
            _ => return None,
        },
        Expr::AllOp {
            left,
            compare_op,
            right,
        } => match right.as_ref() {
            Expr::Subquery(q) => (left, compare_op.clone(), q.as_ref(), true),
            _ => return None,
        },
        _ => return None,
    };
    if matches!(left.as_ref(), Expr::Tuple(_)) {
        return None;
    }
    let negated = match op {
        BinaryOperator::Eq => BinaryOperator::NotEq,
        BinaryOperator::NotEq => BinaryOperator::Eq,
        BinaryOperator::Lt => BinaryOperator::GtEq,
        BinaryOperator::GtEq => BinaryOperator::Lt,
        BinaryOperator::Gt => BinaryOperator::LtEq,
        BinaryOperator::LtEq => BinaryOperator::Gt,
        _ => return None,
    };
    let rows = |condition: String| {
        format!("EXISTS (SELECT 1 FROM ({subquery}) AS henge_set (henge_value) WHERE {condition})")
    };
    // A comparison is NULL where either side is: kept apart from the comparison, as
    // DataFusion decorrelates a subquery on an equality with the outer row, not on that.
    let unknown = format!(
        "((({left}) IS NULL AND {}) OR {})",
        rows("true".into()),
        rows("henge_set.henge_value IS NULL".into())
    );
    // Without CASE, whose branches DataFusion does not decorrelate: nullif makes "some
    // row gives NULL" a NULL that AND or OR keep unless the other side decides.
    let text = if all {
        let refuted = rows(format!("({left}) {negated} henge_set.henge_value"));
        format!("((NOT {refuted}) AND nullif(NOT {unknown}, false))")
    } else {
        let met = rows(format!("({left}) {op} henge_set.henge_value"));
        format!("(({met}) OR nullif({unknown}, true))")
    };
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_expr())
        .ok()
        .map(|e| Expr::Nested(Box::new(e)))
}

/// The count of `subquery`'s rows compared with zero (`None` only if a template below
/// failed to parse, which leaves the EXISTS as it was).
fn counted(subquery: &Query, negated: bool) -> Option<Expr> {
    let compare = if negated { "= 0" } else { "> 0" };
    if plain_select(subquery) {
        let template = parse_query(&format!("SELECT count(*) {compare}"))?;
        let SetExpr::Select(counting) = *template.body else {
            return None;
        };
        let mut query = subquery.clone();
        if let SetExpr::Select(select) = query.body.as_mut() {
            select.projection = counting.projection;
        }
        return Some(Expr::Subquery(Box::new(query)));
    }
    let mut wrapper = parse_query("SELECT count(*) FROM (SELECT 1) AS exists_rows")?;
    let SetExpr::Select(select) = wrapper.body.as_mut() else {
        return None;
    };
    let TableFactor::Derived {
        subquery: inner, ..
    } = &mut select.from.first_mut()?.relation
    else {
        return None;
    };
    **inner = subquery.clone();
    Some(Expr::BinaryOp {
        left: Box::new(Expr::Subquery(Box::new(wrapper))),
        op: if negated {
            BinaryOperator::Eq
        } else {
            BinaryOperator::Gt
        },
        right: Box::new(Expr::value(Value::Number("0".into(), false))),
    })
}

fn parse_query(sql: &str) -> Option<Query> {
    match Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?.pop()? {
        Statement::Query(query) => Some(*query),
        _ => None,
    }
}

/// Whether counting the subquery's rows is counting the rows its FROM and WHERE leave: a
/// plain SELECT of columns, constants or `*` (no function, so no aggregate), without
/// grouping, HAVING, DISTINCT, windows, LIMIT, ORDER BY or a set operation.
fn plain_select(query: &Query) -> bool {
    if query.limit_clause.is_some()
        || query.fetch.is_some()
        || query.with.is_some()
        || query.order_by.is_some()
    {
        return false;
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    let ungrouped =
        matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty());
    let simple = select.projection.iter().all(|item| match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => matches!(
            e,
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) | Expr::Value(_)
        ),
        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => true,
        _ => false,
    });
    ungrouped
        && simple
        && select.having.is_none()
        && select.distinct.is_none()
        && select.named_window.is_empty()
        && select.qualify.is_none()
}

/// A scalar subquery is NULL when it yields no row, whatever its column's nullability;
/// DataFusion takes the column's, and a subquery of a constant (`(SELECT 1 WHERE false)`)
/// would fail to build its NULL. [`nullable`] passes the value through as nullable.
pub fn nullable(expr: datafusion::logical_expr::Expr) -> datafusion::logical_expr::Expr {
    use datafusion::logical_expr::expr::ScalarFunction;
    datafusion::logical_expr::Expr::ScalarFunction(ScalarFunction::new_udf(
        std::sync::Arc::new(datafusion::logical_expr::ScalarUDF::new_from_impl(
            FirstArgument::new("pg_nullable", 1),
        )),
        vec![expr],
    ))
}

/// A function whose value is its first argument's, as nullable: [`nullable`], and
/// `henge_cast_named` ([`super::rewrite::cast_arguments_named`]).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct FirstArgument {
    name: &'static str,
    signature: datafusion::logical_expr::Signature,
}

impl FirstArgument {
    /// The function `name` of `arguments` arguments.
    pub(crate) fn new(name: &'static str, arguments: usize) -> FirstArgument {
        FirstArgument {
            name,
            signature: datafusion::logical_expr::Signature::any(
                arguments,
                datafusion::logical_expr::Volatility::Immutable,
            ),
        }
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for FirstArgument {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }

    fn return_type(
        &self,
        arg_types: &[datafusion::arrow::datatypes::DataType],
    ) -> datafusion::error::Result<datafusion::arrow::datatypes::DataType> {
        Ok(arg_types[0].clone())
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> datafusion::error::Result<datafusion::arrow::datatypes::FieldRef> {
        Ok(std::sync::Arc::new(
            args.arg_fields[0].as_ref().clone().with_nullable(true),
        ))
    }

    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> datafusion::error::Result<datafusion::logical_expr::ColumnarValue> {
        Ok(args.args[0].clone())
    }
}

/// `x = ANY (subquery)` as `x IN (subquery)` and `x <> ALL (subquery)` as `x NOT IN
/// (subquery)` in WHERE and HAVING (where DataFusion plans IN), which they are: DataFusion
/// plans IN correctly where its plan of ANY and ALL confuses a subquery's table with the
/// same table outside it (apache/datafusion issue 25258: every row matched). A row
/// compared with IN there becomes EXISTS ([`row_in`]).
pub fn set_comparisons(mut statement: Statement) -> Statement {
    struct Filters;
    impl VisitorMut for Filters {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            if let SetExpr::Select(select) = query.body.as_mut() {
                for filter in [&mut select.selection, &mut select.having]
                    .into_iter()
                    .flatten()
                {
                    let _ = filter.visit(&mut SetComparisons);
                    row_in(filter);
                }
            }
            ControlFlow::Continue(())
        }
    }
    struct SetComparisons;
    impl VisitorMut for SetComparisons {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let (left, right, negated) = match expr {
                Expr::AnyOp {
                    left,
                    compare_op: BinaryOperator::Eq,
                    right,
                    ..
                } => (left, right, false),
                Expr::AllOp {
                    left,
                    compare_op: BinaryOperator::NotEq,
                    right,
                } => (left, right, true),
                _ => return ControlFlow::Continue(()),
            };
            let Expr::Subquery(query) = right.as_ref() else {
                return ControlFlow::Continue(());
            };
            *expr = Expr::InSubquery {
                expr: left.clone(),
                subquery: query.clone(),
                negated,
            };
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Filters);
    statement
}

/// `(a, b) IN (SELECT x, y …)` in a filter, which DataFusion refuses (a subquery of IN
/// has one column there), as `EXISTS (SELECT 1 FROM (SELECT x, y …) AS henge_in (c1, c2)
/// WHERE henge_in.c1 = a AND henge_in.c2 = b)`. Only where the filter's answer cannot tell
/// NULL from false — under AND and OR, not NOT — since EXISTS is false where IN is NULL.
fn row_in(expr: &mut Expr) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And | BinaryOperator::Or,
            right,
        } => {
            row_in(left);
            row_in(right);
        }
        Expr::Nested(inner) => row_in(inner),
        Expr::InSubquery {
            expr: row,
            subquery,
            negated: false,
        } => {
            let Expr::Tuple(values) = row.as_ref() else {
                return;
            };
            let columns: Vec<String> = (1..=values.len()).map(|i| format!("c{i}")).collect();
            let matches: Vec<String> = values
                .iter()
                .zip(&columns)
                .map(|(v, c)| format!("henge_in.{c} = ({v})"))
                .collect();
            let text = format!(
                "EXISTS (SELECT 1 FROM ({subquery}) AS henge_in ({}) WHERE {})",
                columns.join(", "),
                matches.join(" AND ")
            );
            let parsed = Parser::new(&PostgreSqlDialect {})
                .try_with_sql(&text)
                .and_then(|mut p| p.parse_expr());
            if let Ok(exists) = parsed {
                *expr = exists;
            }
        }
        _ => {}
    }
}

/// The name of a table that a comparison with `ANY` or `ALL` (other than `= ANY` and
/// `<> ALL`) reads both outside and inside its subquery without an alias: DataFusion
/// answers those wrongly (see [`set_comparisons`]), so they are refused.
pub fn same_table_set_comparison(statement: &Statement) -> Option<String> {
    use datafusion::sql::sqlparser::ast::{Visit, Visitor};
    struct Scopes {
        /// The unaliased tables of each enclosing query, innermost last.
        outer: Vec<Vec<String>>,
        found: Option<String>,
    }
    impl Visitor for Scopes {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            self.outer.push(unaliased_tables(query));
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
            self.outer.pop();
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            let right = match expr {
                Expr::AnyOp {
                    compare_op, right, ..
                } if *compare_op != BinaryOperator::Eq => right,
                Expr::AllOp {
                    compare_op, right, ..
                } if *compare_op != BinaryOperator::NotEq => right,
                _ => return ControlFlow::Continue(()),
            };
            let Expr::Subquery(query) = right.as_ref() else {
                return ControlFlow::Continue(());
            };
            let inner = unaliased_tables(query);
            self.found = inner
                .into_iter()
                .find(|t| self.outer.iter().flatten().any(|o| o == t));
            match self.found {
                Some(_) => ControlFlow::Break(()),
                None => ControlFlow::Continue(()),
            }
        }
    }
    let mut scopes = Scopes {
        outer: Vec::new(),
        found: None,
    };
    let _ = statement.visit(&mut scopes);
    scopes.found
}

/// The tables a query's FROM names without an alias, by their last name part.
fn unaliased_tables(query: &Query) -> Vec<String> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Vec::new();
    };
    select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
        .filter_map(|factor| match factor {
            TableFactor::Table {
                name, alias: None, ..
            } => name
                .0
                .last()
                .map(|part| part.to_string().to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}
