//! A small stateful fake daemon of long-lived sandboxes: it keeps sandboxes, their files (in
//! memory) and their execs' output logs, and answers every new request as the protocol says. A
//! few commands are simulated: `echo`, `seq3` (three chunks on two streams) and
//! `readlink -z -- PATH...`; anything else exits 127.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use sandbox_proto::{
    ErrorCode, ExecInfo, ExitStatus, FileKind, FileStat, Request, Response, SandboxInfo,
    SandboxStats, Stream,
};

use super::Conn;

/// A file in a fake sandbox.
#[derive(Debug, Clone)]
pub(super) struct FakeFile {
    pub(super) kind: FileKind,
    pub(super) data: Vec<u8>,
    pub(super) mode: u32,
    /// A symlink's target.
    pub(super) target: String,
}

impl FakeFile {
    pub(super) fn dir(mode: u32) -> Self {
        FakeFile {
            kind: FileKind::Dir,
            data: Vec::new(),
            mode,
            target: String::new(),
        }
    }

    pub(super) fn symlink(target: &str) -> Self {
        FakeFile {
            kind: FileKind::Symlink,
            data: Vec::new(),
            mode: 0o777,
            target: target.into(),
        }
    }
}

/// One exec: its log and how it ended.
#[derive(Debug, Clone)]
pub(super) struct FakeExec {
    pub(super) argv: Vec<String>,
    pub(super) log: Vec<(Stream, Vec<u8>)>,
    pub(super) exit: ExitStatus,
}

/// One sandbox.
#[derive(Debug)]
pub(super) struct FakeBox {
    pub(super) info: SandboxInfo,
    pub(super) files: BTreeMap<String, FakeFile>,
    pub(super) execs: Vec<FakeExec>,
}

/// Everything the fake daemon holds, and every request it got.
#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) boxes: BTreeMap<String, FakeBox>,
    pub(super) requests: Vec<Request>,
    next: u64,
}

/// The state, shared by the test and the fake.
#[derive(Debug, Clone, Default)]
pub(super) struct Shared(Arc<Mutex<State>>);

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }
}

type Answer = Result<Vec<Response>, (ErrorCode, String)>;

/// Serves `conn` until the client closes it.
pub(super) async fn serve(mut conn: Conn, state: Shared) {
    while let Some(req) = conn.recv_until_closed().await {
        let id = request_id(&req);
        let answer = {
            let mut st = state.lock();
            st.requests.push(req.clone());
            st.answer(req)
        };
        match answer {
            Ok(frames) => {
                for frame in frames {
                    conn.send(frame).await;
                }
            }
            Err((code, message)) => {
                conn.send(Response::Error { id, code, message }).await;
            }
        }
    }
}

fn request_id(req: &Request) -> Option<u64> {
    match req {
        Request::Hello { .. } => None,
        Request::Run { id, .. }
        | Request::Stdin { id, .. }
        | Request::CloseStdin { id }
        | Request::Credit { id, .. }
        | Request::Kill { id, .. }
        | Request::Status { id }
        | Request::Create { id, .. }
        | Request::Exec { id, .. }
        | Request::Attach { id, .. }
        | Request::Resize { id, .. }
        | Request::Signal { id, .. }
        | Request::Pause { id, .. }
        | Request::Resume { id, .. }
        | Request::Destroy { id, .. }
        | Request::ExportBundle { id, .. }
        | Request::Policy { id, .. }
        | Request::List { id }
        | Request::Inspect { id, .. }
        | Request::Stats { id, .. }
        | Request::FileRead { id, .. }
        | Request::FileWrite { id, .. }
        | Request::FileList { id, .. }
        | Request::FileStat { id, .. }
        | Request::FileMkdir { id, .. }
        | Request::FileRemove { id, .. } => Some(*id),
    }
}

fn not_found(what: &str) -> (ErrorCode, String) {
    (ErrorCode::NotFound, format!("{what}: not found"))
}

