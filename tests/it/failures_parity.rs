//! Placeholder: filled in by the failures_parity work.
