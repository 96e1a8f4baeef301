//! Placeholder: filled in by the trace_index work.
