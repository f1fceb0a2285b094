//! `hpl keygen`, `build`, `verify`, `inspect`, `eval`.

use crate::build::{
    build_bundle, compile_verified, generate_key, key_id_hex, parse_public_key, parse_secret_key,
    public_key_text, secret_key_text,
};
use crate::check::CheckOptions;
use crate::diagnostics::render;
use crate::driver::{analyze_sources, load_files, Analysis};
use crate::lower::BuildOptions;
use hpl_runtime::bundle::{decode_content, BundleContent};
use hpl_runtime::config::ManagedConfig;
use hpl_runtime::device::Device;
use hpl_runtime::enforce::Verdict;
use hpl_runtime::eval::timestamp;
use hpl_runtime::inventory::{parse_timestamp, Inventory};
use hpl_runtime::load::{hex, load, open_envelope, TrustedKeys};
use hpl_runtime::record::{ComplianceRecord, State};
use hpl_runtime::store::{install_event, SnapshotStore};
use std::io::Write;
use std::path::{Path, PathBuf};

type Out<'a> = &'a mut dyn Write;

fn read_text(path: &Path, err: Out<'_>) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) => {
            writeln!(err, "error: cannot read {}: {e}", path.display())?;
            Ok(None)
        }
    }
}

pub fn keygen(path: &Path, out: Out<'_>, err: Out<'_>) -> std::io::Result<i32> {
    let key = match generate_key() {
        Ok(k) => k,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(1);
        }
    };
    let public = PathBuf::from(format!("{}.pub", path.display()));
    if let Err(e) = write_private(path, &secret_key_text(&key)) {
        writeln!(err, "error: cannot write {}: {e}", path.display())?;
        return Ok(2);
    }
    if let Err(e) = std::fs::write(&public, public_key_text(&key)) {
        writeln!(err, "error: cannot write {}: {e}", public.display())?;
        return Ok(2);
    }
    writeln!(
        out,
        "wrote {} and {} (key id {})",
        path.display(),
        public.display(),
        key_id_hex(&key)
    )?;
    Ok(0)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(text.as_bytes())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, text)
    }
}

/// `30d`, `12h`, `90m`, `3600s` → seconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = number.parse().ok()?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    n.checked_mul(unit)
}

fn analyze_dir(paths: &[PathBuf], err: Out<'_>) -> std::io::Result<Option<Analysis>> {
    let files = match load_files(paths) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            writeln!(err, "error: no .hpl files found")?;
            return Ok(None);
        }
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(None);
        }
    };
    let analysis = analyze_sources(files, CheckOptions::default());
    if analysis.has_errors() {
        err.write_all(render::human(&analysis.db, &analysis.diagnostics).as_bytes())?;
        writeln!(err, "error: the policy has errors; nothing was built")?;
        return Ok(None);
    }
    Ok(Some(analysis))
}

