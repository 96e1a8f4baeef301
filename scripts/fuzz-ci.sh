#!/usr/bin/env bash
# Run every cargo-fuzz target of meshtrace-parsers for a short, fixed time; fail on any crash.
#
# Works on the stable toolchain: cargo-fuzz passes nightly-only `-Z` flags to rustc, which
# RUSTC_BOOTSTRAP=1 allows on stable. The parsers contain no `unsafe`, so the fuzzers are built
# without a sanitizer (`--sanitizer none`, i.e. plain panics, with debug assertions and overflow
# checks on), which also avoids needing a sanitizer runtime.
#
# Environment:
#   FUZZ_SECONDS      seconds per target (default 20)
#   FUZZ_TARGETS      space-separated targets to run (default: all of `cargo fuzz list`)
#   FUZZ_SANITIZER    sanitizer passed to cargo fuzz (default none; `address` works too)
#   CARGO_TARGET_DIR  if set, fuzz builds go to $CARGO_TARGET_DIR/fuzz (else fuzz/target)
#
# Prints one line per target: `fuzz <target>: <runs> runs in <s> s, ok` (or CRASH with the
# artifact path). Exits 1 if any target crashed or failed to build, 0 otherwise. New corpus
# entries land in fuzz/corpus/<target>/ (git ignores all but seed-* files); crash inputs land in
# fuzz/artifacts/<target>/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"

seconds="${FUZZ_SECONDS:-20}"
sanitizer="${FUZZ_SANITIZER:-none}"
export RUSTC_BOOTSTRAP=1

target_dir_args=()
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    target_dir_args=(--target-dir "$CARGO_TARGET_DIR/fuzz")
    # cargo-fuzz computes the binary path from --target-dir; keep cargo's own env out of it.
    unset CARGO_TARGET_DIR
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked || cargo install cargo-fuzz
fi

if [[ -n "${FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo fuzz list)
fi
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "fuzz: no fuzz targets found" >&2
    exit 1
fi

# Build everything first, so a build failure is not mistaken for a crash.
if ! cargo fuzz build --sanitizer "$sanitizer" "${target_dir_args[@]}" >&2; then
    echo "fuzz: build failed" >&2
    exit 1
fi

log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT
failed=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="$log_dir/$t.log"
    status=0
    cargo fuzz run --sanitizer "$sanitizer" "${target_dir_args[@]}" "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    runs="$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$log" | tail -n 1)"
    if [[ -z "$runs" ]]; then
        runs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1 runs/p' "$log" | tail -n 1)"
    fi
    if [[ $status -eq 0 ]]; then
        echo "fuzz $t: ${runs:-? runs}, ok"
    else
        failed=1
        artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
        echo "fuzz $t: ${runs:-? runs}, CRASH (exit $status)${artifact:+, reproducer: ${artifact#"$root/"}}"
        # Show what happened: the panic (location and message), libFuzzer's summary, the input.
        if ! grep -E -A1 "panicked at" "$log" >&2; then
            tail -n 40 "$log" >&2
        fi
        grep -E "SUMMARY|Test unit written|^Base64" "$log" | head -n 5 >&2 || true
    fi
done
exit "$failed"
