use serde_json::{json, Value};

use super::*;

/// `runc spec` (runc 1.1.5).
const RUNC: &str = include_str!("../../tests/data/runc-spec.json");
/// `crun spec` (crun 1.8.1).
const CRUN: &str = include_str!("../../tests/data/crun-spec.json");
/// What `sandboxd::oci::spec_for` writes for a plan with a host folder.
const EXPORT: &str = include_str!("../../tests/data/sandboxd-export.json");
/// The bundle directory the pure tests use.
const BUNDLE: &str = "/bundles/b";

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const NOTE_SYS: &str = "mounts[5] (/sys): not mounted: sandboxd sandboxes have no /sys";
const NOTE_CGROUP: &str =
    "mounts[6] (/sys/fs/cgroup): not mounted: sandboxd sandboxes have no /sys";
const NOTE_NAMESPACES: &str = "linux.namespaces: user, cgroup not listed; sandboxd always \
                               creates user, mount, pid, network, ipc, uts and cgroup namespaces";
const NOTE_DEVICES: &str = "linux.resources.devices: ignored; the sandbox's /dev has only null, \
                            zero, full, random, urandom, tty, ptmx and pts";

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn conv(v: &Value) -> Result<BundleRun, Vec<Refusal>> {
    let spec: Spec = serde_json::from_value(v.clone()).unwrap();
    convert(Path::new(BUNDLE), &spec)
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// What `runc spec` (and `crun spec`, with its hostname) converts to.
fn runc_want(hostname: &str) -> BundleRun {
    BundleRun {
        spec: RunSpec {
            argv: strings(&["sh"]),
            env: strings(&[PATH_ENV, "TERM=xterm"]),
            cwd: Some("/".into()),
            hostname: Some(hostname.into()),
            rootfs: Rootfs::Path {
                path: "/bundles/b/rootfs".into(),
            },
            limits: Limits {
                open_files: Some(1024),
                shm_size: Some(64 << 20),
                ..Limits::default()
            },
            filesystem: Some(FsMode::WorkspaceOnly),
            capabilities: Some(strings(&[
                "CAP_AUDIT_WRITE",
                "CAP_KILL",
                "CAP_NET_BIND_SERVICE",
            ])),
            ..RunSpec::default()
        },
        terminal: true,
        seccomp: None,
        notes: strings(&[NOTE_SYS, NOTE_CGROUP, NOTE_NAMESPACES, NOTE_DEVICES]),
        bundle: BUNDLE.into(),
    }
}

#[test]
fn runc_and_crun_specs_convert() {
    for (text, hostname) in [(RUNC, "runc"), (CRUN, "crun")] {
        assert_eq!(conv(&json(text)), Ok(runc_want(hostname)), "{hostname}");
    }
}

#[test]
fn sandboxd_export_converts() {
    let v = json(EXPORT);
    let want = BundleRun {
        spec: RunSpec {
            argv: strings(&["sh", "-c", "true"]),
            env: strings(&[PATH_ENV, "HOME=/tmp", "LANG=C.UTF-8"]),
            cwd: Some("/workspace".into()),
            hostname: Some("0123456789ab".into()),
            rootfs: Rootfs::Path {
                path: "/bundles/b/rootfs".into(),
            },
            mounts: vec![Mount {
                host: "/home/u/src".into(),
                sandbox: "/src".into(),
                read_only: true,
            }],
            limits: Limits {
                memory: Some(1 << 30),
                pids: Some(1024),
                cpus: Some(1.5),
                timeout_ms: None,
                workspace_size: Some(1 << 30),
                swap: Some(0),
                tmp_size: Some(256 << 20),
                shm_size: Some(64 << 20),
                open_files: Some(1024),
            },
            filesystem: Some(FsMode::WorkspaceOnly),
            capabilities: Some(Vec::new()),
            ..RunSpec::default()
        },
        terminal: false,
        seccomp: Some(v["linux"]["seccomp"].clone()),
        notes: strings(&[
            "linux.uidMappings, linux.gidMappings: ignored; the daemon gives each sandbox its \
             own range of 65536 ids",
            "linux.cgroupsPath: ignored; the daemon places the sandbox's cgroup",
            NOTE_DEVICES,
            "annotations: ignored (io.sandboxd.idmapped-mounts, io.sandboxd.rootfs, \
             io.sandboxd.sandbox-id)",
        ]),
        bundle: BUNDLE.into(),
    };
    assert_eq!(conv(&v), Ok(want));
}

type Edit = fn(&mut Value);
type Want = fn(&mut BundleRun);
/// The refusals expected, as `(field, reason)`.
type Refused<'a> = &'a [(&'a str, &'a str)];

fn push_mount(v: &mut Value, mount: Value) {
    v["mounts"].as_array_mut().unwrap().push(mount);
}

/// Single changes to `runc spec` that convert: what each changes in the result.
#[test]
fn mapped_values() {
    let cases: &[(&str, Edit, Want)] = &[
        (
            "memory with swap",
            |v| v["linux"]["resources"]["memory"] = json!({ "limit": 1 << 30, "swap": 3 << 29 }),
            |w| {
                w.spec.limits.memory = Some(1 << 30);
                w.spec.limits.swap = Some(1 << 29);
            },
        ),
        (
            "memory without swap",
            |v| v["linux"]["resources"]["memory"] = json!({ "limit": 1 << 30, "swap": 1 << 30 }),
            |w| {
                w.spec.limits.memory = Some(1 << 30);
                w.spec.limits.swap = Some(0);
            },
        ),
        (
            "memory alone",
            |v| v["linux"]["resources"]["memory"] = json!({ "limit": 512 << 20 }),
            |w| w.spec.limits.memory = Some(512 << 20),
        ),
        (
            "pids",
            |v| v["linux"]["resources"]["pids"] = json!({ "limit": 100 }),
            |w| w.spec.limits.pids = Some(100),
        ),
        (
            "cpu quota, default period",
            |v| v["linux"]["resources"]["cpu"] = json!({ "quota": 50000 }),
            |w| w.spec.limits.cpus = Some(0.5),
        ),
        (
            "cpu quota and period",
            |v| v["linux"]["resources"]["cpu"] = json!({ "quota": 200000, "period": 50000 }),
            |w| w.spec.limits.cpus = Some(4.0),
        ),
        (
            "cpu period alone",
            |v| v["linux"]["resources"]["cpu"] = json!({ "period": 50000 }),
            |_| {},
        ),
        (
            "bind mount, relative source",
            |v| {
                push_mount(
                    v,
                    json!({ "destination": "/data", "type": "bind", "source": "./data/", "options": ["rbind", "ro"] }),
                )
            },
            |w| {
                w.spec.mounts.push(Mount {
                    host: "/bundles/b/data".into(),
                    sandbox: "/data".into(),
                    read_only: true,
                })
            },
        ),
        (
            "bind mount by option, rw last",
            |v| {
                push_mount(
                    v,
                    json!({ "destination": "/out/", "type": "none", "source": "/srv/out", "options": ["bind", "ro", "rw", "nosuid", "nodev", "rprivate"] }),
                )
            },
            |w| {
                w.spec.mounts.push(Mount {
                    host: "/srv/out".into(),
                    sandbox: "/out".into(),
                    read_only: false,
                })
            },
        ),
        (
            "bind mount, noexec",
            |v| {
                push_mount(
                    v,
                    json!({ "destination": "/src", "source": "/home/u/src", "options": ["rbind", "noexec"] }),
                )
            },
            |w| {
                w.spec.mounts.push(Mount {
                    host: "/home/u/src".into(),
                    sandbox: "/src".into(),
                    read_only: false,
                });
                w.notes
                    .insert(2, "mounts[7] (/src): noexec is not applied".into());
            },
        ),
        (
            "shm size=256m",
            |v| v["mounts"][3]["options"][4] = json!("size=256m"),
            |w| w.spec.limits.shm_size = Some(256 << 20),
        ),
        (
            "shm without size",
            |v| v["mounts"][3]["options"] = json!(["nosuid"]),
            |w| w.spec.limits.shm_size = None,
        ),
        (
            "tmp and workspace sizes",
            |v| {
                push_mount(
                    v,
                    json!({ "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1G"] }),
                );
                push_mount(
                    v,
                    json!({ "destination": "/workspace", "type": "tmpfs", "source": "tmpfs", "options": ["size=1048576"] }),
                );
            },
            |w| {
                w.spec.limits.tmp_size = Some(1 << 30);
                w.spec.limits.workspace_size = Some(1 << 20);
            },
        ),
        (
            "cgroup2 on /sys/fs/cgroup",
            |v| v["mounts"][6]["type"] = json!("cgroup2"),
            |_| {},
        ),
        (
            "writable root",
            |v| v["root"]["readonly"] = json!(false),
            |w| {
                w.spec.filesystem = Some(FsMode::Full);
                w.notes.insert(
                    0,
                    "root.readonly: false: the root is a writable overlay; writes land in a \
                     tmpfs layer and are discarded with the sandbox, not written to the \
                     bundle's rootfs"
                        .into(),
                );
            },
        ),
        (
            "absolute root",
            |v| v["root"]["path"] = json!("/srv/images/alpine/"),
            |w| {
                w.spec.rootfs = Rootfs::Path {
                    path: "/srv/images/alpine".into(),
                }
            },
        ),
        (
            "no terminal, umask 022, no hostname",
            |v| {
                v["process"]["terminal"] = json!(false);
                v["process"]["user"]["umask"] = json!(18);
                v["hostname"] = json!("");
            },
            |w| {
                w.terminal = false;
                w.spec.hostname = None;
            },
        ),
        (
            "capabilities: empty inheritable and ambient",
            |v| {
                v["process"]["capabilities"]["inheritable"] = json!([]);
                v["process"]["capabilities"]["ambient"] = json!([]);
            },
            |_| {},
        ),
        (
            "no capabilities",
            |v| {
                v["process"]["capabilities"] = json!({
                    "bounding": [], "effective": [], "permitted": []
                })
            },
            |w| w.spec.capabilities = Some(Vec::new()),
        ),
        (
            "capabilities absent",
            |v| {
                v["process"].as_object_mut().unwrap().remove("capabilities");
            },
            |w| {
                w.spec.capabilities = None;
                w.notes.insert(
                    0,
                    "process.capabilities: absent; the policy's capabilities apply (not every \
                     capability, as an OCI runtime would leave root)"
                        .into(),
                );
            },
        ),
        (
            "core dumps off",
            |v| {
                v["process"]["rlimits"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({ "type": "RLIMIT_CORE", "hard": 0, "soft": 0 }))
            },
            |_| {},
        ),
        (
            "all namespaces, a user mapping, a cgroups path",
            |v| {
                let ns = v["linux"]["namespaces"].as_array_mut().unwrap();
                ns.push(json!({ "type": "user" }));
                ns.push(json!({ "type": "cgroup" }));
                v["linux"]["uidMappings"] =
                    json!([{ "containerID": 0, "hostID": 1000, "size": 1 }]);
                v["linux"]["cgroupsPath"] = json!("/mine");
            },
            |w| {
                w.notes.retain(|n| n != NOTE_NAMESPACES);
                w.notes.insert(
                    2,
                    "linux.uidMappings: ignored; the daemon gives each sandbox its own range \
                     of 65536 ids"
                        .into(),
                );
                w.notes.insert(
                    3,
                    "linux.cgroupsPath: ignored; the daemon places the sandbox's cgroup".into(),
                );
            },
        ),
        (
            "no linux section",
            |v| {
                v.as_object_mut().unwrap().remove("linux");
            },
            |w| {
                w.notes[2] = "linux.namespaces: user, mount, pid, network, ipc, uts, cgroup \
                              not listed; sandboxd always creates user, mount, pid, network, \
                              ipc, uts and cgroup namespaces"
                    .into();
                w.notes.pop();
            },
        ),
        (
            "docker's default device rules and nodes",
            |v| {
                v["linux"]["resources"]["devices"] = json!([
                    { "allow": false, "access": "rwm" },
                    { "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" },
                    { "allow": true, "type": "c", "major": 136, "access": "rwm" },
                    { "allow": true, "type": "c", "major": 5, "minor": 2, "access": "rw" },
                    { "allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm" },
                    { "allow": true, "type": "c", "access": "m" },
                    { "allow": true, "type": "b", "major": -1, "minor": -1, "access": "m" },
                ]);
                v["linux"]["devices"] = json!([
                    { "path": "/dev/null", "type": "c", "major": 1, "minor": 3 },
                    { "path": "/dev/tty", "type": "c", "major": 5, "minor": 0, "fileMode": 438 },
                ]);
            },
            |_| {},
        ),
        (
            "propagation, /sys paths, empty extras",
            |v| {
                v["linux"]["rootfsPropagation"] = json!("rslave");
                v["linux"]["maskedPaths"] = json!(["/proc/kcore", "/sys/firmware", "/sys"]);
                v["linux"]["readonlyPaths"] = json!(["/proc/sys", "/proc/kcore", "/sys/fs"]);
                v["linux"]["sysctl"] = json!({});
                v["hooks"] = json!({});
                v["process"]["apparmorProfile"] = json!("");
                v["domainname"] = json!("");
            },
            |_| {},
        ),
        (
            "annotations",
            |v| v["annotations"] = json!({ "b": "1", "a": "2" }),
            |w| w.notes.push("annotations: ignored (a, b)".into()),
        ),
        (
            "seccomp",
            |v| {
                v["linux"]["seccomp"] = json!({
                    "defaultAction": "SCMP_ACT_ERRNO",
                    "defaultErrnoRet": 1,
                    "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [{ "names": ["read", "write"], "action": "SCMP_ACT_ALLOW" }],
                })
            },
            |w| {
                w.seccomp = Some(json!({
                    "defaultAction": "SCMP_ACT_ERRNO",
                    "defaultErrnoRet": 1,
                    "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [{ "names": ["read", "write"], "action": "SCMP_ACT_ALLOW" }],
                }))
            },
        ),
        (
            "ociVersion 1.2",
            |v| v["ociVersion"] = json!("1.2.0"),
            |_| {},
        ),
    ];
    for (name, edit, want) in cases {
        let mut v = json(RUNC);
        edit(&mut v);
        let mut expected = runc_want("runc");
        want(&mut expected);
        assert_eq!(conv(&v), Ok(expected), "{name}");
    }
}

