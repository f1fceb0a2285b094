//! The operator commands beyond rings: `hpl login` (the OAuth device flow against the tenant's
//! identity provider; the ID token kept in the user's config directory, 0600), `hpl approvals
//! list|approve|reject`, and `hpl audit export|verify` (an export verifies offline with the
//! same chain code the server uses).

use crate::control::{call_with, print, server_of, Format, Operator};
use crate::io::Out;
use crate::Exit;
use clap::{Args, Subcommand};
use hpl_agent::client::provider_request;
use hpl_runtime::audit_chain::{self, AuditEntry};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// The control plane (default: $HPL_SERVER).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// The tenant whose identity provider you sign in with.
    #[arg(long)]
    tenant: String,
    /// Keep the token here (default: $HPL_CONFIG_DIR, $XDG_CONFIG_HOME/hpl or ~/.config/hpl).
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    /// Give up waiting for the browser after this many seconds.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    timeout: u64,
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(Subcommand, Debug)]
pub enum ApprovalsCommand {
    /// The tenant's promotion requests, newest first.
    List {
        tenant: String,
        /// Only these: pending, applied, rejected, expired, failed.
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        operator: Operator,
    },
    /// Approve someone else's request; the last approval needed applies the promotion.
    Approve {
        tenant: String,
        id: i64,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        operator: Operator,
    },
    /// Reject someone else's request.
    Reject {
        tenant: String,
        id: i64,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        operator: Operator,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// The tenant's audit entries and device events as JSON lines (OCSF-shaped), from the
    /// start or from `--cursor`; the cursor to continue from goes to stderr.
    Export {
        tenant: String,
        #[arg(long)]
        cursor: Option<String>,
        /// Write here instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        operator: Operator,
    },
    /// Prove the hash chain of an export (`-` for stdin): every entry there, in order, linked
    /// and unchanged. Exit 0 verified, 1 broken (the first broken link is named), 2 unreadable.
    Verify {
        file: PathBuf,
        /// The hash of the entry before the first one in the file (an export from a cursor).
        #[arg(long, value_name = "HASH")]
        after_hash: Option<String>,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
}

/// Where `hpl login` keeps tokens: `--config-dir`, $HPL_CONFIG_DIR, $XDG_CONFIG_HOME/hpl, or
/// ~/.config/hpl.
pub fn config_dir(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(d) = flag {
        return Some(d.to_path_buf());
    }
    if let Some(d) = std::env::var_os("HPL_CONFIG_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(d).join("hpl"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config").join("hpl"))
}

fn credentials_file(dir: Option<&Path>) -> Option<PathBuf> {
    config_dir(dir).map(|d| d.join("credentials.json"))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What `hpl login` keeps per server: the ID token and, when the provider gave one, the
/// refresh token and where to use it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Kept {
    tenant: String,
    token: String,
    expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
}

fn kept(dir: Option<&Path>, server: &str) -> Option<Kept> {
    let bytes = hpl_runtime::store::read_regular_file(&credentials_file(dir)?, 1 << 20).ok()?;
    let all: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    serde_json::from_value(all[server.trim_end_matches('/')].clone()).ok()
}

/// The token `hpl login` kept for `server`: as it is while it has 30 s left, else renewed
/// with the refresh token (and kept again), else none — sign in again.
pub fn stored_token(dir: Option<&Path>, server: &str) -> Option<String> {
    let k = kept(dir, server)?;
    if k.expires_at > unix_now() + 30 {
        return Some(k.token);
    }
    let (Some(refresh), Some(endpoint), Some(client_id)) =
        (&k.refresh_token, &k.token_endpoint, &k.client_id)
    else {
        return None;
    };
    let (status, v) = provider_request(
        "POST",
        endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", client_id),
        ],
    )
    .ok()?;
    let token = v["id_token"]
        .as_str()
        .filter(|_| status == 200)?
        .to_string();
    let renewed = Kept {
        expires_at: expiry(&token).unwrap_or(0),
        token: token.clone(),
        // Providers that rotate refresh tokens send a new one; others keep the old one valid.
        refresh_token: v["refresh_token"]
            .as_str()
            .map(str::to_string)
            .or(k.refresh_token.clone()),
        ..k
    };
    // Not keeping the renewed token costs a refresh next time, not the call.
    let _ = store_token(dir, server, &renewed);
    Some(token)
}

