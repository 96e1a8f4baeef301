//! The `meshtrace` binary: parse arguments, run the command, exit with its code.

fn main() {
    std::process::exit(meshtrace::cli::run());
}
