//! `when` conditions to the runtime's bytecode (`hpl_runtime::vm`). Only type-checked
//! expressions get here.

use super::Strings;
use crate::syntax::ast::{BinaryOp, Expr, ExprKind, UnaryOp};
use hpl_runtime::facts;
use hpl_runtime::vm::{iter, op};

#[derive(Default)]
pub(crate) struct CondCompiler {
    /// Macro variables in scope, innermost last.
    locals: Vec<String>,
}

/// `device.os.version` → `Some("os.version")`.
fn device_path(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Var(v) if v == "device" => Some(String::new()),
        ExprKind::Member(base, field) => {
            let base = device_path(base)?;
            Some(if base.is_empty() {
                field.text.clone()
            } else {
                format!("{base}.{}", field.text)
            })
        }
        _ => None,
    }
}

/// The `FIELD` operand of a device fact: its [`hpl_runtime::facts::DeviceFact`] byte.
fn field_id(path: &str) -> Option<u8> {
    facts::field(path).map(|f| f.fact as u8)
}

fn u32_bytes(code: &mut Vec<u8>, v: usize) {
    code.extend_from_slice(&u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes());
}

impl CondCompiler {
    pub(crate) fn compile(&mut self, e: &Expr, strings: &mut Strings) -> Vec<u8> {
        let mut code = Vec::new();
        self.locals.clear();
        self.expr(e, strings, &mut code);
        code
    }

    fn shadowed_device(&self) -> bool {
        self.locals.iter().any(|l| l == "device")
    }

    fn expr(&mut self, e: &Expr, strings: &mut Strings, code: &mut Vec<u8>) {
        match &e.kind {
            ExprKind::Bool(true) => code.push(op::TRUE),
            ExprKind::Bool(false) => code.push(op::FALSE),
            ExprKind::Null => code.push(op::NULL),
            ExprKind::Int(n) => {
                code.push(op::INT);
                code.extend_from_slice(&n.to_le_bytes());
            }
            ExprKind::Str(s) => {
                code.push(op::STR);
                u32_bytes(code, strings.intern(s) as usize);
            }
            ExprKind::List(items) => {
                for item in items {
                    self.expr(item, strings, code);
                }
                code.push(op::LIST);
                code.extend_from_slice(
                    &u16::try_from(items.len()).unwrap_or(u16::MAX).to_le_bytes(),
                );
            }
            ExprKind::Var(name) => match self.locals.iter().rev().position(|l| l == name) {
                Some(depth) => {
                    code.push(op::LOCAL);
                    code.push(depth as u8);
                }
                // `device` alone is not a value; the checker rejects it. Keep the program valid.
                None => code.push(op::NULL),
            },
            ExprKind::Member(base, field) => {
                if !self.shadowed_device() {
                    if let Some(id) = device_path(e).and_then(|p| field_id(&p)) {
                        code.push(op::FIELD);
                        code.push(id);
                        return;
                    }
                }
                self.expr(base, strings, code);
                code.push(op::MEMBER);
                u32_bytes(code, strings.intern(&field.text) as usize);
            }
            ExprKind::Index(base, index) => {
                self.expr(base, strings, code);
                self.expr(index, strings, code);
                code.push(op::INDEX);
            }
            ExprKind::Unary(o, operand) => {
                self.expr(operand, strings, code);
                code.push(match o {
                    UnaryOp::Not => op::NOT,
                    UnaryOp::Neg => op::NEG,
                });
            }
            ExprKind::Binary(BinaryOp::And, a, b) | ExprKind::Binary(BinaryOp::Or, a, b) => {
                let and = matches!(e.kind, ExprKind::Binary(BinaryOp::And, ..));
                self.expr(a, strings, code);
                let mut rhs = Vec::new();
                self.expr(b, strings, &mut rhs);
                rhs.push(if and { op::AND } else { op::OR });
                code.push(if and {
                    op::JUMP_IF_FALSE
                } else {
                    op::JUMP_IF_TRUE
                });
                u32_bytes(code, rhs.len());
                code.extend_from_slice(&rhs);
            }
            ExprKind::Binary(o, a, b) => {
                self.expr(a, strings, code);
                self.expr(b, strings, code);
                code.push(match o {
                    BinaryOp::Eq => op::EQ,
                    BinaryOp::Ne => op::NE,
                    BinaryOp::Lt => op::LT,
                    BinaryOp::Le => op::LE,
                    BinaryOp::Gt => op::GT,
                    BinaryOp::Ge => op::GE,
                    BinaryOp::In => op::IN,
                    BinaryOp::Add => op::ADD,
                    BinaryOp::Sub => op::SUB,
                    BinaryOp::Mul => op::MUL,
                    BinaryOp::Div => op::DIV,
                    BinaryOp::Rem => op::REM,
                    BinaryOp::And | BinaryOp::Or => op::AND,
                });
            }
            ExprKind::Cond(c, a, b) => {
                self.expr(c, strings, code);
                let mut then = Vec::new();
                self.expr(a, strings, &mut then);
                let mut otherwise = Vec::new();
                self.expr(b, strings, &mut otherwise);
                code.push(op::BRANCH);
                u32_bytes(code, then.len() + 5);
                u32_bytes(code, then.len() + 5 + otherwise.len());
                code.extend_from_slice(&then);
                code.push(op::JUMP);
                u32_bytes(code, otherwise.len());
                code.extend_from_slice(&otherwise);
            }
            ExprKind::Call {
                receiver,
                function,
                args,
            } => self.call(receiver.as_deref(), &function.text, args, strings, code),
        }
    }

