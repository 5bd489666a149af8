//! Writing a policy back as TOML.

use std::fmt::Write;

use crate::file::{toml_key, toml_string};
use crate::units::{duration_toml, size_toml};
use crate::{HostPattern, Policy, RootfsSetting};

/// The `[limits]`/`[max]` keys in file order, with how each is written.
enum Value {
    Size(u64),
    Count(u64),
    Duration(Option<u64>),
    Percent(Option<u32>),
}

fn write_value(out: &mut String, key: &str, value: Value, absent: &str) {
    let text = match value {
        Value::Size(n) => size_toml(n),
        Value::Count(n) => n.to_string(),
        Value::Duration(Some(ms)) => duration_toml(ms),
        Value::Percent(Some(p)) => p.to_string(),
        Value::Duration(None) | Value::Percent(None) => {
            let _ = writeln!(out, "# {key}: {absent}");
            return;
        }
    };
    let _ = writeln!(out, "{key} = {text}");
}

/// A TOML array of strings: on one line when it is short, else one item a line.
fn string_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(toml_string).collect();
    let line = items.join(", ");
    if line.len() <= 72 {
        return format!("[{line}]");
    }
    let mut out = String::from("[\n");
    for item in items {
        let _ = writeln!(out, "    {item},");
    }
    out.push(']');
    out
}

fn host_list(hosts: &[HostPattern]) -> String {
    let texts: Vec<String> = hosts.iter().map(HostPattern::to_string).collect();
    string_list(texts.iter().map(String::as_str))
}

pub(crate) fn to_toml(policy: &Policy) -> String {
    let mut out = String::new();
    let p = policy;
    let _ = writeln!(
        out,
        "# Policy {:?}: the effective policy, every default filled in.\n\
         # An absent optional key is written as a comment.",
        p.name
    );
    let _ = writeln!(out, "description = {}", toml_string(&p.description));
    let _ = writeln!(
        out,
        "devices = {}",
        string_list(p.devices.iter().map(String::as_str))
    );

    let l = &p.limits;
    out.push_str("\n[limits]\n");
    write_value(&mut out, "memory", Value::Size(l.memory), "");
    write_value(&mut out, "swap", Value::Size(l.swap), "");
    write_value(
        &mut out,
        "cpu_percent",
        Value::Percent(l.cpu_percent),
        "none (no CPU limit)",
    );
    write_value(&mut out, "pids", Value::Count(l.pids), "");
    write_value(
        &mut out,
        "workspace_size",
        Value::Size(l.workspace_size),
        "",
    );
    write_value(&mut out, "tmp_size", Value::Size(l.tmp_size), "");
    write_value(&mut out, "shm_size", Value::Size(l.shm_size), "");
    write_value(&mut out, "open_files", Value::Count(l.open_files), "");
    write_value(&mut out, "timeout", Value::Duration(l.timeout_ms), "none");
    write_value(
        &mut out,
        "idle_timeout",
        Value::Duration(l.idle_timeout_ms),
        "none",
    );
    write_value(&mut out, "ttl", Value::Duration(l.ttl_ms), "none");

    let m = &p.max;
    out.push_str("\n[max]\n");
    write_value(&mut out, "memory", Value::Size(m.memory), "");
    write_value(&mut out, "swap", Value::Size(m.swap), "");
    write_value(
        &mut out,
        "cpu_percent",
        Value::Percent(m.cpu_percent),
        "no bound",
    );
    write_value(&mut out, "pids", Value::Count(m.pids), "");
    write_value(
        &mut out,
        "workspace_size",
        Value::Size(m.workspace_size),
        "",
    );
    write_value(&mut out, "tmp_size", Value::Size(m.tmp_size), "");
    write_value(&mut out, "shm_size", Value::Size(m.shm_size), "");
    write_value(&mut out, "open_files", Value::Count(m.open_files), "");
    write_value(
        &mut out,
        "timeout",
        Value::Duration(m.timeout_ms),
        "no bound",
    );
    write_value(
        &mut out,
        "idle_timeout",
        Value::Duration(m.idle_timeout_ms),
        "no bound",
    );
    write_value(&mut out, "ttl", Value::Duration(m.ttl_ms), "no bound");
    let _ = writeln!(
        out,
        "capabilities = {}",
        string_list(m.capabilities.iter().map(String::as_str))
    );

    let f = &p.filesystem;
    out.push_str("\n[filesystem]\n");
    let _ = writeln!(out, "mode = {}", toml_string(f.mode.as_str()));
    let rootfs = match &f.rootfs {
        RootfsSetting::Host => "host",
        RootfsSetting::Path(path) => path,
    };
    let _ = writeln!(out, "rootfs = {}", toml_string(rootfs));
    let _ = writeln!(out, "custom_rootfs = {}", f.custom_rootfs);
    let _ = writeln!(
        out,
        "host_mounts = {}",
        string_list(f.host_mounts.iter().map(String::as_str))
    );

    let n = &p.network;
    out.push_str("\n[network]\n");
    let _ = writeln!(out, "mode = {}", toml_string(n.mode.as_str()));
    let _ = writeln!(out, "allow_hosts = {}", host_list(&n.allow_hosts));
    let _ = writeln!(out, "deny_hosts = {}", host_list(&n.deny_hosts));

    let pr = &p.process;
    out.push_str("\n[process]\n");
    let _ = writeln!(
        out,
        "capabilities = {}",
        string_list(pr.capabilities.iter().map(String::as_str))
    );
    let _ = writeln!(out, "seccomp = {}", toml_string(&pr.seccomp));
    let _ = writeln!(out, "no_new_privileges = {}", pr.no_new_privileges);
    out.push_str("\n[process.env]\n");
    for (key, value) in &pr.env {
        let _ = writeln!(out, "{} = {}", toml_key(key), toml_string(value));
    }
    out
}

impl Policy {
    /// The effective policy as a policy file: every key written (sizes as `"512MiB"` when a
    /// unit fits exactly, durations as `"10m"`; an absent optional value as a comment), after
    /// a header comment. [`Policy::parse`] of the text gives this policy back.
    pub fn to_toml(&self) -> String {
        to_toml(self)
    }

    /// Parses and validates a policy file. `name` becomes the policy's name; `source` names
    /// the file in errors.
    pub fn parse(name: &str, source: &str, text: &str) -> Result<Policy, crate::PolicyFileError> {
        crate::file::parse(name, source, text)
    }
}
