//! `meshtrace describe`'s printer: istioctl's `x describe pod` layout (the same statements,
//! indented the same way) with meshtrace's additions — mTLS per pod port, client TLS per
//! Service port, AuthorizationPolicies with their rules, Gateway bindings and conflicts — or
//! `meshtrace.describe/v1` as JSON or YAML.

use std::io::{self, Write};

use meshtrace_analysis::describe::{
    DestinationRuleView, IsvcDescription, PodDescription, Severity, VirtualServiceView,
};

use super::{Line, OutputFormat};

const SEP: &str = "--------------------";

fn sp(n: usize) -> String {
    " ".repeat(n)
}

/// istioctl's `kname`: the name alone in the described namespace, else `name.namespace`.
fn kname(name: &str, ns: &str, described_ns: &str) -> String {
    if ns == described_ns {
        name.to_string()
    } else {
        format!("{name}.{ns}")
    }
}

fn doc(out: &mut dyn Write, v: serde_json::Value, format: OutputFormat) -> anyhow::Result<()> {
    if format == OutputFormat::Yaml {
        super::yaml::write(out, &v)?;
    } else {
        super::write_json_or_yaml(out, false, &v)?;
    }
    Ok(())
}

/// `describe pod`.
pub fn write_pod(
    out: &mut dyn Write,
    d: &PodDescription,
    skipped: &[String],
    format: OutputFormat,
) -> anyhow::Result<()> {
    if matches!(format, OutputFormat::Json | OutputFormat::Yaml) {
        return doc(
            out,
            serde_json::json!({"schema": "meshtrace.describe/v1", "kind": "pod", "pod": d, "skipped": skipped}),
            format,
        );
    }
    pod_text(out, d)?;
    Ok(())
}

/// `describe isvc`.
pub fn write_isvc(
    out: &mut dyn Write,
    d: &IsvcDescription,
    skipped: &[String],
    format: OutputFormat,
) -> anyhow::Result<()> {
    if matches!(format, OutputFormat::Json | OutputFormat::Yaml) {
        return doc(
            out,
            serde_json::json!({"schema": "meshtrace.describe/v1", "kind": "isvc", "isvc": d, "skipped": skipped}),
            format,
        );
    }
    writeln!(
        out,
        "InferenceService: {}",
        Line(&format!("{}.{}", d.name, d.namespace))
    )?;
    if !d.found {
        writeln!(
            out,
            "   (the InferenceService object is not in the evidence; its pods were found by label)"
        )?;
    }
    writeln!(out, "   Ready: {}", Line(&d.ready))?;
    if let Some(u) = &d.url {
        writeln!(out, "   URL: {}", Line(u))?;
    }
    writeln!(out, "   Deployment mode: {}", Line(&d.deployment_mode))?;
    for k in &d.knative {
        write!(
            out,
            "   Knative {} {}: Ready {}",
            Line(&k.kind),
            Line(&k.name),
            Line(&k.ready)
        )?;
        if let Some(u) = &k.url {
            write!(out, ", URL {}", Line(u))?;
        }
        writeln!(out)?;
        if !k.traffic.is_empty() {
            writeln!(out, "      Traffic: {}", Line(&k.traffic.join(", ")))?;
        }
    }
    for v in &d.entry_virtual_services {
        writeln!(
            out,
            "Entry VirtualService: {}",
            Line(&kname(&v.name, &v.namespace, &d.namespace))
        )?;
        writeln!(out, "   Hosts: {}", Line(&v.hosts.join(", ")))?;
        for f in &v.facts {
            writeln!(out, "   {}", Line(f))?;
        }
        gateways_text(out, v, 3)?;
    }
    if d.pods.is_empty() {
        writeln!(
            out,
            "No pod of this InferenceService in the evidence (scaled to zero, or not collected)."
        )?;
    }
    for p in &d.pods {
        writeln!(out, "====================")?;
        pod_text(out, p)?;
    }
    Ok(())
}

