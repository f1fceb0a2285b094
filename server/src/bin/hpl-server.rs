//! `hpl-server`: the control plane's administration commands on its database. (The HTTP API
//! for devices and for `hpl publish` / `hpl ring` is the next part of issue 11.)

use clap::{Args, Parser, Subcommand};
use hpl_server::rings;
use hpl_server::{auth, now, Db, Principal, ServerError};
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
    /// The audit trail, oldest first.
    Audit {
        #[command(flatten)]
        token: Token,
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
    /// Put a release on a ring (the first ring, or the ring after the one running it).
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
            hpl_server::http::serve(listener, db, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| ServerError::Invalid(format!("the server stopped: {e}")))?;
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
            let r = rings::publish(&db, &who, &read(&bundle)?, now()).await?;
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
                    rings::allowed(&who, &tenant)?;
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
                    rings::promote(&db, &who, &tenant, &ring, release, now()).await?
                }
                RingCommand::Pause {
                    tenant,
                    ring,
                    token,
                } => {
                    let who = principal(&db, &token).await?;
                    rings::set_paused(&db, &who, &tenant, &ring, true, now()).await?
                }
                RingCommand::Resume {
                    tenant,
                    ring,
                    token,
                } => {
                    let who = principal(&db, &token).await?;
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
                    rings::allowed(&who, &tenant)?;
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
            rings::allowed(&who, &name)?;
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
            rings::allowed(&who, &name)?;
            let config = rings::mdm_config(&db, &name, &device_groups).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&config).unwrap_or_default()
            );
        }
        Command::Report { tenant, token } => {
            let who = principal(&db, &token).await?;
            rings::allowed(&who, &tenant)?;
            let m = hpl_server::metrics::tenant(&db, &tenant).await?;
            show(format, &m, || report_text(&m));
        }
        Command::Audit { token } => {
            let who = principal(&db, &token).await?;
            let trail: Vec<_> = rings::audit_trail(&db)
                .await?
                .into_iter()
                .filter(|e| e.tenant.as_deref().is_none_or(|t| who.may(t)))
                .collect();
            show(format, &trail, || {
                trail
                    .iter()
                    .map(|e| {
                        format!(
                            "{:>5} {} {:<16} {:<14} {} by {}\n",
                            e.id,
                            hpl_runtime::eval::timestamp(e.at),
                            e.action,
                            e.tenant.as_deref().unwrap_or("-"),
                            e.subject,
                            e.actor
                        )
                    })
                    .collect()
            });
        }
    }
    Ok(())
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
