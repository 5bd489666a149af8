//! Per-exec output logs: stdout and stderr records with sequence numbers, so a client can reattach,
//! replay from a sequence number and then follow live.
//!
//! On disk, in a directory of the sandbox (under `Config::exec_log_dir`):
//! - `<exec_id>.log`: records `[u64 seq BE][u8 stream][u32 len BE][data]`, appended in seq order
//!   from 0 with no gaps. Streams are `STDOUT`, `STDERR` and `MARKER`;
//! - `<exec_id>.exit`: the exit status as JSON, written atomically by `OutLog::finish` after the
//!   log has been synced, so its presence means the log is complete.
//!
//! The log never grows past its cap: a record is written only if the one `MARKER` record still
//! fits after it. When one does not fit, the marker (data `truncated`) is written instead, with
//! its own sequence number, and that record and every later one are dropped, each still using up
//! a sequence number, so a client sees the gap.
//!
//! The writer (`OutLog`) is blocking (call it through `spawn_blocking`). Readers (`OutLogReader`)
//! are async: each has its own fd, reads only bytes the writer has published as whole records,
//! and waits on a `watch` channel for more.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::store::AtomicWriteError;

/// Stream byte of standard output records.
pub const STDOUT: u8 = 1;
/// Stream byte of standard error records.
pub const STDERR: u8 = 2;
/// Stream byte of the truncation marker, written once when the cap is reached.
pub const MARKER: u8 = 0;
/// The data of the truncation marker.
pub const MARKER_DATA: &[u8] = b"truncated";
/// The most data one record may hold; it also bounds what a reader allocates for a record.
pub const MAX_RECORD_DATA: usize = 4 << 20;
/// The longest exec id accepted.
pub const MAX_ID_LEN: usize = 64;

const HEADER_LEN: usize = 13;
const MARKER_LEN: u64 = (HEADER_LEN + MARKER_DATA.len()) as u64;
/// How much a reader reads from the file at once.
const READ_CHUNK: usize = 64 << 10;

