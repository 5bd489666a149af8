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

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
bench=$repo/bench
OUT=${BENCH_OUT:-$bench/out}
skip_sandboxd=${BENCH_SKIP_SANDBOXD:-0}
[ "$skip_sandboxd" = 0 ] || [ "$skip_sandboxd" = 1 ] || { echo "BENCH_SKIP_SANDBOXD must be 0 or 1" >&2; exit 2; }

log() { printf 'startup.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root"

# ---------------------------------------------------------------------------------------------
# Tools
apt_updated=0
apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 && return 0
    [ "$apt_updated" = 0 ] || return 1
    apt_updated=1
    apt-get update >&2 || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
}
need() { # need COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    log "$1 missing, installing $2"
    apt_install "$2" || die "could not install $2"
    command -v "$1" >/dev/null 2>&1 || die "$2 installed but $1 still not found"
}
need hyperfine hyperfine
need bwrap bubblewrap
need crun crun
need unshare util-linux
need chroot coreutils
command -v python3 >/dev/null 2>&1 || die "python3 is required"
[ -x /bin/busybox ] || { log "busybox missing, installing busybox-static"; apt_install busybox-static || die "could not install busybox-static"; }
have_runc=0
if [ "${BENCH_SKIP_RUNC:-0}" = 1 ]; then
    log "BENCH_SKIP_RUNC=1: leaving out runc"
elif command -v runc >/dev/null 2>&1 || { log "runc missing, installing runc"; apt_install runc; }; then
    command -v runc >/dev/null 2>&1 && have_runc=1
else
    log "could not install runc: leaving it out"
fi
CRUN=$(command -v crun)
RUNC=$(command -v runc || true)

# ---------------------------------------------------------------------------------------------
# Root filesystem
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd -P)
R=$OUT/busybox
"$repo/rootfs/busybox.sh" "$R"
case "$R$repo" in
    *[[:space:]]*) die "paths with whitespace are not supported (hyperfine -N splits on spaces): $R" ;;
esac

# ---------------------------------------------------------------------------------------------
# Scratch dir, cleanup
D=$(mktemp -d /tmp/sandboxd-bench.XXXXXX)
chmod 0755 "$D"
export OCI_ROOT=$D/oci
mkdir -p "$OCI_ROOT"
cgparent=sandboxd-bench-$$
daemon_pid=
hf_pid=

