//! The policy test format (docs/testing.md): TOML files under a policy directory's `tests/`,
//! each with one or more `[[test]]` tables.

use hpl_runtime::record::RuleOrigin;
use serde::Deserialize;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

/// One test file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    #[serde(rename = "test", default)]
    pub tests: Vec<TestSpec>,
}

/// One test: a device (an inventory, changed by `set`), a time, MDM settings, and what to
/// expect.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestSpec {
    pub name: String,
    /// The base inventory, relative to the test file.
    pub inventory: String,
    /// Evaluation time (RFC 3339). Default: the inventory's `collected_at`, so a test never
    /// depends on the day it runs.
    pub at: Option<String>,
    /// Compare the whole result with its accepted snapshot (default true).
    pub snapshot: Option<bool>,
    /// MDM settings: a managed-configuration file (relative path), or inline.
    pub mdm: Option<MdmSpec>,
    /// Changes to the base inventory.
    pub set: Option<Overrides>,
    /// Actions to authorize (their answers are part of the snapshot).
    #[serde(default)]
    pub authorize: Vec<AuthorizeSpec>,
    pub expect: Option<Expect>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum MdmSpec {
    File(String),
    Inline(MdmInline),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MdmInline {
    /// `observe`, `assist` or `enforce`.
    pub mode_cap: Option<String>,
    #[serde(default)]
    pub device_groups: Vec<String>,
}

/// Inline changes to the base inventory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    pub device_id: Option<String>,
    pub department: Option<String>,
    pub team: Option<String>,
    pub environment: Option<String>,
    pub device_groups: Option<Vec<String>>,
    pub ring: Option<String>,
    pub arch: Option<String>,
    pub os_version: Option<String>,
    /// Facts to set (merged over the inventory's).
    pub facts: Option<toml::Table>,
    /// Packages to add (or replace, by name).
    #[serde(default)]
    pub add: Vec<AddPackage>,
    /// Packages to remove: `MANAGER:NAME`.
    #[serde(default)]
    pub remove: Vec<String>,
    /// Managers to drop from the inventory entirely.
    #[serde(default)]
    pub remove_managers: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddPackage {
    pub manager: String,
    pub name: String,
    pub versions: Vec<String>,
    #[serde(default)]
    pub pinned: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeSpec {
    pub action: String,
    pub manager: String,
    #[serde(default)]
    pub package: Option<String>,
    pub to: Option<String>,
    /// `allow`, `needs_confirmation` or `deny`.
    pub expect: Option<String>,
    /// The deciding rule: `policy`, `policy:LINE`, `file.hpl:LINE`.
    pub rule: Option<String>,
}

impl AuthorizeSpec {
    /// The request as `hpl authorize --action` takes it.
    pub fn request(&self) -> Json {
        let mut r = serde_json::json!({ "action": self.action, "manager": self.manager });
        if let Some(p) = &self.package {
            r["package"] = Json::from(p.as_str());
        }
        if let Some(t) = &self.to {
            r["to"] = Json::from(t.as_str());
        }
        r
    }
}

/// Expectations; each one given is checked exactly (sets compare without order).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `compliant`, `warning`, `unknown`, `non_compliant`.
    pub state: Option<String>,
    /// Exactly these violations.
    pub violations: Option<Vec<ExpectViolation>>,
    /// Exactly these remediation steps.
    pub remediation: Option<Vec<ExpectStep>>,
    /// Exactly these unknown reason codes.
    pub unknown: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectViolation {
    pub category: String,
    pub package: String,
    pub manager: Option<String>,
    /// The deciding rule: `policy`, `policy:LINE`, `file.hpl:LINE`.
    pub rule: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectStep {
    pub action: String,
    pub package: String,
    pub manager: Option<String>,
}

/// Whether `reference` (`policy`, `policy:LINE`, `file.hpl:LINE[:COL]`) names this rule.
pub fn names_rule(reference: &str, origin: &RuleOrigin) -> bool {
    let mut parts = origin.source.rsplitn(3, ':');
    let (col, line, file) = (parts.next(), parts.next(), parts.next());
    let mut r = reference.split(':');
    let head = r.next().unwrap_or("");
    let (rline, rcol) = (r.next(), r.next());
    let head_matches = if head.ends_with(".hpl") {
        file.is_some_and(|f| f == head || f.ends_with(&format!("/{head}")))
    } else {
        origin.policy == head.into()
    };
    head_matches && rline.is_none_or(|l| Some(l) == line) && rcol.is_none_or(|c| Some(c) == col)
}

/// A test file's tests, or an error with its location.
pub fn read(path: &Path) -> Result<TestFile, String> {
    let bytes = hpl_runtime::store::read_regular_file(path, crate::io::MAX_TEXT_BYTES)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text, &path.display().to_string())
}

/// The tests of a test file's text; `name` is where errors say they are.
pub fn parse(text: &str, name: &str) -> Result<TestFile, String> {
    let text = text.to_string();
    toml::from_str::<TestFile>(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let before = text.get(..s.start).unwrap_or(&text);
                let line = before.matches('\n').count() + 1;
                let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                format!(":{line}:{col}")
            })
            .unwrap_or_default();
        format!("{name}{at}: {}", e.message())
    })
}

