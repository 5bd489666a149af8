//! Seccomp: compiles JSON deny-list profiles with seccompiler and installs them on this thread.
//!
//! The per-sandbox helper compiles the profile before it forks (so the child does no parsing), and
//! the sandbox child calls [`SeccompProfile::apply`] as its last step before exec, after the
//! mounts, namespaces and capability drop that the profile itself forbids. See
//! `policies/README.md` for what the default profile denies and how filters are named.

use std::fmt;

use seccompiler::{BpfProgram, TargetArch};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// The built-in profile, embedded so the daemon does not depend on files at run time.
const DEFAULT_PROFILE: &str = include_str!("../../../policies/seccomp/default.json");

/// Profiles longer than this are refused before parsing; the default one is about 5 KiB.
const MAX_PROFILE_BYTES: usize = 256 * 1024;

/// The architecture the filters are compiled for: the one this binary runs on.
#[cfg(target_arch = "x86_64")]
const TARGET_ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const TARGET_ARCH: TargetArch = TargetArch::aarch64;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("seccomp profiles are only built for x86_64 and aarch64");

/// Name of [`TARGET_ARCH`] as it appears at the end of arch-specific filter names.
const ARCH: &str = std::env::consts::ARCH;

/// Arch suffixes a filter name may end in (after `_`); such a filter is compiled on that arch only.
const ARCH_SUFFIXES: [&str; 2] = ["x86_64", "aarch64"];

/// Name of the filter that [`compile`] adds on x86_64 to refuse the x32 ABI.
#[cfg(target_arch = "x86_64")]
const X32_FILTER: &str = "x32_enosys";

