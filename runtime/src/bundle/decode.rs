//! Bytes to bundle content: structure only (lengths, tags, enum values). Whether indices
//! point anywhere is the verifier's job.

use super::codec::{ReadError, Reader};
use super::encode::SECTIONS;
use super::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Read(ReadError),
    /// A section is missing, repeated or out of order.
    Section {
        offset: usize,
        expected: u8,
        found: u8,
    },
    /// A section has bytes left over after its last field.
    SectionTrailing {
        tag: u8,
    },
    /// A field holds a value outside its set (an unknown level, mode, rule kind…).
    BadValue {
        offset: usize,
        what: &'static str,
    },
}

impl From<ReadError> for DecodeError {
    fn from(e: ReadError) -> Self {
        DecodeError::Read(e)
    }
}

fn opt_i64(r: &mut Reader<'_>) -> Result<Option<i64>, DecodeError> {
    let at = r.offset();
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.i64()?)),
        _ => Err(DecodeError::BadValue {
            offset: at,
            what: "option tag",
        }),
    }
}

/// An optional index: [`WIRE_NONE`] means absent.
fn opt_u32(r: &mut Reader<'_>) -> Result<Option<u32>, DecodeError> {
    let v = r.u32()?;
    Ok((v != WIRE_NONE).then_some(v))
}

fn u32s(r: &mut Reader<'_>) -> Result<Vec<u32>, DecodeError> {
    let n = r.count(4)?;
    (0..n).map(|_| r.u32().map_err(DecodeError::from)).collect()
}

