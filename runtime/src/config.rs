//! MDM managed configuration: what the device's management profile tells the runtime.
//!
//! JSON, or the same keys in an XML property list (the form MDM profiles deliver):
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `tenant_id` | string, required | the only tenant whose bundles this device accepts |
//! | `trusted_keys` | array, required | `{ "public_key": "hpl-ed25519-public:<hex>", "key_id": "<16 hex>" }`; `key_id` optional, checked when given |
//! | `mode_cap` | `observe`, `assist` or `enforce` | the highest mode any policy may use on this device |
//! | `scope_hints` | `{ "device_groups": [..] }` | device groups MDM knows the device is in (added to the inventory's) |
//! | `check_in_interval_minutes` | integer 1–1440 | how often the agent checks in |
//!
//! MDM can only lower what the policy permits. A key that would raise anything (`mode`,
//! `force_mode`, `allow_guarded_auto`, `guards`, `auto_remediate`) makes the whole
//! configuration invalid, with an error that says so.

use crate::bundle::Mode;
use crate::load::{key_id, TrustedKeys};
use serde_json::{Map, Value as Json};
use std::fmt;

#[derive(Debug, Clone)]
pub struct ManagedConfig {
    pub tenant_id: String,
    pub trusted_keys: TrustedKeys,
    /// Key ids (hex) of the trusted keys, in order.
    pub key_ids: Vec<String>,
    pub mode_cap: Option<Mode>,
    pub device_groups: Vec<String>,
    pub check_in_interval_minutes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "managed configuration, `{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(key: &str, message: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError {
        key: key.into(),
        message: message.into(),
    })
}

const RAISING_KEYS: &[&str] = &[
    "mode",
    "force_mode",
    "mode_floor",
    "allow_guarded_auto",
    "guards",
    "auto_remediate",
];

impl ManagedConfig {
    pub fn from_json_str(text: &str) -> Result<ManagedConfig, ConfigError> {
        let json: Json = serde_json::from_str(text).map_err(|e| ConfigError {
            key: "$".into(),
            message: format!("not valid JSON: {e}"),
        })?;
        ManagedConfig::from_value(&json)
    }

    /// An XML property list with the same keys.
    pub fn from_plist_str(text: &str) -> Result<ManagedConfig, ConfigError> {
        let json = plist::parse(text).map_err(|message| ConfigError {
            key: "plist".into(),
            message,
        })?;
        ManagedConfig::from_value(&json)
    }

    /// JSON or plist, by the first non-blank character.
    pub fn parse(text: &str) -> Result<ManagedConfig, ConfigError> {
        if text.trim_start().starts_with('<') {
            ManagedConfig::from_plist_str(text)
        } else {
            ManagedConfig::from_json_str(text)
        }
    }

    pub fn from_value(json: &Json) -> Result<ManagedConfig, ConfigError> {
        let Some(o) = json.as_object() else {
            return err("$", "expected an object (a dict)");
        };
        for key in RAISING_KEYS {
            if o.contains_key(*key) {
                return err(key, "MDM may only lower what the policy permits (use `mode_cap` to cap the mode); this key would raise it");
            }
        }
        let tenant_id = match o.get("tenant_id") {
            Some(Json::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => return err("tenant_id", "expected a non-empty string"),
            None => return err("tenant_id", "missing"),
        };
        let mut trusted_keys = TrustedKeys::new();
        let mut key_ids = Vec::new();
        let Some(Json::Array(keys)) = o.get("trusted_keys") else {
            return err("trusted_keys", "expected an array of keys");
        };
        if keys.is_empty() {
            return err(
                "trusted_keys",
                "at least one key is needed: without one no bundle can be trusted",
            );
        }
        for (i, k) in keys.iter().enumerate() {
            let path = format!("trusted_keys[{i}]");
            let Some(k) = k.as_object() else {
                return err(&path, "expected an object with `public_key`");
            };
            let Some(Json::String(text)) = k.get("public_key") else {
                return err(&path, "missing `public_key`");
            };
            let hex = text
                .trim()
                .strip_prefix("hpl-ed25519-public:")
                .unwrap_or(text.trim());
            let Some(bytes) = unhex32(hex) else {
                return err(&path, "`public_key` is not 64 hex digits");
            };
            let id = crate::load::hex(&key_id(&bytes));
            if let Some(Json::String(claimed)) = k.get("key_id") {
                if !claimed.eq_ignore_ascii_case(&id) {
                    return err(
                        &path,
                        format!("`key_id` {claimed} does not match the key (its id is {id})"),
                    );
                }
            }
            trusted_keys.add(&bytes).map_err(|e| ConfigError {
                key: path.clone(),
                message: e.to_string(),
            })?;
            key_ids.push(id);
        }
        let mode_cap = match o.get("mode_cap") {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(match s.as_str() {
                "observe" => Mode::Observe,
                "assist" => Mode::Assist,
                "enforce" => Mode::Enforce,
                other => {
                    return err(
                        "mode_cap",
                        format!("`{other}` is not observe, assist or enforce"),
                    )
                }
            }),
            Some(_) => return err("mode_cap", "expected a string"),
        };
        let device_groups = match o.get("scope_hints") {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Object(h)) => strings(h, "device_groups")?,
            Some(_) => return err("scope_hints", "expected an object"),
        };
        let check_in_interval_minutes = match o.get("check_in_interval_minutes") {
            None | Some(Json::Null) => 60,
            Some(v) => match v.as_u64() {
                Some(n @ 1..=1440) => n as u32,
                _ => {
                    return err(
                        "check_in_interval_minutes",
                        "expected an integer from 1 to 1440",
                    )
                }
            },
        };
        Ok(ManagedConfig {
            tenant_id,
            trusted_keys,
            key_ids,
            mode_cap,
            device_groups,
            check_in_interval_minutes,
        })
    }
}

