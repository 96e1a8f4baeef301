//! Criterion benchmarks of the per-line hot paths of `meshtrace-parsers`, on generated lines.
//!
//! Lines are built here by a small deterministic generator (no fixture files): a mix of 200s,
//! 404s, `503 UF,URX` TLS connection failures, `403` RBAC denials and TCP `"- - -" 0` records
//! over inbound and outbound clusters. HTTP lines are padded to 300–600 bytes in Istio 1.23
//! form (TCP lines are ~240–300); each request is rendered through every built-in format
//! string, so each format is measured on its own wire shape. Groups:
//!
//! * `auto_text` — `LineParser::auto().parse` on Istio 1.23 text lines (the hot path), and on
//!   a mix of Istio 1.23 and 1.1 lines (the last-format fast path missing every other line);
//! * `builtin_match` — each built-in `TextFormat::match_line` on lines of its own format;
//! * `auto_json` — `LineParser::auto().parse` on Istio's default JSON encoding, and on the same
//!   lines with 12 keys it does not know (kept by name);
//! * `parse_typed` — parse plus the typed accessors a diagnosis reads;
//! * `assembler` — `Assembler` over a 1000-line buffer with envelopes, noise and a wrapped line.
//!
//! Run with `cargo bench -p meshtrace-parsers`; set `MESHTRACE_BENCH_DUMP=1` to print a few
//! generated lines and their length range first.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use meshtrace_parsers::builtins::{BUILTIN_TEXT, ISTIO_JSON_KEYS};
use meshtrace_parsers::format::{MatchOutcome, Segment};
use meshtrace_parsers::{Assembler, Event, LineOutcome, LineParser, Slot, TextFormat};

/// Lines per measured batch (one iteration parses the whole batch).
const BATCH: usize = 256;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize]))
            .collect()
    }
    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(4),
            self.hex(4),
            self.hex(12)
        )
    }
    fn ip(&mut self) -> String {
        format!("10.244.{}.{}", self.below(4), 2 + self.below(250))
    }
}

/// Field values of one request, indexed by [`Slot`].
struct Request {
    values: [String; Slot::COUNT],
}

impl Request {
    fn get(&self, slot: Slot) -> &str {
        &self.values[slot as usize]
    }
}

const SERVICES: &[&str] = &[
    "bert-emotion-model-predictor-00001.default.svc.cluster.local",
    "sklearn-iris-predictor.kserve-test.svc.cluster.local",
    "knative-local-gateway.istio-system.svc.cluster.local",
    "reviews.bookinfo.svc.cluster.local",
    "llama-3-8b-instruct.models.svc.cluster.local",
];
const PATHS: &[&str] = &[
    "/v1/models/bert-emotion-model:predict",
    "/v2/models/sklearn-iris/infer",
    "/openai/v1/chat/completions",
    "/productpage",
    "/healthz/ready",
];
const AGENTS: &[&str] = &[
    "curl/8.4.0",
    "Go-http-client/1.1",
    "python-requests/2.31.0",
    "grpc-go/1.62.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
];
const TLS_FAILURE: &str =
    "TLS_error:_268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED";