/// The inventory of a test: the base file with the overrides applied, as JSON (the runtime's
/// parser then reads it like any inventory, with its checks).
pub fn inventory_json(base: &Path, set: Option<&Overrides>) -> Result<Json, String> {
    let bytes = hpl_runtime::store::read_regular_file(base, crate::io::MAX_TEXT_BYTES)
        .map_err(|e| format!("cannot read {}: {e}", base.display()))?;
    let json: Json = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not valid JSON: {e}", base.display()))?;
    match set {
        Some(set) => apply(json, set).map_err(|e| format!("{}: {e}", base.display())),
        None => Ok(json),
    }
}

/// The overrides applied to an inventory's JSON.
pub fn apply(mut json: Json, set: &Overrides) -> Result<Json, String> {
    let obj = json
        .as_object_mut()
        .ok_or_else(|| "not a JSON object".to_string())?;
    if let Some(id) = &set.device_id {
        obj.insert("device_id".into(), Json::from(id.as_str()));
    }
    if let Some(ring) = &set.ring {
        obj.insert("ring".into(), Json::from(ring.as_str()));
    }
    let scopes = obj.entry("scopes").or_insert_with(|| serde_json::json!({}));
    if let Some(scopes) = scopes.as_object_mut() {
        for (key, value) in [
            ("department", &set.department),
            ("team", &set.team),
            ("environment", &set.environment),
        ] {
            if let Some(v) = value {
                scopes.insert(key.into(), Json::from(v.as_str()));
            }
        }
        if let Some(groups) = &set.device_groups {
            scopes.insert("device_groups".into(), Json::from(groups.clone()));
        }
    }
    let device = obj.entry("device").or_insert_with(|| serde_json::json!({}));
    if let Some(device) = device.as_object_mut() {
        if let Some(arch) = &set.arch {
            device.insert("arch".into(), Json::from(arch.as_str()));
        }
        if let Some(v) = &set.os_version {
            let os = device
                .entry("os")
                .or_insert_with(|| serde_json::json!({"name": "macos"}));
            if let Some(os) = os.as_object_mut() {
                os.insert("version".into(), Json::from(v.as_str()));
            }
        }
        if let Some(facts) = &set.facts {
            let current = device
                .entry("facts")
                .or_insert_with(|| serde_json::json!({}));
            if let Some(current) = current.as_object_mut() {
                for (k, v) in facts {
                    current.insert(k.clone(), toml_to_json(v));
                }
            }
        }
    }
    let managers = obj
        .entry("managers")
        .or_insert_with(|| serde_json::json!([]));
    let Some(managers) = managers.as_array_mut() else {
        return Err("`managers` is not a list".to_string());
    };
    managers.retain(|m| {
        !set.remove_managers
            .iter()
            .any(|r| m.get("id").and_then(Json::as_str) == Some(r))
    });
    for r in &set.remove {
        let Some((manager, name)) = r.split_once(':') else {
            return Err(format!("remove: `{r}` is not MANAGER:NAME"));
        };
        let mut found = false;
        for m in managers.iter_mut() {
            if m.get("id").and_then(Json::as_str) != Some(manager) {
                continue;
            }
            if let Some(packages) = m.get_mut("packages").and_then(Json::as_array_mut) {
                let before = packages.len();
                packages.retain(|p| p.get("name").and_then(Json::as_str) != Some(name));
                found |= packages.len() != before;
            }
        }
        if !found {
            // A removal that removes nothing is a mistake in the test, not a pass.
            return Err(format!("remove: the inventory has no package `{r}`"));
        }
    }
    for add in &set.add {
        let package = serde_json::json!({
            "name": add.name, "versions": add.versions, "pinned": add.pinned
        });
        let existing = managers
            .iter_mut()
            .find(|m| m.get("id").and_then(Json::as_str) == Some(add.manager.as_str()));
        let m = match existing {
            Some(m) => m,
            None => {
                managers.push(serde_json::json!({ "id": add.manager, "packages": [] }));
                managers.last_mut().expect("just pushed")
            }
        };
        if let Some(packages) = m.get_mut("packages").and_then(Json::as_array_mut) {
            packages.retain(|p| p.get("name").and_then(Json::as_str) != Some(add.name.as_str()));
            packages.push(package);
        }
    }
    Ok(json)
}

