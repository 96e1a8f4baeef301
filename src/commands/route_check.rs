//! `meshtrace route-check`: where would a request with this Host, path, method, headers and
//! port go, through one config dump or hop by hop through the dumps of a bundle?

use std::net::IpAddr;

use anyhow::{Result, bail};

use crate::commands::proxy_config::{DumpSource, load_bundle, load_file, pick};
use crate::commands::{EXIT_NOTHING, EXIT_OK};
pub use crate::report::route_check::RcOutput;
use crate::routesim::{Outcome, Proxy, Request, ServiceIp, predict};

#[derive(Debug, clap::Args)]
pub struct RouteCheckArgs {
    /// Host / :authority of the request (may carry `:port`).
    #[arg(long)]
    pub host: String,
    /// Path (with optional query).
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Request header `NAME=VALUE` (repeatable).
    #[arg(long = "header", value_name = "K=V")]
    pub headers: Vec<String>,
    /// Listener port the request arrives on (e.g. 8443 on an ingress gateway); without it the
    /// route configurations are searched for the Host.
    #[arg(long)]
    pub port: Option<u32>,
    /// TLS SNI (default: the Host without port).
    #[arg(long)]
    pub sni: Option<String>,
    #[command(flatten)]
    pub source: DumpSource,
    /// Follow at most this many proxies.
    #[arg(long, default_value_t = 8)]
    pub max_hops: usize,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    pub output: RcOutput,
}

/// Run `route-check`.
pub fn run(a: RouteCheckArgs) -> Result<i32> {
    let mut headers = Vec::new();
    for h in &a.headers {
        let Some((k, v)) = h.split_once('=').or_else(|| h.split_once(':')) else {
            bail!("--header {h:?}: expected NAME=VALUE");
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let req = Request {
        host: a.host.clone(),
        path: a.path.clone(),
        method: a.method.to_ascii_uppercase(),
        headers,
        port: a.port,
        sni: a.sni.clone(),
        tls: None,
    };
    let path = match (&a.source.bundle, &a.source.target) {
        (None, Some(file)) => {
            let d = load_file(file)?;
            let proxies = [Proxy {
                id: d.origin.clone(),
                role: String::new(),
                ips: Vec::new(),
                dump: &d.dump,
            }];
            predict(&proxies, &[], 0, &req, 1)
        }
        (None, None) => bail!("give a config dump file, or --bundle DIR [POD]"),
        (Some(b), target) => {
            let mut problems = Vec::new();
            let dumps = load_bundle(b, &mut problems)?;
            for p in &problems {
                crate::report::warn(format!("skipped: {p}"));
            }
            if dumps.is_empty() {
                bail!("the bundle has no config dump");
            }
            let bundle = crate::source::bundle::Bundle::open(b)?;
            let mut tp = Vec::new();
            let topo = crate::topology::Topology::from_objects(&bundle.objects, &mut tp);
            let proxies: Vec<Proxy<'_>> = dumps
                .iter()
                .map(|d| {
                    let (ns, pod) = d.pod.clone().unwrap_or_default();
                    let info = topo.pod(&ns, &pod);
                    Proxy {
                        id: format!("{ns}/{pod}"),
                        role: info.map(|p| p.role.name().to_string()).unwrap_or_default(),
                        ips: info.map(|p| p.ips.clone()).unwrap_or_default(),
                        dump: &d.dump,
                    }
                })
                .collect();
            let services: Vec<ServiceIp> = bundle
                .of_kind("Service")
                .filter_map(|o| {
                    let ip = o.spec().get("clusterIP")?.as_str()?;
                    ip.parse::<IpAddr>().ok()?;
                    Some(ServiceIp {
                        namespace: o.namespace.clone().unwrap_or_default(),
                        name: o.name.clone(),
                        ip: ip.to_string(),
                    })
                })
                .collect();
            let first = match target {
                Some(t) => {
                    let d = pick(&dumps, t)?;
                    dumps.iter().position(|x| std::ptr::eq(x, d)).unwrap_or(0)
                }
                None => proxies
                    .iter()
                    .position(|p| p.role == "ingress-gateway")
                    .or_else(|| (dumps.len() == 1).then_some(0))
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "name the pod to start from: the bundle has no ingress gateway dump"
                        )
                    })?,
            };
            predict(&proxies, &services, first, &req, a.max_hops)
        }
    };
    let routed = !path.hops.is_empty()
        && path.hops.iter().all(|h| {
            matches!(
                h.outcome,
                Outcome::Cluster { .. }
                    | Outcome::Tcp { .. }
                    | Outcome::DirectResponse { .. }
                    | Outcome::Redirect { .. }
            )
        });
    crate::report::route_check::write(&mut crate::report::stdout(), a.output, &req, &path, routed)?;
    Ok(if routed { EXIT_OK } else { EXIT_NOTHING })
}