fn file_error(message: &str) -> (ErrorCode, String) {
    (ErrorCode::FileError, message.into())
}

/// A missing file, as the daemon reports it (a sandbox that is missing is `not_found`).
fn no_file(path: &str) -> (ErrorCode, String) {
    file_error(&format!("not_found: resolve {path}: not found"))
}

/// `/a/b/` → `/a/b`; the root stays `/`.
fn norm(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.into()
    }
}

fn parent(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => path[..i].into(),
    }
}

impl State {
    fn boxed(&mut self, id: &str) -> Result<&mut FakeBox, (ErrorCode, String)> {
        self.boxes
            .get_mut(id)
            .ok_or_else(|| not_found(&format!("sandbox {id}")))
    }

    fn answer(&mut self, req: Request) -> Answer {
        let one = |r: Response| Ok(vec![r]);
        match req {
            Request::Create { id, spec } => {
                self.next += 1;
                let sandbox_id = format!("sb-{}", self.next);
                let info = SandboxInfo {
                    sandbox_id: sandbox_id.clone(),
                    state: "running".into(),
                    owner_uid: 1000,
                    hostname: spec.hostname.clone().unwrap_or_else(|| sandbox_id.clone()),
                    limits: spec.limits,
                    ttl_ms: spec.ttl_ms,
                    idle_timeout_ms: spec.idle_timeout_ms,
                    mounts: spec.mounts,
                    rootfs: spec.rootfs,
                    ..SandboxInfo::default()
                };
                let files = BTreeMap::from([
                    ("/".to_string(), FakeFile::dir(0o755)),
                    ("/workspace".to_string(), FakeFile::dir(0o755)),
                ]);
                let sandbox = FakeBox {
                    info: info.clone(),
                    files,
                    execs: Vec::new(),
                };
                self.boxes.insert(sandbox_id, sandbox);
                one(Response::Created { id, sandbox: info })
            }
            Request::List { id } => one(Response::Sandboxes {
                id,
                sandboxes: self.boxes.values().map(FakeBox::info).collect(),
            }),
            Request::Inspect { id, sandbox_id } => {
                let info = self.boxed(&sandbox_id)?.info();
                one(Response::Sandbox { id, info })
            }
            Request::Stats { id, sandbox_id } => {
                let sb = self.boxed(&sandbox_id)?;
                let stats = SandboxStats {
                    memory_current: Some(3 << 20),
                    memory_limit: sb.info.limits.memory,
                    pids_current: Some(1),
                    frozen: sb.info.state == "paused",
                    ..SandboxStats::default()
                };
                one(Response::Stats { id, stats })
            }
            Request::Pause { id, sandbox_id } => {
                self.boxed(&sandbox_id)?.info.state = "paused".into();
                one(Response::Done { id })
            }
            Request::Resume { id, sandbox_id } => {
                self.boxed(&sandbox_id)?.info.state = "running".into();
                one(Response::Done { id })
            }
            Request::Signal { id, sandbox_id, .. } => {
                self.boxed(&sandbox_id)?;
                one(Response::Done { id })
            }
            Request::Destroy { id, sandbox_id } => match self.boxes.remove(&sandbox_id) {
                Some(_) => one(Response::Done { id }),
                None => Err(not_found(&format!("sandbox {sandbox_id}"))),
            },
            Request::Exec {
                id,
                sandbox_id,
                spec,
            } => {
                let sb = self.boxed(&sandbox_id)?;
                let exec = sb.simulate(spec.argv);
                sb.execs.push(exec);
                // Exec ids start at 1, as the daemon's do.
                Ok(sb.stream(id, sb.execs.len() as u64, 0))
            }
            Request::Attach {
                id,
                sandbox_id,
                exec_id,
                from_seq,
            } => {
                let sb = self.boxed(&sandbox_id)?;
                if exec_id == 0 || exec_id > sb.execs.len() as u64 {
                    return Err(not_found(&format!("exec {exec_id}")));
                }
                Ok(sb.stream(id, exec_id, from_seq))
            }
            Request::FileRead {
                id,
                sandbox_id,
                path,
                offset,
                len,
            } => {
                let sb = self.boxed(&sandbox_id)?;
                let file = sb.resolve(&path)?;
                if file.kind != FileKind::File {
                    return Err(file_error("not a regular file"));
                }
                // File calls have no capabilities: the owner's read bit decides.
                if file.mode & 0o400 == 0 {
                    return Err(file_error("permission_denied: open: permission denied"));
                }
                let start = (offset as usize).min(file.data.len());
                let end = (start + len as usize).min(file.data.len());
                one(Response::FileData {
                    id,
                    data: file.data[start..end].to_vec(),
                    eof: end == file.data.len(),
                })
            }
            Request::FileWrite {
                id,
                sandbox_id,
                path,
                offset,
                data,
                truncate,
                mode,
            } => {
                let sb = self.boxed(&sandbox_id)?;
                let path = norm(&path);
                sb.dir(&parent(&path))?;
                let file = sb.files.entry(path).or_insert(FakeFile {
                    kind: FileKind::File,
                    data: Vec::new(),
                    mode: mode & 0o777,
                    target: String::new(),
                });
                if file.kind != FileKind::File {
                    return Err(file_error("not a regular file"));
                }
                // Every chunk reopens the file for writing, without capabilities.
                if file.mode & 0o200 == 0 && !(truncate && offset == 0 && file.data.is_empty()) {
                    return Err(file_error("permission_denied: open: permission denied"));
                }
                if truncate {
                    file.data.clear();
                }
                let end = offset as usize + data.len();
                if file.data.len() < end {
                    file.data.resize(end, 0);
                }
                file.data[offset as usize..end].copy_from_slice(&data);
                one(Response::Done { id })
            }
            Request::FileList {
                id,
                sandbox_id,
                path,
            } => {
                let sb = self.boxed(&sandbox_id)?;
                let dir = norm(&path);
                sb.dir(&dir)?;
                // Like the real daemon, entries carry the listed path joined with the name.
                let entries = sb
                    .files
                    .iter()
                    .filter(|(p, _)| *p != "/" && parent(p) == dir)
                    .map(|(p, f)| f.stat(p))
                    .collect();
                one(Response::FileList { id, entries })
            }
            Request::FileStat {
                id,
                sandbox_id,
                path,
            } => {
                let sb = self.boxed(&sandbox_id)?;
                let path = norm(&path);
                let stat = sb
                    .files
                    .get(&path)
                    .ok_or_else(|| no_file(&path))?
                    .stat(&path);
                one(Response::FileInfo { id, stat })
            }
            Request::FileMkdir {
                id,
                sandbox_id,
                path,
                parents,
                mode,
            } => {
                let sb = self.boxed(&sandbox_id)?;
                let path = norm(&path);
                let mut todo = vec![path.clone()];
                let mut up = parent(&path);
                while parents && !sb.files.contains_key(&up) {
                    todo.push(up.clone());
                    up = parent(&up);
                }
                for dir in todo.into_iter().rev() {
                    match sb.files.get(&dir) {
                        Some(f) if f.kind == FileKind::Dir && parents => {}
                        Some(_) => return Err(file_error("already exists")),
                        None => {
                            sb.dir(&parent(&dir))?;
                            sb.files.insert(dir, FakeFile::dir(mode & 0o777));
                        }
                    }
                }
                one(Response::Done { id })
            }
            Request::FileRemove {
                id,
                sandbox_id,
                path,
                recursive,
            } => {
                let sb = self.boxed(&sandbox_id)?;
                let path = norm(&path);
                let inside = format!("{path}/");
                let has_children = sb.files.keys().any(|p| p.starts_with(&inside));
                if !sb.files.contains_key(&path) {
                    return Err(no_file(&path));
                }
                if has_children && !recursive {
                    return Err(file_error("directory not empty"));
                }
                sb.files
                    .retain(|p, _| *p != path && !p.starts_with(&inside));
                one(Response::Done { id })
            }
            // Stream inputs: the simulated commands never read them.
            Request::Stdin { .. }
            | Request::CloseStdin { .. }
            | Request::Credit { .. }
            | Request::Kill { .. }
            | Request::Resize { .. } => Ok(Vec::new()),
            other => panic!("the fake daemon does not serve {other:?}"),
        }
    }
}

