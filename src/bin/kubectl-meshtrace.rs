//! `kubectl-meshtrace`: the meshtrace CLI under the name kubectl looks for, so that
//! `kubectl meshtrace trace <id> -n <namespace>` works once this binary is on `PATH`.

fn main() {
    std::process::exit(meshtrace::cli::run());
}
