//! Syntax tree of the modelled CrateDB statements.

/// A possibly qualified name, e.g. `"doc"."t1"` → `["doc", "t1"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QName(pub Vec<String>);

impl QName {
    pub fn display(&self) -> String {
        self.0.join(".")
    }
}

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Gt => ">",
            CmpOp::Le => "<=",
            CmpOp::Ge => ">=",
        }
    }
}

/// A subscript key: `['name']` or `[1]`.
#[derive(Debug, Clone, PartialEq)]
pub enum SubKey {
    Name(String),
    Index(i64),
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Literal),
    /// A parameter, 0-based.
    Param(usize),
    /// A column reference, possibly qualified: `sys.cluster.settings`.
    Column(Vec<String>),
    Subscript(Box<Expr>, SubKey),
    Func {
        name: String,
        args: Vec<Expr>,
        star: bool,
        /// `FILTER (WHERE cond)` of an aggregate call.
        filter: Option<Box<Expr>>,
    },
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `left op ANY(right)` (also written `SOME`): `right` is an array.
    AnyCmp {
        op: CmpOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `left || right` on text.
    Concat(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        negated: bool,
        case_insensitive: bool,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    /// `{k = v, ...}` object literal.
    Object(Vec<(String, Expr)>),
    /// `[a, b]` array literal.
    Array(Vec<Expr>),
}

fn quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Expr {
    /// The output column name CrateDB gives this expression.
    pub fn display_name(&self) -> String {
        match self {
            Expr::Lit(Literal::Null) => "NULL".into(),
            Expr::Lit(Literal::Bool(b)) => b.to_string(),
            Expr::Lit(Literal::Int(i)) => i.to_string(),
            Expr::Lit(Literal::Float(f)) => f.to_string(),
            Expr::Lit(Literal::Str(s)) => quote_str(s),
            Expr::Param(i) => format!("${}", i + 1),
            Expr::Column(parts) => parts.last().cloned().unwrap_or_default(),
            Expr::Subscript(base, key) => match key {
                SubKey::Name(n) => format!("{}[{}]", base.display_name(), quote_str(n)),
                SubKey::Index(i) => format!("{}[{}]", base.display_name(), i),
            },
            Expr::Func {
                name,
                args,
                star,
                filter,
            } => {
                let call = if *star {
                    format!("{name}(*)")
                } else {
                    let a: Vec<String> = args.iter().map(|a| a.display_name()).collect();
                    format!("{name}({})", a.join(", "))
                };
                match filter {
                    Some(f) => format!("{call} FILTER (WHERE {})", f.display_name()),
                    None => call,
                }
            }
            // OutputNameFormatter.visitArrayComparisonExpression: no parentheses (SOME is ANY)
            Expr::AnyCmp { op, left, right } => format!(
                "{} {} ANY({})",
                left.display_name(),
                op.symbol(),
                right.display_name()
            ),
            Expr::Concat(l, r) => format!("({} || {})", l.display_name(), r.display_name()),
            Expr::Cmp(op, l, r) => {
                format!(
                    "({} {} {})",
                    l.display_name(),
                    op.symbol(),
                    r.display_name()
                )
            }
            Expr::And(l, r) => format!("({} AND {})", l.display_name(), r.display_name()),
            Expr::Or(l, r) => format!("({} OR {})", l.display_name(), r.display_name()),
            Expr::Not(e) => format!("(NOT {})", e.display_name()),
            Expr::Neg(e) => format!("- {}", e.display_name()),
            Expr::Like {
                expr,
                pattern,
                negated,
                case_insensitive,
            } => format!(
                "({} {}{} {})",
                expr.display_name(),
                if *negated { "NOT " } else { "" },
                if *case_insensitive { "ILIKE" } else { "LIKE" },
                pattern.display_name()
            ),
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let l: Vec<String> = list.iter().map(|a| a.display_name()).collect();
                format!(
                    "({}{} IN ({}))",
                    expr.display_name(),
                    if *negated { " NOT" } else { "" },
                    l.join(", ")
                )
            }
            Expr::IsNull { expr, negated } => format!(
                "({} IS {}NULL)",
                expr.display_name(),
                if *negated { "NOT " } else { "" }
            ),
            Expr::Object(kv) => {
                let l: Vec<String> = kv
                    .iter()
                    .map(|(k, v)| format!("\"{k}\" = {}", v.display_name()))
                    .collect();
                format!("{{{}}}", l.join(", "))
            }
            Expr::Array(items) => {
                let l: Vec<String> = items.iter().map(|a| a.display_name()).collect();
                format!("[{}]", l.join(", "))
            }
        }
    }

    /// Whether this expression contains an aggregate function call.
    pub fn has_aggregate(&self) -> bool {
        match self {
            Expr::Func { name, args, .. } => {
                is_aggregate(name) || args.iter().any(|a| a.has_aggregate())
            }
            Expr::Lit(_) | Expr::Param(_) | Expr::Column(_) => false,
            Expr::Subscript(b, _) | Expr::Not(b) | Expr::Neg(b) => b.has_aggregate(),
            Expr::Cmp(_, l, r) | Expr::And(l, r) | Expr::Or(l, r) | Expr::Concat(l, r) => {
                l.has_aggregate() || r.has_aggregate()
            }
            Expr::AnyCmp { left, right, .. } => left.has_aggregate() || right.has_aggregate(),
            Expr::Like { expr, pattern, .. } => expr.has_aggregate() || pattern.has_aggregate(),
            Expr::InList { expr, list, .. } => {
                expr.has_aggregate() || list.iter().any(|a| a.has_aggregate())
            }
            Expr::IsNull { expr, .. } => expr.has_aggregate(),
            Expr::Object(kv) => kv.iter().any(|(_, v)| v.has_aggregate()),
            Expr::Array(items) => items.iter().any(|a| a.has_aggregate()),
        }
    }
}

