#!/usr/bin/env bash
# Whole-process benchmark of meshtrace against rg -F, grep -F and awk on generated Istio logs.
#
#   scripts/bench.sh [--size 256M|100M|1G] [--runs 5] [--formats "text json"] [--no-memory]
#                    [--memory-sizes "10M 100M 1G"] [--commands "trace failures explain"]
#                    [--timeout 600] [--max-vmem-gib 8] [--no-build]
#   scripts/bench.sh --envoy [--size 512M] [--fail-rates "0.5 6.5 20"] [--scaling-sizes "10M 2G"]
#                    [--scaling-runs 1] [--commands "trace failures explain"]
#                    [--max-trace-ratio 4] [--max-failures-ratio 25]
#
# 1. Builds meshtrace (cargo build --release) and the log generator scripts/genlog.
# 2. Generates, once per size and format, a deterministic Istio 1.23 TEXT log and an Istio JSON
#    log (the status/flag mix of the example bundles, probes, TCP lines, one known failed request
#    near the middle) in ${BENCH_DIR:-target/bench}; files are reused by later runs.
# 3. With a warm page cache, runs each command --runs times (stdout into a pipe) and prints the
#    median wall time of the whole process, its ratio to `rg -F <id>`, throughput (MB = 10^6
#    bytes) and peak RSS (/usr/bin/time -v), plus meshtrace's exit code and, as a sanity check,
#    the trace verdict.
# 4. Unless --no-memory: peak RSS of `failures`, `trace` and `explain -o json` at 10 MB, 100 MB
#    and 1 GiB of text (does memory stay flat as the input grows?).
#
# 5. With --envoy, instead of 2–4: logs as Envoy writes them (`genlog --envoy`: a line when the
#    request ends stamped with its start, five proxies' logs one after another in one file, streams
#    lasting minutes) for each --fail-rates percentage; rows for rg -F, trace and failures with
#    the ratio to rg -F measured in the same run, peak RSS, and a check that `failures` counted
#    exactly the failed requests the generator wrote, and `explain -o json` (unless left out of
#    --commands); then, for each format at each of --scaling-sizes (6.5 % failing), rg -F, trace,
#    failures and explain -o json: time (median of --scaling-runs), ratio, MB/s and peak RSS.
#    Ratios taken in one run are robust to other load on the machine; absolute times are not.
# 6. --max-trace-ratio / --max-failures-ratio (with --envoy; the CI's regression check): exit 1
#    when a median ratio to `rg -F` is above the limit or a count check is not exact. Without
#    ripgrep (and no way to install it) the ratio limits are skipped, with a message.
#
# Needs ripgrep, gawk and GNU time: installed with apt-get when missing and running as root;
# otherwise their rows say "absent" (ratios then use grep -F). A command that runs longer than
# --timeout seconds is stopped and reported as such; one slower than 20 s is run once only; every
# command runs under a --max-vmem-gib address-space cap (ulimit -v) so a runaway one fails alone
# instead of taking the machine down.
# Environment: BENCH_DIR (where logs go), MESHTRACE (binary to test, skips the build),
# CARGO_TARGET_DIR (honoured by the build).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

size_arg=256M runs=5 formats="text json" memory=1 memory_sizes="10M 100M 1G" limit=600 build=1
commands="trace failures explain" vmem_gib=8
envoy=0 fail_rates="0.5 6.5 20" scaling_sizes="10M 2G" scaling_runs=1
max_trace_ratio="" max_failures_ratio="" failed_checks=()
trace_id=7e5f3c1a-0b9d-4c2e-9a6f-5d4b3c2a1f00
while [[ $# -gt 0 ]]; do
    case "$1" in
        --size) size_arg="$2"; shift 2 ;;
        --runs) runs="$2"; shift 2 ;;
        --formats) formats="$2"; shift 2 ;;
        --no-memory) memory=0; shift ;;
        --memory-sizes) memory_sizes="$2"; shift 2 ;;
        --timeout) limit="$2"; shift 2 ;;
        --commands) commands="$2"; shift 2 ;;
        --max-vmem-gib) vmem_gib="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        --envoy) envoy=1; shift ;;
        --fail-rates) fail_rates="$2"; shift 2 ;;
        --scaling-sizes) scaling_sizes="$2"; shift 2 ;;
        --scaling-runs) scaling_runs="$2"; shift 2 ;;
        --max-trace-ratio) max_trace_ratio="$2"; shift 2 ;;
        --max-failures-ratio) max_failures_ratio="$2"; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