fn request(rng: &mut Rng, n: u64) -> Request {
    let svc = rng.pick(SERVICES);
    let port = *[80u16, 8080, 8012, 9080]
        .get(rng.below(4) as usize)
        .unwrap_or(&80);
    let inbound = rng.below(3) == 0;
    let cluster = if inbound {
        format!("inbound|{port}||")
    } else {
        format!("outbound|{port}||{svc}")
    };
    let pod = rng.ip();
    let client = rng.ip();
    let ms = 725 + n * 37;
    let start = format!(
        "2024-04-25T20:{:02}:{:02}.{:03}Z",
        21 + (ms / 60_000) % 30,
        (ms / 1000) % 60,
        ms % 1000
    );
    let mut v: [String; Slot::COUNT] = std::array::from_fn(|_| "-".to_string());
    let mut set = |s: Slot, x: String| v[s as usize] = x;
    set(Slot::StartTime, start);
    set(
        Slot::Method,
        rng.pick(&["GET", "POST", "POST", "PUT"]).into(),
    );
    set(Slot::Path, rng.pick(PATHS).into());
    set(
        Slot::Protocol,
        rng.pick(&["HTTP/1.1", "HTTP/2", "HTTP/1.1"]).into(),
    );
    set(Slot::BytesReceived, rng.below(4000).to_string());
    set(Slot::BytesSent, rng.below(20_000).to_string());
    let dur = rng.below(900);
    set(Slot::Duration, dur.to_string());
    set(Slot::UpstreamServiceTime, dur.saturating_sub(1).to_string());
    set(Slot::XForwardedFor, client.clone());
    set(Slot::UserAgent, rng.pick(AGENTS).into());
    set(Slot::RequestId, rng.uuid());
    set(
        Slot::Authority,
        format!("{}.example.com", svc.split('.').next().unwrap_or(svc)),
    );
    set(Slot::UpstreamHost, format!("{pod}:{port}"));
    set(Slot::UpstreamCluster, cluster);
    set(
        Slot::UpstreamLocalAddress,
        format!("{client}:{}", 30000 + rng.below(30000)),
    );
    set(Slot::DownstreamLocalAddress, format!("{pod}:{port}"));
    set(
        Slot::DownstreamRemoteAddress,
        format!("{client}:{}", 30000 + rng.below(30000)),
    );
    if inbound {
        set(
            Slot::RequestedServerName,
            format!("outbound_.{port}_._.{svc}"),
        );
    }
    set(Slot::RouteName, "default".into());
    set(Slot::ResponseCode, "200".into());
    set(Slot::ResponseCodeDetails, "via_upstream".into());
    // Mix: 55% 200, 15% 404, 15% 503 UF,URX (TLS), 10% 403 RBAC, 5% TCP.
    match rng.below(20) {
        0..=10 => {}
        11..=13 => {
            set(Slot::ResponseCode, "404".into());
            if rng.below(2) == 0 {
                set(Slot::ResponseFlags, "NR".into());
                set(Slot::ResponseCodeDetails, "route_not_found".into());
                set(Slot::UpstreamHost, "-".into());
                set(Slot::UpstreamCluster, "-".into());
                set(Slot::UpstreamLocalAddress, "-".into());
                set(Slot::UpstreamServiceTime, "-".into());
            }
        }
        14..=16 => {
            set(Slot::ResponseCode, "503".into());
            set(Slot::ResponseFlags, "UF,URX".into());
            set(
                Slot::ResponseCodeDetails,
                format!(
                    "upstream_reset_before_response_started{{connection_failure,{TLS_FAILURE}}}"
                ),
            );
            set(Slot::UpstreamTransportFailureReason, TLS_FAILURE.into());
            set(Slot::UpstreamServiceTime, "-".into());
            set(Slot::UpstreamLocalAddress, "-".into());
            set(Slot::BytesSent, "190".into());
            set(Slot::UserAgent, "python-requests/2.31.0".into());
            set(Slot::MixerStatus, "-".into());
        }
        17..=18 => {
            set(Slot::ResponseCode, "403".into());
            set(
                Slot::ResponseCodeDetails,
                "rbac_access_denied_matched_policy[none]".into(),
            );
            set(Slot::UpstreamCluster, format!("inbound|{port}||"));
            set(Slot::UpstreamHost, "-".into());
            set(Slot::UpstreamLocalAddress, "-".into());
            set(Slot::UpstreamServiceTime, "-".into());
            set(Slot::BytesSent, "19".into());
        }
        _ => {
            for s in [
                Slot::Method,
                Slot::Path,
                Slot::Protocol,
                Slot::ResponseCodeDetails,
                Slot::UpstreamServiceTime,
                Slot::XForwardedFor,
                Slot::UserAgent,
                Slot::RequestId,
                Slot::Authority,
                Slot::RouteName,
            ] {
                set(s, "-".into());
            }
            set(Slot::ResponseCode, "0".into());
            set(Slot::UpstreamHost, "172.217.161.36:443".into());
            set(Slot::UpstreamCluster, format!("outbound|443||{svc}"));
            set(Slot::DownstreamLocalAddress, "172.217.161.36:443".into());
            if rng.below(2) == 0 {
                set(Slot::ResponseFlags, "UF".into());
                set(Slot::BytesSent, "0".into());
                set(Slot::UpstreamLocalAddress, "-".into());
                set(
                    Slot::UpstreamTransportFailureReason,
                    "delayed_connect_error:_Connection_refused".into(),
                );
            }
            set(Slot::RequestedServerName, svc.into());
        }
    }
    Request { values: v }
}

