//! The `meshtrace` binary: parse arguments, run the command, exit with its code.
//!
//! Errors are printed by `cli::run` through the output sanitiser (`report::error`); a closed
//! standard output (`meshtrace … | head`) ends the command quietly with exit code 0, as ripgrep
//! does.

fn main() {
    std::process::exit(meshtrace::cli::run());
}
