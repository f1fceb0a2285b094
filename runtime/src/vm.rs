//! The condition VM: a small stack machine for `when` conditions, with CEL's semantics for
//! the supported subset (errors are values; `&&` and `||` absorb them as CEL does).
//!
//! Safety comes from the verifier ([`verify`]), which every condition passes at load time:
//! instructions decode, indices are in range, jumps go forward and stay in bounds, the stack
//! depth is the same on every path and statically bounded, operand kinds are consistent, and
//! the cost (instructions executed, loops included) is statically bounded. The interpreter
//! still checks everything it relies on, so even an unverified program cannot panic.

use crate::facts::DEVICE_FIELDS;
use crate::version::{DottedVersion, Scheme};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Longest list or map a condition may iterate (the inventory parser enforces it), which is
/// what makes the cost of a macro statically bounded.
pub const MAX_COLLECTION: usize = 1024;
/// Deepest nesting of macros.
pub const MAX_MACRO_DEPTH: usize = 4;
/// Longest condition program in bytes.
pub const MAX_CODE: usize = 64 * 1024;

/// Opcodes. Operands follow in little-endian.
pub mod op {
    pub const TRUE: u8 = 0x01;
    pub const FALSE: u8 = 0x02;
    pub const NULL: u8 = 0x03;
    /// i64
    pub const INT: u8 = 0x04;
    /// u32 string index
    pub const STR: u8 = 0x05;
    /// u8 device field id (index in `facts::DEVICE_FIELDS`)
    pub const FIELD: u8 = 0x06;
    /// u32 string index: `map.key`
    pub const MEMBER: u8 = 0x07;
    pub const INDEX: u8 = 0x08;
    /// u32 string index: `has(map.key)`
    pub const HAS: u8 = 0x09;
    pub const NOT: u8 = 0x0A;
    pub const NEG: u8 = 0x0B;
    pub const EQ: u8 = 0x10;
    pub const NE: u8 = 0x11;
    pub const LT: u8 = 0x12;
    pub const LE: u8 = 0x13;
    pub const GT: u8 = 0x14;
    pub const GE: u8 = 0x15;
    pub const IN: u8 = 0x16;
    pub const ADD: u8 = 0x17;
    pub const SUB: u8 = 0x18;
    pub const MUL: u8 = 0x19;
    pub const DIV: u8 = 0x1A;
    pub const REM: u8 = 0x1B;
    /// u32 forward offset: if the top is `false`, jump (keeping it); else fall through.
    pub const JUMP_IF_FALSE: u8 = 0x20;
    /// u32 forward offset: if the top is `true`, jump (keeping it).
    pub const JUMP_IF_TRUE: u8 = 0x21;
    /// Combines `a && b` (a is true or an error here).
    pub const AND: u8 = 0x22;
    /// Combines `a || b` (a is false or an error here).
    pub const OR: u8 = 0x23;
    /// u32 else offset, u32 end offset: pops the condition of `?:`.
    pub const BRANCH: u8 = 0x24;
    /// u32 forward offset.
    pub const JUMP: u8 = 0x25;
    /// u8 macro kind, u32 body length: pops a list (or map: its keys), runs the body per element.
    pub const ITER: u8 = 0x26;
    /// u8 depth (0 = innermost macro variable)
    pub const LOCAL: u8 = 0x27;
    /// u16 element count
    pub const LIST: u8 = 0x28;
    pub const SIZE: u8 = 0x30;
    pub const VERSION: u8 = 0x31;
    pub const STRING: u8 = 0x32;
    pub const TO_INT: u8 = 0x33;
    pub const STARTS_WITH: u8 = 0x34;
    pub const ENDS_WITH: u8 = 0x35;
    pub const CONTAINS: u8 = 0x36;
    /// Marks the end of a macro body (the body's result is on the stack).
    pub const END: u8 = 0x3F;
}

/// The macro kinds of `ITER`.
pub mod iter {
    pub const ALL: u8 = 0;
    pub const EXISTS: u8 = 1;
    pub const EXISTS_ONE: u8 = 2;
    pub const FILTER: u8 = 3;
    pub const MAP: u8 = 4;
}

/// Why a condition has no value. Rules whose condition errs are `unknown`, never applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalError {
    NoSuchKey,
    IndexOutOfRange,
    TypeMismatch,
    Overflow,
    DivisionByZero,
    BadConversion,
    /// The static cost bound was exceeded (cannot happen for a verified program).
    CostExceeded,
    /// The program is malformed (cannot happen for a verified program).
    Malformed,
}

impl EvalError {
    pub fn as_str(self) -> &'static str {
        match self {
            EvalError::NoSuchKey => "no such key",
            EvalError::IndexOutOfRange => "index out of range",
            EvalError::TypeMismatch => "no such overload",
            EvalError::Overflow => "integer overflow",
            EvalError::DivisionByZero => "division by zero",
            EvalError::BadConversion => "invalid conversion",
            EvalError::CostExceeded => "cost bound exceeded",
            EvalError::Malformed => "malformed program",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(Arc<str>),
    Version(Arc<DottedVersion>),
    List(Arc<Vec<Value>>),
    Map(Arc<BTreeMap<String, Value>>),
    Error(EvalError),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }

