//! The `hpl` binary: a thin wrapper over [`hpl_cli::run`].

fn main() {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code = hpl_cli::run(std::env::args_os(), &mut stdout.lock(), &mut stderr.lock());
    std::process::exit(code);
}
