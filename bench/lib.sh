# shellcheck shell=bash
# shellcheck disable=SC2034 # globals set here are used by the scripts that source this file
# Shared by bench/startup.sh and bench/exec.sh: sourced, never run.  Needs bash, `set -euo
# pipefail`, and BENCH_NAME (the script's name, for messages).  The functions share these globals:
#
#   repo bench OUT      repository root, bench/, output dir (bench_paths)
#   R                   the busybox root (bench_rootfs)
#   D OCI_ROOT cgparent scratch dir, crun/runc state root, the daemon's cgroup parent (bench_scratch)
#   CRUN RUNC have_runc the runtimes (bench_runtimes)
#   SANDBOXD SANDBOXCTL the binaries (bench_build)
#   S daemon_pid        socket and pid of the private daemon daemon_start started last

log() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; }
die() { log "error: $*"; exit 1; }

bench_paths() { # sets repo, bench, OUT (created, absolute)
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
    bench=$repo/bench
    OUT=${BENCH_OUT:-$bench/out}
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd -P)
}

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
need_busybox() {
    [ -x /bin/busybox ] && return 0
    log "busybox missing, installing busybox-static"
    apt_install busybox-static || die "could not install busybox-static"
}

bench_runtimes() { # sets CRUN, RUNC, have_runc (0 with BENCH_SKIP_RUNC=1 or if runc can't be had)
    need crun crun
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
}

# ---------------------------------------------------------------------------------------------
# Root filesystem, scratch dir
bench_rootfs() { # sets R = $OUT/busybox, built by rootfs/busybox.sh
    R=$OUT/busybox
    "$repo/rootfs/busybox.sh" "$R"
    case "$R$repo" in
        *[[:space:]]*) die "paths with whitespace are not supported (hyperfine -N splits on spaces): $R" ;;
    esac
}

bench_scratch() { # sets D (a fresh 0755 temp dir), OCI_ROOT, cgparent
    D=$(mktemp -d /tmp/sandboxd-bench.XXXXXX)
    chmod 0755 "$D"
    export OCI_ROOT=$D/oci
    mkdir -p "$OCI_ROOT"
    cgparent=sandboxd-bench-$$
}

# ---------------------------------------------------------------------------------------------
# sandboxd
bench_build() { # bench_build EXAMPLES(0|1): sets SANDBOXD, SANDBOXCTL, TDIR; 1 also builds
    # agent-sdk's examples (into $TDIR/release/examples)
    TDIR=${CARGO_TARGET_DIR:-target}
    case "$TDIR" in /*) ;; *) TDIR=$repo/$TDIR ;; esac
    if [ -n "${SANDBOXD_BIN:-}" ] && [ -n "${SANDBOXCTL_BIN:-}" ] && [ "$1" = 0 ]; then
        log "using prebuilt SANDBOXD_BIN=$SANDBOXD_BIN SANDBOXCTL_BIN=$SANDBOXCTL_BIN (no cargo build)"
        SANDBOXD=$SANDBOXD_BIN
        SANDBOXCTL=$SANDBOXCTL_BIN
    else
        need cargo cargo
        local -a cmd=(cargo build --release -p sandboxd -p sandboxctl)
        if [ "$1" = 1 ]; then cmd+=(-p agent-sdk --bins --examples); fi
        log "building: ${cmd[*]}"
        (cd "$repo" && "${cmd[@]}") >&2
        SANDBOXD=$TDIR/release/sandboxd
        SANDBOXCTL=$TDIR/release/sandboxctl
    fi
    if [ ! -x "$SANDBOXD" ] || [ ! -x "$SANDBOXCTL" ]; then die "sandboxd/sandboxctl binaries not found or not executable: $SANDBOXD $SANDBOXCTL"; fi
    case "$SANDBOXCTL" in *[[:space:]]*) die "whitespace in $SANDBOXCTL" ;; esac
}

daemon_pid=
daemon_pids=()
daemon_tmpdirs=()
daemon_logs=()
# daemon_start NAME STATE_DIR UID_BASE CGROUP_PARENT: starts a private daemon on S=$D/NAME.sock,
# log $D/NAME.log; sets S and daemon_pid (daemon_stop stops every daemon started).
daemon_start() {
    local name=$1 state=$2 uid_base=$3 parent=$4 log=$D/$1.log ok=0 i rc
    S=$D/$name.sock
    # Exec logs on tmpfs, as under /run on a systemd host (the daemon's default puts them
    # beside its socket); the state dir stays where the caller put it.
    local logs=$D/$name-logs
    if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
        logs=$(mktemp -d /dev/shm/sandboxd-bench-logs.XXXXXX)
        daemon_tmpdirs+=("$logs")
    fi
    "$SANDBOXD" --socket "$S" --state-dir "$state" --cgroup-parent "$parent" \
        --uid-base "$uid_base" --exec-log-dir "$logs" >"$log" 2>&1 &
    daemon_pid=$!
    daemon_pids+=("$daemon_pid")
    daemon_logs+=("$log")
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$daemon_pid" 2>/dev/null; then break; fi
        if "$SANDBOXCTL" --socket "$S" status >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.1
    done
    if [ "$ok" != 1 ]; then
        tail -n 40 "$log" >&2 || true
        if ! kill -0 "$daemon_pid" 2>/dev/null; then
            wait "$daemon_pid" && rc=0 || rc=$?
            die "sandboxd ($name) exited (status $rc) before answering 'sandboxctl status'"
        fi
        die "sandboxd ($name) did not answer 'sandboxctl status' within 10 s"
    fi
    log "sandboxd ready (pid $daemon_pid, socket $S, state dir $state)"
}

daemon_log_tail() {
    local l
    for l in "${daemon_logs[@]}"; do
        log "log tail of $l:"
        tail -n 20 "$l" >&2 || true
    done
}

# ---------------------------------------------------------------------------------------------
# Cleanup pieces (each safe to call when its part never started)
stop_bg() { # stop_bg PID: SIGTERM a background job of this shell and reap it
    if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
        kill -TERM "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
    fi
}

daemon_stop() { # stops every daemon daemon_start started: SIGTERM, SIGKILL after 10 s
    local i pid
    for pid in "${daemon_pids[@]}"; do
        kill -0 "$pid" 2>/dev/null || continue
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "sandboxd (pid $pid) did not exit on SIGTERM within 10 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    daemon_pids=()
    for i in "${daemon_tmpdirs[@]}"; do rm -rf "$i"; done
    daemon_tmpdirs=()
    daemon_pid=
}

oci_sweep() { # delete every bench-* container left under $OCI_ROOT
    local rt id
    for rt in "${CRUN:-}" "${RUNC:-}"; do
        if [ -z "$rt" ] || [ ! -d "$OCI_ROOT/${rt##*/}" ]; then continue; fi
        for id in "$OCI_ROOT/${rt##*/}"/bench-*; do
            [ -e "$id" ] || continue
            log "removing ${rt##*/} container ${id##*/}"
            "$rt" --root "$OCI_ROOT/${rt##*/}" delete -f "${id##*/}" >/dev/null 2>&1 || true
        done
    done
}