/// Writes `file` readable by the owner only (0600 before any byte of the token is in it).
fn write_private(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, file)
}

fn store_token(dir: Option<&Path>, server: &str, k: &Kept) -> std::io::Result<PathBuf> {
    let file = credentials_file(dir)
        .ok_or_else(|| std::io::Error::other("no config directory: set HPL_CONFIG_DIR or HOME"))?;
    let mut all: serde_json::Value = hpl_runtime::store::read_regular_file(&file, 1 << 20)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    all[server.trim_end_matches('/')] = serde_json::to_value(k).unwrap_or_default();
    write_private(
        &file,
        serde_json::to_string_pretty(&all)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    Ok(file)
}

/// The `exp` of a JWT (read, not verified: the server verifies; this only says when to sign
/// in again).
fn expiry(token: &str) -> Option<i64> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes).ok()?["exp"].as_i64()
}

pub fn login(args: &LoginArgs, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let Some(server) = server_of(args.server.as_deref(), err)? else {
        return Ok(Exit::Usage);
    };
    let fail = |err: Out<'_>, what: String| -> std::io::Result<Exit> {
        writeln!(err, "error: {what}")?;
        Ok(Exit::Failure)
    };
    let base = server.trim_end_matches('/');
    let params = match provider_request(
        "GET",
        &format!("{base}/v1/tenants/{}/login", args.tenant),
        &[],
    ) {
        Ok((200, v)) => v,
        Ok((status, v)) => {
            return fail(
                err,
                format!(
                    "the server refused ({status}): {}",
                    v["message"].as_str().unwrap_or("")
                ),
            )
        }
        Err(e) => return fail(err, e.to_string()),
    };
    let (Some(issuer), Some(client_id)) = (params["issuer"].as_str(), params["client_id"].as_str())
    else {
        return fail(
            err,
            "the server did not name the tenant's identity provider".into(),
        );
    };
    let discovery = match provider_request(
        "GET",
        &format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ),
        &[],
    ) {
        Ok((200, v)) => v,
        Ok((status, _)) => return fail(err, format!("{issuer}: discovery answered {status}")),
        Err(e) => return fail(err, e.to_string()),
    };
    let (Some(device_endpoint), Some(token_endpoint)) = (
        discovery["device_authorization_endpoint"].as_str(),
        discovery["token_endpoint"].as_str(),
    ) else {
        return fail(
            err,
            format!("{issuer} offers no device sign-in (device_authorization_endpoint)"),
        );
    };
    // offline_access: a refresh token, so the sign-in outlives the ID token's hour.
    let scope = "openid email profile offline_access";
    let grant = match provider_request(
        "POST",
        device_endpoint,
        &[("client_id", client_id), ("scope", scope)],
    ) {
        Ok((200, v)) => v,
        Ok((status, v)) => return fail(err, format!("{device_endpoint} answered {status}: {v}")),
        Err(e) => return fail(err, e.to_string()),
    };
    let (Some(device_code), Some(user_code)) =
        (grant["device_code"].as_str(), grant["user_code"].as_str())
    else {
        return fail(
            err,
            "the provider's device authorization has no device_code".into(),
        );
    };
    let uri = grant["verification_uri_complete"]
        .as_str()
        .or(grant["verification_uri"].as_str())
        .unwrap_or("");
    writeln!(
        err,
        "To sign in to {} ({}), open {uri} and enter the code {user_code}",
        args.tenant, issuer
    )?;
    let mut interval = Duration::from_secs(grant["interval"].as_u64().unwrap_or(5).clamp(1, 60));
    let deadline = Instant::now()
        + Duration::from_secs(
            args.timeout
                .min(grant["expires_in"].as_u64().unwrap_or(600)),
        );
    let (token, refresh_token) = loop {
        if Instant::now() >= deadline {
            return fail(err, "the sign-in was not completed in time".into());
        }
        std::thread::sleep(interval);
        let answer = provider_request(
            "POST",
            token_endpoint,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device_code),
                ("client_id", client_id),
            ],
        );
        match answer {
            Ok((200, v)) => match v["id_token"].as_str() {
                Some(t) => {
                    break (
                        t.to_string(),
                        v["refresh_token"].as_str().map(str::to_string),
                    )
                }
                None => return fail(err, "the provider answered without an id_token".into()),
            },
            Ok((_, v)) => match v["error"].as_str() {
                Some("authorization_pending") => {}
                Some("slow_down") => interval += Duration::from_secs(5),
                other => {
                    return fail(
                        err,
                        format!("the sign-in failed: {}", other.unwrap_or("unknown error")),
                    )
                }
            },
            Err(e) => return fail(err, e.to_string()),
        }
    };
    let expires_at = expiry(&token).unwrap_or(0);
    // Ask the server who this is before keeping it: a token it refuses is not kept.
    let who = match call_with(
        &server,
        &token,
        "GET",
        "/v1/whoami",
        None,
        "application/json",
        err,
    )? {
        Ok(v) => v,
        Err(exit) => return Ok(exit),
    };
    let k = Kept {
        tenant: args.tenant.clone(),
        token: token.clone(),
        expires_at,
        refresh_token,
        token_endpoint: Some(token_endpoint.to_string()),
        client_id: Some(client_id.to_string()),
    };
    let file = match store_token(args.config_dir.as_deref(), &server, &k) {
        Ok(f) => f,
        Err(e) => return fail(err, format!("cannot keep the token: {e}")),
    };
    let value = serde_json::json!({ "who": who, "expires_at": expires_at, "file": file });
    print(
        args.format,
        &value,
        |v| {
            let roles: Vec<&str> = v["who"]["roles"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str())
                .collect();
            format!(
                "signed in to {} as {} ({}); the token is kept in {} until {}\n",
                args.tenant,
                v["who"]["display"]
                    .as_str()
                    .or(v["who"]["id"].as_str())
                    .unwrap_or(""),
                if roles.is_empty() {
                    "no role".to_string()
                } else {
                    roles.join(", ")
                },
                file.display(),
                hpl_runtime::eval::timestamp(expires_at)
            )
        },
        out,
    )
}

