//! Recursive-descent parser for the modelled CrateDB statements.

use super::ast::*;
use super::lexer::{Tok, Token, tokenize};
use crate::error::SqlError;

/// One parsed statement with its source text and parameter count.
#[derive(Debug, Clone)]
pub struct ParsedStatement {
    pub stmt: Statement,
    /// The statement's own text (without the separating `;`).
    pub text: String,
    /// Number of parameters (`max($n)` or the count of `?`).
    pub param_count: usize,
}

/// Words that can never be an unquoted column name or alias.
const RESERVED: &[&str] = &[
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "in",
    "is",
    "null",
    "true",
    "false",
    "like",
    "ilike",
    "limit",
    "offset",
    "order",
    "by",
    "as",
    "group",
    "having",
    "union",
    "join",
    "on",
    "with",
    "distinct",
    "all",
    "table",
    "create",
    "drop",
    "alter",
    "set",
    "reset",
    "restore",
    "show",
    "asc",
    "desc",
    "nulls",
    "inner",
    "left",
    "right",
    "cross",
    "full",
    "outer",
    "except",
    "intersect",
    "values",
    "into",
    "insert",
    "update",
    "delete",
    "case",
    "when",
    "then",
    "else",
    "end",
    "exists",
    "between",
    "escape",
    "using",
    "natural",
    "array",
    "cast",
];

/// Parse one or more `;`-separated statements (used by the simple query protocol).
pub fn parse_statements(sql: &str) -> Result<Vec<ParsedStatement>, SqlError> {
    let toks = tokenize(sql)?;
    let mut p = Parser::new(toks);
    let mut out = Vec::new();
    loop {
        while p.eat_sym(";") {}
        if p.at_eof() {
            break;
        }
        let start = p.peek().start;
        p.max_param = 0;
        p.qparams = 0;
        let stmt = p.statement()?;
        let end = p.prev_end();
        if !p.at_eof() && !p.check_sym(";") {
            return Err(p.mismatched("{<EOF>, ';'}"));
        }
        out.push(ParsedStatement {
            stmt,
            text: sql[start..end].to_string(),
            param_count: p.max_param.max(p.qparams),
        });
    }
    if out.is_empty() {
        return Err(SqlError::syntax(
            "line 1:1: mismatched input '<EOF>' expecting a statement",
        ));
    }
    Ok(out)
}

/// Parse exactly one statement (an optional trailing `;` is allowed).
pub fn parse_statement(sql: &str) -> Result<ParsedStatement, SqlError> {
    let mut all = parse_statements(sql)?;
    if all.len() > 1 {
        return Err(SqlError::syntax(format!(
            "line 1:1: mismatched input '{}' expecting <EOF>: only one statement is allowed here",
            all[1].text.split_whitespace().next().unwrap_or("")
        )));
    }
    Ok(all.remove(0))
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    max_param: usize,
    qparams: usize,
}

impl Parser {
    fn new(toks: Vec<Token>) -> Self {
        Parser {
            toks,
            pos: 0,
            max_param: 0,
            qparams: 0,
        }
    }

    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> &Token {
        &self.toks[(self.pos + n).min(self.toks.len() - 1)]
    }

    fn prev_end(&self) -> usize {
        if self.pos == 0 {
            0
        } else {
            self.toks[self.pos - 1].end
        }
    }

