//! Parse time of a large real config dump (the legacy productpage sidecar dump, ~400 KB).

use criterion::{Criterion, criterion_group, criterion_main};

use meshtrace_parsers::configdump::ConfigDump;

fn bench(c: &mut Criterion) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/peer/istio/legacy-2020-285c0509/istioctl/cmd/testdata/authz/productpage_config_dump.json"
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("{path} missing: benchmark skipped");
        return;
    };
    c.bench_function("configdump_productpage_400k", |b| {
        b.iter(|| ConfigDump::parse(std::hint::black_box(&text)).map(|d| d.clusters.len()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