fn request_line(v: &serde_json::Value) -> String {
    crate::control::request_line(v)
}

pub fn approvals(command: &ApprovalsCommand, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let (operator, method, path, body) = match command {
        ApprovalsCommand::List {
            tenant,
            state,
            operator,
        } => (
            operator,
            "GET",
            match state {
                Some(s) => format!("/v1/tenants/{tenant}/approvals?state={s}"),
                None => format!("/v1/tenants/{tenant}/approvals"),
            },
            None,
        ),
        ApprovalsCommand::Approve {
            tenant,
            id,
            comment,
            operator,
        } => (
            operator,
            "POST",
            format!("/v1/tenants/{tenant}/approvals/{id}/approve"),
            Some(serde_json::json!({ "comment": comment }).to_string()),
        ),
        ApprovalsCommand::Reject {
            tenant,
            id,
            comment,
            operator,
        } => (
            operator,
            "POST",
            format!("/v1/tenants/{tenant}/approvals/{id}/reject"),
            Some(serde_json::json!({ "comment": comment }).to_string()),
        ),
    };
    let v = match crate::control::call(
        operator,
        method,
        &path,
        body.as_deref().map(str::as_bytes),
        "application/json",
        err,
    )? {
        Ok(v) => v,
        Err(exit) => return Ok(exit),
    };
    print(
        operator.format,
        &v,
        |v| match command {
            ApprovalsCommand::List { .. } => {
                let all: Vec<String> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(request_line)
                    .collect();
                if all.is_empty() {
                    "no requests\n".to_string()
                } else {
                    all.concat()
                }
            }
            _ => request_line(v),
        },
        out,
    )
}

pub fn audit(command: &AuditCommand, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    match command {
        AuditCommand::Export {
            tenant,
            cursor,
            output,
            operator,
        } => {
            let mut at = cursor.clone().unwrap_or_default();
            let mut text = String::new();
            loop {
                let path = format!("/v1/tenants/{tenant}/audit/export?cursor={at}");
                let reply = match crate::control::call_raw(
                    operator,
                    "GET",
                    &path,
                    None,
                    "application/json",
                    err,
                )? {
                    Ok(r) => r,
                    Err(exit) => return Ok(exit),
                };
                if reply.body.is_empty() {
                    break;
                }
                text.push_str(&String::from_utf8_lossy(&reply.body));
                match reply.cursor {
                    Some(next) if next != at => at = next,
                    _ => break,
                }
            }
            match output {
                Some(file) => {
                    if let Err(e) = std::fs::write(file, &text) {
                        writeln!(err, "error: cannot write {}: {e}", file.display())?;
                        return Ok(Exit::Usage);
                    }
                }
                None => write!(out, "{text}")?,
            }
            writeln!(err, "next cursor: {at}")?;
            Ok(Exit::Success)
        }
        AuditCommand::Verify {
            file,
            after_hash,
            format,
        } => verify(file, after_hash.as_deref(), *format, out, err),
    }
}

