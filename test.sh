#!/usr/bin/env bash
# Runs every test of the workspace:
#   1. unit tests and the privileged integration tests (tests/), on this host;
#   2. the tests that exercise cgroup limits again, on a cgroup-v2-only kernel, in a throw-away
#      QEMU guest (../shared/tools/run-in-cgroup2-vm.sh, or $CG2VM_SCRIPT), since the host may
#      be v1/hybrid; and the runc/crun comparison of an exported bundle (crun runs only there).
# Privileged tests need root; as non-root they skip, unless SANDBOX_TESTS_MUST_RUN=1 (CI), where
# every skip is a failure.
set -euo pipefail
cd "$(dirname "$0")"

# The integration tests drive the real binaries (sandboxd, sandboxctl, the in-sandbox probe);
# `cargo test` builds a package's binaries only for that package's own tests.
cargo build --workspace --bins
cargo test --workspace --all-targets

vm=${CG2VM_SCRIPT:-$(pwd)/../shared/tools/run-in-cgroup2-vm.sh}
if [ ! -x "$vm" ] || [ "$(id -u)" != 0 ]; then
  if [ "${SANDBOX_TESTS_MUST_RUN:-0}" = 1 ]; then
    echo "test.sh: cannot run the cgroup v2 tests (need root and $vm)" >&2
    exit 1
  fi
  echo "test.sh: SKIP cgroup v2 tests (need root and $vm)" >&2
  exit 0
fi

# The test executables cargo just built, by target name.
executable() {
  cargo test "$@" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])'
}
limits=$(executable -p sandbox-tests --test limits)
lib=$(executable -p sandboxd --lib)
oci=$(executable -p sandbox-tests --test oci)
echo "test.sh: cgroup v2 guest: limit tests, cgroups unit tests, runc/crun bundle comparison"
# The guest runs 5-20x slower: time limits in the tests scale by this.
export SANDBOX_TEST_TIME_SCALE=${SANDBOX_TEST_TIME_SCALE:-10}
export SANDBOX_BIN_DIR=${SANDBOX_BIN_DIR:-$(dirname "$(dirname "$limits")")}
export SANDBOX_TEST_ROOTFS=${SANDBOX_TEST_ROOTFS:-$SANDBOX_BIN_DIR/test-rootfs-busybox}
"$vm" "$limits" --test-threads=2
"$vm" "$lib" --test-threads=1 cgroups::
# crun refuses this hybrid host; on v2 it is compared with sandboxd and runc.
"$vm" "$oci" --test-threads=1 exported_bundle_runs_under_runc_and_crun_like_sandboxd
