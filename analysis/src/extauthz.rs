//! External authorization (an Istio CUSTOM AuthorizationPolicy, Envoy's ext_authz filter):
//! which authorizer answered or failed, from the policies that select the pod and the mesh's
//! extension providers, and what to do about each outcome. Pure.
//!
//! Envoy's ext_authz filter documentation: `ext_authz_denied` is the authorizer's own decision,
//! returned with the status the authorizer chose (401 and 403 are usual); `ext_authz_error`
//! means no decision could be had (connection refused, timeout, a 5xx from the authorizer) and
//! the request is refused with `status_on_error`, 403 unless configured. Istio's MeshConfig
//! `extensionProviders[].envoyExtAuthzHttp|envoyExtAuthzGrpc` names the authorizer's service,
//! port, `statusOnError` and `failOpen`; a CUSTOM AuthorizationPolicy names the provider.

use serde_json::Value;

use crate::causes::Cause;
use crate::model::{Cited, Object};
use crate::objects::applies_to;
use crate::reading::{Reading, Site, pod_of};
use crate::topology::{PodInfo, selects};

/// Most providers read from one mesh configuration (it is untrusted input).
const MAX_PROVIDERS: usize = 64;

/// An extension provider of the mesh configuration that does external authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// Its name, as CUSTOM policies name it.
    pub name: String,
    /// `http` or `gRPC`.
    pub protocol: &'static str,
    /// The authorizer's service (`name.namespace.svc.cluster.local`, or `namespace/name`).
    pub service: String,
    /// Its port.
    pub port: Option<u64>,
    /// `failOpen: true`: requests pass when the authorizer cannot be asked.
    pub fail_open: bool,
    /// The object that declares it (`ConfigMap/istio-system/istio`…).
    pub declared_by: String,
}

/// Every ext_authz extension provider the bundle's mesh configuration declares: the `mesh`
/// key of the `istio` ConfigMaps, a ServiceMeshControlPlane's `spec.meshConfig`, an `Istio`
/// resource's `spec.values.meshConfig`.
pub fn providers(objects: &[Object]) -> Vec<Provider> {
    let mut out = Vec::new();
    for o in objects {
        let list = match o.kind.as_str() {
            "ConfigMap" if o.name == "istio" || o.name.starts_with("istio-") => o
                .str_at("/data/mesh")
                .and_then(crate::document::embedded_yaml)
                .and_then(|v| v.get("extensionProviders").cloned()),
            "ServiceMeshControlPlane" => o
                .value
                .pointer("/spec/meshConfig/extensionProviders")
                .cloned(),
            "Istio" => o
                .value
                .pointer("/spec/values/meshConfig/extensionProviders")
                .cloned(),
            _ => None,
        };
        for p in list
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .take(MAX_PROVIDERS)
        {
            let Some(name) = p.get("name").and_then(Value::as_str) else {
                continue;
            };
            let (protocol, body) = match (p.get("envoyExtAuthzHttp"), p.get("envoyExtAuthzGrpc")) {
                (Some(b), _) => ("HTTP", b),
                (None, Some(b)) => ("gRPC", b),
                _ => continue,
            };
            out.push(Provider {
                name: name.to_string(),
                protocol,
                service: body
                    .get("service")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                port: body.get("port").and_then(Value::as_u64),
                fail_open: body
                    .get("failOpen")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                declared_by: o.reference(),
            });
        }
    }
    out
}

/// (name, namespace) of a provider's `service`: `name.namespace.svc…` or `namespace/name`.
fn service_ref(service: &str) -> Option<(&str, &str)> {
    match service.split_once('/') {
        Some((ns, name)) => Some((name, ns)),
        None => {
            let mut parts = service.split('.');
            Some((parts.next()?, parts.next()?))
        }
    }
}

/// The Service a provider's `service` names: `name.namespace.svc…`, `namespace/name`.
fn service_of<'a>(objects: &'a [Object], service: &str) -> Option<&'a Object> {
    let (name, ns) = service_ref(service)?;
    objects
        .iter()
        .find(|o| o.kind == "Service" && o.name == name && o.namespace.as_deref() == Some(ns))
}

/// The pods a Service selects.
fn pods_of<'t>(site: &Site<'t>, svc: &Object) -> Vec<&'t PodInfo> {
    let sel = svc.string_map("/spec/selector");
    if sel.is_empty() {
        return Vec::new();
    }
    let ns = svc.namespace.as_deref().unwrap_or("");
    site.ev
        .topology
        .pods
        .iter()
        .filter(|p| p.namespace == ns && selects(&sel, &p.labels))
        .collect()
}