fn verify(
    file: &Path,
    after_hash: Option<&str>,
    format: Format,
    out: Out<'_>,
    err: Out<'_>,
) -> std::io::Result<Exit> {
    let text = if file == Path::new("-") {
        let mut s = String::new();
        if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
            writeln!(err, "error: cannot read stdin: {e}")?;
            return Ok(Exit::Usage);
        }
        s
    } else {
        match hpl_runtime::store::read_regular_file(file, 1 << 30) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                writeln!(err, "error: cannot read {}: {e}", file.display())?;
                return Ok(Exit::Usage);
            }
        }
    };
    // Audit lines by chain, in file order; device events are not chained.
    let mut chains: Vec<(String, Vec<AuditEntry>)> = Vec::new();
    let mut events = 0usize;
    let mut mismatched: Option<(String, u64)> = None;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                writeln!(err, "error: {}:{}: not JSON: {e}", file.display(), n + 1)?;
                return Ok(Exit::Usage);
            }
        };
        let hpl = &v["unmapped"]["hpl"];
        if hpl["kind"] == "event" {
            events += 1;
            continue;
        }
        let entry: AuditEntry = match serde_json::from_value(hpl["entry"].clone()) {
            Ok(e) => e,
            Err(e) => {
                writeln!(
                    err,
                    "error: {}:{}: not an audit entry: {e}",
                    file.display(),
                    n + 1
                )?;
                return Ok(Exit::Usage);
            }
        };
        // The OCSF fields a SIEM reads must be the entry's, which the chain proves.
        if v != audit_chain::ocsf(&entry) {
            mismatched.get_or_insert((entry.chain.clone(), entry.seq));
        }
        match chains.iter_mut().find(|(c, _)| *c == entry.chain) {
            Some((_, list)) => list.push(entry),
            None => chains.push((entry.chain.clone(), vec![entry])),
        }
    }
    let mut results = Vec::new();
    for (chain, entries) in &chains {
        let first = entries.first().map_or(1, |e| e.seq);
        let start = match (first, after_hash) {
            (1, _) => audit_chain::genesis(chain),
            (_, Some(h)) => h.to_string(),
            (_, None) => {
                writeln!(err, "error: chain `{chain}` starts at entry {first}: pass --after-hash with the hash of entry {}", first - 1)?;
                return Ok(Exit::Usage);
            }
        };
        results.push(audit_chain::verify(chain, entries, first, &start));
    }
    if let Some((chain, seq)) = mismatched {
        let link = audit_chain::BrokenLink {
            chain,
            seq,
            reason: "the line's OCSF fields are not its entry's".into(),
        };
        // The first problem of the chain is the one named.
        match results.iter_mut().find(|r| {
            r.as_ref()
                .map_or_else(|b| b.chain == link.chain, |v| v.chain == link.chain)
        }) {
            Some(r @ Ok(_)) => *r = Err(link),
            Some(Err(b)) if b.seq > link.seq => *b = link,
            _ => {}
        }
    }
    let broken: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let value = serde_json::json!({
        "verified": results.iter().filter_map(|r| r.as_ref().ok()).collect::<Vec<_>>(),
        "broken": broken,
        "device_events": events,
    });
    let exit = print(
        format,
        &value,
        |_| {
            let mut s = String::new();
            for r in &results {
                match r {
                    Ok(v) => s.push_str(&format!(
                        "chain {}: {} entries verified, head {}\n",
                        v.chain, v.entries, v.head
                    )),
                    Err(b) => s.push_str(&format!(
                        "chain {}: BROKEN at entry {}: {}\n",
                        b.chain, b.seq, b.reason
                    )),
                }
            }
            s.push_str(&format!("{events} device events (not chained)\n"));
            s
        },
        out,
    )?;
    Ok(if broken.is_empty() {
        exit
    } else {
        Exit::Failure
    })
}
