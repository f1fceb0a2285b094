//! `hpl-cli`: the `hpl` command. `run` takes the arguments and the output streams, so tests
//! run the real CLI in-process; `src/bin/hpl.rs` only calls it.
//!
//! One module per command family: [`author`] (check, fmt, explain), [`bundle`] (keygen, build,
//! verify, inspect), [`device`] (eval, authorize, snapshot), [`control`] (publish, ring, agent). Each command's clap arguments are
//! one struct, passed whole; exit codes are [`Exit`]. Device logic is the runtime's
//! (`hpl_runtime::device`), compiling is the compiler's: this crate only reads, calls, prints.

pub mod author;
pub mod bundle;
pub mod control;
pub mod device;
pub mod diff;
pub mod exit;
pub(crate) mod fleet;
mod io;
pub mod operators;
pub mod report;
pub mod test;
pub mod why;

pub use exit::Exit;

use clap::{Parser, Subcommand};
use std::io::Write;

#[derive(Parser, Debug)]
#[command(
    name = "hpl",
    version,
    about = "The hpl policy toolchain for Helm developer-environment fleets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse, resolve, type-check and analyze a policy directory; print diagnostics.
    Check(author::CheckArgs),
    /// Format policy files in the canonical layout.
    Fmt(author::FmtArgs),
    /// Print the long explanation of a diagnostic code, with an example and the fix.
    Explain(author::ExplainArgs),
    /// Generate an ed25519 signing key: writes KEY and KEY.pub.
    Keygen(bundle::KeygenArgs),
    /// Compile a policy directory to a signed bundle.
    Build(bundle::BuildArgs),
    /// Check a bundle's signature and run the verifier. Exit 0 valid, 1 invalid.
    Verify(bundle::VerifyArgs),
    /// Show a bundle's manifest and tables.
    Inspect(bundle::InspectArgs),
    /// Evaluate a device inventory and print its compliance record.
    /// Exit 0 compliant or warning, 3 non_compliant, 4 unknown, 1 error.
    Eval(device::EvalArgs),
    /// May the agent run this action? Prints the decision as JSON.
    /// Exit 0 allow, 5 needs_confirmation, 6 deny, 1 error.
    Authorize(device::AuthorizeArgs),
    /// The semantic diff of two policies (directories, bundles, or --git OLD..NEW): entries
    /// per scope, winners that change, and with --inventories the devices that change.
    Diff(diff::DiffArgs),
    /// Evaluate a fleet's inventories and summarise its compliance (by state, scope, ring,
    /// manager; top drifts and their rules; unknown devices and why); --html for a page.
    Report(report::ReportArgs),
    /// Run the policy tests under DIR/tests: expectations, snapshots, coverage.
    /// Exit 0 all pass, 1 any failure, 2 usage or I/O.
    Test(test::TestArgs),
    /// The decision trace of one package on one device: every rule that names it, which
    /// apply, which precedence step chose the winner, the pin, the violation and the plan.
    Why(why::WhyArgs),
    /// The offline snapshot store on a device.
    Snapshot {
        #[command(subcommand)]
        command: device::SnapshotCommand,
    },
    /// Upload a signed bundle to the control plane as a release (verified there with the
    /// tenant's policy keys; publishing the same bundle again changes nothing).
    Publish(control::PublishArgs),
    /// Rollout rings on the control plane: status, promote, pause, resume, rollback, health.
    Ring {
        #[command(subcommand)]
        command: control::RingCommand,
    },
    /// Sign in to a tenant's control plane through its identity provider (device flow); the
    /// token is kept in ~/.config/hpl/credentials.json (0600) for `hpl ring`, `hpl publish`,
    /// `hpl approvals` and `hpl audit`.
    Login(operators::LoginArgs),
    /// Promotion requests: list, approve, reject (four eyes: never your own).
    Approvals {
        #[command(subcommand)]
        command: operators::ApprovalsCommand,
    },
    /// The tenant's audit trail: export as JSON lines, verify an export's hash chain.
    Audit {
        #[command(subcommand)]
        command: operators::AuditCommand,
    },
    /// The device side of the control plane: enroll, sync.
    Agent {
        #[command(subcommand)]
        command: control::AgentCommand,
    },
}

/// What the CLI may do besides reading its arguments and writing `out` and `err`.
pub struct Terminal<'a> {
    /// Answers to interactive questions (`hpl test --review`).
    pub input: &'a mut dyn std::io::BufRead,
    /// `err` is a terminal a person watches: long commands (`report`, `diff --inventories`)
    /// show a progress line there. Never when it is piped or captured.
    pub progress: bool,
}

/// Runs the CLI; returns the process exit code. Interactive input comes from standard input;
/// no progress line is shown (`err` may be anything).
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let terminal = Terminal {
        input: &mut std::io::stdin().lock(),
        progress: false,
    };
    run_with(args, terminal, out, err)
}

/// [`run`] with the answers to interactive questions read from `input`.
pub fn run_with_input<I, T>(
    args: I,
    input: &mut dyn std::io::BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let terminal = Terminal {
        input,
        progress: false,
    };
    run_with(args, terminal, out, err)
}

/// [`run`] with the terminal given: what the `hpl` binary calls.
pub fn run_with<I, T>(
    args: I,
    terminal: Terminal<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let Terminal { input, progress } = terminal;
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let exit = if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Success
            };
            let text = e.render().to_string();
            let _ = if e.use_stderr() {
                err.write_all(text.as_bytes())
            } else {
                out.write_all(text.as_bytes())
            };
            return exit.code();
        }
    };
    let result = match &cli.command {
        Command::Check(args) => author::check(args, out, err),
        Command::Fmt(args) => author::fmt(args, out, err),
        Command::Explain(args) => author::explain(args, out, err),
        Command::Keygen(args) => bundle::keygen(args, out, err),
        Command::Build(args) => bundle::build(args, out, err),
        Command::Verify(args) => bundle::verify(args, out, err),
        Command::Inspect(args) => bundle::inspect(args, out, err),
        Command::Eval(args) => device::eval(args, out, err),
        Command::Authorize(args) => device::authorize(args, out, err),
        Command::Diff(args) => diff::diff(args, progress, out, err),
        Command::Report(args) => report::report(args, progress, out, err),
        Command::Test(args) => test::test(args, input, out, err),
        Command::Why(args) => why::why(args, out, err),
        Command::Snapshot { command } => device::snapshot(command, out, err),
        Command::Publish(args) => control::publish(args, out, err),
        Command::Ring { command } => control::ring(command, out, err),
        Command::Agent { command } => control::agent(command, out, err),
        Command::Login(args) => operators::login(args, out, err),
        Command::Approvals { command } => operators::approvals(command, out, err),
        Command::Audit { command } => operators::audit(command, out, err),
    };
    result
        .unwrap_or_else(|e| {
            let _ = writeln!(err, "error: cannot write output: {e}");
            Exit::Usage
        })
        .code()
}
