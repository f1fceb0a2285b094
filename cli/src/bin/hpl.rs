//! The `hpl` binary: a thin wrapper over [`hpl_cli::run_with`].

use std::io::IsTerminal;

fn main() {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let terminal = hpl_cli::Terminal {
        input: &mut std::io::stdin().lock(),
        progress: stderr.is_terminal(),
    };
    let code = hpl_cli::run_with(
        std::env::args_os(),
        terminal,
        &mut stdout.lock(),
        &mut stderr.lock(),
    );
    std::process::exit(code);
}