bench_dir="${BENCH_DIR:-target/bench}"
mkdir -p "$bench_dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

bytes_of() { # 256M → bytes
    local n="${1%[KkMmGg]*}" u="${1#"${1%[KkMmGg]*}"}"
    case "${u^^}" in
        "") echo "$n" ;; K|KB|KIB) echo $((n << 10)) ;; M|MB|MIB) echo $((n << 20)) ;;
        G|GB|GIB) echo $((n << 30)) ;; *) echo "bench: bad size $1" >&2; exit 2 ;;
    esac
}

# --- tools -------------------------------------------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1; }
missing=()
have rg || missing+=(ripgrep)
have gawk || missing+=(gawk)
[[ -x /usr/bin/time ]] || missing+=(time)
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $(id -u) -eq 0 ]] && have apt-get; then
        echo "bench: installing ${missing[*]} with apt-get" >&2
        { apt-get install -y "${missing[@]}" || { apt-get update && apt-get install -y "${missing[@]}"; }; } \
            >"$tmp/apt.log" 2>&1 || { echo "bench: apt-get failed:" >&2; tail -n 5 "$tmp/apt.log" >&2; }
    else
        echo "bench: not installed and cannot install (need root and apt-get): ${missing[*]}" >&2
    fi
fi
if [[ ! -x /usr/bin/time ]]; then
    echo "bench: /usr/bin/time (GNU time) is required for peak RSS; install package 'time'" >&2
    exit 2
fi
awk_cmd=gawk
have gawk || { awk_cmd=awk; echo "bench: gawk ABSENT: the awk row uses $(readlink -f "$(command -v awk)")" >&2; }
have rg || echo "bench: ripgrep ABSENT: no rg row; ratios are to grep -F instead" >&2

# --- builds ------------------------------------------------------------------------------------
target_dir="${CARGO_TARGET_DIR:-target}"
if [[ -n "${MESHTRACE:-}" ]]; then
    mt="$MESHTRACE"
else
    mt="$target_dir/release/meshtrace"
    if [[ $build -eq 1 ]]; then
        echo "bench: cargo build --release" >&2
        cargo build --release --quiet --bin meshtrace
    fi
fi
[[ -x "$mt" ]] || { echo "bench: no meshtrace binary at $mt" >&2; exit 2; }
genlog="$target_dir/genlog/release/genlog"
CARGO_TARGET_DIR="$target_dir/genlog" cargo build --release --quiet \
    --manifest-path scripts/genlog/Cargo.toml

gen() { # gen FORMAT SIZE → path of the (cached) log
    local fmt="$1" bytes f
    bytes="$(bytes_of "$2")"
    f="$bench_dir/istio-$fmt-$bytes.log"
    if [[ ! -s "$f" || "$genlog" -nt "$f" ]]; then
        echo "bench: generating $f" >&2
        "$genlog" --format "$fmt" --size "$bytes" --out "$f.part" --trace-id "$trace_id" >/dev/null
        mv "$f.part" "$f"
    fi
    echo "$f"
}

gen_envoy() { # gen_envoy FORMAT SIZE FAIL_RATE → path of the (cached) Envoy-like log
    local fmt="$1" rate="$3" bytes f
    bytes="$(bytes_of "$2")"
    f="$bench_dir/envoy-$fmt-$rate-$bytes.log"
    if [[ ! -s "$f" || ! -s "$f.truth.json" || "$genlog" -nt "$f" ]]; then
        echo "bench: generating $f" >&2
        "$genlog" --envoy --format "$fmt" --size "$bytes" --fail-rate "$rate" --out "$f.part" \
            --trace-id "$trace_id" >/dev/null
        mv "$f.part.truth.json" "$f.truth.json"
        mv "$f.part" "$f"
    fi
    echo "$f"
}

