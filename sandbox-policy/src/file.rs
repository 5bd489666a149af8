//! Parsing and validating a policy file.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use crate::host::HostPattern;
use crate::units::{duration_text, size_text, Count, Duration, Size, GIB, MIB, TIB};
use crate::{Bounds, Filesystem, FsMode, Limits, NetMode, Network, Policy, Process, RootfsSetting};

/// A policy file that cannot be used: a TOML syntax error, an unknown key, a value of the
/// wrong type, or a value out of bounds. Displays as `{source}:{line}:{column}: {field}:
/// {message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFileError {
    /// The file, as the caller named it.
    pub source: String,
    /// 1-based line of the offending key or value (of the enclosing table when the field is
    /// absent from the file, 1 when there is none).
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The field's path: `limits.memory`, `network.allow_hosts[2]`, `process.env.FOO`
    /// (`(document)` for a syntax error outside every key).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.source, self.line, self.column, self.field, self.message
        )
    }
}

impl std::error::Error for PolicyFileError {}

/// The field name used when an error lies outside every key.
const DOCUMENT: &str = "(document)";

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A field path, `network.allow_hosts[2]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct FieldPath(Vec<Seg>);

impl FieldPath {
    fn new(keys: &[&str]) -> FieldPath {
        FieldPath(keys.iter().map(|k| Seg::Key((*k).to_owned())).collect())
    }

    fn key(&self, key: &str) -> FieldPath {
        let mut path = self.clone();
        path.0.push(Seg::Key(key.to_owned()));
        path
    }

    fn index(&self, i: usize) -> FieldPath {
        let mut path = self.clone();
        path.0.push(Seg::Index(i));
        path
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(DOCUMENT);
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(&toml_key(key))?;
                }
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A key as TOML writes it: bare when it can be, else a quoted string.
pub(crate) fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_owned()
    } else {
        toml_string(key)
    }
}

/// A TOML basic string (one line, escapes for `"`, `\` and control characters).
pub(crate) fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A semantic error before it is located in the text.
#[derive(Debug)]
struct Bad {
    path: FieldPath,
    /// Point at the key rather than the value (an env key's error).
    at_key: bool,
    message: String,
}

fn bad(path: FieldPath, message: impl Into<String>) -> Bad {
    Bad {
        path,
        at_key: false,
        message: message.into(),
    }
}

/// Every key and array element of the document with its path and spans.
struct SpanIndex {
    nodes: Vec<Node>,
}

struct Node {
    path: FieldPath,
    key: Range<usize>,
    value: Range<usize>,
    is_table: bool,
}

impl SpanIndex {
    fn new(doc: &DeTable<'_>) -> SpanIndex {
        let mut nodes = Vec::new();
        Self::walk_table(doc, &FieldPath::default(), &mut nodes);
        SpanIndex { nodes }
    }

    fn walk_table(table: &DeTable<'_>, path: &FieldPath, nodes: &mut Vec<Node>) {
        for (key, value) in table.iter() {
            let path = path.key(key.get_ref());
            Self::walk_value(value.get_ref(), &path, key.span(), value.span(), nodes);
        }
    }