/// A step of writing or reading an output log failed.
#[derive(Debug, thiserror::Error)]
pub enum OutLogError {
    /// The exec id is empty, too long, or has a character outside `[a-z0-9-]`.
    #[error("invalid exec id {id:?}")]
    BadId { id: String },
    /// Only [`STDOUT`] and [`STDERR`] may be appended.
    #[error("invalid stream {stream}")]
    BadStream { stream: u8 },
    /// One append held more than [`MAX_RECORD_DATA`] bytes.
    #[error("record of {len} bytes is over the limit of {MAX_RECORD_DATA}")]
    TooLarge { len: usize },
    /// The exec already finished: nothing more can be appended, and it cannot finish twice.
    #[error("output log {} is already finished", path.display())]
    Finished { path: PathBuf },
    /// Creating the log directory failed.
    #[error("create log directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Creating the log file failed (it must not exist yet).
    #[error("create output log {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Writing a record failed; the log is left as it was before the append.
    #[error("write output log {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Syncing the log before writing the exit status failed.
    #[error("sync output log {}", path.display())]
    Sync {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Creating, writing or syncing the temporary exit status file failed.
    #[error("write temporary exit status {}", path.display())]
    WriteExit {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Renaming the temporary exit status file into place failed.
    #[error("rename {} to {}", from.display(), to.display())]
    RenameExit {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Syncing the log directory after the rename failed.
    #[error("sync log directory {}", path.display())]
    SyncDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Opening the log for reading failed.
    #[error("open output log {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading the log failed.
    #[error("read output log {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A record the writer published is malformed.
    #[error("corrupt output log {} at byte {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: &'static str,
    },
    /// Reading the exit status file failed.
    #[error("read exit status {}", path.display())]
    ReadExit {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The exit status file is not valid JSON.
    #[error("corrupt exit status {}", path.display())]
    CorruptExit {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The writer went away without finishing, after the reader had read all it published.
    #[error("output log {} was abandoned before the exec finished", path.display())]
    Abandoned { path: PathBuf },
}

/// One record of an output log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// The record's sequence number: 0, 1, 2...
    pub seq: u64,
    /// [`STDOUT`], [`STDERR`] or [`MARKER`].
    pub stream: u8,
    /// The bytes, as the exec wrote them.
    pub data: Vec<u8>,
}

/// What the writer publishes to readers.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// Bytes of the file that hold whole records.
    committed: u64,
    next_seq: u64,
    truncated: bool,
    /// Set once `finish` has written the exit status.
    exit: Option<Arc<serde_json::Value>>,
}

#[derive(Debug)]
struct Writer {
    file: File,
    len: u64,
    next_seq: u64,
    truncated: bool,
    finished: bool,
}

/// The writer side of one exec's output log; share it as `Arc<OutLog>`.
#[derive(Debug)]
pub struct OutLog {
    /// Whether `finish` fsyncs (the log, the exit file, the directory) before it reports the
    /// end: for logs that must survive a host crash, at about a millisecond per exec.
    durable: bool,
    dir: PathBuf,
    path: PathBuf,
    exit_path: PathBuf,
    cap: u64,
    writer: Mutex<Writer>,
    progress: watch::Sender<Progress>,
}

fn check_id(id: &str) -> Result<(), OutLogError> {
    let ok = (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(OutLogError::BadId { id: id.to_owned() })
    }
}

fn paths(dir: &Path, exec_id: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{exec_id}.log")),
        dir.join(format!("{exec_id}.exit")),
    )
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn encode(seq: u64, stream: u8, data: &[u8]) -> Vec<u8> {
    let mut rec = Vec::with_capacity(HEADER_LEN + data.len());
    rec.extend_from_slice(&seq.to_be_bytes());
    rec.push(stream);
    // Callers bound data by MAX_RECORD_DATA, far below u32::MAX.
    rec.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    rec.extend_from_slice(data);
    rec
}

enum Parsed {
    /// A whole record and the bytes it used.
    Record(LogRecord, usize),
    /// More bytes are needed: this many in all, counted from the record's start.
    Incomplete(usize),
    Invalid(&'static str),
}

/// Decodes the record at the start of `buf`, which must have sequence number `expected_seq`.
fn parse(buf: &[u8], expected_seq: u64) -> Parsed {
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Parsed::Incomplete(HEADER_LEN);
    };
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&header[..8]);
    let seq = u64::from_be_bytes(seq);
    let stream = header[8];
    let mut len = [0u8; 4];
    len.copy_from_slice(&header[9..]);
    let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    if seq != expected_seq {
        return Parsed::Invalid("sequence number out of order");
    }
    if ![STDOUT, STDERR, MARKER].contains(&stream) {
        return Parsed::Invalid("unknown stream");
    }
    if len > MAX_RECORD_DATA {
        return Parsed::Invalid("record too long");
    }
    let total = HEADER_LEN + len;
    let Some(data) = buf.get(HEADER_LEN..total) else {
        return Parsed::Incomplete(total);
    };
    if stream == MARKER && data != MARKER_DATA {
        return Parsed::Invalid("bad truncation marker");
    }
    let rec = LogRecord {
        seq,
        stream,
        data: data.to_vec(),
    };
    Parsed::Record(rec, total)
}

/// Writes the exit file atomically (the store's helper), mapping its steps to ours.
fn write_atomic(dir: &Path, path: &Path, bytes: &[u8], sync: bool) -> Result<(), OutLogError> {
    crate::store::write_atomic(dir, path, bytes, sync).map_err(|e| match e {
        AtomicWriteError::Write(path, source) => OutLogError::WriteExit { path, source },
        AtomicWriteError::Rename(from, to, source) => OutLogError::RenameExit { from, to, source },
        AtomicWriteError::SyncDir(path, source) => OutLogError::SyncDir { path, source },
    })
}

impl OutLog {
    /// Creates `<dir>/<exec_id>.log` (and `dir`, mode 0700, if needed). The log must not exist yet.
    /// A `cap` below the size of the marker record is raised to it.
    pub fn create(dir: &Path, exec_id: &str, cap: u64) -> Result<Arc<OutLog>, OutLogError> {
        Self::create_with(dir, exec_id, cap, true)
    }

