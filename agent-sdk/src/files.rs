//! File calls on a long-lived sandbox: whole-file reads and writes in chunks of at most
//! [`MAX_FILE_CHUNK`] bytes, listing, stat, mkdir, remove, and single-file copies between the
//! host and the sandbox.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sandbox_proto::{FileKind, FileStat, Request, Response, MAX_FILE_CHUNK};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::unexpected;
use crate::{Error, Sandbox};

/// Room left in a `file_write` frame for everything but the data, the path and the sandbox id.
const FILE_WRITE_OVERHEAD: usize = 256;
/// Permission bits of directories [`Sandbox::mkdir`] makes.
const DIR_MODE: u32 = 0o755;
/// Permission bits of a downloaded file whose own bits are unknown (a symlink was named).
const FILE_MODE: u32 = 0o644;
/// The permission bits carried across: never set-id or sticky bits.
pub(crate) const PERMISSION_BITS: u32 = 0o777;
/// Owner write: every chunk after the first reopens the file for writing, and file calls have no
/// capabilities to override a read-only mode.
const OWNER_WRITE: u32 = 0o200;

impl Sandbox {
    /// Reads the whole file at `path` (symlinks are followed inside the sandbox), one
    /// `file_read` of at most [`MAX_FILE_CHUNK`] bytes at a time.
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        loop {
            let (data, eof) = self.read_chunk(path, out.len() as u64).await?;
            let empty = data.is_empty();
            out.extend_from_slice(&data);
            if eof {
                return Ok(out);
            }
            if empty {
                return Err(no_progress(path));
            }
        }
    }

    /// Writes `data` as the whole content of the file at `path`, creating it with permission
    /// bits `mode` if it does not exist (an existing file keeps its mode). The first chunk
    /// truncates the file, the others follow at their offsets; a reader may see the file
    /// partly written meanwhile. A file of more than one chunk is created with owner write
    /// added to `mode`: the daemon reopens it for each chunk, without capabilities.
    pub async fn write_file(&self, path: &str, data: &[u8], mode: u32) -> Result<(), Error> {
        if data.is_empty() {
            return self.write_chunk(path, 0, Vec::new(), true, mode).await;
        }
        let chunk = self.write_chunk_len(path);
        let mode = if data.len() > chunk {
            mode | OWNER_WRITE
        } else {
            mode
        };
        let mut offset = 0u64;
        for piece in data.chunks(chunk) {
            self.write_chunk(path, offset, piece.to_vec(), offset == 0, mode)
                .await?;
            offset += piece.len() as u64;
        }
        Ok(())
    }

    /// The entries of the directory at `path`, by name; symlinks among them are reported as
    /// such, not followed.
    pub async fn list(&self, path: &str) -> Result<Vec<FileStat>, Error> {
        let (sandbox_id, path) = (self.id.clone(), path.to_owned());
        match self
            .client
            .call(|id| Request::FileList {
                id,
                sandbox_id,
                path,
            })
            .await?
        {
            Response::FileList { entries, .. } => Ok(entries),
            other => Err(unexpected("file_list", &other)),
        }
    }

    /// The kind, size, mode and owner of `path`; a final symlink is described, not followed.
    pub async fn stat(&self, path: &str) -> Result<FileStat, Error> {
        let (sandbox_id, path) = (self.id.clone(), path.to_owned());
        match self
            .client
            .call(|id| Request::FileStat {
                id,
                sandbox_id,
                path,
            })
            .await?
        {
            Response::FileInfo { stat, .. } => Ok(stat),
            other => Err(unexpected("file_info", &other)),
        }
    }

    /// Makes the directory `path` (mode 0755); with `parents`, missing parents too, and an
    /// existing directory is not an error.
    pub async fn mkdir(&self, path: &str, parents: bool) -> Result<(), Error> {
        self.mkdir_mode(path, parents, DIR_MODE).await
    }

    /// Removes the file, symlink or empty directory at `path`; with `recursive`, a directory
    /// and everything in it (symlinks inside are removed, never followed).
    pub async fn remove(&self, path: &str, recursive: bool) -> Result<(), Error> {
        let (sandbox_id, path) = (self.id.clone(), path.to_owned());
        self.done(|id| Request::FileRemove {
            id,
            sandbox_id,
            path,
            recursive,
        })
        .await
    }

    /// Copies the host file `host` (a symlink named here is followed) to `path` in the
    /// sandbox, streaming it in chunks, with the host file's permission bits for a new file
    /// (plus owner write if it takes more than one chunk, as for [`Sandbox::write_file`]).
    /// Returns the bytes copied.
    pub async fn upload_file(&self, host: impl AsRef<Path>, path: &str) -> Result<u64, Error> {
        let host = host.as_ref();
        let meta = tokio::fs::metadata(host)
            .await
            .map_err(Error::host("stat", host))?;
        if !meta.is_file() {
            let err = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
            return Err(Error::host("read", host)(err));
        }
        self.upload_to(host, path, meta.mode() & PERMISSION_BITS)
            .await
    }

    /// Copies the sandbox file at `path` (symlinks are followed inside the sandbox) to the host
    /// path `host`, streaming it in chunks. An existing file or symlink at `host` is replaced,
    /// never written through. Returns the bytes copied.
    pub async fn download_file(&self, path: &str, host: impl AsRef<Path>) -> Result<u64, Error> {
        let stat = self.stat(path).await?;
        let mode = match stat.kind {
            FileKind::File => stat.mode,
            _ => FILE_MODE,
        };
        self.download_to(path, host.as_ref(), mode).await
    }

    /// Streams the host file `host` to `path`; the first chunk truncates.
    pub(crate) async fn upload_to(
        &self,
        host: &Path,
        path: &str,
        mut mode: u32,
    ) -> Result<u64, Error> {
        let mut file = tokio::fs::File::open(host)
            .await
            .map_err(Error::host("open", host))?;
        let mut buf = vec![0u8; self.write_chunk_len(path)];
        let mut offset = 0u64;
        loop {
            let n = read_full(&mut file, &mut buf)
                .await
                .map_err(Error::host("read", host))?;
            if n == 0 && offset > 0 {
                return Ok(offset);
            }
            if offset == 0 && n == buf.len() {
                // More chunks may follow.
                mode |= OWNER_WRITE;
            }
            self.write_chunk(path, offset, buf[..n].to_vec(), offset == 0, mode)
                .await?;
            offset += n as u64;
            if n < buf.len() {
                return Ok(offset);
            }
        }
    }

    /// Streams `path` to the new host file `host`, made with `mode`'s permission bits.
    pub(crate) async fn download_to(
        &self,
        path: &str,
        host: &Path,
        mode: u32,
    ) -> Result<u64, Error> {
        // The first chunk comes before the host file is touched: a missing source leaves the
        // destination alone.
        let (mut data, mut eof) = self.read_chunk(path, 0).await?;
        let mut file = create_host_file(host, mode).await?;
        let mut offset = 0u64;
        loop {
            file.write_all(&data)
                .await
                .map_err(Error::host("write", host))?;
            offset += data.len() as u64;
            if eof {
                break;
            }
            if data.is_empty() {
                return Err(no_progress(path));
            }
            (data, eof) = self.read_chunk(path, offset).await?;
        }
        file.flush().await.map_err(Error::host("write", host))?;
        Ok(offset)
    }

    /// One `file_read` of up to [`MAX_FILE_CHUNK`] bytes at `offset`: the data and whether it
    /// reached the end of the file.
    async fn read_chunk(&self, path: &str, offset: u64) -> Result<(Vec<u8>, bool), Error> {
        let (sandbox_id, path) = (self.id.clone(), path.to_owned());
        match self
            .client
            .call(|id| Request::FileRead {
                id,
                sandbox_id,
                path,
                offset,
                len: MAX_FILE_CHUNK as u64,
            })
            .await?
        {
            Response::FileData { data, eof, .. } if data.len() <= MAX_FILE_CHUNK => Ok((data, eof)),
            Response::FileData { data, .. } => Err(Error::Protocol(format!(
                "the daemon returned {} bytes for a read of at most {MAX_FILE_CHUNK}",
                data.len()
            ))),
            other => Err(unexpected("file_data", &other)),
        }
    }

    /// One `file_write`.
    async fn write_chunk(
        &self,
        path: &str,
        offset: u64,
        data: Vec<u8>,
        truncate: bool,
        mode: u32,
    ) -> Result<(), Error> {
        let (sandbox_id, path) = (self.id.clone(), path.to_owned());
        self.done(|id| Request::FileWrite {
            id,
            sandbox_id,
            path,
            offset,
            data,
            truncate,
            mode,
        })
        .await
    }

    pub(crate) async fn mkdir_mode(
        &self,
        path: &str,
        parents: bool,
        mode: u32,
    ) -> Result<(), Error> {
        let (sandbox_id, path) = (self.id.clone(), path.to_owned());
        self.done(|id| Request::FileMkdir {
            id,
            sandbox_id,
            path,
            parents,
            mode,
        })
        .await
    }

    /// The most data one `file_write` of `path` may carry: [`MAX_FILE_CHUNK`], less if the
    /// daemon's frames are smaller.
    fn write_chunk_len(&self, path: &str) -> usize {
        let room = self
            .client
            .max_frame()
            .saturating_sub(FILE_WRITE_OVERHEAD + path.len() + self.id.len());
        MAX_FILE_CHUNK.min(room).max(1)
    }
}

/// Creates the host file `path` afresh with `mode`'s permission bits (less the umask). An
/// existing file or symlink there is removed first, so nothing is ever written through a
/// symlink; a directory there is an error.
async fn create_host_file(path: &Path, mode: u32) -> Result<tokio::fs::File, Error> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(meta) if meta.is_dir() => {
            let err = io::Error::new(io::ErrorKind::IsADirectory, "is a directory");
            return Err(Error::host("create", path)(err));
        }
        Ok(_) => tokio::fs::remove_file(path)
            .await
            .map_err(Error::host("remove", path))?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(Error::host("stat", path)(err)),
    }
    tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & PERMISSION_BITS)
        .open(path)
        .await
        .map_err(Error::host("create", path))
}

/// Reads until `buf` is full or the file ends; the number of bytes read.
async fn read_full(file: &mut tokio::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]).await {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn no_progress(path: &str) -> Error {
    Error::Protocol(format!(
        "reading {path}: the daemon returned no data before the end of the file"
    ))
}