    fn walk_value(
        value: &DeValue<'_>,
        path: &FieldPath,
        key: Range<usize>,
        span: Range<usize>,
        nodes: &mut Vec<Node>,
    ) {
        nodes.push(Node {
            path: path.clone(),
            key,
            value: span,
            is_table: matches!(value, DeValue::Table(_)),
        });
        match value {
            DeValue::Table(table) => Self::walk_table(table, path, nodes),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    Self::walk_value(
                        item.get_ref(),
                        &path.index(i),
                        item.span(),
                        item.span(),
                        nodes,
                    );
                }
            }
            _ => {}
        }
    }

    /// The offset of `path`'s key or value, or of its nearest enclosing entry in the file.
    fn offset_of(&self, path: &FieldPath, at_key: bool) -> Option<usize> {
        let mut path = path.clone();
        loop {
            if let Some(node) = self.nodes.iter().find(|n| n.path == path) {
                return Some(if at_key {
                    node.key.start
                } else {
                    node.value.start
                });
            }
            path.0.pop()?;
        }
    }

    /// The field an error at `offset` (from the TOML parser or serde) is about.
    fn field_at(&self, text: &str, offset: usize) -> String {
        if let Some(node) = self.holder(offset) {
            return node.path.to_string();
        }
        // Else the last key before it on its line, else the table it is in.
        let line_start = text
            .get(..offset)
            .and_then(|before| before.rfind('\n'))
            .map_or(0, |i| i + 1);
        let on_line = self
            .nodes
            .iter()
            .filter(|n| n.key.start >= line_start && n.key.start <= offset && !n.key.is_empty())
            .max_by_key(|n| (n.key.start, n.path.0.len()));
        if let Some(node) = on_line {
            return node.path.to_string();
        }
        self.table_before(offset).to_string()
    }

    /// The most specific key or value holding `offset`.
    fn holder(&self, offset: usize) -> Option<&Node> {
        let within = |r: &Range<usize>| r.start <= offset && offset < r.end;
        self.nodes
            .iter()
            .filter_map(|n| {
                [&n.key, &n.value]
                    .into_iter()
                    .filter(|r| within(r))
                    .map(|r| r.len())
                    .min()
                    .map(|len| (len, n))
            })
            .min_by_key(|(len, n)| (*len, usize::MAX - n.path.0.len()))
            .map(|(_, n)| n)
    }

    /// The path of the last table opened before `offset` (the document's: empty).
    fn table_before(&self, offset: usize) -> FieldPath {
        self.nodes
            .iter()
            .filter(|n| n.is_table && n.value.start <= offset && !n.value.is_empty())
            .max_by_key(|n| (n.value.start, n.path.0.len()))
            .map_or_else(FieldPath::default, |n| n.path.clone())
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// serde's wording, made to speak of TOML rather than Rust types.
fn tidy_message(message: &str) -> String {
    let mut out = message.to_owned();
    for prefix in ["expected struct ", "expected enum "] {
        if let Some(i) = out.find(prefix) {
            let rest = &out[i + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out = format!("{}expected a table{}", &out[..i], &rest[end..]);
        }
    }
    out
}

/// Parses and validates a policy file.
pub(crate) fn parse(name: &str, source: &str, text: &str) -> Result<Policy, PolicyFileError> {
    let error_at = |offset: Option<usize>, field: String, message: String| {
        let (line, column) = offset.map_or((1, 1), |o| line_column(text, o));
        PolicyFileError {
            source: source.to_owned(),
            line,
            column,
            field,
            message,
        }
    };
    let (doc, errors) = DeTable::parse_recoverable(text);
    let index = SpanIndex::new(doc.get_ref());
    if let Some(error) = errors.first() {
        let span = error.span();
        let offset = span.as_ref().map(|s| s.start);
        let field = match span {
            // The repeated key is not in the recovered document: name it from the text.
            Some(span)
                if error.message() == "duplicate key" && index.holder(span.start).is_none() =>
            {
                let key = text
                    .get(span.clone())
                    .unwrap_or_default()
                    .trim_matches(['"', '\'']);
                index.table_before(span.start).key(key).to_string()
            }
            Some(span) => index.field_at(text, span.start),
            None => DOCUMENT.to_owned(),
        };
        return Err(error_at(offset, field, error.message().to_owned()));
    }
    let raw: RawPolicy = toml::from_str(text).map_err(|error| {
        let offset = error.span().map(|s| s.start);
        let field = offset.map_or_else(|| DOCUMENT.to_owned(), |o| index.field_at(text, o));
        let mut message = tidy_message(error.message());
        let top_level = ["description", "devices"]
            .into_iter()
            .find(|key| field.contains('.') && field.ends_with(&format!(".{key}")));
        if let Some(key) = top_level {
            message.push_str(&format!(
                " ({key} is a top-level key: write it before the first table)"
            ));
        }
        error_at(offset, field, message)
    })?;
    build(name, raw).map_err(|bad| {
        let offset = index.offset_of(&bad.path, bad.at_key);
        error_at(offset, bad.path.to_string(), bad.message)
    })
}

// ---- The file as serde reads it ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPolicy {
    description: Option<String>,
    devices: Option<Vec<String>>,
    limits: RawLimits,
    max: RawMax,
    filesystem: RawFilesystem,
    network: RawNetwork,
    process: RawProcess,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLimits {
    memory: Option<Size>,
    swap: Option<Size>,
    cpu_percent: Option<Count>,
    pids: Option<Count>,
    workspace_size: Option<Size>,
    tmp_size: Option<Size>,
    shm_size: Option<Size>,
    open_files: Option<Count>,
    timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    ttl: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMax {
    memory: Option<Size>,
    swap: Option<Size>,
    cpu_percent: Option<Count>,
    pids: Option<Count>,
    workspace_size: Option<Size>,
    tmp_size: Option<Size>,
    shm_size: Option<Size>,
    open_files: Option<Count>,
    timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    ttl: Option<Duration>,
    capabilities: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawFilesystem {
    mode: Option<String>,
    rootfs: Option<String>,
    custom_rootfs: Option<bool>,
    host_mounts: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawNetwork {
    mode: Option<String>,
    allow_hosts: Option<Vec<String>>,
    deny_hosts: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawProcess {
    capabilities: Option<Vec<String>>,
    seccomp: Option<String>,
    no_new_privileges: Option<bool>,
    env: Option<BTreeMap<String, String>>,
}

// ---- Defaults and sanity ranges ----

/// The policy an empty file gives.
pub(crate) fn defaults(name: &str) -> Policy {
    let limits = Limits {
        memory: GIB,
        swap: 0,
        cpu_percent: None,
        pids: 1024,
        workspace_size: 512 * MIB,
        tmp_size: 256 * MIB,
        shm_size: 64 * MIB,
        open_files: 8192,
        timeout_ms: None,
        idle_timeout_ms: None,
        ttl_ms: None,
    };
    Policy {
        name: name.to_owned(),
        description: String::new(),
        max: bounds_of(&limits, Vec::new()),
        limits,
        filesystem: Filesystem {
            mode: FsMode::WorkspaceOnly,
            rootfs: RootfsSetting::Host,
            custom_rootfs: true,
            host_mounts: Vec::new(),
        },
        network: Network {
            mode: NetMode::None,
            allow_hosts: Vec::new(),
            deny_hosts: Vec::new(),
        },
        process: Process {
            capabilities: Vec::new(),
            seccomp: "default".to_owned(),
            no_new_privileges: true,
            env: BTreeMap::new(),
        },
        devices: Vec::new(),
    }
}

/// Bounds equal to `limits` (a `[max]` that names nothing).
fn bounds_of(limits: &Limits, capabilities: Vec<String>) -> Bounds {
    Bounds {
        memory: limits.memory,
        swap: limits.swap,
        cpu_percent: limits.cpu_percent,
        pids: limits.pids,
        workspace_size: limits.workspace_size,
        tmp_size: limits.tmp_size,
        shm_size: limits.shm_size,
        open_files: limits.open_files,
        timeout_ms: limits.timeout_ms,
        idle_timeout_ms: limits.idle_timeout_ms,
        ttl_ms: limits.ttl_ms,
        capabilities,
    }
}

/// What a value is, for its sanity range and its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Size,
    Duration,
    Count,
}

impl Kind {
    pub(crate) fn text(self, n: u64) -> String {
        match self {
            Kind::Size => size_text(n),
            Kind::Duration => duration_text(n),
            Kind::Count => n.to_string(),
        }
    }
}

/// The sanity range of every limit, by its policy-file key.
pub(crate) fn range(key: &str) -> (Kind, u64, u64) {
    match key {
        "memory" => (Kind::Size, 8 * MIB, TIB),
        "swap" => (Kind::Size, 0, TIB),
        "cpu_percent" => (Kind::Count, 1, 102_400),
        "pids" => (Kind::Count, 2, 4_194_304),
        "workspace_size" | "tmp_size" | "shm_size" => (Kind::Size, MIB, TIB),
        "open_files" => (Kind::Count, 16, 1_048_576),
        "timeout" | "idle_timeout" | "ttl" => (Kind::Duration, 1, 30 * 24 * 3_600_000),
        other => unreachable!("no range for {other}"),
    }
}

/// Checks `n` against the sanity range of `key`; the message if it is out of it.
pub(crate) fn out_of_range(key: &str, n: u64) -> Option<String> {
    let (kind, min, max) = range(key);
    if n < min {
        Some(format!(
            "{} is below the minimum {}",
            kind.text(n),
            kind.text(min)
        ))
    } else if n > max {
        Some(format!(
            "{} is above the maximum {}",
            kind.text(n),
            kind.text(max)
        ))
    } else {
        None
    }
}

/// The most entries of `network.allow_hosts`, `network.deny_hosts` and `process.env`.
const MAX_LIST: usize = 256;
/// The most entries of `devices`.
const MAX_DEVICES: usize = 16;
/// What every sandbox's `/dev` has already: naming them (or anything under them) in `devices`
/// is an error.
const ALWAYS_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
];
/// The seccomp profiles the daemon ships.
pub(crate) const SHIPPED_SECCOMP: &[&str] = &["default", "browser"];

// ---- Validation ----

/// Why `path` is not an absolute, clean path (`None`: it is). `/` itself passes.
pub(crate) fn unclean(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("not an absolute path");
    }
    if path.contains('\0') {
        return Some("contains a NUL byte");
    }
    if path == "/" {
        return None;
    }
    if path[1..]
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Some("not a clean path (no \".\", \"..\", \"//\" or trailing \"/\")");
    }
    None
}

/// Whether `path` is `dir` or under it, by whole components (both absolute and clean).
pub(crate) fn is_under(path: &str, dir: &str) -> bool {
    dir == "/"
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Checks a capability name; the message if it is not one.
pub(crate) fn check_capability(name: &str) -> Result<(), String> {
    if caps::Capability::from_str(name).is_ok() {
        return Ok(());
    }
    let upper = name.to_ascii_uppercase();
    let upper = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if caps::Capability::from_str(&upper).is_ok() {
        Err(format!(
            "{name:?} is not a capability name; write {upper:?}"
        ))
    } else {
        Err(format!("{name:?} is not a capability name"))
    }
}

/// An error at the second occurrence of a repeated entry of `list`.
fn check_unique(path: &FieldPath, list: &[String]) -> Result<(), Bad> {
    let mut seen = BTreeSet::new();
    for (i, item) in list.iter().enumerate() {
        if !seen.insert(item.as_str()) {
            return Err(bad(path.index(i), format!("{item:?} is listed twice")));
        }
    }
    Ok(())
}

fn check_capabilities(path: &FieldPath, list: &[String]) -> Result<(), Bad> {
    for (i, name) in list.iter().enumerate() {
        check_capability(name).map_err(|m| bad(path.index(i), m))?;
    }
    check_unique(path, list)
}

fn check_len(path: &FieldPath, len: usize, max: usize) -> Result<(), Bad> {
    if len > max {
        return Err(bad(path.clone(), format!("{len} entries, at most {max}")));
    }
    Ok(())
}

/// One limit: its value or the default, checked against its sanity range.
fn limit(key: &str, value: Option<u64>, default: u64) -> Result<u64, Bad> {
    let n = value.unwrap_or(default);
    match out_of_range(key, n) {
        Some(message) => Err(bad(FieldPath::new(&["limits", key]), message)),
        None => Ok(n),
    }
}

/// One optional limit, checked.
fn limit_opt(key: &str, value: Option<u64>) -> Result<Option<u64>, Bad> {
    value.map(|n| limit(key, Some(n), 0)).transpose()
}

/// One bound: the `[max]` value or the limit, checked against the sanity range and the
/// limit.
fn bound(key: &str, value: Option<u64>, limit: u64) -> Result<u64, Bad> {
    bound_opt(key, value, Some(limit)).map(|b| b.unwrap_or(limit))
}

/// One optional bound: `[max]`'s value, else the limit (`None` for both: no bound).
fn bound_opt(key: &str, value: Option<u64>, limit: Option<u64>) -> Result<Option<u64>, Bad> {
    let Some(n) = value else {
        return Ok(limit);
    };
    let path = FieldPath::new(&["max", key]);
    if let Some(message) = out_of_range(key, n) {
        return Err(bad(path, message));
    }
    if let Some(limit) = limit.filter(|l| n < *l) {
        let kind = range(key).0;
        return Err(bad(
            path,
            format!(
                "{} is below limits.{key} ({})",
                kind.text(n),
                kind.text(limit)
            ),
        ));
    }
    Ok(Some(n))
}

fn percent(n: Option<u64>) -> Option<u32> {
    n.map(|n| u32::try_from(n).expect("checked against its range"))
}

fn build(name: &str, raw: RawPolicy) -> Result<Policy, Bad> {
    let defaults = defaults(name);
    let description = raw.description.unwrap_or_default();
    if description.chars().any(char::is_control) {
        return Err(bad(
            FieldPath::new(&["description"]),
            "must be one line of text, without control characters",
        ));
    }
    let devices = raw.devices.unwrap_or_default();
    check_devices(&devices)?;

    let l = raw.limits;
    let d = &defaults.limits;
    let limits = Limits {
        memory: limit("memory", l.memory.map(|s| s.0), d.memory)?,
        swap: limit("swap", l.swap.map(|s| s.0), d.swap)?,
        cpu_percent: percent(limit_opt("cpu_percent", l.cpu_percent.map(|c| c.0))?),
        pids: limit("pids", l.pids.map(|c| c.0), d.pids)?,
        workspace_size: limit(
            "workspace_size",
            l.workspace_size.map(|s| s.0),
            d.workspace_size,
        )?,
        tmp_size: limit("tmp_size", l.tmp_size.map(|s| s.0), d.tmp_size)?,
        shm_size: limit("shm_size", l.shm_size.map(|s| s.0), d.shm_size)?,
        open_files: limit("open_files", l.open_files.map(|c| c.0), d.open_files)?,
        timeout_ms: limit_opt("timeout", l.timeout.map(|t| t.0))?,
        idle_timeout_ms: limit_opt("idle_timeout", l.idle_timeout.map(|t| t.0))?,
        ttl_ms: limit_opt("ttl", l.ttl.map(|t| t.0))?,
    };

    let p = raw.process;
    let capabilities = p.capabilities.unwrap_or_default();
    check_capabilities(&FieldPath::new(&["process", "capabilities"]), &capabilities)?;

    let m = raw.max;
    let max_caps_path = FieldPath::new(&["max", "capabilities"]);
    let max_capabilities = match m.capabilities {
        Some(list) => {
            check_capabilities(&max_caps_path, &list)?;
            if let Some(missing) = capabilities.iter().find(|c| !list.contains(c)) {
                return Err(bad(
                    max_caps_path,
                    format!("lacks {missing}, which process.capabilities keeps"),
                ));
            }
            list
        }
        None => capabilities.clone(),
    };
    let max = Bounds {
        memory: bound("memory", m.memory.map(|s| s.0), limits.memory)?,
        swap: bound("swap", m.swap.map(|s| s.0), limits.swap)?,
        cpu_percent: percent(bound_opt(
            "cpu_percent",
            m.cpu_percent.map(|c| c.0),
            limits.cpu_percent.map(u64::from),
        )?),
        pids: bound("pids", m.pids.map(|c| c.0), limits.pids)?,
        workspace_size: bound(
            "workspace_size",
            m.workspace_size.map(|s| s.0),
            limits.workspace_size,
        )?,
        tmp_size: bound("tmp_size", m.tmp_size.map(|s| s.0), limits.tmp_size)?,
        shm_size: bound("shm_size", m.shm_size.map(|s| s.0), limits.shm_size)?,
        open_files: bound("open_files", m.open_files.map(|c| c.0), limits.open_files)?,
        timeout_ms: bound_opt("timeout", m.timeout.map(|t| t.0), limits.timeout_ms)?,
        idle_timeout_ms: bound_opt(
            "idle_timeout",
            m.idle_timeout.map(|t| t.0),
            limits.idle_timeout_ms,
        )?,
        ttl_ms: bound_opt("ttl", m.ttl.map(|t| t.0), limits.ttl_ms)?,
        capabilities: max_capabilities,
    };

    let filesystem = build_filesystem(raw.filesystem, &defaults.filesystem)?;
    let network = build_network(raw.network)?;

    let seccomp = p.seccomp.unwrap_or(defaults.process.seccomp);
    check_seccomp(&seccomp)?;
    let env = p.env.unwrap_or_default();
    check_env(&env)?;

    Ok(Policy {
        name: name.to_owned(),
        description,
        limits,
        max,
        filesystem,
        network,
        process: Process {
            capabilities,
            seccomp,
            no_new_privileges: p
                .no_new_privileges
                .unwrap_or(defaults.process.no_new_privileges),
            env,
        },
        devices,
    })
}

fn check_devices(devices: &[String]) -> Result<(), Bad> {
    let path = FieldPath::new(&["devices"]);
    check_len(&path, devices.len(), MAX_DEVICES)?;
    for (i, device) in devices.iter().enumerate() {
        let message = if let Some(why) = unclean(device) {
            why.to_owned()
        } else if !is_under(device, "/dev") || device == "/dev" {
            "not a device under /dev/".to_owned()
        } else if let Some(have) = ALWAYS_DEVICES.iter().find(|a| is_under(device, a)) {
            format!("every sandbox has {have} already")
        } else {
            continue;
        };
        return Err(bad(path.index(i), format!("{device:?}: {message}")));
    }
    check_unique(&path, devices)
}

fn build_filesystem(raw: RawFilesystem, defaults: &Filesystem) -> Result<Filesystem, Bad> {
    let mode = match raw.mode.as_deref() {
        None => defaults.mode,
        Some("read-only") => FsMode::ReadOnly,
        Some("workspace-only") => FsMode::WorkspaceOnly,
        Some("full") => FsMode::Full,
        Some(other) => {
            return Err(bad(
                FieldPath::new(&["filesystem", "mode"]),
                format!("{other:?} is not a filesystem mode: read-only, workspace-only or full"),
            ))
        }
    };
    let rootfs = match raw.rootfs.as_deref() {
        None => defaults.rootfs.clone(),
        Some("host") => RootfsSetting::Host,
        Some(path) => {
            check_rootfs_path(path)
                .map_err(|m| bad(FieldPath::new(&["filesystem", "rootfs"]), m))?;
            RootfsSetting::Path(path.to_owned())
        }
    };
    if mode == FsMode::Full && rootfs == RootfsSetting::Host {
        return Err(bad(
            FieldPath::new(&["filesystem", "mode"]),
            FULL_NEEDS_PATH,
        ));
    }
    let host_mounts = raw.host_mounts.unwrap_or_default();
    let path = FieldPath::new(&["filesystem", "host_mounts"]);
    for (i, dir) in host_mounts.iter().enumerate() {
        let message = match unclean(dir) {
            Some(why) => why,
            None if dir == "/" => "\"/\" would allow every host directory",
            None => continue,
        };
        return Err(bad(path.index(i), format!("{dir:?}: {message}")));
    }
    check_unique(&path, &host_mounts)?;
    Ok(Filesystem {
        mode,
        rootfs,
        custom_rootfs: raw.custom_rootfs.unwrap_or(defaults.custom_rootfs),
        host_mounts,
    })
}

/// The error of filesystem mode `full` with the host's directories as root.
pub(crate) const FULL_NEEDS_PATH: &str =
    "full needs a root filesystem directory: the host's directories cannot be overlaid";

/// Checks a root filesystem path (`rootfs`, or a request's); the message if it is not one.
pub(crate) fn check_rootfs_path(path: &str) -> Result<(), String> {
    match unclean(path) {
        Some(why) => Err(format!(
            "{path:?}: {why} (expected \"host\" or an absolute path)"
        )),
        None if path == "/" => Err("\"/\" is the host's root: write \"host\"".to_owned()),
        None => Ok(()),
    }
}

fn build_network(raw: RawNetwork) -> Result<Network, Bad> {
    let mode = match raw.mode.as_deref() {
        None => NetMode::None,
        Some("none") => NetMode::None,
        Some("allowlist") => NetMode::Allowlist,
        Some("full") => NetMode::Full,
        Some(other) => {
            return Err(bad(
                FieldPath::new(&["network", "mode"]),
                format!("{other:?} is not a network mode: none, allowlist or full"),
            ))
        }
    };
    let hosts = |key: &str, list: Option<Vec<String>>| -> Result<Vec<HostPattern>, Bad> {
        let list = list.unwrap_or_default();
        let path = FieldPath::new(&["network", key]);
        check_len(&path, list.len(), MAX_LIST)?;
        list.iter()
            .enumerate()
            .map(|(i, text)| {
                HostPattern::parse(text).map_err(|m| bad(path.index(i), format!("{text:?}: {m}")))
            })
            .collect()
    };
    let allow_hosts = hosts("allow_hosts", raw.allow_hosts)?;
    let deny_hosts = hosts("deny_hosts", raw.deny_hosts)?;
    if mode == NetMode::None && !allow_hosts.is_empty() {
        return Err(bad(
            FieldPath::new(&["network", "allow_hosts"]),
            "allow_hosts needs network mode allowlist (or full); the mode is none",
        ));
    }
    Ok(Network {
        mode,
        allow_hosts,
        deny_hosts,
    })
}

fn check_seccomp(seccomp: &str) -> Result<(), Bad> {
    if SHIPPED_SECCOMP.contains(&seccomp) {
        return Ok(());
    }
    let message = if !seccomp.starts_with('/') {
        format!("{seccomp:?} is neither a shipped profile (default, browser) nor an absolute path")
    } else if let Some(why) = unclean(seccomp) {
        format!("{seccomp:?}: {why}")
    } else if !seccomp.ends_with(".json") {
        format!("{seccomp:?}: a profile file's name ends in .json")
    } else {
        return Ok(());
    };
    Err(bad(FieldPath::new(&["process", "seccomp"]), message))
}

fn check_env(env: &BTreeMap<String, String>) -> Result<(), Bad> {
    let path = FieldPath::new(&["process", "env"]);
    check_len(&path, env.len(), MAX_LIST)?;
    for (key, value) in env {
        let key_problem = if key.is_empty() {
            Some("an empty variable name")
        } else if key.contains('=') {
            Some("a variable name cannot contain \"=\"")
        } else if key.contains('\0') {
            Some("a variable name cannot contain a NUL byte")
        } else {
            None
        };
        if let Some(message) = key_problem {
            return Err(Bad {
                path: path.key(key),
                at_key: true,
                message: message.to_owned(),
            });
        }
        if value.contains('\0') {
            return Err(bad(path.key(key), "a value cannot contain a NUL byte"));
        }
    }
    Ok(())
}
