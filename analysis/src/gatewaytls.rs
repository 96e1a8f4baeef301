//! Gateway listeners that terminate TLS themselves: a Gateway server with `tls.mode` SIMPLE,
//! MUTUAL or OPTIONAL_MUTUAL, on the pod port Istio's port translation gives it
//! ([`crate::gatewayport`]). Plaintext refused on such a listener is a client that did not speak
//! TLS, not a missing sidecar. Pure.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::topology::{GatewayServer, Topology};

/// Does a Gateway server terminate TLS itself for clients outside the mesh?
pub fn terminates_tls(s: &GatewayServer) -> bool {
    matches!(
        s.tls_mode.as_deref(),
        Some("SIMPLE" | "MUTUAL" | "OPTIONAL_MUTUAL")
    )
}

/// Gateway pod listeners (`ip:port`) with a server that terminates TLS itself: plaintext
/// refused there (`filter_chain_not_found`) is not an mTLS problem.
pub fn tls_listeners(topo: &Topology) -> BTreeSet<SocketAddr> {
    let mut out = BTreeSet::new();
    for pod in topo.pods.iter().filter(|p| !p.gateways.is_empty()) {
        let targets = topo.gateway_targets(pod);
        for g in topo
            .gateways
            .iter()
            .filter(|g| crate::topology::selects(&g.selector, &pod.labels))
        {
            for s in g.servers.iter().filter(|s| terminates_tls(s)) {
                let port = crate::gatewayport::listener_port(s.port, &targets);
                out.extend(pod.ips.iter().map(|ip| SocketAddr::new(*ip, port)));
            }
        }
    }
    out
}
