//! Harness for sandboxd's privileged integration tests: start a private daemon, find the
//! binaries, check that nothing a sandbox had is left behind.
//!
//! Tests need root. Without it they skip with a message, except when
//! `SANDBOX_TESTS_MUST_RUN=1` (set by CI), where a skip is a failure. Time limits are multiplied
//! by `SANDBOX_TEST_TIME_SCALE` (the cgroup-v2 VM runs 5-20x slower).

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sandboxes one test daemon may hold (and uid ranges it owns).
pub const MAX_SANDBOXES: u32 = 8;

/// Whether a test that cannot run must fail rather than skip.
pub fn must_run() -> bool {
    std::env::var("SANDBOX_TESTS_MUST_RUN").is_ok_and(|v| v == "1")
}

/// True when the test can run (we are root); otherwise skips, or panics under `must_run`.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        !must_run(),
        "{test}: needs root, and SANDBOX_TESTS_MUST_RUN=1 forbids skipping"
    );
    eprintln!("SKIP {test}: needs root");
    false
}

/// `d` scaled by `SANDBOX_TEST_TIME_SCALE`.
pub fn scaled(d: Duration) -> Duration {
    let scale: f64 = std::env::var("SANDBOX_TEST_TIME_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    d.mul_f64(scale.max(1.0))
}

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A workspace binary: `$SANDBOX_BIN_DIR/NAME`, else next to the test executable's directory
/// (`target/debug/deps/../NAME`).
pub fn bin(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("SANDBOX_BIN_DIR") {
        return Path::new(&dir).join(name);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (cargo test --workspace builds it)",
        p.display()
    );
    p
}

/// The busybox root filesystem (built once by `rootfs/busybox.sh`).
pub fn busybox_rootfs() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let dir = std::env::var("SANDBOX_TEST_ROOTFS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            bin("sandboxd")
                .parent()
                .unwrap()
                .join("test-rootfs-busybox")
        });
    if !dir.join("bin/busybox").exists() {
        let st = Command::new("bash")
            .arg(repo_root().join("rootfs/busybox.sh"))
            .arg(&dir)
            .status()
            .expect("running rootfs/busybox.sh");
        assert!(st.success(), "rootfs/busybox.sh failed");
    }
    dir
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// The shipped policies, into `dir`; `default` may also mount the build directories (where
/// the probe lives, wherever the clone and its target directory are).
pub fn write_test_policies(dir: &Path) {
    std::fs::create_dir_all(dir).expect("policy dir");
    let target = bin("sandboxd")
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(repo_root);
    for (name, text) in sandbox_policy::SHIPPED {
        let text = if *name == "default" {
            let line = format!(
                "host_mounts = [\"/tmp\", \"/var/tmp\", {:?}, {:?}]",
                repo_root().to_string_lossy(),
                target.to_string_lossy()
            );
            let out: Vec<String> = text
                .lines()
                .map(|l| {
                    if l.starts_with("host_mounts") {
                        line.clone()
                    } else {
                        l.to_string()
                    }
                })
                .collect();
            assert!(
                out.contains(&line),
                "the shipped default has no host_mounts line"
            );
            out.join("\n")
        } else {
            text.to_string()
        };
        std::fs::write(dir.join(format!("{name}.toml")), text).expect("writing a policy");
    }
}

/// Whether this host's cgroups are v2 only.
pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The cgroup directories of `rel` (relative to the hierarchy roots) that exist.
pub fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    let roots: Vec<PathBuf> = if cgroup_v2() {
        vec![PathBuf::from("/sys/fs/cgroup")]
    } else {
        ["memory", "pids", "cpu", "cpuacct", "freezer"]
            .iter()
            .map(|c| Path::new("/sys/fs/cgroup").join(c))
            .collect()
    };
    roots
        .into_iter()
        .map(|r| r.join(rel))
        .filter(|p| p.is_dir())
        .collect()
}

/// Pids of processes whose real or effective uid is in `range`.
pub fn processes_with_uid_in(range: std::ops::Range<u32>) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let uids: Vec<u32> = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .map(|v| {
                v.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if uids.iter().any(|u| range.contains(u)) {
            let name = status.lines().next().unwrap_or("").to_string();
            found.push((pid, name));
        }
    }
    found
}

/// A private sandboxd for one test: its own socket, state dir, cgroup parent and uid ranges.
#[derive(Debug)]
pub struct TestDaemon {
    /// The socket.
    pub socket: PathBuf,
    /// Temp dir holding socket, state, log.
    pub dir: PathBuf,
    /// The daemon's state dir.
    pub state_dir: PathBuf,
    /// Its cgroup parent.
    pub cgroup_parent: String,
    /// Its first uid.
    pub uid_base: u32,
    /// The daemon's log file.
    pub log: PathBuf,
    child: Option<Child>,
}