cleanup() {
    local rc=$? rt id i
    trap - EXIT INT TERM
    if [ -n "$hf_pid" ] && kill -0 "$hf_pid" 2>/dev/null; then
        kill -TERM "$hf_pid" 2>/dev/null || true
        wait "$hf_pid" 2>/dev/null || true
        sleep 0.2 # let a container started by the last iteration finish before sweeping
    fi
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$daemon_pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$daemon_pid" 2>/dev/null; then
            log "sandboxd did not exit on SIGTERM within 10 s; sending SIGKILL"
            kill -KILL "$daemon_pid" 2>/dev/null || true
        fi
        wait "$daemon_pid" 2>/dev/null || true
    fi
    for rt in "$CRUN" "$RUNC"; do
        if [ -z "$rt" ] || [ ! -d "$OCI_ROOT/${rt##*/}" ]; then continue; fi
        for id in "$OCI_ROOT/${rt##*/}"/bench-*; do
            [ -e "$id" ] || continue
            log "removing leftover ${rt##*/} container ${id##*/}"
            "$rt" --root "$OCI_ROOT/${rt##*/}" delete -f "${id##*/}" >/dev/null 2>&1 || true
        done
    done
    # Empty cgroups the daemon may have left behind (rmdir never removes a populated cgroup).
    find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d -name "$cgparent" -prune -print 2>/dev/null |
        while IFS= read -r cg; do find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true; done
    if [ -n "${KEEP_TMP:-}" ]; then log "keeping $D"; else rm -rf --one-file-system "$D"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# sandboxd
if [ "$skip_sandboxd" = 0 ]; then
    if [ -n "${SANDBOXD_BIN:-}" ] && [ -n "${SANDBOXCTL_BIN:-}" ]; then
        log "using prebuilt SANDBOXD_BIN=$SANDBOXD_BIN SANDBOXCTL_BIN=$SANDBOXCTL_BIN (no cargo build)"
        SANDBOXD=$SANDBOXD_BIN
        SANDBOXCTL=$SANDBOXCTL_BIN
    else
        need cargo cargo
        log "building sandboxd and sandboxctl (release)"
        (cd "$repo" && cargo build --release -p sandboxd -p sandboxctl) >&2
        tdir=${CARGO_TARGET_DIR:-target}
        case "$tdir" in /*) ;; *) tdir=$repo/$tdir ;; esac
        SANDBOXD=$tdir/release/sandboxd
        SANDBOXCTL=$tdir/release/sandboxctl
    fi
    if [ ! -x "$SANDBOXD" ] || [ ! -x "$SANDBOXCTL" ]; then die "sandboxd/sandboxctl binaries not found or not executable: $SANDBOXD $SANDBOXCTL"; fi
    case "$SANDBOXCTL" in *[[:space:]]*) die "whitespace in $SANDBOXCTL" ;; esac
    S=$D/sandboxd.sock
    "$SANDBOXD" --socket "$S" --state-dir "$D/state" --cgroup-parent "$cgparent" \
        --uid-base 1610612736 >"$D/sandboxd.log" 2>&1 &
    daemon_pid=$!
    ok=0
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$daemon_pid" 2>/dev/null; then break; fi
        if "$SANDBOXCTL" --socket "$S" status >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.1
    done
    if [ "$ok" != 1 ]; then
        tail -n 40 "$D/sandboxd.log" >&2 || true
        if ! kill -0 "$daemon_pid" 2>/dev/null; then
            wait "$daemon_pid" && rc=0 || rc=$?
            daemon_pid=
            die "sandboxd exited (status $rc) before answering 'sandboxctl status'"
        fi
        die "sandboxd did not answer 'sandboxctl status' within 10 s"
    fi
    log "sandboxd ready (pid $daemon_pid, socket $S)"
else
    log "BENCH_SKIP_SANDBOXD=1: leaving out the sandboxctl rows"
fi

# ---------------------------------------------------------------------------------------------
# OCI bundles: crun's default spec (pid, network, ipc, uts, mount namespaces) plus user and cgroup
# namespaces, so crun/runc isolate as much as bwrap --unshare-all and sandboxd do.
mkbundle() { # mkbundle DIR LIMITS(0|1)
    mkdir -p "$1"
    rm -f "$1/config.json"
    (cd "$1" && "$CRUN" spec)
    python3 - "$1/config.json" "$R" "$2" <<'EOF'
import json, sys
path, rootfs, limits = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
with open(path) as f:
    c = json.load(f)
c["root"] = {"path": rootfs, "readonly": True}
p = c["process"]
p["args"] = ["/bin/true"]
p["terminal"] = False
lx = c.setdefault("linux", {})
ns = lx.setdefault("namespaces", [])
have = {n["type"] for n in ns}
for t in ("pid", "network", "ipc", "uts", "mount", "user", "cgroup"):
    if t not in have:
        ns.append({"type": t})
lx["uidMappings"] = [{"containerID": 0, "hostID": 1879048192, "size": 65536}]
lx["gidMappings"] = [{"containerID": 0, "hostID": 1879048192, "size": 65536}]
if limits:
    res = lx.setdefault("resources", {})
    res["memory"] = {"limit": 256 * 1024 * 1024}
    res["pids"] = {"limit": 256}
    res["cpu"] = {"quota": 100000, "period": 100000}
with open(path, "w") as f:
    json.dump(c, f, indent=2)
EOF
}
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

try() { # try COMMAND-STRING: run it once (split on spaces, as hyperfine -N does)
    local -a argv
    read -r -a argv <<<"$1"
    "${argv[@]}" </dev/null >"$D/try.out" 2>&1
}

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
    if try "${cmds[$i]}"; then
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
    if [ -n "$daemon_pid" ]; then
        log "sandboxd log tail:"
        tail -n 20 "$D/sandboxd.log" >&2 || true
    fi
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
first() { "$@" 2>&1 | head -n 1 || true; }
versions="Versions: $(first hyperfine --version), $(first bwrap --version), $(first "$CRUN" --version)"
if [ "$have_runc" = 1 ]; then versions+=", $(first "$RUNC" --version)"; fi
if [ "$skip_sandboxd" = 0 ]; then versions+=", sandboxd $(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo '?')"; fi
notes+=("$versions")
notes+=("crun/runc rows go through bench/oci-run.sh (fresh id per run; on cgroup v1 hybrid hosts the runtime runs in a private mount namespace with /sys/fs/cgroup/unified unmounted, because crun refuses hybrid mode). The 'oci-run.sh alone' row is that wrapper without any runtime: subtract it for the runtime's own cost. OCI bundles: crun spec + user and cgroup namespaces; limits rows: memory 256M, pids 256, 1 cpu.")
rargs=()
for n in "${notes[@]}"; do rargs+=(--note "$n"); done
python3 "$bench/report.py" "$OUT/startup.json" --commands "$OUT/startup-commands.tsv" \
    --out "$OUT/startup.md" "${rargs[@]}"
log "wrote $OUT/startup.json, $OUT/startup.md"
