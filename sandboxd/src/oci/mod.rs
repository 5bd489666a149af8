//! Renders a sandbox [`Plan`] as an OCI runtime spec (`config.json`), so that runc or crun can
//! run the same sandbox from a bundle.
//!
//! Pure, like `policy`: plan in, [`Spec`] out; nothing here touches the kernel. The spec mirrors
//! what `isolation` does itself: the namespaces, the id mapping, the mounts of
//! `isolation/mounts.rs` in the same order and with the same options, runc's masked and
//! read-only `/proc` paths, the cgroup limits, what `sandbox-init` gives each exec (no
//! capabilities, no_new_privs, `RLIMIT_CORE` 0, `RLIMIT_NOFILE`), and the seccomp deny-lists of
//! `policies/seccomp/default.json`.
//!
//! Some of the sandbox has no OCI 1.0.2 form; it is approximated as follows.
//! - Host folders are idmapped mounts in the sandbox; runtime-spec 1.0.2 has no idmapped mounts
//!   (1.1 added `mounts[].uidMappings`), so they are rendered as plain binds and the intended
//!   mapping goes into the annotation [`ANNOTATION_IDMAPPED`].
//! - `linux.devices` is left empty: runc and crun always create null, zero, full, random,
//!   urandom and tty, the same six nodes `mounts.rs` binds from the host, and the `/dev`
//!   symlinks (fd, stdin, stdout, stderr, ptmx).
//! - The sandbox seals `/dev` and its root read-only after filling them; a runtime creates its
//!   device nodes after mounting `/dev`, so `/dev` stays writable here (it is a 64 KiB tmpfs).
//! - Our filters kill i386 syscalls and fail x32 ones with ENOSYS; an OCI profile lists
//!   architectures instead, so X86 and X32 get the same deny-list by name, as runc's and
//!   Docker's default profiles do.
//! - The root is a directory the caller prepares ([`ANNOTATION_ROOTFS`] says from what); the
//!   sandbox's own root is a tmpfs of read-only binds.

use std::collections::HashMap;

use oci_spec::runtime::{
    Capabilities, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroupBuilder, LinuxIdMapping, LinuxIdMappingBuilder, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};
use oci_spec::OciSpecError;
use serde::Serialize;

use sandbox_proto::FsMode;

use crate::isolation::mounts::HostEntry;
use crate::policy::{IdMap, Plan, RootPlan, WORKSPACE};

/// Property: any valid policy renders to a spec oci-spec accepts.
#[cfg(test)]
mod proptests;
/// `linux.seccomp`, from the seccompiler policy.
mod seccomp;

/// The runtime-spec version written.
pub const OCI_VERSION: &str = "1.0.2";
/// Annotation: the sandbox id.
pub const ANNOTATION_SANDBOX_ID: &str = "io.sandboxd.sandbox-id";
/// Annotation: what the caller put at `root.path`: `host` (the host's system directories and
/// a curated /etc, as `RootPlan::Host`) or the host path of a rootfs directory.
pub const ANNOTATION_ROOTFS: &str = "io.sandboxd.rootfs";
/// Annotation: the policy the sandbox was made under.
pub const ANNOTATION_POLICY: &str = "io.sandboxd.policy";
/// Annotation: its filesystem mode (`full`: writes land in `root.path` itself under a runtime,
/// where sandboxd puts them in a tmpfs layer).
pub const ANNOTATION_FILESYSTEM: &str = "io.sandboxd.filesystem";
/// Annotation: a JSON list of `{destination, uidMappings, gidMappings}`, the idmap each host
/// folder bind is meant to have (runtime-spec 1.1 `mounts[]` form).
pub const ANNOTATION_IDMAPPED: &str = "io.sandboxd.idmapped-mounts";

