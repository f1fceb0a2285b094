//! The verifier: every condition passes it at load time, before anything runs. Instructions
//! decode (by the opcode table), indices are in range, jumps go forward and stay inside their
//! block, the stack depth is the same on every path and at most 256, operand kinds are
//! consistent, macros nest at most 4 deep, and the cost (instructions executed, each macro
//! body counted for the largest collection) is computed.

use super::op::{Macro, Op};
use super::{
    read_i64, read_u16, read_u32, Program, VerifyError, MAX_CODE, MAX_COLLECTION,
    MAX_CONDITION_COST, MAX_MACRO_DEPTH,
};
use crate::facts::DeviceFact;

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

fn field_kind(fact: DeviceFact) -> Kind {
    use crate::facts::FactType as F;
    match (fact.field().ty)() {
        F::String => Kind::Str,
        F::List(_) => Kind::List,
        F::Map(_) => Kind::Map,
        F::Bool => Kind::Bool,
        F::Int => Kind::Int,
        _ => Kind::Dyn,
    }
}

struct Verifier<'a> {
    code: &'a [u8],
    strings: usize,
    max_stack: usize,
    /// How many blocks (short-circuit operands, branches, macro bodies) enclose the current
    /// one: the verifier recurses once per level, so the level is bounded.
    nesting: usize,
}