scratch_remove() { # empty cgroups the daemons may have left behind, then $D (unless KEEP_TMP)
    # Cgroup parents are $cgparent or $cgparent-SUFFIX; rmdir never removes a populated cgroup.
    find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d \( -name "$cgparent" -o -name "$cgparent-*" \) \
        -prune -print 2>/dev/null |
        while IFS= read -r cg; do find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true; done
    if [ -n "${KEEP_TMP:-}" ]; then log "keeping $D"; else rm -rf --one-file-system "$D"; fi
}

# ---------------------------------------------------------------------------------------------
# OCI bundles: crun's default spec (pid, network, ipc, uts, mount namespaces) plus user and cgroup
# namespaces, so crun/runc isolate as much as bwrap --unshare-all and sandboxd do.
mkbundle() { # mkbundle DIR LIMITS(0|1) [ARGV...]   (ARGV default: /bin/true)
    local dir=$1 limits=$2
    shift 2
    [ "$#" -gt 0 ] || set -- /bin/true
    mkdir -p "$dir"
    rm -f "$dir/config.json"
    (cd "$dir" && "$CRUN" spec)
    python3 - "$dir/config.json" "$R" "$limits" "$@" <<'EOF'
import json, sys
path, rootfs, limits, argv = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4:]
with open(path) as f:
    c = json.load(f)
c["root"] = {"path": rootfs, "readonly": True}
p = c["process"]
p["args"] = argv
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

# True when /sys/fs/cgroup/unified is mounted (cgroup v1 "hybrid"), where crun refuses to create
# containers unless that mount is gone (see bench/oci-run.sh).
cgroup_hybrid() {
    local _dev mnt _rest
    while read -r _dev mnt _rest; do
        if [ "$mnt" = /sys/fs/cgroup/unified ]; then return 0; fi
    done </proc/self/mounts
    return 1
}

# Runs `RUNTIME ARGS...` as bench/oci-run.sh does: on a hybrid host, in a private mount namespace
# with /sys/fs/cgroup/unified unmounted.
oci_wrapped() {
    if cgroup_hybrid; then
        # shellcheck disable=SC2016 # expanded by the inner sh
        unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"' oci "$@"
    else
        "$@"
    fi
}

# Runs one row's command string once, split as hyperfine -N does (on spaces; no quotes in rows),
# output in $D/try.out.
try_row() {
    local -a argv
    read -r -a argv <<<"$1"
    "${argv[@]}" </dev/null >"$D/try.out" 2>&1
}

first_line() { "$@" 2>&1 | head -n 1 || true; }