# --- measurement -------------------------------------------------------------------------------
# measure NAME CMD... : runs CMD (stdout to /dev/null) up to $runs times; sets global
# m_wall (median seconds), m_rss (max KiB over runs), m_rc (exit code), m_note.
measure() {
    local walls=() rss=0 i t0 t1 rc r
    m_note=""
    for ((i = 0; i < runs; i++)); do
        t0=$(date +%s%N)
        rc=0
        # Output goes through a pipe, as to a user's `| less`: with stdout on /dev/null GNU grep
        # stops at the first match (it then behaves like -q), which would flatter it.
        (ulimit -v $((vmem_gib << 20)) && exec /usr/bin/time -v -o "$tmp/time" timeout "$limit" "$@") \
            2>"$tmp/stderr" | cat >/dev/null || rc=$?
        t1=$(date +%s%N)
        if [[ $rc -eq 124 ]]; then
            m_wall="" m_rss="" m_rc=124 m_note="stopped after ${limit} s"
            return
        fi
        if grep -q "memory allocation of .* failed" "$tmp/stderr"; then
            m_wall="" m_rss="" m_rc=$rc m_note="out of memory (${vmem_gib} GiB address-space cap)"
            return
        fi
        walls+=("$(((t1 - t0) / 1000000))")
        r="$(sed -n 's/.*Maximum resident set size (kbytes): \([0-9]*\).*/\1/p' "$tmp/time")"
        ((r > rss)) && rss=$r
        if ((t1 - t0 > 20000000000)); then
            [[ $runs -gt 1 ]] && m_note="1 run (slow)"
            break
        fi
    done
    m_wall="$(printf '%s\n' "${walls[@]}" | sort -n | awk '{a[NR]=$1} END{printf "%.3f", a[int((NR+1)/2)]/1000}')"
    m_rss=$rss m_rc=$rc
}

row() { # row LABEL BYTES BASE CMD...
    local label="$1" bytes="$2" base="$3"
    shift 3
    measure "$@"
    if [[ -z "$m_wall" ]]; then
        printf '%-40s %9s %8s %9s %9s %5s  %s\n' "$label" - - - - "$m_rc" "$m_note"
        return
    fi
    local ratio=- mbs rss_mib
    [[ -n "$base" ]] && ratio="$(awk -v a="$m_wall" -v b="$base" 'BEGIN{printf "%.2fx", a/b}')"
    mbs="$(awk -v s="$m_wall" -v n="$bytes" 'BEGIN{printf "%.0f", (s > 0 ? n/1e6/s : 0)}')"
    rss_mib="$(awk -v k="$m_rss" 'BEGIN{printf "%.1f", k/1024}')"
    printf '%-40s %9s %8s %9s %9s %5s  %s\n' "$label" "$m_wall" "$ratio" "$mbs" "$rss_mib" "$m_rc" \
        "$m_note$(grep -m1 -o 'panicked at.*' "$tmp/stderr" || true)"
}

# check_ratio COMMAND LIMIT WHAT: after `row`, note a failed check when the median ratio to rg -F
# (m_wall / base) is above LIMIT (nothing to check without a limit or without rg).
check_ratio() {
    local cmd="$1" lim="$2" what="$3"
    [[ -z "$lim" ]] && return 0
    if ! have rg; then
        echo "ratio check for $cmd skipped: ripgrep is not installed (ratios to grep -F are not comparable)"
        return 0
    fi
    if [[ -z "$m_wall" ]]; then
        failed_checks+=("$cmd on $what: no time (${m_note:-failed})")
        return 0
    fi
    local ratio
    ratio="$(awk -v a="$m_wall" -v b="$base" 'BEGIN{printf "%.2f", (b > 0 ? a/b : 0)}')"
    if awk -v r="$ratio" -v l="$lim" 'BEGIN{exit !(r > l)}'; then
        failed_checks+=("$cmd on $what: ${ratio}x rg -F, limit ${lim}x")
    else
        echo "ratio check: $cmd ${ratio}x rg -F (limit ${lim}x) ok"
    fi
}

cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "machine: $(nproc) cores, ${cpu:-unknown CPU}, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "meshtrace: $mt ($(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet -- src parsers/src 2>/dev/null || echo ', uncommitted changes')); $(rustc --version)"
echo "tools: rg $(rg --version 2>/dev/null | head -n 1 | cut -d' ' -f2 || true), $(LC_ALL=C grep --version | head -n 1), $awk_cmd"
echo "runs: median of $runs, warm page cache, stdout into a pipe; ratio = time / time of rg -F (grep -F if rg is absent)"