fn strings(o: &Map<String, Json>, key: &str) -> Result<Vec<String>, ConfigError> {
    match o.get(key) {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or(ConfigError {
                    key: format!("scope_hints.{key}"),
                    message: "expected strings".into(),
                })
            })
            .collect(),
        Some(_) => err(
            &format!("scope_hints.{key}"),
            "expected an array of strings",
        ),
    }
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}

/// The XML property-list subset managed preferences use: dict, array, key, string, integer,
/// true, false. Turned into JSON so both forms share one reader.
mod plist {
    use serde_json::{Map, Value};

    struct P<'a> {
        s: &'a str,
        pos: usize,
    }

    pub fn parse(text: &str) -> Result<Value, String> {
        let mut p = P { s: text, pos: 0 };
        p.skip_prolog();
        p.expect_open("plist")?;
        let v = p.value()?;
        p.ws();
        p.expect_close("plist")?;
        Ok(v)
    }

    impl P<'_> {
        fn ws(&mut self) {
            loop {
                let rest = &self.s[self.pos..];
                let trimmed = rest.trim_start();
                self.pos += rest.len() - trimmed.len();
                if trimmed.starts_with("<!--") {
                    match trimmed.find("-->") {
                        Some(i) => self.pos += i + 3,
                        None => self.pos = self.s.len(),
                    }
                } else {
                    break;
                }
            }
        }

        fn skip_prolog(&mut self) {
            loop {
                self.ws();
                let rest = &self.s[self.pos..];
                if rest.starts_with("<?") || rest.starts_with("<!") {
                    match rest.find('>') {
                        Some(i) => self.pos += i + 1,
                        None => {
                            self.pos = self.s.len();
                            return;
                        }
                    }
                } else {
                    return;
                }
            }
        }

        fn tag(&mut self) -> Result<String, String> {
            self.ws();
            let rest = &self.s[self.pos..];
            if !rest.starts_with('<') {
                return Err(format!("expected a tag at byte {}", self.pos));
            }
            let end = rest
                .find('>')
                .ok_or_else(|| format!("unclosed tag at byte {}", self.pos))?;
            let inner = &rest[1..end];
            self.pos += end + 1;
            Ok(inner.split_whitespace().next().unwrap_or("").to_string()
                + if inner.ends_with('/') { "/" } else { "" })
        }

        fn expect_open(&mut self, name: &str) -> Result<(), String> {
            let t = self.tag()?;
            if t == name {
                Ok(())
            } else {
                Err(format!("expected <{name}>, found <{t}>"))
            }
        }

        fn expect_close(&mut self, name: &str) -> Result<(), String> {
            let t = self.tag()?;
            if t == format!("/{name}") {
                Ok(())
            } else {
                Err(format!("expected </{name}>, found <{t}>"))
            }
        }

        fn text(&mut self, name: &str) -> Result<String, String> {
            let rest = &self.s[self.pos..];
            let close = format!("</{name}>");
            let end = rest
                .find(&close)
                .ok_or_else(|| format!("missing {close}"))?;
            let raw = &rest[..end];
            self.pos += end + close.len();
            Ok(raw
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"))
        }

        fn value(&mut self) -> Result<Value, String> {
            let t = self.tag()?;
            match t.as_str() {
                "dict" => {
                    let mut map = Map::new();
                    loop {
                        self.ws();
                        if self.s[self.pos..].starts_with("</dict>") {
                            self.pos += "</dict>".len();
                            return Ok(Value::Object(map));
                        }
                        self.expect_open("key")?;
                        let key = self.text("key")?;
                        let v = self.value()?;
                        map.insert(key, v);
                    }
                }
                "array" => {
                    let mut items = Vec::new();
                    loop {
                        self.ws();
                        if self.s[self.pos..].starts_with("</array>") {
                            self.pos += "</array>".len();
                            return Ok(Value::Array(items));
                        }
                        items.push(self.value()?);
                    }
                }
                "dict/" => Ok(Value::Object(Map::new())),
                "array/" => Ok(Value::Array(Vec::new())),
                "string" => Ok(Value::String(self.text("string")?)),
                "string/" => Ok(Value::String(String::new())),
                "integer" => {
                    let text = self.text("integer")?;
                    text.trim()
                        .parse::<i64>()
                        .map(Value::from)
                        .map_err(|_| format!("`{text}` is not an integer"))
                }
                "true/" => Ok(Value::Bool(true)),
                "false/" => Ok(Value::Bool(false)),
                other => Err(format!("unsupported plist element <{other}>")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "hpl-ed25519-public:ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";

    #[test]
    fn json_and_plist_give_the_same_config() {
        let json = format!(
            r#"{{"tenant_id":"acme","trusted_keys":[{{"public_key":"{KEY}"}}],"mode_cap":"assist",
            "scope_hints":{{"device_groups":["build_agents"]}},"check_in_interval_minutes":30}}"#
        );
        let plist = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>tenant_id</key><string>acme</string>
  <key>trusted_keys</key>
  <array><dict><key>public_key</key><string>{KEY}</string></dict></array>
  <key>mode_cap</key><string>assist</string>
  <key>scope_hints</key><dict><key>device_groups</key><array><string>build_agents</string></array></dict>
  <key>check_in_interval_minutes</key><integer>30</integer>
</dict>
</plist>"#
        );
        let a = ManagedConfig::parse(&json).expect("json");
        let b = ManagedConfig::parse(&plist).expect("plist");
        assert_eq!(
            (
                a.tenant_id.as_str(),
                a.mode_cap,
                a.check_in_interval_minutes
            ),
            ("acme", Some(Mode::Assist), 30)
        );
        assert_eq!(
            (
                &b.tenant_id,
                b.mode_cap,
                b.check_in_interval_minutes,
                &b.device_groups
            ),
            (&a.tenant_id, a.mode_cap, 30, &a.device_groups)
        );
        assert_eq!(a.key_ids, b.key_ids);
    }

    #[test]
    fn a_config_that_raises_anything_is_rejected() {
        let raise = format!(
            r#"{{"tenant_id":"acme","trusted_keys":[{{"public_key":"{KEY}"}}],"mode":"enforce"}}"#
        );
        let e = ManagedConfig::parse(&raise).expect_err("rejected");
        assert_eq!(e.key, "mode");
        assert!(e.message.contains("only lower"));
        let bad_cap = format!(
            r#"{{"tenant_id":"acme","trusted_keys":[{{"public_key":"{KEY}"}}],"mode_cap":"auto"}}"#
        );
        assert_eq!(
            ManagedConfig::parse(&bad_cap).expect_err("rejected").key,
            "mode_cap"
        );
        let wrong_id = format!(
            r#"{{"tenant_id":"acme","trusted_keys":[{{"public_key":"{KEY}","key_id":"0000000000000000"}}]}}"#
        );
        assert!(ManagedConfig::parse(&wrong_id)
            .expect_err("rejected")
            .message
            .contains("does not match"));
        assert_eq!(
            ManagedConfig::parse(r#"{"tenant_id":"acme","trusted_keys":[]}"#)
                .expect_err("rejected")
                .key,
            "trusted_keys"
        );
        assert!(
            ManagedConfig::parse("<plist><dict><key>x</key><data>AA==</data></dict></plist>")
                .is_err()
        );
    }
}