/// Render `req` through a compiled format, the way Envoy writes it.
fn render(f: &TextFormat, req: &Request) -> String {
    let mut s = String::with_capacity(600);
    for seg in f.segments() {
        match seg {
            Segment::Literal(l) => s.push_str(l),
            Segment::Field(ci) => match f.commands()[*ci].slot {
                Some(slot) => s.push_str(req.get(slot)),
                None => s.push('-'),
            },
        }
    }
    s
}

fn json_escape(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Istio's default JSON keys with the slot each one fills.
fn json_keys() -> Vec<(&'static str, Option<Slot>)> {
    ISTIO_JSON_KEYS
        .iter()
        .map(|(key, op)| {
            let slot = TextFormat::compile("k", &format!("%{op}%"))
                .ok()
                .and_then(|f| f.commands().first().and_then(|c| c.slot));
            (*key, slot)
        })
        .collect()
}

/// Render `req` in Istio's default JSON encoding (numbers typed, unset values `null`).
fn render_json(keys: &[(&str, Option<Slot>)], req: &Request) -> String {
    let mut s = String::with_capacity(900);
    s.push('{');
    for (i, (key, slot)) in keys.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        json_escape(key, &mut s);
        s.push(':');
        let v = slot.map(|sl| req.get(sl)).unwrap_or("-");
        let numeric = matches!(
            slot,
            Some(Slot::ResponseCode | Slot::BytesReceived | Slot::BytesSent | Slot::Duration)
        );
        if v == "-" {
            s.push_str("null");
        } else if numeric {
            s.push_str(v);
        } else {
            json_escape(v, &mut s);
        }
    }
    s.push('}');
    s
}

/// `n` requests whose Istio 1.23 lines are 300–600 bytes: HTTP lines get a `?trace=` query
/// sized to a random target length; TCP lines (no path) come out as they are.
fn requests(seed: u64, n: usize) -> Vec<Request> {
    let mut rng = Rng(seed);
    let istio = builtin("istio-1.23");
    (0..n as u64)
        .map(|i| {
            let mut r = request(&mut rng, i);
            let target = 300 + rng.below(301) as usize;
            let len = render(&istio, &r).len();
            let path = &mut r.values[Slot::Path as usize];
            if path != "-" && len < target {
                let pad = target - len;
                path.push_str("?trace=");
                path.push_str(&rng.hex(pad.saturating_sub(7)));
            }
            r
        })
        .collect()
}

fn builtin(name: &str) -> TextFormat {
    let b = BUILTIN_TEXT
        .iter()
        .find(|b| b.name == name)
        .expect("built-in format exists");
    TextFormat::compile(b.name, b.format).expect("built-in format compiles")
}

fn lines_in(format: &TextFormat, reqs: &[Request]) -> Vec<String> {
    reqs.iter().map(|r| render(format, r)).collect()
}

fn bytes(lines: &[String]) -> u64 {
    lines.iter().map(|l| l.len() as u64 + 1).sum()
}

/// Check every generated line is what the benchmark claims to measure.
fn assert_all_records(parser: &mut LineParser, lines: &[String], what: &str) {
    for l in lines {
        match parser.parse(l) {
            LineOutcome::Record(_) => {}
            other => panic!("{what}: generated line does not parse: {other:?}\n{l}"),
        }
    }
}

fn dump(lines: &[String], what: &str) {
    if std::env::var_os("MESHTRACE_BENCH_DUMP").is_none() {
        return;
    }
    let min = lines.iter().map(String::len).min().unwrap_or(0);
    let max = lines.iter().map(String::len).max().unwrap_or(0);
    let mean = bytes(lines) as usize / lines.len().max(1);
    eprintln!(
        "{what}: {} lines, {min}..{max} bytes, mean {mean}",
        lines.len()
    );
    for l in lines.iter().take(4) {
        eprintln!("  {l}");
    }
}

fn parse_batch(parser: &mut LineParser, lines: &[String]) -> usize {
    let mut n = 0;
    for l in lines {
        if let LineOutcome::Record(r) = parser.parse(black_box(l)) {
            n += r.filled();
        }
    }
    n
}

