//! The opcodes: one table that says each instruction's byte, name and operand length. The
//! verifier, the interpreter, the disassembler and the compiler's code generator all read it.

/// Declares [`Op`] from `(Variant, byte, NAME, operand bytes)` rows.
macro_rules! opcodes {
    ($($(#[$doc:meta])* $variant:ident = $byte:literal, $name:literal, $len:literal;)+) => {
        /// One instruction. Operands follow the opcode byte, little-endian.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Op {
            $($(#[$doc])* $variant = $byte,)+
        }

        impl Op {
            pub const ALL: &'static [Op] = &[$(Op::$variant),+];

            pub fn from_u8(byte: u8) -> Option<Op> {
                match byte {
                    $($byte => Some(Op::$variant),)+
                    _ => None,
                }
            }

            pub fn byte(self) -> u8 {
                self as u8
            }

            /// The mnemonic, as `hpl inspect --disasm` prints it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Op::$variant => $name,)+
                }
            }

            /// How many operand bytes follow the opcode.
            pub fn operand_len(self) -> usize {
                match self {
                    $(Op::$variant => $len,)+
                }
            }
        }
    };
}

opcodes! {
    True = 0x01, "TRUE", 0;
    False = 0x02, "FALSE", 0;
    Null = 0x03, "NULL", 0;
    /// i64
    Int = 0x04, "INT", 8;
    /// u32 string index
    Str = 0x05, "STR", 4;
    /// u8 device fact ([`crate::facts::DeviceFact`])
    Field = 0x06, "FIELD", 1;
    /// u32 string index: map → `map[key]` (error if absent)
    Member = 0x07, "MEMBER", 4;
    Index = 0x08, "INDEX", 0;
    /// u32 string index: map → key present
    Has = 0x09, "HAS", 4;
    Not = 0x0A, "NOT", 0;
    Neg = 0x0B, "NEG", 0;
    Eq = 0x10, "EQ", 0;
    Ne = 0x11, "NE", 0;
    Lt = 0x12, "LT", 0;
    Le = 0x13, "LE", 0;
    Gt = 0x14, "GT", 0;
    Ge = 0x15, "GE", 0;
    In = 0x16, "IN", 0;
    Add = 0x17, "ADD", 0;
    Sub = 0x18, "SUB", 0;
    Mul = 0x19, "MUL", 0;
    Div = 0x1A, "DIV", 0;
    Rem = 0x1B, "REM", 0;
    /// u32 forward offset: `a JUMP_IF_FALSE L; b AND; L:`
    JumpIfFalse = 0x20, "JUMP_IF_FALSE", 4;
    /// u32 forward offset: `a JUMP_IF_TRUE L; b OR; L:`
    JumpIfTrue = 0x21, "JUMP_IF_TRUE", 4;
    And = 0x22, "AND", 0;
    Or = 0x23, "OR", 0;
    /// u32 else offset, u32 end offset (both from the end of the operands)
    Branch = 0x24, "BRANCH", 8;
    /// u32 forward offset: the end of a `?:` then-part
    Jump = 0x25, "JUMP", 4;
    /// u8 macro ([`Macro`]), u32 body length; the body ends with `END`
    Iter = 0x26, "ITER", 5;
    /// u8 depth (0 = innermost macro variable)
    Local = 0x27, "LOCAL", 1;
    /// u16 count: pop n values, push a list
    List = 0x28, "LIST", 2;
    Size = 0x30, "SIZE", 0;
    Version = 0x31, "VERSION", 0;
    String = 0x32, "STRING", 0;
    ToInt = 0x33, "TO_INT", 0;
    StartsWith = 0x34, "STARTS_WITH", 0;
    EndsWith = 0x35, "ENDS_WITH", 0;
    Contains = 0x36, "CONTAINS", 0;
    /// Ends a macro body.
    End = 0x3F, "END", 0;
}

/// The list macros of `ITER`, by their operand byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Macro {
    All = 0,
    Exists = 1,
    ExistsOne = 2,
    Filter = 3,
    Map = 4,
}

impl Macro {
    pub fn from_u8(byte: u8) -> Option<Macro> {
        [
            Macro::All,
            Macro::Exists,
            Macro::ExistsOne,
            Macro::Filter,
            Macro::Map,
        ]
        .into_iter()
        .find(|m| *m as u8 == byte)
    }

