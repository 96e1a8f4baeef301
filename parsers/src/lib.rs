//! Pure, never-panicking parsers for Envoy and Istio access logs and their vocabulary.
//!
//! Layers, bottom up: [`flags`], [`details`], [`cluster`] and [`address`] parse single field
//! values; [`format`](mod@format) compiles Envoy format strings and matches lines; [`json`] scans JSON
//! objects; [`envelope`] strips `kubectl --timestamps`/CRI/docker prefixes; [`detect`] decides
//! what one line is; [`assemble`] turns a stream of physical lines into records (re-joining
//! wrapped lines). No I/O, no async: callers feed `&str`.

#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

pub mod address;
pub mod agentgateway;
pub mod assemble;
pub mod builtins;
pub mod cluster;
pub mod configdump;
pub mod curl;
pub mod details;
pub mod detect;
pub mod envelope;
pub mod epp;
pub mod flags;
pub mod format;
pub mod grpc;
pub mod haproxy;
pub mod json;
pub mod knative;
pub mod operators;
pub mod record;
pub mod slot;
mod swar;
mod words;
pub mod ztunnel;

/// Re-exported so callers scan logs with the same substring search as the parsers.
pub use memchr;

pub use assemble::{Assembler, Event, Located};
pub use detect::{FormatSpec, LineOutcome, LineParser};
pub use format::{Slot, TextFormat};
pub use record::RawRecord;
