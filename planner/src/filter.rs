//! Filters answered by a segment's bitmap indexes.
//!
//! A query's filters (a conjunction) become a tree of AND, OR and NOT over leaves. A leaf
//! that reads a single string column — `=`, `<>`, `IN`, `LIKE`, `ILIKE`, a regex, a range,
//! `IS NULL`, or any other deterministic expression of that column — is evaluated once per
//! distinct value over the segment's sorted dictionary, and the bitmaps of the values for
//! which it is true are OR-ed into the rows where it is true (where a segment keeps no
//! bitmaps for the column, one pass over its ids finds those rows). A comparison of another column
//! with a constant (or BETWEEN) is true for every row of a segment where it is true at both
//! the column's minimum and maximum, as the footer records them: a time range covering the
//! whole segment costs nothing. Every other leaf is answered "maybe" for every row. AND, OR and NOT then combine, for each node, a superset of the rows
//! where it is true and a superset of the rows where it is false (SQL's three-valued logic:
//! NOT swaps the two; a NULL row is in neither). The rows that may be true are the only ones
//! the scan decodes; when every leaf was answered by an index, they are exactly the matches
//! and the filter is not evaluated again.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use datafusion::physical_expr::PhysicalExpr;
use henge_storage::segment::{near_unique, SegmentReader};
use roaring::RoaringBitmap;

use crate::prune::scalar;

/// The index-answerable structure of a scan's filters.
#[derive(Debug)]
pub struct IndexFilter {
    /// The filters' conjuncts, AND-ed.
    conjuncts: Vec<Node>,
    /// For each conjunct, whether it is made of leaves over string columns alone, which a
    /// segment's dictionary answers exactly (unless the column is near-unique there).
    indexed: Vec<bool>,
    /// The conjuncts that are not, as written: once a segment's indexes have answered all
    /// the others exactly, only these are evaluated on the rows.
    rest: Vec<Expr>,
}

/// The rows of a segment that may match a scan's filter according to its indexes.
#[derive(Debug)]
pub struct Candidates {
    /// `None`: all rows (no filter).
    pub rows: Option<RoaringBitmap>,
    pub residual: Residual,
}

/// What of a scan's filter is left to evaluate on a segment's candidate rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residual {
    /// Nothing: the candidates are exactly the matching rows.
    None,
    /// The conjuncts the indexes do not answer ([`IndexFilter::rest`]): every conjunct the
    /// dictionary answers was answered exactly, and the columns only those read are not
    /// decoded (a LIKE on a string column the dictionary answered).
    Rest,
    /// The whole filter.
    Whole,
}

#[derive(Debug)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    /// A predicate over one string column, compiled against a schema of that column alone.
    Indexed {
        column: Arc<Field>,
        predicate: Arc<dyn PhysicalExpr>,
        text: String,
    },
    /// A predicate whose true values form one interval of a non-string column (a comparison
    /// with a constant, BETWEEN): true for every row when true at the column's minimum and
    /// maximum, which the footer records.
    Interval {
        column: Arc<Field>,
        predicate: Arc<dyn PhysicalExpr>,
    },
    /// Anything else: the scan evaluates it row by row.
    Other,
}

/// For one node on one segment: rows where it may be true, rows where it may be false, and
/// whether both are exact.
struct Answer {
    maybe_true: RoaringBitmap,
    maybe_false: RoaringBitmap,
    exact: bool,
}

impl IndexFilter {
    /// The tree of `filters` (AND-ed) over a table with `schema`.
    pub fn new(filters: &[Expr], schema: &SchemaRef, session: &dyn Session) -> IndexFilter {
        let mut filter = IndexFilter {
            conjuncts: Vec::new(),
            indexed: Vec::new(),
            rest: Vec::new(),
        };
        for conjunct in filters.iter().flat_map(split_conjunction) {
            let node = node(conjunct, schema, session);
            let indexed = node.indexed_only();
            if !indexed {
                filter.rest.push(conjunct.clone());
            }
            filter.conjuncts.push(node);
            filter.indexed.push(indexed);
        }
        filter
    }

    /// A filter the indexes do not answer: every row may match.
    pub fn unindexed() -> IndexFilter {
        IndexFilter {
            conjuncts: vec![Node::Other],
            indexed: vec![false],
            rest: Vec::new(),
        }
    }

    /// The conjuncts left to evaluate on the rows under [`Residual::Rest`] (all AND-ed),
    /// `None` when every conjunct is answered by the dictionary or none is.
    pub fn rest(&self) -> Option<Expr> {
        match self.splits() {
            true => conjunction(self.rest.iter().cloned()),
            false => None,
        }
    }

