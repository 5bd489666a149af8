//! Policies, from outside and inside: every shipped policy runs a real workload, a request is
//! held to its policy's bounds, the filesystem modes, kept capabilities and device nodes are
//! what the policy says, and `sandboxctl policy` validates and shows policies.

// Integration tests are a crate of their own, not a test module.
#![allow(clippy::tests_outside_test_module)]

use std::os::unix::fs::MetadataExt;

use agent_sdk::{Error, ErrorCode, FsMode, SandboxBuilder};
use sandbox_tests::{bin, busybox_rootfs, require_root, TestDaemon};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A small Python project with a test suite, as an agent would run it.
const PROJECT: &str = r#"
set -e
mkdir -p /workspace/proj && cd /workspace/proj
cat > calc.py <<'PY'
def add(a, b):
    return a + b
PY
cat > test_calc.py <<'PY'
import unittest, calc
class T(unittest.TestCase):
    def test_add(self):
        self.assertEqual(calc.add(2, 3), 5)
PY
python3 -m unittest -q 2>&1
echo PROJECT-OK
"#;

#[tokio::test]
async fn default_policy_runs_a_project_without_capabilities() {
    if !require_root("default_policy_runs_a_project_without_capabilities") {
        return;
    }
    let d = TestDaemon::start();
    let client = d.client().await;
    let out = client
        .run([
            "sh",
            "-c",
            &format!("{PROJECT}\ngrep -E 'CapEff|NoNewPrivs|Seccomp:' /proc/self/status"),
        ])
        .policy("default")
        .output()
        .await
        .unwrap();
    let o = text(&out.stdout);
    assert_eq!(out.status.code, Some(0), "{o}{}", text(&out.stderr));
    assert!(o.contains("PROJECT-OK"), "{o}");
    assert!(o.contains("CapEff:\t0000000000000000"), "{o}");
    assert!(
        o.contains("NoNewPrivs:\t1") && o.contains("Seccomp:\t2"),
        "{o}"
    );
}

