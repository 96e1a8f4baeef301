//! What an Istio gateway listener is bound to: the Gateway servers behind it (after port
//! translation, [`crate::gatewayport`]), whether it terminates TLS itself, and which
//! VirtualService routes apply on it. Two verdict readings:
//!
//! - a connection refused with `filter_chain_not_found` on a listener whose Gateway server
//!   terminates TLS itself (`tls.mode: SIMPLE` or `MUTUAL`, e.g. Open Data Hub's private
//!   endpoint `kserve-local-gateway` on 8445) is a client that did not speak TLS for a declared
//!   host — not a missing sidecar: such a listener takes TLS from any client, in the mesh or not;
//! - a `404 NR` on a gateway whose VirtualService declares the Host but whose `gateways` (or
//!   every route's `match.gateways`) leaves this gateway out is a route not bound to this
//!   gateway, not an undeclared host (Istio: a match's `gateways` overrides the VirtualService's).

use serde_json::Value;

use crate::causes::Cause;
use crate::gatewaytls::terminates_tls;
use crate::model::{Cited, Object, strings};
use crate::reading::{Reading, Site, host_only, pod_of};
use crate::topology::{GatewayInfo, GatewayServer, PodInfo, Topology};

/// The Services that reach `port` of `pod` (`ns/name port → targetPort`).
fn services_to(topo: &Topology, pod: &PodInfo, port: u16) -> Vec<(String, u16)> {
    topo.services
        .iter()
        .filter(|s| crate::topology::selects(&s.selector, &pod.labels))
        .flat_map(|s| {
            s.ports
                .iter()
                .filter(|p| p.target_port == Some(port))
                .map(move |p| (format!("{}/{}", s.namespace, s.name), p.port))
        })
        .collect()
}

/// The readings of this module for one trace.
pub fn reading(site: &Site<'_>) -> Option<Reading> {
    let origin = site.origin();
    let topo = &site.ev.topology;
    let pod = pod_of(topo, origin).filter(|p| !p.gateways.is_empty())?;
    let port = origin.record.downstream_local().and_then(|a| a.port())?;
    let servers = topo.gateway_servers(pod, port);
    if servers.is_empty() {
        return None;
    }
    match site.cause {
        Cause::TlsError
            if origin.record.details().map(|d| d.base) == Some("filter_chain_not_found") =>
        {
            Some(plaintext_to_tls(site, pod, port, &servers))
        }
        Cause::RouteNotFound => unbound_route(site, pod, port, &servers),
        _ => None,
    }
}