    pub fn name(self) -> &'static str {
        match self {
            Macro::All => "all",
            Macro::Exists => "exists",
            Macro::ExistsOne => "exists_one",
            Macro::Filter => "filter",
            Macro::Map => "map",
        }
    }

    /// `filter` and `map` make a list; the others a bool.
    pub fn makes_list(self) -> bool {
        matches!(self, Macro::Filter | Macro::Map)
    }
}

pub use bytes::*;

/// The opcode bytes as constants, for code generators (`code.push(op::TRUE)`); each is its
/// [`Op`]'s discriminant, so there is no second numbering.
pub mod bytes {
    use super::Op;
    pub const TRUE: u8 = Op::True as u8;
    pub const FALSE: u8 = Op::False as u8;
    pub const NULL: u8 = Op::Null as u8;
    pub const INT: u8 = Op::Int as u8;
    pub const STR: u8 = Op::Str as u8;
    pub const FIELD: u8 = Op::Field as u8;
    pub const MEMBER: u8 = Op::Member as u8;
    pub const INDEX: u8 = Op::Index as u8;
    pub const HAS: u8 = Op::Has as u8;
    pub const NOT: u8 = Op::Not as u8;
    pub const NEG: u8 = Op::Neg as u8;
    pub const EQ: u8 = Op::Eq as u8;
    pub const NE: u8 = Op::Ne as u8;
    pub const LT: u8 = Op::Lt as u8;
    pub const LE: u8 = Op::Le as u8;
    pub const GT: u8 = Op::Gt as u8;
    pub const GE: u8 = Op::Ge as u8;
    pub const IN: u8 = Op::In as u8;
    pub const ADD: u8 = Op::Add as u8;
    pub const SUB: u8 = Op::Sub as u8;
    pub const MUL: u8 = Op::Mul as u8;
    pub const DIV: u8 = Op::Div as u8;
    pub const REM: u8 = Op::Rem as u8;
    pub const JUMP_IF_FALSE: u8 = Op::JumpIfFalse as u8;
    pub const JUMP_IF_TRUE: u8 = Op::JumpIfTrue as u8;
    pub const AND: u8 = Op::And as u8;
    pub const OR: u8 = Op::Or as u8;
    pub const BRANCH: u8 = Op::Branch as u8;
    pub const JUMP: u8 = Op::Jump as u8;
    pub const ITER: u8 = Op::Iter as u8;
    pub const LOCAL: u8 = Op::Local as u8;
    pub const LIST: u8 = Op::List as u8;
    pub const SIZE: u8 = Op::Size as u8;
    pub const VERSION: u8 = Op::Version as u8;
    pub const STRING: u8 = Op::String as u8;
    pub const TO_INT: u8 = Op::ToInt as u8;
    pub const STARTS_WITH: u8 = Op::StartsWith as u8;
    pub const ENDS_WITH: u8 = Op::EndsWith as u8;
    pub const CONTAINS: u8 = Op::Contains as u8;
    pub const END: u8 = Op::End as u8;
}

/// Macro operand bytes as constants, for code generators.
pub mod macros {
    use super::Macro;
    pub const ALL: u8 = Macro::All as u8;
    pub const EXISTS: u8 = Macro::Exists as u8;
    pub const EXISTS_ONE: u8 = Macro::ExistsOne as u8;
    pub const FILTER: u8 = Macro::Filter as u8;
    pub const MAP: u8 = Macro::Map as u8;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes are the bundle format (docs/bundle-format.md): never renumber one.
    #[test]
    fn opcode_bytes_are_frozen_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for &op in Op::ALL {
            assert!(seen.insert(op.byte()), "{op:?}");
            assert_eq!(Op::from_u8(op.byte()), Some(op));
        }
        assert_eq!(Op::True.byte(), 0x01);
        assert_eq!(Op::Field.byte(), 0x06);
        assert_eq!(Op::Rem.byte(), 0x1B);
        assert_eq!(Op::Iter.byte(), 0x26);
        assert_eq!(Op::End.byte(), 0x3F);
        assert_eq!(Op::from_u8(0xEE), None);
        assert_eq!(Macro::from_u8(4), Some(Macro::Map));
        assert_eq!(Macro::from_u8(5), None);
    }
}
