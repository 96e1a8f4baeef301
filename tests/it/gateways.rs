//! Placeholder: filled in by the gateways work.
