//! meshtrace: tells a support engineer why one request to a model failed, and at which hop.
//!
//! Data flows one way: input (files, bundle, cluster) → `meshtrace-parsers` → diagnose → report.
//! [`input`] reads logs; [`explain`] and [`diagnose`] are pure; [`report`] is the only module
//! that writes output; [`cli`] parses arguments and owns exit codes.

pub mod bundle;
pub mod causes;
pub mod cli;
pub mod commands;
pub mod configcite;
pub mod correlate;
pub mod diagnose;
pub mod doctor;
pub mod evidence;
pub mod explain;
pub mod failures;
pub mod input;
pub mod live;
pub mod objects;
pub mod postmortem;
pub mod proxyconfig;
pub mod redact;
pub mod report;
pub mod routesim;
pub mod scan;
pub mod stream;
pub mod topology;
pub mod trace;
