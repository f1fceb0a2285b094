//! The condition VM: a small stack machine for `when` conditions, with CEL's semantics for
//! the supported subset (errors are values; `&&` and `||` absorb them as CEL does).
//!
//! - [`op`]: the opcode table (byte, name, operand length), the one definition of the
//!   instruction set;
//! - [`verify`](mod@verify): the verifier every condition passes at load time;
//! - [`exec`]: the interpreter ([`run`]);
//! - [`disasm`]: the disassembler of `hpl inspect --disasm`.
//!
//! Safety comes from the verifier: instructions decode, indices are in range, jumps go
//! forward and stay in bounds, the stack depth is the same on every path and statically
//! bounded, operand kinds are consistent, and the cost is statically bounded. The interpreter
//! still checks everything it relies on, so even an unverified program cannot panic.

pub mod disasm;
pub mod exec;
pub mod op;
pub mod verify;

pub use disasm::disassemble;
pub use exec::{equals, run};
pub use verify::verify;

use crate::version::DottedVersion;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where a program's string constants come from. A bundle's table hands out shared strings
/// ([`crate::load::VerifiedBundle::shared_strings`]), so pushing a constant copies a pointer;
/// a plain `[String]` (the compiler's tests, a trace) makes each one when it is pushed.
pub trait Strings {
    fn shared(&self, i: usize) -> Option<Arc<str>>;
}

impl Strings for [String] {
    fn shared(&self, i: usize) -> Option<Arc<str>> {
        self.get(i).map(|s| Arc::from(s.as_str()))
    }
}

impl Strings for Vec<String> {
    fn shared(&self, i: usize) -> Option<Arc<str>> {
        self.as_slice().shared(i)
    }
}

impl Strings for [Arc<str>] {
    fn shared(&self, i: usize) -> Option<Arc<str>> {
        self.get(i).cloned()
    }
}

impl Strings for Vec<Arc<str>> {
    fn shared(&self, i: usize) -> Option<Arc<str>> {
        self.get(i).cloned()
    }
}

/// Macro bytes for code generators, each its [`op::Macro`]'s discriminant.
pub mod iter {
    pub use super::op::macros::*;
}

/// Longest list or map a condition may iterate (the inventory parser enforces it), which is
/// what makes the cost of a macro statically bounded.
pub const MAX_COLLECTION: usize = 1024;
/// Deepest nesting of macros.
pub const MAX_MACRO_DEPTH: usize = 4;
/// Longest condition program in bytes.
pub const MAX_CODE: usize = 64 * 1024;
/// The most instructions one condition may execute (its verified worst case, macro bodies
/// counted for the largest collection): two nested macros over full lists fit, three do not.
pub const MAX_CONDITION_COST: u64 = 10_000_000;
/// The most instructions all of a bundle's conditions together may execute in one evaluation.
pub const MAX_TOTAL_COST: u64 = 100_000_000;
/// The most bytes one evaluation of a condition may build (string `+`, list `+`, `[…]`,
/// `map`, `filter`, `string()`): beyond it the condition errs (the rule is `unknown`).
pub const MAX_BUILT_BYTES: usize = 1024 * 1024;

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
    /// The values the condition builds passed [`MAX_BUILT_BYTES`].
    TooLarge,
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
            EvalError::TooLarge => "the values built exceed the memory bound",
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

fn read_u32(code: &[u8], at: usize) -> Option<u32> {
    code.get(at..at.checked_add(4)?)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u16(code: &[u8], at: usize) -> Option<u16> {
    code.get(at..at.checked_add(2)?)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn read_i64(code: &[u8], at: usize) -> Option<i64> {
    let b = code.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(i64::from_le_bytes(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::DEVICE_FIELDS;

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
            run(&p, &[] as &[String], &env()),
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
