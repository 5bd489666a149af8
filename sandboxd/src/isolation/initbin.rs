//! The embedded `sandbox-init` executable, and the sealed memfd every sandbox's init is
//! executed from: nothing inside a sandbox (nor on the host's filesystem) can replace it, and
//! writing through `/proc/1/exe` fails on the seals.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::stat::{fchmod, Mode};

/// The static sandbox-init, built by `build.rs`.
pub static INIT_BINARY: &[u8] = include_bytes!(env!("SANDBOX_INIT_BIN"));

/// Making the memfd failed.
#[derive(Debug, thiserror::Error)]
pub enum InitBinError {
    /// memfd_create.
    #[error("creating the memfd")]
    Create(#[source] nix::Error),
    /// Copying the executable in.
    #[error("writing sandbox-init into the memfd")]
    Write(#[source] std::io::Error),
    /// fchmod or sealing.
    #[error("sealing the memfd")]
    Seal(#[source] nix::Error),
}

/// A read-only, executable, sealed memfd holding sandbox-init.
pub fn sealed_memfd() -> Result<OwnedFd, InitBinError> {
    let fd = memfd_create(
        c"sandbox-init",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(InitBinError::Create)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(INIT_BINARY).map_err(InitBinError::Write)?;
    fchmod(file.as_fd(), Mode::from_bits_truncate(0o555)).map_err(InitBinError::Seal)?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(&file, FcntlArg::F_ADD_SEALS(seals)).map_err(InitBinError::Seal)?;
    Ok(OwnedFd::from(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memfd_is_sealed_and_static() {
        assert_eq!(&INIT_BINARY[..4], b"\x7fELF");
        let fd = sealed_memfd().unwrap();
        let seals = fcntl(&fd, FcntlArg::F_GET_SEALS).unwrap();
        let want = SealFlag::F_SEAL_SEAL
            | SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_WRITE;
        assert_eq!(SealFlag::from_bits_truncate(seals) & want, want);
        // Even its owner, root, cannot change a byte of it any more.
        let path = format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        );
        let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let err = w.write_all(b"\x7fELF-overwritten").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
        assert!(w.set_len(1).is_err());
        // Static: no program interpreter (PT_INTERP) in the ELF headers.
        let out = std::process::Command::new("file")
            .arg("-L")
            .arg(&path)
            .output();
        if let Ok(out) = out {
            let s = String::from_utf8_lossy(&out.stdout);
            assert!(s.contains("static"), "{s}");
        }
    }
}
