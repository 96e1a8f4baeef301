//! Checks the flag / code-details vocabulary against third-party oracle data in testdata/peer/envoy (Envoy, Apache-2.0), plus a brute-force no-panic sweep over every public parser.

use meshtrace_parsers::address::parse_address;
use meshtrace_parsers::cluster::{parse_cluster_name, parse_istio_sni};
use meshtrace_parsers::details::{
    detail_meaning, parse_code_details, parse_rbac_policy, parse_transport_failure,
};
use meshtrace_parsers::flags::{ResponseFlag, looks_like_flags, parse_response_flags};

const ENVOY_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/peer/envoy");

fn read_oracle(name: &str) -> String {
    let path = format!("{ENVOY_DIR}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "oracle data file missing: could not read {path} ({e}); \
             these tests need the third-party data vendored in testdata/peer/envoy \
             at the repository root (see testdata/peer/SOURCES.md)"
        )
    })
}

/// Data rows of a TSV file (header skipped), split on tabs.
fn tsv_rows(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
        .collect()
}

#[test]
fn response_flags_match_envoy_table() {
    let text = read_oracle("response-flags.tsv");
    let header = text.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("short\tlong\tmeaning\tscope\tenum_index"),
        "unexpected header {header:?}"
    );
    let rows = tsv_rows(&text);
    assert_eq!(rows.len(), ResponseFlag::ALL.len(), "row count");
    for row in &rows {
        let [short, long, meaning, scope, idx, ..] = row.as_slice() else {
            panic!("short row {row:?}");
        };
        let idx: usize = idx
            .parse()
            .unwrap_or_else(|e| panic!("bad index in {row:?}: {e}"));
        let flag = ResponseFlag::ALL[idx];
        assert_eq!(flag.index(), idx);
        assert_eq!(flag.short(), *short, "short of #{idx}");
        assert_eq!(flag.long(), *long, "long of #{idx}");
        assert_eq!(flag.meaning(), *meaning, "meaning of {short}");
        assert_eq!(flag.scope(), *scope, "scope of {short}");
        assert_eq!(ResponseFlag::from_short(short), Some(flag));
        assert_eq!(ResponseFlag::from_long(long), Some(flag));
        assert_eq!(ResponseFlag::from_name(short), Some(flag));
        assert_eq!(ResponseFlag::from_name(long), Some(flag));
        let one = parse_response_flags(short).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(one.iter().collect::<Vec<_>>(), vec![flag]);
        let one = parse_response_flags(long).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(one.iter().collect::<Vec<_>>(), vec![flag]);
        assert!(looks_like_flags(short) && looks_like_flags(long));
    }
    // All short names joined, in TSV order, round-trip through the Display form.
    let joined: Vec<&str> = rows.iter().filter_map(|r| r.first().copied()).collect();
    let joined = joined.join(",");
    let all = parse_response_flags(&joined).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), rows.len());
    assert_eq!(all.to_string(), joined);
}

#[test]
fn code_details_match_envoy_table() {
    let text = read_oracle("response-code-details.tsv");
    let header = text.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("value\tmeaning"),
        "unexpected header {header:?}"
    );
    let rows = tsv_rows(&text);
    assert!(rows.len() >= 60, "only {} rows", rows.len());
    for row in &rows {
        let [value, meaning, ..] = row.as_slice() else {
            panic!("short row {row:?}");
        };
        let value = if *value == "downstream_local_disconnect({})" {
            "downstream_local_disconnect(on_idle_timeout)"
        } else {
            value
        };
        assert_eq!(detail_meaning(value), Some(*meaning), "meaning of {value}");
        let d = parse_code_details(value).unwrap_or_else(|| panic!("{value} -> None"));
        assert_eq!(
            detail_meaning(d.base),
            Some(*meaning),
            "meaning of base of {value}"
        );
    }
}

#[test]
fn local_close_reasons_parse_inside_downstream_local_disconnect() {
    let text = read_oracle("local-close-reasons.txt");
    let mut n = 0;
    for reason in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let value = format!("downstream_local_disconnect({reason})");
        let d = parse_code_details(&value).unwrap_or_else(|| panic!("{value} -> None"));
        assert_eq!(d.base, "downstream_local_disconnect", "{value}");
        assert_eq!(d.arg, Some(reason), "{value}");
        assert!(detail_meaning(&value).is_some(), "{value}");
        n += 1;
    }
    assert!(n >= 10, "only {n} reasons in local-close-reasons.txt");
}

