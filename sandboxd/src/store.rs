//! Sandbox state records on disk: one JSON file per sandbox, written atomically, read back on restart.
//!
//! Layout under the daemon's state directory:
//! - `sandboxes/<id>.json`: the record, replaced with write-to-temporary, fsync, rename, fsync-dir,
//!   so a crash leaves either the old record or the new one, never a mix;
//! - `sandboxes/<id>.json.tmp-<random>`: a save in progress; `Store::open` removes leftovers;
//!
//! Every call is blocking file I/O: the daemon calls it through `spawn_blocking`.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The longest sandbox id accepted.
pub const MAX_ID_LEN: usize = 64;

const RECORD_SUFFIX: &str = ".json";
const TMP_MARKER: &str = ".json.tmp-";

/// A step of reading or writing state records failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The id is empty, too long, or has a character outside `[a-z0-9-]`.
    #[error("invalid sandbox id {id:?}")]
    BadId { id: String },
    /// Creating or restricting the records directory failed.
    #[error("create state directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Listing the records directory failed.
    #[error("list state directory {}", path.display())]
    ReadDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Removing a temporary file left by an interrupted save failed.
    #[error("remove stale temporary file {}", path.display())]
    RemoveTmp {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The record could not be turned into JSON.
    #[error("serialize record of sandbox {id}")]
    Serialize {
        id: String,
        #[source]
        source: serde_json::Error,
    },
    /// Creating, writing or syncing the temporary file failed.
    #[error("write temporary record {}", path.display())]
    WriteTmp {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Renaming the temporary file over the record failed.
    #[error("rename {} to {}", from.display(), to.display())]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Syncing the directory after a rename or removal failed.
    #[error("sync state directory {}", path.display())]
    SyncDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading a record failed.
    #[error("read record {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A record exists but is not valid JSON of the expected shape.
    #[error("corrupt record {}", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Removing a record failed.
    #[error("remove record {}", path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Whether `id` is 1..=64 characters of `[a-z0-9-]`, so it is safe as a single path component.
pub fn is_valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn check_id(id: &str) -> Result<(), StoreError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(StoreError::BadId { id: id.to_owned() })
    }
}

/// A suffix for temporary files: `RandomState` is seeded randomly per process, and the counter makes
/// each call differ. Temporary files are opened with `create_new`, so a collision fails, never clobbers.
fn tmp_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}", RandomState::new().hash_one(n))
}

/// The state records of all sandboxes, in `<state-dir>/sandboxes`.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens (creating, mode 0700) `<state_dir>/sandboxes` and removes temporary files left by
    /// saves that a crash interrupted.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        let dir = state_dir.join("sandboxes");
        let create_err = |source| StoreError::CreateDir {
            path: dir.clone(),
            source,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(create_err)?;
        // The mode above only applies to directories this call created; records name every
        // sandbox and its owner, so tighten a directory that already existed too.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(create_err)?;
        let store = Store { dir };
        for name in store.file_names()? {
            if name.contains(TMP_MARKER) {
                let path = store.dir.join(&name);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => return Err(StoreError::RemoveTmp { path, source }),
                }
            }
        }
        Ok(store)
    }

    /// The records directory, `<state-dir>/sandboxes`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}{RECORD_SUFFIX}"))
    }

    /// Writes `record` as the record of `id`, replacing any previous one atomically.
    pub fn save<T: Serialize>(&self, id: &str, record: &T) -> Result<(), StoreError> {
        check_id(id)?;
        let bytes = serde_json::to_vec_pretty(record).map_err(|source| StoreError::Serialize {
            id: id.to_owned(),
            source,
        })?;
        let path = self.record_path(id);
        // `<id>.json.tmp-<random>` until renamed: open() removes leftovers (TMP_MARKER).
        write_atomic(&self.dir, &path, &bytes, true).map_err(|e| match e {
            AtomicWriteError::Write(path, source) => StoreError::WriteTmp { path, source },
            AtomicWriteError::Rename(from, to, source) => StoreError::Rename { from, to, source },
            AtomicWriteError::SyncDir(path, source) => StoreError::SyncDir { path, source },
        })
    }

    /// Reads the record of `id`; `None` when there is none.
    pub fn load<T: DeserializeOwned>(&self, id: &str) -> Result<Option<T>, StoreError> {
        check_id(id)?;
        let path = self.record_path(id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Read { path, source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StoreError::Corrupt { path, source })
    }

    /// Removes the record of `id`; a record that does not exist is not an error.
    pub fn remove(&self, id: &str) -> Result<(), StoreError> {
        check_id(id)?;
        let path = self.record_path(id);
        match fs::remove_file(&path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Remove { path, source }),
        }
    }

    /// The ids that have a record, sorted. Temporary and foreign files are skipped.
    pub fn ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = self
            .file_names()?
            .into_iter()
            .filter_map(|name| name.strip_suffix(RECORD_SUFFIX).map(str::to_owned))
            .filter(|id| is_valid_id(id))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The names of the plain files in the records directory that are valid UTF-8.
    fn file_names(&self) -> Result<Vec<String>, StoreError> {
        let read_err = |source| StoreError::ReadDir {
            path: self.dir.clone(),
            source,
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            if !entry.file_type().map_err(read_err)?.is_file() {
                continue;
            }
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn sync_dir(&self) -> Result<(), StoreError> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| StoreError::SyncDir {
                path: self.dir.clone(),
                source,
            })
    }
}