/// The CFS period of the `cpus` limit, in microseconds (as `cgroups`).
const CPU_PERIOD_US: u64 = 100_000;
/// The smallest CFS quota the kernel accepts, in microseconds.
const CPU_MIN_QUOTA_US: f64 = 1_000.0;
/// Namespaces, in the order runc lists them; `isolation::namespaces` plus cgroup, which a
/// runtime unshares so the sandbox sees its own cgroup as `/`.
const NAMESPACES: &[LinuxNamespaceType] = &[
    LinuxNamespaceType::User,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Cgroup,
];
/// Rendering a plan as an OCI spec failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// Parsing `policies/seccomp/default.json`.
    #[error("parsing the seccomp policy")]
    ParseSeccomp(#[source] serde_json::Error),
    /// A filter's mismatch action is not `allow` (OCI has one default action for all rules).
    #[error("seccomp filter {filter}: mismatch action is not allow")]
    SeccompMismatchAction {
        /// The filter's name.
        filter: String,
    },
    /// A `dword` comparison other than `eq` or `masked_eq`: OCI compares all 64 bits.
    #[error("seccomp filter {filter}: {syscall} has a dword comparison with no 64-bit form")]
    SeccompCondition {
        /// The filter's name.
        filter: String,
        /// The syscall of the rule.
        syscall: String,
    },
    /// The memory limit does not fit an i64.
    #[error("memory limit {memory} is too large")]
    Memory {
        /// The limit in bytes.
        memory: u64,
    },
    /// The pids limit does not fit an i64.
    #[error("pids limit {pids} is too large")]
    Pids {
        /// The limit.
        pids: u64,
    },
    /// The cpus limit gives no valid CFS quota.
    #[error("invalid cpus limit {cpus}")]
    Cpus {
        /// The limit in CPUs.
        cpus: f64,
    },
    /// A capability name oci-spec does not know.
    #[error("unknown capability {name}")]
    Capability {
        /// The name.
        name: String,
    },
    /// A device node of the plan.
    #[error("device {path}: {reason}")]
    Device {
        /// Its path.
        path: String,
        /// Why.
        reason: String,
    },
    /// Encoding the idmapped-mounts annotation.
    #[error("encoding the idmapped mounts annotation")]
    EncodeIdmap(#[source] serde_json::Error),
    /// Building `process`.
    #[error("building process")]
    Process(#[source] OciSpecError),
    /// Building `root`.
    #[error("building root")]
    Root(#[source] OciSpecError),
    /// Building one mount.
    #[error("building the mount on {destination}")]
    Mount {
        /// Its destination.
        destination: String,
        /// The builder's error.
        #[source]
        source: OciSpecError,
    },
    /// Building the id mappings.
    #[error("building the id mappings")]
    IdMappings(#[source] OciSpecError),
    /// Building `linux.namespaces`.
    #[error("building the namespaces")]
    Namespaces(#[source] OciSpecError),
    /// Building `linux.resources`.
    #[error("building the resources")]
    Resources(#[source] OciSpecError),
    /// Building `linux.seccomp`.
    #[error("building the seccomp profile")]
    Seccomp(#[source] OciSpecError),
    /// Building `linux`.
    #[error("building linux")]
    Linux(#[source] OciSpecError),
    /// Building the spec itself.
    #[error("building the spec")]
    Spec(#[source] OciSpecError),
}

/// A host device node a plan binds into the sandbox, as `stat` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    /// Its path (the same on the host and inside).
    pub path: String,
    /// Character (true) or block device.
    pub char: bool,
    /// Major number.
    pub major: i64,
    /// Minor number.
    pub minor: i64,
    /// Permission bits.
    pub mode: u32,
}

/// What rendering needs from the host: the device nodes of `plan.devices`, and for a host
/// root, its entries ([`host_layout`](crate::isolation::mounts::host_layout)).
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// One per `plan.devices` entry, in order.
    pub devices: Vec<DeviceNode>,
    /// The host root's entries (used when the plan's root is the host's).
    pub host_root: Vec<HostEntry>,
}

impl HostFacts {
    /// Reads what `plan` needs from the host.
    pub fn read(plan: &Plan) -> Result<HostFacts, OciError> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let mut devices = Vec::with_capacity(plan.devices.len());
        for path in &plan.devices {
            let err = |reason: String| OciError::Device {
                path: path.clone(),
                reason,
            };
            let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
            let ft = meta.file_type();
            if !ft.is_char_device() && !ft.is_block_device() {
                return Err(err("not a device node".into()));
            }
            let rdev = meta.rdev();
            devices.push(DeviceNode {
                path: path.clone(),
                char: ft.is_char_device(),
                major: i64::from(nix::sys::stat::major(rdev) as u32),
                minor: i64::from(nix::sys::stat::minor(rdev) as u32),
                mode: meta.mode() & 0o7777,
            });
        }
        let host_root = match plan.rootfs {
            RootPlan::Host => crate::isolation::mounts::host_layout(),
            RootPlan::Path(_) => Vec::new(),
        };
        Ok(HostFacts { devices, host_root })
    }
}

/// The OCI form of a plan, for one command (argv/env/cwd from the plan), runnable by runc/crun
/// with `root.path` = `rootfs_path`: the rootfs directory (read-only unless the plan's mode
/// is `full`), or for a host root a directory of mount points that the binds of
/// `host.host_root` fill.
pub fn spec_for(plan: &Plan, rootfs_path: &str, host: &HostFacts) -> Result<Spec, OciError> {
    let root = RootBuilder::default()
        .path(rootfs_path)
        .readonly(plan.fs_mode != FsMode::Full)
        .build()
        .map_err(OciError::Root)?;
    let (uid_map, gid_map) = (id_mappings(&plan.ids)?, id_mappings(&plan.ids)?);
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces()?)
        .uid_mappings(uid_map)
        .gid_mappings(gid_map)
        .cgroups_path(format!("/{}", plan.cgroup))
        .resources(resources(plan, &host.devices)?)
        .masked_paths(absolute(crate::isolation::mounts::MASKED))
        .readonly_paths(absolute(crate::isolation::mounts::READ_ONLY))
        .seccomp(seccomp::seccomp_for(&plan.seccomp)?);
    if !host.devices.is_empty() {
        linux = linux.devices(linux_devices(&host.devices)?);
    }
    let linux = linux.build().map_err(OciError::Linux)?;
    SpecBuilder::default()
        .version(OCI_VERSION)
        .root(root)
        .hostname(plan.hostname.clone())
        .process(process(plan)?)
        .mounts(mounts(plan, host)?)
        .linux(linux)
        .annotations(annotations(plan)?)
        .build()
        .map_err(OciError::Spec)
}

/// `linux.devices`: the policy's device nodes, owned by root inside.
fn linux_devices(devices: &[DeviceNode]) -> Result<Vec<oci_spec::runtime::LinuxDevice>, OciError> {
    devices
        .iter()
        .map(|d| {
            oci_spec::runtime::LinuxDeviceBuilder::default()
                .path(d.path.clone())
                .typ(if d.char {
                    oci_spec::runtime::LinuxDeviceType::C
                } else {
                    oci_spec::runtime::LinuxDeviceType::B
                })
                .major(d.major)
                .minor(d.minor)
                .file_mode(d.mode)
                .uid(0u32)
                .gid(0u32)
                .build()
                .map_err(OciError::Linux)
        })
        .collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The sandbox's own list of `/proc` paths (relative to the root), as OCI's absolute paths.
fn absolute(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| format!("/{s}")).collect()
}

/// What `sandbox-init` gives each exec: root inside, the policy's capabilities in every set
/// (none by default), no_new_privs, no core dumps and the plan's fd limit.
fn process(plan: &Plan) -> Result<oci_spec::runtime::Process, OciError> {
    let user = UserBuilder::default()
        .uid(0u32)
        .gid(0u32)
        .build()
        .map_err(OciError::Process)?;
    // Every set is given: a set left out would get oci-spec's defaults.
    let kept: Capabilities = plan
        .capabilities
        .iter()
        .map(|name| {
            // oci-spec's FromStr wants `CHOWN`; its serde form is the `CAP_CHOWN` we hold.
            serde_json::from_value::<oci_spec::runtime::Capability>(serde_json::Value::String(
                name.clone(),
            ))
            .map_err(|_| OciError::Capability { name: name.clone() })
        })
        .collect::<Result<_, _>>()?;
    let caps = LinuxCapabilitiesBuilder::default()
        .bounding(kept.clone())
        .effective(kept.clone())
        .inheritable(kept.clone())
        .permitted(kept.clone())
        .ambient(kept)
        .build()
        .map_err(OciError::Process)?;
    let rlimit = |typ, n: u64| {
        PosixRlimitBuilder::default()
            .typ(typ)
            .soft(n)
            .hard(n)
            .build()
            .map_err(OciError::Process)
    };
    let rlimits = vec![
        rlimit(PosixRlimitType::RlimitCore, 0)?,
        rlimit(PosixRlimitType::RlimitNofile, plan.nofile)?,
    ];
    ProcessBuilder::default()
        .terminal(false)
        .user(user)
        .args(plan.argv.clone())
        .env(plan.env.clone())
        .cwd(plan.cwd.clone())
        .capabilities(caps)
        .rlimits(rlimits)
        .no_new_privileges(plan.no_new_privileges)
        .build()
        .map_err(OciError::Process)
}

/// Sandbox ids `0..count` are host ids `host_base..`, for users and groups alike.
fn id_mappings(ids: &IdMap) -> Result<Vec<LinuxIdMapping>, OciError> {
    mapping(0, ids.host_base, ids.count).map(|m| vec![m])
}

fn mapping(container_id: u32, host_id: u32, size: u32) -> Result<LinuxIdMapping, OciError> {
    LinuxIdMappingBuilder::default()
        .container_id(container_id)
        .host_id(host_id)
        .size(size)
        .build()
        .map_err(OciError::IdMappings)
}

fn namespaces() -> Result<Vec<oci_spec::runtime::LinuxNamespace>, OciError> {
    NAMESPACES
        .iter()
        .map(|typ| {
            LinuxNamespaceBuilder::default()
                .typ(*typ)
                .build()
                .map_err(OciError::Namespaces)
        })
        .collect()
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, OciError> {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(strings(options))
        .build()
        .map_err(|source| OciError::Mount {
            destination: destination.into(),
            source,
        })
}

/// The mounts of `isolation::mounts::build_root` after the root, in its order and with its
/// flags and options (plus runc's usual `strictatime` on /dev); for a host root, first the
/// read-only binds of the host's system directories and curated /etc.
fn mounts(plan: &Plan, host: &HostFacts) -> Result<Vec<Mount>, OciError> {
    let tmp_size = format!("size={}", plan.tmp_size);
    let shm_size = format!("size={}", plan.shm_size);
    let mut out = Vec::new();
    if plan.rootfs == RootPlan::Host {
        for e in &host.host_root {
            if let HostEntry::Dir(p) | HostEntry::File(p) = e {
                out.push(mount(p, "bind", p, &["rbind", "ro", "nosuid", "nodev"])?);
            }
        }
    }
    out.extend([
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &[
                "nosuid",
                "noexec",
                "strictatime",
                "mode=755",
                "size=64k",
                "nr_inodes=64",
            ],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "nodev", "mode=1777", &shm_size],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/tmp",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "mode=1777", &tmp_size],
        )?,
    ]);
    if let Some(size) = plan.workspace_size {
        let size = format!("size={size}");
        let ro = if plan.fs_mode == FsMode::ReadOnly {
            "ro"
        } else {
            "rw"
        };
        out.push(mount(
            WORKSPACE,
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", ro, "mode=0755", &size],
        )?);
    }
    for b in &plan.mounts {
        let ro = if b.read_only { "ro" } else { "rw" };
        out.push(mount(
            &b.sandbox,
            "bind",
            &b.host,
            &["rbind", ro, "nosuid", "nodev"],
        )?);
    }
    Ok(out)
}

/// The cgroup limits: memory, and memory + swap as `swap` (runc's `memory.memsw` semantics),
/// pids, and cpus as a CFS quota; devices deny-all first, as `runc spec` writes, so only the
/// runtime's default devices and the policy's are allowed.
fn resources(
    plan: &Plan,
    devices: &[DeviceNode],
) -> Result<oci_spec::runtime::LinuxResources, OciError> {
    let limits = &plan.limits;
    let mut rules = vec![LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .map_err(OciError::Resources)?];
    for d in devices {
        rules.push(
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(if d.char {
                    oci_spec::runtime::LinuxDeviceType::C
                } else {
                    oci_spec::runtime::LinuxDeviceType::B
                })
                .major(d.major)
                .minor(d.minor)
                .access("rwm")
                .build()
                .map_err(OciError::Resources)?,
        );
    }
    let mut res = LinuxResourcesBuilder::default().devices(rules);
    if let Some(memory) = limits.memory {
        let bytes = i64::try_from(memory).map_err(|_| OciError::Memory { memory })?;
        let total = i64::try_from(memory.saturating_add(limits.swap))
            .map_err(|_| OciError::Memory { memory })?;
        let mem = LinuxMemoryBuilder::default()
            .limit(bytes)
            .swap(total)
            .build()
            .map_err(OciError::Resources)?;
        res = res.memory(mem);
    }
    if let Some(pids) = limits.pids {
        let limit = i64::try_from(pids).map_err(|_| OciError::Pids { pids })?;
        let pids = LinuxPidsBuilder::default()
            .limit(limit)
            .build()
            .map_err(OciError::Resources)?;
        res = res.pids(pids);
    }
    if let Some(cpus) = limits.cpus {
        let cpu = LinuxCpuBuilder::default()
            .quota(cpu_quota_us(cpus)?)
            .period(CPU_PERIOD_US)
            .build()
            .map_err(OciError::Resources)?;
        res = res.cpu(cpu);
    }
    res.build().map_err(OciError::Resources)
}

/// The CFS quota for `cpus`, in whole microseconds per [`CPU_PERIOD_US`] (as `cgroups`).
fn cpu_quota_us(cpus: f64) -> Result<i64, OciError> {
    let quota = (cpus * CPU_PERIOD_US as f64).round();
    if !(CPU_MIN_QUOTA_US..=1e15).contains(&quota) {
        return Err(OciError::Cpus { cpus });
    }
    // In range just above, so the conversion is exact.
    Ok(quota as i64)
}

/// The annotations: the sandbox id, where the root comes from, and the idmaps the host folder
/// binds are meant to have (see [`ANNOTATION_IDMAPPED`]).
fn annotations(plan: &Plan) -> Result<HashMap<String, String>, OciError> {
    let rootfs = match &plan.rootfs {
        RootPlan::Host => "host".to_owned(),
        RootPlan::Path(p) => p.clone(),
    };
    let mut out = HashMap::from([
        (ANNOTATION_SANDBOX_ID.to_owned(), plan.sandbox_id.clone()),
        (ANNOTATION_ROOTFS.to_owned(), rootfs),
        (ANNOTATION_POLICY.to_owned(), plan.policy.clone()),
        (
            ANNOTATION_FILESYSTEM.to_owned(),
            plan.fs_mode.as_str().to_owned(),
        ),
    ]);
    if !plan.mounts.is_empty() {
        let ids = &plan.ids;
        // As `isolation::spawn` maps them: root's folders keep every id, anyone else's map
        // only the caller's own uid and gid, to sandbox root.
        let (uids, gids) = if ids.caller_uid == 0 {
            (
                mapping(0, ids.host_base, ids.count)?,
                mapping(0, ids.host_base, ids.count)?,
            )
        } else {
            (
                mapping(ids.caller_uid, ids.host_base, 1)?,
                mapping(ids.caller_gid, ids.host_base, 1)?,
            )
        };
        let list: Vec<IdmappedMount<'_>> = plan
            .mounts
            .iter()
            .map(|b| IdmappedMount {
                destination: &b.sandbox,
                uid_mappings: vec![uids],
                gid_mappings: vec![gids],
            })
            .collect();
        let json = serde_json::to_string(&list).map_err(OciError::EncodeIdmap)?;
        out.insert(ANNOTATION_IDMAPPED.to_owned(), json);
    }
    Ok(out)
}

/// One entry of [`ANNOTATION_IDMAPPED`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct IdmappedMount<'a> {
    destination: &'a str,
    uid_mappings: Vec<LinuxIdMapping>,
    gid_mappings: Vec<LinuxIdMapping>,
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::cgroups::CgroupLimits;
    use crate::policy::{BindPlan, DEFAULT_ENV};

    fn plan() -> Plan {
        Plan {
            sandbox_id: "0123456789ab".into(),
            argv: vec!["sh".into(), "-c".into(), "true".into()],
            env: DEFAULT_ENV.iter().map(|s| s.to_string()).collect(),
            cwd: WORKSPACE.into(),
            hostname: "0123456789ab".into(),
            rootfs: RootPlan::Host,
            mounts: Vec::new(),
            workspace_size: Some(1 << 30),
            tmp_size: 256 << 20,
            ids: IdMap {
                host_base: 396608,
                count: 65536,
                caller_uid: 1000,
                caller_gid: 1001,
            },
            cgroup: "sandboxd/0123456789ab".into(),
            limits: CgroupLimits {
                memory: Some(1 << 30),
                swap: 0,
                pids: Some(1024),
                cpus: Some(1.5),
            },
            timeout_ms: None,
            ttl_ms: None,
            idle_timeout_ms: None,
            nofile: 1024,
            root_dir: "/run/sandboxd/root".into(),
            policy: "default".into(),
            fs_mode: FsMode::WorkspaceOnly,
            network: sandbox_proto::NetMode::None,
            shm_size: 64 << 20,
            overlay_size: None,
            capabilities: Vec::new(),
            no_new_privileges: true,
            seccomp: "default".into(),
            devices: Vec::new(),
        }
    }

    fn bind(host: &str, sandbox: &str, read_only: bool) -> BindPlan {
        BindPlan {
            host: host.into(),
            sandbox: sandbox.into(),
            read_only,
            dev: 0,
            ino: 0,
        }
    }

    fn render(p: &Plan) -> Value {
        serde_json::to_value(spec_for(p, "/bundle/rootfs", &HostFacts::default()).unwrap()).unwrap()
    }

    fn mount_dests(v: &Value) -> Vec<&str> {
        v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn default_plan_key_fields() {
        let v = render(&plan());
        let empty = json!([]);
        let map = json!([{ "containerID": 0, "hostID": 396608, "size": 65536 }]);
        let checks: &[(&str, Value)] = &[
            ("/ociVersion", json!("1.0.2")),
            ("/hostname", json!("0123456789ab")),
            (
                "/root",
                json!({ "path": "/bundle/rootfs", "readonly": true }),
            ),
            ("/process/args", json!(["sh", "-c", "true"])),
            ("/process/cwd", json!("/workspace")),
            ("/process/env", json!(DEFAULT_ENV)),
            ("/process/user", json!({ "uid": 0, "gid": 0 })),
            ("/process/terminal", json!(false)),
            ("/process/noNewPrivileges", json!(true)),
            ("/process/capabilities/bounding", empty.clone()),
            ("/process/capabilities/effective", empty.clone()),
            ("/process/capabilities/inheritable", empty.clone()),
            ("/process/capabilities/permitted", empty.clone()),
            ("/process/capabilities/ambient", empty),
            (
                "/process/rlimits",
                json!([
                    { "type": "RLIMIT_CORE", "hard": 0, "soft": 0 },
                    { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 },
                ]),
            ),
            (
                "/linux/namespaces",
                json!([
                    { "type": "user" }, { "type": "mount" }, { "type": "pid" },
                    { "type": "network" }, { "type": "ipc" }, { "type": "uts" },
                    { "type": "cgroup" },
                ]),
            ),
            ("/linux/uidMappings", map.clone()),
            ("/linux/gidMappings", map),
            ("/linux/cgroupsPath", json!("/sandboxd/0123456789ab")),
            (
                "/linux/maskedPaths",
                json!([
                    "/proc/acpi",
                    "/proc/asound",
                    "/proc/kcore",
                    "/proc/keys",
                    "/proc/latency_stats",
                    "/proc/timer_list",
                    "/proc/timer_stats",
                    "/proc/sched_debug",
                    "/proc/scsi",
                ]),
            ),
            (
                "/linux/readonlyPaths",
                json!([
                    "/proc/bus",
                    "/proc/fs",
                    "/proc/irq",
                    "/proc/sys",
                    "/proc/sysrq-trigger"
                ]),
            ),
            (
                "/linux/resources",
                json!({
                    "devices": [{ "allow": false, "access": "rwm" }],
                    "memory": { "limit": 1073741824i64, "swap": 1073741824i64 },
                    "pids": { "limit": 1024 },
                    "cpu": { "quota": 150000, "period": 100000 },
                }),
            ),
            ("/linux/seccomp/defaultAction", json!("SCMP_ACT_ALLOW")),
            (
                "/linux/seccomp/architectures",
                json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]),
            ),
            (
                "/annotations",
                json!({
                    "io.sandboxd.sandbox-id": "0123456789ab",
                    "io.sandboxd.rootfs": "host",
                    "io.sandboxd.policy": "default",
                    "io.sandboxd.filesystem": "workspace-only",
                }),
            ),
        ];
        for (pointer, want) in checks {
            assert_eq!(v.pointer(pointer), Some(want), "{pointer}");
        }
        // Nothing beyond what is rendered on purpose (oci-spec's builders fill in defaults).
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "annotations",
                "hostname",
                "linux",
                "mounts",
                "ociVersion",
                "process",
                "root"
            ]
        );
        let mut linux: Vec<&str> = v["linux"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        linux.sort_unstable();
        assert_eq!(
            linux,
            [
                "cgroupsPath",
                "gidMappings",
                "maskedPaths",
                "namespaces",
                "readonlyPaths",
                "resources",
                "seccomp",
                "uidMappings"
            ]
        );
        assert_eq!(v.pointer("/linux/devices"), None);
    }

    #[test]
    fn mounts_in_order() {
        let mut p = plan();
        p.mounts = vec![
            bind("/home/u/src", "/src", true),
            bind("/home/u/out", "/src/out", false),
        ];
        let v = render(&p);
        assert_eq!(
            mount_dests(&v),
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/tmp",
                "/workspace",
                "/src",
                "/src/out"
            ]
        );
        let m = &v["mounts"];
        let checks: &[(usize, Value)] = &[
            (
                0,
                json!({ "destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"] }),
            ),
            (
                5,
                json!({ "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777", "size=268435456"] }),
            ),
            (
                6,
                json!({ "destination": "/workspace", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "rw", "mode=0755", "size=1073741824"] }),
            ),
            (
                7,
                json!({ "destination": "/src", "type": "bind", "source": "/home/u/src", "options": ["rbind", "ro", "nosuid", "nodev"] }),
            ),
            (
                8,
                json!({ "destination": "/src/out", "type": "bind", "source": "/home/u/out", "options": ["rbind", "rw", "nosuid", "nodev"] }),
            ),
        ];
        for (i, want) in checks {
            assert_eq!(&m[i], want, "mounts[{i}]");
        }
        let idmap: Value =
            serde_json::from_str(v["annotations"][ANNOTATION_IDMAPPED].as_str().unwrap()).unwrap();
        let uid = json!([{ "containerID": 1000, "hostID": 396608, "size": 1 }]);
        let gid = json!([{ "containerID": 1001, "hostID": 396608, "size": 1 }]);
        assert_eq!(
            idmap,
            json!([
                { "destination": "/src", "uidMappings": uid, "gidMappings": gid },
                { "destination": "/src/out", "uidMappings": uid, "gidMappings": gid },
            ])
        );
    }

    #[test]
    fn workspace_from_host_has_no_tmpfs() {
        let mut p = plan();
        p.workspace_size = None;
        p.mounts = vec![bind("/home/u/proj", WORKSPACE, false)];
        let v = render(&p);
        let ws: Vec<&Value> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["destination"] == WORKSPACE)
            .collect();
        assert_eq!(
            ws,
            [
                &json!({ "destination": "/workspace", "type": "bind", "source": "/home/u/proj", "options": ["rbind", "rw", "nosuid", "nodev"] })
            ]
        );
    }

    #[test]
    fn bad_values_are_errors() {
        type Edit = fn(&mut Plan);
        let cases: &[(Edit, &str)] = &[
            (|p| p.limits.cpus = Some(0.001), "invalid cpus limit 0.001"),
            (|p| p.limits.cpus = Some(f64::NAN), "invalid cpus limit NaN"),
            (
                |p| p.limits.memory = Some(u64::MAX),
                "memory limit 18446744073709551615 is too large",
            ),
            (
                |p| p.limits.pids = Some(u64::MAX),
                "pids limit 18446744073709551615 is too large",
            ),
        ];
        for (edit, want) in cases {
            let mut p = plan();
            edit(&mut p);
            assert_eq!(
                spec_for(&p, "/r", &HostFacts::default())
                    .unwrap_err()
                    .to_string(),
                *want
            );
        }
    }

    /// Varied plans: each renders, survives a JSON round trip, and oci-spec loads it back
    /// from a bundle's config.json.
    #[test]
    fn varied_plans_round_trip() {
        let dir = std::env::temp_dir().join(format!("sandboxd-oci-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.json");
        let binds = [
            bind("/a", "/a", true),
            bind("/b", "/workspace", false),
            bind("/c", "/a/c", false),
        ];
        let mut count = 0;
        for n_mounts in 0..=3 {
            for memory in [None, Some(8 << 20), Some(1 << 40)] {
                for cpus in [None, Some(0.01), Some(1024.0)] {
                    for rootfs in [RootPlan::Host, RootPlan::Path("/srv/rootfs".into())] {
                        let mut p = plan();
                        p.mounts = binds[..n_mounts].to_vec();
                        p.workspace_size = (n_mounts < 2).then_some(1 << 20);
                        p.limits = CgroupLimits {
                            memory,
                            swap: 0,
                            pids: memory.map(|_| 2),
                            cpus,
                        };
                        p.ids.caller_uid = if cpus.is_some() { 0 } else { 1000 };
                        p.rootfs = rootfs;
                        let spec = spec_for(&p, "rootfs", &HostFacts::default()).unwrap();
                        let text = serde_json::to_string(&spec).unwrap();
                        let back: Spec = serde_json::from_str(&text).unwrap();
                        assert_eq!(back, spec);
                        spec.save(&config).unwrap();
                        assert_eq!(Spec::load(&config).unwrap(), spec);
                        let v = serde_json::to_value(&spec).unwrap();
                        let want_mounts = 6 + usize::from(p.workspace_size.is_some()) + n_mounts;
                        assert_eq!(mount_dests(&v).len(), want_mounts);
                        assert_eq!(
                            v["linux"]["resources"].get("memory").is_some(),
                            memory.is_some()
                        );
                        assert_eq!(v["linux"]["resources"].get("cpu").is_some(), cpus.is_some());
                        assert_eq!(
                            v["annotations"].get(ANNOTATION_IDMAPPED).is_some(),
                            n_mounts > 0
                        );
                        let rootfs = match &p.rootfs {
                            RootPlan::Host => "host",
                            RootPlan::Path(path) => path,
                        };
                        assert_eq!(v["annotations"][ANNOTATION_ROOTFS], rootfs);
                        count += 1;
                    }
                }
            }
        }
        assert_eq!(count, 72);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
