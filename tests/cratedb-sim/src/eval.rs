//! Binding (name resolution and typing) and evaluation of expressions, and
//! execution of analyzed `SELECT`s.
//!
//! Execution streams: a relation hands its rows one at a time to the plan
//! ([`run_select`]), which filters, projects or aggregates each as it comes, so
//! a scan never materializes the relation and rows are read only for the
//! columns (and object children, see [`Row::cell_path`]) a statement uses.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::error::SqlError;
use crate::sql::ast::{CmpOp, Expr, Literal, OrderItem, Select, SelectItem, SubKey, is_aggregate};
use crate::value::{ColType, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    Count,
    Min,
    Max,
    Sum,
    Avg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarFn {
    Coalesce,
    Lower,
    Upper,
}

/// A bound expression.
#[derive(Debug, Clone, PartialEq)]
pub enum BExpr {
    Lit(Value),
    Param(usize),
    Col(usize),
    /// `col['a']['b']...`: a subscript chain on a column, read through [`Row::cell_path`].
    ColPath(usize, Vec<SubKey>),
    Sub(Box<BExpr>, SubKey),
    Agg(usize),
    /// The value of a `GROUP BY` key (grouped queries, after aggregation).
    Key(usize),
    /// An output column (`ORDER BY` of aggregating queries).
    Output(usize),
    Scalar(ScalarFn, Vec<BExpr>),
    Cmp(CmpOp, Box<BExpr>, Box<BExpr>),
    /// `left op ANY(right)`; `set` is the per-execution lookup set of a constant `right`.
    Any {
        op: CmpOp,
        left: Box<BExpr>,
        right: Box<BExpr>,
        set: Option<usize>,
    },
    Concat(Box<BExpr>, Box<BExpr>),
    And(Box<BExpr>, Box<BExpr>),
    Or(Box<BExpr>, Box<BExpr>),
    Not(Box<BExpr>),
    Neg(Box<BExpr>),
    Like {
        expr: Box<BExpr>,
        pattern: Box<BExpr>,
        negated: bool,
        ci: bool,
    },
    In {
        expr: Box<BExpr>,
        list: Vec<BExpr>,
        negated: bool,
    },
    IsNull {
        expr: Box<BExpr>,
        negated: bool,
    },
    Obj(Vec<(String, BExpr)>),
    Arr(Vec<BExpr>),
}

impl BExpr {
    /// Visit the direct children.
    fn for_each_child(&self, f: &mut dyn FnMut(&BExpr)) {
        match self {
            BExpr::Lit(_)
            | BExpr::Param(_)
            | BExpr::Col(_)
            | BExpr::ColPath(..)
            | BExpr::Agg(_)
            | BExpr::Key(_)
            | BExpr::Output(_) => {}
            BExpr::Sub(b, _) | BExpr::Not(b) | BExpr::Neg(b) => f(b),
            BExpr::Scalar(_, args) | BExpr::Arr(args) => args.iter().for_each(f),
            BExpr::Cmp(_, l, r)
            | BExpr::Concat(l, r)
            | BExpr::And(l, r)
            | BExpr::Or(l, r)
            | BExpr::Any {
                left: l, right: r, ..
            } => {
                f(l);
                f(r);
            }
            BExpr::Like { expr, pattern, .. } => {
                f(expr);
                f(pattern);
            }
            BExpr::In { expr, list, .. } => {
                f(expr);
                list.iter().for_each(f);
            }
            BExpr::IsNull { expr, .. } => f(expr),
            BExpr::Obj(kv) => kv.iter().for_each(|(_, v)| f(v)),
        }
    }

    /// Rebuild with `f` applied to the direct children.
    fn map_children(self, f: &mut dyn FnMut(BExpr) -> BExpr) -> BExpr {
        let mut bx = |b: Box<BExpr>| Box::new(f(*b));
        match self {
            e @ (BExpr::Lit(_)
            | BExpr::Param(_)
            | BExpr::Col(_)
            | BExpr::ColPath(..)
            | BExpr::Agg(_)
            | BExpr::Key(_)
            | BExpr::Output(_)) => e,
            BExpr::Sub(b, k) => BExpr::Sub(bx(b), k),
            BExpr::Not(b) => BExpr::Not(bx(b)),
            BExpr::Neg(b) => BExpr::Neg(bx(b)),
            BExpr::Scalar(s, args) => BExpr::Scalar(s, args.into_iter().map(f).collect()),
            BExpr::Arr(args) => BExpr::Arr(args.into_iter().map(f).collect()),
            BExpr::Cmp(op, l, r) => {
                let l = bx(l);
                BExpr::Cmp(op, l, bx(r))
            }
            BExpr::Concat(l, r) => {
                let l = bx(l);
                BExpr::Concat(l, bx(r))
            }
            BExpr::And(l, r) => {
                let l = bx(l);
                BExpr::And(l, bx(r))
            }
            BExpr::Or(l, r) => {
                let l = bx(l);
                BExpr::Or(l, bx(r))
            }
            BExpr::Any {
                op,
                left,
                right,
                set,
            } => {
                let left = bx(left);
                BExpr::Any {
                    op,
                    left,
                    right: bx(right),
                    set,
                }
            }
            BExpr::Like {
                expr,
                pattern,
                negated,
                ci,
            } => {
                let expr = bx(expr);
                BExpr::Like {
                    expr,
                    pattern: bx(pattern),
                    negated,
                    ci,
                }
            }
            BExpr::In {
                expr,
                list,
                negated,
            } => {
                let expr = bx(expr);
                BExpr::In {
                    expr,
                    list: list.into_iter().map(f).collect(),
                    negated,
                }
            }
            BExpr::IsNull { expr, negated } => BExpr::IsNull {
                expr: bx(expr),
                negated,
            },
            BExpr::Obj(kv) => BExpr::Obj(kv.into_iter().map(|(k, v)| (k, f(v))).collect()),
        }
    }

    /// The first column reference (outside aggregates): `(column, subscript path)`.
    fn first_column(&self) -> Option<(usize, Vec<SubKey>)> {
        match self {
            BExpr::Col(i) => Some((*i, Vec::new())),
            BExpr::ColPath(i, p) => Some((*i, p.clone())),
            other => {
                let mut found = None;
                other.for_each_child(&mut |c| {
                    if found.is_none() {
                        found = c.first_column();
                    }
                });
                found
            }
        }
    }

    /// Whether the value depends on nothing but parameters (no row, aggregate or key).
    fn is_constant(&self) -> bool {
        match self {
            BExpr::Col(_)
            | BExpr::ColPath(..)
            | BExpr::Agg(_)
            | BExpr::Key(_)
            | BExpr::Output(_) => false,
            other => {
                let mut constant = true;
                other.for_each_child(&mut |c| constant &= c.is_constant());
                constant
            }
        }
    }
}

/// The columns `e` reads, as a bit mask (`None`: a column past 63, or an aggregate, key or
/// output, which are not read from rows).
fn column_mask(e: &BExpr) -> Option<u64> {
    match e {
        BExpr::Col(i) | BExpr::ColPath(i, _) => (*i < 64).then(|| 1u64 << i),
        BExpr::Agg(_) | BExpr::Key(_) | BExpr::Output(_) => None,
        other => {
            let mut mask = Some(0u64);
            other.for_each_child(&mut |c| {
                mask = match (mask, column_mask(c)) {
                    (Some(a), Some(b)) => Some(a | b),
                    _ => None,
                }
            });
            mask
        }
    }
}

/// Whether what `mask` reads is stable in `row`: `Some(run)` if so.
fn stable_run(mask: Option<u64>, row: &dyn Row) -> Option<u64> {
    let mask = mask?;
    match row.stable_columns() {
        Some((stable, run)) if mask & !stable == 0 => Some(run),
        _ => None,
    }
}

/// A `WHERE` clause as its conjuncts, each evaluated once per run of rows when it reads only
/// columns that are stable over the run (see [`Row::stable_columns`]).
struct Filter<'p> {
    conjuncts: Vec<(&'p BExpr, Option<u64>)>,
    /// Per conjunct: `(run, passed)` of the last run it was evaluated for.
    cache: Vec<Option<(u64, bool)>>,
}

impl<'p> Filter<'p> {
    fn new(where_: Option<&'p BExpr>) -> Self {
        fn split<'p>(e: &'p BExpr, out: &mut Vec<&'p BExpr>) {
            match e {
                BExpr::And(l, r) => {
                    split(l, out);
                    split(r, out);
                }
                other => out.push(other),
            }
        }
        let mut conjuncts = Vec::new();
        if let Some(w) = where_ {
            split(w, &mut conjuncts);
        }
        let conjuncts: Vec<(&BExpr, Option<u64>)> =
            conjuncts.into_iter().map(|c| (c, column_mask(c))).collect();
        let cache = vec![None; conjuncts.len()];
        Filter { conjuncts, cache }
    }

    /// Whether `row` passes: every conjunct is true (`a AND b` is true only then). Conjuncts
    /// already known for the row's run are checked first.
    fn passes(&mut self, row: &dyn Row, ctx: &EvalCtx<'_>) -> Result<bool, SqlError> {
        let stable = row.stable_columns();
        for (i, (_, mask)) in self.conjuncts.iter().enumerate() {
            if let (Some((sm, run)), Some(m), Some((cached, passed))) =
                (stable, mask, self.cache[i])
                && m & !sm == 0
                && cached == run
                && !passed
            {
                return Ok(false);
            }
        }
        for (i, (c, mask)) in self.conjuncts.iter().enumerate() {
            let run = stable_run(*mask, row);
            let passed = match (run, self.cache[i]) {
                (Some(run), Some((cached, passed))) if run == cached => passed,
                _ => {
                    let passed = eval(c, row, ctx)?.is_true();
                    if let Some(run) = run {
                        self.cache[i] = Some((run, passed));
                    }
                    passed
                }
            };
            if !passed {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Replace every subtree equal to one of `targets` by `make(index)`.
fn replace_with(e: BExpr, targets: &[BExpr], make: fn(usize) -> BExpr) -> BExpr {
    if let Some(i) = targets.iter().position(|t| *t == e) {
        return make(i);
    }
    e.map_children(&mut |c| replace_with(c, targets, make))
}

#[derive(Debug, Clone, PartialEq)]
pub struct AggSpec {
    pub kind: AggKind,
    pub arg: Option<BExpr>,
    /// `FILTER (WHERE ...)`.
    pub filter: Option<BExpr>,
    /// The result type.
    pub ty: ColType,
}

/// Resolves names against one relation.
pub struct Binder<'a> {
    /// Accepted qualifiers for column references: `sys.shards`, `shards`, alias.
    pub qualifiers: Vec<Vec<String>>,
    pub columns: &'a [(String, ColType)],
    pub aggs: Vec<AggSpec>,
    /// `(user, schema)` of the session, for `current_user` and `current_schema`.
    pub session: Option<(&'a str, &'a str)>,
    /// The types the statement implies for its parameters (`x = ANY($1)`: an array of `x`'s
    /// type); `None` where nothing says (described as `varchar`).
    pub param_types: Vec<Option<ColType>>,
    /// The constant right-hand sides of `ANY` comparisons, evaluated once per execution.
    pub any_consts: Vec<BExpr>,
}

fn lit_value(l: &Literal) -> (Value, ColType) {
    match l {
        Literal::Null => (Value::Null, ColType::Text),
        Literal::Bool(b) => (Value::Bool(*b), ColType::Bool),
        Literal::Int(i) => (
            Value::Int(*i),
            if i32::try_from(*i).is_ok() {
                ColType::Int4
            } else {
                ColType::Int8
            },
        ),
        Literal::Float(f) => (Value::Float(*f), ColType::Float8),
        Literal::Str(s) => (Value::Text(s.clone()), ColType::Text),
    }
}

fn is_numeric(t: &ColType) -> bool {
    matches!(
        t,
        ColType::Int4 | ColType::Int8 | ColType::Float4 | ColType::Float8
    )
}

impl<'a> Binder<'a> {
    pub fn new(qualifiers: Vec<Vec<String>>, columns: &'a [(String, ColType)]) -> Self {
        Binder {
            qualifiers,
            columns,
            aggs: Vec::new(),
            session: None,
            param_types: Vec::new(),
            any_consts: Vec::new(),
        }
    }

    fn note_param_type(&mut self, i: usize, t: ColType) {
        if self.param_types.len() <= i {
            self.param_types.resize(i + 1, None);
        }
        self.param_types[i].get_or_insert(t);
    }

    /// The display of column `i` with a subscript path, as CrateDB names the reference.
    pub fn column_display(&self, i: usize, path: &[SubKey]) -> String {
        let mut s = self.columns[i].0.clone();
        for k in path {
            match k {
                SubKey::Name(n) => s.push_str(&format!("['{}']", n.replace('\'', "''"))),
                SubKey::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    /// Bind `e`; `allow_agg` permits aggregate calls (select list, ORDER BY).
    pub fn bind(&mut self, e: &Expr, allow_agg: bool) -> Result<(BExpr, ColType), SqlError> {
        Ok(match e {
            Expr::Lit(l) => {
                let (v, t) = lit_value(l);
                (BExpr::Lit(v), t)
            }
            Expr::Param(i) => (BExpr::Param(*i), ColType::Text),
            Expr::Column(parts) => {
                let (col, qual) = parts.split_last().expect("non-empty column");
                if !qual.is_empty() && !self.qualifiers.iter().any(|q| q.as_slice() == qual) {
                    return Err(SqlError::relation_unknown(&qual.join(".")));
                }
                let idx = self.columns.iter().position(|(n, _)| n == col);
                match (idx, qual.is_empty()) {
                    (Some(idx), _) => (BExpr::Col(idx), self.columns[idx].1.clone()),
                    (None, true) => match self.session_value(col) {
                        Some(v) => (BExpr::Lit(v), ColType::Text),
                        None => return Err(SqlError::column_unknown(col)),
                    },
                    (None, false) => return Err(SqlError::column_unknown(col)),
                }
            }
            Expr::Subscript(base, key) => {
                let (b, t) = self.bind(base, allow_agg)?;
                let unknown = || SqlError::column_unknown(&e.display_name());
                let child = match (&t, key) {
                    (ColType::Object(o), SubKey::Name(n)) => o.child(n).ok_or_else(unknown)?,
                    (ColType::Array(inner), SubKey::Name(n)) => match inner.as_ref() {
                        ColType::Object(o) => ColType::array(o.child(n).ok_or_else(unknown)?),
                        _ => return Err(unknown()),
                    },
                    (ColType::Array(inner), SubKey::Index(_)) => inner.as_ref().clone(),
                    _ => return Err(unknown()),
                };
                let bound = match b {
                    BExpr::Col(i) => BExpr::ColPath(i, vec![key.clone()]),
                    BExpr::ColPath(i, mut path) => {
                        path.push(key.clone());
                        BExpr::ColPath(i, path)
                    }
                    other => BExpr::Sub(Box::new(other), key.clone()),
                };
                (bound, child)
            }
            Expr::Func {
                name,
                args,
                star,
                filter,
            } => {
                if is_aggregate(name) {
                    if !allow_agg {
                        return Err(SqlError::illegal_argument(format!(
                            "Aggregate functions are not allowed in this position: {}",
                            e.display_name()
                        )));
                    }
                    return self.bind_aggregate(e, name, args, *star, filter.as_deref());
                }
                if filter.is_some() {
                    return Err(SqlError::new(
                        "UnsupportedOperationException",
                        "Only aggregate functions allow a FILTER clause",
                        "0A000",
                    ));
                }
                if let Some(v) = (name == "current_schema" && args.is_empty())
                    .then(|| self.session_value(name))
                    .flatten()
                {
                    (BExpr::Lit(v), ColType::Text)
                } else {
                    let f = match name.as_str() {
                        "coalesce" if !args.is_empty() => ScalarFn::Coalesce,
                        "lower" if args.len() == 1 => ScalarFn::Lower,
                        "upper" if args.len() == 1 => ScalarFn::Upper,
                        _ => return Err(unknown_function(e)),
                    };
                    let mut bound = Vec::new();
                    let mut first_t = None;
                    for a in args {
                        let (b, t) = self.bind(a, allow_agg)?;
                        first_t.get_or_insert(t);
                        bound.push(b);
                    }
                    let t = match f {
                        ScalarFn::Coalesce => first_t.unwrap_or(ColType::Text),
                        _ => ColType::Text,
                    };
                    (BExpr::Scalar(f, bound), t)
                }
            }
            Expr::Cmp(op, l, r) => {
                let (l, _) = self.bind(l, allow_agg)?;
                let (r, _) = self.bind(r, allow_agg)?;
                (BExpr::Cmp(*op, Box::new(l), Box::new(r)), ColType::Bool)
            }
            Expr::AnyCmp { op, left, right } => {
                let (l, lt) = self.bind(left, allow_agg)?;
                if matches!(lt, ColType::Object(_) | ColType::Array(_)) {
                    return Err(SqlError::not_modelled(format!(
                        "ANY comparisons of objects or arrays ({})",
                        e.display_name()
                    )));
                }
                if let Expr::Param(i) = right.as_ref() {
                    self.note_param_type(*i, ColType::array(lt.clone()));
                }
                let (r, rt) = self.bind(right, allow_agg)?;
                let array_like = match right.as_ref() {
                    Expr::Param(_) | Expr::Lit(Literal::Null) => true,
                    _ => matches!(rt, ColType::Array(_)),
                };
                if !array_like {
                    let mut err = SqlError::new(
                        "UnsupportedFunctionException",
                        format!(
                            "Unknown function: ({}), no overload found for matching argument types: ({}, {}).",
                            e.display_name(),
                            lt.crate_name(),
                            rt.crate_name()
                        ),
                        "42883",
                    );
                    err.rejected = true;
                    return Err(err);
                }
                let set = r.is_constant().then(|| {
                    self.any_consts.push(r.clone());
                    self.any_consts.len() - 1
                });
                (
                    BExpr::Any {
                        op: *op,
                        left: Box::new(l),
                        right: Box::new(r),
                        set,
                    },
                    ColType::Bool,
                )
            }
            Expr::Concat(l, r) => {
                let (lb, lt) = self.bind(l, allow_agg)?;
                let (rb, rt) = self.bind(r, allow_agg)?;
                if [&lt, &rt]
                    .iter()
                    .any(|t| matches!(t, ColType::Object(_) | ColType::Array(_)))
                {
                    return Err(SqlError::not_modelled(format!(
                        "`||` on arrays or objects ({})",
                        e.display_name()
                    )));
                }
                (BExpr::Concat(Box::new(lb), Box::new(rb)), ColType::Text)
            }
            Expr::And(l, r) => {
                let (l, _) = self.bind(l, allow_agg)?;
                let (r, _) = self.bind(r, allow_agg)?;
                (BExpr::And(Box::new(l), Box::new(r)), ColType::Bool)
            }
            Expr::Or(l, r) => {
                let (l, _) = self.bind(l, allow_agg)?;
                let (r, _) = self.bind(r, allow_agg)?;
                (BExpr::Or(Box::new(l), Box::new(r)), ColType::Bool)
            }
            Expr::Not(x) => {
                let (x, _) = self.bind(x, allow_agg)?;
                (BExpr::Not(Box::new(x)), ColType::Bool)
            }
            Expr::Neg(x) => {
                let (x, t) = self.bind(x, allow_agg)?;
                (BExpr::Neg(Box::new(x)), t)
            }
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => {
                let (x, _) = self.bind(expr, allow_agg)?;
                let (p, _) = self.bind(pattern, allow_agg)?;
                (
                    BExpr::Like {
                        expr: Box::new(x),
                        pattern: Box::new(p),
                        negated: *negated,
                        ci: *case_insensitive,
                    },
                    ColType::Bool,
                )
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let (x, _) = self.bind(expr, allow_agg)?;
                let mut l = Vec::new();
                for item in list {
                    l.push(self.bind(item, allow_agg)?.0);
                }
                (
                    BExpr::In {
                        expr: Box::new(x),
                        list: l,
                        negated: *negated,
                    },
                    ColType::Bool,
                )
            }
            Expr::IsNull { expr, negated } => {
                let (x, _) = self.bind(expr, allow_agg)?;
                (
                    BExpr::IsNull {
                        expr: Box::new(x),
                        negated: *negated,
                    },
                    ColType::Bool,
                )
            }
            Expr::Object(kv) => {
                let mut out = Vec::new();
                let mut fields = Vec::new();
                for (k, v) in kv {
                    let (b, t) = self.bind(v, allow_agg)?;
                    out.push((k.clone(), b));
                    fields.push((k.clone(), t));
                }
                (
                    BExpr::Obj(out),
                    ColType::Object(crate::value::ObjType {
                        fields,
                        dynamic: None,
                    }),
                )
            }
            Expr::Array(items) => {
                let mut out = Vec::new();
                let mut t = None;
                for i in items {
                    let (b, it) = self.bind(i, allow_agg)?;
                    t.get_or_insert(it);
                    out.push(b);
                }
                (BExpr::Arr(out), ColType::array(t.unwrap_or(ColType::Text)))
            }
        })
    }

    /// An aggregate call; identical calls share one aggregation.
    fn bind_aggregate(
        &mut self,
        e: &Expr,
        name: &str,
        args: &[Expr],
        star: bool,
        filter: Option<&Expr>,
    ) -> Result<(BExpr, ColType), SqlError> {
        let kind = match name {
            "count" => AggKind::Count,
            "min" => AggKind::Min,
            "max" => AggKind::Max,
            "sum" => AggKind::Sum,
            _ => AggKind::Avg,
        };
        let nested = || SqlError::illegal_argument("Aggregate function calls cannot be nested");
        let (arg, arg_t) = if star {
            if kind != AggKind::Count {
                return Err(unknown_function(e));
            }
            (None, ColType::Int8)
        } else {
            if args.len() != 1 {
                return Err(unknown_function(e));
            }
            if args[0].has_aggregate() {
                return Err(nested());
            }
            let (a, t) = self.bind(&args[0], false)?;
            (Some(a), t)
        };
        let filter = match filter {
            Some(f) if f.has_aggregate() => return Err(nested()),
            Some(f) => Some(self.bind(f, false)?.0),
            None => None,
        };
        // CrateDB's signatures: sum of integral types is bigint, of real real, of double
        // double; avg is double; count bigint; min and max keep the argument's type.
        let ty = match kind {
            AggKind::Count => ColType::Int8,
            AggKind::Min | AggKind::Max => arg_t,
            AggKind::Sum => match arg_t {
                ColType::Int4 | ColType::Int8 => ColType::Int8,
                ColType::Float4 => ColType::Float4,
                ColType::Float8 => ColType::Float8,
                _ => return Err(unknown_function(e)),
            },
            AggKind::Avg if is_numeric(&arg_t) => ColType::Float8,
            AggKind::Avg => return Err(unknown_function(e)),
        };
        let spec = AggSpec {
            kind,
            arg,
            filter,
            ty: ty.clone(),
        };
        let idx = match self.aggs.iter().position(|a| *a == spec) {
            Some(i) => i,
            None => {
                self.aggs.push(spec);
                self.aggs.len() - 1
            }
        };
        Ok((BExpr::Agg(idx), ty))
    }

    /// CrateDB's session functions, written without parentheses
    /// (`current_user`; `current_schema` also as `current_schema()`); `crash`
    /// reads them on connect. Bound at analysis time: a prepared statement never
    /// changes session.
    fn session_value(&self, name: &str) -> Option<Value> {
        let (user, schema) = self.session?;
        match name {
            "current_user" | "session_user" | "user" => Some(Value::text(user)),
            "current_schema" => Some(Value::text(schema)),
            _ => None,
        }
    }
}

fn unknown_function(e: &Expr) -> SqlError {
    let mut err = SqlError::new(
        "UnsupportedFunctionException",
        format!("Unknown function: {}", e.display_name()),
        "42883",
    );
    err.rejected = true;
    err
}

// ---------------------------------------------------------------------------
// Rows

/// One row of a relation as the evaluator reads it: cell by cell, so a relation can compute
/// only what a statement uses.
pub trait Row {
    /// The value of column `col`.
    fn cell(&self, col: usize) -> Value;
    /// `col[path[0]][path[1]]...`; relations override it to read an object's child without
    /// building the object.
    fn cell_path(&self, col: usize, path: &[SubKey]) -> Value {
        subscript_path(&self.cell(col), path)
    }
    /// Columns that keep their values over a run of consecutive rows (a shard's schema and
    /// table), as a bit mask (bit `i`: column `i`), and a number identifying the run: while it
    /// lasts, the evaluator reuses what it computed from those columns alone. `None`: none.
    fn stable_columns(&self) -> Option<(u64, u64)> {
        None
    }
    /// The text of column `col` without building a value, where the row has it at hand;
    /// `None` otherwise (and for NULL or non-text cells).
    fn cell_str(&self, _col: usize) -> Option<&str> {
        None
    }
}

impl Row for Vec<Value> {
    fn cell(&self, col: usize) -> Value {
        self.get(col).cloned().unwrap_or(Value::Null)
    }
    fn cell_path(&self, col: usize, path: &[SubKey]) -> Value {
        match self.get(col) {
            Some(v) => subscript_path(v, path),
            None => Value::Null,
        }
    }
    fn cell_str(&self, col: usize) -> Option<&str> {
        match self.get(col) {
            Some(Value::Text(s)) => Some(s),
            _ => None,
        }
    }
}

/// No row (constant evaluation, aggregated output).
pub struct NoRow;

impl Row for NoRow {
    fn cell(&self, _col: usize) -> Value {
        Value::Null
    }
}

/// Evaluation inputs besides the row.
#[derive(Clone, Copy)]
pub struct EvalCtx<'a> {
    pub params: &'a [Value],
    pub aggs: &'a [Value],
    pub keys: &'a [Value],
    pub outputs: &'a [Value],
    pub sets: &'a [AnySet],
}

impl<'a> EvalCtx<'a> {
    /// A context with parameters only.
    pub fn new(params: &'a [Value]) -> Self {
        EvalCtx {
            params,
            aggs: &[],
            keys: &[],
            outputs: &[],
            sets: &[],
        }
    }
}

fn param(ctx: &EvalCtx<'_>, i: usize) -> Result<Value, SqlError> {
    ctx.params.get(i).cloned().ok_or_else(|| {
        SqlError::illegal_argument(format!(
            "The query contains a parameter placeholder ${}, but there are only {} parameter values",
            i + 1,
            ctx.params.len()
        ))
    })
}

/// SQL LIKE with `%`, `_` and `\` escapes.
pub fn like_match(text: &str, pattern: &str, ci: bool) -> bool {
    let (t, p): (Vec<char>, Vec<char>) = if ci {
        (
            text.to_lowercase().chars().collect(),
            pattern.to_lowercase().chars().collect(),
        )
    } else {
        (text.chars().collect(), pattern.chars().collect())
    };
    fn go(t: &[char], p: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|i| go(&t[i..], &p[1..])),
            Some('_') => !t.is_empty() && go(&t[1..], &p[1..]),
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && go(&t[1..], &p[2..]),
            Some(c) => t.first() == Some(c) && go(&t[1..], &p[1..]),
        }
    }
    go(&t, &p)
}

fn tri_not(v: Value) -> Value {
    match v {
        Value::Bool(b) => Value::Bool(!b),
        _ => Value::Null,
    }
}

/// Whether `op` holds for two values ordered `o`.
fn ordering_holds(op: CmpOp, o: Ordering) -> bool {
    match op {
        CmpOp::Eq => o == Ordering::Equal,
        CmpOp::Ne => o != Ordering::Equal,
        CmpOp::Lt => o == Ordering::Less,
        CmpOp::Gt => o == Ordering::Greater,
        CmpOp::Le => o != Ordering::Greater,
        CmpOp::Ge => o != Ordering::Less,
    }
}

/// `probe op candidate` for two non-NULL values (incomparable values are unequal).
fn cmp_holds(op: CmpOp, probe: &Value, candidate: &Value) -> bool {
    match probe.sql_cmp(candidate) {
        None => matches!(op, CmpOp::Ne),
        Some(o) => ordering_holds(op, o),
    }
}

/// The multiply-rotate hash of rustc (`FxHasher`): fast for the short keys the evaluator
/// hashes (relation names, group keys); collision attacks are no concern here.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf) ^ rest.len() as u64);
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A fast hash map/set builder for the evaluator's lookups.
pub type FxBuild = BuildHasherDefault<FxHasher>;

/// The elements of an `ANY` operand, with hash sets for equality lookups when every element is
/// text (or every one an integer). Built once per execution for a constant operand.
#[derive(Debug, Clone)]
pub struct AnySet {
    /// The operand itself is NULL.
    null_array: bool,
    /// The non-NULL elements.
    values: Vec<Value>,
    has_null: bool,
    text: Option<HashSet<String, FxBuild>>,
    ints: Option<HashSet<i64, FxBuild>>,
}

impl AnySet {
    fn build(v: Value, what: &dyn Fn() -> String) -> Result<AnySet, SqlError> {
        let items = match v {
            Value::Null => {
                return Ok(AnySet {
                    null_array: true,
                    values: Vec::new(),
                    has_null: false,
                    text: None,
                    ints: None,
                });
            }
            Value::Array(items) => items,
            other => {
                return Err(SqlError::illegal_argument(format!(
                    "Cannot cast value `{}` to type `{}`: the right side of {} must be an array",
                    other.to_plain_string().unwrap_or_default(),
                    "text_array",
                    what()
                )));
            }
        };
        let has_null = items.iter().any(Value::is_null);
        let values: Vec<Value> = items.into_iter().filter(|v| !v.is_null()).collect();
        let text = values.iter().all(|v| matches!(v, Value::Text(_))).then(|| {
            values
                .iter()
                .filter_map(|v| match v {
                    Value::Text(s) => Some(s.clone()),
                    _ => None,
                })
                .collect()
        });
        let ints = values.iter().all(|v| matches!(v, Value::Int(_))).then(|| {
            values
                .iter()
                .filter_map(|v| match v {
                    Value::Int(i) => Some(*i),
                    _ => None,
                })
                .collect()
        });
        Ok(AnySet {
            null_array: false,
            values,
            has_null,
            text,
            ints,
        })
    }

    /// `probe op ANY(self)` with CrateDB's NULL semantics (`AnyOperator.evaluate`): NULL for a
    /// NULL probe or array; true on a match; else NULL if the array holds a NULL, else false.
    fn test(&self, op: CmpOp, probe: &Value) -> Value {
        if probe.is_null() || self.null_array {
            return Value::Null;
        }
        let found = match (op, probe) {
            (CmpOp::Eq, Value::Text(s)) if self.text.is_some() => {
                self.text.as_ref().is_some_and(|t| t.contains(s.as_str()))
            }
            (CmpOp::Eq, Value::Int(i)) if self.ints.is_some() => {
                self.ints.as_ref().is_some_and(|t| t.contains(i))
            }
            _ => self.values.iter().any(|c| cmp_holds(op, probe, c)),
        };
        if found {
            Value::Bool(true)
        } else if self.has_null {
            Value::Null
        } else {
            Value::Bool(false)
        }
    }
}

/// Subscript `v` along `path` without cloning what is not returned.
pub fn subscript_path(v: &Value, path: &[SubKey]) -> Value {
    let mut cur = v;
    for (i, key) in path.iter().enumerate() {
        match (cur, key) {
            (Value::Object(m), SubKey::Name(n)) => match m.get(n) {
                Some(x) => cur = x,
                None => return Value::Null,
            },
            (Value::Array(items), SubKey::Index(ix)) => {
                match usize::try_from(*ix - 1).ok().and_then(|ix| items.get(ix)) {
                    Some(x) => cur = x,
                    None => return Value::Null,
                }
            }
            (Value::Array(_), SubKey::Name(_)) => {
                let mut out = subscript(cur, key);
                for k in &path[i + 1..] {
                    out = subscript(&out, k);
                }
                return out;
            }
            _ => return Value::Null,
        }
    }
    cur.clone()
}

/// `e`'s value, borrowed where it needs no computation (literals, parameters, aggregates).
fn eval_cow<'e>(
    e: &'e BExpr,
    row: &dyn Row,
    ctx: &EvalCtx<'e>,
) -> Result<Cow<'e, Value>, SqlError> {
    Ok(match e {
        BExpr::Lit(v) => Cow::Borrowed(v),
        BExpr::Param(i) if *i < ctx.params.len() => Cow::Borrowed(&ctx.params[*i]),
        BExpr::Agg(i) if *i < ctx.aggs.len() => Cow::Borrowed(&ctx.aggs[*i]),
        BExpr::Key(i) if *i < ctx.keys.len() => Cow::Borrowed(&ctx.keys[*i]),
        BExpr::Output(i) if *i < ctx.outputs.len() => Cow::Borrowed(&ctx.outputs[*i]),
        other => Cow::Owned(eval(other, row, ctx)?),
    })
}

/// Append the text form of `v` (not NULL) to `out`.
fn push_text(out: &mut String, v: &Value) {
    match v {
        Value::Text(s) => out.push_str(s),
        other => out.push_str(&other.to_plain_string().unwrap_or_default()),
    }
}

pub fn eval(e: &BExpr, row: &dyn Row, ctx: &EvalCtx<'_>) -> Result<Value, SqlError> {
    Ok(match e {
        BExpr::Lit(v) => v.clone(),
        BExpr::Param(i) => param(ctx, *i)?,
        BExpr::Col(i) => row.cell(*i),
        BExpr::ColPath(i, path) => row.cell_path(*i, path),
        BExpr::Agg(i) => ctx.aggs.get(*i).cloned().unwrap_or(Value::Null),
        BExpr::Key(i) => ctx.keys.get(*i).cloned().unwrap_or(Value::Null),
        BExpr::Output(i) => ctx.outputs.get(*i).cloned().unwrap_or(Value::Null),
        BExpr::Sub(base, key) => {
            let b = eval(base, row, ctx)?;
            subscript(&b, key)
        }
        BExpr::Scalar(f, args) => {
            let vals: Vec<Value> = args
                .iter()
                .map(|a| eval(a, row, ctx))
                .collect::<Result<_, _>>()?;
            match f {
                ScalarFn::Coalesce => vals
                    .into_iter()
                    .find(|v| !v.is_null())
                    .unwrap_or(Value::Null),
                ScalarFn::Lower => match &vals[0] {
                    Value::Null => Value::Null,
                    v => Value::Text(v.to_plain_string().unwrap_or_default().to_lowercase()),
                },
                ScalarFn::Upper => match &vals[0] {
                    Value::Null => Value::Null,
                    v => Value::Text(v.to_plain_string().unwrap_or_default().to_uppercase()),
                },
            }
        }
        BExpr::Cmp(op, l, r) => {
            // `text_column op 'literal'` without building the cell's value
            if let (BExpr::Col(i), BExpr::Lit(Value::Text(lit))) = (l.as_ref(), r.as_ref())
                && let Some(text) = row.cell_str(*i)
            {
                return Ok(Value::Bool(ordering_holds(*op, text.cmp(lit.as_str()))));
            }
            let (l, r) = (eval_cow(l, row, ctx)?, eval_cow(r, row, ctx)?);
            if l.is_null() || r.is_null() {
                Value::Null
            } else {
                Value::Bool(cmp_holds(*op, &l, &r))
            }
        }
        BExpr::Any {
            op,
            left,
            right,
            set,
        } => {
            let probe = eval_cow(left, row, ctx)?;
            match set.and_then(|i| ctx.sets.get(i)) {
                Some(s) => s.test(*op, &probe),
                None => {
                    let what = || format!("{} ANY", op.symbol());
                    AnySet::build(eval(right, row, ctx)?, &what)?.test(*op, &probe)
                }
            }
        }
        BExpr::Concat(l, r) => {
            let a = eval(l, row, ctx)?;
            if a.is_null() {
                return Ok(Value::Null);
            }
            let b = eval_cow(r, row, ctx)?;
            if b.is_null() {
                return Ok(Value::Null);
            }
            let mut out = match a {
                Value::Text(s) => s,
                other => other.to_plain_string().unwrap_or_default(),
            };
            push_text(&mut out, &b);
            Value::Text(out)
        }
        BExpr::And(l, r) => match eval(l, row, ctx)? {
            Value::Bool(false) => Value::Bool(false),
            lv => match (lv, eval(r, row, ctx)?) {
                (_, Value::Bool(false)) => Value::Bool(false),
                (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
                _ => Value::Null,
            },
        },
        BExpr::Or(l, r) => match eval(l, row, ctx)? {
            Value::Bool(true) => Value::Bool(true),
            lv => match (lv, eval(r, row, ctx)?) {
                (_, Value::Bool(true)) => Value::Bool(true),
                (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
                _ => Value::Null,
            },
        },
        BExpr::Not(x) => tri_not(eval(x, row, ctx)?),
        BExpr::Neg(x) => match eval(x, row, ctx)? {
            Value::Int(i) => Value::Int(-i),
            Value::Float(f) => Value::Float(-f),
            Value::Null => Value::Null,
            other => {
                return Err(SqlError::illegal_argument(format!(
                    "Cannot negate value {}",
                    other.to_json()
                )));
            }
        },
        BExpr::Like {
            expr,
            pattern,
            negated,
            ci,
        } => {
            let (v, p) = (eval_cow(expr, row, ctx)?, eval_cow(pattern, row, ctx)?);
            if v.is_null() || p.is_null() {
                Value::Null
            } else {
                let m = like_match(
                    &v.to_plain_string().unwrap_or_default(),
                    &p.to_plain_string().unwrap_or_default(),
                    *ci,
                );
                Value::Bool(m != *negated)
            }
        }
        BExpr::In {
            expr,
            list,
            negated,
        } => {
            let v = eval_cow(expr, row, ctx)?;
            if v.is_null() {
                return Ok(Value::Null);
            }
            let mut saw_null = false;
            let mut found = false;
            for item in list {
                let x = eval_cow(item, row, ctx)?;
                if x.is_null() {
                    saw_null = true;
                } else if v.sql_cmp(&x) == Some(Ordering::Equal) {
                    found = true;
                    break;
                }
            }
            let r = if found {
                Value::Bool(true)
            } else if saw_null {
                Value::Null
            } else {
                Value::Bool(false)
            };
            if *negated { tri_not(r) } else { r }
        }
        BExpr::IsNull { expr, negated } => Value::Bool(eval(expr, row, ctx)?.is_null() != *negated),
        BExpr::Obj(kv) => {
            let mut m = std::collections::BTreeMap::new();
            for (k, v) in kv {
                m.insert(k.clone(), eval(v, row, ctx)?);
            }
            Value::Object(m)
        }
        BExpr::Arr(items) => Value::Array(
            items
                .iter()
                .map(|i| eval(i, row, ctx))
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn subscript(v: &Value, key: &SubKey) -> Value {
    match (v, key) {
        (Value::Object(m), SubKey::Name(n)) => m.get(n).cloned().unwrap_or(Value::Null),
        (Value::Array(items), SubKey::Name(_)) => {
            Value::Array(items.iter().map(|i| subscript(i, key)).collect())
        }
        (Value::Array(items), SubKey::Index(i)) => {
            // CrateDB arrays are 1-based
            usize::try_from(*i - 1)
                .ok()
                .and_then(|i| items.get(i).cloned())
                .unwrap_or(Value::Null)
        }
        _ => Value::Null,
    }
}

// ---------------------------------------------------------------------------
// Aggregation

/// The running state of one aggregation.
#[derive(Debug, Clone)]
enum Acc {
    Count(i64),
    Best(Option<Value>),
    SumInt(Option<i64>),
    SumFloat(Option<f64>),
    Avg(f64, u64),
}

impl Acc {
    fn new(spec: &AggSpec) -> Acc {
        match spec.kind {
            AggKind::Count => Acc::Count(0),
            AggKind::Min | AggKind::Max => Acc::Best(None),
            AggKind::Sum if spec.ty == ColType::Int8 => Acc::SumInt(None),
            AggKind::Sum => Acc::SumFloat(None),
            AggKind::Avg => Acc::Avg(0.0, 0),
        }
    }

    /// Add a non-NULL value (`None` for `count(*)`).
    fn add(&mut self, kind: AggKind, v: Option<Value>) -> Result<(), SqlError> {
        let float = |v: &Value| match v.coerce(&ColType::Float8) {
            Ok(Value::Float(f)) => Ok(f),
            _ => Err(SqlError::illegal_argument(format!(
                "Cannot cast value `{}` to type `double precision`",
                v.to_plain_string().unwrap_or_default()
            ))),
        };
        match self {
            Acc::Count(n) => *n += 1,
            Acc::Best(best) => {
                let Some(v) = v else { return Ok(()) };
                let take = match best {
                    None => true,
                    Some(b) => {
                        let o = v.sql_cmp(b).unwrap_or(Ordering::Equal);
                        if kind == AggKind::Min {
                            o == Ordering::Less
                        } else {
                            o == Ordering::Greater
                        }
                    }
                };
                if take {
                    *best = Some(v);
                }
            }
            Acc::SumInt(sum) => {
                let Some(v) = v else { return Ok(()) };
                let i = match v.coerce(&ColType::Int8) {
                    Ok(Value::Int(i)) => i,
                    _ => {
                        return Err(SqlError::illegal_argument(format!(
                            "Cannot cast value `{}` to type `bigint`",
                            v.to_plain_string().unwrap_or_default()
                        )));
                    }
                };
                // SumAggregation adds longs with Math.addExact.
                *sum =
                    Some(sum.unwrap_or(0).checked_add(i).ok_or_else(|| {
                        SqlError::internal("ArithmeticException", "long overflow")
                    })?);
            }
            Acc::SumFloat(sum) => {
                let Some(v) = v else { return Ok(()) };
                *sum = Some(sum.unwrap_or(0.0) + float(&v)?);
            }
            Acc::Avg(sum, n) => {
                let Some(v) = v else { return Ok(()) };
                *sum += float(&v)?;
                *n += 1;
            }
        }
        Ok(())
    }

    fn finish(self, spec: &AggSpec) -> Value {
        match self {
            Acc::Count(n) => Value::Int(n),
            Acc::Best(b) => b.unwrap_or(Value::Null),
            Acc::SumInt(s) => s.map(Value::Int).unwrap_or(Value::Null),
            Acc::SumFloat(s) => match s {
                None => Value::Null,
                Some(f) if spec.ty == ColType::Float4 => Value::Float(f as f32 as f64),
                Some(f) => Value::Float(f),
            },
            Acc::Avg(_, 0) => Value::Null,
            Acc::Avg(sum, n) => Value::Float(sum / n as f64),
        }
    }
}

/// Feed one row into the aggregations.
fn accumulate(
    aggs: &[AggSpec],
    accs: &mut [Acc],
    row: &dyn Row,
    ctx: &EvalCtx<'_>,
) -> Result<(), SqlError> {
    for (spec, acc) in aggs.iter().zip(accs.iter_mut()) {
        if let Some(f) = &spec.filter
            && !eval(f, row, ctx)?.is_true()
        {
            continue;
        }
        match &spec.arg {
            None => acc.add(spec.kind, None)?,
            Some(a) => {
                let v = eval(a, row, ctx)?;
                if !v.is_null() {
                    acc.add(spec.kind, Some(v))?;
                }
            }
        }
    }
    Ok(())
}

/// Values as a hash key (NULLs group together, floats by their bits).
#[derive(Debug, Clone)]
struct Key(Vec<Value>);

fn hash_value(v: &Value, h: &mut impl Hasher) {
    std::mem::discriminant(v).hash(h);
    match v {
        Value::Null => {}
        Value::Bool(b) => b.hash(h),
        Value::Int(i) | Value::Ts(i) => i.hash(h),
        Value::Float(f) => f.to_bits().hash(h),
        Value::Text(s) => s.hash(h),
        Value::Array(items) => {
            items.len().hash(h);
            items.iter().for_each(|i| hash_value(i, h));
        }
        Value::Object(m) => {
            m.len().hash(h);
            for (k, v) in m {
                k.hash(h);
                hash_value(v, h);
            }
        }
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
        }
        _ => a == b,
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.iter().for_each(|v| hash_value(v, h));
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| same_value(a, b))
    }
}

impl Eq for Key {}

// ---------------------------------------------------------------------------
// SELECT

/// An analyzed SELECT over one relation (or none).
#[derive(Debug, Clone)]
pub struct SelectPlan {
    pub fields: Vec<(String, ColType)>,
    pub items: Vec<BExpr>,
    pub where_: Option<BExpr>,
    /// `GROUP BY` keys (evaluated per row).
    pub group_by: Vec<BExpr>,
    pub order: Vec<(OrderKey, bool, bool)>,
    pub aggs: Vec<AggSpec>,
    /// Aggregates or `GROUP BY`: the output rows are groups.
    pub aggregate: bool,
    pub distinct: bool,
    pub limit: Option<BExpr>,
    pub offset: Option<BExpr>,
    /// Constant right-hand sides of `ANY` (see [`Binder::any_consts`]).
    pub any_consts: Vec<BExpr>,
    /// See [`Binder::param_types`].
    pub param_types: Vec<Option<ColType>>,
}

#[derive(Debug, Clone)]
pub enum OrderKey {
    Output(usize),
    Expr(BExpr),
}

fn group_error(display: &str) -> SqlError {
    SqlError::illegal_argument(format!(
        "'{display}' must appear in the GROUP BY clause or be used in an aggregation function. \
         Perhaps you grouped by an alias that clashes with a column in the relations"
    ))
}

/// What a `GROUP BY` item stands for: an ordinal or an output alias resolve to select items
/// (`RelationAnalyzer.symbolFromExpressionFallbackOnSelectOutput`).
fn resolve_group_expr(
    g: &Expr,
    items: &[(Expr, Option<String>)],
    columns: &[(String, ColType)],
) -> Result<Expr, SqlError> {
    match g {
        Expr::Lit(Literal::Int(k)) => usize::try_from(*k)
            .ok()
            .filter(|k| (1..=items.len()).contains(k))
            .map(|k| items[k - 1].0.clone())
            .ok_or_else(|| {
                SqlError::illegal_argument(format!("GROUP BY position {k} is not in select list"))
            }),
        Expr::Column(parts) if parts.len() == 1 && !columns.iter().any(|(n, _)| *n == parts[0]) => {
            Ok(items
                .iter()
                .find(|(_, alias)| alias.as_deref() == Some(parts[0].as_str()))
                .map(|(e, _)| e.clone())
                .unwrap_or_else(|| g.clone()))
        }
        other => Ok(other.clone()),
    }
}

/// Analyze a SELECT against a relation's columns.
pub fn plan_select(
    s: &Select,
    qualifiers: Vec<Vec<String>>,
    columns: &[(String, ColType)],
    session: Option<(&str, &str)>,
) -> Result<SelectPlan, SqlError> {
    let mut b = Binder::new(qualifiers, columns);
    b.session = session;
    // `*` stands for every column, in order.
    let mut select: Vec<(Expr, Option<String>)> = Vec::new();
    for item in &s.items {
        match item {
            SelectItem::Wildcard => {
                select.extend(
                    columns
                        .iter()
                        .map(|(n, _)| (Expr::Column(vec![n.clone()]), None)),
                );
            }
            SelectItem::Expr { expr, alias } => select.push((expr.clone(), alias.clone())),
        }
    }
    let aggregate = !s.group_by.is_empty() || select.iter().any(|(e, _)| e.has_aggregate());

    let mut group_by = Vec::new();
    for g in &s.group_by {
        let g = resolve_group_expr(g, &select, columns)?;
        if g.has_aggregate() {
            return Err(SqlError::illegal_argument(
                "Aggregate functions are not allowed in GROUP BY",
            ));
        }
        group_by.push(b.bind(&g, false)?.0);
    }

    let mut fields = Vec::new();
    let mut raw_items = Vec::new();
    let mut items = Vec::new();
    for (expr, alias) in &select {
        let (be, t) = b.bind(expr, true)?;
        let item = if aggregate {
            // GroupAndAggregateSemantics: outside aggregates only group keys may be read.
            let item = replace_with(be.clone(), &group_by, BExpr::Key);
            if item.first_column().is_some() {
                return Err(group_error(&expr.display_name()));
            }
            item
        } else {
            be.clone()
        };
        fields.push((alias.clone().unwrap_or_else(|| expr.display_name()), t));
        raw_items.push(be);
        items.push(item);
    }
    let where_ = match &s.where_ {
        Some(w) => Some(b.bind(w, false)?.0),
        None => None,
    };
    let mut order = Vec::new();
    for OrderItem {
        expr,
        desc,
        nulls_first,
    } in &s.order_by
    {
        let key = match expr {
            Expr::Lit(Literal::Int(k)) => OrderKey::Output(
                usize::try_from(*k)
                    .ok()
                    .filter(|k| (1..=fields.len()).contains(k))
                    .map(|k| k - 1)
                    .ok_or_else(|| {
                        SqlError::illegal_argument(format!(
                            "ORDER BY position {k} is not in select list"
                        ))
                    })?,
            ),
            Expr::Column(parts)
                if parts.len() == 1 && fields.iter().any(|(n, _)| n == &parts[0]) =>
            {
                OrderKey::Output(fields.iter().position(|(n, _)| n == &parts[0]).unwrap_or(0))
            }
            e if aggregate => {
                // OrderByWithAggregationValidator: columns outside aggregates must be outputs.
                let (be, _) = b.bind(e, true)?;
                let be = replace_with(be, &raw_items, BExpr::Output);
                if let Some((col, path)) = be.first_column() {
                    return Err(SqlError::new(
                        "UnsupportedOperationException",
                        format!(
                            "ORDER BY expression '{}' must appear in the select clause when grouping or global aggregation is used",
                            b.column_display(col, &path)
                        ),
                        "0A000",
                    ));
                }
                match be {
                    BExpr::Output(i) => OrderKey::Output(i),
                    other => OrderKey::Expr(other),
                }
            }
            e => OrderKey::Expr(b.bind(e, false)?.0),
        };
        // PostgreSQL/CrateDB: NULLS LAST for ASC, NULLS FIRST for DESC.
        order.push((key, *desc, nulls_first.unwrap_or(*desc)));
    }
    let limit = match &s.limit {
        Some(l) => Some(b.bind(l, false)?.0),
        None => None,
    };
    let offset = match &s.offset {
        Some(l) => Some(b.bind(l, false)?.0),
        None => None,
    };
    Ok(SelectPlan {
        fields,
        items,
        where_,
        group_by,
        order,
        aggs: b.aggs,
        aggregate,
        distinct: s.distinct,
        limit,
        offset,
        any_consts: b.any_consts,
        param_types: b.param_types,
    })
}

fn cmp_for_sort(a: &Value, b: &Value, desc: bool, nulls_first: bool) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => {
            if nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (false, true) => {
            if nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        _ => {
            let o = a
                .sql_cmp(b)
                .unwrap_or_else(|| a.to_json().to_string().cmp(&b.to_json().to_string()));
            if desc { o.reverse() } else { o }
        }
    }
}

fn as_count(v: Value, what: &str) -> Result<usize, SqlError> {
    match v.coerce(&ColType::Int8) {
        Ok(Value::Int(i)) if i >= 0 => Ok(i as usize),
        _ => Err(SqlError::illegal_argument(format!(
            "Invalid {what}: {}",
            v.to_json()
        ))),
    }
}

/// A consumer of rows: `Ok(false)` stops the scan.
pub type RowSink<'s> = dyn FnMut(&dyn Row) -> Result<bool, SqlError> + 's;

/// The constant `ANY` operands of `plan`, evaluated for this execution.
fn any_sets(plan: &SelectPlan, params: &[Value]) -> Result<Vec<AnySet>, SqlError> {
    let ctx = EvalCtx::new(params);
    plan.any_consts
        .iter()
        .map(|e| AnySet::build(eval(e, &NoRow, &ctx)?, &|| "ANY".to_string()))
        .collect()
}

/// Run a planned SELECT; `scan` feeds the relation's rows to the sink it is given and stops
/// when the sink answers `false`.
pub fn run_select(
    plan: &SelectPlan,
    params: &[Value],
    scan: impl FnOnce(&mut RowSink<'_>) -> Result<(), SqlError>,
) -> Result<Vec<Vec<Value>>, SqlError> {
    let sets = any_sets(plan, params)?;
    let ctx = EvalCtx {
        sets: &sets,
        ..EvalCtx::new(params)
    };
    let offset = match &plan.offset {
        Some(o) => as_count(eval(o, &NoRow, &ctx)?, "OFFSET")?,
        None => 0,
    };
    let limit = match &plan.limit {
        Some(l) => Some(as_count(eval(l, &NoRow, &ctx)?, "LIMIT")?),
        None => None,
    };
    let mut filter = Filter::new(plan.where_.as_ref());
    // (output values, sort keys)
    let mut out: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
    let mut seen: HashSet<Key, FxBuild> = HashSet::default();
    if !plan.aggregate {
        // Without ORDER BY the scan stops once OFFSET + LIMIT rows are in.
        let cap = limit
            .filter(|_| plan.order.is_empty())
            .map(|l| l.saturating_add(offset));
        if cap == Some(0) {
            return Ok(Vec::new());
        }
        let mut sink = |row: &dyn Row| -> Result<bool, SqlError> {
            if !filter.passes(row, &ctx)? {
                return Ok(true);
            }
            let vals = plan
                .items
                .iter()
                .map(|i| eval(i, row, &ctx))
                .collect::<Result<Vec<_>, _>>()?;
            if plan.distinct && !seen.insert(Key(vals.clone())) {
                return Ok(true);
            }
            let mut keys = Vec::with_capacity(plan.order.len());
            for (k, _, _) in &plan.order {
                keys.push(match k {
                    OrderKey::Output(i) => vals[*i].clone(),
                    OrderKey::Expr(e) => eval(e, row, &ctx)?,
                });
            }
            out.push((vals, keys));
            Ok(cap.is_none_or(|c| out.len() < c))
        };
        scan(&mut sink)?;
    } else {
        // The aggregations of each group; the keys stay in `index`.
        let mut groups: Vec<Vec<Acc>> = Vec::new();
        let mut index: HashMap<Key, usize, FxBuild> = HashMap::default();
        let fresh = || plan.aggs.iter().map(Acc::new).collect::<Vec<_>>();
        if plan.group_by.is_empty() {
            // A global aggregate has one row, even over no rows.
            groups.push(fresh());
        }
        let key_mask = plan
            .group_by
            .iter()
            .map(column_mask)
            .try_fold(0u64, |a, m| Some(a | m?));
        // The group of the last run of rows whose keys are stable.
        let mut last: Option<(u64, usize)> = None;
        let mut sink = |row: &dyn Row| -> Result<bool, SqlError> {
            if !filter.passes(row, &ctx)? {
                return Ok(true);
            }
            let run = stable_run(key_mask, row);
            let g = match (run, last) {
                _ if plan.group_by.is_empty() => 0,
                (Some(run), Some((cached, g))) if run == cached => g,
                _ => {
                    let key = plan
                        .group_by
                        .iter()
                        .map(|k| eval(k, row, &ctx))
                        .collect::<Result<Vec<_>, _>>()?;
                    let key = Key(key);
                    let g = match index.get(&key) {
                        Some(g) => *g,
                        None => {
                            groups.push(fresh());
                            index.insert(key, groups.len() - 1);
                            groups.len() - 1
                        }
                    };
                    last = run.map(|run| (run, g));
                    g
                }
            };
            accumulate(&plan.aggs, &mut groups[g], row, &ctx)?;
            Ok(true)
        };
        scan(&mut sink)?;
        let mut keys: Vec<Vec<Value>> = vec![Vec::new(); groups.len()];
        for (k, g) in index {
            keys[g] = k.0;
        }
        for (keys, accs) in keys.into_iter().zip(groups) {
            let aggs: Vec<Value> = accs
                .into_iter()
                .zip(&plan.aggs)
                .map(|(a, spec)| a.finish(spec))
                .collect();
            let gctx = EvalCtx {
                aggs: &aggs,
                keys: &keys,
                ..ctx
            };
            let vals = plan
                .items
                .iter()
                .map(|i| eval(i, &NoRow, &gctx))
                .collect::<Result<Vec<_>, _>>()?;
            if plan.distinct && !seen.insert(Key(vals.clone())) {
                continue;
            }
            let octx = EvalCtx {
                outputs: &vals,
                ..gctx
            };
            let mut sort_keys = Vec::with_capacity(plan.order.len());
            for (k, _, _) in &plan.order {
                sort_keys.push(match k {
                    OrderKey::Output(i) => vals[*i].clone(),
                    OrderKey::Expr(e) => eval(e, &NoRow, &octx)?,
                });
            }
            out.push((vals, sort_keys));
        }
    }
    if !plan.order.is_empty() {
        out.sort_by(|a, b| {
            for (i, (_, desc, nf)) in plan.order.iter().enumerate() {
                let o = cmp_for_sort(&a.1[i], &b.1[i], *desc, *nf);
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
    }
    Ok(out
        .into_iter()
        .map(|(v, _)| v)
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .collect())
}

/// Feed materialized rows to a sink (small relations, tests).
pub fn scan_rows(rows: &[Vec<Value>], sink: &mut RowSink<'_>) -> Result<(), SqlError> {
    for r in rows {
        if !sink(r)? {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::ast::Statement;
    use crate::sql::parse_statement;

    fn cols() -> Vec<(String, ColType)> {
        vec![
            ("name".into(), ColType::Text),
            ("n".into(), ColType::Int4),
            (
                "recovery".into(),
                ColType::obj(vec![(
                    "size",
                    ColType::obj(vec![("percent", ColType::Float4)]),
                )]),
            ),
        ]
    }

    type Fields = Vec<(String, ColType)>;

    fn run(
        sql: &str,
        rows: &[Vec<Value>],
        params: &[Value],
    ) -> Result<(Fields, Vec<Vec<Value>>), SqlError> {
        let Statement::Select(s) = parse_statement(sql).unwrap().stmt else {
            panic!()
        };
        let c = cols();
        let plan = plan_select(
            &s,
            vec![vec!["sys".into(), "x".into()], vec!["x".into()]],
            &c,
            Some(("crate", "doc")),
        )?;
        let r = run_select(&plan, params, |sink| scan_rows(rows, sink))?;
        Ok((plan.fields, r))
    }

    fn data() -> Vec<Vec<Value>> {
        let rec = |p: f64| Value::object([("size", Value::object([("percent", Value::Float(p))]))]);
        vec![
            vec![Value::text("a"), Value::Int(3), rec(50.0)],
            vec![Value::text("b"), Value::Int(1), Value::Null],
            vec![Value::text("c"), Value::Null, rec(25.0)],
        ]
    }

    #[test]
    fn filters_orders_and_limits() {
        let (f, r) = run(
            "SELECT name FROM sys.x WHERE n IS NOT NULL ORDER BY n DESC LIMIT 1",
            &data(),
            &[],
        )
        .unwrap();
        assert_eq!(f[0].0, "name");
        assert_eq!(r, vec![vec![Value::text("a")]]);
        let (_, r) = run(
            "SELECT x.name FROM sys.x WHERE name NOT IN ('a', $1)",
            &data(),
            &[Value::text("b")],
        )
        .unwrap();
        assert_eq!(r, vec![vec![Value::text("c")]]);
        let (_, r) = run(
            "SELECT name FROM sys.x WHERE name LIKE '_' AND NOT (n = 3 OR n IS NULL)",
            &data(),
            &[],
        )
        .unwrap();
        assert_eq!(r, vec![vec![Value::text("b")]]);
    }

    #[test]
    fn aggregates_ignore_nulls_and_type_correctly() {
        let (f, r) = run(
            "SELECT min(recovery['size']['percent']), count(*) = 3 AS all3, count(n) FROM sys.x",
            &data(),
            &[],
        )
        .unwrap();
        assert_eq!(
            f[0],
            ("min(recovery['size']['percent'])".into(), ColType::Float4)
        );
        assert_eq!(f[1], ("all3".into(), ColType::Bool));
        assert_eq!(
            r,
            vec![vec![Value::Float(25.0), Value::Bool(true), Value::Int(2)]]
        );
    }

    #[test]
    fn session_functions_are_the_sessions() {
        let (f, r) = run(
            "SELECT current_user, current_schema, current_schema(), session_user, user, name FROM sys.x LIMIT 1",
            &data(),
            &[],
        )
        .unwrap();
        let names: Vec<_> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "current_user",
                "current_schema",
                "current_schema()",
                "session_user",
                "user",
                "name"
            ]
        );
        assert_eq!(
            r[0],
            ["crate", "doc", "doc", "crate", "crate", "a"].map(Value::text)
        );
        // a qualified name is a column, and only current_schema takes parentheses
        assert_eq!(
            run("SELECT x.current_user FROM sys.x", &[], &[])
                .unwrap_err()
                .sqlstate,
            "42703"
        );
        assert!(run("SELECT current_user() FROM sys.x", &[], &[]).is_err());
    }

    #[test]
    fn unknown_columns_and_functions() {
        assert_eq!(
            run("SELECT nope FROM sys.x", &[], &[])
                .unwrap_err()
                .sqlstate,
            "42703"
        );
        let e = run("SELECT recovery['x'] FROM sys.x", &[], &[]).unwrap_err();
        assert_eq!(e.message, "Column recovery['x'] unknown");
        let e = run("SELECT foo(n) FROM sys.x", &[], &[]).unwrap_err();
        assert!(e.rejected);
        let e = run("SELECT name, count(*) FROM sys.x", &[], &[]).unwrap_err();
        assert!(e.message.contains("GROUP BY"));
    }

    #[test]
    fn like_patterns() {
        assert!(like_match(
            "CREATE SNAPSHOT repo.snap ALL",
            "%CREATE SNAPSHOT%",
            false
        ));
        assert!(!like_match("select 1", "%CREATE SNAPSHOT%", false));
        assert!(like_match("a_b", "a\\_b", false));
        assert!(like_match("ABC", "a%", true));
    }

    fn shards() -> (Vec<(String, ColType)>, Vec<Vec<Value>>) {
        let cols = vec![
            ("schema_name".to_string(), ColType::Text),
            ("table_name".to_string(), ColType::Text),
            ("state".to_string(), ColType::Text),
            ("primary".to_string(), ColType::Bool),
            (
                "recovery".to_string(),
                ColType::obj(vec![(
                    "size",
                    ColType::obj(vec![("used", ColType::Int8), ("percent", ColType::Float4)]),
                )]),
            ),
        ];
        let row = |s: &str, t: &str, state: &str, primary: bool, used: Option<i64>| {
            vec![
                Value::text(s),
                Value::text(t),
                Value::text(state),
                Value::Bool(primary),
                match used {
                    Some(u) => Value::object([(
                        "size",
                        Value::object([("used", Value::Int(u)), ("percent", Value::Float(50.0))]),
                    )]),
                    None => Value::Null,
                },
            ]
        };
        let rows = vec![
            row("doc", "a", "STARTED", true, Some(10)),
            row("doc", "a", "RECOVERING", true, Some(5)),
            row("doc", "a", "STARTED", false, Some(10)),
            row("gc", "b", "UNASSIGNED", true, None),
            row("gc", "b", "STARTED", true, Some(7)),
            row("doc", "c", "STARTED", true, Some(1)),
        ];
        (cols, rows)
    }

    fn run_on(
        sql: &str,
        cols: &[(String, ColType)],
        rows: &[Vec<Value>],
        params: &[Value],
    ) -> Result<(Fields, Vec<Vec<Value>>), SqlError> {
        let Statement::Select(s) = parse_statement(sql)?.stmt else {
            panic!()
        };
        let plan = plan_select(
            &s,
            vec![vec!["sys".into(), "shards".into()], vec!["shards".into()]],
            cols,
            Some(("crate", "doc")),
        )?;
        let r = run_select(&plan, params, |sink| scan_rows(rows, sink))?;
        Ok((plan.fields, r))
    }

    fn texts(items: &[&str]) -> Value {
        Value::Array(items.iter().map(|s| Value::text(*s)).collect())
    }

    #[test]
    fn any_with_arrays_parameters_and_nulls() {
        let (c, rows) = shards();
        let q = |sql: &str, params: &[Value]| run_on(sql, &c, &rows, params).unwrap().1;
        let one = |sql: &str, params: &[Value]| q(sql, params).remove(0).remove(0);
        assert_eq!(one("SELECT 'a' = ANY(['a', 'b'])", &[]), Value::Bool(true));
        assert_eq!(
            one("SELECT 'c' = ANY(ARRAY['a', 'b'])", &[]),
            Value::Bool(false)
        );
        assert_eq!(one("SELECT 'c' = SOME(['a', NULL])", &[]), Value::Null);
        assert_eq!(one("SELECT 'a' = ANY(['a', NULL])", &[]), Value::Bool(true));
        assert_eq!(one("SELECT NULL = ANY(['a'])", &[]), Value::Null);
        assert_eq!(one("SELECT 'a' = ANY([])", &[]), Value::Bool(false));
        assert_eq!(one("SELECT 'a' = ANY($1)", &[Value::Null]), Value::Null);
        // <> ANY: true when any element differs (not NOT IN)
        assert_eq!(one("SELECT 'a' <> ANY(['a', 'b'])", &[]), Value::Bool(true));
        assert_eq!(one("SELECT 'a' <> ANY(['a'])", &[]), Value::Bool(false));
        assert_eq!(one("SELECT 'a' <> ANY(['a', NULL])", &[]), Value::Null);
        assert_eq!(one("SELECT 2 > ANY([3, 1])", &[]), Value::Bool(true));
        assert_eq!(one("SELECT 5 = ANY([5, 6])", &[]), Value::Bool(true));
        let names = q(
            "SELECT table_name FROM sys.shards WHERE schema_name || '.' || table_name = ANY($1) AND primary",
            &[texts(&["gc.b", "doc.c", "x.y"])],
        );
        assert_eq!(
            names,
            vec![
                vec![Value::text("b")],
                vec![Value::text("b")],
                vec![Value::text("c")]
            ]
        );
        // a column on the right: one array per row
        let (f, _) = run_on(
            "SELECT state = ANY([state]) FROM sys.shards",
            &c,
            &rows,
            &[],
        )
        .unwrap();
        assert_eq!(f[0], ("state = ANY([state])".to_string(), ColType::Bool));
        let e = run_on("SELECT 'a' = ANY('a')", &c, &rows, &[]).unwrap_err();
        assert!(
            e.message.starts_with("Unknown function: ('a' = ANY('a'))"),
            "{e:?}"
        );
        let e = run_on("SELECT 'a' = ANY($1)", &c, &rows, &[Value::text("a")]).unwrap_err();
        assert!(e.message.contains("must be an array"), "{e:?}");
    }

    #[test]
    fn concatenation_is_null_when_either_side_is() {
        let (c, rows) = shards();
        let (f, r) = run_on(
            "SELECT schema_name || '.' || table_name, 'x' || NULL, NULL || 'x' FROM sys.shards LIMIT 1",
            &c,
            &rows,
            &[],
        )
        .unwrap();
        assert_eq!(f[0].0, "((schema_name || '.') || table_name)");
        assert_eq!(f[0].1, ColType::Text);
        assert_eq!(
            r,
            vec![vec![Value::text("doc.a"), Value::Null, Value::Null]]
        );
    }

    #[test]
    fn filtered_aggregates_and_bigint_sums() {
        let (c, rows) = shards();
        let (f, r) = run_on(
            "SELECT count(*), count(*) FILTER (WHERE state = 'STARTED'), sum(recovery['size']['used']), \
             sum(recovery['size']['used']) FILTER (WHERE state <> 'STARTED'), sum(recovery['size']['percent']), \
             avg(recovery['size']['used']) FROM sys.shards WHERE primary = true",
            &c,
            &rows,
            &[],
        )
        .unwrap();
        assert_eq!(
            f.iter()
                .map(|(n, t)| (n.as_str(), t.clone()))
                .collect::<Vec<_>>(),
            vec![
                ("count(*)", ColType::Int8),
                ("count(*) FILTER (WHERE (state = 'STARTED'))", ColType::Int8),
                ("sum(recovery['size']['used'])", ColType::Int8),
                (
                    "sum(recovery['size']['used']) FILTER (WHERE (state <> 'STARTED'))",
                    ColType::Int8
                ),
                ("sum(recovery['size']['percent'])", ColType::Float4),
                ("avg(recovery['size']['used'])", ColType::Float8),
            ]
        );
        assert_eq!(
            r,
            vec![vec![
                Value::Int(5),
                Value::Int(3),
                Value::Int(23),
                Value::Int(5),
                Value::Float(200.0),
                Value::Float(23.0 / 4.0)
            ]]
        );
        // over no rows: count 0, sums NULL
        let (_, r) = run_on(
            "SELECT count(*), sum(recovery['size']['used']) FROM sys.shards WHERE state = 'nope'",
            &c,
            &rows,
            &[],
        )
        .unwrap();
        assert_eq!(r, vec![vec![Value::Int(0), Value::Null]]);
        let e = run_on(
            "SELECT lower(state) FILTER (WHERE primary) FROM sys.shards",
            &c,
            &rows,
            &[],
        )
        .unwrap_err();
        assert_eq!(e.message, "Only aggregate functions allow a FILTER clause");
        let e = run_on("SELECT sum(state) FROM sys.shards", &c, &rows, &[]).unwrap_err();
        assert!(e.rejected);
    }

    #[test]
    fn long_sums_overflow_like_math_add_exact() {
        let c = vec![("n".to_string(), ColType::Int8)];
        let rows = vec![vec![Value::Int(i64::MAX)], vec![Value::Int(1)]];
        let e = run_on("SELECT sum(n) FROM sys.shards", &c, &rows, &[]).unwrap_err();
        assert_eq!(
            (e.exception.as_str(), e.message.as_str()),
            ("ArithmeticException", "long overflow")
        );
    }

    #[test]
    fn group_by_with_aggregates_order_and_limit() {
        let (c, rows) = shards();
        let sql = "SELECT schema_name, table_name, count(*), count(*) FILTER (WHERE state <> 'STARTED') \
                   FROM sys.shards WHERE primary = true AND schema_name || '.' || table_name = ANY($1) \
                   GROUP BY schema_name, table_name ORDER BY 4 DESC, table_name LIMIT 2";
        let (f, r) = run_on(sql, &c, &rows, &[texts(&["doc.a", "gc.b", "doc.c"])]).unwrap();
        assert_eq!(f[2], ("count(*)".to_string(), ColType::Int8));
        assert_eq!(
            r,
            vec![
                vec![
                    Value::text("doc"),
                    Value::text("a"),
                    Value::Int(2),
                    Value::Int(1)
                ],
                vec![
                    Value::text("gc"),
                    Value::text("b"),
                    Value::Int(2),
                    Value::Int(1)
                ],
            ]
        );
        // ordinals, aliases, aggregates in ORDER BY that are not selected
        let (_, r) = run_on(
            "SELECT table_name AS t, max(state) FROM sys.shards GROUP BY t ORDER BY count(*) DESC, 1",
            &c,
            &rows,
            &[],
        )
        .unwrap();
        assert_eq!(
            r,
            vec![
                vec![Value::text("a"), Value::text("STARTED")],
                vec![Value::text("b"), Value::text("UNASSIGNED")],
                vec![Value::text("c"), Value::text("STARTED")],
            ]
        );
        let (_, r) = run_on(
            "SELECT schema_name FROM sys.shards GROUP BY 1 ORDER BY schema_name DESC",
            &c,
            &rows,
            &[],
        )
        .unwrap();
        assert_eq!(r, vec![vec![Value::text("gc")], vec![Value::text("doc")]]);
        // grouping on a subscript; NULLs form one group
        let (_, r) = run_on(
            "SELECT recovery['size']['used'], count(*) FROM sys.shards GROUP BY recovery['size']['used'] ORDER BY 1 NULLS FIRST LIMIT 2",
            &c,
            &rows,
            &[],
        )
        .unwrap();
        assert_eq!(
            r,
            vec![
                vec![Value::Null, Value::Int(1)],
                vec![Value::Int(1), Value::Int(1)]
            ]
        );
    }

    #[test]
    fn group_by_errors_are_cratedbs() {
        let (c, rows) = shards();
        let err = |sql: &str| run_on(sql, &c, &rows, &[]).unwrap_err();
        let e =
            err("SELECT schema_name, table_name, count(*) FROM sys.shards GROUP BY schema_name");
        assert_eq!(
            e.message,
            "'table_name' must appear in the GROUP BY clause or be used in an aggregation function. \
             Perhaps you grouped by an alias that clashes with a column in the relations"
        );
        assert_eq!((e.sqlstate.as_str(), e.http().code), ("0A000", 4000));
        let e = err("SELECT lower(state), count(*) FROM sys.shards GROUP BY schema_name");
        assert!(e.message.starts_with("'lower(state)' must appear"), "{e:?}");
        let e = err("SELECT recovery['size']['used'], count(*) FROM sys.shards");
        assert!(
            e.message
                .starts_with("'recovery['size']['used']' must appear"),
            "{e:?}"
        );
        let e = err("SELECT *, count(*) FROM sys.shards");
        assert!(e.message.starts_with("'schema_name' must appear"), "{e:?}");
        let e = err("SELECT count(*) FROM sys.shards GROUP BY count(*)");
        assert_eq!(e.message, "Aggregate functions are not allowed in GROUP BY");
        let e = err("SELECT count(*) FROM sys.shards GROUP BY 2");
        assert_eq!(e.message, "GROUP BY position 2 is not in select list");
        let e = err("SELECT count(*) FROM sys.shards GROUP BY schema_name ORDER BY schema_name");
        assert_eq!(
            e.message,
            "ORDER BY expression 'schema_name' must appear in the select clause when grouping or global aggregation is used"
        );
        assert_eq!(
            e.http().message.split('[').next(),
            Some("UnsupportedFeatureException")
        );
        let e = err("SELECT state FROM sys.shards ORDER BY 3");
        assert_eq!(e.message, "ORDER BY position 3 is not in select list");
        // GROUP BY without aggregates is DISTINCT-like; ungrouped columns still fail
        let (_, r) = run_on(
            "SELECT state FROM sys.shards GROUP BY state ORDER BY state",
            &c,
            &rows,
            &[],
        )
        .unwrap();
        assert_eq!(r.len(), 3);
        let e = err("SELECT state, table_name FROM sys.shards GROUP BY state");
        assert!(e.message.starts_with("'table_name' must appear"), "{e:?}");
    }

    #[test]
    fn limit_stops_the_scan_early_without_order_by() {
        let rows: Vec<Vec<Value>> = (0..100).map(|i| vec![Value::Int(i)]).collect();
        let c = vec![("n".to_string(), ColType::Int8)];
        let Statement::Select(s) =
            parse_statement("SELECT n FROM t WHERE n >= 10 LIMIT 3 OFFSET 1")
                .unwrap()
                .stmt
        else {
            panic!()
        };
        let plan = plan_select(&s, vec![vec!["t".into()]], &c, None).unwrap();
        let mut read = 0;
        let r = run_select(&plan, &[], |sink| {
            for row in &rows {
                read += 1;
                if !sink(row)? {
                    break;
                }
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(
            r,
            vec![
                vec![Value::Int(11)],
                vec![Value::Int(12)],
                vec![Value::Int(13)]
            ]
        );
        assert_eq!(read, 14);
    }

    /// Rows of runs: column 0 stays the same within a run; counts reads of column 0.
    struct RunRow<'a> {
        values: Vec<Value>,
        run: u64,
        reads: &'a std::cell::Cell<usize>,
    }

    impl Row for RunRow<'_> {
        fn cell(&self, col: usize) -> Value {
            if col == 0 {
                self.reads.set(self.reads.get() + 1);
            }
            self.values.cell(col)
        }
        fn stable_columns(&self) -> Option<(u64, u64)> {
            Some((0b1, self.run))
        }
    }

    #[test]
    fn stable_columns_are_evaluated_once_per_run() {
        let c = vec![
            ("t".to_string(), ColType::Text),
            ("n".to_string(), ColType::Int8),
        ];
        let data: Vec<(u64, &str, i64)> = vec![
            (0, "a", 1),
            (0, "a", 2),
            (0, "a", 3),
            (1, "b", 4),
            (1, "b", 5),
            (2, "c", 6),
        ];
        let run = |sql: &str| {
            let reads = std::cell::Cell::new(0);
            let Statement::Select(s) = parse_statement(sql).unwrap().stmt else {
                panic!()
            };
            let plan = plan_select(&s, vec![vec!["t".into()]], &c, None).unwrap();
            let out = run_select(&plan, &[texts(&["x.a", "x.c"])], |sink| {
                for (run, t, n) in &data {
                    let row = RunRow {
                        values: vec![Value::text(*t), Value::Int(*n)],
                        run: *run,
                        reads: &reads,
                    };
                    if !sink(&row)? {
                        break;
                    }
                }
                Ok(())
            })
            .unwrap();
            (out, reads.get())
        };
        let (out, reads) =
            run("SELECT sum(n), count(*) FROM t WHERE 'x.' || t = ANY($1) AND n > 1");
        assert_eq!(out, vec![vec![Value::Int(2 + 3 + 6), Value::Int(3)]]);
        assert_eq!(reads, 3, "one read of t per run");
        let (out, reads) = run("SELECT t, count(*) FROM t WHERE n <> 2 GROUP BY t ORDER BY t");
        assert_eq!(
            out,
            vec![
                vec![Value::text("a"), Value::Int(2)],
                vec![Value::text("b"), Value::Int(2)],
                vec![Value::text("c"), Value::Int(1)]
            ]
        );
        assert_eq!(reads, 3, "one key per run");
    }
}