/// Plain HTTP (or TLS for another host) refused by a listener that terminates TLS itself.
fn plaintext_to_tls(
    site: &Site<'_>,
    pod: &PodInfo,
    port: u16,
    servers: &[(&GatewayInfo, &GatewayServer)],
) -> Reading {
    let topo = &site.ev.topology;
    let r = &site.origin().record;
    let tls: Vec<&(&GatewayInfo, &GatewayServer)> =
        servers.iter().filter(|(_, s)| terminates_tls(s)).collect();
    let hosts: Vec<String> = tls
        .iter()
        .flat_map(|(_, s)| s.hosts.iter().cloned())
        .filter(|h| h != "*")
        .collect();
    let via = services_to(topo, pod, port);
    let via_text = via
        .iter()
        .map(|(svc, p)| format!("Service {svc} port {p} → {port}"))
        .collect::<Vec<_>>()
        .join(", ");
    let client = r.downstream_remote().and_then(|a| a.ip());
    let caller = client
        .and_then(|ip| topo.pod_by_ip(ip))
        .map(|p| p.reference())
        .or_else(|| {
            r.get(meshtrace_parsers::Slot::DownstreamRemoteAddress)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "the caller".into());
    let described: Vec<String> = tls
        .iter()
        .map(|(g, s)| {
            format!(
                "Gateway {} server `{}` (port {}, {}, tls.mode {}{}, hosts [{}])",
                g.reference(),
                s.port_name,
                s.port,
                s.protocol,
                s.tls_mode.as_deref().unwrap_or("-"),
                s.credential
                    .as_deref()
                    .map(|c| format!(", certificate from Secret {}/{c}", g.namespace))
                    .unwrap_or_default(),
                s.hosts.join(", ")
            )
        })
        .collect();
    // A server name travels only in a TLS ClientHello: with one logged, the caller spoke TLS.
    let what = match r.sni() {
        Some(sni) => {
            format!("the caller's TLS handshake asked for `{sni}`, which none of them matches")
        }
        None => "the caller sent plain HTTP, or TLS without a server name (a call by IP address)"
            .to_string(),
    };
    let summary = format!(
        "The connection from {caller} to the gateway listener {} of {} was closed before any HTTP exchange (`NR filter_chain_not_found`). That listener terminates TLS itself — {} — so it only accepts a TLS handshake whose SNI names one of those hosts: {what}. This is not an mTLS or sidecar problem: the server presents its own certificate to any client, in the mesh or not{}.",
        r.get(meshtrace_parsers::Slot::DownstreamLocalAddress)
            .unwrap_or("-"),
        pod.reference(),
        described.join("; "),
        if via.is_empty() {
            String::new()
        } else {
            format!(" (reached through {via_text})")
        }
    );
    let url = hosts
        .first()
        .map(|h| format!("`https://{h}`"))
        .unwrap_or_else(|| "the host the server declares".into());
    let secret = tls
        .iter()
        .find_map(|(g, s)| {
            s.credential
                .as_deref()
                .map(|c| format!("Secret {}/{c}", g.namespace))
        })
        .unwrap_or_else(|| "the server's certificate".into());
    let fix = format!(
        "Call this endpoint over TLS with a Host/SNI the server declares: {url}{}, and trust the CA that issued {secret} (for a serving certificate issued by OpenShift's service CA, the `service-ca.crt` of ConfigMap `openshift-service-ca.crt`). Plain HTTP cannot be served on this listener; adding a sidecar to the caller does not change that.",
        via.first()
            .map(|(svc, p)| format!(" (Service {svc}, port {p})"))
            .unwrap_or_default()
    );
    let mut cited: Vec<Cited> = tls
        .iter()
        .map(|(g, s)| Cited {
            object: format!("Gateway/{}/{}", g.namespace, g.name),
            why: format!(
                "server `{}` port {} ({}) terminates TLS itself (tls.mode {}) for hosts [{}] on listener {port} of {}",
                s.port_name,
                s.port,
                s.protocol,
                s.tls_mode.as_deref().unwrap_or("-"),
                s.hosts.join(", "),
                pod.reference()
            ),
        })
        .collect();
    for (svc, p) in &via {
        cited.push(Cited {
            object: format!("Service/{svc}"),
            why: format!("port {p} → targetPort {port} on the gateway pods"),
        });
    }
    if let Some(p) = client.and_then(|ip| topo.pod_by_ip(ip)) {
        cited.push(Cited {
            object: format!("Pod/{}/{}", p.namespace, p.name),
            why: format!(
                "the caller ({}); a TLS-terminating gateway server does not need it to be in the mesh",
                if p.has_sidecar {
                    "has a sidecar"
                } else {
                    "no sidecar"
                }
            ),
        });
    }
    Reading {
        summary: Some(summary),
        fix: Some(fix),
        cited,
        ..Reading::default()
    }
}

/// Does a VirtualService's host (`name`, `name.ns`, FQDN, `*.suffix`) cover `host`?
fn vs_host_covers(vs_host: &str, vs_ns: &str, host: &str) -> bool {
    if let Some(suffix) = vs_host.strip_prefix('*') {
        return host.ends_with(suffix);
    }
    vs_host == host
        || format!("{vs_host}.{vs_ns}.svc.cluster.local") == host
        || format!("{vs_host}.svc.cluster.local") == host
        || format!("{vs_host}.cluster.local") == host
}

/// Does a gateway reference of a VirtualService (`ns/name`, or `name` in the VirtualService's
/// namespace) name `g`?
fn names_gateway(reference: &str, vs_ns: &str, g: &GatewayInfo) -> bool {
    match reference.split_once('/') {
        Some((ns, name)) => ns == g.namespace && name == g.name,
        None => reference == g.name && vs_ns == g.namespace,
    }
}

/// Do any of a VirtualService's HTTP routes apply on gateway `g`? A route applies when one of
/// its matches applies (a match's `gateways`, when set, replaces the VirtualService's), or when
/// it has no match and the VirtualService is bound to `g`.
fn routes_on(vs: &Object, g: &GatewayInfo) -> (bool, Vec<String>) {
    let ns = vs.namespace.as_deref().unwrap_or("");
    let top = vs.strings_at("/spec/gateways");
    let bound = top.iter().any(|r| names_gateway(r, ns, g));
    let mut named = Vec::new();
    let http = vs
        .spec()
        .get("http")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for route in &http {
        let matches = route
            .get("match")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if matches.is_empty() && bound {
            return (true, named);
        }
        for m in &matches {
            let gws = strings(m.get("gateways"));
            if gws.is_empty() {
                if bound {
                    return (true, named);
                }
            } else if gws.iter().any(|r| names_gateway(r, ns, g)) {
                return (true, named);
            } else {
                named.extend(gws);
            }
        }
    }
    named.sort();
    named.dedup();
    (false, named)
}

/// A 404 `NR` on a gateway whose VirtualService declares the Host but does not route on it.
fn unbound_route(
    site: &Site<'_>,
    pod: &PodInfo,
    port: u16,
    servers: &[(&GatewayInfo, &GatewayServer)],
) -> Option<Reading> {
    let r = &site.origin().record;
    let host = host_only(r.authority()?);
    // One entry per Gateway (a Gateway may have several servers on this listener).
    let mut servers: Vec<(&GatewayInfo, &GatewayServer)> = servers.to_vec();
    servers.dedup_by(|a, b| a.0.reference() == b.0.reference());
    let mut cited = Vec::new();
    let mut why = Vec::new();
    for vs in site
        .ev
        .objects
        .iter()
        .filter(|o| o.kind == "VirtualService")
    {
        let ns = vs.namespace.as_deref().unwrap_or("");
        let hosts = vs.strings_at("/spec/hosts");
        if !hosts.iter().any(|h| vs_host_covers(h, ns, host)) {
            continue;
        }
        for (g, _) in &servers {
            let (applies, others) = routes_on(vs, g);
            if applies {
                return None;
            }
            let top = vs.strings_at("/spec/gateways");
            let text = if top.iter().any(|x| names_gateway(x, ns, g)) {
                format!(
                    "declares host `{host}` and lists Gateway {} in `gateways`, but every HTTP route's `match.gateways` names only [{}]: no route of it applies on this gateway",
                    g.reference(),
                    others.join(", ")
                )
            } else {
                format!(
                    "declares host `{host}` but is bound to gateways [{}], not to Gateway {}",
                    if top.is_empty() {
                        "mesh (default)".to_string()
                    } else {
                        top.join(", ")
                    },
                    g.reference()
                )
            };
            why.push(format!(
                "VirtualService {} {text}",
                vs.reference().trim_start_matches("VirtualService/")
            ));
            cited.push(Cited {
                object: vs.reference(),
                why: text,
            });
        }
    }
    if cited.is_empty() {
        return None;
    }
    let gw: Vec<String> = servers.iter().map(|(g, _)| g.reference()).collect();
    for (g, _) in &servers {
        let hosts: Vec<String> = g.servers.iter().flat_map(|s| s.hosts.clone()).collect();
        cited.push(Cited {
            object: format!("Gateway/{}/{}", g.namespace, g.name),
            why: format!(
                "serves listener {port} of {} (hosts [{}]); the VirtualService declaring `{host}` routes on other gateways only",
                pod.reference(),
                hosts.join(", ")
            ),
        });
    }
    let first_vs = cited[0].object.clone();
    Some(Reading {
        summary: Some(format!(
            "404 was generated by the gateway {} on listener {port} (`NR route_not_found`): the host is declared, but the route is not bound to this gateway — {}. Istio builds a gateway's routes only from VirtualServices bound to it, and a match's `gateways` replaces the VirtualService's own list.",
            pod.reference(),
            why.join("; ")
        )),
        fix: Some(format!(
            "Bind the route to Gateway {}: add it to `spec.gateways` of {first_vs} and to the `match.gateways` of the route for `{host}` (for KServe, the `localGateway` of ConfigMap `inferenceservice-config` must name this Gateway so the generated VirtualService carries it) — or call the gateway the route is bound to.",
            gw.join(", ")
        )),
        cited,
        ..Reading::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vs_hosts() {
        assert!(vs_host_covers(
            "test.aiproject.svc.cluster.local",
            "aiproject",
            "test.aiproject.svc.cluster.local"
        ));
        assert!(vs_host_covers(
            "test",
            "aiproject",
            "test.aiproject.svc.cluster.local"
        ));
        assert!(vs_host_covers("*.example.com", "x", "a.example.com"));
        assert!(!vs_host_covers(
            "test",
            "other",
            "test.aiproject.svc.cluster.local"
        ));
    }
}
