//! The interpreter: CEL's semantics for the supported subset. Errors are values (`&&` and `||`
//! absorb them as CEL does). It still bounds-checks every read and stops at the cost bound, so
//! even a program the verifier never saw cannot panic or loop.

use super::op::{Macro, Op};
use super::{
    read_i64, read_u16, read_u32, DeviceEnv, EvalError, Program, Strings, Value, MAX_BUILT_BYTES,
    MAX_COLLECTION, MAX_MACRO_DEPTH,
};
use crate::version::{DottedVersion, Scheme};
use std::sync::Arc;

/// Evaluates a verified program. Never panics; a malformed program yields an error value.
pub fn run(program: &Program, strings: &(impl Strings + ?Sized), env: &DeviceEnv) -> Value {
    let mut m = Machine {
        code: &program.code,
        strings,
        env,
        locals: Vec::new(),
        budget: program.cost.max(1),
        bytes_left: MAX_BUILT_BYTES,
    };
    let mut stack = Vec::with_capacity(usize::from(program.max_stack) + 1);
    match m.exec(0, program.code.len(), &mut stack) {
        Ok(()) => stack.pop().unwrap_or(Value::Error(EvalError::Malformed)),
        Err(e) => Value::Error(e),
    }
}

struct Machine<'a, S: Strings + ?Sized> {
    code: &'a [u8],
    strings: &'a S,
    env: &'a DeviceEnv,
    locals: Vec<Value>,
    budget: u64,
    /// What the condition may still build, in bytes ([`MAX_BUILT_BYTES`]): the instruction
    /// bound alone does not bound memory (each `+` of two long strings copies both).
    bytes_left: usize,
}

/// What one list element counts for in the byte budget.
const ELEMENT_BYTES: usize = std::mem::size_of::<Value>();

fn truthy(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

/// Equality as CEL defines it for the supported types; values of different types are unequal.
pub fn equals(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Error(e), _) | (_, Value::Error(e)) => Value::Error(*e),
        _ => Value::Bool(eq(a, b)),
    }
}

fn eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Double(x), Value::Double(y)) => x == y,
        (Value::Int(x), Value::Double(y)) | (Value::Double(y), Value::Int(x)) => (*x as f64) == *y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Version(x), Value::Version(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| eq(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| eq(v, w)))
        }
        _ => false,
    }
}

fn order(a: &Value, b: &Value) -> Result<std::cmp::Ordering, EvalError> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Version(x), Value::Version(y)) => Ok(x.as_ref().cmp(y.as_ref())),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        (Value::Double(x), Value::Double(y)) => x.partial_cmp(y).ok_or(EvalError::TypeMismatch),
        _ => Err(EvalError::TypeMismatch),
    }
}

