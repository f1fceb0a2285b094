//! `hpl-server`: the control plane — `serve` runs the HTTP API; the other commands administer
//! its database directly, as the server owner (the bootstrap token) or a tenant API
//! credential, held to the same permission matrix as the API (`rbac::authorize`).

use clap::{Args, Parser, Subcommand};
use hpl_server::rbac::{authorize, Permission as P, Role};
use hpl_server::rings;
use hpl_server::{approvals, audit, auth, export, now, oidc, Db, Principal, ServerError};
use std::path::PathBuf;

/// The default database: a SQLite file in the current directory, created on first use.
const DEFAULT_DATABASE: &str = "sqlite://hpl-server.db";

#[derive(Parser, Debug)]
#[command(name = "hpl-server", version, about = "The hpl control plane")]
struct Cli {
    /// The database (default: sqlite://hpl-server.db; postgres://… for PostgreSQL).
    /// Also $HPL_DATABASE_URL.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// A TOML configuration file (`database_url`, `listen`); flags and environment variables
    /// win over it. Also $HPL_SERVER_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print JSON.
    #[arg(long, global = true, value_enum, default_value = "human")]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Human,
    Json,
}

/// The operator's credential: $HPL_TOKEN, or a file. Never a bare flag (it would be in the
/// shell history and the process list).
#[derive(Args, Debug)]
struct Token {
    /// A file holding the owner token (default: $HPL_TOKEN).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the HTTP API (default 127.0.0.1:8470). Stops on Ctrl-C.
    Serve {
        /// The address (default 127.0.0.1:8470; or `listen` in the configuration file).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Create the database, the distribution key and the bootstrap owner token (shown once).
    Init,
    /// Tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Releases.
    Release {
        #[command(subcommand)]
        command: ReleaseCommand,
    },
    /// Rollout rings.
    Ring {
        #[command(subcommand)]
        command: RingCommand,
    },
    /// The audit trail: list, verify the hash chains, export as JSON lines.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Tenant API credentials (for CI), and revoking any credential.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Metrics per ring and release from what devices uploaded (the numbers `hpl report`
    /// gives for the same records).
    Report {
        tenant: String,
        #[command(flatten)]
        token: Token,
    },
}

#[derive(Subcommand, Debug)]
enum TenantCommand {
    /// Register a tenant with its CI's policy public key; prints an enrollment token for MDM.
    Add {
        name: String,
        #[arg(long, value_name = "KEY.pub")]
        policy_key: PathBuf,
        #[command(flatten)]
        token: Token,
    },
    /// Print the MDM configuration for the tenant's devices (JSON: tenant, policy keys,
    /// distribution key, and the device groups given).
    Mdm {
        name: String,
        #[arg(long = "device-group", value_name = "GROUP")]
        device_groups: Vec<String>,
        #[command(flatten)]
        token: Token,
    },
    /// Sign-in for the tenant's operators: its OpenID Connect provider and which group is
    /// which role.
    Sso {
        name: String,
        /// The issuer URL exactly as its tokens carry it.
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        client_id: String,
        /// A file holding the client secret (confidential clients; the console's code exchange).
        #[arg(long, value_name = "FILE")]
        client_secret_file: Option<PathBuf>,
        /// The claim listing the operator's groups.
        #[arg(long, default_value = "groups")]
        claim: String,
        /// GROUP=ROLE (owner, admin, auditor, operator, viewer); repeat for each group.
        #[arg(long = "role", value_name = "GROUP=ROLE")]
        roles: Vec<String>,
        #[command(flatten)]
        token: Token,
    },
    /// Show or set how many approvals a promotion needs (1 to 5).
    Approvals {
        name: String,
        #[arg(long)]
        required: Option<u32>,
        #[command(flatten)]
        token: Token,
    },
    /// Show or set the tenant's health gate thresholds (unset flags keep their value).
    Health {
        name: String,
        /// Newest records (and events of each kind) the gate looks at.
        #[arg(long)]
        window: Option<u32>,
        /// Records needed before a release may leave a ring.
        #[arg(long)]
        min_records: Option<u32>,
        /// remediation_failed / remediation_started, 0 to 1.
        #[arg(long)]
        max_remediation_failure_rate: Option<f64>,
        /// policy_rejected / (those + records), 0 to 1.
        #[arg(long)]
        max_policy_rejected_rate: Option<f64>,
        /// Rise of the non-compliant share against the ring's previous release, 0 to 1.
        #[arg(long)]
        max_non_compliant_increase: Option<f64>,
        #[command(flatten)]
        token: Token,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Entries oldest first: the server's own, or one tenant's.
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        token: Token,
    },
    /// Prove every chain from its first entry to its head; exits 1 naming the first broken link.
    Verify,
    /// The tenant's audit entries and device events as OCSF-shaped JSON lines, from a cursor.
    Export {
        tenant: String,
        /// Where a previous export ended (printed to stderr as `next cursor: …`).
        #[arg(long)]
        cursor: Option<String>,
        #[command(flatten)]
        token: Token,
    },
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// A tenant API credential with one role (CI publishes with an `operator` one).
    Issue {
        tenant: String,
        #[arg(long)]
        role: String,
        #[command(flatten)]
        token: Token,
    },
    /// Revoke a credential by id (the bootstrap owner's too, once operators use SSO).
    Revoke {
        id: String,
        #[command(flatten)]
        token: Token,
    },
}

#[derive(Subcommand, Debug)]
enum ReleaseCommand {
    /// Upload a signed bundle as a release (verified with the tenant's policy keys).
    Publish {
        bundle: PathBuf,
        #[command(flatten)]
        token: Token,
    },
}

#[derive(Subcommand, Debug)]
enum RingCommand {
    /// The tenant's rings: release, paused, revision.
    Status {
        tenant: String,
        #[command(flatten)]
        token: Token,
    },
    /// Ask for a release to go onto a ring (the first ring, or the ring after the one running
    /// it); it is applied when admins or owners other than you approve it.
    Promote {
        tenant: String,
        ring: String,
        #[arg(long)]
        release: u64,
        #[command(flatten)]
        token: Token,
    },
    /// Freeze a ring: its devices keep their snapshot, nothing moves into or out of it.
    Pause {
        tenant: String,
        ring: String,
        #[command(flatten)]
        token: Token,
    },
    Resume {
        tenant: String,
        ring: String,
        #[command(flatten)]
        token: Token,
    },
    /// Set which devices are on a ring (any of: groups, scopes, a stable percentage; or all).
    Members {
        tenant: String,
        ring: String,
        #[arg(long = "device-group", value_name = "GROUP")]
        device_groups: Vec<String>,
        #[arg(long = "scope", value_name = "LABEL")]
        scopes: Vec<String>,
        #[arg(long, value_name = "0-100")]
        percent: Option<u8>,
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        token: Token,
    },
    /// The health gate's figures for the release a ring runs.
    Health {
        tenant: String,
        ring: String,
        #[command(flatten)]
        token: Token,
    },
    /// Put an earlier release back on a ring.
    Rollback {
        tenant: String,
        ring: String,
        #[arg(long)]
        release: u64,
        #[command(flatten)]
        token: Token,
    },
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, ServerError> {
    hpl_runtime::store::read_regular_file(path, hpl_runtime::store::MAX_BUNDLE_BYTES)
        .map_err(|e| ServerError::Invalid(format!("cannot read {}: {e}", path.display())))
}

async fn principal(db: &Db, token: &Token) -> Result<Principal, ServerError> {
    let secret = match &token.token_file {
        Some(path) => String::from_utf8_lossy(&read(path)?).trim().to_string(),
        None => std::env::var("HPL_TOKEN").map_err(|_| {
            ServerError::Forbidden("no credential: set HPL_TOKEN or pass --token-file".into())
        })?,
    };
    auth::authenticate(db, &secret).await
}

fn show<T: serde::Serialize>(format: Format, value: &T, human: impl FnOnce() -> String) {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Format::Human => print!("{}", human()),
    }
}

/// `hpl-server.toml`: what flags and environment variables do not say.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    database_url: Option<String>,
    listen: Option<String>,
    /// Where browsers reach this server (the console's sign-in comes back to
    /// `<public_url>/console/callback`); default http://<listen>.
    public_url: Option<String>,
    /// Receivers of tenants' audit exports (at least once, from a cursor kept in the database).
    #[serde(default)]
    webhook: Vec<export::Webhook>,
}

