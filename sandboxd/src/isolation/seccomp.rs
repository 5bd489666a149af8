//! Seccomp: compiles JSON deny-list profiles with seccompiler and installs them on this thread.
//!
//! The daemon compiles a profile once (an embedded one once per process, see [`program_for`]) and
//! sends the BPF to sandbox-init, which installs it in every exec as its last step before exec,
//! after the mounts, namespaces and capability drop that the profile itself forbids. A profile is
//! named by a policy: `"default"`, `"browser"` ([`PROFILES`]), or an absolute path to a file in
//! seccompiler's JSON format on the host. See `policies/README.md` and `docs/seccomp.md` for what
//! the profiles deny and how filters are named.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use seccompiler::{BpfProgram, TargetArch};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// The name of the profile a policy gets when it names none.
pub const DEFAULT_PROFILE_NAME: &str = "default";

/// The built-in profiles, by name, embedded so the daemon does not depend on files at run time.
///
/// - `default`: `policies/seccomp/default.json`, the deny-list a policy gets unless it names
///   another.
/// - `browser`: `policies/seccomp/browser.json`, the default minus what Chromium's own
///   namespace sandbox needs: `clone` with `CLONE_NEWUSER`, `CLONE_NEWPID`, `CLONE_NEWNET`, and
///   `unshare(CLONE_NEWUSER)`.
pub const PROFILES: &[(&str, &str)] = &[
    (DEFAULT_PROFILE_NAME, DEFAULT_PROFILE),
    (
        "browser",
        include_str!("../../../policies/seccomp/browser.json"),
    ),
];

/// The JSON of the `default` profile (`policies/seccomp/default.json`).
pub const DEFAULT_PROFILE: &str = include_str!("../../../policies/seccomp/default.json");

/// Profiles longer than this are refused before parsing (a file is not read further); the
/// embedded ones are under 10 KiB.
pub const MAX_PROFILE_BYTES: usize = 1024 * 1024;

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

/// Errors from finding, compiling or installing a seccomp profile.
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
    /// A reference that is neither an embedded profile's name nor an absolute path.
    #[error(
        "no seccomp profile named {name:?}: give one of {known} or an absolute path",
        known = profile_names()
    )]
    UnknownProfile { name: String },
    /// A profile file that could not be opened or read (or is not a regular UTF-8 file).
    #[error("read seccomp profile {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A profile (file or embedded) that does not compile: the source names the filter.
    #[error("seccomp profile {profile}")]
    Profile {
        /// The name, or the file's path.
        profile: String,
        #[source]
        source: Box<SeccompError>,
    },
}

/// The embedded profiles' names, quoted and joined with ", ".
fn profile_names() -> String {
    let names: Vec<String> = PROFILES
        .iter()
        .map(|(name, _)| format!("{name:?}"))
        .collect();
    names.join(", ")
}

/// Compiled BPF filters, installed in order.
#[derive(Debug, Clone)]
pub struct SeccompProfile {
    filters: Vec<(String, BpfProgram)>,
}

/// Compiles the embedded default profile (`policies/seccomp/default.json`).
///
/// Compiled once per process (see [`program_for`]); each call returns a copy.
pub fn default_profile() -> Result<SeccompProfile, SeccompError> {
    program_for(DEFAULT_PROFILE_NAME).map(Arc::unwrap_or_clone)
}

/// The JSON of an embedded profile, by name.
pub fn embedded(name: &str) -> Option<&'static str> {
    PROFILES
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, json)| *json)
}

/// Whether `profile` is a reference a policy may give: an embedded profile's name or an
/// absolute path (whether the file exists and compiles is only known when it is read).
pub fn is_profile_reference(profile: &str) -> bool {
    embedded(profile).is_some() || Path::new(profile).is_absolute()
}

/// The JSON of a profile reference: an embedded profile's name ([`PROFILES`]), or an absolute
/// path to a file of at most [`MAX_PROFILE_BYTES`], read now (blocking I/O).
pub fn profile_json(profile: &str) -> Result<Cow<'static, str>, SeccompError> {
    if let Some(json) = embedded(profile) {
        return Ok(Cow::Borrowed(json));
    }
    let path = Path::new(profile);
    if !path.is_absolute() {
        return Err(SeccompError::UnknownProfile {
            name: profile.to_owned(),
        });
    }
    read_profile_file(path).map(Cow::Owned)
}