/// Creates `path` (it must not exist), writes `bytes` and syncs them to disk.
/// A step of [`write_atomic`] that failed.
#[derive(Debug)]
pub(crate) enum AtomicWriteError {
    /// Writing (or syncing) the temporary file, which is removed again.
    Write(PathBuf, io::Error),
    /// Renaming it over the target.
    Rename(PathBuf, PathBuf, io::Error),
    /// Syncing the directory.
    SyncDir(PathBuf, io::Error),
}

/// Writes `bytes` to `path` atomically: a new `<path>.tmp-<random>` (mode 0600) in the same
/// directory `dir`, renamed over `path`; with `sync`, the file is fsync'd before the rename and
/// `dir` after it, so the write survives a crash. A failed step removes the temporary file.
pub(crate) fn write_atomic(
    dir: &Path,
    path: &Path,
    bytes: &[u8],
    sync: bool,
) -> Result<(), AtomicWriteError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", tmp_suffix()));
    let tmp = PathBuf::from(tmp);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)
                .and_then(|()| if sync { f.sync_all() } else { Ok(()) })
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(AtomicWriteError::Write(tmp, e));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(AtomicWriteError::Rename(tmp, path.to_path_buf(), e));
    }
    if sync {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| AtomicWriteError::SyncDir(dir.to_path_buf(), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use serde::{Deserialize, Serialize};

    use super::*;

    /// A directory under the system temporary directory, removed on drop.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new() -> TestDir {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!(
                "sandboxd-store-test-{}-{n}-{}",
                std::process::id(),
                tmp_suffix()
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

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Rec {
        owner: u32,
        status: String,
    }

    fn rec(owner: u32, status: &str) -> Rec {
        Rec {
            owner,
            status: status.to_owned(),
        }
    }

    #[test]
    fn save_load_overwrite_remove() {
        let t = TestDir::new();
        let s = Store::open(&t.0).unwrap();
        assert_eq!(s.load::<Rec>("a1").unwrap(), None);
        s.save("a1", &rec(1000, "running")).unwrap();
        assert_eq!(s.load::<Rec>("a1").unwrap(), Some(rec(1000, "running")));
        s.save("a1", &rec(1000, "stopped")).unwrap();
        assert_eq!(s.load::<Rec>("a1").unwrap(), Some(rec(1000, "stopped")));
        s.remove("a1").unwrap();
        assert_eq!(s.load::<Rec>("a1").unwrap(), None);
        // Removing what is not there is fine.
        s.remove("a1").unwrap();
        // Only the records directory is left, with no temporary files.
        assert!(fs::read_dir(s.dir()).unwrap().next().is_none());
    }

    #[test]
    fn open_creates_private_dir_and_reopens() {
        let t = TestDir::new();
        let state = t.0.join("state");
        let s = Store::open(&state).unwrap();
        let mode = fs::metadata(s.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        s.save("x", &rec(1, "a")).unwrap();
        let mode = fs::metadata(s.dir().join("x.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // A lax existing directory is tightened, and records survive reopening.
        fs::set_permissions(s.dir(), fs::Permissions::from_mode(0o755)).unwrap();
        let s = Store::open(&state).unwrap();
        let mode = fs::metadata(s.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(s.load::<Rec>("x").unwrap(), Some(rec(1, "a")));
    }

    #[test]
    fn ids_are_sorted_and_skip_other_files() {
        let t = TestDir::new();
        let s = Store::open(&t.0).unwrap();
        for id in ["c3", "a1", "b-2"] {
            s.save(id, &rec(0, id)).unwrap();
        }
        fs::write(s.dir().join("notes.txt"), b"x").unwrap();
        fs::write(s.dir().join("UPPER.json"), b"{}").unwrap();
        fs::write(s.dir().join("d4.json.tmp-0123"), b"{").unwrap();
        fs::create_dir(s.dir().join("e5.json")).unwrap();
        assert_eq!(s.ids().unwrap(), ["a1", "b-2", "c3"]);
    }

    #[test]
    fn corrupt_record_is_an_error() {
        let t = TestDir::new();
        let s = Store::open(&t.0).unwrap();
        fs::write(s.dir().join("bad.json"), b"{\"owner\": 1, \"sta").unwrap();
        match s.load::<Rec>("bad") {
            Err(StoreError::Corrupt { path, .. }) => assert!(path.ends_with("bad.json")),
            other => panic!("expected Corrupt, got {other:?}"),
        }
        // Valid JSON of the wrong shape is corrupt too.
        fs::write(s.dir().join("shape.json"), b"[1, 2]").unwrap();
        assert!(matches!(
            s.load::<Rec>("shape"),
            Err(StoreError::Corrupt { .. })
        ));
        // The message names the step and the path; the JSON error is the source.
        let e = s.load::<Rec>("bad").unwrap_err();
        assert!(e.to_string().starts_with("corrupt record /"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn bad_ids_never_touch_the_filesystem() {
        let t = TestDir::new();
        let s = Store::open(&t.0).unwrap();
        let long = "a".repeat(MAX_ID_LEN + 1);
        for id in [
            "",
            "../x",
            "a/b",
            "A",
            "a.b",
            "a b",
            ".",
            "..",
            long.as_str(),
        ] {
            assert!(
                matches!(s.save(id, &rec(0, "x")), Err(StoreError::BadId { .. })),
                "{id:?}"
            );
            assert!(matches!(s.load::<Rec>(id), Err(StoreError::BadId { .. })));
            assert!(matches!(s.remove(id), Err(StoreError::BadId { .. })));
        }
        assert!(fs::read_dir(s.dir()).unwrap().next().is_none());
        assert!(!t.0.join("x.json").exists());
        let max = "a".repeat(MAX_ID_LEN);
        s.save(&max, &rec(0, "x")).unwrap();
        assert_eq!(s.ids().unwrap(), [max]);
    }

    #[test]
    fn leftover_tmp_files_are_removed_and_never_read() {
        let t = TestDir::new();
        let s = Store::open(&t.0).unwrap();
        s.save("a1", &rec(1, "old")).unwrap();
        // A crash after writing the temporary file but before the rename leaves this behind.
        let tmp = s.dir().join("a1.json.tmp-deadbeef");
        fs::write(&tmp, serde_json::to_vec(&rec(1, "new")).unwrap()).unwrap();
        // And a crash mid-write leaves a torn one for a sandbox with no record yet.
        let torn = s.dir().join("b2.json.tmp-0001");
        fs::write(&torn, b"{\"own").unwrap();
        assert_eq!(s.ids().unwrap(), ["a1"]);

        let s = Store::open(&t.0).unwrap();
        assert!(!tmp.exists());
        assert!(!torn.exists());
        assert_eq!(s.ids().unwrap(), ["a1"]);
        assert_eq!(s.load::<Rec>("a1").unwrap(), Some(rec(1, "old")));
        assert_eq!(s.load::<Rec>("b2").unwrap(), None);
    }

    #[test]
    fn tmp_suffixes_differ() {
        let a: std::collections::HashSet<String> = (0..1000).map(|_| tmp_suffix()).collect();
        assert_eq!(a.len(), 1000);
    }
}
