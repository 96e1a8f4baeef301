//! Command-line interface: arguments (clap) and dispatch to the commands. Returns exit codes.

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use crate::commands::{EXIT_ERROR, EXIT_NOTHING, EXIT_OK};

/// Why one request to a model failed, and at which hop.
#[derive(Debug, Parser)]
#[command(name = "meshtrace", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Explain access-log lines: group them by request and say what each status means.
    ///
    /// Reads Envoy/Istio access logs in any built-in format (auto-detected per input), JSON,
    /// `kubectl logs --timestamps`, CRI and docker json-file lines, and lines pasted into a ticket
    /// (wrapped over several lines, the leading `[START_TIME] "` cut off).
    Explain(crate::commands::explain::ExplainArgs),
    /// Rebuild one request's hop-by-hop path and name the hop and the cause of its status.
    ///
    /// START is an x-request-id (it may change at a gateway: the path is followed across the
    /// change), a client `ip:port`, or a client IP (its latest failed request). Evidence comes
    /// from `--bundle` and/or log files. Exit code: 0 the request succeeded, 1 it failed, 2 it
    /// was not found or the input was unusable.
    Trace(crate::commands::trace::TraceArgs),
    /// List every failed request in the evidence, grouped by cause, origin, status and target.
    ///
    /// Exit code: 0 nothing failed, 1 failures were found, 2 bad arguments or unusable evidence.
    Failures(crate::commands::failures::FailuresArgs),
    /// Write a post-incident report of one request (or of every failure with --failures):
    /// verdict, timeline, hops, latency, Mermaid sequence diagram, evidence, configuration, fix.
    Report(crate::commands::report::ReportArgs),
    /// Check the serving path's configuration for known traps (mTLS, sidecars, policies,
    /// gateways, egress, Knative readiness). Exit 1 when a warning or error is found.
    Doctor(crate::commands::doctor::DoctorArgs),
    /// List the built-in access-log formats.
    Formats,
    /// Print one proxy's Envoy configuration as istioctl's tables (or JSON/YAML).
    ///
    /// Reads an Envoy admin `/config_dump` (or `?include_eds`, `/clusters?format=json`) file,
    /// or the config dump of a pod in `--bundle`. Filters as istioctl's (see docs/proxy-config.md).
    ProxyConfig(crate::commands::proxy_config::ProxyConfigArgs),
    /// Predict where a request (Host, path, headers, port) goes through the proxies' config.
    ///
    /// Simulates Envoy's matching step by step (listener, filter chain, route config, virtual
    /// host, route) on a config dump, and follows the request through the next proxies' dumps of
    /// a bundle. Exit code: 0 a route matched, 1 the request stops without a route.
    RouteCheck(crate::commands::route_check::RouteCheckArgs),
    /// Collect an evidence bundle from the cluster (kubeconfig or in-cluster): the serving
    /// path's pods, proxy logs, Envoy config dumps and mesh objects (see docs/live.md).
    Collect(crate::commands::collect::CollectArgs),
    /// Gather a bundle for `oc adm must-gather --image=<meshtrace image> -- gather -n <ns>`:
    /// writes `version`, `timestamp` and the bundle (`meshtrace/`) under /must-gather, honours
    /// MUST_GATHER_SINCE / MUST_GATHER_SINCE_TIME and masks environment values. Without -n,
    /// -A, --pod or -l it gathers every namespace. Started as `gather`, the binary runs this.
    Gather(crate::commands::gather::GatherArgs),
}

/// Parse arguments, run, and return the process exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse_from(crate::commands::gather::process_args()) {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            // Usage errors quote the arguments: sanitised like every other diagnostic.
            crate::report::usage_error(&e.render().to_string());
            return EXIT_ERROR;
        }
        Err(e) => {
            // --help, --version.
            let _ = e.print();
            return EXIT_OK;
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            // `meshtrace … | head` closing the pipe early is not an error: stop and exit 0
            // without a message, as ripgrep does (its main exits 0 on a BrokenPipe anywhere in
            // the error chain) — a shell pipeline's status is then head's, not ours.
            if crate::report::stdout_closed() || crate::report::is_broken_pipe(&e) {
                return EXIT_OK;
            }
            crate::report::error(&e);
            EXIT_ERROR
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Explain(a) => crate::commands::explain::run(a),
        Command::Trace(a) => crate::commands::trace::run(a),
        Command::Formats => crate::commands::formats::run(),
        Command::ProxyConfig(a) => crate::commands::proxy_config::run(a),
        Command::RouteCheck(a) => crate::commands::route_check::run(a),
        Command::Collect(a) => crate::commands::collect::run(a),
        Command::Gather(a) => crate::commands::gather::run(a),
        Command::Failures(a) => crate::commands::failures::run(a),
        Command::Report(a) => crate::commands::report::run(a),
        Command::Doctor(a) => crate::commands::doctor::run(a),
    }
}