    /// As `create`; `durable: false` skips the fsyncs at `finish` (the log is still written
    /// before the exit file, and the exit file atomically).
    pub fn create_with(
        dir: &Path,
        exec_id: &str,
        cap: u64,
        durable: bool,
    ) -> Result<Arc<OutLog>, OutLogError> {
        check_id(exec_id)?;
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| OutLogError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        let (path, exit_path) = paths(dir, exec_id);
        // create_new: an exec id used twice must not clobber the first exec's output.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| OutLogError::Create {
                path: path.clone(),
                source,
            })?;
        let writer = Writer {
            file,
            len: 0,
            next_seq: 0,
            truncated: false,
            finished: false,
        };
        Ok(Arc::new(OutLog {
            durable,
            dir: dir.to_path_buf(),
            path,
            exit_path,
            cap: cap.max(MARKER_LEN),
            writer: Mutex::new(writer),
            progress: watch::Sender::new(Progress::default()),
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `data` from `stream` ([`STDOUT`] or [`STDERR`]) and returns its sequence number.
    /// Past the cap the data is dropped (the first time, the marker is written in its place), but
    /// a sequence number is still used up.
    pub fn append(&self, stream: u8, data: &[u8]) -> Result<u64, OutLogError> {
        if stream != STDOUT && stream != STDERR {
            return Err(OutLogError::BadStream { stream });
        }
        if data.len() > MAX_RECORD_DATA {
            return Err(OutLogError::TooLarge { len: data.len() });
        }
        let mut w = self.lock();
        if w.finished {
            return Err(OutLogError::Finished {
                path: self.path.clone(),
            });
        }
        if w.truncated {
            // Past the cap: the data is dropped, but it still takes a number.
            w.next_seq += 1;
        } else {
            let fits = w.len + to_u64(HEADER_LEN + data.len()) + MARKER_LEN <= self.cap;
            let (stream, data) = if fits {
                (stream, data)
            } else {
                (MARKER, MARKER_DATA)
            };
            let rec = encode(w.next_seq, stream, data);
            // A positioned write at the committed end: after a failed or short write, the next
            // append overwrites the torn bytes instead of appending after them.
            if let Err(source) = w.file.write_all_at(&rec, w.len) {
                let len = w.len;
                let _ = w.file.set_len(len);
                return Err(OutLogError::Write {
                    path: self.path.clone(),
                    source,
                });
            }
            w.len += to_u64(rec.len());
            w.next_seq += 1;
            if !fits {
                // The marker took the number before the dropped data's.
                w.truncated = true;
                w.next_seq += 1;
            }
        }
        let seq = w.next_seq - 1;
        self.publish(&w);
        Ok(seq)
    }

    fn publish(&self, w: &Writer) {
        self.progress.send_modify(|p| {
            p.committed = w.len;
            p.next_seq = w.next_seq;
            p.truncated = w.truncated;
        });
    }

    /// Syncs the log, writes `<exec_id>.exit` atomically and wakes the readers, which end once
    /// they have read everything.
    pub fn finish(&self, exit: &serde_json::Value) -> Result<(), OutLogError> {
        let mut w = self.lock();
        if w.finished {
            return Err(OutLogError::Finished {
                path: self.path.clone(),
            });
        }
        // The exit file promises a complete log, so the log must be on disk first.
        if self.durable {
            w.file.sync_data().map_err(|source| OutLogError::Sync {
                path: self.path.clone(),
                source,
            })?;
        }
        // A Value's Display is its JSON text and cannot fail.
        write_atomic(
            &self.dir,
            &self.exit_path,
            exit.to_string().as_bytes(),
            self.durable,
        )?;
        w.finished = true;
        let exit = Arc::new(exit.clone());
        self.progress.send_modify(|p| p.exit = Some(exit));
        Ok(())
    }

    /// The sequence number the next append gets.
    pub fn next_seq(&self) -> u64 {
        self.progress.borrow().next_seq
    }

    /// Whether the cap was reached and output dropped.
    pub fn truncated(&self) -> bool {
        self.progress.borrow().truncated
    }

    /// Whether [`OutLog::finish`] succeeded.
    pub fn is_finished(&self) -> bool {
        self.progress.borrow().exit.is_some()
    }

    /// The exit status given to [`OutLog::finish`], once finished.
    pub fn exit(&self) -> Option<serde_json::Value> {
        self.progress.borrow().exit.as_deref().cloned()
    }

    /// A reader of the records from `from_seq` on, with its own fd, which follows live appends.
    pub fn reader(self: &Arc<Self>, from_seq: u64) -> Result<OutLogReader, OutLogError> {
        let file = File::open(&self.path).map_err(|source| OutLogError::Open {
            path: self.path.clone(),
            source,
        })?;
        Ok(OutLogReader {
            path: self.path.clone(),
            file: Arc::new(file),
            progress: self.progress.subscribe(),
            from_seq,
            buf: Vec::new(),
            buf_off: 0,
            pos: 0,
            expected_seq: 0,
            exit: None,
        })
    }
}

/// Follows one exec's output log. It holds no reference to the [`OutLog`]: if every `Arc<OutLog>`
/// is dropped unfinished, it returns what was written and then [`OutLogError::Abandoned`].
#[derive(Debug)]
pub struct OutLogReader {
    path: PathBuf,
    file: Arc<File>,
    progress: watch::Receiver<Progress>,
    from_seq: u64,
    /// Bytes read from the file, starting at file offset `buf_off`; parsed up to `pos`.
    buf: Vec<u8>,
    buf_off: u64,
    pos: usize,
    expected_seq: u64,
    exit: Option<Arc<serde_json::Value>>,
}

impl OutLogReader {
    /// The next record at or after `from_seq`; waits while the exec runs. `None` once the exec
    /// finished and every record was returned. Cancel-safe: a record is consumed only when it
    /// is returned, so it can sit in a `select!` beside the client's socket.
    pub async fn next(&mut self) -> Result<Option<LogRecord>, OutLogError> {
        let mut writer_gone = false;
        loop {
            let need = match parse(&self.buf[self.pos..], self.expected_seq) {
                Parsed::Record(rec, used) => {
                    self.pos += used;
                    self.expected_seq += 1;
                    if rec.seq >= self.from_seq {
                        return Ok(Some(rec));
                    }
                    continue;
                }
                Parsed::Incomplete(need) => need - (self.buf.len() - self.pos),
                Parsed::Invalid(reason) => {
                    return Err(OutLogError::Corrupt {
                        path: self.path.clone(),
                        offset: self.buf_off + to_u64(self.pos),
                        reason,
                    })
                }
            };
            let progress = self.progress.borrow_and_update().clone();
            let end = self.buf_off + to_u64(self.buf.len());
            if end < progress.committed {
                let avail = usize::try_from(progress.committed - end).unwrap_or(usize::MAX);
                self.fill(avail.min(need.max(READ_CHUNK))).await?;
                continue;
            }
            // Everything published is read, and the writer publishes whole records only.
            if progress.exit.is_some() {
                if self.pos < self.buf.len() {
                    return Err(OutLogError::Corrupt {
                        path: self.path.clone(),
                        offset: self.buf_off + to_u64(self.pos),
                        reason: "torn record before the end",
                    });
                }
                self.exit = progress.exit;
                return Ok(None);
            }
            if writer_gone {
                return Err(OutLogError::Abandoned {
                    path: self.path.clone(),
                });
            }
            if self.progress.changed().await.is_err() {
                // The last value stays readable: look once more before giving up.
                writer_gone = true;
            }
        }
    }

    /// The exit status, once [`OutLogReader::next`] has returned `None`.
    pub fn exit(&self) -> Option<&serde_json::Value> {
        self.exit.as_deref()
    }

    /// Reads `want` more bytes from the file, after the ones already in the buffer.
    async fn fill(&mut self, want: usize) -> Result<(), OutLogError> {
        // Drop what was parsed, so the buffer holds at most one chunk and a partial record.
        self.buf.drain(..self.pos);
        self.buf_off += to_u64(self.pos);
        self.pos = 0;
        let file = Arc::clone(&self.file);
        let off = self.buf_off + to_u64(self.buf.len());
        let chunk = tokio::task::spawn_blocking(move || {
            let mut chunk = vec![0u8; want];
            file.read_exact_at(&mut chunk, off).map(|()| chunk)
        })
        .await
        // Only a panic or a runtime shutting down fails the task itself.
        .unwrap_or_else(|e| Err(io::Error::other(e)))
        .map_err(|source| OutLogError::Read {
            path: self.path.clone(),
            source,
        })?;
        self.buf.extend_from_slice(&chunk);
        Ok(())
    }
}

/// Reads a finished (or crashed) exec's records from `from_seq` on and its exit status, with no
/// live [`OutLog`], e.g. after a daemon restart. Reading stops at the first record that is torn or
/// invalid: a crash can leave a partial or zero-filled tail, and that is the end, not data.
/// The status is `None` when the exec never finished.
pub fn replay(
    dir: &Path,
    exec_id: &str,
    from_seq: u64,
) -> Result<(Vec<LogRecord>, Option<serde_json::Value>), OutLogError> {
    check_id(exec_id)?;
    let (path, exit_path) = paths(dir, exec_id);
    let bytes = fs::read(&path).map_err(|source| OutLogError::Read { path, source })?;
    let mut records = Vec::new();
    let mut pos = 0;
    let mut seq = 0;
    while let Parsed::Record(rec, used) = parse(&bytes[pos..], seq) {
        pos += used;
        seq += 1;
        if rec.seq >= from_seq {
            records.push(rec);
        }
    }
    let exit = match fs::read(&exit_path) {
        Ok(b) => Some(
            serde_json::from_slice(&b).map_err(|source| OutLogError::CorruptExit {
                path: exit_path,
                source,
            })?,
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(OutLogError::ReadExit {
                path: exit_path,
                source,
            })
        }
    };
    Ok((records, exit))
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, RandomState};
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    /// A directory under the system temporary directory, removed on drop.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new() -> TestDir {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!(
                "sandboxd-outlog-test-{}-{n}-{:x}",
                std::process::id(),
                RandomState::new().hash_one(n)
            ));
            fs::create_dir_all(&p).unwrap();
            TestDir(p)
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn rec(seq: u64, stream: u8, data: &[u8]) -> LogRecord {
        LogRecord {
            seq,
            stream,
            data: data.to_vec(),
        }
    }

