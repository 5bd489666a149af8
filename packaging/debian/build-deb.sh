#!/bin/bash
# Builds packaging/out/sandboxd_<version>_<arch>.deb with plain dpkg-deb (no debhelper, no
# root needed): release binaries of sandboxd and sandboxctl, the systemd unit, the
# /etc/default file (a conffile) and the maintainer scripts in this directory.
#
# Usage: packaging/debian/build-deb.sh [--no-build] [--no-strip]
#   --no-build   package the binaries already in <target dir>/release
#   --no-strip   keep their debug info (the release profile has debug = 1)
# Environment:
#   CARGO_TARGET_DIR  honoured (as is build.target-dir in .cargo/config.toml)
#   CARGO             cargo to run (default: cargo)
#   DEB_VERSION       package version (default: [workspace.package] version of Cargo.toml)
#   DEB_MAINTAINER    Maintainer field (default: a placeholder)
#   DEB_OUT_DIR       where the .deb goes (default: packaging/out)
set -euo pipefail
umask 022

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
packaging=$(dirname "$here")
repo=$(dirname "$packaging")
out=${DEB_OUT_DIR:-$packaging/out}
cargo=${CARGO:-cargo}
build=1
strip=1

for arg in "$@"; do
    case "$arg" in
    --no-build) build=0 ;;
    --no-strip) strip=0 ;;
    -h | --help)
        sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    *)
        echo "build-deb.sh: unknown argument $arg (see --help)" >&2
        exit 2
        ;;
    esac
done

die() {
    echo "build-deb.sh: $*" >&2
    exit 1
}

for tool in dpkg-deb dpkg awk readelf objdump strip; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

# Version: [workspace.package] version, semver pre-release "-rc.1" as Debian "~rc.1" so that
# it sorts before the release.
if [ -z "${DEB_VERSION:-}" ]; then
    crate_version=$(awk '
        /^[[:space:]]*\[/ { in_pkg = ($0 ~ /^[[:space:]]*\[workspace\.package\][[:space:]]*$/); next }
        in_pkg && /^[[:space:]]*version[[:space:]]*=/ {
            if (match($0, /"[^"]*"/)) { print substr($0, RSTART + 1, RLENGTH - 2); exit }
        }' "$repo/Cargo.toml")
    [ -n "$crate_version" ] || die "no version in [workspace.package] of $repo/Cargo.toml"
    DEB_VERSION=${crate_version/-/\~}
fi
[[ $DEB_VERSION =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "invalid Debian version $DEB_VERSION"
arch=$(dpkg --print-architecture)

# Where cargo puts its output: cargo metadata knows CARGO_TARGET_DIR and .cargo/config.toml.
target_dir=$(cd "$repo" && "$cargo" metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p') || true
target_dir=${target_dir:-${CARGO_TARGET_DIR:-$repo/target}}
bin_dir=$target_dir/${CARGO_BUILD_TARGET:+$CARGO_BUILD_TARGET/}release

if [ "$build" = 1 ]; then
    (cd "$repo" && "$cargo" build --release --locked -p sandboxd -p sandboxctl)
fi
for bin in sandboxd sandboxctl; do
    [ -x "$bin_dir/$bin" ] || die "$bin_dir/$bin is missing (build it, or drop --no-build)"
done

stage=$out/stage
rm -rf "$stage"
install -d -m 0755 "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" \
    "$stage/etc/default" "$stage/etc/sandboxd/policies" "$stage/usr/share/doc/sandboxd"

for bin in sandboxd sandboxctl; do
    install -m 0755 "$bin_dir/$bin" "$stage/usr/bin/$bin"
    if [ "$strip" = 1 ]; then
        # Debug info only: the symbol table stays, so backtraces keep their function names.
        strip --strip-debug "$stage/usr/bin/$bin"
    fi
done
install -m 0644 "$packaging/systemd/sandboxd.service" "$stage/lib/systemd/system/sandboxd.service"
install -m 0644 "$packaging/default/sandboxd" "$stage/etc/default/sandboxd"
# The shipped policies, as conffiles: an operator edits or removes them, and sandboxd uses only
# this directory once it exists.
for pol in "$packaging"/../policies/*.toml; do
    install -m 0644 "$pol" "$stage/etc/sandboxd/policies/$(basename "$pol")"
done
install -m 0644 "$packaging/README.md" "$stage/usr/share/doc/sandboxd/README.md"
cat >"$stage/usr/share/doc/sandboxd/copyright" <<'COPYRIGHT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: sandboxd

Files: *
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
COPYRIGHT
chmod 0644 "$stage/usr/share/doc/sandboxd/copyright"
for script in postinst prerm postrm; do
    install -m 0755 "$here/$script" "$stage/DEBIAN/$script"
done
{
    echo /etc/default/sandboxd
    for pol in "$stage"/etc/sandboxd/policies/*.toml; do echo "${pol#"$stage"}"; done
} >"$stage/DEBIAN/conffiles"

# Depends, from what the binaries link (what dpkg-shlibdeps would find for these libraries):
# libc6 at least as new as the newest GLIBC_x.y symbol version they use.
depends=()
glibc=
for bin in sandboxd sandboxctl; do
    file=$stage/usr/bin/$bin
    needed=$(LC_ALL=C readelf -d "$file") || die "readelf -d $file failed"
    while read -r lib; do
        case "$lib" in
        "" | libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | ld-linux*) ;;
        libgcc_s.so.1) depends+=("libgcc-s1") ;;
        *) die "$bin links $lib: add its package to Depends in build-deb.sh" ;;
        esac
    done <<<"$(sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' <<<"$needed")"
    symbols=$(LC_ALL=C objdump -T "$file") || die "objdump -T $file failed"
    glibc=$(
        {
            echo "$glibc"
            grep -o 'GLIBC_[0-9][0-9.]*' <<<"$symbols" | sed 's/^GLIBC_//' || true
        } | sed '/^$/d' | sort -uV | tail -n 1
    )
done
depends=("libc6${glibc:+ (>= $glibc)}" "${depends[@]}" adduser)
depends_field=$(printf '%s\n' "${depends[@]}" | awk '!seen[$0]++' | paste -sd, - | sed 's/,/, /g')

installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: sandboxd
Version: $DEB_VERSION
Architecture: $arch
Maintainer: ${DEB_MAINTAINER:-sandboxd developers <sandboxd@localhost>}
Installed-Size: $installed_size
Depends: $depends_field
Section: admin
Priority: optional
Description: Linux sandbox daemon and its CLI
 sandboxd runs commands in sandboxes made of Linux namespaces, cgroups,
 seccomp and idmapped mounts, for the members of the sandboxd group, over a
 Unix socket (/run/sandboxd/sandboxd.sock). sandboxctl is its command-line
 client.
 .
 The package installs a systemd service (sandboxd.service), enabled and
 started on installation, and creates the sandboxd system group.
CONTROL

deb=$out/sandboxd_${DEB_VERSION}_${arch}.deb
dpkg-deb --root-owner-group --build "$stage" "$deb"
echo "$deb"