    fn advance(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn at_eof(&self) -> bool {
        matches!(self.peek().tok, Tok::Eof)
    }

    fn mismatched(&self, expecting: &str) -> SqlError {
        let t = self.peek();
        SqlError::syntax(format!(
            "line {}:{}: mismatched input '{}' expecting {}",
            t.line, t.col, t.raw, expecting
        ))
    }

    fn is_kw_tok(t: &Token, kw: &str) -> bool {
        matches!(&t.tok, Tok::Ident { text, quoted: false } if text == kw)
    }

    fn check_kw(&self, kw: &str) -> bool {
        Self::is_kw_tok(self.peek(), kw)
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.check_kw(kw) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.mismatched(&format!("'{}'", kw.to_uppercase())))
        }
    }

    fn check_sym(&self, s: &str) -> bool {
        matches!(self.peek().tok, Tok::Sym(x) if x == s)
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if self.check_sym(s) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, s: &str) -> Result<(), SqlError> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(self.mismatched(&format!("'{s}'")))
        }
    }

    /// An identifier (quoted or unquoted, unquoted must not be reserved).
    fn ident(&mut self) -> Result<String, SqlError> {
        match &self.peek().tok {
            Tok::Ident { text, quoted } if *quoted || !RESERVED.contains(&text.as_str()) => {
                let t = text.clone();
                self.advance();
                Ok(t)
            }
            _ => Err(self.mismatched("an identifier")),
        }
    }

    fn check_ident(&self) -> bool {
        matches!(&self.peek().tok, Tok::Ident { text, quoted } if *quoted || !RESERVED.contains(&text.as_str()))
    }

    /// `[AS] alias`.
    fn alias(&mut self) -> Result<Option<String>, SqlError> {
        if self.eat_kw("as") || self.check_ident() {
            Ok(Some(self.ident()?))
        } else {
            Ok(None)
        }
    }

    fn qname(&mut self) -> Result<QName, SqlError> {
        let mut parts = vec![self.ident()?];
        while self.check_sym(".") {
            self.advance();
            parts.push(self.ident()?);
        }
        Ok(QName(parts))
    }

    fn statement(&mut self) -> Result<Statement, SqlError> {
        let expected =
            "{'SELECT', 'SHOW', 'CREATE', 'DROP', 'DELETE', 'RESTORE', 'SET', 'RESET', 'ALTER'}";
        if self.check_kw("select") {
            return Ok(Statement::Select(Box::new(self.select()?)));
        }
        if self.eat_kw("show") {
            self.expect_kw("tables")?;
            let schema = if self.eat_kw("from") || self.eat_kw("in") {
                Some(self.qname()?.display())
            } else {
                None
            };
            return Ok(Statement::ShowTables { schema });
        }
        if self.eat_kw("create") {
            self.expect_kw("repository")?;
            let name = self.ident()?;
            self.expect_kw("type")?;
            let kind = self.ident()?;
            let props = self.with_properties()?;
            return Ok(Statement::CreateRepository { name, kind, props });
        }
        if self.eat_kw("drop") {
            if self.eat_kw("repository") {
                let name = self.ident()?;
                return Ok(Statement::DropRepository { name });
            }
            if self.eat_kw("table") {
                let if_exists = if self.eat_kw("if") {
                    self.expect_kw("exists")?;
                    true
                } else {
                    false
                };
                let table = self.qname()?;
                return Ok(Statement::DropTable { table, if_exists });
            }
            return Err(self.mismatched("{'REPOSITORY', 'TABLE'}"));
        }
        if self.eat_kw("delete") {
            self.expect_kw("from")?;
            let table = self.qname()?;
            let where_ = if self.eat_kw("where") {
                Some(self.expr()?)
            } else {
                None
            };
            return Ok(Statement::Delete { table, where_ });
        }
        if self.eat_kw("restore") {
            return self.restore();
        }
        if self.eat_kw("set") {
            self.expect_kw("global")?;
            let persistent = if self.eat_kw("persistent") {
                true
            } else {
                self.eat_kw("transient");
                false
            };
            let mut assignments = Vec::new();
            loop {
                let name = self.setting_name()?;
                if !(self.eat_sym("=") || self.eat_kw("to")) {
                    return Err(self.mismatched("{'=', 'TO'}"));
                }
                let value = self.expr()?;
                assignments.push((name, value));
                if !self.eat_sym(",") {
                    break;
                }
            }
            return Ok(Statement::SetGlobal {
                persistent,
                assignments,
            });
        }
        if self.eat_kw("reset") {
            self.expect_kw("global")?;
            let mut settings = vec![self.setting_name()?];
            while self.eat_sym(",") {
                settings.push(self.setting_name()?);
            }
            return Ok(Statement::ResetGlobal { settings });
        }
        if self.eat_kw("alter") {
            if self.eat_kw("table") {
                let table = self.qname()?;
                self.expect_kw("rename")?;
                self.expect_kw("to")?;
                let to = self.qname()?;
                return Ok(Statement::AlterTableRename { table, to });
            }
            if self.eat_kw("user") || self.eat_kw("role") {
                let user = self.ident()?;
                self.expect_kw("set")?;
                self.expect_sym("(")?;
                let props = self.generic_properties()?;
                self.expect_sym(")")?;
                return Ok(Statement::AlterUser { user, props });
            }
            return Err(self.mismatched("{'TABLE', 'USER', 'ROLE'}"));
        }
        Err(self.mismatched(expected))
    }

    fn setting_name(&mut self) -> Result<String, SqlError> {
        if let Tok::Str(s) = &self.peek().tok {
            let s = s.clone();
            self.advance();
            return Ok(s);
        }
        Ok(self.qname()?.display())
    }

    fn with_properties(&mut self) -> Result<Vec<(String, Expr)>, SqlError> {
        if self.eat_kw("with") {
            self.expect_sym("(")?;
            let props = self.generic_properties()?;
            self.expect_sym(")")?;
            Ok(props)
        } else {
            Ok(Vec::new())
        }
    }

    fn generic_properties(&mut self) -> Result<Vec<(String, Expr)>, SqlError> {
        let mut props = Vec::new();
        loop {
            let k = self.ident()?;
            self.expect_sym("=")?;
            let v = self.expr()?;
            props.push((k, v));
            if !self.eat_sym(",") {
                break;
            }
        }
        Ok(props)
    }

    fn restore(&mut self) -> Result<Statement, SqlError> {
        self.expect_kw("snapshot")?;
        let name = self.qname()?;
        if name.0.len() != 2 {
            return Err(SqlError::illegal_argument(
                "Snapshot name not supported, only <repository>.<snapshot> works.)",
            ));
        }
        let what = if self.eat_kw("all") {
            RestoreWhat::All
        } else if self.eat_kw("metadata") {
            RestoreWhat::Metadata
        } else if self.eat_kw("table") {
            let mut tables = Vec::new();
            loop {
                let tname = self.qname()?;
                let mut partition = Vec::new();
                if self.eat_kw("partition") {
                    self.expect_sym("(")?;
                    loop {
                        let col = self.ident()?;
                        self.expect_sym("=")?;
                        let v = self.expr()?;
                        partition.push((col, v));
                        if !self.eat_sym(",") {
                            break;
                        }
                    }
                    self.expect_sym(")")?;
                }
                tables.push(TableWithPartition {
                    name: tname,
                    partition,
                });
                if !self.eat_sym(",") {
                    break;
                }
            }
            RestoreWhat::Tables(tables)
        } else if self.check_ident() {
            let mut sections = vec![self.ident()?.to_uppercase()];
            while self.eat_sym(",") {
                sections.push(self.ident()?.to_uppercase());
            }
            RestoreWhat::Sections(sections)
        } else {
            return Err(self.mismatched("{'ALL', 'METADATA', 'TABLE', an identifier}"));
        };
        let props = self.with_properties()?;
        Ok(Statement::Restore(Restore {
            repository: name.0[0].clone(),
            snapshot: name.0[1].clone(),
            what,
            props,
        }))
    }

    fn select(&mut self) -> Result<Select, SqlError> {
        self.expect_kw("select")?;
        let distinct = self.eat_kw("distinct");
        let mut items = Vec::new();
        loop {
            if self.eat_sym("*") {
                items.push(SelectItem::Wildcard);
            } else {
                let expr = self.expr()?;
                let alias = self.alias()?;
                items.push(SelectItem::Expr { expr, alias });
            }
            if !self.eat_sym(",") {
                break;
            }
        }
        let from = if self.eat_kw("from") {
            let name = self.qname()?;
            let alias = self.alias()?;
            Some(FromRel { name, alias })
        } else {
            None
        };
        let where_ = if self.eat_kw("where") {
            Some(self.expr()?)
        } else {
            None
        };
        let mut group_by = Vec::new();
        if self.eat_kw("group") {
            self.expect_kw("by")?;
            loop {
                group_by.push(self.expr()?);
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        let mut order_by = Vec::new();
        if self.eat_kw("order") {
            self.expect_kw("by")?;
            loop {
                let expr = self.expr()?;
                let desc = if self.eat_kw("desc") {
                    true
                } else {
                    self.eat_kw("asc");
                    false
                };
                let nulls_first = if self.eat_kw("nulls") {
                    if self.eat_kw("first") {
                        Some(true)
                    } else {
                        self.expect_kw("last")?;
                        Some(false)
                    }
                } else {
                    None
                };
                order_by.push(OrderItem {
                    expr,
                    desc,
                    nulls_first,
                });
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        let mut limit = None;
        let mut offset = None;
        for _ in 0..2 {
            if limit.is_none() && self.eat_kw("limit") {
                limit = Some(self.primary()?);
            } else if offset.is_none() && self.eat_kw("offset") {
                offset = Some(self.primary()?);
            }
        }
        Ok(Select {
            distinct,
            items,
            from,
            where_,
            group_by,
            order_by,
            limit,
            offset,
        })
    }

    fn expr(&mut self) -> Result<Expr, SqlError> {
        let mut l = self.and_expr()?;
        while self.eat_kw("or") {
            let r = self.and_expr()?;
            l = Expr::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn and_expr(&mut self) -> Result<Expr, SqlError> {
        let mut l = self.not_expr()?;
        while self.eat_kw("and") {
            let r = self.not_expr()?;
            l = Expr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn not_expr(&mut self) -> Result<Expr, SqlError> {
        if self.eat_kw("not") {
            let e = self.not_expr()?;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, SqlError> {
        let l = self.value_expr()?;
        let op = match &self.peek().tok {
            Tok::Sym("=") => Some(CmpOp::Eq),
            Tok::Sym("<>") | Tok::Sym("!=") => Some(CmpOp::Ne),
            Tok::Sym("<") => Some(CmpOp::Lt),
            Tok::Sym(">") => Some(CmpOp::Gt),
            Tok::Sym("<=") => Some(CmpOp::Le),
            Tok::Sym(">=") => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.advance();
            // `op ANY (array)` / `op SOME (array)` (CrateDB's setCmpQuantifier with a
            // primaryExpression); `ALL` is not modelled and fails as an expression.
            if (self.check_kw("any") || self.check_kw("some"))
                && matches!(self.peek_at(1).tok, Tok::Sym("("))
            {
                self.advance();
                let r = self.postfix_expr()?;
                return Ok(Expr::AnyCmp {
                    op,
                    left: Box::new(l),
                    right: Box::new(r),
                });
            }
            let r = self.value_expr()?;
            return Ok(Expr::Cmp(op, Box::new(l), Box::new(r)));
        }
        let negated = if self.check_kw("not")
            && (Self::is_kw_tok(self.peek_at(1), "like")
                || Self::is_kw_tok(self.peek_at(1), "ilike")
                || Self::is_kw_tok(self.peek_at(1), "in"))
        {
            self.advance();
            true
        } else {
            false
        };
        if self.check_kw("like") || self.check_kw("ilike") {
            let case_insensitive = self.check_kw("ilike");
            self.advance();
            let pattern = self.value_expr()?;
            return Ok(Expr::Like {
                expr: Box::new(l),
                pattern: Box::new(pattern),
                negated,
                case_insensitive,
            });
        }
        if self.eat_kw("in") {
            self.expect_sym("(")?;
            let mut list = vec![self.expr()?];
            while self.eat_sym(",") {
                list.push(self.expr()?);
            }
            self.expect_sym(")")?;
            return Ok(Expr::InList {
                expr: Box::new(l),
                list,
                negated,
            });
        }
        if negated {
            return Err(self.mismatched("{'LIKE', 'ILIKE', 'IN'}"));
        }
        if self.eat_kw("is") {
            let negated = self.eat_kw("not");
            self.expect_kw("null")?;
            return Ok(Expr::IsNull {
                expr: Box::new(l),
                negated,
            });
        }
        Ok(l)
    }

    /// A value expression: operands joined by `||` (left-associative; CrateDB binds it looser
    /// than arithmetic and tighter than comparisons).
    fn value_expr(&mut self) -> Result<Expr, SqlError> {
        let mut e = self.unary_expr()?;
        while self.eat_sym("||") {
            let r = self.unary_expr()?;
            e = Expr::Concat(Box::new(e), Box::new(r));
        }
        if self.check_sym("::") {
            return Err(self.mismatched("an operator the simulator models"));
        }
        Ok(e)
    }

    fn unary_expr(&mut self) -> Result<Expr, SqlError> {
        if self.eat_sym("-") {
            let e = self.unary_expr()?;
            return Ok(match e {
                Expr::Lit(Literal::Int(i)) => Expr::Lit(Literal::Int(-i)),
                Expr::Lit(Literal::Float(f)) => Expr::Lit(Literal::Float(-f)),
                other => Expr::Neg(Box::new(other)),
            });
        }
        self.postfix_expr()
    }

    /// A primary expression with subscripts.
    fn postfix_expr(&mut self) -> Result<Expr, SqlError> {
        let mut e = self.primary()?;
        while self.check_sym("[") {
            self.advance();
            let key = match self.advance().tok {
                Tok::Str(s) => SubKey::Name(s),
                Tok::Num(n) => SubKey::Index(n.parse().map_err(|_| {
                    SqlError::syntax(format!("line 1:1: invalid subscript index '{n}'"))
                })?),
                _ => {
                    self.pos -= 1;
                    return Err(self.mismatched("a string or integer subscript"));
                }
            };
            self.expect_sym("]")?;
            e = Expr::Subscript(Box::new(e), key);
        }
        if self.check_sym("::") {
            return Err(self.mismatched("an operator the simulator models"));
        }
        Ok(e)
    }

    /// `[a, b]` after its opening bracket was consumed.
    fn array_items(&mut self) -> Result<Expr, SqlError> {
        let mut items = Vec::new();
        if !self.check_sym("]") {
            loop {
                items.push(self.expr()?);
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        self.expect_sym("]")?;
        Ok(Expr::Array(items))
    }

    fn primary(&mut self) -> Result<Expr, SqlError> {
        let t = self.peek().clone();
        match &t.tok {
            Tok::Str(s) => {
                self.advance();
                Ok(Expr::Lit(Literal::Str(s.clone())))
            }
            Tok::Num(n) => {
                self.advance();
                if let Ok(i) = n.parse::<i64>() {
                    Ok(Expr::Lit(Literal::Int(i)))
                } else if let Ok(f) = n.parse::<f64>() {
                    Ok(Expr::Lit(Literal::Float(f)))
                } else {
                    Err(SqlError::syntax(format!(
                        "line {}:{}: invalid numeric literal '{}'",
                        t.line, t.col, n
                    )))
                }
            }
            Tok::Param(n) => {
                let n = *n;
                self.advance();
                self.max_param = self.max_param.max(n);
                Ok(Expr::Param(n - 1))
            }
            Tok::QParam => {
                self.advance();
                self.qparams += 1;
                Ok(Expr::Param(self.qparams - 1))
            }
            Tok::Sym("(") => {
                self.advance();
                if self.check_kw("select") {
                    return Err(self.mismatched("an expression (sub-queries are not modelled)"));
                }
                let e = self.expr()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Tok::Sym("{") => {
                self.advance();
                let mut kv = Vec::new();
                if !self.check_sym("}") {
                    loop {
                        let k = self.ident()?;
                        self.expect_sym("=")?;
                        let v = self.expr()?;
                        kv.push((k, v));
                        if !self.eat_sym(",") {
                            break;
                        }
                    }
                }
                self.expect_sym("}")?;
                Ok(Expr::Object(kv))
            }
            Tok::Sym("[") => {
                self.advance();
                self.array_items()
            }
            Tok::Ident {
                text,
                quoted: false,
            } if text == "array" && matches!(self.peek_at(1).tok, Tok::Sym("[")) => {
                self.advance();
                self.advance();
                self.array_items()
            }
            Tok::Ident {
                text,
                quoted: false,
            } if text == "null" => {
                self.advance();
                Ok(Expr::Lit(Literal::Null))
            }
            Tok::Ident {
                text,
                quoted: false,
            } if text == "true" || text == "false" => {
                self.advance();
                Ok(Expr::Lit(Literal::Bool(text == "true")))
            }
            Tok::Ident { text, quoted } => {
                if !*quoted && RESERVED.contains(&text.as_str()) {
                    return Err(self.mismatched("an expression"));
                }
                let name = text.clone();
                self.advance();
                if !*quoted && self.check_sym("(") {
                    self.advance();
                    let mut args = Vec::new();
                    let mut star = false;
                    if self.eat_sym("*") {
                        star = true;
                    } else if !self.check_sym(")") {
                        if self.check_kw("distinct") {
                            return Err(self.mismatched(
                                "an expression (DISTINCT aggregates are not modelled)",
                            ));
                        }
                        loop {
                            args.push(self.expr()?);
                            if !self.eat_sym(",") {
                                break;
                            }
                        }
                    }
                    self.expect_sym(")")?;
                    let mut filter = None;
                    if self.check_kw("filter") && matches!(self.peek_at(1).tok, Tok::Sym("(")) {
                        self.advance();
                        self.advance();
                        self.expect_kw("where")?;
                        filter = Some(Box::new(self.expr()?));
                        self.expect_sym(")")?;
                    }
                    return Ok(Expr::Func {
                        name,
                        args,
                        star,
                        filter,
                    });
                }
                let mut parts = vec![name];
                while self.check_sym(".") {
                    self.advance();
                    parts.push(self.ident()?);
                }
                Ok(Expr::Column(parts))
            }
            _ => Err(self.mismatched("an expression")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Statement {
        parse_statement(sql).unwrap().stmt
    }

    #[test]
    fn parses_the_products_restore_poll() {
        let p = parse_statement(
            "SELECT 1 FROM sys.snapshot_restore WHERE name='snap' AND state NOT IN ('SUCCESS', 'FAILURE') LIMIT 1;",
        )
        .unwrap();
        let Statement::Select(s) = p.stmt else {
            panic!("not a select")
        };
        assert_eq!(
            s.from.unwrap().name,
            QName(vec!["sys".into(), "snapshot_restore".into()])
        );
        assert!(matches!(s.where_, Some(Expr::And(_, _))));
        assert_eq!(s.limit, Some(Expr::Lit(Literal::Int(1))));
        assert_eq!(p.param_count, 0);
    }

    #[test]
    fn parses_subscripts_aggregates_and_names() {
        let Statement::Select(s) = one(
            "SELECT min(recovery['size']['percent']) FROM sys.shards where state='RECOVERING' and recovery['type']='SNAPSHOT'",
        ) else {
            panic!()
        };
        let SelectItem::Expr { expr, .. } = &s.items[0] else {
            panic!()
        };
        assert_eq!(expr.display_name(), "min(recovery['size']['percent'])");
        assert!(expr.has_aggregate());
    }

    #[test]
    fn parses_restore_variants() {
        let Statement::Restore(r) = one(
            r#"RESTORE SNAPSHOT "repo"."sn""ap" TABLE "doc"."t1", t2 PARTITION (day = 1, "k" = 'x') with (wait_for_completion=false)"#,
        ) else {
            panic!()
        };
        assert_eq!(r.repository, "repo");
        assert_eq!(r.snapshot, "sn\"ap");
        let RestoreWhat::Tables(t) = r.what else {
            panic!()
        };
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].partition.len(), 2);
        assert_eq!(r.props[0].0, "wait_for_completion");

        let Statement::Restore(r) = one("RESTORE SNAPSHOT r.s tables, Users , usermanagement")
        else {
            panic!()
        };
        assert_eq!(
            r.what,
            RestoreWhat::Sections(vec![
                "TABLES".into(),
                "USERS".into(),
                "USERMANAGEMENT".into()
            ])
        );
        assert!(matches!(
            one("restore snapshot r.s METADATA"),
            Statement::Restore(Restore {
                what: RestoreWhat::Metadata,
                ..
            })
        ));
    }

    #[test]
    fn parses_ddl_and_settings() {
        assert!(matches!(
            one("CREATE REPOSITORY \"r\" TYPE s3 WITH (max_restore_bytes_per_sec = $1, readonly = $2, access_key = $3)"),
            Statement::CreateRepository { props, .. } if props.len() == 3
        ));
        let p = parse_statement("SET GLOBAL PERSISTENT \"indices.recovery.max_bytes_per_sec\" = $1, cluster.routing.allocation.enable = 'all'").unwrap();
        assert_eq!(p.param_count, 1);
        let Statement::SetGlobal {
            persistent,
            assignments,
        } = p.stmt
        else {
            panic!()
        };
        assert!(persistent);
        assert_eq!(assignments[1].0, "cluster.routing.allocation.enable");
        assert!(matches!(
            one(r#"ALTER USER "u" SET (jwt = {"iss" = 'https://x', "username" = 'u', "aud" = 'c'})"#),
            Statement::AlterUser { props, .. } if matches!(&props[0].1, Expr::Object(kv) if kv.len() == 3)
        ));
        assert!(matches!(
            one("DROP TABLE IF EXISTS \"gc\".\"t_temp\";"),
            Statement::DropTable {
                if_exists: true,
                ..
            }
        ));
        assert!(matches!(
            one("RESET GLOBAL cluster.routing.allocation.enable"),
            Statement::ResetGlobal { .. }
        ));
        assert!(
            matches!(one("SHOW TABLES FROM \"gc\";"), Statement::ShowTables { schema: Some(s) } if s == "gc")
        );
    }

    #[test]
    fn rejects_unmodelled_sql_with_crate_style_message() {
        let e = parse_statement("INSERT INTO t VALUES (1)").unwrap_err();
        assert_eq!(e.sqlstate, "42601");
        assert!(
            e.message.starts_with("line 1:1: mismatched input 'INSERT'"),
            "{}",
            e.message
        );
        let e = parse_statement("SELECT * FROM a JOIN b ON a.x = b.x").unwrap_err();
        assert!(
            e.message.contains("mismatched input 'JOIN'"),
            "{}",
            e.message
        );
    }

    #[test]
    fn splits_multiple_statements() {
        let all = parse_statements("SELECT 1; SELECT $2 ;").unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].text, "SELECT $2");
        assert_eq!(all[1].param_count, 2);
    }

    #[test]
    fn parses_any_concat_filter_group_by_and_delete() {
        let Statement::Select(s) = one(
            "SELECT schema_name, count(*) FILTER (WHERE state <> 'STARTED') AS n FROM sys.shards \
             WHERE schema_name || '.' || table_name = ANY($1) AND id = SOME(ARRAY[1, 2]) \
             GROUP BY schema_name, 1 ORDER BY n",
        ) else {
            panic!()
        };
        let SelectItem::Expr { expr, alias } = &s.items[1] else {
            panic!()
        };
        assert_eq!(alias.as_deref(), Some("n"));
        assert_eq!(
            expr.display_name(),
            "count(*) FILTER (WHERE (state <> 'STARTED'))"
        );
        let Some(Expr::And(l, r)) = &s.where_ else {
            panic!()
        };
        assert_eq!(
            l.display_name(),
            "((schema_name || '.') || table_name) = ANY($1)"
        );
        assert!(
            matches!(r.as_ref(), Expr::AnyCmp { right, .. } if matches!(right.as_ref(), Expr::Array(a) if a.len() == 2))
        );
        assert_eq!(s.group_by.len(), 2);
        // `||` binds tighter than comparisons and `-`-less operands
        let Statement::Select(s) = one("SELECT 'a' || 'b' = 'ab'") else {
            panic!()
        };
        let SelectItem::Expr { expr, .. } = &s.items[0] else {
            panic!()
        };
        assert!(
            matches!(expr, Expr::Cmp(CmpOp::Eq, l, _) if matches!(l.as_ref(), Expr::Concat(..)))
        );
        // `filter` without a parenthesis is an alias
        let Statement::Select(s) = one("SELECT count(*) filter FROM sys.shards") else {
            panic!()
        };
        assert!(matches!(&s.items[0], SelectItem::Expr { alias: Some(a), .. } if a == "filter"));
        assert!(matches!(
            one("DELETE FROM parted WHERE day = $1"),
            Statement::Delete {
                where_: Some(_),
                ..
            }
        ));
        assert!(matches!(
            one("delete from \"gc\".\"t\""),
            Statement::Delete { where_: None, table } if table.0.len() == 2
        ));
        // ALL comparisons, casts and sub-queries stay outside the model
        for sql in [
            "SELECT 1 = ALL([1])",
            "SELECT 'a'::text",
            "SELECT 1 = ANY(SELECT 1)",
            "SELECT count(*) FROM t GROUP BY x HAVING count(*) > 1",
        ] {
            let e = parse_statement(sql).unwrap_err();
            assert_eq!(e.sqlstate, "42601", "{sql}: {e:?}");
        }
    }
}