fn bench_auto_text(c: &mut Criterion) {
    let reqs = requests(0x5eed_0001, BATCH);
    let istio = lines_in(&builtin("istio-1.23"), &reqs);
    let old = lines_in(&builtin("istio-1.1"), &reqs);
    let mixed: Vec<String> = istio
        .iter()
        .zip(&old)
        .enumerate()
        .map(|(i, (a, b))| if i % 2 == 0 { a.clone() } else { b.clone() })
        .collect();
    dump(&istio, "istio-1.23");
    let mut parser = LineParser::auto();
    assert_all_records(&mut parser, &istio, "auto_text");
    assert_all_records(&mut parser, &mixed, "auto_text mixed");

    let mut g = c.benchmark_group("auto_text");
    g.throughput(Throughput::Bytes(bytes(&istio)));
    g.bench_function("istio-1.23", |b| {
        let mut p = LineParser::auto();
        b.iter(|| parse_batch(&mut p, &istio))
    });
    g.throughput(Throughput::Bytes(bytes(&mixed)));
    g.bench_function("mixed-1.23-1.1", |b| {
        let mut p = LineParser::auto();
        b.iter(|| parse_batch(&mut p, &mixed))
    });
    g.finish();
}

fn bench_builtin_match(c: &mut Criterion) {
    let reqs = requests(0x5eed_0002, BATCH);
    let mut g = c.benchmark_group("builtin_match");
    for name in [
        "istio-1.23",
        "istio-1.9",
        "istio-1.8",
        "istio-1.3",
        "istio-1.1",
        "envoy",
    ] {
        let f = builtin(name);
        let lines = lines_in(&f, &reqs);
        dump(&lines, name);
        for l in &lines {
            assert!(
                matches!(f.match_line(l), MatchOutcome::Full(_)),
                "{name}: generated line does not match its own format:\n{l}"
            );
        }
        g.throughput(Throughput::Bytes(bytes(&lines)));
        g.bench_with_input(BenchmarkId::from_parameter(name), &lines, |b, lines| {
            b.iter(|| {
                let mut n = 0usize;
                for l in lines {
                    if let MatchOutcome::Full(r) = f.match_line(black_box(l)) {
                        n += r.filled();
                    }
                }
                n
            })
        });
    }
    g.finish();
}

fn bench_auto_json(c: &mut Criterion) {
    let reqs = requests(0x5eed_0003, BATCH);
    let keys = json_keys();
    let lines: Vec<String> = reqs.iter().map(|r| render_json(&keys, r)).collect();
    dump(&lines, "istio-json");
    let mut parser = LineParser::auto();
    assert_all_records(&mut parser, &lines, "auto_json");
    let mut g = c.benchmark_group("auto_json");
    g.throughput(Throughput::Bytes(bytes(&lines)));
    g.bench_function("istio-json", |b| {
        let mut p = LineParser::auto();
        b.iter(|| parse_batch(&mut p, &lines))
    });
    // The same lines with 12 keys Istio's key set does not have (kept by name, one `Arc<str>`
    // per key): the cost of a custom key set read on auto-detection.
    let extra: Vec<String> = lines
        .iter()
        .map(|l| {
            let keys: Vec<String> = (0..12)
                .map(|i| format!(",\"custom_key_{i}\":\"value {i}\""))
                .collect();
            format!("{}{}}}", &l[..l.len() - 1], keys.concat())
        })
        .collect();
    assert_all_records(&mut parser, &extra, "auto_json+12");
    g.throughput(Throughput::Bytes(bytes(&extra)));
    g.bench_function("istio-json+12-unknown-keys", |b| {
        let mut p = LineParser::auto();
        b.iter(|| parse_batch(&mut p, &extra))
    });
    g.finish();
}