fn root_of(paths: &[PathBuf]) -> Option<PathBuf> {
    match paths {
        [one] if one.is_dir() => Some(one.clone()),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
pub fn build(
    paths: &[PathBuf],
    path: &Path,
    sign_keys: &[PathBuf],
    bundle_version: u64,
    expires_in: Option<&str>,
    issued_at: Option<&str>,
    out: Out<'_>,
    err: Out<'_>,
) -> std::io::Result<i32> {
    let issued_at = match issued_at {
        Some(text) => match parse_timestamp(text) {
            Some(t) => t,
            None => {
                writeln!(
                    err,
                    "error: --issued-at `{text}` is not an RFC 3339 timestamp"
                )?;
                return Ok(2);
            }
        },
        None => match std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            Some(t) => t,
            None => jiff::Timestamp::now().as_second(),
        },
    };
    let expires_at = match expires_in {
        Some(text) => match parse_duration(text) {
            Some(d) => Some(issued_at.saturating_add(d)),
            None => {
                writeln!(
                    err,
                    "error: --expires-in `{text}` is not a duration like 30d, 12h or 90m"
                )?;
                return Ok(2);
            }
        },
        None => None,
    };
    let mut keys = Vec::new();
    for k in sign_keys {
        let Some(text) = read_text(k, err)? else {
            return Ok(2);
        };
        match parse_secret_key(&text) {
            Ok(key) => keys.push(key),
            Err(e) => {
                writeln!(err, "error: {}: {e}", k.display())?;
                return Ok(2);
            }
        }
    }
    let Some(analysis) = analyze_dir(paths, err)? else {
        return Ok(1);
    };
    let options = BuildOptions {
        bundle_version,
        issued_at,
        expires_at,
        root: root_of(paths),
    };
    let key_refs: Vec<_> = keys.iter().collect();
    let bytes = match build_bundle(&analysis, &options, &key_refs) {
        Ok(b) => b,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(1);
        }
    };
    if let Err(e) = std::fs::write(path, &bytes) {
        writeln!(err, "error: cannot write {}: {e}", path.display())?;
        return Ok(2);
    }
    let signed = if keys.is_empty() {
        "unsigned".to_string()
    } else {
        format!(
            "signed by {}",
            keys.iter().map(key_id_hex).collect::<Vec<_>>().join(", ")
        )
    };
    writeln!(
        out,
        "wrote {} ({} bytes, bundle version {bundle_version}, {signed})",
        path.display(),
        bytes.len()
    )?;
    if keys.is_empty() {
        writeln!(
            err,
            "warning: the bundle is unsigned; devices reject it (pass --sign-key)"
        )?;
    }
    Ok(0)
}

fn trusted_keys(paths: &[PathBuf], err: Out<'_>) -> std::io::Result<Option<TrustedKeys>> {
    let mut keys = TrustedKeys::new();
    for p in paths {
        let Some(text) = read_text(p, err)? else {
            return Ok(None);
        };
        let key = match parse_public_key(&text) {
            Ok(k) => k,
            Err(e) => {
                writeln!(err, "error: {}: {e}", p.display())?;
                return Ok(None);
            }
        };
        if let Err(e) = keys.add(&key) {
            writeln!(err, "error: {}: {e}", p.display())?;
            return Ok(None);
        }
    }
    Ok(Some(keys))
}

pub fn verify(bundle: &Path, keys: &[PathBuf], out: Out<'_>, err: Out<'_>) -> std::io::Result<i32> {
    let Some(keys) = trusted_keys(keys, err)? else {
        return Ok(2);
    };
    let bytes = match std::fs::read(bundle) {
        Ok(b) => b,
        Err(e) => {
            writeln!(err, "error: cannot read {}: {e}", bundle.display())?;
            return Ok(2);
        }
    };
    match load(&bytes, &keys) {
        Ok(b) => {
            let m = &b.content().manifest;
            writeln!(
                out,
                "valid: tenant {}, bundle version {}, {} policies, {} rules, signed by {}, {}",
                m.tenant,
                m.bundle_version,
                m.policies.len(),
                b.content().rules.len(),
                b.signers().join(", "),
                b.hash_string()
            )?;
            Ok(0)
        }
        Err(e) => {
            writeln!(out, "invalid ({}): {e}", e.code())?;
            Ok(1)
        }
    }
}

pub fn inspect(bundle: &Path, disasm: bool, out: Out<'_>, err: Out<'_>) -> std::io::Result<i32> {
    let bytes = match std::fs::read(bundle) {
        Ok(b) => b,
        Err(e) => {
            writeln!(err, "error: cannot read {}: {e}", bundle.display())?;
            return Ok(2);
        }
    };
    let (content_bytes, hash, signatures) = match open_envelope(&bytes) {
        Ok(x) => x,
        Err(e) => {
            writeln!(out, "invalid ({}): {e}", e.code())?;
            return Ok(1);
        }
    };
    let c = match decode_content(content_bytes, 10) {
        Ok(c) => c,
        Err(e) => {
            writeln!(out, "invalid (malformed): {e:?}")?;
            return Ok(1);
        }
    };
    out.write_all(describe(&c, &hash, &signatures, disasm).as_bytes())?;
    Ok(0)
}