    async fn drain(r: &mut OutLogReader) -> Vec<LogRecord> {
        let mut out = Vec::new();
        while let Some(rec) = r.next().await.unwrap() {
            out.push(rec);
        }
        out
    }

    #[test]
    fn append_then_replay_keeps_order_across_streams() {
        let t = TestDir::new();
        let dir = t.0.join("logs").join("sb1");
        let log = OutLog::create(&dir, "e1", 1 << 20).unwrap();
        assert_eq!(log.append(STDOUT, b"out a").unwrap(), 0);
        assert_eq!(log.append(STDERR, b"err b").unwrap(), 1);
        assert_eq!(log.append(STDOUT, b"").unwrap(), 2);
        assert_eq!(log.append(STDOUT, b"out c").unwrap(), 3);
        assert_eq!(log.next_seq(), 4);
        assert!(!log.is_finished());
        let (recs, exit) = replay(&dir, "e1", 0).unwrap();
        assert_eq!(recs.len(), 4);
        assert_eq!(exit, None);
        log.finish(&json!({"code": 3})).unwrap();
        assert!(log.is_finished());
        assert_eq!(log.exit(), Some(json!({"code": 3})));

        let (recs, exit) = replay(&dir, "e1", 0).unwrap();
        let want = [
            rec(0, STDOUT, b"out a"),
            rec(1, STDERR, b"err b"),
            rec(2, STDOUT, b""),
            rec(3, STDOUT, b"out c"),
        ];
        assert_eq!(recs, want);
        assert_eq!(exit, Some(json!({"code": 3})));
        let (recs, _) = replay(&dir, "e1", 2).unwrap();
        assert_eq!(recs, want[2..]);

        // The documented byte layout, and private files.
        let bytes = fs::read(dir.join("e1.log")).unwrap();
        assert_eq!(&bytes[..18], b"\0\0\0\0\0\0\0\0\x01\0\0\0\x05out a");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("e1.log")), 0o600);
        assert_eq!(mode(&dir.join("e1.exit")), 0o600);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
    }

    #[tokio::test]
    async fn reader_from_zero_follows_live_appends() {
        let t = TestDir::new();
        let log = OutLog::create(&t.0, "e1", 1 << 20).unwrap();
        log.append(STDOUT, b"before").unwrap();
        let mut r = log.reader(0).unwrap();
        let w = Arc::clone(&log);
        let writer = tokio::spawn(async move {
            for i in 1..50u32 {
                let stream = if i % 3 == 0 { STDERR } else { STDOUT };
                w.append(stream, format!("line {i}").as_bytes()).unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            w.finish(&json!({"code": 0})).unwrap();
        });
        let recs = drain(&mut r).await;
        writer.await.unwrap();
        assert_eq!(recs.len(), 50);
        assert_eq!(recs[0], rec(0, STDOUT, b"before"));
        for (i, got) in recs.iter().enumerate().skip(1) {
            assert_eq!(got.seq, to_u64(i));
            assert_eq!(got.data, format!("line {i}").as_bytes());
            assert_eq!(got.stream, if i % 3 == 0 { STDERR } else { STDOUT });
        }
        assert_eq!(r.exit(), Some(&json!({"code": 0})));
        // It stays at the end.
        assert_eq!(r.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn reader_from_a_middle_seq() {
        let t = TestDir::new();
        let log = OutLog::create(&t.0, "e1", 1 << 20).unwrap();
        for i in 0..10u8 {
            log.append(STDOUT, &[i]).unwrap();
        }
        let mut r = log.reader(4).unwrap();
        assert_eq!(r.next().await.unwrap(), Some(rec(4, STDOUT, &[4])));
        log.append(STDERR, b"x").unwrap();
        log.finish(&json!(null)).unwrap();
        let seqs: Vec<u64> = drain(&mut r).await.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [5, 6, 7, 8, 9, 10]);
        // Past the end: nothing, then the end.
        let mut r = log.reader(99).unwrap();
        assert_eq!(r.next().await.unwrap(), None);
        assert_eq!(r.exit(), Some(&json!(null)));
    }

    #[tokio::test]
    async fn cap_writes_one_marker_and_keeps_counting() {
        let t = TestDir::new();
        // Records of 10 bytes take 23; the marker takes 22. Three fit in 100 with the marker.
        let log = OutLog::create(&t.0, "e1", 100).unwrap();
        let mut r = log.reader(0).unwrap();
        for i in 0..3 {
            assert_eq!(log.append(STDOUT, b"0123456789").unwrap(), i);
        }
        assert!(!log.truncated());
        assert_eq!(log.append(STDERR, b"0123456789").unwrap(), 4);
        assert!(log.truncated());
        // A record small enough to fit is still dropped: the log stays a prefix of the output.
        assert_eq!(log.append(STDOUT, b"x").unwrap(), 5);
        assert_eq!(log.next_seq(), 6);
        log.finish(&json!({"code": 0})).unwrap();
        assert_eq!(fs::metadata(t.0.join("e1.log")).unwrap().len(), 91);

        let want = [
            rec(0, STDOUT, b"0123456789"),
            rec(1, STDOUT, b"0123456789"),
            rec(2, STDOUT, b"0123456789"),
            rec(3, MARKER, MARKER_DATA),
        ];
        assert_eq!(drain(&mut r).await, want);
        assert_eq!(replay(&t.0, "e1", 0).unwrap().0, want);

        // A cap below the marker's size is raised to it: the first append becomes the marker.
        let log = OutLog::create(&t.0, "e2", 0).unwrap();
        assert_eq!(log.append(STDOUT, b"").unwrap(), 1);
        assert!(log.truncated());
        assert_eq!(
            replay(&t.0, "e2", 0).unwrap().0,
            [rec(0, MARKER, MARKER_DATA)]
        );
    }

    #[test]
    fn replay_stops_at_a_torn_or_zeroed_tail() {
        let t = TestDir::new();
        let log = OutLog::create(&t.0, "base", 1 << 20).unwrap();
        log.append(STDOUT, b"one").unwrap();
        log.append(STDERR, b"two").unwrap();
        drop(log);
        let base = fs::read(t.0.join("base.log")).unwrap();
        let (want, exit) = replay(&t.0, "base", 0).unwrap();
        assert_eq!(want.len(), 2);
        assert_eq!(exit, None);

        let full = encode(2, STDOUT, b"three");
        let tails: [&[u8]; 5] = [
            &full[..5],                  // half a header
            &full[..HEADER_LEN],         // a header and no data
            &full[..full.len() - 1],     // all but the last byte
            &[0u8; 64],                  // a zero-filled tail, as after a crash
            &encode(7, STDOUT, b"late"), // a record that cannot come next
        ];
        for (i, tail) in tails.iter().enumerate() {
            let id = format!("torn{i}");
            fs::write(t.0.join(format!("{id}.log")), [&base[..], tail].concat()).unwrap();
            let (got, _) = replay(&t.0, &id, 0).unwrap();
            assert_eq!(got, want, "tail {i}");
        }
        // The whole record is read.
        fs::write(t.0.join("whole.log"), [&base[..], &full].concat()).unwrap();
        assert_eq!(replay(&t.0, "whole", 0).unwrap().0.len(), 3);
    }

    #[tokio::test]
    async fn live_reader_ignores_a_half_written_record() {
        let t = TestDir::new();
        let log = OutLog::create(&t.0, "e1", 1 << 20).unwrap();
        log.append(STDOUT, b"a").unwrap();
        // Bytes past what the writer published, as while it is mid-append.
        let torn = encode(1, STDOUT, b"a long record the writer is still writing");
        OpenOptions::new()
            .append(true)
            .open(t.0.join("e1.log"))
            .unwrap()
            .write_all(&torn[..20])
            .unwrap();
        let mut r = log.reader(0).unwrap();
        assert_eq!(r.next().await.unwrap(), Some(rec(0, STDOUT, b"a")));
        let waited = tokio::time::timeout(Duration::from_millis(50), r.next()).await;
        assert!(waited.is_err(), "read past the published end: {waited:?}");
        // The next append overwrites the torn bytes; the reader, cancelled above, carries on.
        log.append(STDERR, b"b").unwrap();
        assert_eq!(r.next().await.unwrap(), Some(rec(1, STDERR, b"b")));
        log.finish(&json!(0)).unwrap();
        assert_eq!(r.next().await.unwrap(), None);
        assert_eq!(replay(&t.0, "e1", 0).unwrap().0.len(), 2);
    }

    #[tokio::test]
    async fn records_larger_than_a_read_chunk() {
        let t = TestDir::new();
        let log = OutLog::create(&t.0, "e1", 1 << 30).unwrap();
        let big: Vec<u8> = (0..READ_CHUNK * 3 + 7).map(|i| (i % 251) as u8).collect();
        let mut r = log.reader(0).unwrap();
        for i in 0..5 {
            log.append(STDOUT, &big[..big.len() - i]).unwrap();
        }
        log.finish(&json!(0)).unwrap();
        let recs = drain(&mut r).await;
        assert_eq!(recs.len(), 5);
        for (i, got) in recs.iter().enumerate() {
            assert_eq!(got.data, big[..big.len() - i]);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_concurrent_readers() {
        let t = TestDir::new();
        let log = OutLog::create(&t.0, "e1", 1 << 24).unwrap();
        let n = 300u64;
        let mut readers = Vec::new();
        for i in 0..10u64 {
            // Half start before any output, half partway through; each replays from its seq.
            let from = if i % 2 == 0 { 0 } else { i * 10 };
            let mut r = log.reader(from).unwrap();
            readers.push(tokio::spawn(async move {
                let recs = drain(&mut r).await;
                let seqs: Vec<u64> = recs.iter().map(|r| r.seq).collect();
                assert_eq!(seqs, (from..n).collect::<Vec<_>>(), "reader {i}");
                for got in &recs {
                    assert_eq!(got.data, format!("record {}", got.seq).as_bytes());
                }
                r.exit().cloned()
            }));
            if i == 4 {
                for s in 0..100 {
                    log.append(STDOUT, format!("record {s}").as_bytes())
                        .unwrap();
                }
            }
        }
        let w = Arc::clone(&log);
        tokio::task::spawn_blocking(move || {
            for s in 100..n {
                w.append(STDERR, format!("record {s}").as_bytes()).unwrap();
                if s % 20 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            w.finish(&json!({"code": 0})).unwrap();
        })
        .await
        .unwrap();
        for r in readers {
            assert_eq!(r.await.unwrap(), Some(json!({"code": 0})));
        }
    }

    #[tokio::test]
    async fn dropped_writer_ends_readers_with_an_error() {
        let t = TestDir::new();
        let log = OutLog::create(&t.0, "e1", 1 << 20).unwrap();
        let mut r = log.reader(0).unwrap();
        log.append(STDOUT, b"a").unwrap();
        drop(log);
        assert_eq!(r.next().await.unwrap(), Some(rec(0, STDOUT, b"a")));
        assert!(matches!(r.next().await, Err(OutLogError::Abandoned { .. })));
    }

    #[test]
    fn refused_calls() {
        let t = TestDir::new();
        for id in ["", "../x", "E1", "a/b", &"a".repeat(MAX_ID_LEN + 1)] {
            assert!(matches!(
                OutLog::create(&t.0, id, 100),
                Err(OutLogError::BadId { .. })
            ));
        }
        let log = OutLog::create(&t.0, "e1", 100).unwrap();
        // An exec id is never reused over an existing log.
        assert!(matches!(
            OutLog::create(&t.0, "e1", 100),
            Err(OutLogError::Create { .. })
        ));
        for stream in [MARKER, 3] {
            assert!(matches!(
                log.append(stream, b"x"),
                Err(OutLogError::BadStream { .. })
            ));
        }
        let big = vec![0u8; MAX_RECORD_DATA + 1];
        assert!(matches!(
            log.append(STDOUT, &big),
            Err(OutLogError::TooLarge { .. })
        ));
        assert_eq!(log.next_seq(), 0);
        log.finish(&json!(1)).unwrap();
        assert!(matches!(
            log.append(STDOUT, b"x"),
            Err(OutLogError::Finished { .. })
        ));
        assert!(matches!(
            log.finish(&json!(2)),
            Err(OutLogError::Finished { .. })
        ));
        assert_eq!(replay(&t.0, "e1", 0).unwrap().1, Some(json!(1)));

        assert!(matches!(
            replay(&t.0, "nope", 0),
            Err(OutLogError::Read { .. })
        ));
        assert!(matches!(
            replay(&t.0, "../x", 0),
            Err(OutLogError::BadId { .. })
        ));
        fs::write(t.0.join("e1.exit"), b"{").unwrap();
        let e = replay(&t.0, "e1", 0).unwrap_err();
        assert!(matches!(e, OutLogError::CorruptExit { .. }), "{e:?}");
        assert!(e.to_string().starts_with("corrupt exit status /"), "{e}");
    }
}