    /// From inventory JSON (bounded: longer collections and deeper nesting are cut by the
    /// inventory parser before they get here).
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::str(s),
            serde_json::Value::Array(a) => Value::List(Arc::new(
                a.iter()
                    .take(MAX_COLLECTION)
                    .map(Value::from_json)
                    .collect(),
            )),
            serde_json::Value::Object(o) => Value::Map(Arc::new(
                o.iter()
                    .take(MAX_COLLECTION)
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            )),
        }
    }
}

/// The device as conditions see it: one value per `facts::DEVICE_FIELDS` entry.
#[derive(Debug, Clone)]
pub struct DeviceEnv {
    pub fields: Vec<Value>,
}

/// A verified condition program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    code: Vec<u8>,
    max_stack: u16,
    cost: u64,
}

impl Program {
    pub fn code(&self) -> &[u8] {
        &self.code
    }
    pub fn max_stack(&self) -> u16 {
        self.max_stack
    }
    pub fn cost(&self) -> u64 {
        self.cost
    }
}

/// Why the verifier rejected a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    pub offset: usize,
    pub reason: &'static str,
}

/// Static kinds for the verifier's operand check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Str,
    Version,
    List,
    Map,
    Null,
    Dyn,
}

impl Kind {
    fn fits(self, want: Kind) -> bool {
        self == want || self == Kind::Dyn || want == Kind::Dyn
    }
}

fn field_kind(id: usize) -> Kind {
    use crate::facts::FactType as F;
    match DEVICE_FIELDS.get(id).map(|f| (f.ty)()) {
        Some(F::String) => Kind::Str,
        Some(F::List(_)) => Kind::List,
        Some(F::Map(_)) => Kind::Map,
        Some(F::Bool) => Kind::Bool,
        Some(F::Int) => Kind::Int,
        _ => Kind::Dyn,
    }
}

struct Verifier<'a> {
    code: &'a [u8],
    strings: usize,
    max_stack: usize,
}

