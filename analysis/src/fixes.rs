//! Fixes as Kubernetes objects ready for `kubectl apply -f -`, built where the evidence names
//! the object behind a verdict. Pure: a small typed tree ([`Node`]) per object, rendered to
//! YAML by a serializer (every value is quoted as its content needs, so no value can add a key).
//!
//! The cases, each from Istio's documented behaviour:
//! - a caller's sidecar sent Istio mTLS to a service whose pods have no sidecar (a default
//!   DestinationRule with `ISTIO_MUTUAL` for `*.cluster.local`): a DestinationRule for exactly
//!   that host with `tls.mode: DISABLE` — Istio looks DestinationRules up in the caller's
//!   namespace, then the service's, then the root namespace, and the most specific host wins
//!   there. PERMISSIVE would not help: the server does not speak mTLS at all;
//! - a caller outside the mesh speaking plaintext to a gateway listener that accepts only Istio
//!   mTLS: an HTTP Gateway server on the same gateway pods, an ExternalName Service pointing at
//!   the gateway's Service and a VirtualService that sets Host to the predictor (Knative
//!   net-istio's plain-HTTP gateway pattern, as OpenShift AI documents it);
//! - RBAC denied because no ALLOW rule matched (`rbac_access_denied_matched_policy[none]`): the
//!   ALLOW policy selecting the pod with one more rule that admits exactly this request (its
//!   source, method, path and Host as the log shows them), checked with [`crate::authz`].
//!
//! Every name and label taken from evidence is checked against Kubernetes' rules first; when one
//! does not pass, no YAML is offered (the text fix still is).

use std::collections::BTreeMap;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use meshtrace_parsers::cluster::{ClusterName, Direction};
use meshtrace_parsers::details::RbacPolicy;
use meshtrace_parsers::record::RawRecord;

use crate::causes::Cause;
use crate::model::Object;
use crate::topology::{GatewayInfo, PodInfo, Topology, selects};

/// Deepest nesting copied from an existing object into a fix.
const MAX_DEPTH: usize = 24;

/// Most list items or map entries copied from one level of an existing object.
const MAX_ITEMS: usize = 512;

/// Longest request path or Host put into a fix.
const MAX_VALUE: usize = 2048;

/// A value of a fix object: strings, integers, lists and maps with ordered keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A string (always written as a string, quoted when it could read as anything else).
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A list.
    List(Vec<Node>),
    /// A map, keys in writing order.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// A string node.
    pub fn str(s: impl Into<String>) -> Node {
        Node::Str(s.into())
    }

    /// A map from `(key, value)` pairs.
    pub fn map<const N: usize>(entries: [(&str, Node); N]) -> Node {
        Node::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A list of strings.
    pub fn strs<S: AsRef<str>>(items: &[S]) -> Node {
        Node::List(items.iter().map(|s| Node::str(s.as_ref())).collect())
    }

    /// The value under `key` of a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A copy of a JSON value from an existing object (bounded: 24 levels, 512 items a level);
    /// `None` when it is deeper or holds a number that is not an integer.
    pub fn from_json(v: &Value) -> Option<Node> {
        fn go(v: &Value, depth: usize) -> Option<Node> {
            if depth > MAX_DEPTH {
                return None;
            }
            Some(match v {
                Value::Null => Node::Map(Vec::new()),
                Value::Bool(b) => Node::Bool(*b),
                Value::Number(n) => Node::Int(n.as_i64()?),
                Value::String(s) => Node::Str(s.clone()),
                Value::Array(a) if a.len() <= MAX_ITEMS => Node::List(
                    a.iter()
                        .map(|x| go(x, depth + 1))
                        .collect::<Option<Vec<_>>>()?,
                ),
                Value::Object(m) if m.len() <= MAX_ITEMS => Node::Map(
                    m.iter()
                        .map(|(k, x)| go(x, depth + 1).map(|n| (k.clone(), n)))
                        .collect::<Option<Vec<_>>>()?,
                ),
                _ => return None,
            })
        }
        go(v, 0)
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Str(v) => s.serialize_str(v),
            Node::Int(i) => s.serialize_i64(*i),
            Node::Bool(b) => s.serialize_bool(*b),
            Node::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Node::Map(entries) => {
                let mut m = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

/// One Kubernetes object of a fix: `apiVersion`, `kind`, `metadata` (name, namespace) and
/// `spec`, serialised in that order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixObject {
    /// `apiVersion`.
    pub api_version: &'static str,
    /// `kind`.
    pub kind: &'static str,
    /// `metadata.name` (a valid DNS subdomain).
    pub name: String,
    /// `metadata.namespace` (a valid DNS label).
    pub namespace: String,
    /// `spec`.
    pub spec: Node,
}

impl FixObject {
    /// `kind/namespace/name`.
    pub fn reference(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

impl Serialize for FixObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("apiVersion", self.api_version)?;
        m.serialize_entry("kind", self.kind)?;
        m.serialize_entry(
            "metadata",
            &Node::map([
                ("name", Node::str(&self.name)),
                ("namespace", Node::str(&self.namespace)),
            ]),
        )?;
        m.serialize_entry("spec", &self.spec)?;
        m.end()
    }
}

/// A fix ready to apply: what it does, the objects, and the same objects as one YAML stream
/// (`---` between documents) for `kubectl apply -f -`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Fix {
    /// What applying it changes, in one or two sentences.
    pub summary: String,
    /// The objects to create or update (a full object: `kubectl apply` sets every field given).
    pub apply: Vec<FixObject>,
    /// `apply` as YAML documents.
    pub yaml: String,
}

impl Fix {
    /// A fix of `objects`; `None` when there is none or one cannot be written as YAML.
    pub fn new(summary: String, objects: Vec<FixObject>) -> Option<Fix> {
        if objects.is_empty() {
            return None;
        }
        let yaml = to_yaml(&objects)?;
        Some(Fix {
            summary,
            apply: objects,
            yaml,
        })
    }
}

/// The objects as a YAML stream, `---` between documents.
pub fn to_yaml(objects: &[FixObject]) -> Option<String> {
    let docs: Vec<String> = objects
        .iter()
        .map(|o| serde_yaml_ng::to_string(o).ok())
        .collect::<Option<_>>()?;
    Some(docs.join("---\n"))
}

// ---------------------------------------------------------------------------------------------
// Kubernetes' naming rules (k8s.io/apimachinery validation: DNS-1123 label and subdomain,
// qualified names for label keys, label values).

fn dns_chars(s: &str, extra: &[u8]) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(c))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// A DNS-1123 label (namespaces, Service names): 1–63 of `a-z0-9-`, alphanumeric at both ends.
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && dns_chars(s, b"-")
}

