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

/// One readable field of the `device` object.
#[derive(Debug, Clone, Copy)]
pub struct FactField {
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
        path: "id",
        ty: string,
        doc: "the device identifier (inventory `device_id`)",
    },
    FactField {
        path: "tenant",
        ty: string,
        doc: "the tenant id (inventory `tenant_id`)",
    },
    FactField {
        path: "arch",
        ty: string,
        doc: "CPU architecture: \"arm64\" or \"x86_64\"",
    },
    FactField {
        path: "os.name",
        ty: string,
        doc: "operating system name, e.g. \"macos\"",
    },
    FactField {
        path: "os.version",
        ty: string,
        doc: "operating system product version, e.g. \"15.3.2\"; compare with version(...)",
    },
    FactField {
        path: "ring",
        ty: string,
        doc: "rollout ring: \"canary\", \"pilot\" or \"broad\"",
    },
    FactField {
        path: "department",
        ty: string,
        doc: "the device's department, or \"\"",
    },
    FactField {
        path: "team",
        ty: string,
        doc: "the device's team, or \"\"",
    },
    FactField {
        path: "environment",
        ty: string,
        doc: "the device's environment, or \"\"",
    },
    FactField {
        path: "groups",
        ty: string_list,
        doc: "the device groups the device belongs to",
    },
    FactField {
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
