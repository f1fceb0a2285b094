//! The device-facts schema: every field a `when` condition may read, with its type.
//!
//! The compiler type-checks conditions against this table and the runtime fills the same
//! fields from the inventory (`hpl.inventory.v1`), so the two can never disagree on a name.

/// The static type of a device fact or of a condition expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FactType {
    Bool,
    Int,
    String,
    /// A version, made with `version("…")`; ordered by the dotted-numeric scheme.
    Version,
    List(Box<FactType>),
    /// `device.facts`: string keys to values of any type.
    Map(Box<FactType>),
    /// A value whose type is only known at run time (entries of `device.facts`).
    Dyn,
    Null,
}

impl std::fmt::Display for FactType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FactType::Bool => f.write_str("bool"),
            FactType::Int => f.write_str("int"),
            FactType::String => f.write_str("string"),
            FactType::Version => f.write_str("version"),
            FactType::List(t) => write!(f, "list<{t}>"),
            FactType::Map(t) => write!(f, "map<string, {t}>"),
            FactType::Dyn => f.write_str("dyn"),
            FactType::Null => f.write_str("null"),
        }
    }
}

/// A device fact a condition can read. The discriminant is the `FIELD` operand in bundles
/// (never renumber one) and the fact's position in [`DEVICE_FIELDS`] and in the VM's
/// environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DeviceFact {
    Id = 0,
    Tenant = 1,
    Arch = 2,
    OsName = 3,
    OsVersion = 4,
    Ring = 5,
    Department = 6,
    Team = 7,
    Environment = 8,
    Groups = 9,
    Facts = 10,
}

impl DeviceFact {
    /// The fact of a `FIELD` operand.
    pub fn from_u8(byte: u8) -> Option<DeviceFact> {
        DEVICE_FIELDS
            .iter()
            .map(|f| f.fact)
            .find(|f| *f as u8 == byte)
    }

    pub fn field(self) -> &'static FactField {
        &DEVICE_FIELDS[self as usize]
    }
}

/// One readable field of the `device` object.
#[derive(Debug, Clone, Copy)]
pub struct FactField {
    pub fact: DeviceFact,
    /// The dotted path below `device`, e.g. `os.version`.
    pub path: &'static str,
    pub ty: fn() -> FactType,
    /// One line for hover text and `hpl explain`.
    pub doc: &'static str,
}

fn string() -> FactType {
    FactType::String
}
fn string_list() -> FactType {
    FactType::List(Box::new(FactType::String))
}
fn dyn_map() -> FactType {
    FactType::Map(Box::new(FactType::Dyn))
}

/// Every field of `device`. Intermediate objects (`device.os`) are not values on their own.
pub const DEVICE_FIELDS: &[FactField] = &[
    FactField {
        fact: DeviceFact::Id,
        path: "id",
        ty: string,
        doc: "the device identifier (inventory `device_id`)",
    },
    FactField {
        fact: DeviceFact::Tenant,
        path: "tenant",
        ty: string,
        doc: "the tenant id (inventory `tenant_id`)",
    },
    FactField {
        fact: DeviceFact::Arch,
        path: "arch",
        ty: string,
        doc: "CPU architecture: \"arm64\" or \"x86_64\"",
    },
    FactField {
        fact: DeviceFact::OsName,
        path: "os.name",
        ty: string,
        doc: "operating system name, e.g. \"macos\"",
    },
    FactField {
        fact: DeviceFact::OsVersion,
        path: "os.version",
        ty: string,
        doc: "operating system product version, e.g. \"15.3.2\"; compare with version(...)",
    },
    FactField {
        fact: DeviceFact::Ring,
        path: "ring",
        ty: string,
        doc: "rollout ring: \"canary\", \"pilot\" or \"broad\"",
    },
    FactField {
        fact: DeviceFact::Department,
        path: "department",
        ty: string,
        doc: "the device's department, or \"\"",
    },
    FactField {
        fact: DeviceFact::Team,
        path: "team",
        ty: string,
        doc: "the device's team, or \"\"",
    },
    FactField {
        fact: DeviceFact::Environment,
        path: "environment",
        ty: string,
        doc: "the device's environment, or \"\"",
    },
    FactField {
        fact: DeviceFact::Groups,
        path: "groups",
        ty: string_list,
        doc: "the device groups the device belongs to",
    },
    FactField {
        fact: DeviceFact::Facts,
        path: "facts",
        ty: dyn_map,
        doc: "free-form facts reported by the agent or MDM, e.g. device.facts[\"fleet\"]",
    },
];

/// Intermediate objects: `device.os` has fields but is not itself a value.
pub const DEVICE_OBJECTS: &[&str] = &["os"];

/// Looks up a field by its dotted path below `device`.
pub fn field(path: &str) -> Option<&'static FactField> {
    DEVICE_FIELDS.iter().find(|f| f.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The VM indexes the environment by the fact's discriminant.
    #[test]
    fn every_fact_is_at_its_discriminant() {
        for (i, f) in DEVICE_FIELDS.iter().enumerate() {
            assert_eq!(f.fact as usize, i, "{}", f.path);
            assert_eq!(DeviceFact::from_u8(i as u8), Some(f.fact));
        }
        assert_eq!(DeviceFact::from_u8(DEVICE_FIELDS.len() as u8), None);
    }
}
