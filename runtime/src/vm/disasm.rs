//! The disassembler of `hpl inspect --disasm`: one instruction per line with its byte offset.
//! Names and operand lengths come from the opcode table; only the operands' meaning is here.

use super::op::{Macro, Op};
use super::{read_i64, read_u16, read_u32};
use crate::facts::DeviceFact;

/// One instruction per line, with byte offsets. Never panics on any bytes (an undecodable
/// tail is shown as such).
pub fn disassemble(code: &[u8], strings: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pc = 0;
    while pc < code.len() {
        let at = pc;
        let Some(op) = Op::from_u8(code[pc]) else {
            out.push(format!("{at:5}  <unknown opcode 0x{:02x}>", code[pc]));
            break;
        };
        pc += 1;
        let operand = operand(op, code, pc, strings);
        out.push(if operand.is_empty() {
            format!("{at:5}  {}", op.name())
        } else {
            format!("{at:5}  {:<14}{operand}", op.name())
        });
        pc += op.operand_len();
    }
    out
}

/// The operand of `op` at `pc`, readable.
fn operand(op: Op, code: &[u8], pc: usize, strings: &[String]) -> String {
    let truncated = || "<truncated>".to_string();
    let string = |at: usize| -> String {
        read_u32(code, at)
            .and_then(|i| strings.get(i as usize))
            .map_or_else(|| "<bad string>".to_string(), |s| format!("{s:?}"))
    };
    // Jump targets are offsets from the end of the operands.
    let end = pc + op.operand_len();
    let target = |at: usize| read_u32(code, at).map(|o| end + o as usize);
    match op {
        Op::Int => read_i64(code, pc).map_or_else(truncated, |v| v.to_string()),
        Op::Str | Op::Member | Op::Has => string(pc),
        Op::Field => code.get(pc).map_or_else(truncated, |&id| {
            DeviceFact::from_u8(id).map_or("<bad field>".to_string(), |f| {
                format!("device.{}", f.field().path)
            })
        }),
        Op::JumpIfFalse | Op::JumpIfTrue | Op::Jump => {
            target(pc).map_or_else(truncated, |t| format!("-> {t}"))
        }
        Op::Branch => match (target(pc), target(pc + 4)) {
            (Some(e), Some(x)) => format!("else -> {e}, end -> {x}"),
            _ => truncated(),
        },
        Op::Iter => match (code.get(pc), read_u32(code, pc + 1)) {
            (Some(&k), Some(len)) => format!(
                "{} body {len} bytes",
                Macro::from_u8(k).map_or("<bad macro>", Macro::name)
            ),
            _ => truncated(),
        },
        Op::Local => code.get(pc).map_or_else(truncated, |d| d.to_string()),
        Op::List => read_u16(code, pc).map_or_else(truncated, |n| n.to_string()),
        _ => String::new(),
    }
}