/// A DNS-1123 subdomain (most object names): up to 253 of `a-z0-9-.`, each dot-separated part a
/// label.
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A label value: empty, or up to 63 of `A-Za-z0-9-_.`, alphanumeric at both ends.
pub fn is_label_value(s: &str) -> bool {
    let b = s.as_bytes();
    s.is_empty()
        || (b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric())
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name like a label value.
pub fn is_label_key(s: &str) -> bool {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    prefix.is_none_or(is_dns_subdomain) && !name.is_empty() && is_label_value(name)
}

/// A host name as Istio takes it in `hosts` (a DNS name, optionally `*.`-prefixed, an optional
/// `:port` for Hosts read from a request).
fn is_host(s: &str) -> bool {
    let bare = s.strip_prefix("*.").unwrap_or(s);
    let bare = match bare.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()) => h,
        _ => bare,
    };
    is_dns_subdomain(&bare.to_ascii_lowercase())
}

/// An Istio principal (`cluster.local/ns/x/sa/y`): a trust domain and path of name characters.
fn is_principal(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 512
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_./:".contains(&c))
}

/// An HTTP method token.
fn is_method(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|c| c.is_ascii_uppercase())
}

/// A request path Istio can match exactly: printable, no spaces, bounded. (The serializer quotes
/// whatever it holds; this keeps garbage out of a rule.)
fn is_request_path(s: &str) -> bool {
    s.starts_with('/') && s.len() <= MAX_VALUE && s.bytes().all(|c| c.is_ascii_graphic())
}

/// The label map of a selector, when every key and value is a valid label.
fn label_map(m: &BTreeMap<String, String>) -> Option<Node> {
    m.iter()
        .all(|(k, v)| is_label_key(k) && is_label_value(v))
        .then(|| Node::Map(m.iter().map(|(k, v)| (k.clone(), Node::str(v))).collect()))
}

/// `name.namespace` of an in-cluster FQDN (`name.namespace.svc.<cluster domain>`), both valid
/// DNS labels.
fn service_of_host(host: &str) -> Option<(&str, &str)> {
    let mut parts = host.splitn(4, '.');
    let (name, ns, svc) = (parts.next()?, parts.next()?, parts.next()?);
    let domain = parts.next()?;
    (svc == "svc" && is_dns_subdomain(domain) && is_dns_label(name) && is_dns_label(ns))
        .then_some((name, ns))
}

/// `base` + `suffix` as an object name: `base` cut so the whole stays a DNS label.
fn derived_name(base: &str, suffix: &str) -> Option<String> {
    let keep = 63usize.checked_sub(suffix.len())?;
    let mut b = &base[..base.len().min(keep)];
    b = b.trim_end_matches(['-', '.']);
    let name = format!("{b}{suffix}");
    is_dns_label(&name).then_some(name)
}

// ---------------------------------------------------------------------------------------------
// DestinationRule `tls.mode: DISABLE` for a service whose pods have no sidecar.

/// A DestinationRule `name` in `namespace` for exactly `host` with `tls.mode: DISABLE`.
/// `name` defaults to `<service>-disable-mtls`, `namespace` to the service's.
pub fn disable_tls(host: &str, name: Option<&str>, namespace: Option<&str>) -> Option<Fix> {
    let (svc, svc_ns) = service_of_host(host)?;
    let namespace = namespace.unwrap_or(svc_ns);
    let name = match name {
        Some(n) => n.to_string(),
        None => derived_name(svc, "-disable-mtls")?,
    };
    if !is_dns_subdomain(&name) || !is_dns_label(namespace) {
        return None;
    }
    let dr = FixObject {
        api_version: "networking.istio.io/v1",
        kind: "DestinationRule",
        name,
        namespace: namespace.to_string(),
        spec: Node::map([
            ("host", Node::str(host)),
            (
                "trafficPolicy",
                Node::map([("tls", Node::map([("mode", Node::str("DISABLE"))]))]),
            ),
        ]),
    };
    let summary = format!(
        "{} sends plaintext to {host}, whose pods have no sidecar: a DestinationRule for exactly this host is more specific than a `*.cluster.local` ISTIO_MUTUAL default, and Istio looks in the caller's namespace, then the service's, then the root namespace. Do not set PeerAuthentication PERMISSIVE for this: it changes what a server accepts, and this server does not speak mTLS at all.",
        dr.reference()
    );
    Fix::new(summary, vec![dr])
}

