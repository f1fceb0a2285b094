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
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8470")]
        listen: String,
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

async fn run(cli: Cli) -> Result<(), ServerError> {
    let url = cli
        .database_url
        .clone()
        .or_else(|| std::env::var("HPL_DATABASE_URL").ok())
        .unwrap_or_else(|| DEFAULT_DATABASE.to_string());
    let db = Db::connect(&url).await?;
    let format = cli.format;
    match cli.command {
        Command::Serve { listen } => {
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .map_err(|e| ServerError::Invalid(format!("cannot listen on {listen}: {e}")))?;
            eprintln!("hpl-server: serving {url} on http://{listen}");
            axum::serve(listener, hpl_server::http::router(db))
                .with_graceful_shutdown(async {
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
                                    "{:<8} {:<14} {}revision {}\n",
                                    r.name,
                                    r.release.map_or("no release".to_string(), |v| format!(
                                        "release {v}"
                                    )),
                                    if r.paused { "PAUSED  " } else { "" },
                                    r.revision
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
                    "ring {}: {}{} (revision {}; manifest signed)\n",
                    ring.name,
                    ring.release
                        .map_or("no release".to_string(), |v| format!("release {v}")),
                    if ring.paused { ", paused" } else { "" },
                    ring.revision
                )
            });
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