/// The deepest blocks may nest. The compiler's limits (32 levels of parentheses, 256 operators
/// a statement) stay well inside it; a hand-made program that goes deeper is rejected instead
/// of taking the verifier's stack.
pub const MAX_BLOCK_NESTING: usize = 256;

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
        nesting: 0,
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
    if cost > MAX_CONDITION_COST {
        return Err(VerifyError {
            offset: 0,
            reason: "the condition's worst-case cost is above the ceiling",
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

    /// An instruction that pops operands of these kinds (the last one first) and pushes one.
    fn apply(
        &mut self,
        stack: &mut Vec<Kind>,
        at: usize,
        pops: &[Kind],
        result: Kind,
    ) -> Result<(), VerifyError> {
        for &want in pops.iter().rev() {
            self.pop(stack, at, want)?;
        }
        self.push(stack, result, at)
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
        if self.nesting >= MAX_BLOCK_NESTING {
            return self.err(start, "blocks nested too deeply");
        }
        self.nesting += 1;
        let result = self.block_inner(start, limit, stack, depth);
        self.nesting -= 1;
        result
    }

    fn block_inner(
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
            let Some(op) = Op::from_u8(self.code[pc]) else {
                return self.err(at, "unknown opcode");
            };
            pc += 1;
            // The opcode table says how long the operands are; each handler reads them at `pc`.
            if pc + op.operand_len() > self.code.len() {
                return self.err(at, "truncated operand");
            }
            cost = cost.saturating_add(1);
            let mut next = pc + op.operand_len();
            match op {
                Op::True | Op::False => self.push(stack, Kind::Bool, at)?,
                Op::Null => self.push(stack, Kind::Null, at)?,
                Op::Int => {
                    read_i64(self.code, pc).ok_or(VerifyError {
                        offset: at,
                        reason: "truncated operand",
                    })?;
                    self.push(stack, Kind::Int, at)?;
                }
                Op::Str => {
                    self.string(pc)?;
                    self.push(stack, Kind::Str, at)?;
                }
                Op::Field => {
                    let id = *self.code.get(pc).ok_or(VerifyError {
                        offset: at,
                        reason: "truncated operand",
                    })?;
                    let Some(fact) = DeviceFact::from_u8(id) else {
                        return self.err(at, "unknown device field");
                    };
                    self.push(stack, field_kind(fact), at)?;
                }
                Op::Member | Op::Has => {
                    self.string(pc)?;
                    self.pop(stack, at, Kind::Map)?;
                    self.push(
                        stack,
                        if op == Op::Has { Kind::Bool } else { Kind::Dyn },
                        at,
                    )?;
                }
                Op::Index => {
                    self.pop(stack, at, Kind::Dyn)?;
                    let base = self.pop(stack, at, Kind::Dyn)?;
                    if !matches!(base, Kind::List | Kind::Map | Kind::Dyn) {
                        return self.err(at, "only lists and maps can be indexed");
                    }
                    self.push(stack, Kind::Dyn, at)?;
                }
                Op::Not => {
                    self.apply(stack, at, &[Kind::Bool], Kind::Bool)?;
                }
                Op::Neg => {
                    self.apply(stack, at, &[Kind::Int], Kind::Int)?;
                }
                Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge | Op::In => {
                    self.apply(stack, at, &[Kind::Dyn, Kind::Dyn], Kind::Bool)?;
                }
                Op::Add => {
                    let b = self.pop(stack, at, Kind::Dyn)?;
                    let a = self.pop(stack, at, Kind::Dyn)?;
                    let k = if a == Kind::Dyn { b } else { a };
                    self.push(stack, k, at)?;
                }
                Op::Sub | Op::Mul | Op::Div | Op::Rem => {
                    self.apply(stack, at, &[Kind::Int, Kind::Int], Kind::Int)?;
                }
                Op::JumpIfFalse | Op::JumpIfTrue => {
                    // `a JUMP_IF L; b AND|OR; L:` — verify the skipped part as a unit.
                    let target = self.target(pc, next, limit)?;
                    let pc = next;
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
                    let want = if op == Op::JumpIfFalse {
                        Op::And
                    } else {
                        Op::Or
                    };
                    if combine_at < pc || Op::from_u8(self.code[combine_at]) != Some(want) {
                        return self.err(at, "short-circuit jump must land after its AND/OR");
                    }
                    // The block already popped both and pushed the combined bool.
                    cost = cost.saturating_add(inner);
                    next = target;
                }
                Op::And | Op::Or => {
                    self.apply(stack, at, &[Kind::Bool, Kind::Bool], Kind::Bool)?;
                }
                Op::Branch => {
                    let else_at = self.target(pc, next, limit)?;
                    let end_at = self.target(pc + 4, next, limit)?;
                    let pc = next;
                    self.pop(stack, at, Kind::Bool)?;
                    let before = stack.len();
                    // then-part: [pc, else_at) ends with a JUMP to end_at
                    if else_at < pc + 5 || end_at < else_at {
                        return self.err(at, "malformed branch");
                    }
                    let mut then_stack = stack.clone();
                    let (e1, c1) = self.block(pc, else_at - 5, &mut then_stack, depth)?;
                    if e1 != else_at - 5
                        || Op::from_u8(self.code[e1]) != Some(Op::Jump)
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
                    next = end_at;
                }
                Op::Jump => return self.err(at, "a jump outside a branch"),
                Op::Iter => {
                    let byte = *self.code.get(pc).ok_or(VerifyError {
                        offset: at,
                        reason: "truncated operand",
                    })?;
                    let Some(kind) = Macro::from_u8(byte) else {
                        return self.err(at, "unknown macro");
                    };
                    let len = read_u32(self.code, pc + 1).ok_or(VerifyError {
                        offset: at,
                        reason: "truncated operand",
                    })? as usize;
                    let pc = next;
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
                        || Op::from_u8(self.code[body_end - 1]) != Some(Op::End)
                        || body_stack.len() != 1
                    {
                        return self.err(at, "macro body must leave one value and end with END");
                    }
                    if kind != Macro::Map && !body_stack[0].fits(Kind::Bool) {
                        return self.err(at, "macro predicate must be a bool");
                    }
                    self.push(
                        stack,
                        if kind.makes_list() {
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
                    next = body_end;
                }
                Op::End => {
                    if depth == 0 {
                        return self.err(at, "END outside a macro body");
                    }
                    if next != limit {
                        return self.err(at, "END must close the macro body");
                    }
                }
                Op::Local => {
                    let d = *self.code.get(pc).ok_or(VerifyError {
                        offset: at,
                        reason: "truncated operand",
                    })? as usize;
                    if d >= depth {
                        return self.err(at, "macro variable out of scope");
                    }
                    self.push(stack, Kind::Dyn, at)?;
                }
                Op::List => {
                    let n = read_u16(self.code, pc).ok_or(VerifyError {
                        offset: at,
                        reason: "truncated operand",
                    })? as usize;
                    if n > stack.len() {
                        return self.err(at, "stack underflow");
                    }
                    stack.truncate(stack.len() - n);
                    self.push(stack, Kind::List, at)?;
                }
                Op::Size => {
                    self.apply(stack, at, &[Kind::Dyn], Kind::Int)?;
                }
                Op::Version => {
                    self.apply(stack, at, &[Kind::Str], Kind::Version)?;
                }
                Op::String => {
                    self.apply(stack, at, &[Kind::Dyn], Kind::Str)?;
                }
                Op::ToInt => {
                    self.apply(stack, at, &[Kind::Dyn], Kind::Int)?;
                }
                Op::StartsWith | Op::EndsWith | Op::Contains => {
                    self.apply(stack, at, &[Kind::Str, Kind::Str], Kind::Bool)?;
                }
            }
            pc = next;
            if pc > limit {
                return self.err(at, "instruction runs past its block");
            }
            if op == Op::End {
                return Ok((pc, cost));
            }
        }
        Ok((pc, cost))
    }
}