/// The non-mesh-destination fix from a record alone: the origin hop's sidecar failed to reach
/// an in-cluster service whose pod has no sidecar (`cause` `missing_sidecar` on an outbound
/// hop).
pub fn from_record(r: &RawRecord<'_>, cause: Cause) -> Option<Fix> {
    if cause != Cause::MissingSidecar {
        return None;
    }
    match r.upstream_cluster() {
        Some(ClusterName::Istio {
            direction: Direction::Outbound,
            host,
            ..
        }) if r.upstream_host().is_some() => disable_tls(host, None, None),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// What the trace knows.

/// What a trace knows about the hop that produced the status.
pub struct Site<'a, 'r> {
    /// The bundle's objects.
    pub objects: &'a [Object],
    /// Who is who.
    pub topo: &'a Topology,
    /// The origin hop's record.
    pub origin: &'a RawRecord<'r>,
    /// The pod that logged it.
    pub origin_pod: Option<&'a PodInfo>,
    /// The pod at the origin hop's downstream address (the caller), when known.
    pub caller_pod: Option<&'a PodInfo>,
    /// The verdict's cause.
    pub cause: Cause,
    /// The fix the record alone gave ([`from_record`]).
    pub from_record: Option<&'a Fix>,
}

/// The fix for a trace's verdict, when the objects behind it are known.
pub fn for_trace(site: &Site<'_, '_>) -> Option<Fix> {
    match site.cause {
        Cause::RbacDenied => rbac_fix(site),
        Cause::MissingSidecar | Cause::PlaintextToMtls if gateway_listener(site) => {
            plaintext_entry_point(site)
        }
        Cause::MissingSidecar => non_mesh_destination(site),
        _ => None,
    }
}

/// The origin hop is a gateway pod's listener.
fn gateway_listener(site: &Site<'_, '_>) -> bool {
    site.origin_pod
        .is_some_and(|p| p.role == crate::topology::PodRole::IngressGateway)
        && !site
            .origin
            .upstream_cluster()
            .is_some_and(|c| c.is_inbound())
        && site.origin.upstream_host().is_none()
}

/// [`from_record`]'s DestinationRule, placed where Istio finds it: the existing DestinationRule
/// for exactly this host is updated; a wildcard ISTIO_MUTUAL rule in the caller's namespace is
/// found before one in the service's, so the new rule goes there.
fn non_mesh_destination(site: &Site<'_, '_>) -> Option<Fix> {
    let record_fix = site.from_record?;
    let Some(ClusterName::Istio { host, .. }) = site.origin.upstream_cluster() else {
        return Some(record_fix.clone());
    };
    let (_, svc_ns) = service_of_host(host)?;
    let drs = || site.objects.iter().filter(|o| o.kind == "DestinationRule");
    if let Some(dr) = drs().find(|d| {
        crate::objects::dr_host_matches(
            d.str_at("/spec/host").unwrap_or(""),
            d.namespace.as_deref().unwrap_or(""),
            host,
        ) && !d.str_at("/spec/host").unwrap_or("").starts_with('*')
    }) {
        let ns = dr.namespace.as_deref()?;
        let mut fix = disable_tls(host, Some(&dr.name), Some(ns))?;
        fix.summary = format!(
            "{} already covers {host}: set its `trafficPolicy.tls.mode` to DISABLE (the pods behind it have no sidecar; its other fields stay as they are, but check `portLevelSettings` do not set a TLS mode of their own). Do not set PeerAuthentication PERMISSIVE for this: the server does not speak mTLS at all.",
            dr.reference()
        );
        return Some(fix);
    }
    // The origin hop is the caller's own sidecar (its outbound connection failed).
    let caller_ns = site.origin_pod.map(|p| p.namespace.as_str());
    let wildcard_in_caller_ns = caller_ns.filter(|ns| *ns != svc_ns).is_some_and(|ns| {
        drs().any(|d| {
            d.namespace.as_deref() == Some(ns)
                && d.str_at("/spec/trafficPolicy/tls/mode") == Some("ISTIO_MUTUAL")
                && crate::objects::dr_host_matches(d.str_at("/spec/host").unwrap_or(""), ns, host)
        })
    });
    if wildcard_in_caller_ns {
        return disable_tls(host, None, caller_ns);
    }
    Some(record_fix.clone())
}

// ---------------------------------------------------------------------------------------------
// A plaintext entry point for callers outside the mesh.

/// The HTTP Gateway + ExternalName Service + VirtualService pattern for a caller speaking
/// plaintext to an mTLS-only gateway listener, filled from the bundle: the gateway pods'
/// selector, the Service in front of them with a plain HTTP port, and the model's host.
fn plaintext_entry_point(site: &Site<'_, '_>) -> Option<Fix> {
    let pod = site.origin_pod?;
    let port = site.origin.downstream_local().and_then(|a| a.port())?;
    let topo = site.topo;
    let (mtls_gw, _) = topo
        .gateway_servers(pod, port)
        .into_iter()
        .find(|(_, s)| s.tls_mode.as_deref() == Some("ISTIO_MUTUAL"))?;
    // The gateway pods' Service and a plain HTTP port of it (not a port a TLS server uses).
    let tls_ports: Vec<u16> = topo
        .gateways
        .iter()
        .filter(|g| selects(&g.selector, &pod.labels))
        .flat_map(|g| &g.servers)
        .filter(|s| s.tls_mode.is_some())
        .map(|s| s.port)
        .collect();
    let (svc, svc_port, container_port) = topo
        .services
        .iter()
        .filter(|s| selects(&s.selector, &pod.labels))
        .flat_map(|s| s.ports.iter().map(move |p| (s, p)))
        .filter(|(_, p)| p.name.as_deref().is_some_and(|n| n.starts_with("http")))
        .map(|(s, p)| (s, p.port, p.target_port.unwrap_or(p.port)))
        .find(|(_, sp, cp)| !tls_ports.contains(sp) && !tls_ports.contains(cp))?;
    let (model_host, model_port) = model_behind(site, mtls_gw, port)?;
    let (model_svc, model_ns) = service_of_host(&model_host)?;
    let base = model_svc.strip_suffix("-predictor").unwrap_or(model_svc);
    // An HTTP server already on that port of these pods is reused.
    let existing = topo.gateways.iter().find(|g| {
        selects(&g.selector, &pod.labels)
            && g.servers.iter().any(|s| {
                s.tls_mode.is_none()
                    && s.protocol.eq_ignore_ascii_case("HTTP")
                    && (s.port == container_port || s.port == svc_port)
                    && s.hosts.iter().any(|h| {
                        h == "*"
                            || format!("{base}-http.{model_ns}.svc.cluster.local")
                                .ends_with(h.trim_start_matches('*'))
                    })
            })
    });
    let mut objects = Vec::new();
    let (gw_ns, gw_name) = match existing {
        Some(g) => (g.namespace.clone(), g.name.clone()),
        None => {
            let name = match mtls_gw.name.strip_suffix("-local-gateway") {
                Some(p) => derived_name(p, "-http-gateway")?,
                None => derived_name(&mtls_gw.name, "-http")?,
            };
            objects.push(FixObject {
                api_version: "networking.istio.io/v1",
                kind: "Gateway",
                name: name.clone(),
                namespace: model_ns.to_string(),
                spec: Node::map([
                    ("selector", label_map(&mtls_gw.selector)?),
                    (
                        "servers",
                        Node::List(vec![Node::map([
                            (
                                "hosts",
                                Node::strs(&[format!("*.{model_ns}.svc.cluster.local")]),
                            ),
                            (
                                "port",
                                Node::map([
                                    ("name", Node::str("http")),
                                    ("number", Node::Int(container_port.into())),
                                    ("protocol", Node::str("HTTP")),
                                ]),
                            ),
                        ])]),
                    ),
                ]),
            });
            (model_ns.to_string(), name)
        }
    };
    let entry = derived_name(base, "-http")?;
    let entry_host = format!("{entry}.{model_ns}.svc.cluster.local");
    objects.push(FixObject {
        api_version: "v1",
        kind: "Service",
        name: entry.clone(),
        namespace: model_ns.to_string(),
        spec: Node::map([
            ("type", Node::str("ExternalName")),
            ("externalName", Node::str(svc.fqdn())),
        ]),
    });
    objects.push(FixObject {
        api_version: "networking.istio.io/v1",
        kind: "VirtualService",
        name: derived_name(&entry, "-gateway")?,
        namespace: model_ns.to_string(),
        spec: Node::map([
            ("gateways", Node::strs(&[format!("{gw_ns}/{gw_name}")])),
            ("hosts", Node::strs(std::slice::from_ref(&entry_host))),
            (
                "http",
                Node::List(vec![Node::map([
                    (
                        "headers",
                        Node::map([(
                            "request",
                            Node::map([("set", Node::map([("Host", Node::str(&model_host))]))]),
                        )]),
                    ),
                    (
                        "route",
                        Node::List(vec![Node::map([(
                            "destination",
                            Node::map([
                                ("host", Node::str(&model_host)),
                                (
                                    "port",
                                    Node::map([("number", Node::Int(model_port.into()))]),
                                ),
                            ]),
                        )])]),
                    ),
                ])]),
            ),
        ]),
    });
    if !is_dns_label(&gw_ns) || !is_dns_subdomain(&gw_name) {
        return None;
    }
    let summary = format!(
        "A plaintext entry point for callers outside the mesh: {}the ExternalName Service {model_ns}/{entry} pointing at {} (port {svc_port} → {container_port}) and a VirtualService that sends its Host to {model_host}. The caller then uses `http://{entry_host}{}`. Anyone who can reach the gateway can use it without mTLS: add an AuthorizationPolicy on the gateway if the model must not be open.",
        match existing {
            Some(g) => format!("the existing HTTP server of Gateway {}, ", g.reference()),
            None => format!(
                "an HTTP Gateway server on port {container_port} of the gateway pods ({model_ns}/{gw_name}, hosts `*.{model_ns}.svc.cluster.local`), "
            ),
        },
        svc.fqdn(),
        if svc_port == 80 {
            String::new()
        } else {
            format!(":{svc_port}")
        }
    );
    Fix::new(summary, objects)
}

/// The in-cluster host and port the plaintext caller wanted: the request's own Host when it is
/// a Service FQDN, else the one Knative route (or KServe) ExternalName Service that points at
/// the Service of the refused gateway listener.
fn model_behind(site: &Site<'_, '_>, gw: &GatewayInfo, port: u16) -> Option<(String, u16)> {
    if let Some(a) = site.origin.authority() {
        let host = a.rsplit_once(':').map(|(h, _)| h).unwrap_or(a);
        if service_of_host(host).is_some() {
            return Some((host.to_string(), 80));
        }
    }
    let pod = site.origin_pod?;
    // The Services of the gateway pods that reach this listener.
    let fronts: Vec<String> = site
        .topo
        .services
        .iter()
        .filter(|s| selects(&s.selector, &pod.labels))
        .filter(|s| {
            s.ports
                .iter()
                .any(|p| p.target_port.unwrap_or(p.port) == port)
        })
        .map(|s| s.fqdn())
        .collect();
    let _ = gw;
    let candidates: Vec<&Object> = site
        .objects
        .iter()
        .filter(|o| {
            o.kind == "Service"
                && o.str_at("/spec/type") == Some("ExternalName")
                && o.str_at("/spec/externalName")
                    .is_some_and(|e| fronts.iter().any(|f| f == e.trim_end_matches('.')))
                && o.label("serving.knative.dev/route").is_some()
        })
        .collect();
    let [svc] = candidates.as_slice() else {
        return None;
    };
    let ns = svc.namespace.as_deref()?;
    let port = svc
        .value
        .pointer("/spec/ports/0/port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(80);
    Some((format!("{}.{ns}.svc.cluster.local", svc.name), port))
}

// ---------------------------------------------------------------------------------------------
// RBAC: the ALLOW rule that admits this request.

/// `[none]`: the first ALLOW policy selecting the origin pod, with one more rule that admits
/// this request: a copy of its first rule that failed only on conditions the log shows, each of
/// those set to what this request carried; else (every rule rests on something the log does
/// not show, or there is none) a rule of exactly this request's method, path, Host and source.
/// Either is checked with [`crate::authz::check_rule`].
fn rbac_fix(site: &Site<'_, '_>) -> Option<Fix> {
    let details = site.origin.details()?;
    if details.rbac_policy != Some(RbacPolicy::None) {
        // A DENY policy matched: an ALLOW rule cannot win over it; the text fix says how to
        // narrow it.
        return None;
    }
    let pod = site.origin_pod?;
    let policy = site.objects.iter().find(|o| {
        o.kind == "AuthorizationPolicy"
            && o.str_at("/spec/action").unwrap_or("ALLOW") == "ALLOW"
            && crate::objects::applies_to(o, "/spec/selector/matchLabels", pod)
    })?;
    let ns = policy.namespace.as_deref()?;
    if !is_dns_subdomain(&policy.name) || !is_dns_label(ns) {
        return None;
    }
    let source_ns = site
        .caller_pod
        .filter(|c| c.has_sidecar)
        .map(|c| c.namespace.as_str());
    let facts = crate::authz::RequestFacts::of(site.origin, source_ns);
    let existing: Vec<Value> = policy
        .spec()
        .get("rules")
        .and_then(Value::as_array)
        .map(|a| a.iter().take(64).cloned().collect())
        .unwrap_or_default();
    let n = existing.len();
    let relaxed = existing
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            relax(r, &facts).map(|(rule, changed, unseen)| (i, rule, changed, unseen))
        })
        .min_by_key(|(i, _, _, unseen)| (unseen.is_some(), *i));
    let (rule, what) = match relaxed {
        Some((i, rule, changed, unseen)) => (
            Node::from_json(&rule)?,
            format!(
                "a copy of rule {i} with {} set to what this request carried{}",
                changed.join(", "),
                unseen
                    .map(|u| format!("; it still requires what the log cannot show ({u})"))
                    .unwrap_or_default()
            ),
        ),
        None => {
            let (rule, said) = admitting_rule(&facts)?;
            let v = serde_json::to_value(&rule).ok()?;
            if crate::authz::check_rule(&v, &facts) != crate::authz::Check::Match {
                return None;
            }
            let unseen: Vec<String> = crate::authz::why_no_rule_matched(policy.spec(), &facts)
                .into_iter()
                .filter(|w| w.ends_with("cannot tell"))
                // `rule 0: when[…].values ["x"]: header x (…) is not in the log format: …`
                .filter_map(|w| {
                    let (rule, rest) = w.split_once(": ")?;
                    let (cond, _) = rest.split_once(": ")?;
                    Some(format!("{rule} requires {cond}"))
                })
                .collect();
            let mut what = format!("a rule of exactly this request ({said})");
            if !unseen.is_empty() {
                what = format!(
                    "{what}. Every condition the log shows matches, so the request most likely lacks what it cannot show ({}): prefer sending that; this rule admits the request without it",
                    unseen.join("; ")
                );
            }
            if facts.principal.is_none() && facts.namespace.is_none() {
                what.push_str(". The log does not show the caller's identity, so it admits any caller: add `from.source.principals` or `namespaces` to narrow it");
            }
            (rule, what)
        }
    };
    // The whole spec as it is, with the rule appended (`kubectl apply` replaces the list).
    let Node::Map(mut spec) = Node::from_json(policy.spec())? else {
        return None;
    };
    let mut rules = match spec.iter().position(|(k, _)| k == "rules") {
        Some(i) => match spec.remove(i).1 {
            Node::List(l) => l,
            _ => return None,
        },
        None => Vec::new(),
    };
    rules.truncate(n);
    rules.push(rule);
    spec.push(("rules".into(), Node::List(rules)));
    let obj = FixObject {
        api_version: "security.istio.io/v1",
        kind: "AuthorizationPolicy",
        name: policy.name.clone(),
        namespace: ns.to_string(),
        spec: Node::Map(spec),
    };
    let summary = format!(
        "{} with rule {n} added: {what}. The other fields are the bundle's copy of the policy, applied as they are.",
        obj.reference(),
    );
    Fix::new(summary, vec![obj])
}

/// Most conditions of one rule [`relax`] changes.
const MAX_RELAX: usize = 8;

/// `rule` with each condition this request visibly failed set to the request's value (a `notX`
/// list that matched it removed), until it admits the request or only conditions the log cannot
/// show are left. `None` when the rule failed on nothing the log shows, or a failed condition
/// cannot be set safely. Also returns what changed and what is left unseen.
fn relax(
    rule: &Value,
    f: &crate::authz::RequestFacts,
) -> Option<(Value, Vec<String>, Option<String>)> {
    use crate::authz::Check;
    let mut rule = rule.clone();
    let mut changed = Vec::new();
    for _ in 0..MAX_RELAX {
        match crate::authz::check_rule(&rule, f) {
            Check::Match if !changed.is_empty() => return Some((rule, changed, None)),
            Check::CannotTell(why) if !changed.is_empty() => {
                return Some((rule, changed, Some(why)));
            }
            Check::Fail(why) => {
                let at = why.split(' ').next()?;
                set_condition(&mut rule, at, f)?;
                changed.push(format!("`{at}`"));
            }
            _ => return None,
        }
    }
    None
}

/// Set the condition at `at` (`to.operation.paths`, `from.source.notNamespaces`,
/// `when[request.headers[x]].values`) of `rule` to what the request carried. The first
/// source or operation is kept (the others were alternatives).
fn set_condition(rule: &mut Value, at: &str, f: &crate::authz::RequestFacts) -> Option<()> {
    let (list, entry, field) = if let Some(field) = at.strip_prefix("from.source.") {
        ("from", "source", field)
    } else if let Some(field) = at.strip_prefix("to.operation.") {
        ("to", "operation", field)
    } else {
        let rest = at.strip_prefix("when[")?;
        let (key, field) = rest.rsplit_once("].")?;
        let conds = rule.get_mut("when")?.as_array_mut()?;
        let c = conds
            .iter_mut()
            .find(|c| c.get("key").and_then(Value::as_str) == Some(key))?
            .as_object_mut()?;
        if field.starts_with("not") {
            c.remove(field)?;
        } else {
            c.insert(field.into(), Value::from(vec![when_fact(key, f)?]));
        }
        return Some(());
    };
    let items = rule.get_mut(list)?.as_array_mut()?;
    items.truncate(1);
    let e = items.first_mut()?.get_mut(entry)?.as_object_mut()?;
    if field.starts_with("not") {
        e.remove(field)?;
    } else {
        e.insert(field.into(), Value::from(vec![field_fact(field, f)?]));
    }
    Some(())
}

/// The request's value for a source or operation field, when a rule may carry it.
fn field_fact(field: &str, f: &crate::authz::RequestFacts) -> Option<String> {
    let v = match field {
        "principals" => f
            .principal
            .clone()
            .filter(|p| is_principal(p) && !p.contains('*'))?,
        "namespaces" => f
            .namespace
            .as_ref()
            .map(|(n, _)| n.clone())
            .filter(|n| is_dns_label(n))?,
        "ipBlocks" => f.peer_ip?.to_string(),
        "remoteIpBlocks" => f.remote_ip?.to_string(),
        "hosts" => f.host.clone().filter(|h| is_host(h))?,
        "ports" => f.port?.to_string(),
        "methods" => f.method.clone().filter(|m| is_method(m))?,
        "paths" => f
            .path
            .clone()
            .filter(|p| is_request_path(p) && !p.contains('{') && !p.ends_with('*'))?,
        _ => return None,
    };
    Some(v)
}

/// The request's value for a `when` key, when a rule may carry it.
fn when_fact(key: &str, f: &crate::authz::RequestFacts) -> Option<String> {
    if let Some(h) = key
        .strip_prefix("request.headers[")
        .and_then(|k| k.strip_suffix(']'))
    {
        let h = h.to_ascii_lowercase();
        let v = f.headers.iter().find(|(n, _)| *n == h).map(|(_, v)| v)?;
        let plain = v.len() <= 1024
            && v.bytes().all(|c| c.is_ascii_graphic() || c == b' ')
            && !v.starts_with('*')
            && !v.ends_with('*');
        return plain.then(|| v.clone());
    }
    match key {
        "source.ip" => f.peer_ip.map(|i| i.to_string()),
        "remote.ip" => f.remote_ip.map(|i| i.to_string()),
        "source.namespace" => field_fact("namespaces", f),
        "source.principal" => field_fact("principals", f),
        "destination.port" => f.port.map(|p| p.to_string()),
        _ => None,
    }
}

/// One ALLOW rule from the request's facts: `from` its principal (else its namespace), `to` its
/// method, path and Host. `None` when the log shows neither method nor path, or a value is not
/// one a rule should carry.
fn admitting_rule(f: &crate::authz::RequestFacts) -> Option<(Node, String)> {
    let mut said = Vec::new();
    let mut op = Vec::new();
    if let Some(h) = &f.host {
        if !is_host(h) || h.len() > MAX_VALUE {
            return None;
        }
        op.push(("hosts".to_string(), Node::strs(std::slice::from_ref(h))));
        said.push(format!("Host {h}"));
    }
    if let Some(m) = &f.method {
        if !is_method(m) {
            return None;
        }
        op.push(("methods".to_string(), Node::strs(std::slice::from_ref(m))));
        said.push(format!("method {m}"));
    }
    if let Some(p) = &f.path {
        // `{` would read as a path template, `*` at either end as a prefix or suffix match.
        if !is_request_path(p) || p.contains('{') || p.ends_with('*') {
            return None;
        }
        op.push(("paths".to_string(), Node::strs(std::slice::from_ref(p))));
        said.push(format!("path {p}"));
    }
    if f.method.is_none() && f.path.is_none() {
        return None;
    }
    let mut rule = Vec::new();
    if let Some(p) = &f.principal {
        if !is_principal(p) || p.contains('*') {
            return None;
        }
        rule.push(source_node("principals", p));
        said.push(format!("from principal {p}"));
    } else if let Some((ns, how)) = &f.namespace {
        if !is_dns_label(ns) {
            return None;
        }
        rule.push(source_node("namespaces", ns));
        said.push(format!("from namespace {ns} ({how})"));
    }
    rule.push((
        "to".to_string(),
        Node::List(vec![Node::map([("operation", Node::Map(op))])]),
    ));
    Some((Node::Map(rule), said.join(", ")))
}

fn source_node(field: &str, value: &str) -> (String, Node) {
    (
        "from".to_string(),
        Node::List(vec![Node::map([(
            "source",
            Node::Map(vec![(field.to_string(), Node::strs(&[value]))]),
        )])]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshtrace_parsers::detect::{LineOutcome, LineParser};
    use serde_json::json;

    fn rec(l: &str) -> RawRecord<'static> {
        match LineParser::auto().parse(l) {
            LineOutcome::Record(r) => r.into_owned(),
            other => panic!("{other:?}"),
        }
    }

    fn parse(yaml: &str) -> Vec<Value> {
        yaml.split("---\n")
            .map(|d| serde_yaml_ng::from_str(d).unwrap())
            .collect()
    }

    fn obj(v: Value) -> Object {
        Object::from_value(v, "test".into()).unwrap()
    }

    #[test]
    fn names_follow_kubernetes_rules() {
        assert!(is_dns_label("test-predictor"));
        assert!(!is_dns_label("Test"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_subdomain("a.b-c.d"));
        assert!(!is_dns_subdomain("a..b"));
        assert!(!is_dns_subdomain("a\nb: c"));
        assert!(is_label_key("app.kubernetes.io/name"));
        assert!(is_label_key("knative"));
        assert!(!is_label_key("a: b"));
        assert!(is_label_value("") && is_label_value("Ingress_gw-1.2"));
        assert!(!is_label_value("x\n"));
        assert!(is_host("bert-model.default.example.com:80"));
        assert!(is_host("Bert.Example.com"));
        assert!(!is_host("a b"));
        assert_eq!(
            service_of_host("httpbin.legacy.svc.cluster.local"),
            Some(("httpbin", "legacy"))
        );
        assert_eq!(service_of_host("httpbin.legacy"), None);
        assert_eq!(service_of_host("example.com"), None);
        assert_eq!(
            derived_name(&"a".repeat(70), "-http").map(|n| n.len()),
            Some(63)
        );
    }

    #[test]
    fn destination_rule_disable_for_exactly_the_host() {
        let fix = disable_tls("httpbin.legacy.svc.cluster.local", None, None).unwrap();
        let docs = parse(&fix.yaml);
        assert_eq!(
            docs,
            [json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "DestinationRule",
                "metadata": {"name": "httpbin-disable-mtls", "namespace": "legacy"},
                "spec": {"host": "httpbin.legacy.svc.cluster.local",
                         "trafficPolicy": {"tls": {"mode": "DISABLE"}}}
            })]
        );
        // The YAML is the same as the structured objects.
        assert_eq!(docs[0], serde_json::to_value(&fix.apply[0]).unwrap());
        assert!(!fix.summary.contains("set PeerAuthentication PERMISSIVE,"));
        assert!(disable_tls("not a host", None, None).is_none());
        assert!(disable_tls("a.b.svc.cluster.local", Some("Bad Name"), None).is_none());
    }

    #[test]
    fn from_record_only_for_a_sidecar_failing_towards_a_service() {
        // An Istio 1.23 line: the sidecar's outbound hop to a plaintext service, TLS reset.
        let l = r#"[2024-05-01T10:00:00.000Z] "GET /get HTTP/1.1" 503 UF,URX upstream_reset_before_response_started{connection_termination} - "-" 0 95 3 - "-" "curl/8.4.0" "7b1c" "httpbin.legacy:8000" "10.244.1.9:8000" outbound|8000||httpbin.legacy.svc.cluster.local - 10.96.12.4:8000 10.244.0.7:51234 - default"#;
        let fix = from_record(&rec(l), Cause::MissingSidecar).unwrap();
        assert_eq!(
            fix.apply[0].reference(),
            "DestinationRule/legacy/httpbin-disable-mtls"
        );
        assert!(from_record(&rec(l), Cause::UpstreamReset).is_none());
        let gw = r#"[2024-05-01T10:00:00.000Z] "- - -" 0 NR filter_chain_not_found - "-" 0 0 0 - "-" "-" "-" "-" "-" - - 10.135.0.43:8081 10.134.1.22:48216 - -"#;
        assert!(from_record(&rec(gw), Cause::MissingSidecar).is_none());
    }

    #[test]
    fn malicious_values_stay_values() {
        let facts = crate::authz::RequestFacts {
            method: Some("GET".into()),
            path: Some("/x\"\n  evil: true".into()),
            ..Default::default()
        };
        // Control characters: no rule at all.
        assert!(admitting_rule(&facts).is_none());
        let facts = crate::authz::RequestFacts {
            method: Some("GET".into()),
            path: Some("/x\":[evil]#&a=---:y".into()),
            host: Some("a.example.com".into()),
            ..Default::default()
        };
        let (rule, _) = admitting_rule(&facts).unwrap();
        let o = FixObject {
            api_version: "security.istio.io/v1",
            kind: "AuthorizationPolicy",
            name: "p".into(),
            namespace: "ns".into(),
            spec: Node::map([("rules", Node::List(vec![rule]))]),
        };
        let fix = Fix::new(String::new(), vec![o]).unwrap();
        let docs = parse(&fix.yaml);
        assert_eq!(docs.len(), 1, "{}", fix.yaml);
        assert_eq!(
            docs[0].pointer("/spec/rules/0/to/0/operation/paths/0"),
            Some(&json!("/x\":[evil]#&a=---:y"))
        );
        assert_eq!(docs[0]["spec"].as_object().unwrap().len(), 1);
        // A principal or method that is not one is refused.
        let facts = crate::authz::RequestFacts {
            method: Some("get me".into()),
            path: Some("/".into()),
            ..Default::default()
        };
        assert!(admitting_rule(&facts).is_none());
    }

    #[test]
    fn admitting_rule_is_admitted_by_authz() {
        let l = r#"[2024-04-25T20:21:43.725Z] "POST /v1/models/bert-emotion-model:predict HTTP/1.1" 403 - rbac_access_denied_matched_policy[none] - "-" 0 19 0 - "10.244.0.6" "curl/8.4.0" "211ebf7c" "bert-model.default.example.com" "-" outbound|80||knative-local-gateway.istio-system.svc.cluster.local - 127.0.0.1:8080 127.0.0.1:44576 - -"#;
        for ns in [None, Some("team-a")] {
            let f = crate::authz::RequestFacts::of(&rec(l), ns);
            let (rule, said) = admitting_rule(&f).unwrap();
            let v = serde_json::to_value(&rule).unwrap();
            assert_eq!(crate::authz::check_rule(&v, &f), crate::authz::Check::Match);
            assert!(
                said.contains("path /v1/models/bert-emotion-model:predict"),
                "{said}"
            );
            assert_eq!(
                v.pointer("/from/0/source/namespaces/0")
                    .and_then(Value::as_str),
                ns
            );
            // Another path is not admitted.
            let mut other = f.clone();
            other.path = Some("/v1/models/other:predict".into());
            assert!(matches!(
                crate::authz::check_rule(&v, &other),
                crate::authz::Check::Fail(_)
            ));
        }
    }

    #[test]
    fn relax_sets_each_visible_failed_condition() {
        let mut f = crate::authz::RequestFacts {
            method: Some("POST".into()),
            path: Some("/v1/models/m:predict".into()),
            namespace: Some(("team-a".into(), "test")),
            ..Default::default()
        };
        f.headers.push(("x-tenant".into(), "blue".into()));
        let rule = json!({
            "from": [{"source": {"namespaces": ["team-b"]}}, {"source": {"namespaces": ["team-c"]}}],
            "to": [{"operation": {"methods": ["GET"], "notPaths": ["/v1/*"]}}],
            "when": [{"key": "request.headers[X-Tenant]", "values": ["green"]}]
        });
        let (r, changed, unseen) = relax(&rule, &f).unwrap();
        assert_eq!(
            r,
            json!({
                "from": [{"source": {"namespaces": ["team-a"]}}],
                "to": [{"operation": {"methods": ["POST"]}}],
                "when": [{"key": "request.headers[X-Tenant]", "values": ["blue"]}]
            })
        );
        assert_eq!(changed.len(), 4, "{changed:?}");
        assert_eq!(unseen, None);
        assert_eq!(crate::authz::check_rule(&r, &f), crate::authz::Check::Match);
        // Nothing visible failed: nothing to relax.
        let rule = json!({"from": [{"source": {"principals": ["cluster.local/ns/a/sa/b"]}}]});
        assert!(relax(&rule, &f).is_none());
        // A condition that cannot be set safely (a header value with a control character).
        f.headers[0].1 = "a\nb".into();
        let rule = json!({"when": [{"key": "request.headers[x-tenant]", "values": ["green"]}]});
        assert!(relax(&rule, &f).is_none());
    }

    #[test]
    fn rbac_fix_appends_to_the_allow_policy() {
        let l = r#"[2024-04-25T20:21:43.725Z] "POST /v1/models/m:predict HTTP/1.1" 403 - rbac_access_denied_matched_policy[none] - "-" 0 19 0 - "-" "curl/8.4.0" "211ebf7c" "m.default.example.com" "-" - - 10.0.0.5:8080 10.0.0.9:44576 - -"#;
        let objects = vec![
            obj(
                json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"gw","namespace":"istio-system","labels":{"istio":"ingressgateway"}},
                "spec":{"containers":[{"name":"istio-proxy","image":"x"}]},"status":{"podIP":"10.0.0.5","podIPs":[{"ip":"10.0.0.5"}]}}),
            ),
            obj(
                json!({"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"allow-v2","namespace":"istio-system"},
                "spec":{"selector":{"matchLabels":{"istio":"ingressgateway"}},"action":"ALLOW","rules":[{"to":[{"operation":{"paths":["/v2/*"]}}]}]}}),
            ),
        ];
        let mut problems = Vec::new();
        let topo = Topology::from_objects(&objects, &mut problems);
        let r = rec(l);
        let site = Site {
            objects: &objects,
            topo: &topo,
            origin: &r,
            origin_pod: topo.pod("istio-system", "gw"),
            caller_pod: None,
            cause: Cause::RbacDenied,
            from_record: None,
        };
        let fix = for_trace(&site).unwrap();
        let doc = &parse(&fix.yaml)[0];
        assert_eq!(
            doc["metadata"],
            json!({"name":"allow-v2","namespace":"istio-system"})
        );
        assert_eq!(
            doc["spec"]["selector"],
            json!({"matchLabels":{"istio":"ingressgateway"}})
        );
        assert_eq!(doc["spec"]["action"], "ALLOW");
        let rules = doc["spec"]["rules"].as_array().unwrap();
        assert_eq!(rules[0], json!({"to":[{"operation":{"paths":["/v2/*"]}}]}));
        let f = crate::authz::RequestFacts::of(&r, None);
        assert_eq!(
            crate::authz::check_rule(&rules[1], &f),
            crate::authz::Check::Match
        );
        // The rule failed on its path only: the copy has this request's path instead.
        assert_eq!(
            rules[1],
            json!({"to":[{"operation":{"paths":["/v1/models/m:predict"]}}]})
        );
        assert!(
            fix.summary
                .contains("a copy of rule 0 with `to.operation.paths`"),
            "{}",
            fix.summary
        );
        // A rule that rests on a header the log does not show: the exact request, with the
        // advice to send the header first.
        let objects = vec![
            objects[0].clone(),
            obj(
                json!({"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"allow-header","namespace":"istio-system"},
                "spec":{"selector":{"matchLabels":{"istio":"ingressgateway"}},"rules":[{"to":[{"operation":{"paths":["/v1/*"]}}],"when":[{"key":"request.headers[X-Test]","values":["yes"]}]}]}}),
            ),
        ];
        let site2 = Site {
            objects: &objects,
            ..site
        };
        let fix = for_trace(&site2).unwrap();
        let doc = &parse(&fix.yaml)[0];
        let rules = doc["spec"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[1],
            json!({"to":[{"operation":{"hosts":["m.default.example.com"],"methods":["POST"],"paths":["/v1/models/m:predict"]}}]})
        );
        assert!(
            fix.summary.contains("prefer sending that"),
            "{}",
            fix.summary
        );
        assert!(fix.summary.contains("any caller"), "{}", fix.summary);
        // A DENY match: no new ALLOW rule.
        let deny = l.replace("[none]", "[ns[istio-system]-policy[deny-all]-rule[0]]");
        let r = rec(&deny);
        let site = Site { origin: &r, ..site };
        assert!(for_trace(&site).is_none());
    }
}