const SEEDS: &[&str] = &[
    "UF,URX",
    "UpstreamConnectionFailure,UpstreamRetryLimitExceeded",
    "-",
    "upstream_reset_before_response_started{connection_failure,TLS_error:_268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED}",
    "upstream_reset_before_response_started{remote_connection_failure,delayed_connect_error:_Connection_refused}",
    "upstream_reset_after_response_started{remote_reset}",
    "rbac_access_denied_matched_policy[ns[foo]-policy[deny-path-headers]-rule[0]]",
    "downstream_local_disconnect(on_idle_timeout)",
    "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end",
    "TLS_error:|33554536:system library:OPENSSL_internal:Connection reset by peer:TLS_error_end",
    "delayed connect error: 111",
    "outbound|9080|v1|reviews.default.svc.cluster.local;",
    "inbound-vip|9080|http|details.bookinfo.svc.cluster.local",
    "outbound_.80_._.knative-local-gateway.istio-system.svc.cluster.local",
    "InboundPassthroughClusterIpv4",
    "10.135.0.43:39352",
    "[2001:db8::1]:8080",
    "envoy://connect_originate/10.244.0.32:9080",
    "tcp://10.0.2.1:80",
    "unix:/var/run/envoy.sock",
    "outbound|80||héllo.ü",
    "ns[ü]-policy[é]-rule[1]",
];

/// Runs one input through every public parser and uses the results.
fn exercise(s: &str) -> usize {
    let mut n = 0;
    match parse_response_flags(s) {
        Ok(f) => n += f.to_string().len() + f.long_names().to_string().len() + f.len(),
        Err(e) => n += e.to_string().len(),
    }
    n += usize::from(looks_like_flags(s));
    n += ResponseFlag::from_name(s).map_or(0, |f| f.meaning().len());
    if let Some(d) = parse_code_details(s) {
        n += d.base.len() + d.arg.map_or(0, str::len) + d.reset_reason.map_or(0, str::len);
        n += d
            .transport_failure
            .and_then(|t| t.explain())
            .map_or(0, str::len);
        n += usize::from(d.rbac_policy.is_some());
    }
    n += detail_meaning(s).map_or(0, str::len);
    if let Some(t) = parse_transport_failure(s) {
        n += t.explain().map_or(0, str::len) + t.library.map_or(0, str::len);
    }
    n += usize::from(matches!(
        parse_rbac_policy(s),
        meshtrace_parsers::details::RbacPolicy::Policy { .. }
    ));
    if let Some(c) = parse_cluster_name(s) {
        n += c.to_string().len() + c.host().map_or(0, str::len);
        n += usize::from(c.port().is_some()) + usize::from(c.is_inbound());
    }
    n += parse_istio_sni(s).map_or(0, |(_, p, sub, h)| usize::from(p) + sub.len() + h.len());
    if let Some(a) = parse_address(s) {
        n += a.to_string().len() + usize::from(a.ip().is_some());
        n += a.port().map_or(0, usize::from) + usize::from(a.socket().is_some());
    }
    n
}

#[test]
fn no_panic_on_prefixes_and_mutations() {
    let mut total = 0usize;
    let mut inputs = 0usize;
    let mut buf = Vec::new();
    for seed in SEEDS {
        // Every prefix and suffix at a char boundary.
        for (i, _) in seed
            .char_indices()
            .chain(std::iter::once((seed.len(), ' ')))
        {
            total += exercise(seed.get(..i).unwrap_or_default());
            total += exercise(seed.get(i..).unwrap_or_default());
            inputs += 2;
        }
        // Every single-byte replacement and deletion that stays valid UTF-8.
        let bytes = seed.as_bytes();
        for pos in 0..bytes.len() {
            for b in 0..=255u8 {
                buf.clear();
                buf.extend_from_slice(bytes);
                buf[pos] = b;
                if let Ok(s) = std::str::from_utf8(&buf) {
                    total += exercise(s);
                    inputs += 1;
                }
            }
            buf.clear();
            buf.extend_from_slice(bytes);
            buf.remove(pos);
            if let Ok(s) = std::str::from_utf8(&buf) {
                total += exercise(s);
                inputs += 1;
            }
        }
    }
    assert!(inputs > 10_000, "only {inputs} inputs");
    assert!(total > 0);
}

#[test]
fn no_panic_on_garbage() {
    let long_digits = "9".repeat(100);
    let deep = "[".repeat(1000) + &"]".repeat(999);
    let garbage = [
        "",
        " ",
        "-",
        "|||||",
        "outbound|99999||x",
        "[",
        "]",
        "{",
        "(",
        "envoy://",
        "tcp://",
        "unix:",
        "TLS_error:",
        "TLS_error:|",
        ":TLS_error_end",
        "_._._.",
        ",,,",
        "\u{0}",
        "\u{feff}UF",
        "ns[",
        "é",
        "日本語,UF",
        long_digits.as_str(),
        deep.as_str(),
    ];
    for g in garbage {
        exercise(g);
    }
}
