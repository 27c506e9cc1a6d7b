//! Pretty-printer: prints a [`Program`] back to text that parses to the same AST.

use super::ast::*;

fn num(v: f64) -> String {
    if v == f64::INFINITY {
        "inf".into()
    } else if v == f64::NEG_INFINITY {
        "-inf".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        // `{:?}` is the shortest representation that round-trips exactly.
        let s = format!("{v:?}");
        if s.contains('e') && !s.contains('.') {
            s.replacen('e', ".0e", 1)
        } else {
            s
        }
    }
}

/// One index position, as the parser reads it back.
pub fn index(ix: &IndexExpr) -> String {
    match ix {
        IndexExpr::Var(i) | IndexExpr::Last(i) => i.name.clone(),
        IndexExpr::Shift(i, k) => format!("{}+{}", i.name, k),
        IndexExpr::Const(v, _) => v.to_string(),
        IndexExpr::Affine { terms, offset, .. } => {
            let mut s = String::new();
            for (k, t) in terms.iter().enumerate() {
                if t.coef < 0 {
                    s.push('-');
                } else if k > 0 {
                    s.push('+');
                }
                let c = t.coef.unsigned_abs();
                if c != 1 {
                    s.push_str(&format!("{c}*"));
                }
                s.push_str(&t.var.name);
            }
            if *offset != 0 {
                s.push_str(&format!(
                    "{}{}",
                    if *offset > 0 { "+" } else { "-" },
                    offset.unsigned_abs()
                ));
            }
            s
        }
    }
}

pub fn access(a: &Access) -> String {
    if a.indices.is_empty() {
        a.tensor.name.clone()
    } else {
        let ix: Vec<String> = a.indices.iter().map(index).collect();
        format!("{}[{}]", a.tensor.name, ix.join(","))
    }
}

fn prec(e: &Expr) -> u8 {
    match e {
        Expr::Binary(BinOp::Add | BinOp::Sub, ..) => 1,
        Expr::Binary(BinOp::Mul | BinOp::Div, ..) => 2,
        Expr::Num(v, _) if *v < 0.0 => 3,
        _ => 4,
    }
}

/// Print an expression with the fewest parentheses that keep its tree.
pub fn expr(e: &Expr) -> String {
    match e {
        Expr::Num(v, _) => num(*v),
        Expr::Extent(r) => format!("size({})", r.name),
        Expr::Access(a) => access(a),
        Expr::Unary(UnOp::Neg, x, _) => {
            let s = expr(x);
            if prec(x) < 4 || matches!(**x, Expr::Num(..)) {
                format!("-({s})")
            } else {
                format!("-{s}")
            }
        }
        Expr::Unary(op, x, _) => format!("{}({})", op.name(), expr(x)),
        Expr::Binary(op @ (BinOp::Max | BinOp::Min), a, b, _) => {
            format!("{}({}, {})", op.symbol(), expr(a), expr(b))
        }
        Expr::Binary(op, a, b, _) => {
            let p = prec(e);
            let l = if prec(a) < p {
                format!("({})", expr(a))
            } else {
                expr(a)
            };
            // Left-associative: a right operand of equal precedence needs parentheses.
            let r = if prec(b) <= p {
                format!("({})", expr(b))
            } else {
                expr(b)
            };
            format!("{l} {} {r}", op.symbol())
        }
    }
}

fn einsum(e: &EinsumStmt) -> String {
    let mut s = String::new();
    if e.is_output {
        s.push_str("output ");
    }
    s.push_str(&access(&e.output));
    s.push_str(" = ");
    match &e.reduction {
        Reduction::Implicit => {}
        Reduction::Explicit(op, vars, _) => {
            let v: Vec<&str> = vars.iter().map(|v| v.name.as_str()).collect();
            s.push_str(&format!("{}[{}] ", op.name(), v.join(",")));
        }
        Reduction::TopK(v, k, _) => s.push_str(&format!("topk[{},{}] ", v.name, k)),
    }
    s.push_str(&expr(&e.expr));
    if let Some(m) = &e.mask {
        s.push_str(" where ");
        s.push_str(&access(m));
    }
    s
}

/// Print a whole program, one statement per line.
pub fn print(p: &Program) -> String {
    let mut out = String::new();
    for st in &p.stmts {
        let line = match st {
            Stmt::Input(ds) => {
                let d: Vec<String> = ds
                    .iter()
                    .map(|d| {
                        let r: Vec<&str> = d.ranks.iter().map(|r| r.name.as_str()).collect();
                        format!("{}[{}]", d.name.name, r.join(","))
                    })
                    .collect();
                format!("input {}", d.join(", "))
            }
            Stmt::Split(s) => {
                let parts: Vec<&str> = s.parts.iter().map(|r| r.name.as_str()).collect();
                format!("split {} = {}", s.rank.name, parts.join(" * "))
            }
            Stmt::Init(items) => {
                let it: Vec<String> = items
                    .iter()
                    .map(|i| format!("{} = {}", access(&i.target), num(i.value)))
                    .collect();
                format!("init {}", it.join("; "))
            }
            Stmt::Einsum(e) => einsum(e),
            Stmt::OutputDecl(names) => {
                let n: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
                format!("output {}", n.join(", "))
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}
