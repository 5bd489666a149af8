//! Tests of the sandbox cgroups; they need root (skipped otherwise, see `privileged`).

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A unique parent cgroup `sandboxd-cgtest-<pid>-<n>[/nested]`, swept and removed on drop,
/// also when the test fails.
struct Parent(Vec<String>);

impl Parent {
    fn new(nested: bool) -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let top = format!("sandboxd-cgtest-{}-{n}", std::process::id());
        let nested = nested.then(|| format!("{top}/nested"));
        Self([top].into_iter().chain(nested).collect())
    }

    fn path(&self) -> &str {
        self.0.last().expect("one level at least")
    }

    fn create(&self, name: &str, limits: &CgroupLimits) -> SandboxCgroup {
        SandboxCgroup::create(self.path(), name, limits).expect("create")
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        for level in self.0.iter().rev() {
            let _ = sweep(level);
            let _ = SandboxCgroup::load(level).destroy();
        }
    }
}

/// Whether privileged tests can run: skipped when not root, unless SANDBOX_TESTS_MUST_RUN=1.
fn privileged() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let must = std::env::var("SANDBOX_TESTS_MUST_RUN").is_ok_and(|v| v == "1");
    assert!(root || !must, "SANDBOX_TESTS_MUST_RUN=1 but not root");
    if !root {
        eprintln!("skipped: cgroup tests need root");
    }
    root
}

/// Reads `file` of `cg` in the v1 hierarchy `controller`, or in its v2 directory.
fn read(cg: &SandboxCgroup, controller: &str, file: &str) -> Option<String> {
    let dir = match version() {
        CgroupVersion::V1 => Path::new("/sys/fs/cgroup").join(controller),
        CgroupVersion::V2 => PathBuf::from("/sys/fs/cgroup"),
    };
    let value = fs::read_to_string(dir.join(cg.path()).join(file)).ok();
    value.map(|s| s.trim().to_owned())
}

/// `sh -c script` that first waits for a line on stdin, so that it can be attached first.
fn gated(script: &str) -> Child {
    let script = format!("read x; {script}");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]).stdin(Stdio::piped());
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    cmd.spawn().expect("spawn sh")
}

fn open_gate(child: &mut Child) {
    let stdin = child.stdin.as_mut().expect("piped stdin");
    stdin.write_all(b"go\n").expect("write the gate line");
}

fn limits(memory: Option<u64>, pids: Option<u64>, cpus: Option<f64>) -> CgroupLimits {
    CgroupLimits {
        memory,
        swap: 0,
        pids,
        cpus,
    }
}

/// Expected files: "<v1 hierarchy> <v1 file> <value>|<v2 file> <value>". Swap files may be
/// missing (swap accounting off).
const LIMITED: &[&str] = &[
    "memory memory.limit_in_bytes 67108864|memory.max 67108864",
    "memory memory.memsw.limit_in_bytes 67108864|memory.swap.max 0",
    "pids pids.max 32|pids.max 32",
    "cpu cpu.cfs_quota_us 150000|cpu.max 150000 100000",
    "cpu cpu.cfs_period_us 100000|cpu.max 150000 100000",
    "freezer freezer.state THAWED|cgroup.freeze 0",
    "cpuacct cgroup.procs |cgroup.procs ",
];
const UNLIMITED: &[&str] = &[
    "memory memory.limit_in_bytes 9223372036854771712|memory.max max",
    "pids pids.max max|pids.max max",
    "cpu cpu.cfs_quota_us -1|cpu.max max 100000",
];

#[test]
fn paths_and_cpus_are_checked_before_anything_is_created() {
    let bad = [
        ("", "a"),
        ("/abs", "a"),
        ("a//b", "c"),
        ("a/..", "b"),
        ("a", "b/c"),
    ];
    for (parent, name) in bad {
        let err = SandboxCgroup::create(parent, name, &limits(None, None, None)).unwrap_err();
        assert!(matches!(err, CgroupError::InvalidPath { .. }), "{err}");
    }
    for cpus in [0.0, 0.001, -1.0, f64::NAN, f64::INFINITY] {
        let limits = limits(None, None, Some(cpus));
        let err = SandboxCgroup::create("sandboxd-cgtest-none", "x", &limits).unwrap_err();
        assert!(matches!(err, CgroupError::InvalidCpus { .. }), "{err}");
    }
    assert!(!SandboxCgroup::load("sandboxd-cgtest-none").exists());
    assert!(!SandboxCgroup::load("../etc").exists());
    let err = sweep("a/../b").unwrap_err().to_string();
    assert_eq!(err, "invalid cgroup path \"a/../b\"");
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    assert_eq!(version().as_str(), if v2 { "v2" } else { "v1" });
}

