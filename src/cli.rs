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
    /// Colour the verdict, statuses and headings: auto (when standard output is a terminal and
    /// NO_COLOR is not set; CLICOLOR_FORCE forces it), always, or never.
    #[arg(long, global = true, value_enum, default_value_t, value_name = "WHEN")]
    color: crate::report::style::ColorChoice,
    /// No progress line on standard error while reading large evidence.
    #[arg(short, long, global = true)]
    quiet: bool,
}

/// The clap definition of the whole command line (for completions and the man pages).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Explain access-log lines: group them by request and say what each status means.
    ///
    /// Reads Envoy/Istio access logs in any built-in format (auto-detected per input), JSON,
    /// `kubectl logs --timestamps`, CRI and docker json-file lines, and lines pasted into a ticket
    /// (wrapped over several lines, the leading `[START_TIME] "` cut off).
    #[command(after_help = "Examples:
  meshtrace explain testdata/explain/seed003-rbac.log
  kubectl logs -n istio-system deploy/istio-ingressgateway | meshtrace explain -
  meshtrace explain gateway.log -o json")]
    Explain(crate::commands::explain::ExplainArgs),
    /// Rebuild one request's hop-by-hop path and name the hop and the cause of its status.
    ///
    /// START is an x-request-id (it may change at a gateway: the path is followed across the
    /// change), a client `ip:port`, or a client IP (its latest failed request). Evidence comes
    /// from `--bundle` and/or log files. Exit code: 0 the request succeeded, 1 it failed, 2 it
    /// was not found or the input was unusable.
    #[command(after_help = "Examples:
  meshtrace trace 4791d0d3-e742-4eac-8c56-4c87eb22f1a9 --bundle testdata/bundles/rhoai-400-app-error
  meshtrace trace 10.134.1.22:48216 --bundle testdata/bundles/odh-out-of-mesh-client -o wide
  meshtrace trace 211ebf7c-1bc2-4008-aa50-9730fa6300dc gateway.log predictor.log
  meshtrace trace 4791d0d3-e742-4eac-8c56-4c87eb22f1a9 -n aiproject --since 30m   # live")]
    Trace(crate::commands::trace::TraceArgs),
    /// List every failed request in the evidence, grouped by cause, origin, status and target.
    ///
    /// Exit code: 0 nothing failed, 1 failures were found, 2 bad arguments or unusable evidence.
    #[command(after_help = "Examples:
  meshtrace failures --bundle testdata/bundles/agora-city-ingress-404
  meshtrace failures --bundle testdata/bundles/kind-rbac-403 --status 4xx --since 15m
  meshtrace failures --bundle ticket-4411.tar.gz --cause rbac_denied -o json")]
    Failures(crate::commands::failures::FailuresArgs),
    /// Write a post-incident report of one request (or of every failure with --failures):
    /// verdict, timeline, hops, latency, Mermaid sequence diagram, evidence, configuration, fix.
    #[command(after_help = "Examples:
  meshtrace report 211ebf7c-1bc2-4008-aa50-9730fa6300dc --bundle testdata/bundles/kind-rbac-403 > report.md
  meshtrace report --failures --bundle testdata/bundles/agora-city-ingress-404 --redact
  meshtrace report 4791d0d3-e742-4eac-8c56-4c87eb22f1a9 --bundle testdata/bundles/rhoai-400-app-error -o json")]
    Report(crate::commands::report::ReportArgs),
    /// Check the serving path's configuration for known traps (mTLS, sidecars, policies,
    /// gateways, egress, Knative readiness). Exit 1 when a warning or error is found.
    #[command(after_help = "Examples:
  meshtrace doctor --bundle testdata/bundles/odh-out-of-mesh-client
  meshtrace doctor test -n aiproject --bundle testdata/bundles/rhoai-400-app-error
  meshtrace doctor --bundle ticket-4411.tar.gz -o json")]
    Doctor(crate::commands::doctor::DoctorArgs),
    /// List the built-in access-log formats.
    #[command(after_help = "Examples:
  meshtrace formats
  meshtrace explain --log-format istio-1.9 proxy.log   # a name from the list")]
    Formats,
    /// Print one proxy's Envoy configuration as istioctl's tables (or JSON/YAML).
    ///
    /// Reads an Envoy admin `/config_dump` (or `?include_eds`, `/clusters?format=json`) file,
    /// or the config dump of a pod in `--bundle`, with istioctl's filters (--fqdn, --port,
    /// --direction, --subset, --name, --address, --type, --status).
    #[command(after_help = "Examples:
  meshtrace proxy-config routes istio-ingressgateway --bundle testdata/bundles/rhoai-400-app-error
  meshtrace proxy-config clusters --fqdn test-predictor.aiproject.svc.cluster.local config_dump.json
  meshtrace proxy-config listeners --port 8443 istio-ingressgateway --bundle testdata/bundles/rhoai-400-app-error -o json
  kubectl exec POD -c istio-proxy -- pilot-agent request GET config_dump | meshtrace proxy-config all -")]
    ProxyConfig(crate::commands::proxy_config::ProxyConfigArgs),
    /// Predict where a request (Host, path, headers, port) goes through the proxies' config.
    ///
    /// Simulates Envoy's matching step by step (listener, filter chain, route config, virtual
    /// host, route) on a config dump, and follows the request through the next proxies' dumps of
    /// a bundle. Exit code: 0 a route matched, 1 the request stops without a route.
    #[command(after_help = "Examples:
  meshtrace route-check --host test-aiproject.apps.mycluster.example.com --port 8443 --bundle testdata/bundles/rhoai-400-app-error
  meshtrace route-check --host bert-model.default.example.com --path /v1/models/bert-emotion-model:predict --bundle testdata/bundles/kind-rbac-403
  meshtrace route-check --host reviews --port 9080 config_dump.json -o yaml")]
    RouteCheck(crate::commands::route_check::RouteCheckArgs),
    /// Describe a pod or an InferenceService and the mesh configuration that applies to it, as
    /// `istioctl x describe pod` does.
    ///
    /// Services and ports, the effective PeerAuthentication mTLS mode per port, the
    /// DestinationRule (and its TLS mode) clients use, the AuthorizationPolicies in force with
    /// their rules, the VirtualServices and Gateways that reach the pod, and the conflicts
    /// between them. For an InferenceService: its Knative Service, Route and Revisions, then each
    /// pod. Exit code: 0, or 1 when an error-level conflict was found.
    #[command(after_help = "Examples:
  meshtrace describe pod test-predictor-00001-deployment-bfc57c85b-ns2vj -n aiproject --bundle testdata/bundles/odh-out-of-mesh-client
  meshtrace describe isvc test -n aiproject --bundle testdata/bundles/odh-out-of-mesh-client
  meshtrace describe pod iris-main-0-classifier --bundle testdata/bundles/seldon-canary-mesh-gateway -o json
  meshtrace describe isvc bert-model -n default   # live")]
    Describe(crate::commands::describe::DescribeArgs),
    /// Collect an evidence bundle from the cluster (kubeconfig or in-cluster): the serving
    /// path's pods, proxy logs, Envoy config dumps and mesh objects, with read-only access (the
    /// RBAC it needs is docs/rbac.yaml in meshtrace's source repository).
    #[command(after_help = "Examples:
  meshtrace collect -n aiproject --since 1h -o ticket-4411
  meshtrace collect -n aiproject --pod test-predictor-00001-deployment-bfc57c85b-ns2vj --archive ticket-4411.tar.gz
  meshtrace collect -A --since 15m --no-config-dump -o all-namespaces")]
    Collect(crate::commands::collect::CollectArgs),
    /// Gather a bundle for
    /// `oc adm must-gather --image=<meshtrace-must-gather image> -- gather -n <ns>`: writes
    /// `version`, `timestamp` and the bundle (`meshtrace/`) under /must-gather, honours
    /// MUST_GATHER_SINCE / MUST_GATHER_SINCE_TIME and masks environment values. Without -n,
    /// -A, --pod or -l it gathers every namespace. Started as `gather`, the binary runs this.
    #[command(after_help = "Examples:
  oc adm must-gather --image=quay.io/example/meshtrace-must-gather:latest -- gather -n aiproject
  meshtrace gather -n aiproject --since 1h --dest-dir ./must-gather
  meshtrace gather --pod aiproject/test-predictor-00001-deployment-bfc57c85b-ns2vj --dest-dir ./mg")]
    Gather(crate::commands::gather::GatherArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(after_help = "Examples:
  source <(meshtrace completions bash)                      # bash, this shell
  meshtrace completions bash > ~/.local/share/bash-completion/completions/meshtrace
  meshtrace completions zsh > \"${fpath[1]}/_meshtrace\"
  meshtrace completions fish > ~/.config/fish/completions/meshtrace.fish")]
    Completions(crate::commands::completions::CompletionsArgs),
    /// Print the manual page (roff) of meshtrace or of one command, or write them all.
    #[command(after_help = "Examples:
  meshtrace man | man -l -
  meshtrace man trace | man -l -
  meshtrace man --out-dir /usr/local/share/man/man1")]
    Man(crate::commands::completions::ManArgs),
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
    crate::report::style::configure(cli.color);
    crate::live::progress::set_quiet(cli.quiet);
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
    // Offline reads that take more than a second show a progress line on a terminal's stderr
    // (live collection has its own); it ends with the command or at its first output.
    let _reading = match cli.command {
        Command::Explain(_)
        | Command::Trace(_)
        | Command::Failures(_)
        | Command::Report(_)
        | Command::Doctor(_)
        | Command::ProxyConfig(_)
        | Command::RouteCheck(_)
        | Command::Describe(_) => Some(crate::live::progress::reading()),
        _ => None,
    };
    match cli.command {
        Command::Explain(a) => crate::commands::explain::run(a),
        Command::Trace(a) => crate::commands::trace::run(a),
        Command::Formats => crate::commands::formats::run(),
        Command::ProxyConfig(a) => crate::commands::proxy_config::run(a),
        Command::RouteCheck(a) => crate::commands::route_check::run(a),
        Command::Describe(a) => crate::commands::describe::run(a),
        Command::Collect(a) => crate::commands::collect::run(a),
        Command::Gather(a) => crate::commands::gather::run(a),
        Command::Completions(a) => crate::commands::completions::run(a, command()),
        Command::Man(a) => crate::commands::completions::man(a, command()),
        Command::Failures(a) => crate::commands::failures::run(a),
        Command::Report(a) => crate::commands::report::run(a),
        Command::Doctor(a) => crate::commands::doctor::run(a),
    }
}