fn toml_to_json(v: &toml::Value) -> Json {
    match v {
        toml::Value::String(s) => Json::from(s.as_str()),
        toml::Value::Integer(i) => Json::from(*i),
        toml::Value::Float(f) => Json::from(*f),
        toml::Value::Boolean(b) => Json::from(*b),
        toml::Value::Datetime(d) => Json::from(d.to_string()),
        toml::Value::Array(a) => Json::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Json::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// Every test file below `dir/tests`, sorted (snapshots/ is skipped).
pub fn discover(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let root = dir.join("tests");
    let mut out = Vec::new();
    if !root.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![root];
    let mut seen = 0usize;
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", d.display()))?;
            seen += 1;
            if seen > 100_000 {
                return Err(format!("{}: more than 100,000 entries", dir.display()));
            }
            let path = entry.path();
            // Links are not followed: a cycle cannot hang discovery.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() && entry.file_name() != "snapshots" {
                stack.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "toml") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(policy: &str, source: &str) -> RuleOrigin {
        RuleOrigin {
            policy: policy.into(),
            policy_version: 1,
            scope: "org:acme".into(),
            source: source.into(),
        }
    }

    #[test]
    fn rule_references_name_a_policy_a_line_or_a_file() {
        let o = origin("platform", "platform.hpl:14:3");
        for yes in [
            "platform",
            "platform:14",
            "platform.hpl:14",
            "platform.hpl:14:3",
        ] {
            assert!(names_rule(yes, &o), "{yes}");
        }
        for no in ["platform:15", "baseline", "web.hpl:14", "platform.hpl:14:4"] {
            assert!(!names_rule(no, &o), "{no}");
        }
        assert!(names_rule(
            "platform.hpl:14",
            &origin("p", "teams/platform.hpl:14:3")
        ));
    }

    #[test]
    fn a_malformed_test_file_is_an_error_with_its_line() {
        let dir = std::env::temp_dir().join(format!("hpl-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.toml");
        std::fs::write(
            &file,
            "[[test]]\nname = \"x\"\ninventory = \"i.json\"\nexpct = {}\n",
        )
        .unwrap();
        let e = read(&file).unwrap_err();
        assert!(e.contains("t.toml:4:1"), "{e}");
        assert!(e.contains("expct"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