/// Decodes the content bytes (between the envelope's length and hash).
pub fn decode_content(bytes: &[u8], base: usize) -> Result<BundleContent, DecodeError> {
    let mut r = Reader::new(bytes, base);
    let mut sections: Vec<(u8, Reader<'_>)> = Vec::new();
    for &expected in &SECTIONS {
        let at = r.offset();
        let tag = r.u8()?;
        if tag != expected {
            return Err(DecodeError::Section {
                offset: at,
                expected,
                found: tag,
            });
        }
        let body_at = r.offset() + 4;
        let body = r.bytes()?;
        sections.push((tag, Reader::new(body, body_at)));
    }
    if !r.is_empty() {
        return Err(DecodeError::Section {
            offset: r.offset(),
            expected: 0,
            found: r.u8().unwrap_or(0),
        });
    }
    let mut it = sections.into_iter();
    let mut next = || it.next();

    let (tag, mut s) = next().ok_or(DecodeError::Section {
        offset: base,
        expected: 1,
        found: 0,
    })?;
    let tenant = s.str()?;
    let bundle_version = s.u64()?;
    let n = s.count(12)?;
    let mut policies = Vec::with_capacity(n);
    for _ in 0..n {
        policies.push((s.str()?, s.u64()?));
    }
    let issued_at = s.i64()?;
    let expires_at = opt_i64(&mut s)?;
    let compiler_version = s.str()?;
    let source_hash = s.fixed::<32>()?;
    let cost_bound = s.u64()?;
    done(tag, &s)?;
    let manifest = Manifest {
        tenant,
        bundle_version,
        policies,
        issued_at,
        expires_at,
        compiler_version,
        source_hash,
    };

    let (tag, mut s) = next().ok_or(DecodeError::Section {
        offset: base,
        expected: 2,
        found: 0,
    })?;
    let n = s.count(4)?;
    let strings = (0..n)
        .map(|_| s.str().map_err(DecodeError::from))
        .collect::<Result<Vec<_>, _>>()?;
    done(tag, &s)?;

    let (tag, mut s) = next().ok_or(DecodeError::Section {
        offset: base,
        expected: 3,
        found: 0,
    })?;
    let n = s.count(7)?;
    let mut managers = Vec::with_capacity(n);
    for _ in 0..n {
        let id = s.u32()?;
        let at = s.offset();
        let scheme = Scheme::from_u8(s.u8()?).ok_or(DecodeError::BadValue {
            offset: at,
            what: "version scheme",
        })?;
        let at = s.offset();
        let capabilities = Capabilities::from_bits(s.u8()?).ok_or(DecodeError::BadValue {
            offset: at,
            what: "capabilities",
        })?;
        let at = s.offset();
        let phase = Phase::from_u8(s.u8()?).ok_or(DecodeError::BadValue {
            offset: at,
            what: "phase",
        })?;
        managers.push(ManagerEntry {
            id,
            scheme,
            capabilities,
            phase,
        });
    }
    done(tag, &s)?;

    let (tag, mut s) = next().ok_or(DecodeError::Section {
        offset: base,
        expected: 4,
        found: 0,
    })?;
    let n = s.count(9)?;
    let mut scopes = Vec::with_capacity(n);
    for _ in 0..n {
        let at = s.offset();
        let level = Level::from_u8(s.u8()?).ok_or(DecodeError::BadValue {
            offset: at,
            what: "scope level",
        })?;
        scopes.push(ScopeEntry {
            level,
            name: s.u32()?,
            parent: opt_u32(&mut s)?,
        });
    }
    done(tag, &s)?;

    let (tag, mut s) = next().ok_or(DecodeError::Section {
        offset: base,
        expected: 5,
        found: 0,
    })?;
    let n = s.count(13)?;
    let mut policies_t = Vec::with_capacity(n);
    for _ in 0..n {
        let name = s.u32()?;
        let version = s.u64()?;
        let at = s.offset();
        let mode = Mode::from_u8(s.u8()?).ok_or(DecodeError::BadValue {
            offset: at,
            what: "mode",
        })?;
        policies_t.push(PolicyEntry {
            name,
            version,
            mode,
        });
    }
    done(tag, &s)?;

    let (tag, mut s) = next().ok_or(DecodeError::Section {
        offset: base,
        expected: 6,
        found: 0,
    })?;
    let n = s.count(20)?;
    let mut origins = Vec::with_capacity(n);
    for _ in 0..n {
        origins.push(Origin {
            policy: s.u32()?,
            scope: s.u32()?,
            file: s.u32()?,
            line: s.u32()?,
            column: s.u32()?,
        });
    }
    done(tag, &s)?;

    let (tag, mut s) = next().ok_or(DecodeError::Section {
        offset: base,
        expected: 7,
        found: 0,
    })?;
    let n = s.count(30)?;
    let mut rules = Vec::with_capacity(n);
    for _ in 0..n {
        let at = s.offset();
        let kind = RuleKind::from_u8(s.u8()?).ok_or(DecodeError::BadValue {
            offset: at,
            what: "rule kind",
        })?;
        let at = s.offset();
        let flags = s.u8()?;
        if flags > 7 {
            return Err(DecodeError::BadValue {
                offset: at,
                what: "rule flags",
            });
        }
        rules.push(RuleEntry {
            kind,
            is_final: flags & 1 != 0,
            warn: flags & 2 != 0,
            glob: flags & 4 != 0,
            manager: s.u32()?,
            pattern: s.u32()?,
            display: s.u32()?,
            constraint: opt_u32(&mut s)?,
            condition: opt_u32(&mut s)?,
            because: opt_u32(&mut s)?,
            origin: s.u32()?,
        });
    }
    done(tag, &s)?;

    let (tag, mut s) = next().ok_or(DecodeError::Section {
        offset: base,
        expected: 8,
        found: 0,
    })?;
    let n = s.count(4)?;
    let scope_rules = (0..n)
        .map(|_| u32s(&mut s))
        .collect::<Result<Vec<_>, _>>()?;
    done(tag, &s)?;

    let (tag, mut s) = next().ok_or(DecodeError::Section {
        offset: base,
        expected: 9,
        found: 0,
    })?;
    let n = s.count(22)?;
    let mut conditions = Vec::with_capacity(n);
    for _ in 0..n {
        conditions.push(ConditionEntry {
            code: s.bytes()?.to_vec(),
            max_stack: s.u16()?,
            cost: s.u64()?,
            source: s.u32()?,
            origin: s.u32()?,
        });
    }
    done(tag, &s)?;

    let (tag, mut s) = next().ok_or(DecodeError::Section {
        offset: base,
        expected: 10,
        found: 0,
    })?;
    let n = s.count(16)?;
    let mut toolchains = Vec::with_capacity(n);
    for _ in 0..n {
        toolchains.push(ToolchainEntry {
            name: s.u32()?,
            sources: u32s(&mut s)?,
            condition: opt_u32(&mut s)?,
            origin: s.u32()?,
        });
    }
    done(tag, &s)?;

    let (tag, mut s) = next().ok_or(DecodeError::Section {
        offset: base,
        expected: 11,
        found: 0,
    })?;
    let n = s.count(17)?;
    let mut windows = Vec::with_capacity(n);
    for _ in 0..n {
        windows.push(WindowEntry {
            policy: s.u32()?,
            days: s.u8()?,
            start_minute: s.u16()?,
            end_minute: s.u16()?,
            zone: opt_u32(&mut s)?,
            condition: opt_u32(&mut s)?,
        });
    }
    done(tag, &s)?;

    let (tag, mut s) = next().ok_or(DecodeError::Section {
        offset: base,
        expected: 12,
        found: 0,
    })?;
    let n = s.count(13)?;
    let mut guards = Vec::with_capacity(n);
    for _ in 0..n {
        let manager = s.u32()?;
        let at = s.offset();
        let level = GuardLevel::from_u8(s.u8()?).ok_or(DecodeError::BadValue {
            offset: at,
            what: "guard level",
        })?;
        guards.push(GuardEntry {
            manager,
            level,
            condition: opt_u32(&mut s)?,
            origin: s.u32()?,
        });
    }
    done(tag, &s)?;

    Ok(BundleContent {
        manifest,
        strings,
        managers,
        scopes,
        policies: policies_t,
        origins,
        rules,
        scope_rules,
        conditions,
        toolchains,
        windows,
        guards,
        cost_bound,
    })
}

fn done(tag: u8, r: &Reader<'_>) -> Result<(), DecodeError> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(DecodeError::SectionTrailing { tag })
    }
}