#[tokio::test]
async fn strict_policy_is_read_only_small_and_bounded() {
    if !require_root("strict_policy_is_read_only_small_and_bounded") {
        return;
    }
    let d = TestDaemon::start();
    let client = d.client().await;
    // The workload: writes where it may and where it may not, and counts its limits.
    let script = r#"
echo tmp > /tmp/ok && echo TMP-OK
echo x > /workspace/no 2>/dev/null || echo WORKSPACE-RO
echo x > /etc/no 2>/dev/null || echo ROOT-RO
ulimit -n
df -k /dev/shm | tail -1 | awk '{print "shm " $2}'
"#;
    let out = client
        .run(["sh", "-c", script])
        .policy("strict")
        .output()
        .await
        .unwrap();
    let o = text(&out.stdout);
    assert_eq!(out.status.code, Some(0), "{o}{}", text(&out.stderr));
    for want in ["TMP-OK", "WORKSPACE-RO", "ROOT-RO", "\n256\n", "shm 16384"] {
        assert!(o.contains(want), "{want:?} missing from {o}");
    }
    // Its memory limit (256 MiB) holds: a 400 MB allocation is OOM-killed.
    let out = client
        .run(["python3", "-c", "b = bytearray(400 << 20); print(len(b))"])
        .policy("strict")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.oom_killed,
        "{:?} {}",
        out.status,
        text(&out.stderr)
    );
    assert_eq!(out.status.memory_limit, Some(256 << 20));
    // A request may not loosen it.
    for (b, field) in [
        (
            client.run(["true"]).policy("strict").memory(1 << 30),
            "limits.memory",
        ),
        (
            client
                .run(["true"])
                .policy("strict")
                .filesystem(FsMode::WorkspaceOnly),
            "filesystem",
        ),
        (
            client
                .run(["true"])
                .policy("strict")
                .mount("/tmp", "/x", true),
            "mounts[0].host",
        ),
    ] {
        match b.output().await {
            Err(Error::Daemon { code, message }) => {
                assert_eq!(code, ErrorCode::PolicyViolation, "{message}");
                assert!(message.starts_with(field), "{message}");
                assert!(message.contains("strict"), "{message}");
            }
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn ci_policy_runs_a_test_suite_on_a_host_folder() {
    if !require_root("ci_policy_runs_a_test_suite_on_a_host_folder") {
        return;
    }
    let d = TestDaemon::start();
    let src = d.dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let client = d.client().await;
    let script = format!(
        "{PROJECT}\ncp -r /workspace/proj /src/ && echo built > /src/proj/artifact\ndf -k /workspace | tail -1 | awk '{{print \"ws \" $2}}'\nnproc"
    );
    let out = client
        .run(["sh", "-c", &script])
        .policy("ci")
        .mount(src.to_string_lossy(), "/src", false)
        .output()
        .await
        .unwrap();
    let o = text(&out.stdout);
    assert_eq!(out.status.code, Some(0), "{o}{}", text(&out.stderr));
    assert!(o.contains("PROJECT-OK") && o.contains("ws 8388608"), "{o}");
    let artifact = src.join("proj/artifact");
    assert_eq!(std::fs::read_to_string(&artifact).unwrap(), "built\n");
    assert_eq!(
        std::fs::metadata(&artifact).unwrap().uid(),
        0,
        "owned by the caller"
    );
}

/// What Chromium's own sandbox does: a nested user namespace with new pid and net namespaces.
/// The browser profile allows it; the default profile does not. /dev/shm is Chromium-sized.
#[tokio::test]
async fn browser_policy_allows_a_nested_namespace_sandbox() {
    if !require_root("browser_policy_allows_a_nested_namespace_sandbox") {
        return;
    }
    let d = TestDaemon::start();
    let client = d.client().await;
    // clone(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET), as Chromium's zygote starts.
    let script = r#"
df -k /dev/shm | tail -1 | awk '{print "shm " $2}'
python3 - <<'PY'
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
flags = 0x10000000 | 0x20000000 | 0x40000000 | 17
pid = libc.syscall(56, flags, 0, 0, 0, 0)
if pid == 0:
    ifaces = [l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]]
    print("nested-pid=%d ifaces=%s" % (os.getpid(), ",".join(ifaces)), flush=True)
    os._exit(0)
if pid < 0:
    print("clone: %s" % os.strerror(ctypes.get_errno()), flush=True)
    raise SystemExit(1)
os.waitpid(pid, 0)
PY
"#;
    let out = client
        .run(["sh", "-c", script])
        .policy("browser")
        .output()
        .await
        .unwrap();
    let o = text(&out.stdout);
    assert_eq!(out.status.code, Some(0), "{o}{}", text(&out.stderr));
    assert!(o.contains("shm 1048576"), "{o}");
    assert!(o.contains("nested-pid=1 ifaces=lo\n"), "{o}");

    let out = client
        .run(["sh", "-c", script])
        .policy("default")
        .output()
        .await
        .unwrap();
    assert_ne!(out.status.code, Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("clone: Operation not permitted"),
        "{}",
        text(&out.stdout)
    );
}

/// The allowlist policy needs the egress proxy (the network issue): until then a request
/// under it is refused rather than run with no network it did not ask for; asking for `none`
/// under it runs.
#[tokio::test]
async fn network_allowlist_policy_is_refused_until_its_proxy_exists() {
    if !require_root("network_allowlist_policy_is_refused_until_its_proxy_exists") {
        return;
    }
    let d = TestDaemon::start();
    let client = d.client().await;
    match client
        .run(["true"])
        .policy("network-allowlist")
        .output()
        .await
    {
        Err(Error::Daemon { code, message }) => {
            assert_eq!(code, ErrorCode::PolicyViolation, "{message}");
            assert!(message.starts_with("network:"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let out = client
        .run([
            "sh",
            "-c",
            "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '",
        ])
        .policy("network-allowlist")
        .network(agent_sdk::NetMode::None)
        .output()
        .await
        .unwrap();
    assert_eq!(text(&out.stdout), "lo\n", "{}", text(&out.stderr));
}

fn write_policy(d: &TestDaemon, name: &str, body: &str) -> String {
    let p = d.dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_string_lossy().into_owned()
}

/// `full`: the root is writable, files keep their owners, writes never reach the rootfs.
#[tokio::test]
async fn full_mode_overlays_the_rootfs() {
    if !require_root("full_mode_overlays_the_rootfs") {
        return;
    }
    let d = TestDaemon::start();
    let rootfs = busybox_rootfs();
    let pol = format!(
        "[filesystem]\nmode = \"full\"\nrootfs = {:?}\n",
        rootfs.to_string_lossy()
    );
    let out = d
        .sandboxctl()
        .args([
            "run",
            "--policy",
            &write_policy(&d, "full.toml", &pol),
            "--",
        ])
        .args([
            "sh",
            "-c",
            "echo new > /etc/added && cat /etc/added && echo more >> /etc/passwd && \
             stat -c '%U %u' /bin/busybox && mkdir /opt-new && echo FULL-OK",
        ])
        .output()
        .unwrap();
    let o = text(&out.stdout);
    assert!(out.status.success(), "{o}{}", text(&out.stderr));
    assert!(o.contains("new\nroot 0\nFULL-OK"), "{o}");
    assert!(!rootfs.join("etc/added").exists());
    assert!(!std::fs::read_to_string(rootfs.join("etc/passwd"))
        .unwrap()
        .contains("more"));
    // Full needs a root filesystem directory: the host's cannot be overlaid.
    let out = d
        .sandboxctl()
        .args([
            "run",
            "--policy",
            &write_policy(&d, "bad.toml", "[filesystem]\nmode = \"full\"\n"),
            "true",
        ])
        .output()
        .unwrap();
    let e = text(&out.stderr);
    assert!(
        e.contains("bad.toml:2:8: filesystem.mode:") || e.contains("bad.toml:2:"),
        "{e}"
    );
}

/// Kept capabilities reach root and non-root execs (as ambient ones); devices the policy
/// names appear in /dev with the host's numbers.
#[tokio::test]
async fn capabilities_and_devices_come_from_the_policy() {
    if !require_root("capabilities_and_devices_come_from_the_policy") {
        return;
    }
    let d = TestDaemon::start();
    let pol = write_policy(
        &d,
        "caps.toml",
        "devices = [\"/dev/fuse\"]\n[process]\ncapabilities = [\"CAP_NET_BIND_SERVICE\"]\n",
    );
    let client = d.client().await;
    let sb = client
        .create()
        .policy_text("caps.toml", std::fs::read_to_string(&pol).unwrap())
        .create()
        .await
        .unwrap();
    for uid in [0u32, 1000] {
        let out = sb
            .exec([
                "sh",
                "-c",
                "grep -E 'Cap(Eff|Amb|Bnd)' /proc/self/status; stat -c '%t:%T' /dev/fuse",
            ])
            .user(uid, uid)
            .output()
            .await
            .unwrap();
        let o = text(&out.stdout);
        // CAP_NET_BIND_SERVICE is bit 10.
        for set in ["CapEff", "CapAmb", "CapBnd"] {
            assert!(
                o.contains(&format!("{set}:\t0000000000000400")),
                "uid {uid}: {o}"
            );
        }
        assert!(o.contains("a:e5"), "fuse is 10:229: {o}");
    }
    let info = sb.inspect().await.unwrap();
    assert_eq!(info.policy, "caps");
    assert_eq!(info.capabilities, ["CAP_NET_BIND_SERVICE"]);
    sb.destroy().await.unwrap();

    // Without the policy's word, no device and no capability.
    let out = client
        .run(["sh", "-c", "ls /dev/fuse; grep CapEff /proc/self/status"])
        .output()
        .await
        .unwrap();
    assert!(text(&out.stdout).contains("CapEff:\t0000000000000000"));
    assert!(
        text(&out.stderr).contains("No such file"),
        "{}",
        text(&out.stderr)
    );
}

/// Only root may send a policy; a policy name is never a path.
#[tokio::test]
async fn policies_cannot_be_smuggled() {
    if !require_root("policies_cannot_be_smuggled") {
        return;
    }
    let d = TestDaemon::start();
    let client = d.client().await;
    for (b, code) in [
        (
            client.run(["true"]).policy("../../etc/passwd"),
            ErrorCode::InvalidArgument,
        ),
        (client.run(["true"]).policy("nonesuch"), ErrorCode::NotFound),
        (
            client
                .run(["true"])
                .policy_text("x.toml", "[limits]\nmemory = \"lots\"\n"),
            ErrorCode::InvalidArgument,
        ),
    ] {
        match b.output().await {
            Err(Error::Daemon { code: c, message }) => assert_eq!(c, code, "{message}"),
            other => panic!("{other:?}"),
        }
    }
    // A non-root client cannot send one inline.
    let out = std::process::Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "0", "--clear-groups"])
        .arg(bin("sandboxctl"))
        .arg("--socket")
        .arg(&d.socket)
        .args(["run", "--policy", "/dev/null", "true"])
        .output()
        .unwrap();
    let e = text(&out.stderr);
    assert!(
        e.contains("permission_denied") || e.contains("Permission denied"),
        "{e}"
    );
}

#[tokio::test]
async fn policy_cli_validates_and_shows() {
    if !require_root("policy_cli_validates_and_shows") {
        return;
    }
    let d = TestDaemon::start();
    let good = write_policy(&d, "good.toml", "[limits]\nmemory = \"2GiB\"\n");
    let bad = write_policy(
        &d,
        "bad.toml",
        "description = \"x\"\n[limits]\nmemory = \"2GiB\"\npids = 1\n[network]\nmode = \"none\"\nallow_hosts = [\"a.com\"]\n",
    );
    let out = d
        .sandboxctl()
        .args(["policy", "validate", &good, &bad])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("good.toml: ok"),
        "{}",
        text(&out.stdout)
    );
    let e = text(&out.stderr);
    assert!(
        e.contains("bad.toml:4:") && e.contains("limits.pids"),
        "{e}"
    );

    let out = d
        .sandboxctl()
        .args(["policy", "show", "strict"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = write_policy(&d, "shown.toml", &text(&out.stdout));
    let back = sandbox_policy::load(None, &shown).unwrap();
    let shipped = sandbox_policy::load(None, "strict").unwrap();
    assert_eq!(back.limits, shipped.limits);
    assert_eq!(back.max, shipped.max);
    assert_eq!(back.filesystem, shipped.filesystem);
    // The daemon's default policy is what `show` without a name prints.
    let out = d.sandboxctl().args(["policy", "show"]).output().unwrap();
    assert!(
        text(&out.stdout).contains("host_mounts"),
        "{}",
        text(&out.stdout)
    );
}