#[test]
fn limits_are_written_to_the_version_s_files() {
    if !privileged() {
        return;
    }
    let parent = Parent::new(true);
    let full = limits(Some(64 << 20), Some(32), Some(1.5));
    let cases = [(full, LIMITED), (CgroupLimits::default(), UNLIMITED)];
    for (i, (limits, files)) in cases.iter().enumerate() {
        let cg = parent.create(&format!("box{i}"), limits);
        assert_eq!(cg.path(), format!("{}/box{i}", parent.path()));
        for line in *files {
            let (v1, v2) = line.split_once('|').unwrap();
            let (controller, v1) = v1.split_once(' ').unwrap();
            let (file, want) = match version() {
                CgroupVersion::V1 => v1.split_once(' ').unwrap(),
                CgroupVersion::V2 => v2.split_once(' ').unwrap(),
            };
            match read(&cg, controller, file) {
                Some(got) => assert_eq!(got, want, "{file}"),
                None => assert!(file.contains("sw"), "{file} is missing"),
            }
        }
        let err = SandboxCgroup::create(parent.path(), &format!("box{i}"), limits);
        let err = err.unwrap_err();
        assert!(matches!(err, CgroupError::AlreadyExists { .. }), "{err}");
        cg.destroy().unwrap();
        assert!(!cg.exists());
        cg.destroy().unwrap();
        cg.kill_all().unwrap();
    }
}

#[test]
fn failed_create_removes_the_cgroup() {
    if !privileged() {
        return;
    }
    let parent = Parent::new(false);
    // Above PIDS_MAX (2^22 + 1): the kernel refuses it after the directories exist.
    let limits = limits(None, Some(10_000_000), None);
    let err = SandboxCgroup::create(parent.path(), "box", &limits).unwrap_err();
    assert!(
        matches!(err, CgroupError::SetLimit { limit: "pids", .. }),
        "{err}"
    );
    assert!(!SandboxCgroup::load(&format!("{}/box", parent.path())).exists());
}

#[test]
fn attached_process_is_listed_and_killed() {
    if !privileged() {
        return;
    }
    let parent = Parent::new(false);
    let cg = parent.create("box", &CgroupLimits::default());
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    cg.attach(child.id()).unwrap();
    assert_eq!(cg.pids(), vec![child.id()]);
    // Loaded by path, as the per-sandbox helper does.
    SandboxCgroup::load(cg.path()).kill_all().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    cg.destroy().unwrap();
    assert!(!cg.exists());
}

