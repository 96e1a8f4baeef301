//! Placeholder: filled in by the seed_systems work.
