//! `sseload`: the command-line shell over `loadtest::sseload` (see its docs and `--help`).
//!
//! Prints a table on stdout and, with `--json FILE`, writes the same result as JSON. Exits 0
//! when the run completed (errors of the target are results, not failures of the tool), 2 for
//! bad arguments, a target that cannot be reached at start, or a client thread that failed (the
//! counts would be short).

use std::process::ExitCode;

use clap::Parser;
use loadtest::sseload::args::{Args, Plan};
use loadtest::sseload::run::run;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    let plan = match Plan::from_args(&args) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("sseload: {e}");
            return ExitCode::from(2);
        }
    };
    let json = plan.json.clone();
    let report = match run(plan) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("sseload: {}", e.0);
            return ExitCode::from(2);
        }
    };
    print!("{}", report.table());
    if let Some(path) = json {
        if let Err(e) = std::fs::write(&path, report.json() + "\n") {
            eprintln!("sseload: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}