fn dr_text(out: &mut dyn Write, dr: &DestinationRuleView, lvl: usize, ns: &str) -> io::Result<()> {
    writeln!(
        out,
        "{}DestinationRule: {} for {:?}",
        sp(lvl),
        Line(&kname(&dr.name, &dr.namespace, ns)),
        Line(&dr.host).to_string()
    )?;
    if !dr.matching_subsets.is_empty() || !dr.nonmatching_subsets.is_empty() {
        if dr.matching_subsets.is_empty() {
            writeln!(
                out,
                "{}WARNING POD DOES NOT MATCH ANY SUBSETS.  (Non matching subsets {})",
                sp(lvl + 3),
                Line(&dr.nonmatching_subsets.join(","))
            )?;
        }
        writeln!(
            out,
            "{}Matching subsets: {}",
            sp(lvl + 3),
            Line(&dr.matching_subsets.join(","))
        )?;
        if !dr.nonmatching_subsets.is_empty() {
            writeln!(
                out,
                "{}(Non-matching subsets {})",
                sp(lvl + 6),
                Line(&dr.nonmatching_subsets.join(","))
            )?;
        }
    }
    if !dr.has_traffic_policy {
        writeln!(out, "{}No Traffic Policy", sp(lvl + 3))?;
    } else {
        if let Some(m) = &dr.tls_mode {
            writeln!(out, "{}Traffic Policy TLS Mode: {}", sp(lvl + 3), Line(m))?;
        }
        if !dr.policies.is_empty() {
            writeln!(out, "{}Policies: {}", sp(lvl + 3), dr.policies.join("/"))?;
        }
        if !dr.port_level.is_empty() {
            writeln!(out, "{}Port Level Settings:", sp(lvl + 3))?;
            for p in &dr.port_level {
                writeln!(out, "{}{}:", sp(4), p.port)?;
                if let Some(m) = &p.tls_mode {
                    writeln!(out, "{}TLS Mode: {}", sp(lvl + 6), Line(m))?;
                }
                if !p.policies.is_empty() {
                    writeln!(out, "{}Policies: {}", sp(lvl + 6), p.policies.join("/"))?;
                }
            }
        }
    }
    Ok(())
}

