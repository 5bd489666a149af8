#!/usr/bin/env bash
# Exec benchmark: `/bin/true` in an EXISTING sandbox/container, side by side: `crun exec`,
# `runc exec`, `sandboxctl exec` (CLI) and the fork+exec floor in ONE hyperfine run, then the SDK
# round trip (agent-sdk example exec_bench: one connection, sequential execs) as one more row.
#
#   bench/exec.sh [--quick]
#
#   --quick              RUNS=20, warmup 2, SDK 200 execs (smoke test; numbers are not meaningful)
#   RUNS=N               hyperfine runs per row (default 100); WARMUP=N (default 5)
#   SDK_RUNS=N           exec_bench measured execs (default 1000); SDK_WARMUP=N (default 50)
#   SDK_CONCURRENCY=K    also measure throughput with K tasks on one connection (default 4; 0: skip)
#   SDK_TMPFS=0          leave out the SDK row against a second daemon whose state dir (exec logs,
#                        state records: fsync'd on every exec) is on tmpfs (/dev/shm)
#   BENCH_SKIP_RUNC=1    leave out runc
#   BENCH_OUT=DIR        output directory (default bench/out): busybox/, exec.json, exec-sdk*.json,
#                        exec-commands.tsv, exec.md
#   CARGO_TARGET_DIR     respected when locating the release binaries
#
# Must run as root (private sandboxd, crun/runc as root, apt-get for missing tools).  Never run
# by CI.  See bench/README.md.
set -euo pipefail

RUNS=${RUNS:-100}
WARMUP=${WARMUP:-5}
SDK_RUNS=${SDK_RUNS:-1000}
SDK_WARMUP=${SDK_WARMUP:-50}
SDK_CONCURRENCY=${SDK_CONCURRENCY:-4}
SDK_TMPFS=${SDK_TMPFS:-1}
while [ "$#" -gt 0 ]; do
    case "$1" in
        --quick) RUNS=20; WARMUP=2; SDK_RUNS=200; SDK_WARMUP=20 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "exec.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

BENCH_NAME=exec.sh
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_paths

[ "$(id -u)" -eq 0 ] || die "must run as root"

# ---------------------------------------------------------------------------------------------
# Tools
need hyperfine hyperfine
need unshare util-linux
command -v python3 >/dev/null 2>&1 || die "python3 is required"
need_busybox
bench_runtimes

# ---------------------------------------------------------------------------------------------
# Root filesystem, scratch dir, cleanup
bench_rootfs
bench_scratch
bg_pid=  # hyperfine or exec_bench, run in the background so a signal is handled at once
shm=     # the tmpfs state dir of the second daemon (SDK_TMPFS=1)
sid=     # the sandbox made with `sandboxctl create`
CID=bench-exec-$$ # the crun and the runc container (each runtime has its own state root)

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_bg "$bg_pid"
    if [ -n "$sid" ] && [ -n "${S_MAIN:-}" ]; then
        "$SANDBOXCTL" --socket "$S_MAIN" rm -f "$sid" >/dev/null 2>&1 ||
            log "could not destroy sandbox $sid (the daemon's shutdown will)"
    fi
    oci_sweep # deletes the bench-exec-* containers (delete -f kills their sleep)
    daemon_stop
    scratch_remove
    if [ -n "$shm" ]; then rm -rf --one-file-system "$shm"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# sandboxd, exec_bench, the sandbox
bench_build 1
EXEC_BENCH=$TDIR/release/examples/exec_bench
[ -x "$EXEC_BENCH" ] || die "exec_bench not built: $EXEC_BENCH"
daemon_start sandboxd "$D/state" 1610612736 "$cgparent"
S_MAIN=$S
sid=$("$SANDBOXCTL" --socket "$S" create --rootfs "$R") || { daemon_log_tail; die "sandboxctl create failed"; }
sid=${sid%%[[:space:]]*}
[ -n "$sid" ] || die "sandboxctl create printed no id"
log "sandbox $sid"

# ---------------------------------------------------------------------------------------------
# Long-running containers on the same root: `sleep 100000` as the container's process, started
# detached (bench/lib.sh: oci_wrapped = the hybrid-cgroup workaround of bench/oci-run.sh; the
# container outlives the wrapper's mount namespace).  Their state is under $OCI_ROOT, swept by
# cleanup.
BS=$D/bundle-sleep
mkbundle "$BS" 0 sleep 100000
oci_start() { # oci_start RUNTIME
    local rt=$1
    if ! oci_wrapped "$rt" --root "$OCI_ROOT/${rt##*/}" run --detach --bundle "$BS" "$CID" \
        </dev/null >"$D/${rt##*/}-run.out" 2>&1; then
        cat "$D/${rt##*/}-run.out" >&2
        return 1
    fi
}
oci_start "$CRUN" || die "crun run --detach failed"
if [ "$have_runc" = 1 ] && ! oci_start "$RUNC"; then
    log "runc run --detach fails on this host: leaving runc out"
    have_runc=0
fi

# ---------------------------------------------------------------------------------------------
# Rows.  Each is checked once before the benchmark so a broken row fails loudly.
names=()
cmds=()
row() { names+=("$1"); cmds+=("$2"); }

