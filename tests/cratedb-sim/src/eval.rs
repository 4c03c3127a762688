//! Binding (name resolution and typing) and evaluation of expressions, and
//! execution of analyzed `SELECT`s.

use std::cmp::Ordering;

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
#[derive(Debug, Clone)]
pub enum BExpr {
    Lit(Value),
    Param(usize),
    Col(usize),
    Sub(Box<BExpr>, SubKey),
    Agg(usize),
    Scalar(ScalarFn, Vec<BExpr>),
    Cmp(CmpOp, Box<BExpr>, Box<BExpr>),
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

#[derive(Debug, Clone)]
pub struct AggSpec {
    pub kind: AggKind,
    pub arg: Option<BExpr>,
}

/// Resolves names against one relation.
pub struct Binder<'a> {
    /// Accepted qualifiers for column references: `sys.shards`, `shards`, alias.
    pub qualifiers: Vec<Vec<String>>,
    pub columns: &'a [(String, ColType)],
    pub aggs: Vec<AggSpec>,
    /// `(user, schema)` of the session, for `current_user` and `current_schema`.
    pub session: Option<(&'a str, &'a str)>,
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

impl<'a> Binder<'a> {
    pub fn new(qualifiers: Vec<Vec<String>>, columns: &'a [(String, ColType)]) -> Self {
        Binder {
            qualifiers,
            columns,
            aggs: Vec::new(),
            session: None,
        }
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
                (BExpr::Sub(Box::new(b), key.clone()), child)
            }
            Expr::Func { name, args, star } => {
                if is_aggregate(name) {
                    if !allow_agg {
                        return Err(SqlError::illegal_argument(format!(
                            "Aggregate functions are not allowed in this position: {}",
                            e.display_name()
                        )));
                    }
                    let kind = match name.as_str() {
                        "count" => AggKind::Count,
                        "min" => AggKind::Min,
                        "max" => AggKind::Max,
                        "sum" => AggKind::Sum,
                        _ => AggKind::Avg,
                    };
                    let (arg, arg_t) = if *star {
                        if kind != AggKind::Count {
                            return Err(unknown_function(e));
                        }
                        (None, ColType::Int8)
                    } else {
                        if args.len() != 1 {
                            return Err(unknown_function(e));
                        }
                        if args[0].has_aggregate() {
                            return Err(SqlError::illegal_argument(
                                "Aggregate function calls cannot be nested",
                            ));
                        }
                        let (a, t) = self.bind(&args[0], false)?;
                        (Some(a), t)
                    };
                    let t = match kind {
                        AggKind::Count => ColType::Int8,
                        AggKind::Min | AggKind::Max => arg_t,
                        AggKind::Sum => match arg_t {
                            ColType::Float4 | ColType::Float8 => ColType::Float8,
                            _ => ColType::Int8,
                        },
                        AggKind::Avg => ColType::Float8,
                    };
                    self.aggs.push(AggSpec { kind, arg });
                    (BExpr::Agg(self.aggs.len() - 1), t)
                } else if let Some(v) = (name == "current_schema" && args.is_empty())
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
}

impl Binder<'_> {
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

/// Evaluation inputs besides the row.
pub struct EvalCtx<'a> {
    pub params: &'a [Value],
    pub aggs: &'a [Value],
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

pub fn eval(e: &BExpr, row: &[Value], ctx: &EvalCtx<'_>) -> Result<Value, SqlError> {
    Ok(match e {
        BExpr::Lit(v) => v.clone(),
        BExpr::Param(i) => param(ctx, *i)?,
        BExpr::Col(i) => row.get(*i).cloned().unwrap_or(Value::Null),
        BExpr::Agg(i) => ctx.aggs.get(*i).cloned().unwrap_or(Value::Null),
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
            let (l, r) = (eval(l, row, ctx)?, eval(r, row, ctx)?);
            match l.sql_cmp(&r) {
                None if l.is_null() || r.is_null() => Value::Null,
                None => Value::Bool(matches!(op, CmpOp::Ne)),
                Some(o) => Value::Bool(match op {
                    CmpOp::Eq => o == Ordering::Equal,
                    CmpOp::Ne => o != Ordering::Equal,
                    CmpOp::Lt => o == Ordering::Less,
                    CmpOp::Gt => o == Ordering::Greater,
                    CmpOp::Le => o != Ordering::Greater,
                    CmpOp::Ge => o != Ordering::Less,
                }),
            }
        }
        BExpr::And(l, r) => match (eval(l, row, ctx)?, eval(r, row, ctx)?) {
            (Value::Bool(false), _) | (_, Value::Bool(false)) => Value::Bool(false),
            (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
            _ => Value::Null,
        },
        BExpr::Or(l, r) => match (eval(l, row, ctx)?, eval(r, row, ctx)?) {
            (Value::Bool(true), _) | (_, Value::Bool(true)) => Value::Bool(true),
            (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
            _ => Value::Null,
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
            let (v, p) = (eval(expr, row, ctx)?, eval(pattern, row, ctx)?);
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
            let v = eval(expr, row, ctx)?;
            if v.is_null() {
                return Ok(Value::Null);
            }
            let mut saw_null = false;
            let mut found = false;
            for item in list {
                let x = eval(item, row, ctx)?;
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

fn aggregate(spec: &AggSpec, rows: &[&Vec<Value>], params: &[Value]) -> Result<Value, SqlError> {
    let ctx = EvalCtx { params, aggs: &[] };
    let Some(arg) = &spec.arg else {
        return Ok(Value::Int(rows.len() as i64));
    };
    let mut vals = Vec::new();
    for r in rows {
        let v = eval(arg, r, &ctx)?;
        if !v.is_null() {
            vals.push(v);
        }
    }
    Ok(match spec.kind {
        AggKind::Count => Value::Int(vals.len() as i64),
        AggKind::Min | AggKind::Max => {
            let mut best: Option<Value> = None;
            for v in vals {
                best = match best {
                    None => Some(v),
                    Some(b) => {
                        let o = v.sql_cmp(&b).unwrap_or(Ordering::Equal);
                        let take = if spec.kind == AggKind::Min {
                            o == Ordering::Less
                        } else {
                            o == Ordering::Greater
                        };
                        Some(if take { v } else { b })
                    }
                };
            }
            best.unwrap_or(Value::Null)
        }
        AggKind::Sum | AggKind::Avg => {
            if vals.is_empty() {
                return Ok(Value::Null);
            }
            let all_int = vals.iter().all(|v| matches!(v, Value::Int(_)));
            let n = vals.len() as f64;
            let f: Vec<f64> = vals
                .iter()
                .map(|v| {
                    v.coerce(&ColType::Float8)
                        .ok()
                        .and_then(|x| match x {
                            Value::Float(f) => Some(f),
                            _ => None,
                        })
                        .unwrap_or(0.0)
                })
                .collect();
            let sum: f64 = f.iter().sum();
            match spec.kind {
                AggKind::Sum if all_int => Value::Int(
                    vals.iter()
                        .map(|v| if let Value::Int(i) = v { *i } else { 0 })
                        .sum(),
                ),
                AggKind::Sum => Value::Float(sum),
                _ => Value::Float(sum / n),
            }
        }
    })
}

/// An analyzed SELECT over one relation (or none).
#[derive(Debug, Clone)]
pub struct SelectPlan {
    pub fields: Vec<(String, ColType)>,
    pub items: Vec<BExpr>,
    pub where_: Option<BExpr>,
    pub order: Vec<(OrderKey, bool, bool)>,
    pub aggs: Vec<AggSpec>,
    pub aggregate: bool,
    pub distinct: bool,
    pub limit: Option<BExpr>,
    pub offset: Option<BExpr>,
}

#[derive(Debug, Clone)]
pub enum OrderKey {
    Output(usize),
    Expr(BExpr),
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
    let aggregate = s
        .items
        .iter()
        .any(|i| matches!(i, SelectItem::Expr { expr, .. } if expr.has_aggregate()));
    let mut fields = Vec::new();
    let mut items = Vec::new();
    for item in &s.items {
        match item {
            SelectItem::Wildcard => {
                if aggregate {
                    return Err(SqlError::illegal_argument(
                        "'*' must appear in the GROUP BY clause or be used in an aggregation function",
                    ));
                }
                for (i, (n, t)) in columns.iter().enumerate() {
                    fields.push((n.clone(), t.clone()));
                    items.push(BExpr::Col(i));
                }
            }
            SelectItem::Expr { expr, alias } => {
                if aggregate && !expr.has_aggregate() && references_columns(expr) {
                    return Err(SqlError::illegal_argument(format!(
                        "'{}' must appear in the GROUP BY clause or be used in an aggregation function",
                        expr.display_name()
                    )));
                }
                let (be, t) = b.bind(expr, true)?;
                fields.push((alias.clone().unwrap_or_else(|| expr.display_name()), t));
                items.push(be);
            }
        }
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
            Expr::Lit(Literal::Int(k)) if *k >= 1 && (*k as usize) <= fields.len() => {
                OrderKey::Output(*k as usize - 1)
            }
            Expr::Column(parts)
                if parts.len() == 1 && fields.iter().any(|(n, _)| n == &parts[0]) =>
            {
                OrderKey::Output(fields.iter().position(|(n, _)| n == &parts[0]).unwrap_or(0))
            }
            e => {
                if aggregate {
                    match fields.iter().position(|(n, _)| *n == e.display_name()) {
                        Some(i) => OrderKey::Output(i),
                        None => OrderKey::Expr(b.bind(e, true)?.0),
                    }
                } else {
                    OrderKey::Expr(b.bind(e, false)?.0)
                }
            }
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
        order,
        aggs: b.aggs,
        aggregate,
        distinct: s.distinct,
        limit,
        offset,
    })
}

fn references_columns(e: &Expr) -> bool {
    match e {
        Expr::Column(_) => true,
        Expr::Lit(_) | Expr::Param(_) => false,
        Expr::Func { args, .. } => args.iter().any(references_columns),
        Expr::Subscript(b, _) | Expr::Not(b) | Expr::Neg(b) => references_columns(b),
        Expr::Cmp(_, l, r) | Expr::And(l, r) | Expr::Or(l, r) => {
            references_columns(l) || references_columns(r)
        }
        Expr::Like { expr, pattern, .. } => references_columns(expr) || references_columns(pattern),
        Expr::InList { expr, list, .. } => {
            references_columns(expr) || list.iter().any(references_columns)
        }
        Expr::IsNull { expr, .. } => references_columns(expr),
        Expr::Object(kv) => kv.iter().any(|(_, v)| references_columns(v)),
        Expr::Array(items) => items.iter().any(references_columns),
    }
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

/// Run a planned SELECT over `rows`.
pub fn run_select(
    plan: &SelectPlan,
    rows: &[Vec<Value>],
    params: &[Value],
) -> Result<Vec<Vec<Value>>, SqlError> {
    let ctx = EvalCtx { params, aggs: &[] };
    let mut filtered: Vec<&Vec<Value>> = Vec::new();
    for r in rows {
        let keep = match &plan.where_ {
            Some(w) => eval(w, r, &ctx)?.is_true(),
            None => true,
        };
        if keep {
            filtered.push(r);
        }
    }
    let mut out: Vec<(Vec<Value>, Vec<Value>)> = Vec::new();
    if plan.aggregate {
        let aggs = plan
            .aggs
            .iter()
            .map(|a| aggregate(a, &filtered, params))
            .collect::<Result<Vec<_>, _>>()?;
        let actx = EvalCtx {
            params,
            aggs: &aggs,
        };
        let vals = plan
            .items
            .iter()
            .map(|i| eval(i, &[], &actx))
            .collect::<Result<Vec<_>, _>>()?;
        out.push((vals, Vec::new()));
    } else {
        for r in filtered {
            let vals = plan
                .items
                .iter()
                .map(|i| eval(i, r, &ctx))
                .collect::<Result<Vec<_>, _>>()?;
            let mut keys = Vec::new();
            for (k, _, _) in &plan.order {
                keys.push(match k {
                    OrderKey::Output(i) => vals[*i].clone(),
                    OrderKey::Expr(e) => eval(e, r, &ctx)?,
                });
            }
            out.push((vals, keys));
        }
    }
    if !plan.order.is_empty() && !plan.aggregate {
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
    let mut result: Vec<Vec<Value>> = out.into_iter().map(|(v, _)| v).collect();
    if plan.distinct {
        let mut seen = std::collections::HashSet::new();
        result.retain(|r| {
            seen.insert(
                serde_json::Value::Array(r.iter().map(Value::to_json).collect()).to_string(),
            )
        });
    }
    let offset = match &plan.offset {
        Some(o) => as_count(eval(o, &[], &ctx)?, "OFFSET")?,
        None => 0,
    };
    let limit = match &plan.limit {
        Some(l) => Some(as_count(eval(l, &[], &ctx)?, "LIMIT")?),
        None => None,
    };
    let result: Vec<Vec<Value>> = result
        .into_iter()
        .skip(offset)
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    Ok(result)
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
        let r = run_select(&plan, rows, params)?;
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
}
