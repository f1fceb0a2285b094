//! The device inventory (`hpl.inventory.v1`), the runtime's input. Parsed by hand from JSON so
//! that every error names its JSON path; unknown fields are ignored (additive schema
//! changes), missing required fields are rejected.

use crate::vm::{Value, MAX_COLLECTION};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;
use std::fmt;

pub const SCHEMA: &str = "hpl.inventory.v1";

#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    pub tenant_id: String,
    pub device_id: String,
    /// Unix seconds.
    pub collected_at: i64,
    pub scopes: DeviceScopes,
    pub ring: Option<String>,
    pub device: Device,
    pub managers: Vec<ManagerInventory>,
    pub toolchains: Vec<Toolchain>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceScopes {
    pub department: Option<String>,
    pub team: Option<String>,
    pub environment: Option<String>,
    pub device_groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub arch: String,
    pub os_name: String,
    pub os_version: String,
    pub facts: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ManagerInventory {
    pub id: String,
    pub version: Option<String>,
    pub packages: Vec<Package>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Package {
    pub name: String,
    pub versions: Vec<String>,
    pub pinned: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Toolchain {
    pub name: String,
    pub version: Option<String>,
    /// A manager id, or `unmanaged`.
    pub source: String,
    pub path: Option<String>,
}

/// An inventory that cannot be read: where (a JSON path such as
/// `$.managers[2].packages[0].name`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for InventoryError {}

fn err<T>(path: &str, message: impl Into<String>) -> Result<T, InventoryError> {
    Err(InventoryError {
        path: path.to_string(),
        message: message.into(),
    })
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a bool",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn object<'a>(v: &'a Json, path: &str) -> Result<&'a Map<String, Json>, InventoryError> {
    v.as_object().map_or_else(
        || err(path, format!("expected an object, found {}", type_name(v))),
        Ok,
    )
}

fn required<'a>(
    o: &'a Map<String, Json>,
    path: &str,
    key: &str,
) -> Result<&'a Json, InventoryError> {
    match o.get(key) {
        Some(v) => Ok(v),
        None => err(path, format!("missing required field `{key}`")),
    }
}

fn string(v: &Json, path: &str) -> Result<String, InventoryError> {
    match v {
        Json::String(s) => Ok(s.clone()),
        other => err(
            path,
            format!("expected a string, found {}", type_name(other)),
        ),
    }
}

fn opt_string(
    o: &Map<String, Json>,
    path: &str,
    key: &str,
) -> Result<Option<String>, InventoryError> {
    match o.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => string(v, &format!("{path}.{key}")).map(Some),
    }
}

fn array<'a>(v: &'a Json, path: &str) -> Result<&'a Vec<Json>, InventoryError> {
    match v {
        Json::Array(a) if a.len() <= 100_000 => Ok(a),
        Json::Array(_) => err(path, "array too long"),
        other => err(
            path,
            format!("expected an array, found {}", type_name(other)),
        ),
    }
}

fn strings(v: &Json, path: &str) -> Result<Vec<String>, InventoryError> {
    array(v, path)?
        .iter()
        .enumerate()
        .map(|(i, s)| string(s, &format!("{path}[{i}]")))
        .collect()
}

/// Parses an RFC 3339 timestamp into Unix seconds.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// How deep a fact value may nest (lists of maps of lists …).
pub const MAX_FACT_DEPTH: usize = 16;

/// A fact value for conditions. A list or map longer than a condition may iterate
/// ([`MAX_COLLECTION`]) or nested deeper than [`MAX_FACT_DEPTH`] is an error with its JSON
/// path: cutting it would turn `"wget" in device.facts["blocklist"]` silently false.
fn fact_value(v: &Json, path: &str, depth: usize) -> Result<Value, InventoryError> {
    if depth > MAX_FACT_DEPTH {
        return err(path, format!("nested deeper than {MAX_FACT_DEPTH} levels"));
    }
    Ok(match v {
        Json::Array(a) => {
            if a.len() > MAX_COLLECTION {
                return err(
                    path,
                    format!(
                        "{} entries, more than the {MAX_COLLECTION} a condition can read",
                        a.len()
                    ),
                );
            }
            let mut items = Vec::with_capacity(a.len());
            for (i, x) in a.iter().enumerate() {
                items.push(fact_value(x, &format!("{path}[{i}]"), depth + 1)?);
            }
            Value::List(std::sync::Arc::new(items))
        }
        Json::Object(o) => {
            if o.len() > MAX_COLLECTION {
                return err(
                    path,
                    format!(
                        "{} entries, more than the {MAX_COLLECTION} a condition can read",
                        o.len()
                    ),
                );
            }
            let mut map = BTreeMap::new();
            for (k, x) in o {
                let at = format!("{path}[{}]", Json::from(k.as_str()));
                map.insert(k.clone(), fact_value(x, &at, depth + 1)?);
            }
            Value::Map(std::sync::Arc::new(map))
        }
        other => Value::from_json(other),
    })
}

