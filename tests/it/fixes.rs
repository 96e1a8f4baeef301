//! Placeholder: filled in by the fixes work.
