//! The control-plane commands: `hpl publish` and `hpl ring …` (operators, with a bearer token)
//! and `hpl agent enroll|sync` (a device). HTTP is `hpl_agent`'s; this module reads the
//! arguments, calls, prints.

use crate::device::{read_config, read_inventory};
use crate::io::Out;
use crate::Exit;
use clap::{Args, Subcommand, ValueEnum};
use hpl_agent::client::{Client, ClientError};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// Where the server is and who asks.
#[derive(Args, Debug)]
pub struct Operator {
    /// The control plane (default: $HPL_SERVER).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// A file holding a token: an API credential, the bootstrap owner's, or an ID token
    /// (default: $HPL_TOKEN, else what `hpl login` kept for this server). Never a flag: it
    /// would be in the shell history and the process list.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Where `hpl login` kept its token (default: $HPL_CONFIG_DIR, $XDG_CONFIG_HOME/hpl or
    /// ~/.config/hpl).
    #[arg(long, value_name = "DIR")]
    config_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "human")]
    pub(crate) format: Format,
}

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// The signed bundle (`hpl build`).
    bundle: PathBuf,
    #[command(flatten)]
    operator: Operator,
}

#[derive(Subcommand, Debug)]
pub enum RingCommand {
    /// The tenant's rings: release, paused, revision, members.
    Status {
        tenant: String,
        #[command(flatten)]
        operator: Operator,
    },
    /// Ask for a release to go onto a ring: the first ring, or the ring after the one running
    /// it. It waits for approval by admins or owners other than you (`hpl approvals`); when
    /// approved, the health gate of the ring before must pass.
    Promote {
        tenant: String,
        ring: String,
        #[arg(long)]
        release: u64,
        #[command(flatten)]
        operator: Operator,
    },
    /// Freeze a ring: its devices keep their snapshot, nothing moves into or out of it.
    Pause {
        tenant: String,
        ring: String,
        #[command(flatten)]
        operator: Operator,
    },
    Resume {
        tenant: String,
        ring: String,
        #[command(flatten)]
        operator: Operator,
    },
    /// Put an earlier release back on a ring.
    Rollback {
        tenant: String,
        ring: String,
        #[arg(long)]
        release: u64,
        #[command(flatten)]
        operator: Operator,
    },
    /// The health gate's figures for the release a ring runs.
    Health {
        tenant: String,
        ring: String,
        #[command(flatten)]
        operator: Operator,
    },
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Enroll this device: make its key, register it with the enrollment token MDM delivered.
    Enroll(EnrollArgs),
    /// Fetch the ring manifest and bundle, install, evaluate, upload the record and events.
    /// Exit 0 synced, 7 the server was unreachable (answered from the snapshot, queued),
    /// 1 error.
    Sync(SyncArgs),
}

