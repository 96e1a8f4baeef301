//! Deterministic generator of realistic Istio access logs for `scripts/bench.sh` and for
//! meshtrace's out-of-order tests.
//!
//! ```text
//! genlog --format text|json --size 256M --out FILE [--seed N] [--trace-id UUID]
//! genlog --envoy --format text|json --size 512M (--out FILE | --bundle DIR)
//!        [--fail-rate 6.5] [--proxies-per-file N] [--seed N] [--trace-id UUID]
//! ```
//!
//! Simulates the RHOAI/KServe serving path of the example bundles — ingress gateway (8443) →
//! knative-local-gateway (8081) → activator inbound (8012) → activator outbound (Service VIP
//! 172.31.58.48:80) → predictor inbound (8012) — with consistent addresses (one hop's upstream
//! local address is the next hop's downstream remote address) and nested times. The mix follows
//! the example bundles and `testdata/explain/`: mostly 200s, 400 from the model, 403 RBAC at the
//! local gateway, 404 `NR route_not_found`, 429 `RL local_rate_limited`, 503 `UF,URX` with TLS
//! and connect-error details, 503 `UH`, `0 NR filter_chain_not_found` TCP lines,
//! `kube-probe/1.28` and `Knative-Activator-Probe` probes, and a few pilot-agent lines. Formats:
//! Istio ≥1.23 default TEXT, or Istio's JSON encoding (keys of
//! `default-access-log-json-format.json`, sorted as Envoy writes them).
//!
//! Without `--envoy`: one log in perfect time order, innermost hop first; prints
//! `trace_id=… lines=… bytes=…`. With `--envoy` (see `gen.rs`): each proxy's log in the order
//! Envoy writes it (a line when the request ends, stamped with its start; one-second worker
//! flushes; streams, TCP connections and slow errors lasting up to ten minutes), `--fail-rate`
//! percent of client requests failing. `--out FILE` concatenates the proxies' logs,
//! `--proxies-per-file` at a time (default all five: one file; further files are `FILE.2`, …);
//! `--bundle DIR` writes a bundle's `logs/<namespace>/<pod>/istio-proxy.log` (one proxy per file
//! unless `--proxies-per-file` says more). The exact counts written (client requests, failed per
//! cause, probes, lines) go to `FILE.truth.json` / `DIR.truth.json` and to stdout. Same
//! arguments, same bytes.

mod r#gen;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use r#gen::{DEFAULT_TRACE_ID, Envoy, PROXIES, write_ordered};

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let m = match s[i..]
                .to_ascii_uppercase()
                .trim_end_matches("IB")
                .trim_end_matches('B')
            {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                _ => return None,
            };
            (&s[..i], m)
        }
        None => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: genlog --format text|json --size N[K|M|G] --out FILE [--seed N] [--trace-id UUID]\n       genlog --envoy --format text|json --size N[K|M|G] (--out FILE | --bundle DIR) [--fail-rate PERCENT] [--proxies-per-file N] [--seed N] [--trace-id UUID]"
    );
    ExitCode::from(2)
}

fn fail(what: &str, e: std::io::Error) -> ExitCode {
    eprintln!("genlog: {what}: {e}");
    ExitCode::from(2)
}

/// Where the Envoy-like logs go: the file of each group of `per_file` proxies.
fn destinations(out: Option<&str>, bundle: Option<&str>, per_file: usize) -> Vec<PathBuf> {
    let groups = PROXIES.len().div_ceil(per_file);
    (0..groups)
        .map(|g| match (out, bundle) {
            (Some(f), _) if g == 0 => PathBuf::from(f),
            (Some(f), _) => PathBuf::from(format!("{f}.{}", g + 1)),
            (None, Some(d)) => {
                let (ns, pod) = PROXIES[g * per_file];
                Path::new(d)
                    .join("logs")
                    .join(ns)
                    .join(pod)
                    .join("istio-proxy.log")
            }
            (None, None) => unreachable!("checked by the caller"),
        })
        .collect()
}

