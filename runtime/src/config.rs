//! MDM managed configuration: what the device's management profile tells the runtime.
//!
//! JSON, or the same keys in a property list, XML or binary (the forms MDM profiles deliver),
//! read with the `plist` crate:
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `tenant_id` | string, required | the only tenant whose bundles this device accepts |
//! | `trusted_keys` | array, required | `{ "public_key": "hpl-ed25519-public:<hex>", "key_id": "<16 hex>" }`; `key_id` optional, checked when given |
//! | `distribution_keys` | array | the same form: keys of the distribution role, which sign ring manifests (docs/distribution.md); a key may not be in both lists |
//! | `mode_cap` | `observe`, `assist` or `enforce` | the highest mode any policy may use on this device |
//! | `scope_hints` | `{ "device_groups": [..] }` | device groups MDM knows the device is in (added to the inventory's) |
//! | `check_in_interval_minutes` | integer 1–1440 | how often the agent checks in |
//!
//! MDM can only lower what the policy permits. A key that would raise anything (`mode`,
//! `force_mode`, `allow_guarded_auto`, `guards`, `auto_remediate`) makes the whole
//! configuration invalid, with an error that says so; so do unknown keys (with the key that was
//! probably meant), keys given twice and nesting deeper than 32.

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
    /// The distribution role's keys: they sign ring manifests, never bundles
    /// (docs/distribution.md). Empty: the device follows no manifest.
    pub distribution_keys: TrustedKeys,
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