row "crun exec" "$CRUN --root $OCI_ROOT/crun exec $CID /bin/true"
if [ "$have_runc" = 1 ]; then
    row "runc exec" "$RUNC --root $OCI_ROOT/runc exec $CID /bin/true"
fi
row "sandboxctl exec (CLI)" "$SANDBOXCTL --socket $S exec $sid -- /bin/true"
row "sandboxctl status (CLI start + connect, no exec)" "$SANDBOXCTL --socket $S status"
row "fork+exec floor" "$R/bin/true"

: >"$OUT/exec-commands.tsv"
hf=(hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$OUT/exec.json")
for i in "${!names[@]}"; do
    if ! try_row "${cmds[$i]}"; then
        cat "$D/try.out" >&2
        daemon_log_tail
        die "row '${names[$i]}' failed: ${cmds[$i]}"
    fi
    hf+=(-n "${names[$i]}" "${cmds[$i]}")
    printf '%s\t%s\n' "${names[$i]}" "${cmds[$i]}" >>"$OUT/exec-commands.tsv"
done

# ---------------------------------------------------------------------------------------------
# Benchmark: hyperfine, then the SDK
log "running: hyperfine -N --warmup $WARMUP --runs $RUNS (${#names[@]} rows)"
"${hf[@]}" >&2 &
bg_pid=$!
wait "$bg_pid"
bg_pid=

sdk() { # sdk SOCKET OUTFILE ARGS...: exec_bench on its own sandbox on R, JSON line to OUTFILE
    local sock=$1 out=$2
    shift 2
    log "running: exec_bench --socket $sock $*"
    "$EXEC_BENCH" --socket "$sock" --rootfs "$R" "$@" >"$out" &
    bg_pid=$!
    if ! wait "$bg_pid"; then
        bg_pid=
        daemon_log_tail
        die "exec_bench $* failed"
    fi
    bg_pid=
    cat "$out" >&2
}
sdk_args=(--sdk "SDK exec (1 connection, sequential)=$OUT/exec-sdk.json")
notes=()
sdk "$S_MAIN" "$OUT/exec-sdk.json" --runs "$SDK_RUNS" --warmup "$SDK_WARMUP"
if [ "$SDK_TMPFS" = 1 ]; then
    # The same on a second daemon whose state dir is on tmpfs: the difference is what persisting
    # each exec (its output log and exit file, the sandbox's state record, each fsync'd) costs.
    if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
        shm=$(mktemp -d /dev/shm/sandboxd-bench.XXXXXX)
        chmod 0755 "$shm"
        daemon_start sandboxd-tmpfs "$shm/state" 1677721600 "$cgparent-tmpfs"
        sdk "$S" "$OUT/exec-sdk-tmpfs.json" --runs "$SDK_RUNS" --warmup "$SDK_WARMUP"
        sdk_args+=(--sdk "SDK exec, daemon state dir on tmpfs=$OUT/exec-sdk-tmpfs.json")
        notes+=(--note "The \"daemon state dir on tmpfs\" row is exec_bench against a second daemon whose --state-dir is on /dev/shm; the main daemon's is under $D (filesystem: $(stat -f -c %T "$D")). Both daemons keep exec logs on tmpfs (as under /run); the state record (debounced, at most one fsync'd write a second) is what differs.")
    else
        log "/dev/shm is not a tmpfs: leaving out the tmpfs state dir row"
    fi
fi
if [ "$SDK_CONCURRENCY" -gt 1 ]; then
    sdk "$S_MAIN" "$OUT/exec-sdk-concurrent.json" --runs "$SDK_RUNS" --warmup "$SDK_WARMUP" \
        --concurrency "$SDK_CONCURRENCY"
    sdk_args+=(--throughput "$OUT/exec-sdk-concurrent.json")
fi

# ---------------------------------------------------------------------------------------------
# Report
versions="Versions: $(first_line hyperfine --version), $(first_line "$CRUN" --version)"
if [ "$have_runc" = 1 ]; then versions+=", $(first_line "$RUNC" --version)"; fi
versions+=", sandboxd $(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
python3 "$bench/exec-report.py" "$OUT/exec.json" "${sdk_args[@]}" \
    --commands "$OUT/exec-commands.tsv" --out "$OUT/exec.md" \
    --note "$versions" "${notes[@]}" \
    --note "The crun/runc containers run \`sleep 100000\` from the same busybox root (crun spec + user and cgroup namespaces, as bench/startup.sh), started with \`run --detach\` (on cgroup v1 hybrid hosts inside \`unshare -m\` with /sys/fs/cgroup/unified unmounted, as bench/oci-run.sh); \`exec\` itself runs bare. The sandbox was made by \`sandboxctl create --rootfs R\` with the daemon's default limits; exec_bench makes its own the same way. hyperfine rows include starting the client process; the SDK row is one request/exit round trip on an open connection (exec_bench: time from sending \`exec\` to receiving \`exit\`)."
log "wrote $OUT/exec.json, $OUT/exec-sdk*.json, $OUT/exec.md"