fn config_file(cli: &Cli) -> Result<ConfigFile, ServerError> {
    let Some(path) = cli
        .config
        .clone()
        .or_else(|| std::env::var_os("HPL_SERVER_CONFIG").map(PathBuf::from))
    else {
        return Ok(ConfigFile::default());
    };
    let text = String::from_utf8(read(&path)?)
        .map_err(|_| ServerError::Invalid(format!("{} is not UTF-8", path.display())))?;
    toml::from_str(&text).map_err(|e| ServerError::Invalid(format!("{}: {e}", path.display())))
}

async fn run(cli: Cli) -> Result<(), ServerError> {
    let file = config_file(&cli)?;
    let url = cli
        .database_url
        .clone()
        .or_else(|| std::env::var("HPL_DATABASE_URL").ok())
        .or(file.database_url)
        .unwrap_or_else(|| DEFAULT_DATABASE.to_string());
    let db = Db::connect(&url).await?;
    let format = cli.format;
    match cli.command {
        Command::Serve { listen } => {
            let listen = listen
                .or(file.listen)
                .unwrap_or_else(|| format!("127.0.0.1:{}", hpl_server::http::DEFAULT_PORT));
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .map_err(|e| ServerError::Invalid(format!("cannot listen on {listen}: {e}")))?;
            eprintln!("hpl-server: serving {url} on http://{listen}");
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            if !file.webhook.is_empty() {
                tokio::spawn(export::run(
                    db.clone(),
                    file.webhook.clone(),
                    std::time::Duration::from_secs(5),
                    stop.clone(),
                ));
            }
            let mut app = hpl_server::http::App::new(db);
            app.console = std::sync::Arc::new(hpl_server::console::Settings {
                public_url: file
                    .public_url
                    .clone()
                    .unwrap_or_else(|| format!("http://{listen}"))
                    .trim_end_matches('/')
                    .to_string(),
            });
            hpl_server::http::serve_app(listener, app, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| ServerError::Invalid(format!("the server stopped: {e}")))?;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Command::Init => {
            let init = rings::init(&db, now()).await?;
            show(format, &init, || {
                format!(
                    "initialised {url}\ndistribution key {} ({})\n\nowner token (shown once; keep it in a secret store):\n{}\n",
                    init.distribution_key_id, init.distribution_public_key, init.owner_token
                )
            });
        }
        Command::Tenant {
            command:
                TenantCommand::Add {
                    name,
                    policy_key,
                    token,
                },
        } => {
            let who = principal(&db, &token).await?;
            let key = String::from_utf8_lossy(&read(&policy_key)?).to_string();
            let enrollment = rings::add_tenant(&db, &who, &name, &key, now()).await?;
            let value = serde_json::json!({ "tenant": name, "enrollment_token": enrollment });
            show(format, &value, || {
                format!("tenant {name} added with rings canary, pilot, broad\nenrollment token for MDM (shown once):\n{enrollment}\n")
            });
        }
        Command::Release {
            command: ReleaseCommand::Publish { bundle, token },
        } => {
            let who = principal(&db, &token).await?;
            let bytes = read(&bundle)?;
            let tenant = hpl_runtime::bundle::claimed_tenant(&bytes).ok_or_else(|| {
                ServerError::Invalid(format!("{} is not a bundle", bundle.display()))
            })?;
            authorize(&who, Some(&tenant), P::Publish)?;
            let r = rings::publish(&db, &who, &tenant, &bytes, now()).await?;
            show(format, &r, || {
                format!(
                    "{} release {} of {} ({})\n",
                    if r.new {
                        "published"
                    } else {
                        "already published:"
                    },
                    r.bundle_version,
                    r.tenant,
                    r.bundle_hash
                )
            });
        }
        Command::Ring { command } => {
            let ring = match command {
                RingCommand::Status { tenant, token } => {
                    let who = principal(&db, &token).await?;
                    authorize(&who, Some(&tenant), P::ViewRollout)?;
                    let all = rings::rings(&db, &tenant).await?;
                    show(format, &all, || {
                        all.iter()
                            .map(|r| {
                                format!(
                                    "{:<8} {:<14} {}revision {:<3} members: {}\n",
                                    r.name,
                                    r.release.map_or("no release".to_string(), |v| format!(
                                        "release {v}"
                                    )),
                                    if r.paused { "PAUSED  " } else { "" },
                                    r.revision,
                                    r.members.describe()
                                )
                            })
                            .collect()
                    });
                    return Ok(());
                }
                RingCommand::Promote {
                    tenant,
                    ring,
                    release,
                    token,
                } => {
                    let who = principal(&db, &token).await?;
                    authorize(&who, Some(&tenant), P::RequestPromotion)?;
                    let r = approvals::request_promotion(&db, &who, &tenant, &ring, release, now())
                        .await?;
                    show(format, &r, || request_text(&r));
                    return Ok(());
                }
                RingCommand::Pause {
                    tenant,
                    ring,
                    token,
                } => {
                    let who = principal(&db, &token).await?;
                    authorize(&who, Some(&tenant), P::Emergency)?;
                    rings::set_paused(&db, &who, &tenant, &ring, true, now()).await?
                }
                RingCommand::Resume {
                    tenant,
                    ring,
                    token,
                } => {
                    let who = principal(&db, &token).await?;
                    authorize(&who, Some(&tenant), P::Emergency)?;
                    rings::set_paused(&db, &who, &tenant, &ring, false, now()).await?
                }
                RingCommand::Members {
                    tenant,
                    ring,
                    device_groups,
                    scopes,
                    percent,
                    all,
                    token,
                } => {
                    let who = principal(&db, &token).await?;
                    authorize(&who, Some(&tenant), P::Configure)?;
                    let members = hpl_server::membership::Members {
                        device_groups,
                        scopes,
                        percent,
                        all,
                    };
                    rings::set_members(&db, &who, &tenant, &ring, members, now()).await?
                }
                RingCommand::Health {
                    tenant,
                    ring,
                    token,
                } => {
                    let who = principal(&db, &token).await?;
                    authorize(&who, Some(&tenant), P::ViewRollout)?;
                    let f = rings::health(&db, &tenant, &ring).await?;
                    show(format, &f, || health_text(&f));
                    return Ok(());
                }
                RingCommand::Rollback {
                    tenant,
                    ring,
                    release,
                    token,
                } => {
                    let who = principal(&db, &token).await?;
                    authorize(&who, Some(&tenant), P::Emergency)?;
                    rings::rollback(&db, &who, &tenant, &ring, release, now()).await?
                }
            };
            show(format, &ring, || {
                format!(
                    "ring {}: {}{}, members: {} (revision {})\n",
                    ring.name,
                    ring.release
                        .map_or("no release".to_string(), |v| format!("release {v}")),
                    if ring.paused { ", paused" } else { "" },
                    ring.members.describe(),
                    ring.revision
                )
            });
        }
        Command::Tenant {
            command:
                TenantCommand::Health {
                    name,
                    window,
                    min_records,
                    max_remediation_failure_rate,
                    max_policy_rejected_rate,
                    max_non_compliant_increase,
                    token,
                },
        } => {
            let who = principal(&db, &token).await?;
            authorize(&who, Some(&name), P::Configure)?;
            let mut t = hpl_server::health::thresholds(&db, &name).await?;
            let before = t.clone();
            t.window = window.unwrap_or(t.window);
            t.min_records = min_records.unwrap_or(t.min_records);
            t.max_remediation_failure_rate =
                max_remediation_failure_rate.unwrap_or(t.max_remediation_failure_rate);
            t.max_policy_rejected_rate =
                max_policy_rejected_rate.unwrap_or(t.max_policy_rejected_rate);
            t.max_non_compliant_increase =
                max_non_compliant_increase.unwrap_or(t.max_non_compliant_increase);
            if t != before {
                t = rings::set_thresholds(&db, &who, &name, &t, now()).await?;
            }
            show(format, &t, || {
                format!(
                    "health gate of {name}: the newest {} records (at least {}); at most {:.1} % remediation failures, {:.1} % policy rejections, {:.1} points more non-compliant than the ring's previous release\n",
                    t.window,
                    t.min_records,
                    t.max_remediation_failure_rate * 100.0,
                    t.max_policy_rejected_rate * 100.0,
                    t.max_non_compliant_increase * 100.0
                )
            });
        }
        Command::Tenant {
            command:
                TenantCommand::Mdm {
                    name,
                    device_groups,
                    token,
                },
        } => {
            let who = principal(&db, &token).await?;
            authorize(&who, Some(&name), P::Configure)?;
            let config = rings::mdm_config(&db, &name, &device_groups).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&config).unwrap_or_default()
            );
        }
        Command::Report { tenant, token } => {
            let who = principal(&db, &token).await?;
            authorize(&who, Some(&tenant), P::ViewRollout)?;
            let m = hpl_server::metrics::tenant(&db, &tenant).await?;
            show(format, &m, || report_text(&m));
        }
        Command::Audit {
            command: AuditCommand::List { tenant, token },
        } => {
            let who = principal(&db, &token).await?;
            match &tenant {
                Some(t) => authorize(&who, Some(t), P::ViewAudit)?,
                None => authorize(&who, None, P::ServerAdmin)?,
            }
            let chain = tenant.unwrap_or_default();
            let mut all = Vec::new();
            loop {
                let filter = audit::Filter {
                    after: all.last().map(|e: &audit::AuditEntry| e.seq),
                    ..audit::Filter::default()
                };
                let page = audit::entries(&db, &chain, &filter).await?;
                if page.is_empty() {
                    break;
                }
                all.extend(page);
            }
            show(format, &all, || all.iter().map(audit_text).collect());
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            // The database file is the authority here: whoever can open it can read it.
            let mut results = Vec::new();
            for chain in audit::chains(&db).await? {
                results.push(audit::verify(&db, &chain).await?);
            }
            let broken: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
            let value = serde_json::json!({
                "verified": results.iter().filter_map(|r| r.as_ref().ok()).collect::<Vec<_>>(),
                "broken": broken,
            });
            show(format, &value, || {
                let mut out = String::new();
                for r in &results {
                    match r {
                        Ok(v) => out.push_str(&format!(
                            "chain {}: {} entries verified, head {}\n",
                            chain_name(&v.chain),
                            v.entries,
                            v.head
                        )),
                        Err(b) => out.push_str(&format!(
                            "chain {}: BROKEN at entry {}: {}\n",
                            chain_name(&b.chain),
                            b.seq,
                            b.reason
                        )),
                    }
                }
                out
            });
            if !broken.is_empty() {
                return Err(ServerError::Conflict(format!(
                    "the audit trail is broken in {} chain(s); the first broken link of `{}` is entry {}",
                    broken.len(),
                    chain_name(&broken[0].chain),
                    broken[0].seq
                )));
            }
        }
        Command::Audit {
            command:
                AuditCommand::Export {
                    tenant,
                    cursor,
                    token,
                },
        } => {
            let who = principal(&db, &token).await?;
            authorize(&who, Some(&tenant), P::ViewAudit)?;
            let mut at = export::Cursor::parse(cursor.as_deref().unwrap_or(""))?;
            loop {
                let page = export::page(&db, &tenant, at, audit::MAX_PAGE).await?;
                if page.lines.is_empty() {
                    break;
                }
                print!("{}", page.body());
                at = page.next;
            }
            eprintln!("next cursor: {at}");
        }
        Command::Tenant {
            command:
                TenantCommand::Sso {
                    name,
                    issuer,
                    client_id,
                    client_secret_file,
                    claim,
                    roles,
                    token,
                },
        } => {
            let who = principal(&db, &token).await?;
            authorize(&who, Some(&name), P::ManageAccess)?;
            let mut role_map = std::collections::BTreeMap::new();
            for pair in &roles {
                let (group, role) = pair
                    .split_once('=')
                    .ok_or_else(|| ServerError::Invalid(format!("`{pair}` is not GROUP=ROLE")))?;
                let role = Role::parse(role).ok_or_else(|| {
                    ServerError::Invalid(format!(
                        "`{role}` is not a role (owner, admin, auditor, operator, viewer)"
                    ))
                })?;
                role_map.insert(group.to_string(), role);
            }
            let client_secret = match &client_secret_file {
                Some(f) => Some(String::from_utf8_lossy(&read(f)?).trim().to_string()),
                None => None,
            };
            let config = oidc::SsoConfig {
                issuer,
                client_id,
                client_secret,
                roles_claim: claim,
                role_map,
            };
            let c = oidc::set_sso(&db, &who, &name, &config, now()).await?;
            show(format, &c, || {
                format!(
                    "tenant {name} signs in with {} (client {}); roles from `{}`: {}\n",
                    c.issuer,
                    c.client_id,
                    c.roles_claim,
                    c.role_map
                        .iter()
                        .map(|(g, r)| format!("{g} = {r}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
        }
        Command::Tenant {
            command:
                TenantCommand::Approvals {
                    name,
                    required,
                    token,
                },
        } => {
            let who = principal(&db, &token).await?;
            let n = match required {
                Some(n) => {
                    authorize(&who, Some(&name), P::ManageAccess)?;
                    approvals::set_required(&db, &who, &name, n, now()).await?
                }
                None => {
                    authorize(&who, Some(&name), P::ViewRollout)?;
                    approvals::required(&db, &name).await?
                }
            };
            let value = serde_json::json!({ "tenant": name, "approvals_required": n });
            show(format, &value, || {
                format!("promotions in {name} need {n} approval(s) by admins or owners other than the requester\n")
            });
        }
        Command::Token {
            command:
                TokenCommand::Issue {
                    tenant,
                    role,
                    token,
                },
        } => {
            let who = principal(&db, &token).await?;
            authorize(&who, Some(&tenant), P::ManageAccess)?;
            let role = Role::parse(&role)
                .ok_or_else(|| ServerError::Invalid(format!("`{role}` is not a role")))?;
            let (id, secret) = auth::issue_api(&db, &who, &tenant, role, now()).await?;
            let value =
                serde_json::json!({ "id": id, "tenant": tenant, "role": role, "token": secret });
            show(format, &value, || {
                format!("credential {id} ({role} of {tenant}); its token (shown once):\n{secret}\n")
            });
        }
        Command::Token {
            command: TokenCommand::Revoke { id, token },
        } => {
            let who = principal(&db, &token).await?;
            authorize(&who, None, P::ServerAdmin)?;
            auth::revoke(&db, &who, None, &id, now()).await?;
            show(format, &serde_json::json!({ "revoked": id }), || {
                format!("revoked {id}\n")
            });
        }
    }
    Ok(())
}

fn chain_name(chain: &str) -> &str {
    if chain.is_empty() {
        "(server)"
    } else {
        chain
    }
}

fn audit_text(e: &audit::AuditEntry) -> String {
    format!(
        "{:>5} {} {:<18} {} by {}{}\n",
        e.seq,
        hpl_runtime::eval::timestamp(e.at),
        e.action,
        e.subject,
        e.actor,
        if e.emergency { " [emergency]" } else { "" }
    )
}

fn request_text(r: &approvals::Request) -> String {
    format!(
        "request {}: release {} onto {} — {} ({} of {} approvals), requested by {}\n",
        r.id,
        r.release,
        r.ring,
        r.state.as_str(),
        r.approvals(),
        r.required,
        r.requested_by
    )
}

fn health_text(f: &hpl_server::health::Figures) -> String {
    let mut out = format!(
        "ring {} on release {}: {} records, {} non-compliant ({:.1} %)",
        f.ring,
        f.release,
        f.records,
        f.non_compliant,
        f.non_compliant_rate * 100.0
    );
    if let (Some(p), Some(rate)) = (f.previous_release, f.previous_non_compliant_rate) {
        out.push_str(&format!("; {:.1} % on release {p} before", rate * 100.0));
    }
    out.push_str(&format!(
        "\nremediation: {} started, {} failed ({:.1} %); policy rejected: {} ({:.1} %)\n",
        f.remediation_started,
        f.remediation_failed,
        f.remediation_failure_rate * 100.0,
        f.policy_rejected,
        f.policy_rejected_rate * 100.0
    ));
    if f.passes() {
        out.push_str("the gate passes\n");
    } else {
        for why in &f.failures {
            out.push_str(&format!("gate: {why}\n"));
        }
    }
    out
}

fn report_text(m: &hpl_server::metrics::TenantMetrics) -> String {
    let s = &m.fleet.states;
    let mut out = format!(
        "{}: {} devices reporting; {} compliant, {} warning, {} non-compliant, {} unknown ({:.1} % compliant)\n",
        m.tenant,
        m.fleet.devices,
        s.compliant,
        s.warning,
        s.non_compliant,
        s.unknown,
        m.fleet.compliant_percent
    );
    for r in &m.rings {
        out.push_str(&format!(
            "\nring {} ({}{}; {} enrolled)\n",
            r.ring,
            r.release
                .map_or("no release".to_string(), |v| format!("release {v}")),
            if r.paused { ", PAUSED" } else { "" },
            r.enrolled
        ));
        for rel in &r.releases {
            out.push_str(&format!(
                "  release {:<4} {:>5} devices  compliant {:>5.1} %  warning {:>5.1} %  non-compliant {:>5.1} %  unknown {:>5.1} %\n",
                rel.release,
                rel.devices,
                rel.percent.compliant,
                rel.percent.warning,
                rel.percent.non_compliant,
                rel.percent.unknown
            ));
            out.push_str(&format!(
                "               remediation {} started, {} completed, {} failed; policy rejected {}\n",
                rel.remediation.started,
                rel.remediation.completed,
                rel.remediation.failed,
                rel.policy_rejected
            ));
        }
    }
    if !m.fleet.top_drifts.is_empty() {
        out.push_str("\nmost common drifts\n");
        for d in m.fleet.top_drifts.iter().take(10) {
            out.push_str(&format!(
                "  {:>5} devices  {} {}:{}\n",
                d.devices, d.category, d.manager, d.package
            ));
        }
    }
    out
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("error ({}): {e}", e.code());
        std::process::exit(match e {
            ServerError::Forbidden(_) | ServerError::Invalid(_) | ServerError::NotFound(_) => 2,
            _ => 1,
        });
    }
}
