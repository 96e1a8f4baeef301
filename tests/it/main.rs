//! meshtrace's integration tests: one test binary (one link of the crate, shared helpers).
//! Each module is one area: the CLI commands on the example and lab bundles, bundles and
//! archives, large inputs, robustness, the live collection against a fake API server, the
//! format oracle and the architecture invariants.

mod common;
mod fake_apiserver;
mod fake_loki;

mod ambient;
mod architecture;
mod archives_as_sent;
mod bundle_inputs;
mod bundle_streaming;
mod cli_config_cite;
mod cli_describe;
mod cli_doctor;
mod cli_explain;
mod cli_failures;
mod cli_outputs;
mod cli_polish;
mod cli_proxy_config;
mod cli_report;
mod cli_route_check;
mod cli_trace;
mod disorder;
mod exit_codes;
mod failures_parity;
mod fixes;
mod format_oracle;
mod gateways;
mod lab;
mod large_inputs;
mod live_collect;
mod live_errors;
mod live_parity;
mod live_trace;
mod loki;
mod otlp;
mod robustness;
mod seed_systems;
mod ship;
mod standard_mode;
mod trace_index;
mod untrusted_input;
mod untrusted_lines;
mod untrusted_live;
mod untrusted_output;
mod verdicts_deeper;
