//! The `craton` binary: parse arguments, start logging, dispatch, map errors
//! to exit codes (0 ok, 1 build failure, 2 bad input).

use std::process::ExitCode;

fn main() -> ExitCode {
    craton::cli::main()
}