/// The cheap success test `failures` runs on every line before parsing (text and JSON).
fn bench_success_probe(c: &mut Criterion) {
    let reqs = requests(0x5eed_0005, BATCH);
    let text = lines_in(&builtin("istio-1.23"), &reqs);
    let keys = json_keys();
    let json: Vec<String> = reqs.iter().map(|r| render_json(&keys, r)).collect();
    let mut g = c.benchmark_group("success_probe");
    for (name, lines) in [("istio-1.23", &text), ("istio-json", &json)] {
        let mut p = LineParser::auto();
        assert_all_records(&mut p, lines, name);
        g.throughput(Throughput::Bytes(bytes(lines)));
        g.bench_with_input(BenchmarkId::from_parameter(name), lines, |b, lines| {
            b.iter(|| {
                lines
                    .iter()
                    .filter(|l| p.is_plain_success(black_box(l.as_bytes())))
                    .count()
            })
        });
    }
    g.finish();
}

fn bench_parse_typed(c: &mut Criterion) {
    let reqs = requests(0x5eed_0004, BATCH);
    let lines = lines_in(&builtin("istio-1.23"), &reqs);
    let mut g = c.benchmark_group("parse_typed");
    g.throughput(Throughput::Bytes(bytes(&lines)));
    g.bench_function("istio-1.23", |b| {
        let mut p = LineParser::auto();
        b.iter(|| {
            let mut acc = 0u64;
            for l in &lines {
                if let LineOutcome::Record(r) = p.parse(black_box(l)) {
                    acc += u64::from(r.status().unwrap_or(0));
                    acc += u64::from(r.flags().bits());
                    if let Some(d) = r.details() {
                        acc += d.base.len() as u64;
                        acc += u64::from(d.transport_failure.is_some());
                    }
                    if let Some(cl) = r.upstream_cluster() {
                        acc += u64::from(cl.port().unwrap_or(0));
                    }
                    if let Some(h) = r.upstream_host() {
                        acc += u64::from(h.port().unwrap_or(0));
                    }
                    if let Some(t) = r.start_time() {
                        acc = acc.wrapping_add(t.timestamp_millis() as u64);
                    }
                }
            }
            acc
        })
    });
    g.finish();
}

/// A 1000-line buffer as `kubectl logs --timestamps` / a pasted ticket gives it: mostly plain
/// Istio 1.23 lines, some behind a kubectl timestamp or a CRI envelope, agent log noise, and one
/// record wrapped over two physical lines.
fn assembler_buffer() -> String {
    let reqs = requests(0x5eed_0005, 1000);
    let f = builtin("istio-1.23");
    let mut buf = String::with_capacity(1000 * 520);
    for (i, r) in reqs.iter().enumerate() {
        let line = render(&f, r);
        match i % 50 {
            7 => buf.push_str(
                "2024-04-25T20:21:43.725930Z\tinfo\txdsproxy\tconnected to upstream XDS server: istiod.istio-system.svc:15012\n",
            ),
            13..=15 => {
                buf.push_str("2025-01-30T12:10:13.682034460Z ");
                buf.push_str(&line);
                buf.push('\n');
            }
            21 => {
                buf.push_str("2025-01-30T12:10:13.682034460Z stdout F ");
                buf.push_str(&line);
                buf.push('\n');
            }
            33 => {
                let cut = line.find(" \"-\" ").map_or(line.len() / 2, |p| p + 1);
                buf.push_str(&line[..cut]);
                buf.push_str("\n    ");
                buf.push_str(&line[cut..]);
                buf.push('\n');
            }
            _ => {
                buf.push_str(&line);
                buf.push('\n');
            }
        }
    }
    buf
}

fn bench_assembler(c: &mut Criterion) {
    let buf = assembler_buffer();
    let run = |buf: &str| {
        let mut a = Assembler::new(LineParser::auto(), true);
        let (mut records, mut other) = (0usize, 0usize);
        let mut sink = |e: Event<'_>| match e {
            Event::Record(_) => records += 1,
            _ => other += 1,
        };
        for (i, l) in buf.lines().enumerate() {
            a.push(i as u64 + 1, black_box(l), &mut sink);
        }
        a.finish(&mut sink);
        (records, other)
    };
    let (records, other) = run(&buf);
    assert_eq!(
        (records, other),
        (1000 - 20, 20),
        "assembler buffer: unexpected event counts"
    );
    let mut g = c.benchmark_group("assembler");
    g.throughput(Throughput::Bytes(buf.len() as u64));
    g.bench_function("1000-lines", |b| b.iter(|| run(&buf)));
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_auto_text, bench_builtin_match, bench_auto_json, bench_success_probe, bench_parse_typed, bench_assembler
}
criterion_main!(benches);
