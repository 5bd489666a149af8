#!/usr/bin/env bash
# Build a Debian bookworm root filesystem with nodejs and python3, for interpreter benchmarks
# (`node -e 0`, `python3 -c pass`).  Downloads ~100 MB from the Debian mirror; ~340 MB on disk.
#
#   rootfs/debian-node-python.sh OUTDIR
#
# Environment: MIRROR (default: mmdebstrap's default, deb.debian.org), SUITE (default bookworm).
# Idempotent: an OUTDIR that already holds a finished build (OUTDIR/.debian-node-python.done) is
# left alone; a partial one is removed and rebuilt.
set -euo pipefail

if [ "$#" -ne 1 ] || [ -z "$1" ]; then echo "usage: $0 OUTDIR" >&2; exit 2; fi
out=$1
suite=${SUITE:-bookworm}
stamp=.debian-node-python.done

if [ -f "$out/$stamp" ] && [ -x "$out/usr/bin/node" ] && [ -x "$out/usr/bin/python3" ]; then
    echo "debian-node-python.sh: $out already built" >&2
    exit 0
fi

[ "$(id -u)" -eq 0 ] || { echo "debian-node-python.sh: must run as root" >&2; exit 1; }

if ! command -v mmdebstrap >/dev/null 2>&1; then
    echo "debian-node-python.sh: installing mmdebstrap" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mmdebstrap >&2 \
        || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mmdebstrap >&2; }
fi

# mmdebstrap wants an empty (or missing) target directory.
if [ -e "$out" ]; then
    echo "debian-node-python.sh: removing partial build in $out" >&2
    rm -rf --one-file-system "$out"
fi
mkdir -p "$(dirname "$out")"

args=(--variant=minbase "--include=nodejs,python3,ca-certificates" "$suite" "$out")
if [ -n "${MIRROR:-}" ]; then args+=("$MIRROR"); fi
mmdebstrap "${args[@]}"

mkdir -p "$out/workspace"
chmod 1777 "$out/tmp"
chroot "$out" /usr/bin/node -e 0
chroot "$out" /usr/bin/python3 -c pass
touch "$out/$stamp"
echo "debian-node-python.sh: $out ready ($(du -sh "$out" | cut -f1)); node $(chroot "$out" node --version), $(chroot "$out" python3 --version)" >&2