impl FakeFile {
    fn stat(&self, path: &str) -> FileStat {
        FileStat {
            path: path.into(),
            kind: self.kind,
            size: match self.kind {
                FileKind::Symlink => self.target.len() as u64,
                _ => self.data.len() as u64,
            },
            mode: self.mode,
            ..FileStat::default()
        }
    }
}

impl FakeBox {
    fn info(&self) -> SandboxInfo {
        let execs = self
            .execs
            .iter()
            .enumerate()
            .map(|(n, e)| ExecInfo {
                exec_id: n as u64 + 1,
                argv: e.argv.clone(),
                exit: Some(e.exit.clone()),
                next_seq: e.log.len() as u64,
                ..ExecInfo::default()
            })
            .collect();
        SandboxInfo {
            execs,
            ..self.info.clone()
        }
    }

    fn dir(&self, path: &str) -> Result<(), (ErrorCode, String)> {
        match self.files.get(path) {
            Some(f) if f.kind == FileKind::Dir => Ok(()),
            Some(_) => Err(file_error("not a directory")),
            None => Err(no_file(path)),
        }
    }

    /// The file at `path`, through symlinks (to absolute targets).
    fn resolve(&self, path: &str) -> Result<&FakeFile, (ErrorCode, String)> {
        let mut path = norm(path);
        for _ in 0..8 {
            let file = self.files.get(&path).ok_or_else(|| no_file(&path))?;
            if file.kind != FileKind::Symlink {
                return Ok(file);
            }
            path = norm(&file.target);
        }
        Err(file_error("too many levels of symbolic links"))
    }

