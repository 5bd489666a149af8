#!/usr/bin/env bash
# Build a minimal root filesystem around a statically linked busybox.
#
#   rootfs/busybox.sh OUTDIR
#
# Result:
#   OUTDIR/bin/busybox            static busybox (from Debian's busybox-static)
#   OUTDIR/bin/<applet>           one symlink -> busybox per `busybox --list` entry
#   OUTDIR/sbin, usr/bin, usr/sbin -> bin   (so /bin/true, /bin/sh, /usr/bin/env resolve)
#   OUTDIR/{proc,dev,sys,tmp,workspace,etc}  empty dirs (tmp is 1777)
#   OUTDIR/etc/passwd, etc/group  root and nobody
#
# Idempotent: rerunning over an existing OUTDIR refreshes it in place.
# Environment: BUSYBOX=/path/to/static/busybox overrides the binary used.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR" >&2; exit 2; }
[ "$#" -eq 1 ] || usage
out=$1
[ -n "$out" ] || usage

bb=${BUSYBOX:-/bin/busybox}

# Install busybox-static when missing (only possible as root).
if [ ! -x "$bb" ]; then
    if [ "$(id -u)" -eq 0 ] && [ -z "${BUSYBOX:-}" ]; then
        echo "busybox.sh: $bb missing, installing busybox-static" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox-static >&2 \
            || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox-static >&2; }
    fi
    [ -x "$bb" ] || { echo "busybox.sh: $bb not found (apt-get install busybox-static)" >&2; exit 1; }
fi

# The root has no libc: a dynamically linked busybox (Debian's 'busybox' package) will not run in it.
if ldd "$bb" >/dev/null 2>&1; then
    echo "busybox.sh: $bb is dynamically linked; install busybox-static (it replaces 'busybox')" >&2
    exit 1
fi

mkdir -p "$out"
out=$(cd "$out" && pwd -P)

# Directory skeleton.  Replace stale symlinks-to-dirs / dirs-for-symlinks from older layouts.
for d in bin etc proc dev sys tmp workspace usr; do
    if [ -L "$out/$d" ]; then rm -f "$out/$d"; fi
    mkdir -p "$out/$d"
done
chmod 0755 "$out" "$out/bin" "$out/etc" "$out/proc" "$out/dev" "$out/sys" "$out/workspace" "$out/usr"
chmod 1777 "$out/tmp"

link_dir() { # link_dir TARGET LINKPATH: LINKPATH -> TARGET (a relative symlink to a directory)
    local target=$1 link=$2
    if [ -d "$link" ] && [ ! -L "$link" ]; then
        # A real directory from some other layout: fold its contents into bin/ and replace it.
        cp -a "$link"/. "$out/bin/" 2>/dev/null || true
        rm -rf "$link"
    fi
    ln -sfn "$target" "$link"
}
link_dir bin "$out/sbin"
link_dir ../bin "$out/usr/bin"
link_dir ../bin "$out/usr/sbin"

# The binary itself (copied atomically so a rerun never leaves a half-written file).
if ! cmp -s "$bb" "$out/bin/busybox"; then
    install -m 0755 "$bb" "$out/bin/.busybox.tmp"
    mv -f "$out/bin/.busybox.tmp" "$out/bin/busybox"
fi

# One symlink per applet.
n=0
while IFS= read -r applet; do
    case "$applet" in
        ''|busybox|*/*) continue ;;
    esac
    ln -sfn busybox "$out/bin/$applet"
    n=$((n + 1))
done < <("$out/bin/busybox" --list)
[ "$n" -gt 0 ] || { echo "busybox.sh: '$out/bin/busybox --list' printed no applets" >&2; exit 1; }

# Users and groups.
cat >"$out/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$out/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
nobody:x:65534:
EOF
chmod 0644 "$out/etc/passwd" "$out/etc/group"

for p in bin/true bin/sh usr/bin/env; do
    [ -x "$out/$p" ] || { echo "busybox.sh: $out/$p does not resolve" >&2; exit 1; }
done

echo "busybox.sh: $out ready ($n applets, $(du -sh "$out" 2>/dev/null | cut -f1))" >&2