if [[ $envoy -eq 1 ]]; then
    for fmt in $formats; do
        for rate in $fail_rates; do
            f="$(gen_envoy "$fmt" "$size_arg" "$rate")"
            bytes="$(stat -c %s "$f")"
            cat "$f" >/dev/null
            echo
            echo "== Envoy-like $fmt, $rate % failing: $f ($(awk -v n="$bytes" 'BEGIN{printf "%.0f MiB", n/1048576}'), 5 proxies in one file)"
            printf '%-40s %9s %8s %9s %9s %5s  %s\n' command "median s" ratio MB/s "RSS MiB" exit note
            base=""
            if have rg; then
                row "rg -F <id>" "$bytes" "" rg -F "$trace_id" "$f"
                base="$m_wall"
            else
                row "LC_ALL=C grep -F <id>" "$bytes" "" env LC_ALL=C grep -F "$trace_id" "$f"
                base="$m_wall"
            fi
            row "meshtrace trace <id>" "$bytes" "$base" "$mt" trace "$trace_id" "$f"
            check_ratio trace "$max_trace_ratio" "$fmt $rate %"
            row "meshtrace failures" "$bytes" "$base" "$mt" failures "$f"
            check_ratio failures "$max_failures_ratio" "$fmt $rate %"
            if [[ " $commands " == *" explain "* ]]; then
                row "meshtrace explain -o json" "$bytes" "$base" "$mt" explain -o json "$f"
                # Per line as well: a text line is about half the bytes of a JSON one, so MB/s
                # alone compares the formats by their line length.
                lines="$(sed -n 's/.*"lines":\[\([0-9,]*\)\].*/\1/p' "$f.truth.json" | tr ',' '\n' |
                    awk '{n += $1} END {print n + 0}')"
                echo "explain -o json: $lines lines, $(awk -v n="$lines" -v s="${m_wall:-0}" \
                    'BEGIN{printf "%.0f", (s > 0 ? n / s / 1000 : 0)}') k lines/s"
            fi
            # Exactness: failed requests counted against what the generator wrote.
            got="$( (ulimit -v $((vmem_gib << 20)) && exec timeout "$limit" "$mt" failures "$f" -o json) 2>/dev/null |
                sed -n 's/^  "failed": \([0-9]*\),*$/\1/p' | head -n 1 || true)"
            want="$(sed -n 's/.*"failed":\([0-9]*\).*/\1/p' "$f.truth.json")"
            echo "count check: failures counted ${got:-?} failed requests, the generator wrote $want$([[ "$got" == "$want" ]] && echo " (exact)" || echo " (NOT exact)")"
            if [[ -n "$max_trace_ratio$max_failures_ratio" && "$got" != "$want" ]]; then
                failed_checks+=("failures count on $fmt $rate %: ${got:-?} counted, $want written")
            fi
        done
    done
    echo
    echo "== scaling: Envoy-like logs, 6.5 % failing, every command (median of $scaling_runs run(s) each)"
    printf '%-6s %-6s %-28s %9s %8s %9s %9s\n' format size command "s" ratio MB/s "RSS MiB"
    saved_runs=$runs
    runs=$scaling_runs
    for fmt in $formats; do
        for s in $scaling_sizes; do
            f="$(gen_envoy "$fmt" "$s" 6.5)"
            bytes="$(stat -c %s "$f")"
            cat "$f" >/dev/null
            base=""
            for c in rg trace failures explain; do
                case "$c" in
                    rg) have rg || continue; label="rg -F <id>"; set -- rg -F "$trace_id" "$f" ;;
                    trace) label="meshtrace trace <id>"; set -- "$mt" trace "$trace_id" "$f" ;;
                    failures) label="meshtrace failures"; set -- "$mt" failures "$f" ;;
                    explain)
                        [[ " $commands " == *" explain "* ]] || continue
                        label="meshtrace explain -o json"; set -- "$mt" explain -o json "$f" ;;
                esac
                measure "$@"
                [[ "$c" == rg ]] && base="$m_wall"
                printf '%-6s %-6s %-28s %9s %8s %9s %9s\n' "$fmt" "$s" "$label" "${m_wall:--}" \
                    "$(awk -v a="${m_wall:-0}" -v b="${base:-0}" 'BEGIN{if (b > 0 && a > 0) printf "%.2fx", a/b; else printf "-"}')" \
                    "$(awk -v s="${m_wall:-0}" -v n="$bytes" 'BEGIN{printf "%.0f", (s > 0 ? n/1e6/s : 0)}')" \
                    "$(awk -v k="${m_rss:-0}" 'BEGIN{printf "%.1f", k/1024}')${m_note:+ $m_note}"
            done
        done
    done
    runs=$saved_runs
    if [[ ${#failed_checks[@]} -gt 0 ]]; then
        echo
        printf 'bench: FAILED: %s\n' "${failed_checks[@]}" >&2
        exit 1
    fi
    exit 0
fi

for fmt in $formats; do
    f="$(gen "$fmt" "$size_arg")"
    bytes="$(stat -c %s "$f")"
    cat "$f" >/dev/null
    echo
    echo "== $fmt: $f ($(awk -v n="$bytes" 'BEGIN{printf "%.0f MiB", n/1048576}'), $(wc -l <"$f") lines)"
    printf '%-40s %9s %8s %9s %9s %5s  %s\n' command "median s" ratio MB/s "RSS MiB" exit note
    row "cat" "$bytes" "" cat "$f"
    base=""
    if have rg; then
        row "rg -F <id>" "$bytes" "" rg -F "$trace_id" "$f"
        base="$m_wall"
    fi
    row "LC_ALL=C grep -F <id>" "$bytes" "$base" env LC_ALL=C grep -F "$trace_id" "$f"
    [[ -z "$base" ]] && base="$m_wall"
    if [[ $fmt == text ]]; then
        row "$awk_cmd status counts" "$bytes" "$base" \
            "$awk_cmd" '{c[$5]++} END{for(k in c) print k, c[k]}' "$f"
    fi
    for c in $commands; do
        case "$c" in
            trace) row "meshtrace trace <id>" "$bytes" "$base" "$mt" trace "$trace_id" "$f" ;;
            failures) row "meshtrace failures" "$bytes" "$base" "$mt" failures "$f" ;;
            explain) row "meshtrace explain -o json" "$bytes" "$base" "$mt" explain "$f" -o json ;;
            *) echo "bench: unknown command $c" >&2; exit 2 ;;
        esac
    done
    # Sanity: the traced request is found and gets the expected verdict.
    if [[ " $commands " == *" trace "* ]]; then
        verdict="$( (ulimit -v $((vmem_gib << 20)) && exec timeout "$limit" "$mt" trace "$trace_id" "$f") 2>&1 |
            grep -m1 -E '^Verdict|not found' || true)"
        echo "trace check: ${verdict:-no verdict printed} (expected: 400 app_error at hop 5)"
    fi
