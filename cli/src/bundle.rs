//! The bundle family: `hpl keygen`, `build`, `verify`, `inspect`.

use crate::exit::Exit;
use crate::io::{read_text, Out};
use clap::Args;
use hpl_compiler::build::{
    build_bundle, generate_key, key_id_hex, parse_public_key, parse_secret_key, public_key_text,
    secret_key_text,
};
use hpl_compiler::check::CheckOptions;
use hpl_compiler::diagnostics::render;
use hpl_compiler::driver::{analyze_sources, load_files, Analysis};
use hpl_compiler::lower::BuildOptions;
use hpl_runtime::bundle::{decode_content, BundleContent};
use hpl_runtime::eval::timestamp;
use hpl_runtime::inventory::parse_timestamp;
use hpl_runtime::load::{hex, load, open_envelope, TrustedKeys};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Generate an ed25519 signing key: writes KEY and KEY.pub.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    #[arg(long, value_name = "KEY")]
    pub out: PathBuf,
}

/// Compile a policy directory to a signed bundle.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The policy directory (or files).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The bundle file to write.
    #[arg(short, long, value_name = "OUT.hplb")]
    pub out: PathBuf,
    /// Sign with this key (repeat for several signatures).
    #[arg(long, value_name = "KEY")]
    pub sign_key: Vec<PathBuf>,
    /// The bundle's version; devices only move forward.
    #[arg(long, default_value_t = 1)]
    pub bundle_version: u64,
    /// Expiry relative to the issue time: 30d, 12h, 90m.
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<String>,
    /// Issue time (RFC 3339). Default: $SOURCE_DATE_EPOCH, else now.
    #[arg(long, value_name = "RFC3339")]
    pub issued_at: Option<String>,
}

/// Check a bundle's signature and run the verifier. Exit 0 valid, 1 invalid.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    pub bundle: PathBuf,
    /// A trusted public key (repeatable).
    #[arg(long, required = true, value_name = "KEY.pub")]
    pub key: Vec<PathBuf>,
}

/// Show a bundle's manifest and tables.
#[derive(Args, Debug)]
pub struct InspectArgs {
    pub bundle: PathBuf,
    /// Also disassemble every condition, with its source and origin.
    #[arg(long)]
    pub disasm: bool,
}

pub fn keygen(args: &KeygenArgs, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let path = args.out.as_path();
    let key = match generate_key() {
        Ok(k) => k,
        Err(e) => {
            writeln!(err, "error: {e}")?;
            return Ok(Exit::Failure);
        }
    };
    let public = PathBuf::from(format!("{}.pub", path.display()));
    if let Err(e) = write_private(path, &secret_key_text(&key)) {
        writeln!(err, "error: cannot write {}: {e}", path.display())?;
        return Ok(Exit::Usage);
    }
    if let Err(e) = std::fs::write(&public, public_key_text(&key)) {
        writeln!(err, "error: cannot write {}: {e}", public.display())?;
        return Ok(Exit::Usage);
    }
    writeln!(
        out,
        "wrote {} and {} (key id {})",
        path.display(),
        public.display(),
        key_id_hex(&key)
    )?;
    Ok(Exit::Success)
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

pub(crate) fn analyze_dir(paths: &[PathBuf], err: Out<'_>) -> std::io::Result<Option<Analysis>> {
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

pub(crate) fn root_of(paths: &[PathBuf]) -> Option<PathBuf> {
    match paths {
        [one] if one.is_dir() => Some(one.clone()),
        _ => None,
    }
}

pub fn build(args: &BuildArgs, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let (paths, path, sign_keys, bundle_version) = (
        &args.paths,
        args.out.as_path(),
        &args.sign_key,
        args.bundle_version,
    );
    let (expires_in, issued_at) = (args.expires_in.as_deref(), args.issued_at.as_deref());
    let issued_at = match issued_at {
        Some(text) => match parse_timestamp(text) {
            Some(t) => t,
            None => {
                writeln!(
                    err,
                    "error: --issued-at `{text}` is not an RFC 3339 timestamp"
                )?;
                return Ok(Exit::Usage);
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
                return Ok(Exit::Usage);
            }
        },
        None => None,
    };
    let mut keys = Vec::new();
    for k in sign_keys {
        let Some(text) = read_text(k, err)? else {
            return Ok(Exit::Usage);
        };
        match parse_secret_key(&text) {
            Ok(key) => keys.push(key),
            Err(e) => {
                writeln!(err, "error: {}: {e}", k.display())?;
                return Ok(Exit::Usage);
            }
        }
    }
    let Some(analysis) = analyze_dir(paths, err)? else {
        return Ok(Exit::Failure);
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
            return Ok(Exit::Failure);
        }
    };
    if let Err(e) = std::fs::write(path, &bytes) {
        writeln!(err, "error: cannot write {}: {e}", path.display())?;
        return Ok(Exit::Usage);
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
    Ok(Exit::Success)
}

pub(crate) fn trusted_keys(
    paths: &[PathBuf],
    err: Out<'_>,
) -> std::io::Result<Option<TrustedKeys>> {
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

pub fn verify(args: &VerifyArgs, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let bundle = args.bundle.as_path();
    let Some(keys) = trusted_keys(&args.key, err)? else {
        return Ok(Exit::Usage);
    };
    let bytes = match crate::io::read_bundle(bundle) {
        Ok(b) => b,
        Err(e) => {
            writeln!(err, "error: cannot read {}: {e}", bundle.display())?;
            return Ok(Exit::Usage);
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
            Ok(Exit::Success)
        }
        Err(e) => {
            writeln!(out, "invalid ({}): {e}", e.code())?;
            Ok(Exit::Failure)
        }
    }
}

pub fn inspect(args: &InspectArgs, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let (bundle, disasm) = (args.bundle.as_path(), args.disasm);
    let bytes = match crate::io::read_bundle(bundle) {
        Ok(b) => b,
        Err(e) => {
            writeln!(err, "error: cannot read {}: {e}", bundle.display())?;
            return Ok(Exit::Usage);
        }
    };
    let (content_bytes, hash, signatures) = match open_envelope(&bytes) {
        Ok(x) => x,
        Err(e) => {
            writeln!(out, "invalid ({}): {e}", e.code())?;
            return Ok(Exit::Failure);
        }
    };
    let c = match decode_content(content_bytes, 10) {
        Ok(c) => c,
        Err(e) => {
            writeln!(out, "invalid (malformed): {e:?}")?;
            return Ok(Exit::Failure);
        }
    };
    out.write_all(describe(&c, &hash, &signatures, disasm).as_bytes())?;
    Ok(Exit::Success)
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