    /// Whether some conjuncts are answered by the dictionary and some are not.
    fn splits(&self) -> bool {
        self.indexed.iter().any(|&i| i) && !self.rest.is_empty()
    }

    /// The leaves answered by bitmap indexes, as SQL-ish text (for EXPLAIN).
    pub fn indexed(&self) -> Vec<String> {
        fn walk(node: &Node, out: &mut Vec<String>) {
            match node {
                Node::And(children) | Node::Or(children) => {
                    children.iter().for_each(|c| walk(c, out))
                }
                Node::Not(child) => walk(child, out),
                Node::Indexed { text, .. } => out.push(text.clone()),
                Node::Interval { .. } | Node::Other => {}
            }
        }
        let mut out = Vec::new();
        self.conjuncts.iter().for_each(|c| walk(c, &mut out));
        out
    }

    /// The rows of `segment` that may match, and what is left to evaluate on them.
    pub fn candidates(&self, segment: &SegmentReader) -> Result<Candidates> {
        let mut all = RoaringBitmap::new();
        all.insert_range(0..u32::try_from(segment.rows()).unwrap_or(u32::MAX));
        let (mut rows, mut exact, mut rest_suffices) = (all.clone(), true, true);
        for (conjunct, &indexed) in self.conjuncts.iter().zip(&self.indexed) {
            let answer = evaluate(conjunct, segment, &all)?;
            rows &= answer.maybe_true;
            exact &= answer.exact;
            rest_suffices &= answer.exact || !indexed;
            if rows.is_empty() {
                // No row can match, whatever the other conjuncts say: they are not asked
                // (a pass over a column's ids saved where one has no bitmaps).
                exact = true;
                break;
            }
        }
        let residual = match (exact, rest_suffices && self.splits()) {
            (true, _) => Residual::None,
            (false, true) => Residual::Rest,
            (false, false) => Residual::Whole,
        };
        Ok(Candidates {
            rows: Some(rows),
            residual,
        })
    }
}

impl Node {
    /// Whether every leaf is answered by a dictionary.
    fn indexed_only(&self) -> bool {
        match self {
            Node::And(children) | Node::Or(children) => children.iter().all(Node::indexed_only),
            Node::Not(child) => child.indexed_only(),
            Node::Indexed { .. } => true,
            Node::Interval { .. } | Node::Other => false,
        }
    }
}

fn node(expr: &Expr, schema: &SchemaRef, session: &dyn Session) -> Node {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::And => {
            Node::And(vec![
                node(left, schema, session),
                node(right, schema, session),
            ])
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if *op == Operator::Or => Node::Or(vec![
            node(left, schema, session),
            node(right, schema, session),
        ]),
        Expr::Not(inner) => Node::Not(Box::new(node(inner, schema, session))),
        _ => leaf(expr, schema, session).unwrap_or(Node::Other),
    }
}

fn leaf(expr: &Expr, schema: &SchemaRef, session: &dyn Session) -> Option<Node> {
    let columns = expr.column_refs();
    let [column] = columns.iter().collect::<Vec<_>>()[..] else {
        return None;
    };
    let field = schema.field_with_name(&column.name).ok()?;
    let string = field.data_type() == &DataType::Utf8;
    // A double's recorded maximum leaves NaN out, so its bounds are not the column's.
    let float = field.data_type().is_floating();
    if !string && (float || !is_interval(expr)) {
        return None;
    }
    let field = Arc::new(field.clone().with_nullable(true));
    let alone = DFSchema::try_from(Schema::new(vec![field.clone()])).ok()?;
    let predicate = session.create_physical_expr(expr.clone(), &alone).ok()?;
    Some(if string {
        Node::Indexed {
            column: field,
            predicate,
            text: expr.to_string(),
        }
    } else {
        Node::Interval {
            column: field,
            predicate,
        }
    })
}

/// Whether the values for which `expr` is true form an interval: a column (or a cast of it
/// to a wider number or time type, which keeps order) compared with a constant, or BETWEEN
/// two constants.
fn is_interval(expr: &Expr) -> bool {
    fn column(e: &Expr) -> bool {
        match e {
            Expr::Column(_) => true,
            // Casts to text (lexical order) or boolean do not keep the order of values.
            Expr::Cast(c) => {
                matches!(
                    c.field.data_type(),
                    DataType::Int64
                        | DataType::Float64
                        | DataType::Decimal128(..)
                        | DataType::Date32
                        | DataType::Timestamp(..)
                ) && column(&c.expr)
            }
            _ => false,
        }
    }
    fn constant(e: &Expr) -> bool {
        match e {
            Expr::Literal(..) => true,
            Expr::Cast(c) => constant(&c.expr),
            _ => false,
        }
    }
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            matches!(
                op,
                Operator::Eq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
            ) && ((column(left) && constant(right)) || (constant(left) && column(right)))
        }
        Expr::Between(b) => !b.negated && column(&b.expr) && constant(&b.low) && constant(&b.high),
        _ => false,
    }
}