/// One installed package. The usual package (an object with a string name and a list of
/// string versions) is read without making its JSON path: the path is only written when
/// something is wrong (then the checked helpers name it). Paths made eagerly were four
/// allocations per package, most of what parsing an inventory cost (issue 13).
fn package(p: &Json, manager_path: &str, j: usize) -> Result<Package, InventoryError> {
    if let Some(po) = p.as_object() {
        if let (Some(Json::String(name)), Some(Json::Array(list))) =
            (po.get("name"), po.get("versions"))
        {
            let pinned = match po.get("pinned") {
                None | Some(Json::Null) => Some(false),
                Some(Json::Bool(b)) => Some(*b),
                Some(_) => None,
            };
            if let Some(pinned) = pinned.filter(|_| list.len() <= 100_000) {
                let versions: Option<Vec<String>> = list
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect();
                if let Some(versions) = versions {
                    return Ok(Package {
                        name: name.clone(),
                        versions,
                        pinned,
                    });
                }
            }
        }
    }
    // Something is wrong: the checked path, which names where.
    let ppath = format!("{manager_path}.packages[{j}]");
    let po = object(p, &ppath)?;
    let name = string(required(po, &ppath, "name")?, &format!("{ppath}.name"))?;
    let versions = strings(
        required(po, &ppath, "versions")?,
        &format!("{ppath}.versions"),
    )?;
    let pinned = match po.get("pinned") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(other) => {
            return err(
                &format!("{ppath}.pinned"),
                format!("expected a bool, found {}", type_name(other)),
            )
        }
    };
    Ok(Package {
        name,
        versions,
        pinned,
    })
}

impl Inventory {
    pub fn from_json_str(text: &str) -> Result<Inventory, InventoryError> {
        let json: Json = serde_json::from_str(text).map_err(|e| InventoryError {
            path: "$".into(),
            message: format!("not valid JSON: {e}"),
        })?;
        Inventory::from_json(&json)
    }