/// The Envoy-like mode: each proxy into a part file, then the parts concatenated per group.
fn envoy(opts: &Envoy, dests: &[PathBuf], per_file: usize, truth_file: &Path) -> ExitCode {
    let part = |p: usize| {
        let d = &dests[p / per_file];
        PathBuf::from(format!("{}.proxy{p}.part", d.display()))
    };
    let mut writers = Vec::new();
    for p in 0..PROXIES.len() {
        let path = part(p);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Err(e) = std::fs::create_dir_all(dir)
        {
            return fail(&format!("cannot create {}", dir.display()), e);
        }
        match File::create(&path) {
            Ok(f) => writers.push(BufWriter::with_capacity(1 << 20, f)),
            Err(e) => return fail(&format!("cannot create {}", path.display()), e),
        }
    }
    let truth = match opts.run(&mut |p, bytes| writers[p].write_all(bytes)) {
        Ok(t) => t,
        Err(e) => return fail("writing", e),
    };
    for w in &mut writers {
        if let Err(e) = w.flush() {
            return fail("writing", e);
        }
    }
    drop(writers);
    for (g, d) in dests.iter().enumerate() {
        let assemble = || -> std::io::Result<()> {
            let mut w = BufWriter::with_capacity(1 << 20, File::create(d)?);
            for p in g * per_file..((g + 1) * per_file).min(PROXIES.len()) {
                std::io::copy(&mut File::open(part(p))?, &mut w)?;
                std::fs::remove_file(part(p))?;
            }
            w.flush()
        };
        if let Err(e) = assemble() {
            return fail(&format!("writing {}", d.display()), e);
        }
    }
    let json = truth.to_json();
    if let Err(e) = std::fs::write(truth_file, format!("{json}\n")) {
        return fail(&format!("writing {}", truth_file.display()), e);
    }
    println!("{json}");
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut format, mut size, mut out, mut bundle, mut seed, mut trace_id) =
        (None, None, None, None, 7u64, DEFAULT_TRACE_ID.to_string());
    let (mut envoy_mode, mut fail_rate, mut per_file) = (false, 6.5f64, None);
    while let Some(a) = args.next() {
        if a == "--envoy" {
            envoy_mode = true;
            continue;
        }
        let Some(v) = args.next() else {
            return usage();
        };
        match a.as_str() {
            "--format" => format = Some(v),
            "--size" => size = parse_size(&v),
            "--out" => out = Some(v),
            "--bundle" => bundle = Some(v),
            "--seed" => match v.parse() {
                Ok(s) => seed = s,
                Err(_) => return usage(),
            },
            "--trace-id" => trace_id = v,
            "--fail-rate" => match v.parse::<f64>() {
                Ok(r) if (0.0..=100.0).contains(&r) => fail_rate = r,
                _ => return usage(),
            },
            "--proxies-per-file" => match v.parse::<usize>() {
                Ok(n) if n >= 1 => per_file = Some(n),
                _ => return usage(),
            },
            _ => return usage(),
        }
    }
    let Some(as_json) = format.as_deref().and_then(|f| match f {
        "text" => Some(false),
        "json" => Some(true),
        _ => None,
    }) else {
        return usage();
    };
    let Some(size) = size else {
        return usage();
    };
    if envoy_mode {
        if out.is_some() == bundle.is_some() {
            return usage();
        }
        let per_file = per_file
            .unwrap_or(if out.is_some() { PROXIES.len() } else { 1 })
            .min(PROXIES.len());
        let dests = destinations(out.as_deref(), bundle.as_deref(), per_file);
        let truth_file = match (&out, &bundle) {
            (Some(f), _) => PathBuf::from(format!("{f}.truth.json")),
            (_, Some(d)) => PathBuf::from(format!("{}.truth.json", d.trim_end_matches('/'))),
            _ => unreachable!("checked above"),
        };
        let opts = Envoy {
            seed,
            size,
            json: as_json,
            fail_rate,
            trace_id: Some(trace_id),
        };
        return envoy(&opts, &dests, per_file, &truth_file);
    }
    if bundle.is_some() || per_file.is_some() {
        return usage();
    }
    let Some(out) = out else {
        return usage();
    };
    let file = match File::create(&out) {
        Ok(f) => f,
        Err(e) => return fail(&format!("cannot create {out}"), e),
    };
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let (lines, written, traced) = match write_ordered(seed, size, as_json, &trace_id, &mut w) {
        Ok(r) => r,
        Err(e) => return fail(&format!("writing {out}"), e),
    };
    if let Err(e) = w.flush() {
        return fail(&format!("writing {out}"), e);
    }
    println!(
        "trace_id={} lines={lines} bytes={written}",
        if traced { trace_id.as_str() } else { "-" }
    );
    ExitCode::SUCCESS
}
