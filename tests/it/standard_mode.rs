//! Placeholder: filled in by the standard_mode work.