#[test]
fn freezer_kill_gets_forked_children_too() {
    if !privileged() {
        return;
    }
    let parent = Parent::new(false);
    let cg = parent.create("box", &CgroupLimits::default());
    let mut child = gated("sleep 1000 & sleep 1000 & wait");
    cg.attach(child.id()).unwrap();
    open_gate(&mut child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while cg.pids().len() < 3 && Instant::now() < deadline {
        thread::sleep(POLL_INTERVAL);
    }
    assert_eq!(cg.pids().len(), 3, "{:?}", cg.pids());
    // The fallback of v2 kernels without cgroup.kill, and the only way on v1.
    cg.kill_frozen().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    cg.destroy().unwrap();
    assert!(!cg.exists());
}

#[test]
fn sweep_destroys_leftovers_with_live_processes() {
    if !privileged() {
        return;
    }
    let parent = Parent::new(false);
    let missing = format!("{}/missing", parent.path());
    assert_eq!(sweep(&missing).unwrap(), Vec::<String>::new());
    let busy = parent.create("busy", &CgroupLimits::default());
    let idle = parent.create("idle", &CgroupLimits::default());
    let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
    busy.attach(child.id()).unwrap();
    assert_eq!(sweep(parent.path()).unwrap(), vec!["busy", "idle"]);
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(!busy.exists() && !idle.exists());
    assert_eq!(sweep(parent.path()).unwrap(), Vec::<String>::new());
}

#[test]
fn oom_kill_is_counted() {
    if !privileged() {
        return;
    }
    let parent = Parent::new(false);
    let cg = parent.create("box", &limits(Some(32 << 20), None, None));
    assert_eq!(cg.oom_kills(), 0);
    // tail keeps all of its newline-free input: 200 MiB against 32 MiB, swap off.
    let mut child = gated("head -c 209715200 /dev/zero | tail");
    cg.attach(child.id()).unwrap();
    open_gate(&mut child);
    let status = child.wait().unwrap();
    assert!(!status.success(), "{status:?}");
    assert!(cg.oom_kills() >= 1, "oom_kills = {}", cg.oom_kills());
    cg.destroy().unwrap();
}

#[test]
fn stat_files_are_parsed() {
    assert_eq!(number("123\n"), Some(123));
    assert_eq!(number("x"), None);
    assert_eq!(limit("max\n"), Some(None));
    assert_eq!(limit("9223372036854771712\n"), Some(None));
    assert_eq!(limit("67108864\n"), Some(Some(64 << 20)));
    assert_eq!(limit("-1"), None);
    let cpu = "usage_usec 300\nuser_usec 200\nsystem_usec 100\nnr_periods 0\n";
    assert_eq!(keyed(cpu, "user_usec"), Some(200));
    assert_eq!(keyed(cpu, "user"), None);
    assert_eq!(keyed("populated 1\nfrozen 0\n", "frozen"), Some(0));
    let io = "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n\
              259:0 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0 cost.vrate=100.00\n";
    assert_eq!(io_v2(io), Some((11, 22)));
    assert_eq!(io_v2(""), Some((0, 0)));
    assert_eq!(io_v2("8:0 rbytes=x"), None);
    let io = "8:0 Read 10\n8:0 Write 20\n8:0 Sync 30\n8:0 Total 30\n\
              8:16 Read 1\n8:16 Write 2\nTotal 33\n";
    assert_eq!(io_v1(io), Some((11, 22)));
    assert_eq!(io_v1("Total 0\n"), Some((0, 0)));
}

/// Whether this host can account block I/O to a sandbox cgroup: v1 blkio mounted, or v2 io.
fn io_accounted() -> bool {
    match version() {
        CgroupVersion::V1 => hierarchies::V1::new()
            .get_mount_point(cgroups_rs::Controllers::BlkIo)
            .is_some(),
        CgroupVersion::V2 => fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .is_ok_and(|c| c.split_whitespace().any(|c| c == "io")),
    }
}

#[test]
fn stats_report_cpu_memory_pids_and_limits() {
    if !privileged() {
        return;
    }
    let parent = Parent::new(true);
    let unlimited = parent.create("free", &CgroupLimits::default());
    let stats = unlimited.stats().unwrap();
    assert_eq!((stats.memory_limit, stats.pids_limit), (None, None));
    assert_eq!((stats.pids_current, stats.oom_kills), (Some(0), 0));
    assert!(!stats.frozen);
    unlimited.destroy().unwrap();
    let err = unlimited.stats().unwrap_err();
    assert!(matches!(err, CgroupError::NotFound { .. }), "{err}");

    let cg = parent.create("box", &limits(Some(256 << 20), Some(64), Some(1.0)));
    // Waits for a line, then touches 24 MiB and burns 300 ms of CPU, says so and waits.
    let script = "import sys, time\n\
                  sys.stdin.readline()\n\
                  b = bytes(range(256)) * (96 << 10)\n\
                  t = time.process_time()\n\
                  while time.process_time() - t < 0.3: pass\n\
                  print(len(b), flush=True)\n\
                  sys.stdin.readline()\n";
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn python3");
    cg.attach(child.id()).unwrap();
    open_gate(&mut child);
    let mut line = String::new();
    let stdout = child.stdout.as_mut().expect("piped stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    assert_eq!(line.trim(), (24 << 20).to_string());

    let stats = cg.stats().unwrap();
    let cpu = stats.cpu_usage_us.unwrap();
    assert!(cpu > 50_000, "{stats:?}");
    let split = stats.cpu_user_us.unwrap() + stats.cpu_system_us.unwrap();
    assert!(split > 50_000, "{stats:?}");
    assert!(stats.memory_peak.unwrap() >= 20 << 20, "{stats:?}");
    assert!(stats.memory_current.unwrap() > 0, "{stats:?}");
    assert!(stats.pids_current.unwrap() >= 1, "{stats:?}");
    assert_eq!(stats.memory_limit, Some(256 << 20));
    assert_eq!(stats.pids_limit, Some(64));
    assert_eq!((stats.oom_kills, stats.frozen), (0, false));
    let io = (
        stats.io_read_bytes.is_some(),
        stats.io_write_bytes.is_some(),
    );
    assert_eq!(io, (io_accounted(), io_accounted()), "{stats:?}");
    let json = serde_json::to_string(&stats).unwrap();
    assert_eq!(serde_json::from_str::<CgroupStats>(&json).unwrap(), stats);
    cg.destroy().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn frozen_processes_stop_until_thawed_and_die_on_destroy() {
    if !privileged() {
        return;
    }
    let parent = Parent::new(false);
    let cg = parent.create("box", &CgroupLimits::default());
    let dir = std::env::temp_dir().join(format!("sandboxd-cgtest-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let counter = dir.join("counter");
    let script = format!(
        "i=0; while :; do i=$((i+1)); echo $i > {}; sleep 0.01; done",
        counter.display()
    );
    let mut child = gated(&script);
    cg.attach(child.id()).unwrap();
    open_gate(&mut child);
    let read = || fs::read_to_string(&counter).unwrap_or_default();
    let advances = |from: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while read() == from && Instant::now() < deadline {
            thread::sleep(POLL_INTERVAL);
        }
        read() != from
    };
    assert!(advances(""), "the counter never started");

    cg.freeze().unwrap();
    assert!(cg.is_frozen() && cg.stats().unwrap().frozen);
    cg.freeze().unwrap();
    let frozen = read();
    thread::sleep(Duration::from_millis(300));
    assert_eq!(read(), frozen, "the counter advanced while frozen");

    cg.thaw().unwrap();
    assert!(!cg.is_frozen());
    assert!(advances(&frozen), "the counter did not resume after thaw");
    cg.thaw().unwrap();

    cg.freeze().unwrap();
    let dirs = cg.dirs();
    cg.destroy().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(!cg.exists() && dirs.iter().all(|d| !d.exists()), "{dirs:?}");
    let err = cg.freeze().unwrap_err();
    assert!(matches!(err, CgroupError::NotFound { .. }), "{err}");
    assert!(!cg.is_frozen());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[allow(unsafe_code)]
fn v2_processes_can_start_inside_the_cgroup() {
    if !privileged() {
        return;
    }
    let parent = Parent::new(false);
    let cg = parent.create("born", &CgroupLimits::default());
    let Some(target) = cg.clone_target() else {
        // cgroup v1 has no CLONE_INTO_CGROUP: processes are attached after they start.
        assert_eq!(version(), CgroupVersion::V1);
        return;
    };
    // SAFETY: the child only calls pause(), which is async-signal-safe, until it is killed; it
    // touches nothing of the (multi-threaded) test process it was copied from.
    let pid = match unsafe { crate::sys::clone3_into_cgroup(0, std::os::fd::AsFd::as_fd(&target)) }
        .unwrap()
    {
        None => loop {
            // SAFETY: see above.
            unsafe { libc::pause() };
        },
        Some(pid) => pid,
    };
    // It was in the sandbox's cgroup from its first instruction: no attach happened.
    assert_eq!(cg.pids(), vec![pid as u32]);
    let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(own.trim_end().ends_with(cg.path()), "{own}");
    cg.destroy().unwrap();
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    assert!(!cg.exists());
}