#[derive(Args, Debug)]
pub struct EnrollArgs {
    #[arg(long, value_name = "URL")]
    server: String,
    /// The store directory (the agent keeps its key and state in DIR/agent).
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// The MDM configuration (its device groups count for ring membership).
    #[arg(long, value_name = "MDM")]
    config: PathBuf,
    /// The device's inventory: its device id and scopes.
    #[arg(long, value_name = "FILE")]
    inventory: PathBuf,
    /// A file holding the enrollment token (default: $HPL_ENROLLMENT_TOKEN).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// The token itself. Prefer the variable or the file: a flag shows in the process list.
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The control plane (default: the one the store enrolled with).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// The store directory the device enrolled (its snapshots, key, outbox).
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// The MDM configuration (tenant, policy and distribution keys, scope hints).
    #[arg(long, value_name = "MDM")]
    config: PathBuf,
    /// The device's inventory now (`hpl.inventory.v1`, from Helm).
    #[arg(long, value_name = "FILE")]
    inventory: PathBuf,
    /// The whole sync ends within this many seconds, whatever the server does.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    timeout: u64,
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

fn secret(
    file: Option<&Path>,
    var: &str,
    flag: Option<&str>,
    err: Out<'_>,
) -> std::io::Result<Option<String>> {
    if let Some(path) = file {
        return match hpl_runtime::store::read_regular_file(path, 4096) {
            Ok(b) => Ok(Some(String::from_utf8_lossy(&b).trim().to_string())),
            Err(e) => {
                writeln!(err, "error: cannot read {}: {e}", path.display())?;
                Ok(None)
            }
        };
    }
    if let Some(t) = flag {
        return Ok(Some(t.to_string()));
    }
    match std::env::var(var) {
        Ok(t) if !t.trim().is_empty() => Ok(Some(t.trim().to_string())),
        _ => {
            writeln!(err, "error: no credential: set {var} or pass --token-file")?;
            Ok(None)
        }
    }
}

fn server(operator: &Operator, err: Out<'_>) -> std::io::Result<Option<String>> {
    server_of(operator.server.as_deref(), err)
}

/// `--server`, else $HPL_SERVER.
pub(crate) fn server_of(flag: Option<&str>, err: Out<'_>) -> std::io::Result<Option<String>> {
    match flag
        .map(str::to_string)
        .or_else(|| std::env::var("HPL_SERVER").ok())
    {
        Some(s) => Ok(Some(s)),
        None => {
            writeln!(err, "error: pass --server URL (or set HPL_SERVER)")?;
            Ok(None)
        }
    }
}

/// Says why the server refused or could not be reached.
fn failed(e: &ClientError, err: Out<'_>) -> std::io::Result<Exit> {
    writeln!(err, "error: {e}")?;
    Ok(Exit::Failure)
}

/// One operator call; the answer's JSON.
pub(crate) fn call(
    operator: &Operator,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    content_type: &str,
    err: Out<'_>,
) -> std::io::Result<Result<serde_json::Value, Exit>> {
    Ok(call_raw(operator, method, path, body, content_type, err)?
        .map(|reply| serde_json::from_slice(&reply.body).unwrap_or_default()))
}

/// One operator call; the whole reply. The token: `--token-file`, $HPL_TOKEN, or what
/// `hpl login` kept for the server.
pub(crate) fn call_raw(
    operator: &Operator,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    content_type: &str,
    err: Out<'_>,
) -> std::io::Result<Result<hpl_agent::client::Reply, Exit>> {
    let Some(url) = server(operator, err)? else {
        return Ok(Err(Exit::Usage));
    };
    let stored = match (&operator.token_file, std::env::var("HPL_TOKEN")) {
        (None, Err(_)) => crate::operators::stored_token(operator.config_dir.as_deref(), &url),
        _ => None,
    };
    let token = match stored {
        Some(t) => t,
        None => match secret(operator.token_file.as_deref(), "HPL_TOKEN", None, err)? {
            Some(t) => t,
            None => {
                writeln!(
                    err,
                    "       (or sign in with `hpl login --server {url} --tenant T`)"
                )?;
                return Ok(Err(Exit::Usage));
            }
        },
    };
    let client = Client::new(&url, Duration::from_secs(60));
    match client.operator(&token, method, path, body, content_type) {
        Ok(reply) => Ok(Ok(reply)),
        Err(e) => Ok(Err(failed(&e, err)?)),
    }
}

/// One call with a given token (`hpl login` checking what it got).
pub(crate) fn call_with(
    url: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    content_type: &str,
    err: Out<'_>,
) -> std::io::Result<Result<serde_json::Value, Exit>> {
    let client = Client::new(url, Duration::from_secs(60));
    match client.operator(token, method, path, body, content_type) {
        Ok(reply) => Ok(Ok(serde_json::from_slice(&reply.body).unwrap_or_default())),
        Err(e) => Ok(Err(failed(&e, err)?)),
    }
}

pub(crate) fn print(
    format: Format,
    value: &serde_json::Value,
    human: impl FnOnce(&serde_json::Value) -> String,
    out: Out<'_>,
) -> std::io::Result<Exit> {
    match format {
        Format::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        )?,
        Format::Human => write!(out, "{}", human(value))?,
    }
    Ok(Exit::Success)
}

pub fn publish(args: &PublishArgs, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let bytes = match hpl_runtime::store::read_regular_file(
        &args.bundle,
        hpl_runtime::store::MAX_BUNDLE_BYTES,
    ) {
        Ok(b) => b,
        Err(e) => {
            writeln!(err, "error: cannot read {}: {e}", args.bundle.display())?;
            return Ok(Exit::Usage);
        }
    };
    let Some(tenant) = hpl_runtime::bundle::claimed_tenant(&bytes) else {
        writeln!(err, "error: {} is not a bundle", args.bundle.display())?;
        return Ok(Exit::Usage);
    };
    let v = match call(
        &args.operator,
        "POST",
        &format!("/v1/tenants/{tenant}/releases"),
        Some(&bytes),
        "application/vnd.hpl.bundle",
        err,
    )? {
        Ok(v) => v,
        Err(exit) => return Ok(exit),
    };
    print(
        args.operator.format,
        &v,
        |v| {
            format!(
                "{} release {} of {} ({})\n",
                if v["new"] == true {
                    "published"
                } else {
                    "already published:"
                },
                v["bundle_version"],
                v["tenant"].as_str().unwrap_or(""),
                v["bundle_hash"].as_str().unwrap_or("")
            )
        },
        out,
    )
}

fn ring_line(r: &serde_json::Value) -> String {
    format!(
        "{:<8} {:<14} {}revision {}\n",
        r["name"].as_str().unwrap_or(""),
        r["release"]
            .as_u64()
            .map_or("no release".to_string(), |v| format!("release {v}")),
        if r["paused"] == true { "PAUSED  " } else { "" },
        r["revision"]
    )
}

