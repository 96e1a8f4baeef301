//! `meshtrace formats`: list the built-in access-log formats.

use anyhow::Result;

use crate::commands::EXIT_OK;

/// Run `formats`.
pub fn run() -> Result<i32> {
    crate::report::write_formats(&mut crate::report::stdout())?;
    Ok(EXIT_OK)
}
