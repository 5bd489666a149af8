//! Every error a policy file can give, as the user sees it.

use crate::Policy;

/// (file text, the error's Display).
const TABLE: &[(&str, &str)] = &[
    // Syntax.
    ("memory = = 1", "p.toml:1:10: memory: extra `=`, expected nothing"),
    ("[limits]\nmemory = 1x", "p.toml:2:10: limits.memory: string values must be quoted, expected literal string"),
    ("[limits\n", "p.toml:1:8: limits: unclosed table, expected `]`"),
    ("= 1", "p.toml:1:1: (document): unquoted keys cannot be empty, expected letters, numbers, `-`, `_`"),
    ("[limits]\nmemory = 1\nmemory = 2", "p.toml:3:1: limits.memory: duplicate key"),
    ("[limits]\nmemory = 1\n[limits]\n", "p.toml:3:2: limits: duplicate key"),
    ("description = \"a\"\ndescription = \"b\"", "p.toml:2:1: description: duplicate key"),
    // Unknown keys.
    ("foo = 1", "p.toml:1:1: foo: unknown field `foo`, expected one of `description`, `devices`, `limits`, `max`, `filesystem`, `network`, `process`"),
    ("[limits]\ncpus = 2", "p.toml:2:1: limits.cpus: unknown field `cpus`, expected one of `memory`, `swap`, `cpu_percent`, `pids`, `workspace_size`, `tmp_size`, `shm_size`, `open_files`, `timeout`, `idle_timeout`, `ttl`"),
    ("[limits]\ncapabilities = []", "p.toml:2:1: limits.capabilities: unknown field `capabilities`, expected one of `memory`, `swap`, `cpu_percent`, `pids`, `workspace_size`, `tmp_size`, `shm_size`, `open_files`, `timeout`, `idle_timeout`, `ttl`"),
    ("[network]\nallow = []", "p.toml:2:1: network.allow: unknown field `allow`, expected one of `mode`, `allow_hosts`, `deny_hosts`"),
    ("[process]\ndevices = [\"/dev/fuse\"]", "p.toml:2:1: process.devices: unknown field `devices`, expected one of `capabilities`, `seccomp`, `no_new_privileges`, `env` (devices is a top-level key: write it before the first table)"),
    ("[process]\nenv = {}\nuser = 0", "p.toml:3:1: process.user: unknown field `user`, expected one of `capabilities`, `seccomp`, `no_new_privileges`, `env`"),
    ("filesystem = { mode = \"full\", extra = 1 }", "p.toml:1:31: filesystem.extra: unknown field `extra`, expected one of `mode`, `rootfs`, `custom_rootfs`, `host_mounts`"),
    ("[limit]\nmemory = 1", "p.toml:1:2: limit: unknown field `limit`, expected one of `description`, `devices`, `limits`, `max`, `filesystem`, `network`, `process`"),
    // Types.
    ("description = 3", "p.toml:1:15: description: invalid type: integer `3`, expected a string"),
    ("limits = 3", "p.toml:1:10: limits: invalid type: integer `3`, expected a table"),
    ("[limits]\nmemory = true", "p.toml:2:10: limits.memory: invalid type: boolean `true`, expected a size: an integer (bytes) or a string of digits and a unit, KiB, MiB, GiB or TiB (\"512MiB\")"),
    ("[limits]\nmemory = \"1GB\"", "p.toml:2:10: limits.memory: invalid value: string \"1GB\", expected a size: an integer (bytes) or a string of digits and a unit, KiB, MiB, GiB or TiB (\"512MiB\")"),
    ("[limits]\nmemory = 1.5", "p.toml:2:10: limits.memory: invalid type: floating point `1.5`, expected a size: an integer (bytes) or a string of digits and a unit, KiB, MiB, GiB or TiB (\"512MiB\")"),
    ("[limits]\nmemory = -1", "p.toml:2:10: limits.memory: -1 is negative, expected a size: an integer (bytes) or a string of digits and a unit, KiB, MiB, GiB or TiB (\"512MiB\")"),
    ("[limits]\ntimeout = \"1w\"", "p.toml:2:11: limits.timeout: invalid value: string \"1w\", expected a duration: an integer (milliseconds) or a string of digits and a unit, ms, s, m, h or d (\"30s\")"),
    ("[limits]\npids = \"many\"", "p.toml:2:8: limits.pids: invalid type: string \"many\", expected a non-negative integer"),
    ("[limits]\npids = -5", "p.toml:2:8: limits.pids: -5 is negative, expected a non-negative integer"),
    ("[filesystem]\ncustom_rootfs = \"yes\"", "p.toml:2:17: filesystem.custom_rootfs: invalid type: string \"yes\", expected a boolean"),
    ("devices = [\"/dev/fuse\", 3]", "p.toml:1:25: devices[1]: invalid type: integer `3`, expected a string"),
    ("devices = \"/dev/fuse\"", "p.toml:1:11: devices: invalid type: string \"/dev/fuse\", expected a sequence"),
    ("[process]\nenv = { A = 1 }", "p.toml:2:13: process.env.A: invalid type: integer `1`, expected a string"),
    ("[process]\nenv = []", "p.toml:2:7: process.env: invalid type: sequence, expected a map"),
    // Ranges.
    ("[limits]\nmemory = \"4MiB\"", "p.toml:2:10: limits.memory: 4MiB is below the minimum 8MiB"),
    ("[limits]\nmemory = \"2TiB\"", "p.toml:2:10: limits.memory: 2TiB is above the maximum 1TiB"),
    ("[limits]\nmemory = 1000", "p.toml:2:10: limits.memory: 1000 bytes is below the minimum 8MiB"),
    ("[limits]\nswap = \"1025GiB\"", "p.toml:2:8: limits.swap: 1025GiB is above the maximum 1TiB"),
    ("[limits]\ncpu_percent = 0", "p.toml:2:15: limits.cpu_percent: 0 is below the minimum 1"),
    ("[limits]\ncpu_percent = 102401", "p.toml:2:15: limits.cpu_percent: 102401 is above the maximum 102400"),
    ("[limits]\npids = 1", "p.toml:2:8: limits.pids: 1 is below the minimum 2"),
    ("[limits]\npids = 4194305", "p.toml:2:8: limits.pids: 4194305 is above the maximum 4194304"),
    ("[limits]\nworkspace_size = \"512KiB\"", "p.toml:2:18: limits.workspace_size: 512KiB is below the minimum 1MiB"),
    ("[limits]\ntmp_size = 0", "p.toml:2:12: limits.tmp_size: 0 bytes is below the minimum 1MiB"),
    ("[limits]\nshm_size = \"2TiB\"", "p.toml:2:12: limits.shm_size: 2TiB is above the maximum 1TiB"),
    ("[limits]\nopen_files = 15", "p.toml:2:14: limits.open_files: 15 is below the minimum 16"),
    ("[limits]\nopen_files = 1048577", "p.toml:2:14: limits.open_files: 1048577 is above the maximum 1048576"),
    ("[limits]\ntimeout = 0", "p.toml:2:11: limits.timeout: 0ms is below the minimum 1ms"),
    ("[limits]\nidle_timeout = \"31d\"", "p.toml:2:16: limits.idle_timeout: 31d is above the maximum 30d"),
    ("[limits]\nttl = \"721h\"", "p.toml:2:7: limits.ttl: 721h is above the maximum 30d"),
    ("[max]\npids = 1", "p.toml:2:8: max.pids: 1 is below the minimum 2"),
    ("[max]\nttl = \"0s\"", "p.toml:2:7: max.ttl: 0ms is below the minimum 1ms"),
    // [max] below [limits].
    ("[max]\nmemory = \"512MiB\"", "p.toml:2:10: max.memory: 512MiB is below limits.memory (1GiB)"),
    ("[limits]\nswap = \"1GiB\"\n[max]\nswap = 0", "p.toml:4:8: max.swap: 0 bytes is below limits.swap (1GiB)"),
    ("[limits]\ncpu_percent = 200\n[max]\ncpu_percent = 100", "p.toml:4:15: max.cpu_percent: 100 is below limits.cpu_percent (200)"),
    ("[max]\npids = 100", "p.toml:2:8: max.pids: 100 is below limits.pids (1024)"),
    ("[max]\nworkspace_size = \"1MiB\"", "p.toml:2:18: max.workspace_size: 1MiB is below limits.workspace_size (512MiB)"),
    ("[max]\ntmp_size = \"1MiB\"", "p.toml:2:12: max.tmp_size: 1MiB is below limits.tmp_size (256MiB)"),
    ("[max]\nshm_size = \"1MiB\"", "p.toml:2:12: max.shm_size: 1MiB is below limits.shm_size (64MiB)"),
    ("[max]\nopen_files = 1024", "p.toml:2:14: max.open_files: 1024 is below limits.open_files (8192)"),
    ("[limits]\ntimeout = \"1h\"\n[max]\ntimeout = \"30m\"", "p.toml:4:11: max.timeout: 30m is below limits.timeout (1h)"),
    ("[limits]\nidle_timeout = \"1h\"\n[max]\nidle_timeout = \"30m\"", "p.toml:4:16: max.idle_timeout: 30m is below limits.idle_timeout (1h)"),
    ("[limits]\nttl = \"1d\"\n[max]\nttl = \"23h\"", "p.toml:4:7: max.ttl: 23h is below limits.ttl (1d)"),
    // Capabilities.
    ("[process]\ncapabilities = [\"CAP_KILL\", \"cap_chown\"]", "p.toml:2:29: process.capabilities[1]: \"cap_chown\" is not a capability name; write \"CAP_CHOWN\""),
    ("[process]\ncapabilities = [\"CHOWN\"]", "p.toml:2:17: process.capabilities[0]: \"CHOWN\" is not a capability name; write \"CAP_CHOWN\""),
    ("[process]\ncapabilities = [\"CAP_FLY\"]", "p.toml:2:17: process.capabilities[0]: \"CAP_FLY\" is not a capability name"),
    ("[process]\ncapabilities = [\"CAP_KILL\", \"CAP_KILL\"]", "p.toml:2:29: process.capabilities[1]: \"CAP_KILL\" is listed twice"),
    ("[max]\ncapabilities = [\"CAP_FLY\"]", "p.toml:2:17: max.capabilities[0]: \"CAP_FLY\" is not a capability name"),
    ("[max]\ncapabilities = [\"CAP_KILL\"]\n[process]\ncapabilities = [\"CAP_CHOWN\"]", "p.toml:2:16: max.capabilities: lacks CAP_CHOWN, which process.capabilities keeps"),
    // Filesystem.
    ("[filesystem]\nmode = \"rw\"", "p.toml:2:8: filesystem.mode: \"rw\" is not a filesystem mode: read-only, workspace-only or full"),
    ("[filesystem]\nmode = \"full\"", "p.toml:2:8: filesystem.mode: full needs a root filesystem directory: the host's directories cannot be overlaid"),
    ("[filesystem]\nmode = \"full\"\nrootfs = \"host\"", "p.toml:2:8: filesystem.mode: full needs a root filesystem directory: the host's directories cannot be overlaid"),
    ("[filesystem]\nrootfs = \"images/alpine\"", "p.toml:2:10: filesystem.rootfs: \"images/alpine\": not an absolute path (expected \"host\" or an absolute path)"),
    ("[filesystem]\nrootfs = \"/srv/../etc\"", "p.toml:2:10: filesystem.rootfs: \"/srv/../etc\": not a clean path (no \".\", \"..\", \"//\" or trailing \"/\") (expected \"host\" or an absolute path)"),
    ("[filesystem]\nrootfs = \"/srv/rootfs/\"", "p.toml:2:10: filesystem.rootfs: \"/srv/rootfs/\": not a clean path (no \".\", \"..\", \"//\" or trailing \"/\") (expected \"host\" or an absolute path)"),
    ("[filesystem]\nrootfs = \"/\"", "p.toml:2:10: filesystem.rootfs: \"/\" is the host's root: write \"host\""),
    ("[filesystem]\nhost_mounts = [\"/home\", \"/\"]", "p.toml:2:25: filesystem.host_mounts[1]: \"/\": \"/\" would allow every host directory"),
    ("[filesystem]\nhost_mounts = [\"home\"]", "p.toml:2:16: filesystem.host_mounts[0]: \"home\": not an absolute path"),
    ("[filesystem]\nhost_mounts = [\"/home/./x\"]", "p.toml:2:16: filesystem.host_mounts[0]: \"/home/./x\": not a clean path (no \".\", \"..\", \"//\" or trailing \"/\")"),
    ("[filesystem]\nhost_mounts = [\"/home\", \"/home\"]", "p.toml:2:25: filesystem.host_mounts[1]: \"/home\" is listed twice"),
    // Network.
    ("[network]\nmode = \"open\"", "p.toml:2:8: network.mode: \"open\" is not a network mode: none, allowlist or full"),
    ("[network]\nallow_hosts = [\"example.com\"]", "p.toml:2:15: network.allow_hosts: allow_hosts needs network mode allowlist (or full); the mode is none"),
    ("[network]\nmode = \"allowlist\"\nallow_hosts = [\n  \"a.com\",\n  \"b.com\",\n  \"bad_host.com:443\",\n]", "p.toml:6:3: network.allow_hosts[2]: \"bad_host.com:443\": label \"bad_host\" has '_': host names hold only a-z, 0-9, - and ."),
    ("[network]\ndeny_hosts = [\"*\"]", "p.toml:2:15: network.deny_hosts[0]: \"*\": \"*\" may only be the whole first label (\"*.example.com\"), expected \"host\" or \"*.host\", either with an optional \":port\""),
    ("[network]\ndeny_hosts = [\"a.com:99999\"]", "p.toml:2:15: network.deny_hosts[0]: \"a.com:99999\": port \"99999\" is not a number in 1..=65535"),
    // Process.
    ("[process]\nseccomp = \"strict\"", "p.toml:2:11: process.seccomp: \"strict\" is neither a shipped profile (default, browser) nor an absolute path"),
    ("[process]\nseccomp = \"/etc/seccomp.yaml\"", "p.toml:2:11: process.seccomp: \"/etc/seccomp.yaml\": a profile file's name ends in .json"),
    ("[process]\nseccomp = \"/etc/../x.json\"", "p.toml:2:11: process.seccomp: \"/etc/../x.json\": not a clean path (no \".\", \"..\", \"//\" or trailing \"/\")"),
    ("[process]\nenv = { \"\" = \"x\" }", "p.toml:2:9: process.env.\"\": an empty variable name"),
    ("[process]\nenv = { \"A=B\" = \"x\" }", "p.toml:2:9: process.env.\"A=B\": a variable name cannot contain \"=\""),
    ("[process.env]\nOK = \"1\"\n\"A\\u0000\" = \"x\"", "p.toml:3:1: process.env.\"A\\u0000\": a variable name cannot contain a NUL byte"),
    ("[process.env]\nA = \"x\\u0000y\"", "p.toml:2:5: process.env.A: a value cannot contain a NUL byte"),
    // Devices and description.
    ("devices = [\"fuse\"]", "p.toml:1:12: devices[0]: \"fuse\": not an absolute path"),
    ("devices = [\"/dev\"]", "p.toml:1:12: devices[0]: \"/dev\": not a device under /dev/"),
    ("devices = [\"/sys/fuse\"]", "p.toml:1:12: devices[0]: \"/sys/fuse\": not a device under /dev/"),
    ("devices = [\"/devices\"]", "p.toml:1:12: devices[0]: \"/devices\": not a device under /dev/"),
    ("devices = [\"/dev/../etc/shadow\"]", "p.toml:1:12: devices[0]: \"/dev/../etc/shadow\": not a clean path (no \".\", \"..\", \"//\" or trailing \"/\")"),
    ("devices = [\"/dev/fuse\", \"/dev/null\"]", "p.toml:1:25: devices[1]: \"/dev/null\": every sandbox has /dev/null already"),
    ("devices = [\"/dev/pts/0\"]", "p.toml:1:12: devices[0]: \"/dev/pts/0\": every sandbox has /dev/pts already"),
    ("devices = [\"/dev/fuse\", \"/dev/fuse\"]", "p.toml:1:25: devices[1]: \"/dev/fuse\" is listed twice"),
    ("description = \"two\\nlines\"", "p.toml:1:15: description: must be one line of text, without control characters"),
];