pub fn ring(command: &RingCommand, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let release = |n: &u64| serde_json::json!({ "release": n }).to_string();
    let (operator, method, path, body) = match command {
        RingCommand::Status { tenant, operator } => {
            (operator, "GET", format!("/v1/tenants/{tenant}/rings"), None)
        }
        RingCommand::Health {
            tenant,
            ring,
            operator,
        } => (
            operator,
            "GET",
            format!("/v1/tenants/{tenant}/rings/{ring}/health"),
            None,
        ),
        RingCommand::Promote {
            tenant,
            ring,
            release: n,
            operator,
        } => (
            operator,
            "POST",
            format!("/v1/tenants/{tenant}/rings/{ring}/promote"),
            Some(release(n)),
        ),
        RingCommand::Rollback {
            tenant,
            ring,
            release: n,
            operator,
        } => (
            operator,
            "POST",
            format!("/v1/tenants/{tenant}/rings/{ring}/rollback"),
            Some(release(n)),
        ),
        RingCommand::Pause {
            tenant,
            ring,
            operator,
        } => (
            operator,
            "POST",
            format!("/v1/tenants/{tenant}/rings/{ring}/pause"),
            Some(String::new()),
        ),
        RingCommand::Resume {
            tenant,
            ring,
            operator,
        } => (
            operator,
            "POST",
            format!("/v1/tenants/{tenant}/rings/{ring}/resume"),
            Some(String::new()),
        ),
    };
    let v = match call(
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
            RingCommand::Status { .. } => {
                v.as_array().into_iter().flatten().map(ring_line).collect()
            }
            RingCommand::Health { .. } => {
                let mut s = format!(
                    "ring {} on release {}: {} records, {} non-compliant; remediation {} started, {} failed; {} policy rejections\n",
                    v["ring"].as_str().unwrap_or(""),
                    v["release"],
                    v["records"],
                    v["non_compliant"],
                    v["remediation_started"],
                    v["remediation_failed"],
                    v["policy_rejected"]
                );
                let failures = v["failures"].as_array().cloned().unwrap_or_default();
                if failures.is_empty() {
                    s.push_str("the gate passes\n");
                }
                for f in failures {
                    s.push_str(&format!("gate: {}\n", f.as_str().unwrap_or("")));
                }
                s
            }
            RingCommand::Promote { .. } => request_line(v),
            _ => format!("ring {}", ring_line(v)),
        },
        out,
    )
}

/// A promotion request as one line.
pub(crate) fn request_line(v: &serde_json::Value) -> String {
    let approvals = v["votes"].as_array().map_or(0, |a| {
        a.iter().filter(|x| x["decision"] == "approve").count()
    });
    format!(
        "request {}: release {} onto {}: {} ({approvals} of {} approvals), requested by {}\n",
        v["id"],
        v["release"],
        v["ring"].as_str().unwrap_or(""),
        v["state"].as_str().unwrap_or(""),
        v["required"],
        v["requested_by"].as_str().unwrap_or("")
    )
}

pub fn agent(command: &AgentCommand, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    match command {
        AgentCommand::Enroll(a) => enroll(a, out, err),
        AgentCommand::Sync(a) => sync(a, out, err),
    }
}

fn enroll(a: &EnrollArgs, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let Ok(Some(config)) = read_config(Some(&a.config), err)? else {
        return Ok(Exit::Failure);
    };
    let Some(inventory) = read_inventory(&a.inventory, err)? else {
        return Ok(Exit::Failure);
    };
    let Some(token) = secret(
        a.token_file.as_deref(),
        "HPL_ENROLLMENT_TOKEN",
        a.token.as_deref(),
        err,
    )?
    else {
        return Ok(Exit::Usage);
    };
    let device = hpl_runtime::device::Device::without_snapshot("enrolling", Some(config));
    let scopes =
        hpl_runtime::summary::scope_labels(&device.prepared(&inventory), &inventory.tenant_id);
    match hpl_agent::enroll(
        &a.server,
        &token,
        &a.store,
        &inventory.device_id,
        &scopes,
        Duration::from_secs(60),
    ) {
        Ok(id) => {
            let v = serde_json::to_value(&id).unwrap_or_default();
            print(
                a.format,
                &v,
                |_| {
                    format!(
                        "enrolled {} as {} (tenant {}, ring {}) with {}\n",
                        id.serial, id.device_id, id.tenant, id.ring, id.server
                    )
                },
                out,
            )
        }
        Err(e) => {
            writeln!(err, "error: {e}")?;
            Ok(Exit::Failure)
        }
    }
}

fn sync(a: &SyncArgs, out: Out<'_>, err: Out<'_>) -> std::io::Result<Exit> {
    let Ok(Some(config)) = read_config(Some(&a.config), err)? else {
        return Ok(Exit::Failure);
    };
    let Some(inventory) = read_inventory(&a.inventory, err)? else {
        return Ok(Exit::Failure);
    };
    let report = hpl_agent::sync(hpl_agent::SyncOptions {
        store: &a.store,
        config: &config,
        inventory: &inventory,
        server: a.server.as_deref(),
        budget: Duration::from_secs(a.timeout.clamp(1, 3600)),
        now: jiff::Timestamp::now().as_second(),
        events: Vec::new(),
    });
    match report {
        Ok(r) => {
            let v = serde_json::to_value(&r).unwrap_or_default();
            print(a.format, &v, |_| r.human(), out)?;
            Ok(if r.reachable {
                Exit::Success
            } else {
                Exit::Offline
            })
        }
        Err(e) => {
            writeln!(err, "error: {e}")?;
            Ok(Exit::Failure)
        }
    }
}
