//! The output sanitiser's throughput on `explain -o json`-shaped output (one record per line,
//! about 1.3 KB each, the odd line with a secret or a control character): every byte meshtrace
//! prints goes through it, so it must stay far faster than the output it carries.

use std::hint::black_box;
use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use meshtrace::report::safe::{Sanitizer, text};

/// About 16 MiB of JSON lines like the `records` of `explain -o json`.
fn document() -> Vec<u8> {
    let mut doc = Vec::with_capacity(17 << 20);
    let mut n = 0u64;
    while doc.len() < 16 << 20 {
        n += 1;
        let path = match n % 500 {
            0 => "/v1/models/m:predict?access_token=abcdef123456".to_string(),
            1 => "/v1/models/m:predict\u{1b}[2J".to_string(),
            _ => format!("/v2/models/test/infer/{n}"),
        };
        write!(
            doc,
            ",\n    {{\"line\":{n},\"input\":\"/tmp/logs/istio-proxy.log\",\"format\":\"istio-default\",\"fields\":{{\"start_time\":\"2024-06-03T09:00:00.007Z\",\"method\":\"POST\",\"path\":\"{path}\",\"protocol\":\"HTTP/1.1\",\"response_code\":200,\"response_flags\":[],\"response_code_details\":{{\"raw\":\"via_upstream\",\"base\":\"via_upstream\"}},\"connection_termination_details\":null,\"upstream_transport_failure_reason\":null,\"bytes_received\":3128,\"bytes_sent\":1153,\"duration\":648,\"upstream_service_time\":647,\"x_forwarded_for\":[\"10.134.2.20\",\"10.135.0.43\",\"127.0.0.6\"],\"user_agent\":\"python-requests/2.31.0\",\"request_id\":\"53fcd651-3d02-4efe-825e-c07a99506761\",\"authority\":\"172.31.58.48:80\",\"upstream_host\":\"10.133.2.13:8012\",\"upstream_cluster\":{{\"raw\":\"inbound|8012||\",\"name\":\"inbound|8012||\",\"direction\":\"inbound\",\"port\":8012,\"subset\":null,\"host\":null}},\"upstream_local_address\":\"127.0.0.6:38864\",\"downstream_local_address\":\"10.133.2.13:8012\",\"downstream_remote_address\":\"127.0.0.6:0\",\"requested_server_name\":\"outbound_.80_._.test-predictor-00001-private.aiproject.svc.cluster.local\",\"route_name\":\"default\"}}}}"
        )
        .unwrap();
    }
    doc
}

fn bench(c: &mut Criterion) {
    let doc = document();
    let mut g = c.benchmark_group("sanitiser");
    g.throughput(Throughput::Bytes(doc.len() as u64));
    g.sample_size(10);
    g.bench_function("explain_json_lines_64k_writes", |b| {
        let mut out = Vec::with_capacity(doc.len() + (1 << 20));
        b.iter(|| {
            out.clear();
            let mut w = Sanitizer::new(&mut out);
            for chunk in doc.chunks(1 << 16) {
                w.write_all(chunk).unwrap();
            }
            w.flush().unwrap();
            drop(w);
            black_box(out.len())
        });
    });
    // What the writer did before it had a shortcut for lines that need no change (every
    // line through the masking and escaping functions), for comparison.
    g.bench_function("full_path_64k_writes", |b| {
        let mut out = Vec::with_capacity(doc.len() + (1 << 20));
        b.iter(|| {
            out.clear();
            let mut pending: Vec<u8> = Vec::new();
            for chunk in doc.chunks(1 << 16) {
                pending.extend_from_slice(chunk);
                if let Some(nl) = pending.iter().rposition(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=nl).collect();
                    let s = String::from_utf8_lossy(&line);
                    let masked = meshtrace::redact::mask_text(&s);
                    out.extend_from_slice(text(&masked).as_bytes());
                }
            }
            let s = String::from_utf8_lossy(&pending);
            out.extend_from_slice(text(&meshtrace::redact::mask_text(&s)).as_bytes());
            black_box(out.len())
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