impl<S: Strings + ?Sized> Machine<'_, S> {
    /// Charges what an instruction builds; past the bound the whole condition errs.
    fn charge(&mut self, bytes: usize) -> Result<(), EvalError> {
        self.bytes_left = self
            .bytes_left
            .checked_sub(bytes)
            .ok_or(EvalError::TooLarge)?;
        Ok(())
    }

    fn u32_at(&self, at: usize) -> Result<u32, EvalError> {
        read_u32(self.code, at).ok_or(EvalError::Malformed)
    }

    fn string(&self, at: usize) -> Result<Arc<str>, EvalError> {
        let i = self.u32_at(at)? as usize;
        self.strings.shared(i).ok_or(EvalError::Malformed)
    }

    fn pop(stack: &mut Vec<Value>) -> Result<Value, EvalError> {
        stack.pop().ok_or(EvalError::Malformed)
    }

    fn exec(
        &mut self,
        start: usize,
        limit: usize,
        stack: &mut Vec<Value>,
    ) -> Result<(), EvalError> {
        let mut pc = start;
        while pc < limit {
            if self.budget == 0 {
                return Err(EvalError::CostExceeded);
            }
            self.budget -= 1;
            let op = self
                .code
                .get(pc)
                .copied()
                .and_then(Op::from_u8)
                .ok_or(EvalError::Malformed)?;
            pc += 1;
            // The opcode table says how long the operands are; handlers read them at `pc`.
            let mut next = pc + op.operand_len();
            match op {
                Op::True => stack.push(Value::Bool(true)),
                Op::False => stack.push(Value::Bool(false)),
                Op::Null => stack.push(Value::Null),
                Op::Int => {
                    stack.push(Value::Int(
                        read_i64(self.code, pc).ok_or(EvalError::Malformed)?,
                    ));
                }
                Op::Str => {
                    stack.push(Value::Str(self.string(pc)?));
                }
                Op::Field => {
                    let id = *self.code.get(pc).ok_or(EvalError::Malformed)? as usize;
                    stack.push(
                        self.env
                            .fields
                            .get(id)
                            .cloned()
                            .ok_or(EvalError::Malformed)?,
                    );
                }
                Op::Member | Op::Has => {
                    let key = self.string(pc)?;
                    let base = Self::pop(stack)?;
                    let v = match base {
                        Value::Map(m) => match (op, m.get(key.as_ref())) {
                            (Op::Has, found) => Value::Bool(found.is_some()),
                            (_, Some(v)) => v.clone(),
                            (_, None) => Value::Error(EvalError::NoSuchKey),
                        },
                        Value::Error(e) => Value::Error(e),
                        _ => Value::Error(EvalError::TypeMismatch),
                    };
                    stack.push(v);
                }
                Op::Index => {
                    let index = Self::pop(stack)?;
                    let base = Self::pop(stack)?;
                    stack.push(match (base, index) {
                        (Value::Error(e), _) | (_, Value::Error(e)) => Value::Error(e),
                        (Value::List(l), Value::Int(i)) => usize::try_from(i)
                            .ok()
                            .and_then(|i| l.get(i).cloned())
                            .unwrap_or(Value::Error(EvalError::IndexOutOfRange)),
                        (Value::Map(m), Value::Str(k)) => m
                            .get(k.as_ref())
                            .cloned()
                            .unwrap_or(Value::Error(EvalError::NoSuchKey)),
                        _ => Value::Error(EvalError::TypeMismatch),
                    });
                }
                Op::Not => {
                    let v = Self::pop(stack)?;
                    stack.push(match v {
                        Value::Bool(b) => Value::Bool(!b),
                        Value::Error(e) => Value::Error(e),
                        _ => Value::Error(EvalError::TypeMismatch),
                    });
                }
                Op::Neg => {
                    let v = Self::pop(stack)?;
                    stack.push(match v {
                        Value::Int(i) => i
                            .checked_neg()
                            .map_or(Value::Error(EvalError::Overflow), Value::Int),
                        Value::Error(e) => Value::Error(e),
                        _ => Value::Error(EvalError::TypeMismatch),
                    });
                }
                Op::Eq | Op::Ne => {
                    let b = Self::pop(stack)?;
                    let a = Self::pop(stack)?;
                    let v = equals(&a, &b);
                    stack.push(match (op, v) {
                        (Op::Ne, Value::Bool(x)) => Value::Bool(!x),
                        (_, v) => v,
                    });
                }
                Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                    let b = Self::pop(stack)?;
                    let a = Self::pop(stack)?;
                    stack.push(match (&a, &b) {
                        (Value::Error(e), _) | (_, Value::Error(e)) => Value::Error(*e),
                        _ => match order(&a, &b) {
                            Ok(o) => Value::Bool(match op {
                                Op::Lt => o.is_lt(),
                                Op::Le => o.is_le(),
                                Op::Gt => o.is_gt(),
                                _ => o.is_ge(),
                            }),
                            Err(e) => Value::Error(e),
                        },
                    });
                }
                Op::In => {
                    let container = Self::pop(stack)?;
                    let elem = Self::pop(stack)?;
                    stack.push(match (&elem, &container) {
                        (Value::Error(e), _) | (_, Value::Error(e)) => Value::Error(*e),
                        (_, Value::List(l)) => Value::Bool(l.iter().any(|x| eq(x, &elem))),
                        (Value::Str(k), Value::Map(m)) => Value::Bool(m.contains_key(k.as_ref())),
                        _ => Value::Error(EvalError::TypeMismatch),
                    });
                }
                Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Rem => {
                    let b = Self::pop(stack)?;
                    let a = Self::pop(stack)?;
                    let built = match (&a, &b) {
                        (Value::Str(x), Value::Str(y)) => x.len() + y.len(),
                        (Value::List(x), Value::List(y)) => (x.len() + y.len()) * ELEMENT_BYTES,
                        _ => 0,
                    };
                    if op == Op::Add {
                        self.charge(built)?;
                    }
                    stack.push(arith(op, a, b));
                }
                Op::JumpIfFalse | Op::JumpIfTrue => {
                    let off = self.u32_at(pc)? as usize;
                    let top = stack.last().ok_or(EvalError::Malformed)?;
                    let short = (op == Op::JumpIfFalse && truthy(top) == Some(false))
                        || (op == Op::JumpIfTrue && truthy(top) == Some(true));
                    if short {
                        next = next.checked_add(off).ok_or(EvalError::Malformed)?;
                    }
                }
                Op::And | Op::Or => {
                    let b = Self::pop(stack)?;
                    let a = Self::pop(stack)?;
                    stack.push(logic(op == Op::And, a, b));
                }
                Op::Branch => {
                    let else_off = self.u32_at(pc)? as usize;
                    let end_off = self.u32_at(pc + 4)? as usize;
                    let c = Self::pop(stack)?;
                    match c {
                        Value::Bool(true) => {}
                        Value::Bool(false) => {
                            next = next.checked_add(else_off).ok_or(EvalError::Malformed)?
                        }
                        Value::Error(e) => {
                            stack.push(Value::Error(e));
                            next = next.checked_add(end_off).ok_or(EvalError::Malformed)?;
                        }
                        _ => {
                            stack.push(Value::Error(EvalError::TypeMismatch));
                            next = next.checked_add(end_off).ok_or(EvalError::Malformed)?;
                        }
                    }
                }
                Op::Jump => {
                    let off = self.u32_at(pc)? as usize;
                    next = next.checked_add(off).ok_or(EvalError::Malformed)?;
                }
                Op::Iter => {
                    let kind = self
                        .code
                        .get(pc)
                        .copied()
                        .and_then(Macro::from_u8)
                        .ok_or(EvalError::Malformed)?;
                    let len = self.u32_at(pc + 1)? as usize;
                    let body = next;
                    let body_end = body.checked_add(len).ok_or(EvalError::Malformed)?;
                    let base = Self::pop(stack)?;
                    let items: Vec<Value> = match base {
                        Value::List(l) => l.iter().take(MAX_COLLECTION).cloned().collect(),
                        Value::Map(m) => m
                            .keys()
                            .take(MAX_COLLECTION)
                            .map(|k| Value::str(k))
                            .collect(),
                        Value::Error(e) => {
                            stack.push(Value::Error(e));
                            pc = body_end;
                            continue;
                        }
                        _ => {
                            stack.push(Value::Error(EvalError::TypeMismatch));
                            pc = body_end;
                            continue;
                        }
                    };
                    let result = self.iterate(kind, &items, body, body_end)?;
                    stack.push(result);
                    next = body_end;
                }
                Op::End => return Ok(()),
                Op::Local => {
                    let d = *self.code.get(pc).ok_or(EvalError::Malformed)? as usize;
                    let i = self
                        .locals
                        .len()
                        .checked_sub(d + 1)
                        .ok_or(EvalError::Malformed)?;
                    stack.push(self.locals.get(i).cloned().ok_or(EvalError::Malformed)?);
                }
                Op::List => {
                    let n = read_u16(self.code, pc).ok_or(EvalError::Malformed)? as usize;
                    let at = stack.len().checked_sub(n).ok_or(EvalError::Malformed)?;
                    self.charge(n * ELEMENT_BYTES)?;
                    let items: Vec<Value> = stack.drain(at..).collect();
                    stack.push(
                        match items.iter().find_map(|v| {
                            if let Value::Error(e) = v {
                                Some(*e)
                            } else {
                                None
                            }
                        }) {
                            Some(e) => Value::Error(e),
                            None => Value::List(Arc::new(items)),
                        },
                    );
                }
                Op::Size => {
                    let v = Self::pop(stack)?;
                    stack.push(match v {
                        Value::Str(s) => Value::Int(s.chars().count() as i64),
                        Value::List(l) => Value::Int(l.len() as i64),
                        Value::Map(m) => Value::Int(m.len() as i64),
                        Value::Error(e) => Value::Error(e),
                        _ => Value::Error(EvalError::TypeMismatch),
                    });
                }
                Op::Version => {
                    let v = Self::pop(stack)?;
                    stack.push(match v {
                        Value::Str(s) => match DottedVersion::parse(Scheme::Dotted, &s) {
                            Ok(v) => Value::Version(Arc::new(v)),
                            Err(_) => Value::Error(EvalError::BadConversion),
                        },
                        Value::Error(e) => Value::Error(e),
                        _ => Value::Error(EvalError::TypeMismatch),
                    });
                }
                Op::String => {
                    let v = Self::pop(stack)?;
                    stack.push(match v {
                        Value::Str(s) => Value::Str(s),
                        Value::Int(i) => Value::str(&i.to_string()),
                        Value::Bool(b) => Value::str(if b { "true" } else { "false" }),
                        Value::Version(v) => Value::str(&v.to_string()),
                        Value::Error(e) => Value::Error(e),
                        _ => Value::Error(EvalError::TypeMismatch),
                    });
                }
                Op::ToInt => {
                    let v = Self::pop(stack)?;
                    stack.push(match v {
                        Value::Int(i) => Value::Int(i),
                        Value::Str(s) => s
                            .parse::<i64>()
                            .map_or(Value::Error(EvalError::BadConversion), Value::Int),
                        Value::Error(e) => Value::Error(e),
                        _ => Value::Error(EvalError::TypeMismatch),
                    });
                }
                Op::StartsWith | Op::EndsWith | Op::Contains => {
                    let arg = Self::pop(stack)?;
                    let recv = Self::pop(stack)?;
                    stack.push(match (recv, arg) {
                        (Value::Error(e), _) | (_, Value::Error(e)) => Value::Error(e),
                        (Value::Str(s), Value::Str(t)) => Value::Bool(match op {
                            Op::StartsWith => s.starts_with(t.as_ref()),
                            Op::EndsWith => s.ends_with(t.as_ref()),
                            _ => s.contains(t.as_ref()),
                        }),
                        _ => Value::Error(EvalError::TypeMismatch),
                    });
                }
            }
            pc = next;
        }
        Ok(())
    }

    fn iterate(
        &mut self,
        kind: Macro,
        items: &[Value],
        body: usize,
        body_end: usize,
    ) -> Result<Value, EvalError> {
        if self.locals.len() >= MAX_MACRO_DEPTH {
            return Err(EvalError::Malformed);
        }
        let mut out = Vec::new();
        let mut count = 0usize;
        // CEL: all/exists absorb errors if another element decides the result.
        let mut error: Option<EvalError> = None;
        for item in items {
            self.locals.push(item.clone());
            let mut stack = Vec::new();
            let r = self.exec(body, body_end, &mut stack);
            self.locals.pop();
            r?;
            let v = stack.pop().ok_or(EvalError::Malformed)?;
            match kind {
                Macro::Map => match v {
                    Value::Error(e) => return Ok(Value::Error(e)),
                    v => {
                        self.charge(ELEMENT_BYTES)?;
                        out.push(v)
                    }
                },
                _ => match v {
                    Value::Bool(b) => match kind {
                        Macro::All if !b => return Ok(Value::Bool(false)),
                        Macro::Exists if b => return Ok(Value::Bool(true)),
                        Macro::ExistsOne if b => count += 1,
                        Macro::Filter if b => {
                            self.charge(ELEMENT_BYTES)?;
                            out.push(item.clone())
                        }
                        _ => {}
                    },
                    Value::Error(e) => match kind {
                        Macro::All | Macro::Exists => error = error.or(Some(e)),
                        _ => return Ok(Value::Error(e)),
                    },
                    _ => return Ok(Value::Error(EvalError::TypeMismatch)),
                },
            }
        }
        if let Some(e) = error {
            return Ok(Value::Error(e));
        }
        Ok(match kind {
            Macro::All => Value::Bool(true),
            Macro::Exists => Value::Bool(false),
            Macro::ExistsOne => Value::Bool(count == 1),
            _ => Value::List(Arc::new(out)),
        })
    }
}