fn gateways_text(out: &mut dyn Write, v: &VirtualServiceView, lvl: usize) -> io::Result<()> {
    for g in &v.gateways {
        if g.gateway == "mesh" {
            writeln!(out, "{}Bound to: mesh (every sidecar)", sp(lvl))?;
            continue;
        }
        write!(out, "{}Bound to Gateway {}", sp(lvl), Line(&g.gateway))?;
        if !g.found {
            write!(out, " (not in the evidence)")?;
        } else if g.servers.is_empty() {
            write!(out, ": no server of it covers the hosts")?;
        } else {
            write!(out, ": {}", Line(&g.servers.join("; ")))?;
        }
        if !g.pods.is_empty() {
            write!(out, " (pods: {})", Line(&g.pods.join(", ")))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn pod_text(out: &mut dyn Write, d: &PodDescription) -> io::Result<()> {
    let ns = d.namespace.as_str();
    writeln!(out, "Pod: {}", Line(&d.name))?;
    writeln!(out, "   Pod Revision: {}", Line(&d.revision))?;
    if d.ports.is_empty() {
        writeln!(out, "   Pod does not expose ports")?;
    } else {
        let ports: Vec<String> = d
            .ports
            .iter()
            .map(|p| {
                let proto = if p.protocol.is_empty() {
                    String::new()
                } else {
                    format!("/{}", p.protocol)
                };
                format!("{}{proto} ({})", p.port, p.container)
            })
            .collect();
        writeln!(out, "   Pod Ports: {}", Line(&ports.join(", ")))?;
    }
    writeln!(out, "   Namespace: {}   Role: {}", Line(ns), Line(&d.role))?;
    for w in &d.warnings {
        writeln!(out, "{}", Line(w))?;
    }
    writeln!(out, "{SEP}")?;
    for (i, s) in d.services.iter().enumerate() {
        if i > 0 {
            writeln!(out, "{SEP}")?;
        }
        writeln!(out, "Service: {}", Line(&kname(&s.name, &s.namespace, ns)))?;
        if s.via != "selector" {
            writeln!(out, "   (via {})", Line(&s.via))?;
        }
        for p in &s.ports {
            match (p.target_port, &p.target_error) {
                (Some(t), _) => writeln!(
                    out,
                    "   Port: {} {}/{} targets pod port {}",
                    Line(&p.name),
                    p.port,
                    Line(&p.protocol),
                    t
                )?,
                (None, Some(e)) => writeln!(out, "   {}", Line(e))?,
                (None, None) => {}
            }
        }
        let multi = s.ports.len() > 1;
        let lvl = if multi { 3 } else { 0 };
        for p in &s.ports {
            if multi {
                writeln!(out, "{}:", p.port)?;
            }
            if let Some(dr) = &p.destination_rule {
                dr_text(out, dr, lvl, ns)?;
            }
            for v in &p.virtual_services {
                writeln!(
                    out,
                    "{}VirtualService: {}",
                    sp(lvl),
                    Line(&kname(&v.name, &v.namespace, ns))
                )?;
                for f in &v.facts {
                    writeln!(out, "{}{}", sp(lvl + 3), Line(f))?;
                }
                gateways_text(out, v, lvl + 3)?;
            }
            writeln!(
                out,
                "{}mTLS: pod port {} is {}; clients send {}",
                sp(lvl + 3),
                p.target_port.map_or("?".into(), |t| t.to_string()),
                Line(&p.mtls),
                match p.client_tls.as_str() {
                    "auto" => "Istio mTLS by auto mTLS (no DestinationRule tls mode)".to_string(),
                    m => format!("tls mode {}", Line(m)),
                }
            )?;
        }
    }
    writeln!(out, "{SEP}")?;
    let pa = &d.peer_authentication;
    writeln!(out, "Effective PeerAuthentication:")?;
    writeln!(out, "   Workload mTLS mode: {}", Line(&pa.mode))?;
    if !pa.per_port.is_empty() {
        writeln!(out, "   Port Level mTLS mode:")?;
        for (port, mode) in &pa.per_port {
            writeln!(out, "      {port}: {}", Line(mode))?;
        }
    }
    if !pa.applied.is_empty() {
        writeln!(out, "Applied PeerAuthentication:")?;
        writeln!(out, "   {}", Line(&pa.applied.join(", ")))?;
    }
    if !d.port_mtls.is_empty() {
        let per: Vec<String> = d
            .port_mtls
            .iter()
            .map(|p| format!("{} {}", p.port, p.mode))
            .collect();
        writeln!(out, "   mTLS per pod port: {}", Line(&per.join(", ")))?;
    }
    if !d.has_sidecar {
        writeln!(
            out,
            "   (no sidecar: nothing enforces these modes; the pod accepts plaintext only)"
        )?;
    }
    writeln!(out, "{SEP}")?;
    if d.authorization_policies.is_empty() {
        writeln!(
            out,
            "No AuthorizationPolicy applies; every request is allowed."
        )?;
    } else {
        writeln!(
            out,
            "Authorization policies in force (evaluated CUSTOM, then DENY, then ALLOW)"
        )?;
        for a in &d.authorization_policies {
            write!(
                out,
                "   {} {} ({})",
                Line(&a.action),
                Line(&kname(&a.name, &a.namespace, ns)),
                Line(&a.scope)
            )?;
            if let Some(p) = &a.provider {
                write!(out, " provider {}", Line(p))?;
            }
            writeln!(out)?;
            if a.rules.is_empty() {
                writeln!(out, "      no rules (matches no request)")?;
            }
            for (i, r) in a.rules.iter().enumerate() {
                writeln!(out, "      rule {i}: {}", Line(r))?;
            }
        }
        if d.authorization_policies.iter().any(|a| a.action == "ALLOW") {
            writeln!(out, "   A request no ALLOW policy matches is denied (403).")?;
        }
    }
    if !d.conflicts.is_empty() {
        writeln!(out, "{SEP}")?;
        writeln!(out, "Conflicts:")?;
        for c in &d.conflicts {
            let sev = match c.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            writeln!(out, "   {sev}: {}", Line(&c.message))?;
            if !c.objects.is_empty() {
                writeln!(out, "      objects: {}", Line(&c.objects.join(", ")))?;
            }
        }
    }
    Ok(())
}
