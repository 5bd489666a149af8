//! The `linux.seccomp` part of the spec: a seccompiler profile (an embedded one such as
//! `policies/seccomp/default.json`, or a file named by its absolute path), the same JSON that
//! `isolation::seccomp` compiles, read into small structs and rendered rule by rule.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscallBuilder,
};
use serde::Deserialize;

use super::OciError;
use crate::isolation::seccomp as profiles;

/// The default seccomp policy, the same JSON `isolation::seccomp` compiles for `"default"`.
/// The spec takes the policy's profile through [`seccomp_for`]; this stays for the tests.
#[cfg_attr(not(test), allow(dead_code, reason = "the spec uses seccomp_for"))]
pub(super) const SECCOMP_POLICY: &str = profiles::DEFAULT_PROFILE;
/// The policy filters' architecture suffixes (as `isolation::seccomp`).
const ARCH_SUFFIXES: [&str; 2] = ["x86_64", "aarch64"];
/// This build's architecture.
const ARCH: &str = std::env::consts::ARCH;

/// One named filter of the seccompiler JSON policy (only what is rendered).
#[derive(Debug, Deserialize)]
struct Filter {
    mismatch_action: Action,
    match_action: Action,
    filter: Vec<Rule>,
}

/// A seccompiler action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Allow,
    Errno(u32),
    KillThread,
    KillProcess,
    Log,
    Trap,
    Trace(u32),
}

/// One rule: a syscall and the conditions (all must hold) on its arguments.
#[derive(Debug, Deserialize)]
struct Rule {
    syscall: String,
    #[serde(default)]
    args: Vec<Cond>,
}

/// One argument condition.
#[derive(Debug, Deserialize)]
struct Cond {
    index: usize,
    #[serde(rename = "type")]
    width: Width,
    op: Op,
    val: u64,
}

/// How many bits of the argument are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Width {
    Dword,
    Qword,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    MaskedEq(u64),
}

/// Whether the filter `name` is for this architecture: no arch suffix, or this one's.
fn for_this_arch(name: &str) -> bool {
    ARCH_SUFFIXES
        .iter()
        .find(|arch| {
            name.strip_suffix(**arch)
                .is_some_and(|rest| rest.ends_with('_'))
        })
        .is_none_or(|arch| *arch == ARCH)
}

/// The architectures a profile names, as runc's default profile does for this build's arch.
fn architectures() -> Vec<Arch> {
    match ARCH {
        "aarch64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        _ => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
    }
}

/// The profile for a profile reference: an embedded profile's name (`"default"`, `"browser"`:
/// `isolation::seccomp::PROFILES`) or the absolute path of a seccompiler JSON file on the host
/// (read now, at most `isolation::seccomp::MAX_PROFILE_BYTES`).
///
/// A name that is not embedded, a relative path, or a file that cannot be read is an
/// [`OciError::ParseSeccomp`] whose message names the reference or the file.
pub fn seccomp_for(profile: &str) -> Result<LinuxSeccomp, OciError> {
    let json = profiles::profile_json(profile).map_err(|e| {
        // OciError has no variant for a profile that cannot be found or read; the message
        // (with its causes) goes into a serde_json error, which Display shows as the source.
        OciError::ParseSeccomp(<serde_json::Error as serde::de::Error>::custom(chain(&e)))
    })?;
    seccomp(&json)
}