/// Reads a profile file: a regular file (a FIFO or device is refused without blocking on it),
/// at most [`MAX_PROFILE_BYTES`], UTF-8.
fn read_profile_file(path: &Path) -> Result<String, SeccompError> {
    let read_err = |source| SeccompError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(read_err)?;
    if !file.metadata().map_err(read_err)?.is_file() {
        return Err(read_err(std::io::Error::other("not a regular file")));
    }
    let limit = u64::try_from(MAX_PROFILE_BYTES).unwrap_or(u64::MAX);
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() > MAX_PROFILE_BYTES {
        return Err(SeccompError::Profile {
            profile: path.display().to_string(),
            source: Box::new(SeccompError::TooLarge {
                len: bytes.len(),
                max: MAX_PROFILE_BYTES,
            }),
        });
    }
    String::from_utf8(bytes)
        .map_err(|e| read_err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// The compiled filters of a profile reference: an embedded profile's name ([`PROFILES`]) or an
/// absolute path to a seccompiler JSON file on the host.
///
/// An embedded profile is compiled on first use and then shared for the life of the process. A
/// file is read (blocking I/O) and compiled on every call, so an edit takes effect for the next
/// sandbox; its errors name the file and, for a filter that does not compile, the filter.
pub fn program_for(profile: &str) -> Result<Arc<SeccompProfile>, SeccompError> {
    /// Compiled embedded profiles, by name. Errors are not kept: the tests prove the embedded
    /// profiles compile, and a retry costs only time.
    static COMPILED: OnceLock<Mutex<HashMap<&'static str, Arc<SeccompProfile>>>> = OnceLock::new();
    let in_profile = |source| SeccompError::Profile {
        profile: profile.to_owned(),
        source: Box::new(source),
    };
    if let Some((name, json)) = PROFILES.iter().find(|(name, _)| *name == profile) {
        let mut compiled = COMPILED
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(program) = compiled.get(name) {
            return Ok(Arc::clone(program));
        }
        // Compiled under the lock, so that two first callers do not both compile.
        let program = Arc::new(compile(json).map_err(in_profile)?);
        compiled.insert(name, Arc::clone(&program));
        return Ok(program);
    }
    let json = profile_json(profile)?;
    compile(&json).map(Arc::new).map_err(in_profile)
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
    fn embedded_profiles_compile() {
        let mut expected = vec!["deny_eperm"];
        if ARCH == "x86_64" {
            expected.extend(["deny_eperm_x86_64", "deny_enosys", "x32_enosys"]);
        } else {
            expected.push("deny_enosys");
        }
        let names: Vec<&str> = PROFILES.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["default", "browser"]);
        for (name, _) in PROFILES {
            let profile = program_for(name).unwrap_or_else(|e| panic!("{name}: {}", chain(&e)));
            assert_eq!(profile.filter_names(), expected, "{name}");
        }
        assert_eq!(default_profile().expect("default").filter_names(), expected);
    }

    /// Every rule of every embedded profile says why the call is denied: a `"comment"` that is
    /// a non-empty string (seccompiler accepts the field and ignores it).
    #[test]
    fn every_rule_has_a_comment() {
        for (name, json) in PROFILES {
            let filters: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(json).expect(name);
            for (filter, value) in &filters {
                let rules = value["filter"].as_array().expect("a filter array");
                assert!(!rules.is_empty(), "{name}: {filter} has no rules");
                for rule in rules {
                    let comment = rule["comment"].as_str().map(str::trim);
                    assert!(
                        comment.is_some_and(|c| !c.is_empty()),
                        "{name}: a rule of {filter} has no comment: {rule}"
                    );
                }
            }
        }
    }

    #[test]
    fn embedded_profiles_compile_once() {
        for (name, _) in PROFILES {
            let first = program_for(name).expect(name);
            let again = program_for(name).expect(name);
            assert!(Arc::ptr_eq(&first, &again), "{name} compiled twice");
        }
        let default = program_for("default").expect("default");
        let browser = program_for("browser").expect("browser");
        assert!(!Arc::ptr_eq(&default, &browser));
        assert_ne!(default.to_insns(), browser.to_insns());
    }

    /// A fresh path under the temp dir for this test process.
    fn temp_path(tag: &str) -> PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!("sandboxd-seccomp-{tag}-{}-{n}", std::process::id()))
    }

    #[test]
    fn path_profiles_load_and_compile_each_time() {
        let path = temp_path("good");
        std::fs::write(&path, format!(r#"{{"only_bpf": {}}}"#, deny("bpf"))).expect("write");
        let reference = path.to_str().expect("a UTF-8 temp path");
        assert!(is_profile_reference(reference));
        let first = program_for(reference).unwrap_or_else(|e| panic!("{}", chain(&e)));
        let mut expected = vec!["only_bpf"];
        if ARCH == "x86_64" {
            expected.push("x32_enosys");
        }
        assert_eq!(first.filter_names(), expected);
        // Not cached: an edit to the file is seen by the next call.
        std::fs::write(&path, format!(r#"{{"only_keyctl": {}}}"#, deny("keyctl"))).expect("write");
        let again = program_for(reference).expect("compiles");
        assert_eq!(again.filter_names()[0], "only_keyctl");
        assert!(!Arc::ptr_eq(&first, &again));
        // An embedded profile's JSON, copied to a file, compiles to the same program.
        std::fs::write(&path, embedded("browser").expect("browser")).expect("write");
        let copy = program_for(reference).expect("compiles");
        let browser = program_for("browser").expect("browser");
        assert_eq!(copy.to_insns(), browser.to_insns());
        std::fs::remove_file(&path).expect("remove");
    }

    #[test]
    fn bad_profile_references_are_refused() {
        let dir = temp_path("bad");
        std::fs::create_dir(&dir).expect("mkdir");
        let write = |name: &str, body: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, body).expect("write");
            path.to_str().expect("UTF-8").to_owned()
        };
        let missing = dir.join("missing.json").to_str().expect("UTF-8").to_owned();
        let bad_filter = write(
            "bad-filter.json",
            format!(r#"{{"f": {}}}"#, deny("no_such_call")).as_bytes(),
        );
        let bad_json = write("bad-json.json", b"{");
        let huge = write("huge.json", &vec![b' '; MAX_PROFILE_BYTES + 1]);
        let not_utf8 = write("latin1.json", b"{\"\xe9\": 1}");
        let dir_ref = dir.to_str().expect("UTF-8").to_owned();
        let cases: [(&str, Vec<String>); 8] = [
            (
                "nope",
                vec![
                    r#"no seccomp profile named "nope""#.into(),
                    r#""default", "browser""#.into(),
                ],
            ),
            (
                "policies/seccomp/default.json",
                vec!["or an absolute path".into()],
            ),
            (
                &missing,
                vec![
                    format!("read seccomp profile {missing}: "),
                    "No such file".into(),
                ],
            ),
            (
                &dir_ref,
                vec![format!(
                    "read seccomp profile {dir_ref}: not a regular file"
                )],
            ),
            (
                &bad_filter,
                vec![
                    format!("seccomp profile {bad_filter}: compile seccomp filter \"f\""),
                    "no_such_call".into(),
                ],
            ),
            (
                &bad_json,
                vec![format!("seccomp profile {bad_json}: parse seccomp profile")],
            ),
            (
                &huge,
                vec![format!(
                    "seccomp profile {huge}: seccomp profile is {} bytes",
                    MAX_PROFILE_BYTES + 1
                )],
            ),
            (
                &not_utf8,
                vec![format!("read seccomp profile {not_utf8}: ")],
            ),
        ];
        for (reference, expected) in cases {
            let text = chain(&program_for(reference).expect_err(reference));
            for want in expected {
                assert!(text.contains(&want), "{reference}: {text:?} lacks {want:?}");
            }
        }
        assert!(!is_profile_reference("nope"));
        assert!(!is_profile_reference("relative/path.json"));
        std::fs::remove_dir_all(&dir).expect("clean up");
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

    /// What the browser profile lets through that the default profile denies: the probes of
    /// [`probes`] whose outcome differs, with their outcome under the browser profile (the
    /// kernel's EINVAL for the invalid flags each adds, so the call got past the filter).
    const BROWSER_ALLOWS: [(&str, &str); 7] = [
        ("clone_newuser", "EINVAL"),
        ("clone_newpid", "EINVAL"),
        ("clone_newnet", "EINVAL"),
        ("clone_zygote", "EINVAL"),
        ("unshare_newuser", "EINVAL"),
        ("unshare_newuser_fs", "EINVAL"),
        // No namespace flag at all: denied by default's unshare rule, which has no arguments.
        ("unshare_files", "EINVAL"),
    ];

    /// Every call the behaviour test makes under `profile`, in order. Each passes -1 fds,
    /// [`BAD`] pointers or invalid flags, so that without its rule it fails with another errno
    /// and changes nothing (the process is root with all capabilities, so EPERM can only come
    /// from the filter). The clone probes add CLONE_THREAD without CLONE_SIGHAND, and most
    /// unshare probes add bit 0 (part of CSIGNAL), both refused by the kernel with EINVAL. The
    /// two unshare calls without it are real and come last, as they would work without the
    /// filter; both are denied by every profile.
    #[rustfmt::skip] // One probe per line reads better than rustfmt's vertical calls.
    fn probes(profile: &str) -> Vec<Probe> {
        use libc::*;
        let p = |name, nr, args, expect| Probe { name, nr, args, expect };
        let clone = |flag: c_int| [u64::from((flag | CLONE_THREAD).unsigned_abs()), 0, 0, 0, 0];
        let unshare = |flag: c_int| [u64::from(flag.unsigned_abs()), 0, 0, 0, 0];
        let bad_unshare = |flag: c_int| unshare(flag | 1);
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
            // Chromium's zygote: NamespaceSandbox::LaunchProcess.
            p("clone_zygote", SYS_clone, clone(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET), "EPERM"),
            p("clone_newuser_newns", SYS_clone, clone(CLONE_NEWUSER | CLONE_NEWNS), "EPERM"),
            p("clone_no_ns", SYS_clone, clone(0), "EINVAL"),
            p("unshare_newuser", SYS_unshare, bad_unshare(CLONE_NEWUSER), "EPERM"),
            p("unshare_newuser_fs", SYS_unshare, bad_unshare(CLONE_NEWUSER | CLONE_FS), "EPERM"),
            p("unshare_newuser_newns", SYS_unshare, bad_unshare(CLONE_NEWUSER | CLONE_NEWNS), "EPERM"),
            p("unshare_newpid", SYS_unshare, bad_unshare(CLONE_NEWPID), "EPERM"),
            p("unshare_newnet", SYS_unshare, bad_unshare(CLONE_NEWNET), "EPERM"),
            p("unshare_newipc", SYS_unshare, bad_unshare(CLONE_NEWIPC), "EPERM"),
            p("unshare_newuts", SYS_unshare, bad_unshare(CLONE_NEWUTS), "EPERM"),
            p("unshare_newcgroup", SYS_unshare, bad_unshare(CLONE_NEWCGROUP), "EPERM"),
            p("unshare_newtime", SYS_unshare, bad_unshare(CLONE_NEWTIME), "EPERM"),
            p("unshare_files", SYS_unshare, bad_unshare(CLONE_FILES), "EPERM"),
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
            p("unshare_newnet_real", SYS_unshare, unshare(CLONE_NEWNET), "EPERM"),
        ]);
        if profile == "browser" {
            for probe in &mut probes {
                let allowed = BROWSER_ALLOWS.iter().find(|(name, _)| *name == probe.name);
                if let Some((_, expect)) = allowed {
                    probe.expect = expect;
                }
            }
        }
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

    /// Runs every probe in a child under `profile` and checks each outcome.
    fn check_profile_in_child(profile: &str) {
        let output = run_probe(&format!("calls:{profile}"));
        let mut expected: Vec<String> = probes(profile)
            .iter()
            .map(|probe| format!("{} {}", probe.name, probe.expect))
            .collect();
        expected.extend(ORDINARY.iter().map(|name| format!("{name} OK")));
        assert_eq!(
            reported(&output),
            expected,
            "{profile}: stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "{profile}: probe child failed: {:?}",
            output.status
        );
    }

    #[test]
    fn profile_denies_in_child() {
        check_profile_in_child("default");
    }

    /// The browser profile lets Chromium's namespace calls through and denies the rest as
    /// default does.
    #[test]
    fn browser_profile_in_child() {
        check_profile_in_child("browser");
        // Each listed probe exists, was denied by default, and is the only kind that differs.
        let default = probes("default");
        let browser = probes("browser");
        let mut differ: Vec<&str> = default
            .iter()
            .zip(&browser)
            .filter(|(d, b)| d.expect != b.expect)
            .inspect(|(d, _)| assert_eq!(d.expect, "EPERM", "{}", d.name))
            .map(|(d, _)| d.name)
            .collect();
        differ.sort_unstable();
        let mut allowed: Vec<&str> = BROWSER_ALLOWS.iter().map(|(name, _)| *name).collect();
        allowed.sort_unstable();
        assert_eq!(differ, allowed);
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
        let (mode, name) = mode.split_once(':').unwrap_or((mode.as_str(), "default"));
        let profile = program_for(name).expect("compile the profile");
        nix::sys::prctl::set_no_new_privs().expect("set no_new_privs");
        match mode {
            "calls" => {
                profile.apply().expect("apply profile");
                for probe in probes(name) {
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