impl TestDaemon {
    /// Starts a daemon and waits until it answers.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a daemon with extra flags.
    pub fn start_with(extra: &[&str]) -> Self {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("sandboxd-test-{pid}-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        // Unique across concurrent test processes and daemons: 1024 blocks of 8 ranges.
        let block = (pid % 64) * 16 + n % 16;
        // Each block: the daemon's ranges and its export range (one more).
        let uid_base = 0x5000_0000 + block * (MAX_SANDBOXES + 1) * 65536;
        let mut d = TestDaemon {
            socket: dir.join("sandboxd.sock"),
            state_dir: dir.join("state"),
            cgroup_parent: format!("sbxtest-{pid}-{n}"),
            uid_base,
            log: dir.join("sandboxd.log"),
            dir,
            child: None,
        };
        write_test_policies(&d.dir.join("policies"));
        d.spawn(extra);
        d
    }

    /// The daemon's policy directory.
    pub fn policy_dir(&self) -> PathBuf {
        self.dir.join("policies")
    }

    fn spawn(&mut self, extra: &[&str]) {
        let log = std::fs::File::create(&self.log).expect("log file");
        let child = Command::new(bin("sandboxd"))
            .arg("--socket")
            .arg(&self.socket)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .args(["--cgroup-parent", &self.cgroup_parent])
            .args(["--uid-base", &self.uid_base.to_string()])
            .args(["--max-sandboxes", &MAX_SANDBOXES.to_string()])
            .args(["--group", "root"])
            .arg("--policy-dir")
            .arg(self.dir.join("policies"))
            .args(extra)
            .env("SANDBOXD_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting sandboxd");
        self.child = Some(child);
        let deadline = Instant::now() + scaled(Duration::from_secs(10));
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "sandboxd exited ({st}) before answering:\n{}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "sandboxd did not answer:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Starts the daemon again on the same socket, state dir, cgroup parent and uid ranges.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or crash the daemon first");
        self.spawn(&[]);
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The daemon's pid.
    pub fn pid(&self) -> i32 {
        self.child
            .as_ref()
            .map(|c| c.id() as i32)
            .expect("daemon running")
    }

    /// A connected SDK client.
    pub async fn client(&self) -> agent_sdk::Client {
        agent_sdk::Client::connect(&self.socket)
            .await
            .expect("connecting to the test daemon")
    }

    /// `sandboxctl --socket S` ready for more arguments.
    pub fn sandboxctl(&self) -> Command {
        let mut c = Command::new(bin("sandboxctl"));
        c.arg("--socket").arg(&self.socket);
        c
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("daemon running");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + scaled(Duration::from_secs(15));
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let st = child.wait().expect("wait");
                panic!(
                    "sandboxd did not stop on SIGTERM ({st:?}):\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL (a crash) and wait.
    pub fn crash(&mut self) {
        let mut child = self.child.take().expect("daemon running");
        let _ = child.kill();
        let st = child.wait().expect("wait");
        assert_eq!(st.signal(), Some(9));
    }

    /// The uid ranges this daemon hands out.
    pub fn uid_range(&self) -> std::ops::Range<u32> {
        self.uid_base..self.uid_base + MAX_SANDBOXES * 65536
    }

    /// Waits (bounded) until nothing of any sandbox is left: no sandbox cgroup under the
    /// parent, no process in the daemon's uid ranges (so no user namespace of them either), no
    /// mount on the host under the daemon's directory, and (if it runs) no live sandbox in the
    /// daemon's status.
    pub async fn assert_no_leaks(&self) {
        let deadline = Instant::now() + scaled(Duration::from_secs(5));
        loop {
            let cgroups: Vec<PathBuf> = cgroup_dirs(&self.cgroup_parent)
                .into_iter()
                .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.path())
                .collect();
            let procs = processes_with_uid_in(self.uid_range());
            // Sandbox mounts live in their own mount namespaces; none may show up on the host.
            let dir = self.dir.to_string_lossy().into_owned();
            let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(&dir))
                .map(str::to_string)
                .collect();
            let live = if self.child.is_some() {
                self.client()
                    .await
                    .status()
                    .await
                    .expect("status")
                    .sandboxes
            } else {
                Vec::new()
            };
            if cgroups.is_empty() && procs.is_empty() && live.is_empty() && mounts.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "leaked: cgroups {cgroups:?}, processes {procs:?}, live sandboxes {live:?}, mounts {mounts:?}\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if self.child.is_some() && !std::thread::panicking() {
            self.stop();
        } else if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in cgroup_dirs(&self.cgroup_parent) {
            let _ = std::fs::remove_dir(d);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Parses the probe's `key=value` lines.
pub fn parse_probe(out: &[u8]) -> std::collections::BTreeMap<String, String> {
    String::from_utf8_lossy(out)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Starts `argv` over a raw protocol connection and returns the connection once the sandbox
/// runs (for tests that hang up without any SDK clean-up).
pub fn raw_start(socket: &Path, argv: &[&str]) -> (std::os::unix::net::UnixStream, String) {
    use sandbox_proto::{encode, Request, Response, RunSpec, PROTOCOL_VERSION};
    use std::io::Write;
    let mut s = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(scaled(Duration::from_secs(10))))
        .unwrap();
    let recv = |s: &mut std::os::unix::net::UnixStream| {
        let body = sandbox_proto::codec::read_frame(s, 16 << 20)
            .unwrap()
            .unwrap();
        sandbox_proto::decode_response(&body).unwrap()
    };
    s.write_all(
        &encode(&Request::Hello {
            protocol: PROTOCOL_VERSION,
            client: "raw".into(),
        })
        .unwrap(),
    )
    .unwrap();
    assert!(matches!(recv(&mut s), Response::Welcome { .. }));
    let spec = RunSpec {
        argv: argv.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    };
    s.write_all(&encode(&Request::Run { id: 1, spec }).unwrap())
        .unwrap();
    match recv(&mut s) {
        Response::Started { sandbox_id, .. } => (s, sandbox_id),
        other => panic!("expected started, got {other:?}"),
    }
}