/// A list of keys (`trusted_keys`, `distribution_keys`): the keys and their ids (hex).
fn key_list(keys: &[Json], field: &str) -> Result<(TrustedKeys, Vec<String>), ConfigError> {
    let mut trusted = TrustedKeys::new();
    let mut ids = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let path = format!("{field}[{i}]");
        let Some(k) = k.as_object() else {
            return err(&path, "expected an object with `public_key`");
        };
        only_known(k, &path, &["public_key", "key_id"])?;
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
        trusted.add(&bytes).map_err(|e| ConfigError {
            key: path.clone(),
            message: e.to_string(),
        })?;
        ids.push(id);
    }
    Ok((trusted, ids))
}

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
        ManagedConfig::from_value(&json_without_duplicates(text)?)
    }

    /// A property list (XML or binary) with the same keys.
    pub fn from_plist_bytes(bytes: &[u8]) -> Result<ManagedConfig, ConfigError> {
        ManagedConfig::from_value(&plist_to_json(bytes)?)
    }

    /// An XML property list with the same keys.
    pub fn from_plist_str(text: &str) -> Result<ManagedConfig, ConfigError> {
        ManagedConfig::from_plist_bytes(text.as_bytes())
    }

    /// JSON, an XML plist or a binary plist, by how the bytes begin.
    pub fn parse_bytes(bytes: &[u8]) -> Result<ManagedConfig, ConfigError> {
        if bytes.len() > MAX_CONFIG_BYTES {
            return err("$", format!("larger than {MAX_CONFIG_BYTES} bytes"));
        }
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(bytes.len());
        let rest = &bytes[start..];
        if rest.starts_with(b"bplist") || rest.starts_with(b"<") {
            ManagedConfig::from_plist_bytes(bytes)
        } else {
            match std::str::from_utf8(bytes) {
                Ok(text) => ManagedConfig::from_json_str(text),
                Err(_) => err("$", "neither JSON nor a property list"),
            }
        }
    }

    /// JSON or an XML plist, by the first non-blank character.
    pub fn parse(text: &str) -> Result<ManagedConfig, ConfigError> {
        ManagedConfig::parse_bytes(text.as_bytes())
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
        only_known(
            o,
            "",
            &[
                "tenant_id",
                "trusted_keys",
                "distribution_keys",
                "mode_cap",
                "scope_hints",
                "check_in_interval_minutes",
            ],
        )?;
        let tenant_id = match o.get("tenant_id") {
            Some(Json::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => return err("tenant_id", "expected a non-empty string"),
            None => return err("tenant_id", "missing"),
        };
        let (trusted_keys, key_ids) = match o.get("trusted_keys") {
            Some(Json::Array(keys)) if keys.is_empty() => {
                return err(
                    "trusted_keys",
                    "at least one key is needed: without one no bundle can be trusted",
                )
            }
            Some(Json::Array(keys)) => key_list(keys, "trusted_keys")?,
            _ => return err("trusted_keys", "expected an array of keys"),
        };
        let (distribution_keys, distribution_key_ids) = match o.get("distribution_keys") {
            None | Some(Json::Null) => (TrustedKeys::new(), Vec::new()),
            Some(Json::Array(keys)) => key_list(keys, "distribution_keys")?,
            Some(_) => return err("distribution_keys", "expected an array of keys"),
        };
        // Each key for its role only: a key trusted for both would let the holder of either
        // role's key do the other's work.
        if let Some(shared) = distribution_key_ids.iter().find(|id| key_ids.contains(id)) {
            return err(
                "distribution_keys",
                format!(
                    "key {shared} is also a policy key (`trusted_keys`): each key has one role"
                ),
            );
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
            Some(Json::Object(h)) => {
                only_known(h, "scope_hints", &["device_groups"])?;
                strings(h, "device_groups")?
            }
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
            distribution_keys,
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

/// How deep a configuration may nest (it needs 3 levels).
const MAX_DEPTH: usize = 32;
/// The largest configuration read (a real one is well under 10 kB).
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// JSON into a value, refusing duplicate keys (serde_json keeps the last silently).
fn json_without_duplicates(text: &str) -> Result<Json, ConfigError> {
    use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Json;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
            Ok(Json::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
            Ok(Json::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
            Ok(Json::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
            Ok(Json::from(v))
        }
        fn visit_str<E>(self, v: &str) -> Result<Json, E> {
            Ok(Json::String(v.to_string()))
        }
        fn visit_string<E>(self, v: String) -> Result<Json, E> {
            Ok(Json::String(v))
        }
        fn visit_unit<E>(self) -> Result<Json, E> {
            Ok(Json::Null)
        }
        fn visit_none<E>(self) -> Result<Json, E> {
            Ok(Json::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element_seed(S)? {
                out.push(v);
            }
            Ok(Json::Array(out))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
            let mut out = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = map.next_value_seed(S)?;
                if out.insert(key.clone(), value).is_some() {
                    return Err(serde::de::Error::custom(format!(
                        "the key `{key}` is given twice"
                    )));
                }
            }
            Ok(Json::Object(out))
        }
    }
    struct S;
    impl<'de> DeserializeSeed<'de> for S {
        type Value = Json;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
            d.deserialize_any(V)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let value = S.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    value.map_err(|e| ConfigError {
        key: "$".into(),
        message: format!("not valid JSON: {e}"),
    })
}

/// A property list (XML or binary, read by the `plist` crate) into the same JSON shape the
/// JSON form has, refusing duplicate keys, nesting beyond [`MAX_DEPTH`] and the types a
/// configuration never holds (data, dates, uids, reals).
fn plist_to_json(bytes: &[u8]) -> Result<Json, ConfigError> {
    use plist::stream::{Event, Reader};
    let fail = |message: String| ConfigError {
        key: "plist".into(),
        message,
    };
    enum Frame {
        Array(Vec<Json>),
        Dict(Map<String, Json>, Option<String>),
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Json> = None;
    for event in Reader::new(std::io::Cursor::new(bytes)) {
        let event = event.map_err(|e| fail(format!("not a valid property list: {e}")))?;
        let value = match event {
            Event::StartArray(_) | Event::StartDictionary(_) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(fail(format!("nested deeper than {MAX_DEPTH} levels")));
                }
                stack.push(match event {
                    Event::StartArray(_) => Frame::Array(Vec::new()),
                    _ => Frame::Dict(Map::new(), None),
                });
                continue;
            }
            Event::EndCollection => match stack.pop() {
                Some(Frame::Array(items)) => Json::Array(items),
                Some(Frame::Dict(map, None)) => Json::Object(map),
                Some(Frame::Dict(_, Some(key))) => {
                    return Err(fail(format!("the key `{key}` has no value")))
                }
                None => return Err(fail("unbalanced collection".into())),
            },
            Event::Boolean(b) => Json::Bool(b),
            Event::Integer(i) => match (i.as_signed(), i.as_unsigned()) {
                (Some(v), _) => Json::from(v),
                (None, Some(v)) => Json::from(v),
                _ => return Err(fail("an integer out of range".into())),
            },
            Event::String(s) => {
                // In a dict, strings alternate as keys and values.
                if let Some(Frame::Dict(map, pending @ None)) = stack.last_mut() {
                    let key = s.into_owned();
                    if map.contains_key(&key) {
                        return Err(ConfigError {
                            key: key.clone(),
                            message: "given twice".into(),
                        });
                    }
                    *pending = Some(key);
                    continue;
                }
                Json::String(s.into_owned())
            }
            other => {
                return Err(fail(format!(
                    "a configuration holds strings, integers, booleans, arrays and dicts, not {other:?}"
                )))
            }
        };
        match stack.last_mut() {
            Some(Frame::Array(items)) => items.push(value),
            Some(Frame::Dict(map, pending)) => match pending.take() {
                Some(key) => {
                    map.insert(key, value);
                }
                None => return Err(fail("a dict key must be a string".into())),
            },
            None => {
                if root.replace(value).is_some() {
                    return Err(fail("more than one value at the top".into()));
                }
            }
        }
    }
    if !stack.is_empty() {
        return Err(fail("the property list ends inside a collection".into()));
    }
    root.ok_or_else(|| fail("the property list is empty".into()))
}

/// Refuses keys a level does not know, with the closest known one: a misspelled `mode_cap`
/// must not leave the device at full enforce.
fn only_known(o: &Map<String, Json>, at: &str, known: &[&str]) -> Result<(), ConfigError> {
    let squash = |k: &str| -> String {
        k.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    for key in o.keys() {
        if known.contains(&key.as_str()) {
            continue;
        }
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        let hint = known
            .iter()
            .find(|k| squash(k) == squash(key))
            .map(|k| format!("; did you mean `{k}`?"))
            .unwrap_or_else(|| format!("; known keys: {}", known.join(", ")));
        return err(&path, format!("unknown key{hint}"));
    }
    Ok(())
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

    fn config(extra: &str) -> String {
        format!(r#"{{"tenant_id":"acme","trusted_keys":[{{"public_key":"{KEY}"}}]{extra}}}"#)
    }

    // Issue 9 (10): unknown keys are refused with the key meant, never ignored.
    #[test]
    fn unknown_and_misspelled_keys_are_refused_with_a_suggestion() {
        for (extra, key, hint) in [
            (r#","modeCap":"observe""#, "modeCap", "mode_cap"),
            (r#","mode_cap ":"observe""#, "mode_cap ", "mode_cap"),
            (
                r#","scope_hints":{"deviceGroups":["x"]}"#,
                "scope_hints.deviceGroups",
                "device_groups",
            ),
            (r#","frobnicate":1"#, "frobnicate", "known keys"),
        ] {
            let e = ManagedConfig::parse(&config(extra)).expect_err(extra);
            assert_eq!(e.key, key, "{extra}");
            assert!(e.message.contains(hint), "{extra}: {}", e.message);
        }
    }

    /// Issue 11: the distribution role's keys, and one key never in both roles.
    #[test]
    fn distribution_keys_are_read_and_may_not_be_policy_keys() {
        let other =
            "hpl-ed25519-public:8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
        let c = ManagedConfig::parse(&format!(
            r#"{{"tenant_id":"acme","trusted_keys":[{{"public_key":"{KEY}"}}],"distribution_keys":[{{"public_key":"{other}"}}]}}"#
        ))
        .unwrap();
        assert!(!c.distribution_keys.is_empty());
        assert!(ManagedConfig::parse(&config(""))
            .unwrap()
            .distribution_keys
            .is_empty());
        let e = ManagedConfig::parse(&config(&format!(
            r#","distribution_keys":[{{"public_key":"{KEY}"}}]"#
        )))
        .unwrap_err();
        assert_eq!(e.key, "distribution_keys");
        assert!(e.message.contains("each key has one role"), "{e}");
        let e = ManagedConfig::parse(&config(r#","distribution_keys":[{"public_key":"zz"}]"#))
            .unwrap_err();
        assert_eq!(e.key, "distribution_keys[0]");
    }

    // Issue 9 (10): a key given twice is an error, in JSON and in plists.
    #[test]
    fn duplicate_keys_are_refused() {
        let e = ManagedConfig::parse(&config(r#","mode_cap":"observe","mode_cap":"enforce""#))
            .expect_err("duplicate");
        assert!(
            e.message.contains("mode_cap") && e.message.contains("twice"),
            "{e}"
        );
        let plist = format!(
            "<plist><dict><key>tenant_id</key><string>acme</string><key>tenant_id</key><string>globex</string><key>trusted_keys</key><array><dict><key>public_key</key><string>{KEY}</string></dict></array></dict></plist>"
        );
        let e = ManagedConfig::parse(&plist).expect_err("duplicate");
        assert_eq!(e.key, "tenant_id");
    }

    // Issue 9 (10): canonical plists read as macOS writes them; deep nesting is an error.
    #[test]
    fn canonical_plists_are_read_and_deep_ones_refused() {
        let plist = format!(
            "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict><key>tenant_id</key><string>a&amp;b</string><key>trusted_keys</key><array><dict><key>public_key</key><string>{KEY}</string></dict></array><key>scope_hints</key><dict><key>device_groups</key><array/></dict></dict></plist>"
        );
        let c = ManagedConfig::parse(&plist).expect("canonical plist");
        assert_eq!(c.tenant_id, "a&b", "character references are decoded");
        assert!(c.device_groups.is_empty());
        let deep = format!(
            "<plist>{}{}</plist>",
            "<array>".repeat(50_000),
            "</array>".repeat(50_000)
        );
        let e = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || ManagedConfig::parse(&deep).expect_err("deep"))
            .expect("thread")
            .join()
            .expect("no stack overflow");
        assert!(e.message.contains("nested deeper"), "{e}");
        let with_bool = format!(
            "<plist><dict><key>tenant_id</key><string>acme</string><key>trusted_keys</key><array><dict><key>public_key</key><string>{KEY}</string></dict></array><key>scope_hints</key><dict><key>device_groups</key><array><string>g</string></array></dict><key>check_in_interval_minutes</key><integer>15</integer></dict></plist>"
        );
        assert_eq!(
            ManagedConfig::parse(&with_bool)
                .expect("plist")
                .check_in_interval_minutes,
            15
        );
    }

    // Binary plists (what `defaults` and many MDM tools write) read like XML ones.
    #[test]
    fn binary_plists_are_read() {
        let mut dict = plist::Dictionary::new();
        dict.insert("tenant_id".into(), plist::Value::String("acme".into()));
        let mut key = plist::Dictionary::new();
        key.insert("public_key".into(), plist::Value::String(KEY.into()));
        dict.insert(
            "trusted_keys".into(),
            plist::Value::Array(vec![plist::Value::Dictionary(key)]),
        );
        dict.insert("mode_cap".into(), plist::Value::String("observe".into()));
        let mut bytes = Vec::new();
        plist::Value::Dictionary(dict)
            .to_writer_binary(&mut bytes)
            .expect("binary plist");
        assert!(bytes.starts_with(b"bplist"));
        let c = ManagedConfig::parse_bytes(&bytes).expect("binary");
        assert_eq!(c.mode_cap, Some(Mode::Observe));
    }
}