#[test]
fn every_error() {
    let mut failures = Vec::new();
    for (text, want) in TABLE {
        match Policy::parse("p", "p.toml", text) {
            Ok(_) => failures.push(format!("{text:?}: parsed, want {want}")),
            Err(e) if e.to_string() != *want => {
                failures.push(format!("{text:?}:\n   got {e}\n  want {want}"));
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn error_fields() {
    let e = Policy::parse("p", "dir/p.toml", "[limits]\n\n  pids = 1").unwrap_err();
    assert_eq!(
        (e.source.as_str(), e.line, e.column, e.field.as_str()),
        ("dir/p.toml", 3, 10, "limits.pids")
    );
    assert_eq!(e.message, "1 is below the minimum 2");
}

#[test]
fn columns_count_characters() {
    let e = Policy::parse(
        "p",
        "p.toml",
        "description = \"é\"\n[limits]\nmemory = 1 # é\n",
    )
    .unwrap_err();
    assert_eq!((e.line, e.column), (3, 10));
    let e = Policy::parse("p", "p.toml", "env = \"é\"; x").unwrap_err();
    assert_eq!(e.line, 1);
}

#[test]
fn too_many_entries() {
    let hosts: Vec<String> = (0..257).map(|i| format!("\"h{i}.com\"")).collect();
    let text = format!(
        "[network]\nmode = \"allowlist\"\nallow_hosts = [{}]",
        hosts.join(", ")
    );
    assert_eq!(
        Policy::parse("p", "p.toml", &text).unwrap_err().to_string(),
        "p.toml:3:15: network.allow_hosts: 257 entries, at most 256"
    );
    let text = format!("[network]\ndeny_hosts = [{}]", hosts.join(", "));
    assert_eq!(
        Policy::parse("p", "p.toml", &text).unwrap_err().to_string(),
        "p.toml:2:14: network.deny_hosts: 257 entries, at most 256"
    );
    let env: Vec<String> = (0..257).map(|i| format!("V{i} = \"\"")).collect();
    let text = format!("[process.env]\n{}", env.join("\n"));
    assert_eq!(
        Policy::parse("p", "p.toml", &text).unwrap_err().to_string(),
        "p.toml:1:1: process.env: 257 entries, at most 256"
    );
    let devices: Vec<String> = (0..17).map(|i| format!("\"/dev/d{i}\"")).collect();
    let text = format!("devices = [{}]", devices.join(", "));
    assert_eq!(
        Policy::parse("p", "p.toml", &text).unwrap_err().to_string(),
        "p.toml:1:11: devices: 17 entries, at most 16"
    );
}
