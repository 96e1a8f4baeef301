//! Fuzz target: arbitrary bytes as an evidence-bundle archive given to `Bundle::open`.
//!
//! The first byte picks the container: 0 → the rest as a `.tar`; 1 → the rest as a `.tar.gz`
//! (raw, so mostly the gzip header and deflate decoder are exercised); 2 → the rest gzip-
//! compressed here and opened as a `.tar.gz` (so the tar reader and the bundle layout are reached
//! through the decoder); 3 and 4 → the rest as a folder bundle's YAML resource file or
//! `pods.json` (the budgeted document parser: YAML aliases, deep nesting, damaged JSON lists).
//! Everything the bundle exposes is then read: every log and config dump source, objects, the
//! manifest's log formats.
#![no_main]

use std::hint::black_box;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use meshtrace::source::bundle::Bundle;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("meshtrace-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (name, bytes) = match mode % 5 {
        0 => ("bundle.tar", rest.to_vec()),
        1 => ("bundle.tar.gz", rest.to_vec()),
        m @ (3 | 4) => {
            let folder = dir().join("folder");
            let _ = std::fs::remove_dir_all(&folder);
            let log = folder.join("logs/ns/pod/istio-proxy.log");
            std::fs::create_dir_all(log.parent().expect("parent")).expect("folder bundle");
            std::fs::write(&log, b"not an access log\n").expect("write log");
            let res = match m {
                3 => folder.join("resources/objects.yaml"),
                _ => folder.join("pods.json"),
            };
            std::fs::create_dir_all(res.parent().expect("parent")).expect("folder bundle");
            std::fs::write(&res, rest).expect("write resource");
            read_all(&folder);
            return;
        }
        _ => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(rest).expect("gzip in memory");
            ("bundle.tar.gz", gz.finish().expect("gzip in memory"))
        }
    };
    let path = dir().join(name);
    std::fs::write(&path, &bytes).expect("write fuzz input");
    read_all(&path);
});

/// Open a bundle and read everything it exposes.
fn read_all(path: &std::path::Path) {
    match Bundle::open(path) {
        Ok(b) => {
            black_box((&b.root, &b.problems, b.manifest.is_some()));
            for o in &b.objects {
                black_box((o.reference(), o.spec(), o.label("app"), o.annotation("x")));
            }
            black_box(b.of_kind("Pod").count());
            for l in &b.logs {
                let key = format!("{}/{}/{}", l.namespace, l.pod, l.container);
                black_box(b.manifest.as_ref().map(|m| m.log_formats.get(&key)));
                black_box((&l.namespace, &l.pod, &l.container, l.previous, &l.path));
                let mut buf = Vec::new();
                if let Ok(mut r) = l.source.open() {
                    let _ = r.read_to_end(&mut buf);
                }
                black_box(buf.len());
            }
            for c in &b.config_dumps {
                let mut buf = Vec::new();
                if let Ok(mut r) = c.source.open() {
                    let _ = r.read_to_end(&mut buf);
                }
                black_box((&c.namespace, &c.pod, &c.path, buf.len()));
            }
        }
        Err(e) => {
            black_box(e.to_string());
        }
    }
}