    fn call(
        &mut self,
        receiver: Option<&Expr>,
        name: &str,
        args: &[Expr],
        strings: &mut Strings,
        code: &mut Vec<u8>,
    ) {
        match (receiver, name, args) {
            (None, "has", [arg]) => {
                if let ExprKind::Member(base, field) = &arg.kind {
                    // Fields of the device record are always present.
                    if !self.shadowed_device()
                        && device_path(arg).is_some_and(|p| field_id(&p).is_some())
                    {
                        code.push(op::TRUE);
                        return;
                    }
                    self.expr(base, strings, code);
                    code.push(op::HAS);
                    u32_bytes(code, strings.intern(&field.text) as usize);
                } else {
                    code.push(op::FALSE);
                }
            }
            (None, "size" | "version" | "string" | "int", [arg]) => {
                self.expr(arg, strings, code);
                code.push(match name {
                    "size" => op::SIZE,
                    "version" => op::VERSION,
                    "string" => op::STRING,
                    _ => op::TO_INT,
                });
            }
            (Some(recv), "size", []) => {
                self.expr(recv, strings, code);
                code.push(op::SIZE);
            }
            (Some(recv), "startsWith" | "endsWith" | "contains", [arg]) => {
                self.expr(recv, strings, code);
                self.expr(arg, strings, code);
                code.push(match name {
                    "startsWith" => op::STARTS_WITH,
                    "endsWith" => op::ENDS_WITH,
                    _ => op::CONTAINS,
                });
            }
            (Some(recv), "all" | "exists" | "exists_one" | "filter" | "map", [var, body]) => {
                self.expr(recv, strings, code);
                let ExprKind::Var(var) = &var.kind else {
                    code.push(op::NULL);
                    return;
                };
                self.locals.push(var.clone());
                let mut inner = Vec::new();
                self.expr(body, strings, &mut inner);
                inner.push(op::END);
                self.locals.pop();
                code.push(op::ITER);
                code.push(match name {
                    "all" => iter::ALL,
                    "exists" => iter::EXISTS,
                    "exists_one" => iter::EXISTS_ONE,
                    "filter" => iter::FILTER,
                    _ => iter::MAP,
                });
                u32_bytes(code, inner.len());
                code.extend_from_slice(&inner);
            }
            // Unknown calls are rejected by the checker; keep the program well-formed.
            _ => code.push(op::NULL),
        }
    }
}
