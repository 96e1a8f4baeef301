//! Placeholder: filled in by the cli_describe work.