/// What the authorizer's configuration adds to an `ext_authz_denied` verdict.
pub fn reading(site: &Site<'_>) -> Option<Reading> {
    if site.cause != Cause::ExtAuthzDenied {
        return None;
    }
    let origin = &site.origin().record;
    let details = origin.details();
    let error = details
        .as_ref()
        .is_some_and(|d| d.base == "ext_authz_error");
    let status = origin.status().unwrap_or(0);
    let objects = &site.ev.objects;
    let pod = pod_of(&site.ev.topology, site.origin());
    let policies: Vec<&Object> = pod
        .map(|pod| {
            objects
                .iter()
                .filter(|o| {
                    o.kind == "AuthorizationPolicy"
                        && o.str_at("/spec/action") == Some("CUSTOM")
                        && applies_to(o, "/spec/selector/matchLabels", pod)
                })
                .collect()
        })
        .unwrap_or_default();
    let all = providers(objects);
    let mut r = Reading::default();
    let mut named = Vec::new();
    for p in &policies {
        let provider = p.str_at("/spec/provider/name").unwrap_or("");
        let found = all.iter().find(|x| x.name == provider);
        r.cited.push(Cited {
            object: p.reference(),
            why: match found {
                Some(_) => format!("CUSTOM policy: sends the requests it matches to provider `{provider}`"),
                None => format!(
                    "CUSTOM policy: names provider `{provider}`, which no extensionProviders entry of the bundle's mesh configuration declares"
                ),
            },
        });
        if let Some(x) = found
            && !named.contains(&x)
        {
            named.push(x);
        }
    }
    let who = match named.as_slice() {
        [p] => format!(
            "the external authorizer `{}` ({} service {}{})",
            p.name,
            p.protocol,
            p.service,
            p.port.map(|n| format!(":{n}")).unwrap_or_default()
        ),
        _ => "the external authorizer".to_string(),
    };
    for p in &named {
        r.cited.push(Cited {
            object: p.declared_by.clone(),
            why: format!(
                "extension provider `{}`: {} ext_authz to {}{}{}",
                p.name,
                p.protocol,
                p.service,
                p.port.map(|n| format!(":{n}")).unwrap_or_default(),
                if p.fail_open { ", failOpen: true" } else { "" }
            ),
        });
        if let Some(svc) = service_of(objects, &p.service) {
            let pods = pods_of(site, svc);
            let why = if pods.is_empty() {
                "Service of the provider: no pod it selects is in the evidence".to_string()
            } else {
                let states: Vec<String> = pods
                    .iter()
                    .map(|p| {
                        let ended = p
                            .terminations
                            .first()
                            .map(|t| format!(", `{}` last ended {}", t.container, t.describe()))
                            .unwrap_or_default();
                        format!("{} (restarts {}{ended})", p.reference(), p.restarts)
                    })
                    .collect();
                format!("Service of the provider, selecting {}", states.join(", "))
            };
            r.cited.push(Cited {
                object: svc.reference(),
                why,
            });
        }
    }
    let target = named.first();
    if error {
        r.summary_extra = Some(format!(
            "This is not a decision about the request: the proxy got no answer from {who}, which was unreachable, timed out or failed, so it refused the request with its status_on_error ({status})."
        ));
        let check = match target {
            Some(p) => {
                let (name, ns) = service_ref(&p.service).unwrap_or_default();
                format!(
                    "Bring the authorizer back: `kubectl get pods,endpoints -n {ns}` for Service `{name}` and its pods' logs; check that provider `{}` in the mesh configuration names that Service and a port it serves{}.",
                    p.name,
                    p.port.map(|n| format!(" ({n})")).unwrap_or_default()
                )
            }
            None => "Bring the authorizer back: find the CUSTOM AuthorizationPolicy selecting this workload, its provider in the mesh configuration's extensionProviders, and check that provider's Service, endpoints and logs.".to_string(),
        };
        r.fix = Some(format!(
            "{check} Until it answers, every request it should check is refused, whatever credentials it carries; `failOpen: true` on the provider lets requests through while it is down, at the cost of not checking them."
        ));
    } else {
        let meaning = match status {
            401 => "it found no credentials it accepts (a missing, expired or wrong token)",
            403 => "it knows the caller, who is not allowed to do this",
            _ => "it refused the request",
        };
        r.summary_extra = Some(format!(
            "This is the decision of {who}, which answered {status}: {meaning}."
        ));
        let authorino = target.is_some_and(|p| p.service.contains("authorino"));
        r.fix = Some(match (status, authorino) {
            (401, true) => "Send a token the authorizer accepts: with OpenShift AI / Open Data Hub token authentication, `Authorization: Bearer <token>` of a user or service account allowed to get this InferenceService (`oc whoami -t`, or `oc create token <service-account>`). If the client sends one, Authorino's logs and the AuthConfig for this host say why it was refused.".to_string(),
            (401, false) => "Send credentials the authorizer accepts (usually `Authorization: Bearer <token>`); if the client sends them, the authorizer's logs say why they were refused.".to_string(),
            (_, true) => "Give the caller access: with OpenShift AI / Open Data Hub, a Role allowing `get` on this InferenceService bound to the token's user or service account; Authorino's logs and the AuthConfig for this host say which check failed.".to_string(),
            _ => "Give the caller access in the authorizer's own rules, or change the CUSTOM AuthorizationPolicy's rules so this request is not sent to it; the authorizer's logs say which check failed.".to_string(),
        });
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        Object::from_value(v, "test".into()).unwrap()
    }

    /// The three places a mesh declares its extension providers, and what is not one.
    #[test]
    fn providers_from_configmap_smcp_and_istio_resource() {
        let objects = vec![
            obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "istio", "namespace": "istio-system"},
                "data": {"mesh": "accessLogFile: /dev/stdout\nextensionProviders:\n- name: ext-http\n  envoyExtAuthzHttp:\n    service: authz.foo.svc.cluster.local\n    port: 8000\n    failOpen: true\n- name: otel\n  opentelemetry:\n    service: otel.obs.svc.cluster.local\n    port: 4317\n"}})),
            obj(
                json!({"apiVersion": "maistra.io/v2", "kind": "ServiceMeshControlPlane",
                "metadata": {"name": "data-science-smcp", "namespace": "istio-system"},
                "spec": {"meshConfig": {"extensionProviders": [{"name": "opendatahub-auth-provider",
                    "envoyExtAuthzGrpc": {"service": "authorino-authorino-authorization.opendatahub-auth-provider.svc.cluster.local", "port": 50051}}]}}}),
            ),
            obj(json!({"apiVersion": "sailoperator.io/v1", "kind": "Istio",
                "metadata": {"name": "default"},
                "spec": {"values": {"meshConfig": {"extensionProviders": [{"name": "ns-form",
                    "envoyExtAuthzHttp": {"service": "auth/authz", "port": 9000}}]}}}})),
            obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "other", "namespace": "istio-system"},
                "data": {"mesh": "extensionProviders:\n- name: ignored\n  envoyExtAuthzHttp:\n    service: x\n"}})),
            obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "istio-canary", "namespace": "istio-system"},
                "data": {"mesh": "extensionProviders: [unclosed"}})),
        ];
        let got = providers(&objects);
        let names: Vec<(&str, &str, &str, Option<u64>, bool)> = got
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.protocol,
                    p.service.as_str(),
                    p.port,
                    p.fail_open,
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                (
                    "ext-http",
                    "HTTP",
                    "authz.foo.svc.cluster.local",
                    Some(8000),
                    true
                ),
                (
                    "opendatahub-auth-provider",
                    "gRPC",
                    "authorino-authorino-authorization.opendatahub-auth-provider.svc.cluster.local",
                    Some(50051),
                    false
                ),
                ("ns-form", "HTTP", "auth/authz", Some(9000), false),
            ]
        );
        assert_eq!(got[0].declared_by, "ConfigMap/istio-system/istio");
        assert_eq!(
            got[1].declared_by,
            "ServiceMeshControlPlane/istio-system/data-science-smcp"
        );
    }

    /// A mesh configuration is untrusted text: it is parsed within a budget
    /// (`document::embedded_yaml`, whose tests hold the bombs), so an alias bomb gives no
    /// provider.
    #[test]
    fn an_alias_bomb_gives_no_provider() {
        let mesh = crate::document::tests::alias_bomb("extensionProviders");
        let o = obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "istio", "namespace": "istio-system"},
            "data": {"mesh": mesh}}));
        assert!(providers(&[o]).is_empty());
    }

    #[test]
    fn provider_services_by_fqdn_and_namespace_form() {
        let objects = vec![
            obj(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "authz", "namespace": "auth"}}),
            ),
            obj(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "authz", "namespace": "other"}}),
            ),
        ];
        for s in ["authz.auth.svc.cluster.local", "authz.auth", "auth/authz"] {
            let o = service_of(&objects, s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(o.namespace.as_deref(), Some("auth"), "{s}");
        }
        assert!(service_of(&objects, "authz").is_none());
        assert!(service_of(&objects, "nope.auth.svc.cluster.local").is_none());
    }
}