/// The message of `err` and of each of its sources, joined with ": ".
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// The profile for a seccompiler policy: default allow, then each rule of each filter for
/// this architecture (filters in name order; the order of OCI rules has no meaning).
pub(super) fn seccomp(policy: &str) -> Result<LinuxSeccomp, OciError> {
    let filters: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(policy).map_err(OciError::ParseSeccomp)?;
    let mut syscalls = Vec::new();
    for (name, value) in filters {
        if !for_this_arch(&name) {
            continue;
        }
        let filter: Filter = serde_json::from_value(value).map_err(OciError::ParseSeccomp)?;
        if filter.mismatch_action != Action::Allow {
            return Err(OciError::SeccompMismatchAction { filter: name });
        }
        let (action, errno) = action(filter.match_action);
        for rule in &filter.filter {
            let mut b = LinuxSyscallBuilder::default()
                .names(vec![rule.syscall.clone()])
                .action(action);
            if let Some(errno) = errno {
                b = b.errno_ret(errno);
            }
            if !rule.args.is_empty() {
                let args = rule
                    .args
                    .iter()
                    .map(|c| {
                        arg(c).ok_or_else(|| OciError::SeccompCondition {
                            filter: name.clone(),
                            syscall: rule.syscall.clone(),
                        })?
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                b = b.args(args);
            }
            syscalls.push(b.build().map_err(OciError::Seccomp)?);
        }
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(architectures())
        .syscalls(syscalls)
        .build()
        .map_err(OciError::Seccomp)
}

fn action(a: Action) -> (LinuxSeccompAction, Option<u32>) {
    match a {
        Action::Allow => (LinuxSeccompAction::ScmpActAllow, None),
        Action::Errno(e) => (LinuxSeccompAction::ScmpActErrno, Some(e)),
        Action::KillThread => (LinuxSeccompAction::ScmpActKillThread, None),
        Action::KillProcess => (LinuxSeccompAction::ScmpActKillProcess, None),
        Action::Log => (LinuxSeccompAction::ScmpActLog, None),
        // OCI has no return value for these two; the runtime's default is used.
        Action::Trap => (LinuxSeccompAction::ScmpActTrap, None),
        Action::Trace(_) => (LinuxSeccompAction::ScmpActTrace, None),
    }
}

/// One condition in OCI form, or None where a `dword` comparison has none. OCI (libseccomp)
/// compares all 64 bits, so a `dword` eq becomes a masked eq on the low 32 bits, which is what
/// the kernel reads of an `int` argument (e.g. ioctl's request).
fn arg(c: &Cond) -> Option<Result<LinuxSeccompArg, OciError>> {
    const LOW32: u64 = 0xffff_ffff;
    let (op, value, value_two) = match (c.op, c.width) {
        (Op::MaskedEq(m), Width::Qword) => (LinuxSeccompOperator::ScmpCmpMaskedEq, m, Some(c.val)),
        (Op::MaskedEq(m), Width::Dword) => (
            LinuxSeccompOperator::ScmpCmpMaskedEq,
            m & LOW32,
            Some(c.val),
        ),
        (Op::Eq, Width::Dword) => (LinuxSeccompOperator::ScmpCmpMaskedEq, LOW32, Some(c.val)),
        (_, Width::Dword) => return None,
        (Op::Eq, Width::Qword) => (LinuxSeccompOperator::ScmpCmpEq, c.val, None),
        (Op::Ne, Width::Qword) => (LinuxSeccompOperator::ScmpCmpNe, c.val, None),
        (Op::Lt, Width::Qword) => (LinuxSeccompOperator::ScmpCmpLt, c.val, None),
        (Op::Le, Width::Qword) => (LinuxSeccompOperator::ScmpCmpLe, c.val, None),
        (Op::Gt, Width::Qword) => (LinuxSeccompOperator::ScmpCmpGt, c.val, None),
        (Op::Ge, Width::Qword) => (LinuxSeccompOperator::ScmpCmpGe, c.val, None),
    };
    let mut b = LinuxSeccompArgBuilder::default()
        .index(c.index)
        .value(value)
        .op(op);
    if let Some(v) = value_two {
        b = b.value_two(v);
    }
    Some(b.build().map_err(OciError::Seccomp))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    /// The rules for `name`, as JSON.
    fn rules<'a>(v: &'a Value, name: &str) -> Vec<&'a Value> {
        v["linux"]["seccomp"]["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"] == json!([name]))
            .collect()
    }
    #[test]
    fn seccomp_rules() {
        let v = json!({ "linux": { "seccomp": seccomp(SECCOMP_POLICY).unwrap() } });
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
        let eperm =
            |name: &str| json!({ "names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 });
        let checks: &[(&str, Vec<Value>)] = &[
            ("mount", vec![eperm("mount")]),
            ("bpf", vec![eperm("bpf")]),
            ("iopl", vec![eperm("iopl")]),
            (
                "clone3",
                vec![json!({ "names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38 })],
            ),
            (
                "ioctl",
                [21522, 21532]
                    .iter()
                    .map(|req| {
                        json!({
                            "names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                            "args": [{ "index": 1, "value": 0xffff_ffffu64, "valueTwo": req, "op": "SCMP_CMP_MASKED_EQ" }],
                        })
                    })
                    .collect(),
            ),
        ];
        for (name, want) in checks {
            let got: Vec<Value> = rules(&v, name).into_iter().cloned().collect();
            assert_eq!(&got, want, "{name}");
        }
        // One clone rule per namespace flag, each `flags & F == F`.
        let clone: Vec<(u64, u64, &str)> = rules(&v, "clone")
            .iter()
            .map(|r| {
                let a = &r["args"][0];
                assert_eq!(r["errnoRet"], 1);
                (
                    a["value"].as_u64().unwrap(),
                    a["valueTwo"].as_u64().unwrap(),
                    a["op"].as_str().unwrap(),
                )
            })
            .collect();
        let flags = [
            0x80, 0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000,
        ];
        let want: Vec<(u64, u64, &str)> = flags
            .iter()
            .map(|f| (*f, *f, "SCMP_CMP_MASKED_EQ"))
            .collect();
        assert_eq!(clone, want);
        // Every rule of the policy's filters for this arch is there, once.
        let policy: serde_json::Map<String, Value> = serde_json::from_str(SECCOMP_POLICY).unwrap();
        let in_policy: usize = policy
            .iter()
            .filter(|(name, _)| for_this_arch(name))
            .map(|(_, f)| f["filter"].as_array().unwrap().len())
            .sum();
        assert!(in_policy >= 45, "{in_policy}");
        assert_eq!(
            v["linux"]["seccomp"]["syscalls"].as_array().unwrap().len(),
            in_policy
        );
    }
    /// `(value, valueTwo)` of each masked rule for `name`, every one an EPERM masked eq on arg 0.
    fn masked_flags(v: &Value, name: &str) -> Vec<(u64, u64)> {
        rules(v, name)
            .iter()
            .map(|r| {
                assert_eq!(r["errnoRet"], 1, "{r}");
                let a = &r["args"][0];
                assert_eq!(a["index"], 0, "{r}");
                assert_eq!(a["op"], "SCMP_CMP_MASKED_EQ", "{r}");
                (
                    a["value"].as_u64().unwrap(),
                    a["valueTwo"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// Every embedded profile renders through `seccomp_for`, serializes, reads back, and holds
    /// one OCI rule per seccompiler rule of this architecture.
    #[test]
    fn every_embedded_profile_renders() {
        for (name, json) in profiles::PROFILES {
            let rendered = seccomp_for(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            let text = serde_json::to_string(&rendered).expect(name);
            let back: LinuxSeccomp = serde_json::from_str(&text).expect(name);
            assert_eq!(back, rendered, "{name}");
            let v = json!({ "linux": { "seccomp": rendered } });
            assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
            let policy: serde_json::Map<String, Value> = serde_json::from_str(json).unwrap();
            let in_policy: usize = policy
                .iter()
                .filter(|(filter, _)| for_this_arch(filter))
                .map(|(_, f)| f["filter"].as_array().unwrap().len())
                .sum();
            let syscalls = v["linux"]["seccomp"]["syscalls"].as_array().unwrap();
            assert_eq!(syscalls.len(), in_policy, "{name}");
            // What every profile denies.
            for call in ["mount", "umount2", "pivot_root", "setns", "keyctl", "bpf"] {
                assert_eq!(rules(&v, call).len(), 1, "{name}: {call}");
            }
            for call in [
                "perf_event_open",
                "open_by_handle_at",
                "kexec_load",
                "init_module",
            ] {
                assert_eq!(rules(&v, call).len(), 1, "{name}: {call}");
            }
            assert_eq!(rules(&v, "clone3")[0]["errnoRet"], 38, "{name}");
            assert_eq!(rules(&v, "ioctl").len(), 2, "{name}");
        }
        assert_eq!(
            seccomp_for("default").unwrap(),
            seccomp(SECCOMP_POLICY).unwrap()
        );
    }

    /// The browser profile: clone without the CLONE_NEWUSER, CLONE_NEWPID and CLONE_NEWNET
    /// rules, and unshare denied per namespace flag except CLONE_NEWUSER instead of outright.
    #[test]
    fn browser_profile_rules() {
        let ns = |flags: &[u64]| -> Vec<(u64, u64)> { flags.iter().map(|f| (*f, *f)).collect() };
        let (newtime, newns, newcgroup, newuts, newipc) =
            (0x80, 0x20000, 0x200_0000, 0x400_0000, 0x800_0000);
        let (newuser, newpid, newnet) = (0x1000_0000, 0x2000_0000, 0x4000_0000);

        let default = json!({ "linux": { "seccomp": seccomp_for("default").unwrap() } });
        let unshare = rules(&default, "unshare");
        assert_eq!(unshare.len(), 1);
        assert!(
            unshare[0].get("args").is_none(),
            "default denies every unshare"
        );
        let mut clone = masked_flags(&default, "clone");
        clone.sort_unstable();
        let all = [
            newtime, newns, newcgroup, newuts, newipc, newuser, newpid, newnet,
        ];
        assert_eq!(clone, ns(&all));

        let browser = json!({ "linux": { "seccomp": seccomp_for("browser").unwrap() } });
        let mut clone = masked_flags(&browser, "clone");
        clone.sort_unstable();
        assert_eq!(clone, ns(&[newtime, newns, newcgroup, newuts, newipc]));
        let mut unshare = masked_flags(&browser, "unshare");
        unshare.sort_unstable();
        let but_user = [newtime, newns, newcgroup, newuts, newipc, newpid, newnet];
        assert_eq!(unshare, ns(&but_user));
    }

    #[test]
    fn path_profiles_render() {
        let dir = std::env::temp_dir().join(format!("sandboxd-oci-seccomp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("only-bpf.json");
        std::fs::write(
            &path,
            r#"{"f": {"mismatch_action": "allow", "match_action": {"errno": 1},
                "filter": [{"syscall": "bpf", "comment": "test"}]}}"#,
        )
        .unwrap();
        let rendered = seccomp_for(path.to_str().unwrap()).unwrap();
        let v = json!({ "linux": { "seccomp": rendered } });
        assert_eq!(
            v["linux"]["seccomp"]["syscalls"],
            json!([{ "names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }])
        );
        // Errors name the reference or the file.
        let missing = dir.join("missing.json");
        let missing = missing.to_str().unwrap();
        let cases = [
            (
                missing.to_owned(),
                format!("read seccomp profile {missing}"),
            ),
            (
                "nope".to_owned(),
                r#"no seccomp profile named "nope""#.to_owned(),
            ),
            ("a/b.json".to_owned(), "or an absolute path".to_owned()),
        ];
        for (reference, want) in cases {
            let err = seccomp_for(&reference).unwrap_err();
            let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
            assert!(text.starts_with("parsing the seccomp policy: "), "{text}");
            assert!(text.contains(&want), "{reference}: {text}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn policies_that_have_no_oci_form() {
        let cases = [
            (
                r#"{"f": {"mismatch_action": {"errno": 1}, "match_action": "allow", "filter": []}}"#,
                "seccomp filter f: mismatch action is not allow",
            ),
            (
                r#"{"f": {"mismatch_action": "allow", "match_action": "kill_process", "filter": [
                    {"syscall": "ioctl", "args": [{"index": 1, "type": "dword", "op": "gt", "val": 1}]}]}}"#,
                "seccomp filter f: ioctl has a dword comparison with no 64-bit form",
            ),
            ("{", "parsing the seccomp policy"),
        ];
        for (policy, want) in cases {
            assert_eq!(seccomp(policy).unwrap_err().to_string(), want);
        }
        // Filters for another architecture are left out.
        let other = ARCH_SUFFIXES.iter().find(|a| **a != ARCH).unwrap();
        let policy = format!(
            r#"{{"f_{other}": {{"mismatch_action": "allow", "match_action": "kill_process", "filter": [{{"syscall": "bpf"}}]}}}}"#
        );
        assert_eq!(seccomp(&policy).unwrap().syscalls(), &Some(Vec::new()));
    }
}
