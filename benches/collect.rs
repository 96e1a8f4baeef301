//! Collecting from 50 fake pods with 100 ms of latency added to every API call: well under the
//! 50 × 100 ms a one-call-at-a-time collector needs for the logs alone (and 2 × that with the
//! config dumps), because calls run concurrently (`--concurrency`, default 10).

#[path = "../tests/it/fake_apiserver/mod.rs"]
mod fake_apiserver;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use fake_apiserver::{FakeApiServer, FakeConfig, synthetic_bundle};
use meshtrace::live::{LiveOptions, collect};

const PODS: usize = 50;
const LATENCY: Duration = Duration::from_millis(100);

fn bench(c: &mut Criterion) {
    let src = tempfile::tempdir().expect("tempdir");
    synthetic_bundle(src.path(), PODS, 200);
    let fake = FakeApiServer::start(
        src.path(),
        FakeConfig {
            latency: LATENCY,
            ..FakeConfig::default()
        },
    );
    let opts = LiveOptions {
        kubeconfig: Some(fake.kubeconfig().to_path_buf()),
        namespaces: vec!["bench".into()],
        ..LiveOptions::default()
    };
    // One measured run, printed for the record.
    let out = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    let s = collect(&opts, &out.path().join("b")).expect("collect");
    let took = t.elapsed();
    let calls = fake.requests().len();
    println!(
        "collect: {} pods, {} logs, {} config dumps, {calls} API calls at {} ms each: {:.2} s \
         (one call at a time: {:.1} s; 50 x 100 ms = 5.0 s for the logs alone)",
        s.pods_selected,
        s.logs,
        s.config_dumps,
        LATENCY.as_millis(),
        took.as_secs_f64(),
        calls as f64 * LATENCY.as_secs_f64()
    );
    let mut g = c.benchmark_group("collect");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(25));
    g.bench_function("50_pods_100ms_per_call", |b| {
        b.iter(|| {
            let out = tempfile::tempdir().expect("tempdir");
            collect(&opts, &out.path().join("b")).expect("collect")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
