#!/bin/sh
# Run one OCI container to completion with a fresh container id, for hyperfine (which substitutes
# nothing into commands).
#
#   bench/oci-run.sh RUNTIME BUNDLE      RUNTIME: crun, runc, a path to one, or `none`
#
# - The id is bench-<pid>-<random>, read from /proc (no fork).
# - The runtime's state lives under $OCI_ROOT/<runtime name> (default /run/sandboxd-bench-oci), so
#   bench/startup.sh can sweep leftovers.
# - On a cgroup v1 "hybrid" host (/sys/fs/cgroup/unified mounted) crun refuses to run ("cgroups in
#   hybrid mode not supported"), so the container is started in a private mount namespace where
#   that mount is gone: `unshare -m --propagation private sh -c 'umount …; RUNTIME run …'`
#   (see shared/BASELINES.md).  runc gets the same treatment so the two rows pay the same wrapper
#   cost.  OCI_UNMOUNT_UNIFIED=1|0 forces/skips this; default: detect from /proc/self/mounts.
# - RUNTIME `none` does everything except start the runtime: it measures this wrapper's own cost.
# - If a container is still registered after `run` returns, it is removed with `delete -f`.
# Exit status: the container process's.
set -eu

[ "$#" -eq 2 ] || { echo "usage: $0 RUNTIME BUNDLE" >&2; exit 2; }
rt=$1
bundle=$2

read -r uuid </proc/sys/kernel/random/uuid
id="bench-$$-${uuid%%-*}"
root="${OCI_ROOT:-/run/sandboxd-bench-oci}/${rt##*/}"

unmount=${OCI_UNMOUNT_UNIFIED:-auto}
if [ "$unmount" = auto ]; then
    unmount=0
    while read -r _dev mnt _rest; do
        if [ "$mnt" = /sys/fs/cgroup/unified ]; then unmount=1; break; fi
    done </proc/self/mounts
fi

# Runs in the (possibly private) mount namespace.  $1 runtime, $2 root, $3 bundle, $4 id, $5 unmount.
# shellcheck disable=SC2016 # expanded by the inner sh
inner='
[ "$5" = 1 ] && umount /sys/fs/cgroup/unified 2>/dev/null
[ "$1" = none ] && exit 0
rc=0
"$1" --root "$2" run --bundle "$3" "$4" </dev/null || rc=$?
if [ -e "$2/$4" ]; then "$1" --root "$2" delete -f "$4" >/dev/null 2>&1 || :; fi
exit "$rc"'

if [ "$unmount" = 1 ]; then
    exec unshare -m --propagation private sh -c "$inner" oci-run "$rt" "$root" "$bundle" "$id" 1
else
    exec sh -c "$inner" oci-run "$rt" "$root" "$bundle" "$id" 0
fi
