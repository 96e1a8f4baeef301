//! `meshtrace formats`: list the built-in access-log formats.

use std::io::Write;

use anyhow::Result;

use crate::cli::EXIT_OK;

/// Run `formats`.
pub fn run() -> Result<i32> {
    let mut out = std::io::stdout().lock();
    for b in meshtrace_parsers::builtins::BUILTIN_TEXT {
        writeln!(
            out,
            "{:<12} {}{}",
            b.name,
            b.description,
            if b.detect { "" } else { " (explicit only)" }
        )?;
        writeln!(out, "             {}", b.format.trim_end())?;
    }
    writeln!(
        out,
        "{:<12} Istio's JSON encoding (default JSON keys)",
        "istio-json"
    )?;
    writeln!(
        out,
        "{:<12} Envoy Gateway's default JSON access log (header-style keys)",
        "envoy-gateway-json"
    )?;
    writeln!(
        out,
        "JSON lines are detected automatically; `--log-format json` forces JSON."
    )?;
    Ok(EXIT_OK)
}