/// Aggregate function names the simulator evaluates.
pub fn is_aggregate(name: &str) -> bool {
    matches!(name, "count" | "min" | "max" | "sum" | "avg")
}

#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    Wildcard,
    Expr { expr: Expr, alias: Option<String> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    pub expr: Expr,
    pub desc: bool,
    pub nulls_first: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FromRel {
    pub name: QName,
    pub alias: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub distinct: bool,
    pub items: Vec<SelectItem>,
    pub from: Option<FromRel>,
    pub where_: Option<Expr>,
    /// `GROUP BY` expressions (column references, ordinals, output aliases).
    pub group_by: Vec<Expr>,
    pub order_by: Vec<OrderItem>,
    pub limit: Option<Expr>,
    pub offset: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableWithPartition {
    pub name: QName,
    pub partition: Vec<(String, Expr)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RestoreWhat {
    All,
    Metadata,
    Tables(Vec<TableWithPartition>),
    /// Section names, upper-cased.
    Sections(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Restore {
    pub repository: String,
    pub snapshot: String,
    pub what: RestoreWhat,
    pub props: Vec<(String, Expr)>,
}

/// A modelled statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Select(Box<Select>),
    ShowTables {
        schema: Option<String>,
    },
    CreateRepository {
        name: String,
        kind: String,
        props: Vec<(String, Expr)>,
    },
    DropRepository {
        name: String,
    },
    Restore(Restore),
    SetGlobal {
        persistent: bool,
        assignments: Vec<(String, Expr)>,
    },
    ResetGlobal {
        settings: Vec<String>,
    },
    AlterTableRename {
        table: QName,
        to: QName,
    },
    DropTable {
        table: QName,
        if_exists: bool,
    },
    /// `DELETE FROM t [WHERE cond]`: modelled only where it deletes whole partitions.
    Delete {
        table: QName,
        where_: Option<Expr>,
    },
    AlterUser {
        user: String,
        props: Vec<(String, Expr)>,
    },
}

impl Statement {
    /// The first keyword, as CrateDB uses it in the PostgreSQL command tag.
    pub fn command_word(&self) -> &'static str {
        match self {
            Statement::Select(_) => "SELECT",
            Statement::ShowTables { .. } => "SHOW",
            Statement::CreateRepository { .. } => "CREATE",
            Statement::DropRepository { .. } | Statement::DropTable { .. } => "DROP",
            Statement::Delete { .. } => "DELETE",
            Statement::Restore(_) => "RESTORE",
            Statement::SetGlobal { .. } => "SET",
            Statement::ResetGlobal { .. } => "RESET",
            Statement::AlterTableRename { .. } | Statement::AlterUser { .. } => "ALTER",
        }
    }
}
