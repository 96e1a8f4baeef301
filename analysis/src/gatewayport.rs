//! Istio's gateway port translation: which Envoy listener port a Gateway server's
//! `port.number` becomes on the gateway pod. Pure; knows nothing of the topology's types.
//!
//! Istio (`resolvePorts` in pilot's gateway model, legacy label selection): for each Service
//! that selects the gateway pod, a Service port whose `port` equals the server's number turns
//! the server into a listener on that port's `targetPort` — the first such Service wins. A
//! Service labelled `experimental.istio.io/disable-gateway-port-translation` opts out: its
//! ports are never translated (Knative's `knative-local-gateway` and Open Data Hub's
//! `kserve-local-gateway` Services carry it, so their Gateways name the pod port directly,
//! 8081 and 8445). With no translating Service port, the listener is on the number itself.

/// The label by which a Service opts out of gateway port translation.
pub const DISABLE_TRANSLATION_LABEL: &str =
    "experimental.istio.io/disable-gateway-port-translation";

/// One port of a Service that selects the gateway pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetPort {
    /// The Service port.
    pub port: u16,
    /// Its numeric `targetPort` (`None` when named: not resolvable here).
    pub target: Option<u16>,
    /// The Service carries [`DISABLE_TRANSLATION_LABEL`].
    pub opted_out: bool,
}

/// The listener port a Gateway server on `server_port` gets on a pod selected by Services with
/// these ports (`targets`, in the order the Services were read).
pub fn listener_port(server_port: u16, targets: &[TargetPort]) -> u16 {
    targets
        .iter()
        .filter(|t| !t.opted_out && t.port == server_port)
        .find_map(|t| t.target)
        .unwrap_or(server_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(port: u16, target: u16, opted_out: bool) -> TargetPort {
        TargetPort {
            port,
            target: Some(target),
            opted_out,
        }
    }

    #[test]
    fn translation_table() {
        // OpenShift AI's gateway pod: istio-ingressgateway 80→8080, 443→8443; the
        // knative-local-gateway (80→8081) and kserve-local-gateway (443→8445) Services opt out.
        let odh = [
            t(80, 8080, false),
            t(443, 8443, false),
            t(80, 8081, true),
            t(443, 8445, true),
        ];
        let cases = [
            (443, 8443),  // knative-ingress-gateway: Service port 443 → pod 8443
            (8081, 8081), // knative-local-gateway: the pod port itself
            (8445, 8445), // kserve-local-gateway: the pod port itself, never 8443
            (80, 8080),
            (15021, 15021), // no Service port: bound as written
        ];
        for (server, listener) in cases {
            assert_eq!(
                listener_port(server, &odh),
                listener,
                "server port {server}"
            );
        }
        // Without the opt-out label the same Service would translate 443 to 8445 only if read
        // first: the first translating Service wins, as in Istio.
        let first = [t(443, 8445, false), t(443, 8443, false)];
        assert_eq!(listener_port(443, &first), 8445);
        // A named targetPort cannot be resolved here: the next Service decides.
        let named = [
            TargetPort {
                port: 80,
                target: None,
                opted_out: false,
            },
            t(80, 8080, false),
        ];
        assert_eq!(listener_port(80, &named), 8080);
    }
}