/// The text `hpl inspect` prints.
pub fn describe(
    c: &BundleContent,
    hash: &[u8; 32],
    signatures: &[([u8; 8], [u8; 64])],
    disasm: bool,
) -> String {
    let mut s = String::new();
    let m = &c.manifest;
    let w = &mut s;
    use std::fmt::Write as _;
    let _ = writeln!(w, "bundle      {}", m.tenant);
    let _ = writeln!(w, "version     {}", m.bundle_version);
    let _ = writeln!(w, "issued at   {}", timestamp(m.issued_at));
    let _ = writeln!(
        w,
        "expires at  {}",
        m.expires_at.map_or("never".to_string(), timestamp)
    );
    let _ = writeln!(w, "compiler    {}", m.compiler_version);
    let _ = writeln!(w, "sources     sha256:{}", hex(&m.source_hash));
    let _ = writeln!(w, "content     sha256:{}", hex(hash));
    let _ = writeln!(
        w,
        "signatures  {}",
        if signatures.is_empty() {
            "none".to_string()
        } else {
            signatures
                .iter()
                .map(|(id, _)| hex(id))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let _ = writeln!(
        w,
        "policies    {}",
        m.policies
            .iter()
            .map(|(id, v)| format!("{id} v{v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        w,
        "tables      {} strings, {} scopes, {} rules, {} conditions (cost bound {}), {} toolchains, {} windows, {} guards",
        c.strings.len(),
        c.scopes.len(),
        c.rules.len(),
        c.conditions.len(),
        c.cost_bound,
        c.toolchains.len(),
        c.windows.len(),
        c.guards.len()
    );
    let origin = |o: u32| -> String {
        c.origins
            .get(o as usize)
            .map_or("<bad origin>".into(), |o| {
                let policy = c
                    .policies
                    .get(o.policy as usize)
                    .map_or("?", |p| c.str(p.name));
                format!("{policy} {}:{}:{}", c.str(o.file), o.line, o.column)
            })
    };
    let _ = writeln!(w, "\nscopes");
    for (i, scope) in c.scopes.iter().enumerate() {
        let rules = c.scope_rules.get(i).map_or(0, Vec::len);
        let _ = writeln!(
            w,
            "  {:<3} {:<13} {:<20} {rules} rules",
            i,
            scope.level.as_str(),
            c.str(scope.name)
        );
    }
    let _ = writeln!(w, "\nrules");
    for (i, r) in c.rules.iter().enumerate() {
        let kind = hpl_runtime::vocab::RecordRuleKind::of(r.kind, r.is_final).as_str();
        let constraint = r
            .constraint
            .map_or_else(String::new, |x| format!(" {}", c.str(x)));
        let cond = r
            .condition
            .map_or_else(String::new, |x| format!(" when#{x}"));
        let warn = if r.warn { " warn" } else { "" };
        let _ = writeln!(
            w,
            "  {:<4} {kind:<7} {}{constraint}{cond}{warn}  ({})",
            i,
            c.str(r.display),
            origin(r.origin)
        );
    }
    if disasm {
        let _ = writeln!(w, "\nconditions");
        for (i, cond) in c.conditions.iter().enumerate() {
            let _ = writeln!(
                w,
                "  #{i} `{}`  ({}; stack {}, cost {})",
                c.str(cond.source),
                origin(cond.origin),
                cond.max_stack,
                cond.cost
            );
            for line in hpl_runtime::vm::disassemble(&cond.code, &c.strings) {
                let _ = writeln!(w, "    {line}");
            }
        }
    }
    s
}

/// Where the bundle comes from, and the device's managed configuration.
pub struct Source {
    pub bundle: Option<PathBuf>,
    pub keys: Vec<PathBuf>,
    pub policy: Option<PathBuf>,
    pub store: Option<PathBuf>,
    pub config: Option<PathBuf>,
}

fn parse_time(at: Option<&str>, err: Out<'_>) -> std::io::Result<Option<i64>> {
    match at {
        Some(text) => match parse_timestamp(text) {
            Some(t) => Ok(Some(t)),
            None => {
                writeln!(err, "error: `{text}` is not an RFC 3339 timestamp")?;
                Ok(None)
            }
        },
        None => Ok(Some(jiff::Timestamp::now().as_second())),
    }
}

fn read_config(
    path: Option<&Path>,
    err: Out<'_>,
) -> std::io::Result<Result<Option<ManagedConfig>, ()>> {
    let Some(path) = path else {
        return Ok(Ok(None));
    };
    let Some(text) = read_text(path, err)? else {
        return Ok(Err(()));
    };
    match ManagedConfig::parse(&text) {
        Ok(c) => Ok(Ok(Some(c))),
        Err(e) => {
            writeln!(err, "error: {}: {e}", path.display())?;
            Ok(Err(()))
        }
    }
}

/// The keys to trust: the configuration's, else `--key` files.
fn keys_for(
    config: Option<&ManagedConfig>,
    keys: &[PathBuf],
    err: Out<'_>,
) -> std::io::Result<Option<TrustedKeys>> {
    match config {
        Some(c) => Ok(Some(c.trusted_keys.clone())),
        None if keys.is_empty() => {
            writeln!(err, "error: pass --key (or --config with trusted_keys)")?;
            Ok(None)
        }
        None => trusted_keys(keys, err),
    }
}

/// Opens the device's snapshot store with the configuration's (or `--key`) trust.
fn open_store(
    dir: &Path,
    config: Option<&ManagedConfig>,
    keys: &[PathBuf],
    err: Out<'_>,
) -> std::io::Result<Option<SnapshotStore>> {
    let Some(trusted) = keys_for(config, keys, err)? else {
        return Ok(None);
    };
    match SnapshotStore::open(dir, trusted, config.map(|c| c.tenant_id.clone())) {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            writeln!(err, "error: cannot open the store {}: {e}", dir.display())?;
            Ok(None)
        }
    }
}

/// The device the command asks: its MDM configuration and its snapshot (from the store, a
/// bundle file, or a policy directory compiled in memory). All device logic is the runtime's
/// [`Device`]; this only finds the inputs.
fn open_device(
    source: &Source,
    config: Option<ManagedConfig>,
    now: i64,
    err: Out<'_>,
) -> std::io::Result<Option<Device>> {
    let device = if let Some(dir) = &source.store {
        let Some(store) = open_store(dir, config.as_ref(), &source.keys, err)? else {
            return Ok(None);
        };
        Device::from_store(&store, now, config)
    } else if let Some(bundle) = &source.bundle {
        let Some(keys) = keys_for(config.as_ref(), &source.keys, err)? else {
            return Ok(None);
        };
        let bytes = match std::fs::read(bundle) {
            Ok(b) => b,
            Err(e) => {
                writeln!(err, "error: cannot read {}: {e}", bundle.display())?;
                return Ok(None);
            }
        };
        match load(&bytes, &keys) {
            Ok(b) => Device::with_bundle(b, config),
            Err(e) => {
                writeln!(
                    err,
                    "error: {} rejected ({}): {e}",
                    bundle.display(),
                    e.code()
                )?;
                return Ok(None);
            }
        }
    } else if let Some(dir) = &source.policy {
        let paths = vec![dir.to_path_buf()];
        let Some(analysis) = analyze_dir(&paths, err)? else {
            return Ok(None);
        };
        let options = BuildOptions {
            bundle_version: 0,
            issued_at: now,
            expires_at: None,
            root: root_of(&paths),
        };
        match compile_verified(&analysis, &options) {
            Ok(b) => Device::with_bundle(b, config),
            Err(e) => {
                writeln!(err, "error: {e}")?;
                return Ok(None);
            }
        }
    } else {
        writeln!(err, "error: pass --bundle with --key, --policy, or --store")?;
        return Ok(None);
    };
    Ok(Some(device.with_local_zone(jiff::tz::TimeZone::system())))
}

fn read_inventory(path: &Path, err: Out<'_>) -> std::io::Result<Option<Inventory>> {
    let Some(text) = read_text(path, err)? else {
        return Ok(None);
    };
    match Inventory::from_json_str(&text) {
        Ok(inv) => Ok(Some(inv)),
        Err(e) => {
            writeln!(err, "error: {}: {e}", path.display())?;
            Ok(None)
        }
    }
}

fn append_events(
    path: Option<&Path>,
    events: &[hpl_runtime::events::Event],
    err: Out<'_>,
) -> std::io::Result<bool> {
    let Some(path) = path else { return Ok(true) };
    let result = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| hpl_runtime::events::append(&mut f, events));
    if let Err(e) = result {
        writeln!(
            err,
            "error: cannot append events to {}: {e}",
            path.display()
        )?;
        return Ok(false);
    }
    Ok(true)
}

pub fn eval(
    source: &Source,
    inventory: &Path,
    at: Option<&str>,
    json: bool,
    events: Option<&Path>,
    out: Out<'_>,
    err: Out<'_>,
) -> std::io::Result<i32> {
    let Some(now) = parse_time(at, err)? else {
        return Ok(1);
    };
    let Ok(config) = read_config(source.config.as_deref(), err)? else {
        return Ok(1);
    };
    let Some(device) = open_device(source, config, now, err)? else {
        return Ok(1);
    };
    let Some(inv) = read_inventory(inventory, err)? else {
        return Ok(1);
    };
    let record = device.evaluate(&inv, now);
    if !append_events(events, &hpl_runtime::events::from_record(&record, now), err)? {
        return Ok(1);
    }
    if json {
        writeln!(out, "{}", record.to_json_pretty())?;
    } else {
        out.write_all(table(&record).as_bytes())?;
    }
    Ok(match record.state {
        State::Compliant | State::Warning => 0,
        State::NonCompliant => 3,
        State::Unknown => 4,
    })
}

pub fn authorize(
    source: &Source,
    inventory: &Path,
    action: &str,
    at: Option<&str>,
    out: Out<'_>,
    err: Out<'_>,
) -> std::io::Result<i32> {
    let Some(now) = parse_time(at, err)? else {
        return Ok(1);
    };
    let Ok(config) = read_config(source.config.as_deref(), err)? else {
        return Ok(1);
    };
    let Some(device) = open_device(source, config, now, err)? else {
        return Ok(1);
    };
    let Some(inv) = read_inventory(inventory, err)? else {
        return Ok(1);
    };
    // A request the runtime cannot read is denied (exit 6), like any other refusal.
    let decision = device.authorize_json(&inv, action, now);
    writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(&decision).unwrap_or_default()
    )?;
    Ok(match decision.decision {
        Verdict::Allow => 0,
        Verdict::NeedsConfirmation => 5,
        Verdict::Deny => 6,
    })
}

#[allow(clippy::too_many_arguments)]
pub fn snapshot_install(
    bundle: &Path,
    store_dir: &Path,
    config: Option<&Path>,
    keys: &[PathBuf],
    events: Option<&Path>,
    device_id: &str,
    at: Option<&str>,
    out: Out<'_>,
    err: Out<'_>,
) -> std::io::Result<i32> {
    let Some(now) = parse_time(at, err)? else {
        return Ok(1);
    };
    let Ok(config) = read_config(config, err)? else {
        return Ok(1);
    };
    let tenant = config.as_ref().map(|c| c.tenant_id.clone());
    let Some(store) = open_store(store_dir, config.as_ref(), keys, err)? else {
        return Ok(1);
    };
    let bytes = match std::fs::read(bundle) {
        Ok(b) => b,
        Err(e) => {
            writeln!(err, "error: cannot read {}: {e}", bundle.display())?;
            return Ok(1);
        }
    };
    let result = store.install(&bytes, now);
    let tenant_id = tenant.unwrap_or_else(|| {
        result
            .as_ref()
            .map(|b| b.content().manifest.tenant.clone())
            .unwrap_or_default()
    });
    let event = install_event(
        &result,
        &tenant_id,
        device_id,
        &format!("install-{now}"),
        now,
    );
    if !append_events(events, &[event], err)? {
        return Ok(1);
    }
    match result {
        Ok(b) => {
            writeln!(
                out,
                "applied: bundle version {} ({})",
                b.content().manifest.bundle_version,
                b.hash_string()
            )?;
            Ok(0)
        }
        Err(r) => {
            writeln!(out, "rejected ({}): {r}", r.code())?;
            Ok(1)
        }
    }
}

pub fn snapshot_status(
    store_dir: &Path,
    config: Option<&Path>,
    keys: &[PathBuf],
    at: Option<&str>,
    out: Out<'_>,
    err: Out<'_>,
) -> std::io::Result<i32> {
    let Some(now) = parse_time(at, err)? else {
        return Ok(1);
    };
    let Ok(config) = read_config(config, err)? else {
        return Ok(1);
    };
    let Some(store) = open_store(store_dir, config.as_ref(), keys, err)? else {
        return Ok(1);
    };
    match store.active(now) {
        Some(b) => {
            let m = &b.content().manifest;
            writeln!(
                out,
                "active: tenant {}, bundle version {}, {}",
                m.tenant,
                m.bundle_version,
                b.hash_string()
            )?;
            Ok(0)
        }
        None => {
            writeln!(out, "no valid snapshot")?;
            Ok(4)
        }
    }
}

/// The record for people: state, violations grouped by manager with their origins.
pub fn table(r: &ComplianceRecord) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(
        w,
        "device {} ({})  {}",
        r.device_id,
        r.tenant_id,
        r.state.as_str().to_uppercase().replace('_', "-")
    );
    let _ = writeln!(
        w,
        "bundle v{} {}  evaluated {}",
        r.bundle.version, r.bundle.hash, r.evaluated_at
    );
    let _ = writeln!(
        w,
        "policies {}",
        r.policies
            .iter()
            .map(|p| format!("{} v{}", p.id, p.version))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut managers: Vec<&str> = r.violations.iter().map(|v| v.manager.as_str()).collect();
    managers.dedup();
    let mut seen = std::collections::BTreeSet::new();
    managers.retain(|m| seen.insert(*m));
    for m in managers {
        let _ = writeln!(w, "\n{m}");
        for v in r.violations.iter().filter(|v| v.manager == m) {
            let mark = if v.severity == hpl_runtime::record::Severity::Error {
                "✗"
            } else {
                "!"
            };
            let category = serde_json::to_value(v.category)
                .ok()
                .and_then(|c| c.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(
                w,
                "  {mark} {category:<20} {:<24} expected {:<18} found {:<18} {:<9} {} v{} {} {}",
                v.package,
                v.expected,
                v.found.as_deref().unwrap_or("—"),
                v.action,
                v.rule.policy,
                v.rule.policy_version,
                v.rule.scope,
                v.rule.source
            );
        }
    }
    if !r.unknown_reasons.is_empty() {
        let _ = writeln!(w, "\nunknown");
        for u in &r.unknown_reasons {
            let at = u
                .rule
                .as_ref()
                .map(|o| format!("  ({} {})", o.policy, o.source))
                .unwrap_or_default();
            let _ = writeln!(w, "  ? {:<24} {}{at}", u.code, u.message);
        }
    }
    if !r.remediation.is_empty() {
        let _ = writeln!(w, "\nremediation");
        for x in &r.remediation {
            let when = if x.manual {
                format!(
                    "manual: {}",
                    x.note.as_deref().unwrap_or("the manager cannot do it")
                )
            } else if x.automatic {
                "automatic now".to_string()
            } else if let Some(t) = &x.not_before {
                format!("automatic from {t}")
            } else {
                "needs confirmation".to_string()
            };
            let guarded = if x.guarded { ", guarded" } else { "" };
            let to =
                x.to.as_deref()
                    .map(|t| format!(" to {t}"))
                    .unwrap_or_default();
            let _ = writeln!(
                w,
                "  {:<10} {}:{}{to}  ({}, {} phase{guarded}, {when})",
                x.action, x.manager, x.package, x.mode, x.phase
            );
        }
    }
    let errors = r
        .violations
        .iter()
        .filter(|v| v.severity == hpl_runtime::record::Severity::Error)
        .count();
    let _ = writeln!(
        w,
        "\n{} violations ({errors} errors), {} unknown, {} rules evaluated",
        r.violations.len(),
        r.unknown_reasons.len(),
        r.rules.len()
    );
    s
}
