#!/usr/bin/env bash
# Startup benchmark: `sandboxctl run --rootfs R -- /bin/true` against the fork+exec floor, unshare,
# bubblewrap, crun and runc on the SAME busybox root R, side by side in ONE hyperfine run.
#
#   bench/startup.sh [--quick]
#
#   --quick              RUNS=20, warmup 2 (smoke test of the script, numbers are not meaningful)
#   RUNS=N               runs per row (default 100); WARMUP=N warmup runs (default 5)
#   BENCH_SKIP_SANDBOXD=1  leave out the sandboxctl rows; do not build or start the daemon
#   BENCH_SKIP_RUNC=1    leave out runc
#   BENCH_OUT=DIR        output directory (default bench/out): busybox/, startup.json, startup.md
#   CARGO_TARGET_DIR     respected when locating the release binaries
#   SANDBOXD_BIN=P SANDBOXCTL_BIN=P  use these binaries instead of `cargo build --release`
#
# Must run as root (it starts a private sandboxd, crun/runc as root, and installs missing tools with
# apt-get).  Never run by CI.  See bench/README.md.
set -euo pipefail

RUNS=${RUNS:-100}
WARMUP=${WARMUP:-5}
while [ "$#" -gt 0 ]; do
    case "$1" in
        --quick) RUNS=20; WARMUP=2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "startup.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

BENCH_NAME=startup.sh
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_paths
skip_sandboxd=${BENCH_SKIP_SANDBOXD:-0}
[ "$skip_sandboxd" = 0 ] || [ "$skip_sandboxd" = 1 ] || { echo "BENCH_SKIP_SANDBOXD must be 0 or 1" >&2; exit 2; }

[ "$(id -u)" -eq 0 ] || die "must run as root"

# ---------------------------------------------------------------------------------------------
# Tools
need hyperfine hyperfine
need bwrap bubblewrap
need unshare util-linux
need chroot coreutils
command -v python3 >/dev/null 2>&1 || die "python3 is required"
need_busybox
bench_runtimes

# ---------------------------------------------------------------------------------------------
# Root filesystem, scratch dir, cleanup
bench_rootfs
bench_scratch
hf_pid=

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$hf_pid" ] && kill -0 "$hf_pid" 2>/dev/null; then
        stop_bg "$hf_pid"
        sleep 0.2 # let a container started by the last iteration finish before sweeping
    fi
    daemon_stop
    oci_sweep
    scratch_remove
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# sandboxd
if [ "$skip_sandboxd" = 0 ]; then
    bench_build 0
    daemon_start sandboxd "$D/state" 1610612736 "$cgparent"
else
    log "BENCH_SKIP_SANDBOXD=1: leaving out the sandboxctl rows"
fi

# ---------------------------------------------------------------------------------------------
# OCI bundles (bench/lib.sh: mkbundle)
B=$D/bundle
BL=$D/bundle-limits
mkbundle "$B" 0
mkbundle "$BL" 1

# ---------------------------------------------------------------------------------------------
# Rows.  Each is checked once before the benchmark so a broken row fails loudly (runc: skipped).
OCIRUN=$bench/oci-run.sh
names=()
cmds=()
row() { names+=("$1"); cmds+=("$2"); }

row "fork+exec floor" "$R/bin/true"
row "chroot" "chroot $R /bin/true"
row "unshare all ns + chroot" "unshare --fork --pid --mount --uts --ipc --net --user --map-root-user chroot $R /bin/true"
row "bwrap --unshare-all" "bwrap --unshare-all --ro-bind $R / --proc /proc --dev /dev /bin/true"
row "crun" "$OCIRUN $CRUN $B"
row "crun + limits" "$OCIRUN $CRUN $BL"
if [ "$have_runc" = 1 ]; then
    row "runc" "$OCIRUN $RUNC $B"
fi
row "oci-run.sh alone (no runtime)" "$OCIRUN none $B"
if [ "$skip_sandboxd" = 0 ]; then
    row "sandboxctl run" "$SANDBOXCTL --socket $S run --rootfs $R -- /bin/true"
    row "sandboxctl run + limits" "$SANDBOXCTL --socket $S run --rootfs $R --memory 256M --pids 256 --cpus 1 -- /bin/true"
fi

notes=()
keep_names=()
keep_cmds=()
for i in "${!names[@]}"; do
    if try_row "${cmds[$i]}"; then
        keep_names+=("${names[$i]}")
        keep_cmds+=("${cmds[$i]}")
        continue
    fi
    if [ "${names[$i]}" = runc ]; then
        log "runc fails on this host, leaving it out:"
        sed 's/^/    /' "$D/try.out" >&2
        notes+=("runc left out: \`${cmds[$i]}\` failed on this host: $(tr '\n' ' ' <"$D/try.out" | cut -c1-300)")
        continue
    fi
    cat "$D/try.out" >&2
    daemon_log_tail
    die "row '${names[$i]}' failed: ${cmds[$i]}"
done

# ---------------------------------------------------------------------------------------------
# Benchmark
hf=(hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$OUT/startup.json")
: >"$OUT/startup-commands.tsv"
for i in "${!keep_names[@]}"; do
    hf+=(-n "${keep_names[$i]}" "${keep_cmds[$i]}")
    printf '%s\t%s\n' "${keep_names[$i]}" "${keep_cmds[$i]}" >>"$OUT/startup-commands.tsv"
done
log "running: hyperfine -N --warmup $WARMUP --runs $RUNS (${#keep_names[@]} rows)"
# In the background so a SIGTERM/SIGINT to this script is handled at once (bash runs traps only
# after a foreground child exits); cleanup stops it.
"${hf[@]}" >&2 &
hf_pid=$!
wait "$hf_pid"
hf_pid=

# ---------------------------------------------------------------------------------------------
# Report
versions="Versions: $(first_line hyperfine --version), $(first_line bwrap --version), $(first_line "$CRUN" --version)"
if [ "$have_runc" = 1 ]; then versions+=", $(first_line "$RUNC" --version)"; fi
if [ "$skip_sandboxd" = 0 ]; then versions+=", sandboxd $(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo '?')"; fi
notes+=("$versions")
notes+=("crun/runc rows go through bench/oci-run.sh (fresh id per run; on cgroup v1 hybrid hosts the runtime runs in a private mount namespace with /sys/fs/cgroup/unified unmounted, because crun refuses hybrid mode). The 'oci-run.sh alone' row is that wrapper without any runtime: subtract it for the runtime's own cost. OCI bundles: crun spec + user and cgroup namespaces; limits rows: memory 256M, pids 256, 1 cpu.")
rargs=()
for n in "${notes[@]}"; do rargs+=(--note "$n"); done
python3 "$bench/report.py" "$OUT/startup.json" --commands "$OUT/startup-commands.tsv" \
    --out "$OUT/startup.md" "${rargs[@]}"
log "wrote $OUT/startup.json, $OUT/startup.md"
