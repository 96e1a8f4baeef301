//! Fuzz target: inference-gateway lines — agentgateway's request lines
//! (`agentgateway::parse`), the endpoint picker's JSON lines (`epp::parse_json`) and Envoy
//! Gateway's cluster and route names (`cluster::parse_gateway_route`) and HAProxy's (the
//! OpenShift router's) access-log lines (`haproxy::parse`) never panic, are bounded, and read
//! the same twice.
#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;
use meshtrace_parsers::{agentgateway, cluster, epp, haproxy};

fuzz_target!(|data: &[u8]| {
    let s = meshtrace_fuzz::text(data);
    let s = s.as_ref();
    if let Some(r) = agentgateway::parse(s) {
        assert!(r.extras().count() <= agentgateway::MAX_FIELDS);
        assert!(r.extras().all(|(_, v)| v.len() <= agentgateway::MAX_VALUE));
        let again = agentgateway::parse(s).expect("read once, read twice");
        assert_eq!(again.status(), r.status());
        black_box((r.start_time(), r.duration_ms(), r.is_progress_line()));
    }
    if let Some(d) = epp::parse_json(s) {
        assert!(!d.request_id.is_empty());
        assert!(d.error.as_ref().is_none_or(|e| e.len() <= epp::MAX_VALUE));
        assert_eq!(epp::parse_json(s).as_ref(), Some(&d));
        black_box((d.status(), d.endpoint_ip()));
    }
    if let Some(h) = haproxy::parse(s) {
        assert!(h.timers.len() == 5 || h.timers.len() == 3);
        assert!(h.captures.len() <= 2);
        for v in [&h.client, &h.frontend, &h.backend, &h.server] {
            assert!(v.len() <= haproxy::MAX_VALUE);
        }
        assert!(h.request.as_ref().is_none_or(|r| r.len() <= haproxy::MAX_VALUE));
        assert_eq!(haproxy::parse(s).as_ref(), Some(&h));
        black_box((
            h.failed(),
            h.route(),
            h.endpoint(),
            h.method_path(),
            h.total_ms(),
            h.response_ms(),
        ));
    }
    if let Some(g) = cluster::parse_gateway_route(s) {
        assert!(!g.namespace.is_empty() && !g.name.is_empty());
        black_box(g.to_string());
    }
});
