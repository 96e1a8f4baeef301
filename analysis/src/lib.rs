//! meshtrace's analysis: pure functions from evidence to verdicts.
//!
//! The evidence model ([`model`], [`evidence`]), who is who ([`topology`]), following one request across
//! proxies ([`correlate`]), the hop that produced a status and why ([`diagnose`], [`causes`]),
//! every request of a log ([`explain`], [`settle`], [`failures`]), one request's trace with the
//! configuration behind it ([`trace`], [`objects`], [`configcite`]), static checks ([`doctor`]),
//! config-dump tables and request simulation ([`proxyconfig`], [`routesim`]) and redaction
//! ([`redact`]).
//!
//! Architecture invariant: nothing here reads files, talks to a network, starts threads, knows
//! the command line or prints. The lints below and the crate's dependencies (no tokio, kube,
//! clap or hyper) enforce it; the binary crate owns sources, terminals and output formats.

#![deny(missing_docs)]
#![deny(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::dbg_macro,
    clippy::unwrap_used
)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod ambient;
pub mod authz;
pub mod causes;
pub mod configcite;
pub mod correlate;
pub mod describe;
pub mod diagnose;
pub mod doctor;
pub mod document;
pub mod evidence;
pub mod explain;
pub mod extauthz;
pub mod failures;
pub mod fault;
pub mod fixes;
pub mod gatewaybind;
pub mod gatewayport;
pub mod gatewaytls;
pub mod gaveup;
pub mod inference;
pub mod jwt;
pub mod knative;
pub mod model;
pub mod objects;
pub mod protocol;
pub mod proxyconfig;
pub mod ratelimit;
pub mod reading;
pub mod redact;
pub mod refine;
pub mod reply;
pub mod router;
pub mod routesim;
pub mod seldon;
pub mod settle;
pub mod standard;
pub mod subsets;
pub mod topology;
pub mod trace;
pub mod workload;