fn evaluate(node: &Node, segment: &SegmentReader, all: &RoaringBitmap) -> Result<Answer> {
    let unknown = || Answer {
        maybe_true: all.clone(),
        maybe_false: all.clone(),
        exact: false,
    };
    Ok(match node {
        Node::And(children) => {
            let mut answer = Answer {
                maybe_true: all.clone(),
                maybe_false: RoaringBitmap::new(),
                exact: true,
            };
            for child in children {
                let c = evaluate(child, segment, all)?;
                answer.maybe_true &= c.maybe_true;
                answer.maybe_false |= c.maybe_false;
                answer.exact &= c.exact;
            }
            answer
        }
        Node::Or(children) => {
            let mut answer = Answer {
                maybe_true: RoaringBitmap::new(),
                maybe_false: all.clone(),
                exact: true,
            };
            for child in children {
                let c = evaluate(child, segment, all)?;
                answer.maybe_true |= c.maybe_true;
                answer.maybe_false &= c.maybe_false;
                answer.exact &= c.exact;
            }
            answer
        }
        Node::Not(child) => {
            let c = evaluate(child, segment, all)?;
            Answer {
                maybe_true: c.maybe_false,
                maybe_false: c.maybe_true,
                exact: c.exact,
            }
        }
        Node::Other => unknown(),
        Node::Interval { column, predicate } => {
            if true_for_every_row(segment, column, predicate)? {
                Answer {
                    maybe_true: all.clone(),
                    maybe_false: RoaringBitmap::new(),
                    exact: true,
                }
            } else {
                on_sort_column(segment, column, predicate)?.unwrap_or_else(unknown)
            }
        }
        Node::Indexed {
            column, predicate, ..
        } => {
            let footer = segment.footer();
            let Some(index) = footer.columns.iter().position(|c| c.name == *column.name()) else {
                return Ok(unknown());
            };
            let Some(dictionary) = footer.columns[index].dictionary.as_ref() else {
                return Ok(unknown());
            };
            // Without bitmaps (the writer keeps them only where they pay), the rows come
            // from one pass over the ids, unless the column is near-unique.
            let has_bitmaps = dictionary.bitmaps.is_some();
            if !has_bitmaps && near_unique(u64::from(dictionary.len), footer.rows) {
                return Ok(unknown());
            }
            indexed(segment, index, has_bitmaps, column, predicate, all)?.unwrap_or_else(unknown)
        }
    })
}

/// Whether an interval predicate holds at both ends of the column's range in `segment`, and
/// so on every row (there being no NULLs).
fn true_for_every_row(
    segment: &SegmentReader,
    field: &Arc<Field>,
    predicate: &Arc<dyn PhysicalExpr>,
) -> Result<bool> {
    let Some(meta) = segment
        .footer()
        .columns
        .iter()
        .find(|c| c.name == *field.name())
    else {
        return Ok(false);
    };
    if meta.null_count > 0 || meta.min.is_none() || meta.max.is_none() {
        return Ok(false);
    }
    let data_type = field.data_type();
    if meta.ty.arrow_type() != *data_type {
        return Ok(false);
    }
    let bounds = ScalarValue::iter_to_array([
        scalar(meta.min.as_ref(), data_type),
        scalar(meta.max.as_ref(), data_type),
    ])?;
    let batch = RecordBatch::try_new(Arc::new(Schema::new(vec![field.clone()])), vec![bounds])?;
    // An error (a failing cast, say) is left to the row-by-row evaluation to raise, or not.
    let Ok(outcome) = predicate.evaluate(&batch).and_then(|v| v.into_array(2)) else {
        return Ok(false);
    };
    let outcome = outcome
        .as_boolean_opt()
        .ok_or_else(|| DataFusionError::Internal("a filter did not evaluate to booleans".into()))?;
    Ok(outcome.null_count() == 0 && outcome.true_count() == 2)
}