/// Single changes to `runc spec` that sandboxd refuses: the exact refusals.
#[test]
fn refused_fields() {
    let cases: &[(&str, Edit, Refused<'_>)] = &[
        (
            "hooks",
            |v| v["hooks"] = json!({ "prestart": [{ "path": "/usr/bin/true" }] }),
            &[("hooks", "sandboxd runs no hooks")],
        ),
        (
            "namespace path",
            |v| v["linux"]["namespaces"][1]["path"] = json!("/proc/1/ns/net"),
            &[(
                "linux.namespaces[1] (network)",
                "joins /proc/1/ns/net: sandboxd always creates new namespaces",
            )],
        ),
        (
            "time namespace",
            |v| {
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({ "type": "time" }))
            },
            &[(
                "linux.namespaces[5] (time)",
                "sandboxd creates no such namespace",
            )],
        ),
        (
            "sysctl",
            |v| v["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1", "kernel.shmmax": "1" }),
            &[(
                "linux.sysctl",
                "sandboxd sets no sysctls (kernel.shmmax, net.ipv4.ip_forward)",
            )],
        ),
        (
            "uid 1000",
            |v| v["process"]["user"]["uid"] = json!(1000),
            &[(
                "process.user",
                "uid 1000 gid 0: one-shot runs execute as root (0:0) of the sandbox",
            )],
        ),
        (
            "supplementary groups, umask, username",
            |v| {
                v["process"]["user"]["additionalGids"] = json!([10]);
                v["process"]["user"]["umask"] = json!(0o077);
                v["process"]["user"]["username"] = json!("root");
            },
            &[
                (
                    "process.user.additionalGids",
                    "sandboxd runs commands with no supplementary groups",
                ),
                (
                    "process.user.umask",
                    "0o77: sandboxd runs commands with umask 0o22",
                ),
                ("process.user.username", "Windows only"),
            ],
        ),
        (
            "cifs mount",
            |v| {
                push_mount(
                    v,
                    json!({ "destination": "/mnt/share", "type": "cifs", "source": "//srv/share", "options": ["ro"] }),
                )
            },
            &[(
                "mounts[7] (/mnt/share)",
                "type cifs: sandboxd mounts only host folders (bind)",
            )],
        ),
        (
            "mount under /sys",
            |v| {
                push_mount(
                    v,
                    json!({ "destination": "/sys/kernel/security", "type": "securityfs", "source": "securityfs" }),
                )
            },
            &[(
                "mounts[7] (/sys/kernel/security)",
                "type securityfs: sandboxd mounts only host folders (bind)",
            )],
        ),
        (
            "a second /proc of the wrong type",
            |v| v["mounts"][0]["type"] = json!("tmpfs"),
            &[(
                "mounts[0] (/proc)",
                "type tmpfs: sandboxd mounts only host folders (bind)",
            )],
        ),
        (
            "bind mount options",
            |v| {
                push_mount(
                    v,
                    json!({ "destination": "/src", "type": "bind", "source": "/src", "options": ["rbind", "shared", "suid"] }),
                )
            },
            &[(
                "mounts[7] (/src)",
                "bind option shared, suid not supported (allowed: bind, rbind, ro, rw, nosuid, \
                 nodev, noexec, private, rprivate, rslave, slave)",
            )],
        ),
        (
            "bind mount without source",
            |v| push_mount(v, json!({ "destination": "/src", "type": "bind" })),
            &[("mounts[7] (/src)", "bind mount with no source")],
        ),
        (
            "idmapped bind mount",
            |v| {
                let map = json!([{ "containerID": 0, "hostID": 1000, "size": 1 }]);
                push_mount(
                    v,
                    json!({ "destination": "/src", "type": "bind", "source": "/src", "options": ["rbind"], "uidMappings": map, "gidMappings": map }),
                )
            },
            &[
                (
                    "mounts[7] (/src).gidMappings",
                    "idmapped mounts: the daemon maps host folders itself",
                ),
                (
                    "mounts[7] (/src).uidMappings",
                    "idmapped mounts: the daemon maps host folders itself",
                ),
            ],
        ),
        (
            "shm size as a share of RAM",
            |v| v["mounts"][3]["options"][4] = json!("size=50%"),
            &[(
                "mounts[3] (/dev/shm)",
                "size=50%: a share of RAM; sandboxd needs bytes",
            )],
        ),
        (
            "tmp size 0",
            |v| {
                push_mount(
                    v,
                    json!({ "destination": "/tmp", "type": "tmpfs", "options": ["size=0"] }),
                )
            },
            &[(
                "mounts[7] (/tmp)",
                "size=0: 0 is unlimited; sandboxd needs a bound",
            )],
        ),
        (
            "blockIO",
            |v| v["linux"]["resources"]["blockIO"] = json!({ "weight": 500 }),
            &[(
                "linux.resources.blockIO",
                "sandboxd sets no block I/O limits",
            )],
        ),
        (
            "other resources",
            |v| {
                let r = &mut v["linux"]["resources"];
                r["hugepageLimits"] = json!([{ "pageSize": "2MB", "limit": 1 }]);
                r["network"] = json!({ "classID": 1 });
                r["rdma"] = json!({ "mlx5_1": { "hcaHandles": 3 } });
                r["unified"] = json!({ "io.weight": "10" });
            },
            &[
                (
                    "linux.resources.hugepageLimits",
                    "sandboxd sets no hugepage limits",
                ),
                (
                    "linux.resources.network",
                    "sandboxd sets no network classes or priorities",
                ),
                ("linux.resources.rdma", "sandboxd sets no RDMA limits"),
                (
                    "linux.resources.unified",
                    "sandboxd sets only memory, swap, pids and cpu limits",
                ),
            ],
        ),
        (
            "swap below the memory limit",
            |v| v["linux"]["resources"]["memory"] = json!({ "limit": 1 << 30, "swap": 1 << 20 }),
            &[(
                "linux.resources.memory.swap",
                "1048576 is below memory.limit 1073741824 (OCI's swap is memory+swap)",
            )],
        ),
        (
            "unlimited swap",
            |v| v["linux"]["resources"]["memory"] = json!({ "limit": 1 << 30, "swap": -1 }),
            &[(
                "linux.resources.memory.swap",
                "-1 (unlimited): sandboxd needs a swap bound",
            )],
        ),
        (
            "swap without a memory limit",
            |v| v["linux"]["resources"]["memory"] = json!({ "swap": 1 << 30 }),
            &[(
                "linux.resources.memory.swap",
                "memory+swap without memory.limit",
            )],
        ),
        (
            "unlimited memory, a reservation",
            |v| {
                v["linux"]["resources"]["memory"] =
                    json!({ "limit": -1, "swap": -1, "reservation": 1 << 20 })
            },
            &[
                (
                    "linux.resources.memory.reservation",
                    "not supported by sandboxd",
                ),
                (
                    "linux.resources.memory.limit",
                    "-1: sandboxd needs a positive memory limit",
                ),
                (
                    "linux.resources.memory.swap",
                    "-1 (unlimited): sandboxd needs a swap bound",
                ),
            ],
        ),
        (
            "pids 0",
            |v| v["linux"]["resources"]["pids"] = json!({ "limit": 0 }),
            &[(
                "linux.resources.pids.limit",
                "0: sandboxd needs a positive pids limit",
            )],
        ),
        (
            "unlimited pids",
            |v| v["linux"]["resources"]["pids"] = json!({ "limit": -1 }),
            &[(
                "linux.resources.pids.limit",
                "-1: sandboxd needs a positive pids limit",
            )],
        ),
        (
            "cpu shares, cpuset, unlimited quota",
            |v| v["linux"]["resources"]["cpu"] = json!({ "shares": 1024, "quota": -1, "cpus": "0-3", "mems": "0", "realtimeRuntime": 1 }),
            &[
                ("linux.resources.cpu.cpus", "not supported by sandboxd"),
                ("linux.resources.cpu.mems", "not supported by sandboxd"),
                (
                    "linux.resources.cpu.realtimeRuntime",
                    "not supported by sandboxd",
                ),
                ("linux.resources.cpu.shares", "not supported by sandboxd"),
                (
                    "linux.resources.cpu.quota",
                    "-1: sandboxd needs a positive CPU quota",
                ),
            ],
        ),
        (
            "cpu period 0",
            |v| v["linux"]["resources"]["cpu"] = json!({ "quota": 1000, "period": 0 }),
            &[("linux.resources.cpu.period", "0: must be positive")],
        ),
        (
            "device cgroup: allow all",
            |v| v["linux"]["resources"]["devices"] = json!([{ "allow": true, "access": "rwm" }]),
            &[(
                "linux.resources.devices[0] (allow a *:* rwm)",
                "the device list must start with deny-all (allow: false, access: rwm)",
            )],
        ),
        (
            "device cgroup: a disk",
            |v| {
                v["linux"]["resources"]["devices"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({ "allow": true, "type": "b", "major": 8, "minor": 0, "access": "rw" }))
            },
            &[(
                "linux.resources.devices[1] (allow b 8:0 rw)",
                "devices come from the policy: sandboxd allows only null, zero, full, random, \
                 urandom, tty, console, ptmx, pts and tun",
            )],
        ),
        (
            "device cgroup: a single device denied",
            |v| {
                v["linux"]["resources"]["devices"]
                    .as_array_mut()
                    .unwrap()
                    .extend([
                        json!({ "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" }),
                        json!({ "allow": false, "type": "c", "major": 1, "minor": 3, "access": "w" }),
                        json!({ "allow": false, "access": "rwm" }),
                    ])
            },
            &[(
                "linux.resources.devices[2] (deny c 1:3 w)",
                "sandboxd cannot deny single devices",
            )],
        ),
        (
            "device nodes",
            |v| {
                v["linux"]["devices"] = json!([
                    { "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229 },
                    { "path": "/dev/null", "type": "c", "major": 8, "minor": 0 },
                ])
            },
            &[
                (
                    "linux.devices[0] (/dev/fuse)",
                    "devices come from the policy: only null, zero, full, random, urandom and tty",
                ),
                (
                    "linux.devices[1] (/dev/null)",
                    "devices come from the policy: only null, zero, full, random, urandom and tty",
                ),
            ],
        ),
        (
            "masked and read-only paths",
            |v| {
                v["linux"]["maskedPaths"] = json!(["/proc/acpi", "/proc/sys", "/etc/secret"]);
                v["linux"]["readonlyPaths"] = json!(["/proc/bus", "/usr"]);
            },
            &[
                (
                    "linux.maskedPaths[1] (/proc/sys)",
                    "sandboxd masks only its own list of /proc paths",
                ),
                (
                    "linux.maskedPaths[2] (/etc/secret)",
                    "sandboxd masks only its own list of /proc paths",
                ),
                (
                    "linux.readonlyPaths[1] (/usr)",
                    "sandboxd makes only its own list of /proc paths read-only",
                ),
            ],
        ),
        (
            "shared propagation",
            |v| v["linux"]["rootfsPropagation"] = json!("rshared"),
            &[(
                "linux.rootfsPropagation",
                "rshared: a sandbox's mounts are private",
            )],
        ),
        (
            "linux extras",
            |v| {
                let l = &mut v["linux"];
                l["mountLabel"] = json!("system_u:object_r:container_file_t:s0");
                l["personality"] = json!({ "domain": "LINUX32" });
                l["intelRdt"] = json!({ "closID": "x" });
                l["timeOffsets"] = json!({ "monotonic": { "secs": 1 } });
            },
            &[
                ("linux.intelRdt", "sandboxd sets no Intel RDT limits"),
                (
                    "linux.mountLabel",
                    "sandboxd applies no SELinux mount label",
                ),
                ("linux.personality", "sandboxd sets no execution domain"),
                ("linux.timeOffsets", "sandboxd creates no time namespace"),
            ],
        ),
        (
            "process extras",
            |v| {
                let p = &mut v["process"];
                p["apparmorProfile"] = json!("docker-default");
                p["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
                p["oomScoreAdj"] = json!(100);
                p["ioPriority"] = json!({ "class": "IOPRIO_CLASS_IDLE" });
                p["scheduler"] = json!({ "policy": "SCHED_BATCH" });
                p["execCPUAffinity"] = json!({ "initial": "0" });
                p["noNewPrivileges"] = json!(false);
            },
            &[
                (
                    "process.apparmorProfile",
                    "sandboxd applies no AppArmor profile",
                ),
                ("process.execCPUAffinity", "sandboxd sets no CPU affinity"),
                ("process.ioPriority", "sandboxd sets no I/O priority"),
                ("process.oomScoreAdj", "the daemon sets the OOM score"),
                ("process.scheduler", "sandboxd sets no scheduling policy"),
                ("process.selinuxLabel", "sandboxd applies no SELinux label"),
                (
                    "process.noNewPrivileges",
                    "false: sandboxd always sets no_new_privs",
                ),
            ],
        ),
        (
            "capability sets that differ",
            |v| {
                let c = &mut v["process"]["capabilities"];
                c["effective"] = json!(["CAP_KILL"]);
                c["inheritable"] = json!(["CAP_KILL"]);
            },
            &[
                (
                    "process.capabilities.effective",
                    "differs from the bounding set: sandboxd gives a command one set of \
                     capabilities (bounding = permitted = effective)",
                ),
                (
                    "process.capabilities.inheritable",
                    "neither empty nor the bounding set",
                ),
            ],
        ),
        (
            "rlimits",
            |v| {
                v["process"]["rlimits"] = json!([
                    { "type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024 },
                    { "type": "RLIMIT_CORE", "hard": 1, "soft": 0 },
                    { "type": "RLIMIT_NPROC", "hard": 10, "soft": 10 },
                ])
            },
            &[
                (
                    "process.rlimits[0] (RLIMIT_NOFILE)",
                    "soft 1024 and hard 4096 differ: sandboxd sets both to one value",
                ),
                (
                    "process.rlimits[1] (RLIMIT_CORE)",
                    "sandboxd always sets it to 0 (no core dumps)",
                ),
                (
                    "process.rlimits[2] (RLIMIT_NPROC)",
                    "sandboxd sets only RLIMIT_NOFILE (and RLIMIT_CORE 0)",
                ),
            ],
        ),
        (
            "no command, relative cwd",
            |v| {
                v["process"]["args"] = json!([]);
                v["process"]["cwd"] = json!("work");
            },
            &[
                ("process.args", "missing: nothing to run"),
                ("process.cwd", "\"work\" is not an absolute path"),
            ],
        ),
        (
            "no process, no root",
            |v| {
                let o = v.as_object_mut().unwrap();
                o.remove("process");
                o.remove("root");
            },
            &[
                (
                    "root",
                    "missing: sandboxd needs the bundle's root filesystem",
                ),
                ("process", "missing: nothing to run"),
            ],
        ),
        (
            "domainname, other platforms",
            |v| {
                v["domainname"] = json!("example.com");
                v["windows"] = json!({ "layerFolders": ["C:\\layers"] });
                v["vm"] = json!({ "kernel": { "path": "/vmlinuz" } });
            },
            &[
                ("domainname", "sandboxd sets only the hostname"),
                ("vm", "sandboxd runs no virtual machines"),
                ("windows", "not a Linux setting"),
            ],
        ),
        (
            "ociVersion 2",
            |v| v["ociVersion"] = json!("2.0.0"),
            &[(
                "ociVersion",
                "version \"2.0.0\": sandboxd reads runtime-spec 1.0, 1.1 and 1.2",
            )],
        ),
    ];
    for (name, edit, want) in cases {
        let mut v = json(RUNC);
        edit(&mut v);
        let got = conv(&v).expect_err(name);
        let got: Vec<(&str, &str)> = got
            .iter()
            .map(|r| (r.field.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(got, *want, "{name}");
    }
}

/// Several fields at once: every one is refused, and the error lists them line by line.
#[test]
fn refusals_come_together() {
    let mut v = json(RUNC);
    v["hooks"] = json!({ "poststart": [{ "path": "/bin/true" }] });
    v["process"]["user"]["uid"] = json!(1000);
    v["process"]["user"]["gid"] = json!(1000);
    v["linux"]["sysctl"] = json!({ "kernel.msgmax": "8192" });
    v["linux"]["resources"]["blockIO"] = json!({ "weight": 10 });
    push_mount(
        &mut v,
        json!({ "destination": "/mnt", "type": "nfs", "source": "srv:/export" }),
    );
    let err = BundleError::Refused(conv(&v).unwrap_err());
    assert_eq!(
        err.to_string(),
        "the bundle asks for what sandboxd does not support:\n  \
         hooks: sandboxd runs no hooks\n  \
         process.user: uid 1000 gid 1000: one-shot runs execute as root (0:0) of the sandbox\n  \
         mounts[7] (/mnt): type nfs: sandboxd mounts only host folders (bind)\n  \
         linux.resources.blockIO: sandboxd sets no block I/O limits\n  \
         linux.sysctl: sandboxd sets no sysctls (kernel.msgmax)"
    );
}

#[test]
fn tmpfs_sizes() {
    let ok: &[(&str, u64)] = &[
        ("4096", 4096),
        ("65536k", 64 << 20),
        ("64K", 64 << 10),
        ("256m", 256 << 20),
        ("1G", 1 << 30),
        ("2t", 2 << 40),
        ("1e", 1 << 60),
    ];
    for (text, want) in ok {
        assert_eq!(parse_tmpfs_size(text), Ok(*want), "{text}");
    }
    let bad: &[(&str, &str)] = &[
        ("", "not a size"),
        ("m", "not a size"),
        ("1.5g", "not a size"),
        ("1gb", "not a size"),
        ("-1", "not a size"),
        ("10%", "a share of RAM; sandboxd needs bytes"),
        ("0", "0 is unlimited; sandboxd needs a bound"),
        ("16e", "too large"),
        ("99999999999999999999", "not a size"),
    ];
    for (text, want) in bad {
        assert_eq!(parse_tmpfs_size(text), Err(want.to_string()), "{text}");
    }
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("sandboxctl-bundle-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn load_reads_a_bundle() {
    let s = Scratch::new("ok");
    std::fs::write(s.0.join("config.json"), RUNC).unwrap();
    std::fs::create_dir(s.0.join("rootfs")).unwrap();
    // A relative path with a `.` in it: the bundle comes back absolute and clean.
    let parent = s.0.parent().unwrap();
    let name = s.0.file_name().unwrap();
    let cwd = std::env::current_dir().unwrap();
    let relative: PathBuf = std::iter::repeat_n("..", cwd.components().count())
        .collect::<PathBuf>()
        .join(parent.strip_prefix("/").unwrap())
        .join(".")
        .join(name);
    let run = load(&relative).unwrap();
    let dir = std::fs::canonicalize(&s.0).unwrap();
    let mut want = runc_want("runc");
    want.bundle = dir.clone();
    want.spec.rootfs = Rootfs::Path {
        path: dir.join("rootfs").to_str().unwrap().into(),
    };
    assert_eq!(run, want);
}

#[test]
fn load_errors() {
    // No directory.
    let s = Scratch::new("errors");
    let missing = s.0.join("nope");
    match load(&missing) {
        Err(BundleError::Read { path, source }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    // No config.json.
    let dir = std::fs::canonicalize(&s.0).unwrap();
    let config = dir.join("config.json");
    match load(&s.0) {
        Err(BundleError::Read { path, .. }) => assert_eq!(path, config),
        other => panic!("{other:?}"),
    }
    // Not JSON, not a spec, too large.
    let parse_errors: &[(Vec<u8>, &str)] = &[
        (
            b"{".to_vec(),
            "EOF while parsing an object at line 1 column 1",
        ),
        (
            br#"{"ociVersion": "1.0.2", "process": {"cwd": "/"}}"#.to_vec(),
            "missing field `user` at line 1 column 47",
        ),
        (
            [b" ".repeat(4 << 20), b"{}".to_vec()].concat(),
            "larger than 4 MiB",
        ),
    ];
    for (text, want) in parse_errors {
        std::fs::write(&config, text).unwrap();
        match load(&s.0) {
            Err(BundleError::Parse { path, message }) => {
                assert_eq!(path, config);
                assert_eq!(message, *want);
            }
            other => panic!("{other:?}"),
        }
    }
    // No rootfs, then a file there.
    std::fs::write(&config, RUNC).unwrap();
    let rootfs = dir.join("rootfs");
    match load(&s.0) {
        Err(BundleError::Read { path, source }) => {
            assert_eq!(path, rootfs);
            assert_eq!(source.kind(), io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(&rootfs, "").unwrap();
    let err = load(&s.0).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("reading {}: not a directory", rootfs.display())
    );
    // A refused spec.
    std::fs::remove_file(&rootfs).unwrap();
    std::fs::create_dir(&rootfs).unwrap();
    let mut v = json(RUNC);
    v["linux"]["resources"]["blockIO"] = json!({ "weight": 10 });
    std::fs::write(&config, v.to_string()).unwrap();
    match load(&s.0) {
        Err(BundleError::Refused(list)) => assert_eq!(
            list,
            [Refusal {
                field: "linux.resources.blockIO".into(),
                reason: "sandboxd sets no block I/O limits".into(),
            }]
        ),
        other => panic!("{other:?}"),
    }
}