done

if [[ $memory -eq 1 ]]; then
    echo
    echo "== memory vs input size (Istio text, one run each, peak RSS MiB)"
    printf '%-10s %12s %12s %12s %12s %12s %12s\n' size "failures s" "failures RSS" \
        "trace s" "trace RSS" "explain s" "explain RSS"
    saved_runs=$runs
    runs=1
    for s in $memory_sizes; do
        f="$(gen text "$s")"
        measure "$mt" failures "$f"
        fw="${m_wall:--}" fr="$(awk -v k="${m_rss:-0}" 'BEGIN{printf "%.1f", k/1024}')"
        [[ -n "$m_note" ]] && fr="$m_note"
        measure "$mt" trace "$trace_id" "$f"
        tw="${m_wall:--}" tr="$(awk -v k="${m_rss:-0}" 'BEGIN{printf "%.1f", k/1024}')"
        [[ -n "$m_note" ]] && tr="$m_note"
        measure "$mt" explain "$f" -o json
        ew="${m_wall:--}" er="$(awk -v k="${m_rss:-0}" 'BEGIN{printf "%.1f", k/1024}')"
        [[ -n "$m_note" ]] && er="$m_note"
        printf '%-10s %12s %12s %12s %12s %12s %12s\n' "$s" "$fw" "$fr" "$tw" "$tr" "$ew" "$er"
    done
    runs=$saved_runs
fi