fn read_u32(code: &[u8], at: usize) -> Option<u32> {
    code.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u16(code: &[u8], at: usize) -> Option<u16> {
    code.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn read_i64(code: &[u8], at: usize) -> Option<i64> {
    let b = code.get(at..at + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(i64::from_le_bytes(a))
}

/// Verifies a condition program against a string table of `strings` entries and returns it
/// with its recomputed stack bound and cost.
pub fn verify(code: &[u8], strings: usize) -> Result<Program, VerifyError> {
    if code.len() > MAX_CODE {
        return Err(VerifyError {
            offset: 0,
            reason: "program too long",
        });
    }
    let mut v = Verifier {
        code,
        strings,
        max_stack: 0,
    };
    let mut stack = Vec::new();
    let (end, cost) = v.block(0, code.len(), &mut stack, 0)?;
    if end != code.len() {
        return Err(VerifyError {
            offset: end,
            reason: "trailing bytes",
        });
    }
    if stack.len() != 1 {
        return Err(VerifyError {
            offset: end,
            reason: "a condition leaves exactly one value",
        });
    }
    if !stack[0].fits(Kind::Bool) {
        return Err(VerifyError {
            offset: end,
            reason: "a condition is a bool",
        });
    }
    Ok(Program {
        code: code.to_vec(),
        max_stack: u16::try_from(v.max_stack).unwrap_or(u16::MAX),
        cost,
    })
}

impl Verifier<'_> {
    fn err<T>(&self, offset: usize, reason: &'static str) -> Result<T, VerifyError> {
        Err(VerifyError { offset, reason })
    }

    fn pop(&self, stack: &mut Vec<Kind>, at: usize, want: Kind) -> Result<Kind, VerifyError> {
        match stack.pop() {
            Some(k) if k.fits(want) => Ok(k),
            Some(_) => self.err(at, "operand of the wrong kind"),
            None => self.err(at, "stack underflow"),
        }
    }

    fn push(&mut self, stack: &mut Vec<Kind>, k: Kind, at: usize) -> Result<(), VerifyError> {
        stack.push(k);
        self.max_stack = self.max_stack.max(stack.len());
        if self.max_stack > 256 {
            return self.err(at, "stack too deep");
        }
        Ok(())
    }

    fn string(&self, at: usize) -> Result<u32, VerifyError> {
        match read_u32(self.code, at) {
            Some(i) if (i as usize) < self.strings => Ok(i),
            Some(_) => self.err(at, "string index out of range"),
            None => self.err(at, "truncated operand"),
        }
    }

    fn target(&self, at: usize, operand_end: usize, limit: usize) -> Result<usize, VerifyError> {
        let off = read_u32(self.code, at).ok_or(VerifyError {
            offset: at,
            reason: "truncated operand",
        })? as usize;
        let target = operand_end.checked_add(off).ok_or(VerifyError {
            offset: at,
            reason: "jump out of range",
        })?;
        if target > limit {
            return self.err(at, "jump out of range");
        }
        Ok(target)
    }

    /// Verifies `code[start..limit]` as straight-line code with forward jumps; returns where it
    /// ended (at `limit` or at an `END` for macro bodies) and its worst-case cost.
    fn block(
        &mut self,
        start: usize,
        limit: usize,
        stack: &mut Vec<Kind>,
        depth: usize,
    ) -> Result<(usize, u64), VerifyError> {
        let mut pc = start;
        let mut cost: u64 = 0;
        while pc < limit {
            let at = pc;
            let opcode = self.code[pc];
            pc += 1;
            cost = cost.saturating_add(1);
            match opcode {
                op::TRUE | op::FALSE => self.push(stack, Kind::Bool, at)?,
                op::NULL => self.push(stack, Kind::Null, at)?,
                op::INT => {
                    read_i64(self.code, pc).ok_or(VerifyError {
                        offset: at,
                        reason: "truncated operand",
                    })?;
                    pc += 8;
                    self.push(stack, Kind::Int, at)?;
                }
                op::STR => {
                    self.string(pc)?;
                    pc += 4;
                    self.push(stack, Kind::Str, at)?;
                }
                op::FIELD => {
                    let id = *self.code.get(pc).ok_or(VerifyError {
                        offset: at,
                        reason: "truncated operand",
                    })? as usize;
                    if id >= DEVICE_FIELDS.len() {
                        return self.err(at, "unknown device field");
                    }
                    pc += 1;
                    self.push(stack, field_kind(id), at)?;
                }
                op::MEMBER | op::HAS => {
                    self.string(pc)?;
                    pc += 4;
                    self.pop(stack, at, Kind::Map)?;
                    self.push(
                        stack,
                        if opcode == op::HAS {
                            Kind::Bool
                        } else {
                            Kind::Dyn
                        },
                        at,
                    )?;
                }
                op::INDEX => {
                    self.pop(stack, at, Kind::Dyn)?;
                    let base = self.pop(stack, at, Kind::Dyn)?;
                    if !matches!(base, Kind::List | Kind::Map | Kind::Dyn) {
                        return self.err(at, "only lists and maps can be indexed");
                    }
                    self.push(stack, Kind::Dyn, at)?;
                }
                op::NOT => {
                    self.pop(stack, at, Kind::Bool)?;
                    self.push(stack, Kind::Bool, at)?;
                }
                op::NEG => {
                    self.pop(stack, at, Kind::Int)?;
                    self.push(stack, Kind::Int, at)?;
                }
                op::EQ | op::NE | op::LT | op::LE | op::GT | op::GE | op::IN => {
                    self.pop(stack, at, Kind::Dyn)?;
                    self.pop(stack, at, Kind::Dyn)?;
                    self.push(stack, Kind::Bool, at)?;
                }
                op::ADD => {
                    let b = self.pop(stack, at, Kind::Dyn)?;
                    let a = self.pop(stack, at, Kind::Dyn)?;
                    let k = if a == Kind::Dyn { b } else { a };
                    self.push(stack, k, at)?;
                }
                op::SUB | op::MUL | op::DIV | op::REM => {
                    self.pop(stack, at, Kind::Int)?;
                    self.pop(stack, at, Kind::Int)?;
                    self.push(stack, Kind::Int, at)?;
                }
                op::JUMP_IF_FALSE | op::JUMP_IF_TRUE => {
                    // `a JUMP_IF L; b AND|OR; L:` — verify the skipped part as a unit.
                    let target = self.target(pc, pc + 4, limit)?;
                    pc += 4;
                    self.pop(stack, at, Kind::Bool)?;
                    self.push(stack, Kind::Bool, at)?;
                    let before = stack.len();
                    let (end, inner) = self.block(pc, target, stack, depth)?;
                    if end != target || stack.len() != before {
                        return self.err(at, "unbalanced short-circuit operand");
                    }
                    let combine_at = target.checked_sub(1).ok_or(VerifyError {
                        offset: at,
                        reason: "jump out of range",
                    })?;
                    let want = if opcode == op::JUMP_IF_FALSE {
                        op::AND
                    } else {
                        op::OR
                    };
                    if combine_at < pc || self.code[combine_at] != want {
                        return self.err(at, "short-circuit jump must land after its AND/OR");
                    }
                    // The block already popped both and pushed the combined bool.
                    cost = cost.saturating_add(inner);
                    pc = target;
                }
                op::AND | op::OR => {
                    self.pop(stack, at, Kind::Bool)?;
                    self.pop(stack, at, Kind::Bool)?;
                    self.push(stack, Kind::Bool, at)?;
                }
                op::BRANCH => {
                    let else_at = self.target(pc, pc + 8, limit)?;
                    let end_at = self.target(pc + 4, pc + 8, limit)?;
                    pc += 8;
                    self.pop(stack, at, Kind::Bool)?;
                    let before = stack.len();
                    // then-part: [pc, else_at) ends with a JUMP to end_at
                    if else_at < pc + 5 || end_at < else_at {
                        return self.err(at, "malformed branch");
                    }
                    let mut then_stack = stack.clone();
                    let (e1, c1) = self.block(pc, else_at - 5, &mut then_stack, depth)?;
                    if e1 != else_at - 5
                        || self.code[e1] != op::JUMP
                        || read_u32(self.code, e1 + 1).map(|o| e1 + 5 + o as usize) != Some(end_at)
                    {
                        return self.err(at, "branch must jump to its end");
                    }
                    let mut else_stack = stack.clone();
                    let (e2, c2) = self.block(else_at, end_at, &mut else_stack, depth)?;
                    if e2 != end_at
                        || then_stack.len() != before + 1
                        || else_stack.len() != before + 1
                    {
                        return self.err(at, "branches leave different stacks");
                    }
                    let (a, b) = (then_stack[before], else_stack[before]);
                    stack.push(if a == b { a } else { Kind::Dyn });
                    cost = cost.saturating_add(c1.max(c2)).saturating_add(1);
                    pc = end_at;
                }
                op::JUMP => return self.err(at, "a jump outside a branch"),
                op::ITER => {
                    let kind = *self.code.get(pc).ok_or(VerifyError {
                        offset: at,
                        reason: "truncated operand",
                    })?;
                    if kind > iter::MAP {
                        return self.err(at, "unknown macro");
                    }
                    let len = read_u32(self.code, pc + 1).ok_or(VerifyError {
                        offset: at,
                        reason: "truncated operand",
                    })? as usize;
                    pc += 5;
                    if depth + 1 > MAX_MACRO_DEPTH {
                        return self.err(at, "macros nested too deep");
                    }
                    let body_end =
                        pc.checked_add(len)
                            .filter(|&e| e <= limit)
                            .ok_or(VerifyError {
                                offset: at,
                                reason: "macro body out of range",
                            })?;
                    let base = self.pop(stack, at, Kind::Dyn)?;
                    if !matches!(base, Kind::List | Kind::Map | Kind::Dyn) {
                        return self.err(at, "macros iterate lists and maps");
                    }
                    let mut body_stack = Vec::new();
                    let (e, body_cost) = self.block(pc, body_end, &mut body_stack, depth + 1)?;
                    if e != body_end
                        || body_end == pc
                        || self.code[body_end - 1] != op::END
                        || body_stack.len() != 1
                    {
                        return self.err(at, "macro body must leave one value and end with END");
                    }
                    if kind != iter::MAP && !body_stack[0].fits(Kind::Bool) {
                        return self.err(at, "macro predicate must be a bool");
                    }
                    self.push(
                        stack,
                        if matches!(kind, iter::FILTER | iter::MAP) {
                            Kind::List
                        } else {
                            Kind::Bool
                        },
                        at,
                    )?;
                    cost = cost.saturating_add(
                        body_cost
                            .saturating_add(1)
                            .saturating_mul(MAX_COLLECTION as u64),
                    );
                    pc = body_end;
                }
                op::END => {
                    if depth == 0 {
                        return self.err(at, "END outside a macro body");
                    }
                    if pc != limit {
                        return self.err(at, "END must close the macro body");
                    }
                }
                op::LOCAL => {
                    let d = *self.code.get(pc).ok_or(VerifyError {
                        offset: at,
                        reason: "truncated operand",
                    })? as usize;
                    pc += 1;
                    if d >= depth {
                        return self.err(at, "macro variable out of scope");
                    }
                    self.push(stack, Kind::Dyn, at)?;
                }
                op::LIST => {
                    let n = read_u16(self.code, pc).ok_or(VerifyError {
                        offset: at,
                        reason: "truncated operand",
                    })? as usize;
                    pc += 2;
                    if n > stack.len() {
                        return self.err(at, "stack underflow");
                    }
                    stack.truncate(stack.len() - n);
                    self.push(stack, Kind::List, at)?;
                }
                op::SIZE => {
                    self.pop(stack, at, Kind::Dyn)?;
                    self.push(stack, Kind::Int, at)?;
                }
                op::VERSION => {
                    self.pop(stack, at, Kind::Str)?;
                    self.push(stack, Kind::Version, at)?;
                }
                op::STRING => {
                    self.pop(stack, at, Kind::Dyn)?;
                    self.push(stack, Kind::Str, at)?;
                }
                op::TO_INT => {
                    self.pop(stack, at, Kind::Dyn)?;
                    self.push(stack, Kind::Int, at)?;
                }
                op::STARTS_WITH | op::ENDS_WITH | op::CONTAINS => {
                    self.pop(stack, at, Kind::Str)?;
                    self.pop(stack, at, Kind::Str)?;
                    self.push(stack, Kind::Bool, at)?;
                }
                _ => return self.err(at, "unknown opcode"),
            }
            if pc > limit {
                return self.err(at, "instruction runs past its block");
            }
            if opcode == op::END {
                return Ok((pc, cost));
            }
        }
        Ok((pc, cost))
    }
}

/// Evaluates a verified program. Never panics; a malformed program yields an error value.
pub fn run(program: &Program, strings: &[String], env: &DeviceEnv) -> Value {
    let mut m = Machine {
        code: &program.code,
        strings,
        env,
        locals: Vec::new(),
        budget: program.cost.max(1),
    };
    let mut stack = Vec::with_capacity(usize::from(program.max_stack) + 1);
    match m.exec(0, program.code.len(), &mut stack) {
        Ok(()) => stack.pop().unwrap_or(Value::Error(EvalError::Malformed)),
        Err(e) => Value::Error(e),
    }
}

struct Machine<'a> {
    code: &'a [u8],
    strings: &'a [String],
    env: &'a DeviceEnv,
    locals: Vec<Value>,
    budget: u64,
}

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

impl Machine<'_> {
    fn u32_at(&self, at: usize) -> Result<u32, EvalError> {
        read_u32(self.code, at).ok_or(EvalError::Malformed)
    }

    fn string(&self, at: usize) -> Result<Arc<str>, EvalError> {
        let i = self.u32_at(at)? as usize;
        self.strings
            .get(i)
            .map(|s| Arc::from(s.as_str()))
            .ok_or(EvalError::Malformed)
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
            let opcode = *self.code.get(pc).ok_or(EvalError::Malformed)?;
            pc += 1;
            match opcode {
                op::TRUE => stack.push(Value::Bool(true)),
                op::FALSE => stack.push(Value::Bool(false)),
                op::NULL => stack.push(Value::Null),
                op::INT => {
                    stack.push(Value::Int(
                        read_i64(self.code, pc).ok_or(EvalError::Malformed)?,
                    ));
                    pc += 8;
                }
                op::STR => {
                    stack.push(Value::Str(self.string(pc)?));
                    pc += 4;
                }
                op::FIELD => {
                    let id = *self.code.get(pc).ok_or(EvalError::Malformed)? as usize;
                    pc += 1;
                    stack.push(
                        self.env
                            .fields
                            .get(id)
                            .cloned()
                            .ok_or(EvalError::Malformed)?,
                    );
                }
                op::MEMBER | op::HAS => {
                    let key = self.string(pc)?;
                    pc += 4;
                    let base = Self::pop(stack)?;
                    let v = match base {
                        Value::Map(m) => match (opcode, m.get(key.as_ref())) {
                            (op::HAS, found) => Value::Bool(found.is_some()),
                            (_, Some(v)) => v.clone(),
                            (_, None) => Value::Error(EvalError::NoSuchKey),
                        },
                        Value::Error(e) => Value::Error(e),
                        _ => Value::Error(EvalError::TypeMismatch),
                    };
                    stack.push(v);
                }
                op::INDEX => {
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
                op::NOT => {
                    let v = Self::pop(stack)?;
                    stack.push(match v {
                        Value::Bool(b) => Value::Bool(!b),
                        Value::Error(e) => Value::Error(e),
                        _ => Value::Error(EvalError::TypeMismatch),
                    });
                }
                op::NEG => {
                    let v = Self::pop(stack)?;
                    stack.push(match v {
                        Value::Int(i) => i
                            .checked_neg()
                            .map_or(Value::Error(EvalError::Overflow), Value::Int),
                        Value::Error(e) => Value::Error(e),
                        _ => Value::Error(EvalError::TypeMismatch),
                    });
                }
                op::EQ | op::NE => {
                    let b = Self::pop(stack)?;
                    let a = Self::pop(stack)?;
                    let v = equals(&a, &b);
                    stack.push(match (opcode, v) {
                        (op::NE, Value::Bool(x)) => Value::Bool(!x),
                        (_, v) => v,
                    });
                }
                op::LT | op::LE | op::GT | op::GE => {
                    let b = Self::pop(stack)?;
                    let a = Self::pop(stack)?;
                    stack.push(match (&a, &b) {
                        (Value::Error(e), _) | (_, Value::Error(e)) => Value::Error(*e),
                        _ => match order(&a, &b) {
                            Ok(o) => Value::Bool(match opcode {
                                op::LT => o.is_lt(),
                                op::LE => o.is_le(),
                                op::GT => o.is_gt(),
                                _ => o.is_ge(),
                            }),
                            Err(e) => Value::Error(e),
                        },
                    });
                }
                op::IN => {
                    let container = Self::pop(stack)?;
                    let elem = Self::pop(stack)?;
                    stack.push(match (&elem, &container) {
                        (Value::Error(e), _) | (_, Value::Error(e)) => Value::Error(*e),
                        (_, Value::List(l)) => Value::Bool(l.iter().any(|x| eq(x, &elem))),
                        (Value::Str(k), Value::Map(m)) => Value::Bool(m.contains_key(k.as_ref())),
                        _ => Value::Error(EvalError::TypeMismatch),
                    });
                }
                op::ADD | op::SUB | op::MUL | op::DIV | op::REM => {
                    let b = Self::pop(stack)?;
                    let a = Self::pop(stack)?;
                    stack.push(arith(opcode, a, b));
                }
                op::JUMP_IF_FALSE | op::JUMP_IF_TRUE => {
                    let off = self.u32_at(pc)? as usize;
                    pc += 4;
                    let top = stack.last().ok_or(EvalError::Malformed)?;
                    let short = (opcode == op::JUMP_IF_FALSE && truthy(top) == Some(false))
                        || (opcode == op::JUMP_IF_TRUE && truthy(top) == Some(true));
                    if short {
                        pc = pc.checked_add(off).ok_or(EvalError::Malformed)?;
                    }
                }
                op::AND | op::OR => {
                    let b = Self::pop(stack)?;
                    let a = Self::pop(stack)?;
                    stack.push(logic(opcode == op::AND, a, b));
                }
                op::BRANCH => {
                    let else_off = self.u32_at(pc)? as usize;
                    let end_off = self.u32_at(pc + 4)? as usize;
                    pc += 8;
                    let c = Self::pop(stack)?;
                    match c {
                        Value::Bool(true) => {}
                        Value::Bool(false) => {
                            pc = pc.checked_add(else_off).ok_or(EvalError::Malformed)?
                        }
                        Value::Error(e) => {
                            stack.push(Value::Error(e));
                            pc = pc.checked_add(end_off).ok_or(EvalError::Malformed)?;
                        }
                        _ => {
                            stack.push(Value::Error(EvalError::TypeMismatch));
                            pc = pc.checked_add(end_off).ok_or(EvalError::Malformed)?;
                        }
                    }
                }
                op::JUMP => {
                    let off = self.u32_at(pc)? as usize;
                    pc = (pc + 4).checked_add(off).ok_or(EvalError::Malformed)?;
                }
                op::ITER => {
                    let kind = *self.code.get(pc).ok_or(EvalError::Malformed)?;
                    let len = self.u32_at(pc + 1)? as usize;
                    pc += 5;
                    let body_end = pc.checked_add(len).ok_or(EvalError::Malformed)?;
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
                    let result = self.iterate(kind, &items, pc, body_end)?;
                    stack.push(result);
                    pc = body_end;
                }
                op::END => return Ok(()),
                op::LOCAL => {
                    let d = *self.code.get(pc).ok_or(EvalError::Malformed)? as usize;
                    pc += 1;
                    let i = self
                        .locals
                        .len()
                        .checked_sub(d + 1)
                        .ok_or(EvalError::Malformed)?;
                    stack.push(self.locals.get(i).cloned().ok_or(EvalError::Malformed)?);
                }
                op::LIST => {
                    let n = read_u16(self.code, pc).ok_or(EvalError::Malformed)? as usize;
                    pc += 2;
                    let at = stack.len().checked_sub(n).ok_or(EvalError::Malformed)?;
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
                op::SIZE => {
                    let v = Self::pop(stack)?;
                    stack.push(match v {
                        Value::Str(s) => Value::Int(s.chars().count() as i64),
                        Value::List(l) => Value::Int(l.len() as i64),
                        Value::Map(m) => Value::Int(m.len() as i64),
                        Value::Error(e) => Value::Error(e),
                        _ => Value::Error(EvalError::TypeMismatch),
                    });
                }
                op::VERSION => {
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
                op::STRING => {
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
                op::TO_INT => {
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
                op::STARTS_WITH | op::ENDS_WITH | op::CONTAINS => {
                    let arg = Self::pop(stack)?;
                    let recv = Self::pop(stack)?;
                    stack.push(match (recv, arg) {
                        (Value::Error(e), _) | (_, Value::Error(e)) => Value::Error(e),
                        (Value::Str(s), Value::Str(t)) => Value::Bool(match opcode {
                            op::STARTS_WITH => s.starts_with(t.as_ref()),
                            op::ENDS_WITH => s.ends_with(t.as_ref()),
                            _ => s.contains(t.as_ref()),
                        }),
                        _ => Value::Error(EvalError::TypeMismatch),
                    });
                }
                _ => return Err(EvalError::Malformed),
            }
        }
        Ok(())
    }

    fn iterate(
        &mut self,
        kind: u8,
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
                iter::MAP => match v {
                    Value::Error(e) => return Ok(Value::Error(e)),
                    v => out.push(v),
                },
                _ => match v {
                    Value::Bool(b) => match kind {
                        iter::ALL if !b => return Ok(Value::Bool(false)),
                        iter::EXISTS if b => return Ok(Value::Bool(true)),
                        iter::EXISTS_ONE if b => count += 1,
                        iter::FILTER if b => out.push(item.clone()),
                        _ => {}
                    },
                    Value::Error(e) => match kind {
                        iter::ALL | iter::EXISTS => error = error.or(Some(e)),
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
            iter::ALL => Value::Bool(true),
            iter::EXISTS => Value::Bool(false),
            iter::EXISTS_ONE => Value::Bool(count == 1),
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

fn arith(opcode: u8, a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Error(e), _) | (_, Value::Error(e)) => Value::Error(e),
        (Value::Int(x), Value::Int(y)) => {
            let r = match opcode {
                op::ADD => x.checked_add(y).ok_or(EvalError::Overflow),
                op::SUB => x.checked_sub(y).ok_or(EvalError::Overflow),
                op::MUL => x.checked_mul(y).ok_or(EvalError::Overflow),
                op::DIV if y == 0 => Err(EvalError::DivisionByZero),
                op::DIV => x.checked_div(y).ok_or(EvalError::Overflow),
                _ if y == 0 => Err(EvalError::DivisionByZero),
                _ => x.checked_rem(y).ok_or(EvalError::Overflow),
            };
            r.map_or_else(Value::Error, Value::Int)
        }
        (Value::Str(x), Value::Str(y)) if opcode == op::ADD => Value::str(&format!("{x}{y}")),
        (Value::List(x), Value::List(y)) if opcode == op::ADD => {
            let mut v = x.as_ref().clone();
            v.extend(y.iter().cloned());
            Value::List(Arc::new(v))
        }
        _ => Value::Error(EvalError::TypeMismatch),
    }
}

/// One instruction per line, with byte offsets, for `hpl inspect --disasm`. Never panics on
/// any bytes (an undecodable tail is shown as such).
pub fn disassemble(code: &[u8], strings: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pc = 0;
    let s = |at: usize| -> String {
        read_u32(code, at)
            .and_then(|i| strings.get(i as usize))
            .map_or_else(|| "<bad string>".to_string(), |s| format!("{s:?}"))
    };
    let field = |id: u8| {
        DEVICE_FIELDS
            .get(id as usize)
            .map_or("<bad field>".to_string(), |f| format!("device.{}", f.path))
    };
    while pc < code.len() {
        let at = pc;
        let opcode = code[pc];
        pc += 1;
        let (name, operand, len): (&str, String, usize) = match opcode {
            op::TRUE => ("TRUE", String::new(), 0),
            op::FALSE => ("FALSE", String::new(), 0),
            op::NULL => ("NULL", String::new(), 0),
            op::INT => (
                "INT",
                read_i64(code, pc).map_or("<truncated>".into(), |v| v.to_string()),
                8,
            ),
            op::STR => ("STR", s(pc), 4),
            op::FIELD => (
                "FIELD",
                code.get(pc).map_or("<truncated>".into(), |&id| field(id)),
                1,
            ),
            op::MEMBER => ("MEMBER", s(pc), 4),
            op::INDEX => ("INDEX", String::new(), 0),
            op::HAS => ("HAS", s(pc), 4),
            op::NOT => ("NOT", String::new(), 0),
            op::NEG => ("NEG", String::new(), 0),
            op::EQ => ("EQ", String::new(), 0),
            op::NE => ("NE", String::new(), 0),
            op::LT => ("LT", String::new(), 0),
            op::LE => ("LE", String::new(), 0),
            op::GT => ("GT", String::new(), 0),
            op::GE => ("GE", String::new(), 0),
            op::IN => ("IN", String::new(), 0),
            op::ADD => ("ADD", String::new(), 0),
            op::SUB => ("SUB", String::new(), 0),
            op::MUL => ("MUL", String::new(), 0),
            op::DIV => ("DIV", String::new(), 0),
            op::REM => ("REM", String::new(), 0),
            op::JUMP_IF_FALSE => (
                "JUMP_IF_FALSE",
                read_u32(code, pc).map_or("<truncated>".into(), |o| {
                    format!("-> {}", pc + 4 + o as usize)
                }),
                4,
            ),
            op::JUMP_IF_TRUE => (
                "JUMP_IF_TRUE",
                read_u32(code, pc).map_or("<truncated>".into(), |o| {
                    format!("-> {}", pc + 4 + o as usize)
                }),
                4,
            ),
            op::AND => ("AND", String::new(), 0),
            op::OR => ("OR", String::new(), 0),
            op::BRANCH => (
                "BRANCH",
                match (read_u32(code, pc), read_u32(code, pc + 4)) {
                    (Some(e), Some(x)) => format!(
                        "else -> {}, end -> {}",
                        pc + 8 + e as usize,
                        pc + 8 + x as usize
                    ),
                    _ => "<truncated>".into(),
                },
                8,
            ),
            op::JUMP => (
                "JUMP",
                read_u32(code, pc).map_or("<truncated>".into(), |o| {
                    format!("-> {}", pc + 4 + o as usize)
                }),
                4,
            ),
            op::ITER => (
                "ITER",
                match (code.get(pc), read_u32(code, pc + 1)) {
                    (Some(k), Some(len)) => format!(
                        "{} body {} bytes",
                        ["all", "exists", "exists_one", "filter", "map"]
                            .get(*k as usize)
                            .copied()
                            .unwrap_or("<bad macro>"),
                        len
                    ),
                    _ => "<truncated>".into(),
                },
                5,
            ),
            op::LOCAL => (
                "LOCAL",
                code.get(pc).map_or("<truncated>".into(), |d| d.to_string()),
                1,
            ),
            op::LIST => (
                "LIST",
                read_u16(code, pc).map_or("<truncated>".into(), |n| n.to_string()),
                2,
            ),
            op::SIZE => ("SIZE", String::new(), 0),
            op::VERSION => ("VERSION", String::new(), 0),
            op::STRING => ("STRING", String::new(), 0),
            op::TO_INT => ("TO_INT", String::new(), 0),
            op::STARTS_WITH => ("STARTS_WITH", String::new(), 0),
            op::ENDS_WITH => ("ENDS_WITH", String::new(), 0),
            op::CONTAINS => ("CONTAINS", String::new(), 0),
            op::END => ("END", String::new(), 0),
            other => {
                out.push(format!("{at:5}  <unknown opcode 0x{other:02x}>"));
                break;
            }
        };
        out.push(if operand.is_empty() {
            format!("{at:5}  {name}")
        } else {
            format!("{at:5}  {name:<14}{operand}")
        });
        pc += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reject(code: &[u8]) -> &'static str {
        match verify(code, 2) {
            Ok(_) => panic!("accepted {code:?}"),
            Err(e) => e.reason,
        }
    }

    fn env() -> DeviceEnv {
        DeviceEnv {
            fields: DEVICE_FIELDS.iter().map(|_| Value::str("x")).collect(),
        }
    }

    #[test]
    fn the_verifier_rejects_malformed_programs() {
        assert_eq!(reject(&[]), "a condition leaves exactly one value");
        assert_eq!(
            reject(&[op::TRUE, op::TRUE]),
            "a condition leaves exactly one value"
        );
        assert_eq!(reject(&[op::NOT]), "stack underflow");
        assert_eq!(reject(&[0xEE]), "unknown opcode");
        assert_eq!(reject(&[op::STR, 9, 0, 0, 0]), "string index out of range");
        assert_eq!(reject(&[op::INT, 1, 2]), "truncated operand");
        assert_eq!(reject(&[op::FIELD, 200]), "unknown device field");
        // A jump past the end of the program.
        assert_eq!(
            reject(&[op::TRUE, op::JUMP_IF_FALSE, 50, 0, 0, 0, op::TRUE, op::AND]),
            "jump out of range"
        );
        // A short-circuit jump that does not land after its AND.
        assert_eq!(
            reject(&[op::TRUE, op::JUMP_IF_FALSE, 1, 0, 0, 0, op::TRUE, op::AND]),
            "unbalanced short-circuit operand"
        );
        // Operand kinds: NOT of an int, SUB of strings.
        assert_eq!(
            reject(&[op::INT, 1, 0, 0, 0, 0, 0, 0, 0, op::NOT]),
            "operand of the wrong kind"
        );
        assert_eq!(
            reject(&[op::STR, 0, 0, 0, 0, op::STR, 0, 0, 0, 0, op::SUB]),
            "operand of the wrong kind"
        );
        // A macro body without END, and a variable outside any macro.
        assert_eq!(
            reject(&[op::FIELD, 9, op::ITER, 0, 1, 0, 0, 0, op::TRUE]),
            "macro body must leave one value and end with END"
        );
        assert_eq!(reject(&[op::LOCAL, 0]), "macro variable out of scope");
        // A condition that is not a bool.
        assert_eq!(
            reject(&[op::INT, 1, 0, 0, 0, 0, 0, 0, 0]),
            "a condition is a bool"
        );
    }

    #[test]
    fn macro_cost_is_bounded_by_the_largest_collection() {
        // device.groups.all(g, true)
        let code = [
            op::FIELD,
            9,
            op::ITER,
            iter::ALL,
            2,
            0,
            0,
            0,
            op::TRUE,
            op::END,
        ];
        let p = verify(&code, 0).expect("valid");
        assert_eq!(p.cost(), 2 + 3 * MAX_COLLECTION as u64);
        assert_eq!(
            run(&p, &[], &env()),
            Value::Error(EvalError::TypeMismatch),
            "groups is a string in this env"
        );
    }

    #[test]
    fn the_interpreter_never_panics_on_unverified_code() {
        let strings = vec!["a".to_string()];
        for code in [
            &[op::NOT][..],
            &[op::JUMP, 255, 255, 255, 255],
            &[op::LOCAL, 3],
            &[op::ITER, 0, 255, 255, 255, 255],
            &[op::BRANCH, 1],
        ] {
            let p = Program {
                code: code.to_vec(),
                max_stack: 1,
                cost: 100,
            };
            let _ = run(&p, &strings, &env());
        }
    }
}