    fn simulate(&self, argv: Vec<String>) -> FakeExec {
        let code = |code| ExitStatus {
            code: Some(code),
            ..ExitStatus::default()
        };
        let (log, exit) = match argv.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["echo", ref words @ ..] => {
                let line = format!("{}\n", words.join(" "));
                (vec![(Stream::Stdout, line.into_bytes())], code(0))
            }
            ["seq3"] => (
                vec![
                    (Stream::Stdout, b"a".to_vec()),
                    (Stream::Stderr, b"b".to_vec()),
                    (Stream::Stdout, b"c".to_vec()),
                ],
                code(0),
            ),
            ["readlink", "-z", "--", ref paths @ ..] => {
                let mut out = Vec::new();
                let mut status = 0;
                for path in paths {
                    match self.files.get(&norm(path)) {
                        Some(f) if f.kind == FileKind::Symlink => {
                            out.extend_from_slice(f.target.as_bytes());
                            out.push(0);
                        }
                        _ => status = 1,
                    }
                }
                (vec![(Stream::Stdout, out)], code(status))
            }
            _ => (vec![(Stream::Stderr, b"not found".to_vec())], code(127)),
        };
        FakeExec { argv, log, exit }
    }

    /// The frames of an exec or attach stream from `from_seq`.
    fn stream(&self, id: u64, exec_id: u64, from_seq: u64) -> Vec<Response> {
        let exec = &self.execs[exec_id as usize - 1];
        let mut frames = vec![Response::Started {
            id,
            sandbox_id: self.info.sandbox_id.clone(),
            exec_id: Some(exec_id),
        }];
        for (seq, (stream, data)) in exec.log.iter().enumerate().skip(from_seq as usize) {
            frames.push(Response::Output {
                id,
                stream: *stream,
                data: data.clone(),
                seq: Some(seq as u64),
            });
        }
        frames.push(Response::Exit {
            id,
            status: exec.exit.clone(),
        });
        frames
    }
}