/// Errors from compiling or installing a seccomp profile.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp profile is {len} bytes, more than the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("parse seccomp profile")]
    Parse(#[source] serde_json::Error),
    #[error("seccomp profile has no filter for {arch}")]
    NoFilters { arch: &'static str },
    #[error("compile seccomp filter {filter:?} for {arch}")]
    Compile {
        filter: String,
        arch: &'static str,
        #[source]
        source: seccompiler::Error,
    },
    #[error("install seccomp filter {filter:?}")]
    Install {
        filter: String,
        #[source]
        source: seccompiler::Error,
    },
}

/// Compiled BPF filters, installed in order.
#[derive(Debug, Clone)]
pub struct SeccompProfile {
    filters: Vec<(String, BpfProgram)>,
}

/// Compiles the embedded default profile (`policies/seccomp/default.json`).
pub fn default_profile() -> Result<SeccompProfile, SeccompError> {
    compile(DEFAULT_PROFILE)
}

/// Compiles a profile from JSON in seccompiler's format for the architecture of this build.
///
/// Filters keep their order in the document. A filter whose name ends in `_x86_64` or `_aarch64`
/// is compiled on that architecture only. On x86_64 a last filter, `x32_enosys`, is added (see
/// [`x32_guard`]).
pub fn compile(json: &str) -> Result<SeccompProfile, SeccompError> {
    if json.len() > MAX_PROFILE_BYTES {
        return Err(SeccompError::TooLarge {
            len: json.len(),
            max: MAX_PROFILE_BYTES,
        });
    }
    let NamedFilters(named) = serde_json::from_str(json).map_err(SeccompError::Parse)?;
    let mut filters = Vec::with_capacity(named.len() + 1);
    for (name, filter) in named {
        if for_this_arch(&name) {
            let program = compile_filter(&name, filter)?;
            filters.push((name, program));
        }
    }
    // An empty profile would install nothing; that is far more likely a mistake than a wish.
    if filters.is_empty() {
        return Err(SeccompError::NoFilters { arch: ARCH });
    }
    #[cfg(target_arch = "x86_64")]
    filters.push((X32_FILTER.to_owned(), x32_guard()));
    Ok(SeccompProfile { filters })
}

impl SeccompProfile {
    /// The filters as plain instructions, in install order, for sandbox-init (which installs
    /// them in every exec without linking seccompiler).
    pub fn to_insns(&self) -> Vec<Vec<sandbox_proto::init::BpfInsn>> {
        self.filters
            .iter()
            .map(|(_, prog)| {
                prog.iter()
                    .map(|i| sandbox_proto::init::BpfInsn {
                        code: i.code,
                        jt: i.jt,
                        jf: i.jf,
                        k: i.k,
                    })
                    .collect()
            })
            .collect()
    }

    /// Installs every filter on the calling thread (seccompiler::apply_filter).
    ///
    /// seccompiler sets `no_new_privs` itself before each filter, so this works without
    /// CAP_SYS_ADMIN and leaves `no_new_privs` set even if the caller had not. Only the calling
    /// thread is filtered: call it in the single-threaded sandbox child, as late as possible
    /// before exec, because the setup steps (mount, unshare, ...) are what the profile denies.
    pub fn apply(&self) -> Result<(), SeccompError> {
        // The order does not change the verdict: the kernel runs every filter and the most severe
        // action wins. The filters already installed must allow seccomp(2), which ours do.
        self.filters.iter().try_for_each(|(name, program)| {
            seccompiler::apply_filter(program).map_err(|source| SeccompError::Install {
                filter: name.clone(),
                source,
            })
        })
    }

    /// The names of the filters in install order.
    pub fn filter_names(&self) -> Vec<&str> {
        self.filters.iter().map(|(name, _)| name.as_str()).collect()
    }
}

/// Whether the filter `name` applies to this architecture (see [`ARCH_SUFFIXES`]).
fn for_this_arch(name: &str) -> bool {
    ARCH_SUFFIXES
        .iter()
        .find(|arch| {
            name.strip_suffix(**arch)
                .is_some_and(|rest| rest.ends_with('_'))
        })
        .is_none_or(|arch| *arch == ARCH)
}

/// Compiles one named filter through seccompiler.
fn compile_filter(name: &str, filter: serde_json::Value) -> Result<BpfProgram, SeccompError> {
    // seccompiler compiles whole documents only, so each filter goes through it alone: that way
    // an error can name its filter, and filters for other arches are never looked at.
    let single = serde_json::Map::from_iter([(name.to_owned(), filter)]);
    let mut compiled = seccompiler::compile_from_json(
        serde_json::Value::Object(single).to_string().as_bytes(),
        TARGET_ARCH,
    )
    .map_err(|source| SeccompError::Compile {
        filter: name.to_owned(),
        arch: ARCH,
        source,
    })?;
    // The map holds exactly the one filter given; an empty program would fail at install.
    Ok(compiled.remove(name).unwrap_or_default())
}

/// A filter that fails every x32 syscall with ENOSYS, as a kernel built without x32 does.
///
/// x32 calls arrive with arch AUDIT_ARCH_X86_64 and `__X32_SYSCALL_BIT` ORed into the number.
/// seccompiler's filters check the arch and then compare exact numbers, so without this, x32
/// `mount` would get past a deny-list on kernels with CONFIG_X86_X32_ABI. Number -1 is let
/// through, as libseccomp does: a tracer uses it to skip a call and sets the result itself.
/// (32-bit i386 calls carry AUDIT_ARCH_I386, and seccompiler's arch check kills the process.)
#[cfg(target_arch = "x86_64")]
fn x32_guard() -> BpfProgram {
    use seccompiler::sock_filter;

    // Opcodes from linux/bpf_common.h, spelled as u16 because libc declares them as u32:
    // BPF_LD | BPF_W | BPF_ABS, then BPF_JMP | BPF_JEQ/BPF_JGE | BPF_K, then BPF_RET | BPF_K.
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const RET_K: u16 = 0x06;
    // Offsets of `nr` and `arch` in struct seccomp_data.
    const NR: u32 = 0;
    const ARCH_FIELD: u32 = 4;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    const RET_ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS.unsigned_abs();
    let op = |code, k, jt, jf| sock_filter { code, jt, jf, k };
    vec![
        op(LD_W_ABS, ARCH_FIELD, 0, 0),
        op(JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        op(RET_K, libc::SECCOMP_RET_KILL_PROCESS, 0, 0),
        op(LD_W_ABS, NR, 0, 0),
        op(JEQ_K, u32::MAX, 2, 0),
        op(JGE_K, X32_SYSCALL_BIT, 0, 1),
        op(RET_K, RET_ENOSYS, 0, 0),
        op(RET_K, libc::SECCOMP_RET_ALLOW, 0, 0),
    ]
}

/// The top-level JSON object as (name, filter) pairs in document order. Duplicate names are an
/// error: serde_json's own maps would silently keep only the last filter of that name.
struct NamedFilters(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for NamedFilters {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(NamedFiltersVisitor)
    }
}

/// Collects the top-level map for [`NamedFilters`].
struct NamedFiltersVisitor;

impl<'de> Visitor<'de> for NamedFiltersVisitor {
    type Value = NamedFilters;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object mapping filter names to filters")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NamedFilters, A::Error> {
        let mut named: Vec<(String, serde_json::Value)> = Vec::new();
        while let Some((name, filter)) = map.next_entry::<String, serde_json::Value>()? {
            if named.iter().any(|(seen, _)| *seen == name) {
                return Err(de::Error::custom(format_args!(
                    "duplicate filter name {name:?}"
                )));
            }
            named.push((name, filter));
        }
        Ok(NamedFilters(named))
    }
}

#[cfg(test)]
// The probe issues raw syscalls (and on x86_64 an `int 0x80`) that nix does not wrap.
#[allow(unsafe_code)]
mod tests {
    use std::error::Error;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Output};

    use nix::errno::Errno;

    use super::*;

    /// Set in the re-executed test binary: which probe `probe_child` runs.
    const PROBE_ENV: &str = "SECCOMP_PROBE";
    /// Starts every line the probe reports, to tell it apart from libtest's output.
    const PREFIX: &str = "seccomp-probe:";
    /// A pointer the kernel cannot read (bubblewrap's WRONG_POINTER), so a call that gets past
    /// the filter fails with EFAULT instead of doing something.
    const BAD: u64 = 1;
    /// -1 as a file descriptor.
    const NO_FD: u64 = u64::MAX;

    /// The message of `err` and of each of its sources, joined with ": ".
    fn chain(err: &dyn Error) -> String {
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        text
    }

    #[test]
    fn default_profile_compiles() {
        let profile = default_profile().expect("default profile compiles");
        let mut expected = vec!["deny_eperm"];
        if ARCH == "x86_64" {
            expected.extend(["deny_eperm_x86_64", "deny_enosys", "x32_enosys"]);
        } else {
            expected.push("deny_enosys");
        }
        assert_eq!(profile.filter_names(), expected);
    }

    /// A filter in seccompiler's format that denies `syscall` with EPERM.
    fn deny(syscall: &str) -> String {
        let actions = r#""mismatch_action": "allow", "match_action": {"errno": 1}"#;
        format!(r#"{{{actions}, "filter": [{{"syscall": "{syscall}"}}]}}"#)
    }

    #[test]
    fn bad_profiles_are_refused() {
        let other_arch = ARCH_SUFFIXES.iter().find(|arch| **arch != ARCH);
        let other_arch = other_arch.expect("a second arch");
        #[rustfmt::skip]
        let cases = [
            (r#"{"a": {"#.to_owned(), "parse seccomp profile: EOF while parsing an object"),
            ("[]".to_owned(), "expected an object mapping filter names to filters"),
            (format!(r#"{{"a": {0}, "a": {0}}}"#, deny("bpf")), r#"duplicate filter name "a""#),
            (format!(r#"{{"a": {}}}"#, deny("no_such_call")), r#"filter "a" for"#),
            (format!(r#"{{"a": {}}}"#, deny("no_such_call")), "no_such_call"),
            (r#"{"a": {"filter": []}}"#.to_owned(), "missing field `mismatch_action`"),
            (format!(r#"{{"a_{other_arch}": {}}}"#, deny("bpf")), "has no filter for"),
            ("{}".to_owned(), "has no filter for"),
            (" ".repeat(MAX_PROFILE_BYTES + 1), "more than the limit"),
        ];
        for (json, expected) in cases {
            let text = chain(&compile(&json).expect_err(&json));
            assert!(text.contains(expected), "{json:.60}: {text}");
        }
    }

    #[test]
    fn arch_suffix_selects_filters() {
        let filter = deny("bpf");
        let json = format!(r#"{{"z": {filter}, "a_x86_64": {filter}, "b_aarch64": {filter}}}"#);
        let profile = compile(&json).expect("compiles");
        let mut expected = vec!["z"];
        if ARCH == "x86_64" {
            expected.extend(["a_x86_64", "x32_enosys"]);
        } else {
            expected.push("b_aarch64");
        }
        assert_eq!(profile.filter_names(), expected);
    }

    /// One raw call made under the filter, with what it must return.
    struct Probe {
        name: &'static str,
        nr: libc::c_long,
        args: [u64; 5],
        expect: &'static str,
    }

    /// Every call the behaviour test makes, in order. Each passes -1 fds, [`BAD`] pointers or
    /// invalid flags, so that without its rule it fails with another errno and changes nothing
    /// (the process is root with all capabilities, so EPERM can only come from the filter). The
    /// clone probes add CLONE_THREAD without CLONE_SIGHAND, which the kernel refuses with EINVAL.
    /// The two unshare calls are real and come last, as they would work without the filter.
    #[rustfmt::skip] // One probe per line reads better than rustfmt's vertical calls.
    fn probes() -> Vec<Probe> {
        use libc::*;
        let p = |name, nr, args, expect| Probe { name, nr, args, expect };
        let clone = |flag: c_int| [u64::from((flag | CLONE_THREAD).unsigned_abs()), 0, 0, 0, 0];
        let unshare = |flag: c_int| [u64::from(flag.unsigned_abs()), 0, 0, 0, 0];
        let mut probes = vec![
            p("getpid", SYS_getpid, [0; 5], "OK"),
            p("personality", SYS_personality, [0xffff_ffff, 0, 0, 0, 0], "OK"),
            p("ptrace", SYS_ptrace, [PTRACE_PEEKUSER.into(), 0, BAD, 0, 0], "ESRCH"),
            p("ioctl_fionread", SYS_ioctl, [NO_FD, FIONREAD, BAD, 0, 0], "EBADF"),
            p("mount", SYS_mount, [BAD, BAD, BAD, 0, 0], "EPERM"),
            p("umount2", SYS_umount2, [BAD, 0, 0, 0, 0], "EPERM"),
            p("pivot_root", SYS_pivot_root, [BAD, BAD, 0, 0, 0], "EPERM"),
            p("fsopen", SYS_fsopen, [BAD, 0, 0, 0, 0], "EPERM"),
            p("open_tree", SYS_open_tree, [NO_FD, BAD, 0, 0, 0], "EPERM"),
            p("setns", SYS_setns, [NO_FD, CLONE_NEWNS.unsigned_abs().into(), 0, 0, 0], "EPERM"),
            p("clone_newns", SYS_clone, clone(CLONE_NEWNS), "EPERM"),
            p("clone_newuts", SYS_clone, clone(CLONE_NEWUTS), "EPERM"),
            p("clone_newipc", SYS_clone, clone(CLONE_NEWIPC), "EPERM"),
            p("clone_newuser", SYS_clone, clone(CLONE_NEWUSER), "EPERM"),
            p("clone_newpid", SYS_clone, clone(CLONE_NEWPID), "EPERM"),
            p("clone_newnet", SYS_clone, clone(CLONE_NEWNET), "EPERM"),
            p("clone_newcgroup", SYS_clone, clone(CLONE_NEWCGROUP), "EPERM"),
            p("clone_newtime", SYS_clone, clone(CLONE_NEWTIME), "EPERM"),
            p("clone_no_ns", SYS_clone, clone(0), "EINVAL"),
            p("clone3", SYS_clone3, [BAD, 88, 0, 0, 0], "ENOSYS"),
            p("keyctl", SYS_keyctl, [0xffff, 0, 0, 0, 0], "EPERM"),
            p("add_key", SYS_add_key, [BAD, BAD, 0, 0, 0], "EPERM"),
            p("request_key", SYS_request_key, [BAD, BAD, 0, 0, 0], "EPERM"),
            p("bpf", SYS_bpf, [0xffff, 0, 0, 0, 0], "EPERM"),
            p("perf_event_open", SYS_perf_event_open, [BAD, 0, NO_FD, NO_FD, 0], "EPERM"),
            p("open_by_handle_at", SYS_open_by_handle_at, [NO_FD, BAD, 0, 0, 0], "EPERM"),
            p("name_to_handle_at", SYS_name_to_handle_at, [NO_FD, BAD, BAD, BAD, 0], "EPERM"),
            p("userfaultfd", SYS_userfaultfd, [0x4, 0, 0, 0, 0], "EPERM"),
            p("reboot", SYS_reboot, [0; 5], "EPERM"),
            p("ioctl_tiocsti", SYS_ioctl, [NO_FD, TIOCSTI, BAD, 0, 0], "EPERM"),
            // CVE-2019-10063: the kernel ignores the upper half of the command.
            p("tiocsti_high", SYS_ioctl, [NO_FD, (0x123 << 32) | TIOCSTI, BAD, 0, 0], "EPERM"),
            p("ioctl_tioclinux", SYS_ioctl, [NO_FD, TIOCLINUX, BAD, 0, 0], "EPERM"),
        ];
        #[cfg(target_arch = "x86_64")]
        probes.extend([
            p("iopl", SYS_iopl, [4, 0, 0, 0, 0], "EPERM"),
            p("ioperm", SYS_ioperm, [0; 5], "EPERM"),
            // A kernel without CONFIG_X86_X32_ABI gives ENOSYS as well.
            p("x32_mount", SYS_mount | 0x4000_0000, [BAD, BAD, BAD, 0, 0], "ENOSYS"),
        ]);
        probes.extend([
            p("unshare_newns", SYS_unshare, unshare(CLONE_NEWNS), "EPERM"),
            p("unshare_newuser", SYS_unshare, unshare(CLONE_NEWUSER), "EPERM"),
        ]);
        probes
    }

    /// "OK", or the errno name (or the message) of the failure: the form the probe prints.
    fn outcome<T>(result: std::io::Result<T>) -> String {
        match result {
            Ok(_) => "OK".to_owned(),
            Err(err) => match err.raw_os_error() {
                Some(errno) => format!("{:?}", Errno::from_raw(errno)),
                None => err.to_string().replace(' ', "_"),
            },
        }
    }

    /// Makes the raw call of `probe`.
    fn call(probe: &Probe) -> std::io::Result<libc::c_long> {
        let [a, b, c, d, e] = probe.args;
        // SAFETY: the arguments are integers, -1 fds and BAD, which is never mapped, so the
        // kernel writes no memory of this process; no probe creates a task that would run on
        // this stack (the clone probes are refused with EINVAL even without a filter).
        let ret = unsafe { libc::syscall(probe.nr, a, b, c, d, e) };
        if ret < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    }

    /// Ordinary things a sandboxed program does, which must keep working under the filter.
    const ORDINARY: [&str; 4] = ["read_proc_status", "write_dev_null", "spawn_true", "thread"];

    /// Does the ordinary thing `name` from [`ORDINARY`].
    fn ordinary(name: &str) -> std::io::Result<()> {
        let failed = |what: &str| Err(std::io::Error::other(what.to_owned()));
        match name {
            // Also proves that this thread is filtered: "Seccomp: 2" is filter mode.
            "read_proc_status" => {
                let status = std::fs::read_to_string("/proc/thread-self/status")?;
                let filtered = status
                    .lines()
                    .any(|line| line.split_whitespace().eq(["Seccomp:", "2"]));
                if filtered {
                    Ok(())
                } else {
                    failed("not filtered")
                }
            }
            "write_dev_null" => std::fs::write("/dev/null", b"probe"),
            // Rust's spawn tries clone3 first and falls back to plain clone on ENOSYS.
            "spawn_true" => match Command::new("true").status()?.success() {
                true => Ok(()),
                false => failed("true failed"),
            },
            "thread" => std::thread::spawn(|| ())
                .join()
                .or_else(|_| failed("thread panicked")),
            other => failed(other),
        }
    }

    /// i386 `getpid` through `int 0x80`: the pid, or -errno.
    #[cfg(target_arch = "x86_64")]
    fn ia32_getpid() -> i64 {
        // __NR_getpid in the i386 table.
        let mut ret: i64 = 20;
        // SAFETY: i386 getpid takes no arguments and writes no memory; the kernel returns in rax
        // and may clear r8-r11 on `int 0x80`, which are declared clobbered.
        unsafe {
            std::arch::asm!("int 0x80", inout("rax") ret, out("r8") _, out("r9") _,
                out("r10") _, out("r11") _, options(nostack));
        }
        ret
    }

    /// Runs this test binary again with only `probe_child` and `SECCOMP_PROBE=mode`.
    fn run_probe(mode: &str) -> Output {
        // The test's path without the crate name, so this works wherever the module is mounted.
        let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
        let exe = std::env::current_exe().expect("current test binary");
        let test = format!("{module}::probe_child");
        Command::new(exe)
            .args(["--exact", &test, "--nocapture", "--test-threads=1"])
            .env(PROBE_ENV, mode)
            .output()
            .expect("run the probe child")
    }

    /// The probe's report lines, without the prefix.
    fn reported(output: &Output) -> Vec<String> {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            // libtest may print "test ... " on the same line before the first report.
            .filter_map(|line| line.split_once(PREFIX).map(|(_, report)| report))
            .map(|line| line.trim().to_owned())
            .collect()
    }

    #[test]
    fn profile_denies_in_child() {
        let output = run_probe("calls");
        let mut expected: Vec<String> = probes()
            .iter()
            .map(|probe| format!("{} {}", probe.name, probe.expect))
            .collect();
        expected.extend(ORDINARY.iter().map(|name| format!("{name} OK")));
        assert_eq!(
            reported(&output),
            expected,
            "stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "probe child failed: {:?}",
            output.status
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn ia32_calls_kill_the_process() {
        let output = run_probe("ia32");
        let lines = reported(&output);
        if output.status.signal() == Some(libc::SIGSEGV) && lines.is_empty() {
            // A kernel without ia32 emulation cannot run this test: a skip, which CI
            // (SANDBOX_TESTS_MUST_RUN=1) does not accept.
            assert!(
                std::env::var("SANDBOX_TESTS_MUST_RUN").is_err(),
                "this kernel has no ia32 emulation, and SANDBOX_TESTS_MUST_RUN forbids skipping"
            );
            eprintln!("skipped: this kernel has no ia32 emulation");
            return;
        }
        assert_eq!(lines, ["ia32_getpid_unfiltered OK"]);
        assert_eq!(
            output.status.signal(),
            Some(libc::SIGSYS),
            "{:?}",
            output.status
        );
    }

    /// The child half of the behaviour tests; does nothing unless `SECCOMP_PROBE` is set.
    #[test]
    fn probe_child() {
        let Ok(mode) = std::env::var(PROBE_ENV) else {
            return;
        };
        let profile = default_profile().expect("compile default profile");
        nix::sys::prctl::set_no_new_privs().expect("set no_new_privs");
        match mode.as_str() {
            "calls" => {
                profile.apply().expect("apply profile");
                for probe in probes() {
                    let result = outcome(call(&probe));
                    println!("{PREFIX} {} {result}", probe.name);
                }
                for name in ORDINARY {
                    println!("{PREFIX} {name} {}", outcome(ordinary(name)));
                }
            }
            #[cfg(target_arch = "x86_64")]
            "ia32" => {
                // The kill below must not leave a core dump behind.
                nix::sys::prctl::set_dumpable(false).expect("clear dumpable");
                let pid = i64::from(std::process::id());
                let unfiltered = if ia32_getpid() == pid {
                    "OK"
                } else {
                    "wrong pid"
                };
                println!("{PREFIX} ia32_getpid_unfiltered {unfiltered}");
                profile.apply().expect("apply profile");
                let filtered = ia32_getpid();
                println!("{PREFIX} ia32_getpid_filtered survived with {filtered}");
            }
            other => panic!("unknown {PROBE_ENV} mode {other:?}"),
        }
    }
}