fn logic(and: bool, a: Value, b: Value) -> Value {
    let (a, b) = (truthy_or(&a), truthy_or(&b));
    match (and, a, b) {
        (true, Ok(false), _) | (true, _, Ok(false)) => Value::Bool(false),
        (false, Ok(true), _) | (false, _, Ok(true)) => Value::Bool(true),
        (_, Err(e), _) | (_, _, Err(e)) => Value::Error(e),
        (and, Ok(_), Ok(_)) => Value::Bool(and),
    }
}

fn truthy_or(v: &Value) -> Result<bool, EvalError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Error(e) => Err(*e),
        _ => Err(EvalError::TypeMismatch),
    }
}

fn arith(op: Op, a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Error(e), _) | (_, Value::Error(e)) => Value::Error(e),
        (Value::Int(x), Value::Int(y)) => {
            let r = match op {
                Op::Add => x.checked_add(y).ok_or(EvalError::Overflow),
                Op::Sub => x.checked_sub(y).ok_or(EvalError::Overflow),
                Op::Mul => x.checked_mul(y).ok_or(EvalError::Overflow),
                Op::Div if y == 0 => Err(EvalError::DivisionByZero),
                Op::Div => x.checked_div(y).ok_or(EvalError::Overflow),
                _ if y == 0 => Err(EvalError::DivisionByZero),
                _ => x.checked_rem(y).ok_or(EvalError::Overflow),
            };
            r.map_or_else(Value::Error, Value::Int)
        }
        (Value::Str(x), Value::Str(y)) if op == Op::Add => Value::str(&format!("{x}{y}")),
        (Value::List(x), Value::List(y)) if op == Op::Add => {
            let mut v = x.as_ref().clone();
            v.extend(y.iter().cloned());
            Value::List(Arc::new(v))
        }
        _ => Value::Error(EvalError::TypeMismatch),
    }
}