/// An interval predicate on the column a segment is sorted by first (the time column), in a
/// segment it only partly covers: evaluated on that column alone, so the rows it selects are
/// known exactly before any other column is decoded. `None` where it does not apply.
fn on_sort_column(
    segment: &SegmentReader,
    field: &Arc<Field>,
    predicate: &Arc<dyn PhysicalExpr>,
) -> Result<Option<Answer>> {
    let footer = segment.footer();
    if footer.sort_columns.first() != Some(field.name()) {
        return Ok(None);
    }
    let Some(index) = footer.columns.iter().position(|c| c.name == *field.name()) else {
        return Ok(None);
    };
    if footer.columns[index].ty.arrow_type() != *field.data_type() {
        return Ok(None);
    }
    let schema = Arc::new(Schema::new(vec![field.clone()]));
    let block_rows = footer.block_rows;
    let (mut maybe_true, mut maybe_false) = (RoaringBitmap::new(), RoaringBitmap::new());
    for block in 0..segment.blocks() {
        let start = block as u32 * block_rows;
        let column = segment
            .read_block(block, &[index])
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .column(0)
            .clone();
        let batch = RecordBatch::try_new(schema.clone(), vec![column])?;
        let Ok(outcome) = predicate
            .evaluate(&batch)
            .and_then(|v| v.into_array(batch.num_rows()))
        else {
            return Ok(None);
        };
        let Some(outcome) = outcome.as_boolean_opt() else {
            return Ok(None);
        };
        // The column is sorted and the predicate an interval: a few runs per block.
        let mut run_start = 0;
        for row in 1..=outcome.len() {
            let value = |i: usize| outcome.is_valid(i).then(|| outcome.value(i));
            if row < outcome.len() && value(row) == value(run_start) {
                continue;
            }
            let rows = start + run_start as u32..start + row as u32;
            match value(run_start) {
                Some(true) => maybe_true.insert_range(rows),
                Some(false) => maybe_false.insert_range(rows),
                None => 0,
            };
            run_start = row;
        }
    }
    Ok(Some(Answer {
        maybe_true,
        maybe_false,
        exact: true,
    }))
}

/// Evaluates `predicate` once per dictionary value (and once for NULL) and turns the
/// outcome into rows through the bitmaps, or through one pass over the ids where the
/// segment keeps no bitmaps for the column; `None` when the predicate fails on some value.
fn indexed(
    segment: &SegmentReader,
    column: usize,
    has_bitmaps: bool,
    field: &Arc<Field>,
    predicate: &Arc<dyn PhysicalExpr>,
    all: &RoaringBitmap,
) -> Result<Option<Answer>> {
    let storage = |e: henge_storage::Error| DataFusionError::External(Box::new(e));
    let dictionary = segment.dictionary(column).map_err(storage)?;
    // The distinct values, then one NULL.
    let values: StringArray = dictionary.iter().chain(std::iter::once(None)).collect();
    let schema = Arc::new(Schema::new(vec![field.clone()]));
    let batch = RecordBatch::try_new(schema, vec![Arc::new(values)])?;
    // A value may fail the predicate (a failing cast, say) although no row that holds it is
    // ever asked: the rows are then evaluated one by one, where the error arises only if it
    // would without the index.
    let Ok(outcome) = predicate
        .evaluate(&batch)
        .and_then(|v| v.into_array(batch.num_rows()))
    else {
        return Ok(None);
    };
    let outcome = outcome
        .as_boolean_opt()
        .ok_or_else(|| DataFusionError::Internal("a filter did not evaluate to booleans".into()))?;
    let n = dictionary.len();
    let (mut trues, mut falses) = (Vec::new(), Vec::new());
    for id in 0..n {
        if outcome.is_valid(id) {
            if outcome.value(id) {
                trues.push(id as u32);
            } else {
                falses.push(id as u32);
            }
        }
    }
    let union = |ids: &[u32]| -> Result<RoaringBitmap> {
        if ids.is_empty() {
            return Ok(RoaringBitmap::new());
        }
        if !has_bitmaps {
            let mut wanted = vec![false; n];
            for &id in ids {
                wanted[id as usize] = true;
            }
            return segment.rows_with_ids(column, &wanted).map_err(storage);
        }
        let mut rows = RoaringBitmap::new();
        for &id in ids {
            rows |= segment.value_bitmap(column, id).map_err(storage)?;
        }
        Ok(rows)
    };
    let nulls = segment.null_rows(column).map_err(storage)?;
    let unknown_ids = n - trues.len() - falses.len();
    // OR the smaller side; the other is what is left, when no value's outcome was NULL.
    let (mut maybe_true, mut maybe_false) = if unknown_ids == 0 && trues.len() > falses.len() {
        let f = union(&falses)?;
        (all - &f - &nulls, f)
    } else if unknown_ids == 0 {
        let t = union(&trues)?;
        (t.clone(), all - &t - &nulls)
    } else {
        (union(&trues)?, union(&falses)?)
    };
    if outcome.is_valid(n) {
        if outcome.value(n) {
            maybe_true |= &nulls;
        } else {
            maybe_false |= &nulls;
        }
    }
    Ok(Some(Answer {
        maybe_true,
        maybe_false,
        exact: true,
    }))
}
