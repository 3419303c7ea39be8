//! Numeric constants typed as PostgreSQL types them: an integer constant is an `integer`
//! when it fits in 32 bits (a `bigint` when it fits in 64), and one with a decimal point or
//! an exponent is a `numeric`.
//!
//! DataFusion makes every integer constant a bigint; this rewrite marks those that fit in
//! 32 bits as `integer`, so that `SELECT 1` reaches a driver as int4 (node-postgres turns
//! an int4, not an int8, into a number) and `2147483647 + 1` overflows as in PostgreSQL.
//! The other half, decimals for `1.5`, is DataFusion's `parse_float_as_decimal`, set with
//! the session's options; a constant whose exponent no decimal can hold (`1e308`) is read
//! as a double precision instead. Constants that DataFusion reads as positions or counts stay as
//! they are (and `pg_typeof('…')` is `unknown`, a string constant's type): `ORDER BY 1`, `GROUP BY 1`, LIMIT, OFFSET and FETCH, window frame offsets,
//! `INTERVAL 1 DAY`, and the arguments of table functions in FROM.

use std::ops::ControlFlow;

use super::rewrite::{function_name, plain_arguments};
use datafusion::sql::sqlparser::ast::{
    CastKind, DataType as SqlType, Expr, GroupByExpr, LimitClause, OrderByKind, Query, SetExpr,
    Statement, TableFactor, UnaryOperator, Value, VisitMut, VisitorMut, WindowFrameBound,
    WindowType,
};

/// Types the integer constants of `statement`'s queries.
pub fn rewrite(mut statement: Statement) -> Statement {
    let _ = statement.visit(&mut Constants {
        queries: 0,
        table_arguments: 0,
    });
    statement
}

struct Constants {
    /// How many queries are being visited: only their constants are typed (not those of
    /// DDL options or SET).
    queries: usize,
    /// How many table functions in FROM are being visited: DataFusion wants their
    /// arguments as plain constants.
    table_arguments: usize,
}

impl VisitorMut for Constants {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &mut Query) -> ControlFlow<()> {
        self.queries += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        self.queries -= 1;
        untype_positions(query);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if matches!(factor, TableFactor::Table { args: Some(_), .. }) {
            self.table_arguments += 1;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if matches!(factor, TableFactor::Table { args: Some(_), .. }) {
            self.table_arguments -= 1;
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if self.queries == 0 || self.table_arguments > 0 {
            return ControlFlow::Continue(());
        }
        match expr {
            Expr::Value(v) => {
                if let Value::Number(digits, false) = &v.value {
                    if beyond_decimals(digits) {
                        let text = Value::SingleQuotedString(digits.clone());
                        *expr = Expr::Cast {
                            kind: CastKind::Cast,
                            expr: Box::new(Expr::value(text)),
                            data_type: SqlType::DoublePrecision,
                            array: false,
                            format: None,
                        };
                    } else if is_integer(digits) && digits.parse::<i32>().is_ok() {
                        let constant = std::mem::replace(expr, Expr::value(Value::Null));
                        *expr = Expr::Cast {
                            kind: CastKind::Cast,
                            expr: Box::new(constant),
                            data_type: SqlType::Integer(None),
                            array: false,
                            format: None,
                        };
                    }
                }
            }
            // `-2147483648` is the least integer, though 2147483648 is a bigint.
            Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr: inner,
            } if matches!(inner.as_ref(), Expr::Value(v)
                if matches!(&v.value, Value::Number(d, false) if d == "2147483648")) =>
            {
                *expr = Expr::Cast {
                    kind: CastKind::Cast,
                    expr: Box::new(Expr::value(Value::Number("-2147483648".into(), false))),
                    data_type: SqlType::Integer(None),
                    array: false,
                    format: None,
                };
            }
            Expr::Interval(interval) => untype(&mut interval.value),
            // A string constant has no type of its own in PostgreSQL until its context
            // gives it one; DataFusion's is text.
            Expr::Function(_) if is_typeof_of_string(expr) => {
                *expr = Expr::value(Value::SingleQuotedString("unknown".into()));
            }
            Expr::Function(function) => {
                if let Some(WindowType::WindowSpec(spec)) = &mut function.over {
                    if let Some(frame) = &mut spec.window_frame {
                        untype_bound(&mut frame.start_bound);
                        if let Some(end) = &mut frame.end_bound {
                            untype_bound(end);
                        }
                    }
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Whether `expr` is `pg_typeof('…')`.
fn is_typeof_of_string(expr: &Expr) -> bool {
    function_name(expr).as_deref() == Some("pg_typeof")
        && matches!(
            plain_arguments(expr).as_deref(),
            Some([Expr::Value(v)]) if matches!(v.value, Value::SingleQuotedString(_))
        )
}

/// Whether `digits` has an exponent too far out for a decimal (its scale beyond what
/// Arrow's decimals hold, as in `1e308`): such a constant is read as a double precision,
/// the one type that holds it, which is exact where it is cast to a float anyway.
fn beyond_decimals(digits: &str) -> bool {
    let Some((mantissa, exponent)) = digits.split_once(['e', 'E']) else {
        return false;
    };
    let Ok(exponent) = exponent.parse::<i64>() else {
        return false;
    };
    let fraction = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i64);
    let scale = fraction - exponent;
    !(-128..=76).contains(&scale)
}

/// Whether `digits` is an integer constant: digits only (underscores allowed between them),
/// no decimal point and no exponent.
fn is_integer(digits: &str) -> bool {
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
}

/// Takes the typing back where DataFusion reads a constant as a position or a count.
fn untype_positions(query: &mut Query) {
    if let Some(order_by) = &mut query.order_by {
        if let OrderByKind::Expressions(items) = &mut order_by.kind {
            items.iter_mut().for_each(|item| untype(&mut item.expr));
        }
    }
    match &mut query.limit_clause {
        Some(LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            limit.iter_mut().for_each(untype);
            offset.iter_mut().for_each(|o| untype(&mut o.value));
            limit_by.iter_mut().for_each(untype);
        }
        Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
            untype(offset);
            untype(limit);
        }
        None => {}
    }
    if let Some(fetch) = &mut query.fetch {
        fetch.quantity.iter_mut().for_each(untype);
    }
    untype_group_by(&mut query.body);
}

fn untype_group_by(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => {
            if let GroupByExpr::Expressions(items, _) = &mut select.group_by {
                items.iter_mut().for_each(untype);
            }
            for window in &mut select.named_window {
                if let datafusion::sql::sqlparser::ast::NamedWindowExpr::WindowSpec(spec) =
                    &mut window.1
                {
                    if let Some(frame) = &mut spec.window_frame {
                        untype_bound(&mut frame.start_bound);
                        if let Some(end) = &mut frame.end_bound {
                            untype_bound(end);
                        }
                    }
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            untype_group_by(left);
            untype_group_by(right);
        }
        _ => {}
    }
}

fn untype_bound(bound: &mut WindowFrameBound) {
    if let WindowFrameBound::Preceding(Some(offset)) | WindowFrameBound::Following(Some(offset)) =
        bound
    {
        untype(offset);
    }
}

/// `CAST(n AS INTEGER)` as this rewrite wrote it back to `n`.
fn untype(expr: &mut Expr) {
    if let Expr::Cast {
        kind: CastKind::Cast,
        expr: inner,
        data_type: SqlType::Integer(None),
        array: false,
        format: None,
    } = expr
    {
        if matches!(&**inner, Expr::Value(v) if matches!(v.value, Value::Number(..))) {
            let constant = std::mem::replace(&mut **inner, Expr::value(Value::Null));
            *expr = constant;
        }
    }
}
