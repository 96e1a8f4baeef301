//! meshtrace: tells a support engineer why one request to a model failed, and at which hop.
//!
//! Data flows one way: [`source`] (files, stdin, bundles, archives; the cluster through [`live`])
//! → `meshtrace-parsers` → `meshtrace-analysis` (topology, correlate, diagnose, citations) →
//! [`report`] (the only code that writes to stdout). [`commands`] glue them per subcommand;
//! [`cli`] parses arguments and owns exit codes.

pub mod cli;
pub mod commands;
pub mod live;
pub mod report;
pub mod source;

pub use meshtrace_analysis::{
    ambient, causes, configcite, correlate, diagnose, doctor, evidence, explain, failures,
    inference, model, objects, proxyconfig, redact, routesim, settle, topology, trace,
};