    pub fn from_json(json: &Json) -> Result<Inventory, InventoryError> {
        let root = object(json, "$")?;
        let schema = string(required(root, "$", "schema")?, "$.schema")?;
        if schema != SCHEMA {
            return err(
                "$.schema",
                format!("unsupported schema `{schema}`; this runtime reads `{SCHEMA}`"),
            );
        }
        let tenant_id = string(required(root, "$", "tenant_id")?, "$.tenant_id")?;
        let device_id = string(required(root, "$", "device_id")?, "$.device_id")?;
        let collected = string(required(root, "$", "collected_at")?, "$.collected_at")?;
        let Some(collected_at) = parse_timestamp(&collected) else {
            return err(
                "$.collected_at",
                format!("`{collected}` is not an RFC 3339 timestamp"),
            );
        };
        let scopes = match root.get("scopes") {
            None | Some(Json::Null) => DeviceScopes::default(),
            Some(v) => {
                let o = object(v, "$.scopes")?;
                DeviceScopes {
                    department: opt_string(o, "$.scopes", "department")?,
                    team: opt_string(o, "$.scopes", "team")?,
                    environment: opt_string(o, "$.scopes", "environment")?,
                    device_groups: match o.get("device_groups") {
                        None | Some(Json::Null) => Vec::new(),
                        Some(v) => {
                            let groups = strings(v, "$.scopes.device_groups")?;
                            if groups.len() > MAX_COLLECTION {
                                return err(
                                    "$.scopes.device_groups",
                                    format!("more than {MAX_COLLECTION} groups"),
                                );
                            }
                            groups
                        }
                    },
                }
            }
        };
        let ring = opt_string(root, "$", "ring")?;
        let device_json = object(required(root, "$", "device")?, "$.device")?;
        let os = object(required(device_json, "$.device", "os")?, "$.device.os")?;
        let facts = match device_json.get("facts") {
            None | Some(Json::Null) => BTreeMap::new(),
            Some(v) => {
                let o = object(v, "$.device.facts")?;
                if o.len() > MAX_COLLECTION {
                    return err(
                        "$.device.facts",
                        format!("more than {MAX_COLLECTION} facts"),
                    );
                }
                let mut facts = BTreeMap::new();
                for (k, v) in o {
                    let path = format!("$.device.facts[{}]", serde_json::Value::from(k.as_str()));
                    facts.insert(k.clone(), fact_value(v, &path, 0)?);
                }
                facts
            }
        };
        let device = Device {
            arch: string(required(device_json, "$.device", "arch")?, "$.device.arch")?,
            os_name: string(required(os, "$.device.os", "name")?, "$.device.os.name")?,
            os_version: string(
                required(os, "$.device.os", "version")?,
                "$.device.os.version",
            )?,
            facts,
        };
        let mut managers = Vec::new();
        for (i, m) in array(required(root, "$", "managers")?, "$.managers")?
            .iter()
            .enumerate()
        {
            let path = format!("$.managers[{i}]");
            let o = object(m, &path)?;
            let id = string(required(o, &path, "id")?, &format!("{path}.id"))?;
            let version = opt_string(o, &path, "version")?;
            let mut packages = Vec::new();
            let list = match o.get("packages") {
                None | Some(Json::Null) => &[][..],
                Some(v) => array(v, &format!("{path}.packages"))?.as_slice(),
            };
            packages.reserve(list.len());
            for (j, p) in list.iter().enumerate() {
                packages.push(package(p, &path, j)?);
            }
            managers.push(ManagerInventory {
                id,
                version,
                packages,
            });
        }
        let mut toolchains = Vec::new();
        if let Some(v) = root.get("toolchains").filter(|v| !v.is_null()) {
            for (i, t) in array(v, "$.toolchains")?.iter().enumerate() {
                let path = format!("$.toolchains[{i}]");
                let o = object(t, &path)?;
                toolchains.push(Toolchain {
                    name: string(required(o, &path, "name")?, &format!("{path}.name"))?,
                    version: opt_string(o, &path, "version")?,
                    source: string(required(o, &path, "source")?, &format!("{path}.source"))?,
                    path: opt_string(o, &path, "path")?,
                });
            }
        }
        Ok(Inventory {
            tenant_id,
            device_id,
            collected_at,
            scopes,
            ring,
            device,
            managers,
            toolchains,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"schema":"hpl.inventory.v1","tenant_id":"acme","device_id":"D1",
        "collected_at":"2026-11-29T01:00:00Z","device":{"arch":"arm64","os":{"name":"macos","version":"15.3"}},
        "managers":[{"id":"npm","packages":[{"name":"x","versions":["1.0.0"]}]}],"future_field":1}"#;

    #[test]
    fn reads_a_minimal_inventory_and_ignores_unknown_fields() {
        let inv = Inventory::from_json_str(MINIMAL).expect("valid");
        assert_eq!(inv.device_id, "D1");
        assert_eq!(inv.managers[0].packages[0].versions, ["1.0.0"]);
        assert_eq!(inv.collected_at, 1_795_914_000);
    }

    #[test]
    fn errors_name_the_json_path() {
        let bad = MINIMAL.replace(r#""name":"x""#, r#""name":7"#);
        let e = Inventory::from_json_str(&bad).expect_err("invalid");
        assert_eq!(e.path, "$.managers[0].packages[0].name");
        assert_eq!(e.message, "expected a string, found a number");
        let missing = MINIMAL.replace(r#""device_id":"D1","#, "");
        let e = Inventory::from_json_str(&missing).expect_err("invalid");
        assert_eq!(
            (e.path.as_str(), e.message.as_str()),
            ("$", "missing required field `device_id`")
        );
        // Each wrong package field is still named by its path (the fast path only reads
        // packages that are right).
        for (bad, path, message) in [
            (
                r#""versions":"1.0.0""#,
                "$.managers[0].packages[0].versions",
                "expected an array, found a string",
            ),
            (
                r#""versions":[1]"#,
                "$.managers[0].packages[0].versions[0]",
                "expected a string, found a number",
            ),
            (
                r#""versions":["1.0.0"],"pinned":"yes""#,
                "$.managers[0].packages[0].pinned",
                "expected a bool, found a string",
            ),
            (
                r#""version":["1.0.0"]"#,
                "$.managers[0].packages[0]",
                "missing required field `versions`",
            ),
        ] {
            let text = MINIMAL.replace(r#""versions":["1.0.0"]"#, bad);
            let e = Inventory::from_json_str(&text).expect_err(bad);
            assert_eq!(
                (e.path.as_str(), e.message.as_str()),
                (path, message),
                "{bad}"
            );
        }
        let e = Inventory::from_json_str("[1,2").expect_err("invalid");
        assert!(e.message.starts_with("not valid JSON"));
        let e = Inventory::from_json_str(&MINIMAL.replace("hpl.inventory.v1", "hpl.inventory.v9"))
            .expect_err("invalid");
        assert_eq!(e.path, "$.schema");
    }
}
