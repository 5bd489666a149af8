//! Frames: a 4-byte big-endian body length, then a msgpack body.
//!
//! The length is checked against the caller's limit before anything is allocated, so a hostile
//! peer cannot make either side reserve memory by announcing a large frame.

use std::io::Read;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::msg::{Request, Response};

/// Bytes of the length header.
pub const HEADER_LEN: usize = 4;

/// Reading a frame failed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The header announced more than the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The peer closed the connection inside a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The transport failed.
    #[error("reading a frame")]
    Io(#[source] std::io::Error),
}

/// A frame body is not a valid message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The body is valid msgpack with a `type` this side does not know.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// The body is not msgpack, or a field is missing or has the wrong type.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// A message could not be encoded (only for types msgpack cannot represent).
#[derive(Debug, thiserror::Error)]
#[error("encoding a message")]
pub struct EncodeError(#[source] rmp_serde::encode::Error);

/// Encodes `msg` as a whole frame: header and body.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, EncodeError> {
    let mut buf = vec![0u8; HEADER_LEN];
    rmp_serde::encode::write_named(&mut buf, msg).map_err(EncodeError)?;
    let len = u32::try_from(buf.len() - HEADER_LEN)
        .map_err(|_| EncodeError(rmp_serde::encode::Error::Syntax("frame over 4 GiB".into())))?;
    buf[..HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

/// Encodes any serde value as a msgpack body without a header (for the daemon's internal
/// messages, such as the spawn plan it hands to its helper).
pub fn pack<T: Serialize>(value: &T) -> Result<Vec<u8>, EncodeError> {
    rmp_serde::to_vec_named(value).map_err(EncodeError)
}

/// Decodes a body made by [`pack`].
pub fn unpack<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    rmp_serde::from_slice(body).map_err(|e| DecodeError::Malformed(e.to_string()))
}

/// Only the `id` key of a message, to address the error about a malformed request.
#[derive(Deserialize)]
struct IdProbe {
    id: u64,
}

/// The `id` of a message whose body did not decode as a whole, if it has a readable one, so
/// that the error can name the request it is about.
pub fn peek_id(body: &[u8]) -> Option<u64> {
    rmp_serde::from_slice::<IdProbe>(body).ok().map(|p| p.id)
}

/// Only the `type` key of a message, to tell an unknown type from a malformed message.
#[derive(Deserialize)]
struct TypeProbe {
    #[serde(rename = "type")]
    kind: String,
}

fn decode_typed<T: DeserializeOwned>(body: &[u8], known: &[&str]) -> Result<T, DecodeError> {
    match rmp_serde::from_slice::<T>(body) {
        Ok(msg) => Ok(msg),
        Err(err) => match rmp_serde::from_slice::<TypeProbe>(body) {
            Ok(probe) if !known.contains(&probe.kind.as_str()) => {
                Err(DecodeError::UnknownType(probe.kind))
            }
            _ => Err(DecodeError::Malformed(err.to_string())),
        },
    }
}

/// The `type` names of [`Request`].
pub const REQUEST_TYPES: &[&str] = &[
    "hello",
    "run",
    "stdin",
    "close_stdin",
    "credit",
    "kill",
    "status",
    "create",
    "exec",
    "attach",
    "resize",
    "signal",
    "pause",
    "resume",
    "destroy",
    "export_bundle",
    "policy",
    "list",
    "inspect",
    "stats",
    "file_read",
    "file_write",
    "file_list",
    "file_stat",
    "file_mkdir",
    "file_remove",
];
/// The `type` names of [`Response`].
pub const RESPONSE_TYPES: &[&str] = &[
    "welcome",
    "started",
    "output",
    "stdin_credit",
    "exit",
    "status",
    "error",
    "created",
    "done",
    "bundle",
    "policy",
    "sandboxes",
    "sandbox",
    "stats",
    "file_data",
    "file_list",
    "file_info",
];

/// Decodes a request body (the frame without its header).
pub fn decode_request(body: &[u8]) -> Result<Request, DecodeError> {
    decode_typed(body, REQUEST_TYPES)
}

/// Decodes a response body (the frame without its header).
pub fn decode_response(body: &[u8]) -> Result<Response, DecodeError> {
    decode_typed(body, RESPONSE_TYPES)
}

fn check_len(header: [u8; HEADER_LEN], max: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

/// Reads one frame body from a blocking reader. `Ok(None)` is a clean end of stream between
/// frames.
pub fn read_frame<R: Read>(r: &mut R, max: usize) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let len = check_len(header, max)?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
        _ => FrameError::Io(e),
    })?;
    Ok(Some(body))
}

/// Async frame reading and writing over tokio streams.
#[cfg(feature = "tokio")]
mod async_io {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    use super::{check_len, FrameError, HEADER_LEN};

    /// Reads one frame body. `Ok(None)` is a clean end of stream between frames.
    pub async fn read_frame_async<R: AsyncRead + Unpin>(
        r: &mut R,
        max: usize,
    ) -> Result<Option<Vec<u8>>, FrameError> {
        let mut header = [0u8; HEADER_LEN];
        let mut got = 0;
        while got < HEADER_LEN {
            match r.read(&mut header[got..]).await {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(FrameError::Truncated),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(FrameError::Io(e)),
            }
        }
        let len = check_len(header, max)?;
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(e),
        })?;
        Ok(Some(body))
    }

    /// Writes one whole frame (as made by [`super::encode`]) and flushes.
    pub async fn write_frame_async<W: AsyncWrite + Unpin>(
        w: &mut W,
        frame: &[u8],
    ) -> std::io::Result<()> {
        w.write_all(frame).await?;
        w.flush().await
    }
}

#[cfg(feature = "tokio")]
pub use async_io::{read_frame_async, write_frame_async};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::*;

    fn roundtrip_req(req: Request) {
        let frame = encode(&req).unwrap();
        let body = read_frame(&mut &frame[..], MAX_FRAME_LEN).unwrap().unwrap();
        assert_eq!(decode_request(&body).unwrap(), req);
    }

    #[test]
    fn requests_roundtrip() {
        roundtrip_req(Request::Hello {
            protocol: PROTOCOL_VERSION,
            client: "t".into(),
        });
        roundtrip_req(Request::Run {
            id: 7,
            spec: RunSpec {
                argv: vec!["sh".into(), "-c".into(), "echo hi".into()],
                env: vec!["A=b".into()],
                rootfs: Rootfs::Path {
                    path: "/srv/root".into(),
                },
                mounts: vec![Mount {
                    host: "/h".into(),
                    sandbox: "/s".into(),
                    read_only: true,
                }],
                limits: Limits {
                    memory: Some(1 << 26),
                    cpus: Some(0.5),
                    ..Default::default()
                },
                ..Default::default()
            },
        });
        roundtrip_req(Request::Stdin {
            id: 1,
            data: vec![0, 159, 146, 150],
        });
        roundtrip_req(Request::Credit {
            id: 1,
            stream: Stream::Stderr,
            bytes: 10,
        });
        roundtrip_req(Request::Kill { id: 1, signal: 9 });
    }

    #[test]
    fn responses_roundtrip() {
        for resp in [
            Response::Output {
                id: 3,
                stream: Stream::Stdout,
                data: b"x\n".to_vec(),
                seq: Some(7),
            },
            Response::Started {
                id: 3,
                sandbox_id: "s".into(),
                exec_id: Some(2),
            },
            Response::FileData {
                id: 4,
                data: vec![0, 1],
                eof: true,
            },
            Response::Exit {
                id: 3,
                status: ExitStatus {
                    code: Some(0),
                    duration_ms: 5,
                    ..Default::default()
                },
            },
            Response::Error {
                id: None,
                code: ErrorCode::BadFrame,
                message: "m".into(),
            },
        ] {
            let frame = encode(&resp).unwrap();
            assert_eq!(decode_response(&frame[HEADER_LEN..]).unwrap(), resp);
        }
    }

    #[test]
    fn output_data_is_msgpack_bin() {
        let frame = encode(&Response::Output {
            id: 1,
            stream: Stream::Stdout,
            data: vec![1, 2],
            seq: None,
        })
        .unwrap();
        // bin 8 marker (0xc4), length 2, the bytes: what a Python client reads as `bytes`.
        assert!(frame.windows(4).any(|w| w == [0xc4, 2, 1, 2]));
    }

    #[test]
    fn oversized_header_is_refused_before_allocating() {
        let frame = (u32::MAX).to_be_bytes();
        match read_frame(&mut &frame[..], MAX_FRAME_LEN) {
            Err(FrameError::TooLarge { len, max }) => {
                assert_eq!(len, u32::MAX as usize);
                assert_eq!(max, MAX_FRAME_LEN);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn truncated_frames() {
        assert!(matches!(
            read_frame(&mut &[0u8, 0][..], 100),
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            read_frame(&mut &[0u8, 0, 0, 9, 1][..], 100),
            Err(FrameError::Truncated)
        ));
        assert!(read_frame(&mut &[][..], 100).unwrap().is_none());
    }

    #[test]
    fn unknown_type_is_told_apart_from_garbage() {
        #[derive(serde::Serialize)]
        struct Odd {
            #[serde(rename = "type")]
            kind: &'static str,
            id: u64,
        }
        let body = pack(&Odd {
            kind: "launch_missiles",
            id: 1,
        })
        .unwrap();
        assert!(
            matches!(decode_request(&body), Err(DecodeError::UnknownType(t)) if t == "launch_missiles")
        );
        let body = pack(&Odd { kind: "run", id: 1 }).unwrap();
        assert!(matches!(
            decode_request(&body),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode_request(b"\xff\x00garbage"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode_request(b""),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn the_id_of_a_malformed_request_is_still_found() {
        #[derive(serde::Serialize)]
        struct BadRun {
            #[serde(rename = "type")]
            kind: &'static str,
            id: u64,
            spec: u8,
        }
        let body = pack(&BadRun {
            kind: "run",
            id: 41,
            spec: 1,
        })
        .unwrap();
        assert!(decode_request(&body).is_err());
        assert_eq!(peek_id(&body), Some(41));
        assert_eq!(peek_id(b"\xc1garbage"), None);
    }

    #[test]
    fn missing_optional_fields_take_defaults() {
        #[derive(serde::Serialize)]
        struct MinimalRun {
            #[serde(rename = "type")]
            kind: &'static str,
            id: u64,
            spec: MinimalSpec,
        }
        #[derive(serde::Serialize)]
        struct MinimalSpec {
            argv: Vec<&'static str>,
        }
        let body = pack(&MinimalRun {
            kind: "run",
            id: 2,
            spec: MinimalSpec { argv: vec!["true"] },
        })
        .unwrap();
        match decode_request(&body).unwrap() {
            Request::Run { id: 2, spec } => {
                assert_eq!(spec.argv, vec!["true"]);
                assert_eq!(spec.rootfs, Rootfs::Policy);
                assert!(!spec.stdin);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shell_codes() {
        let s = |code, signal, timed_out, oom_killed| {
            ExitStatus {
                code,
                signal,
                timed_out,
                oom_killed,
                ..Default::default()
            }
            .shell_code()
        };
        assert_eq!(s(Some(3), None, false, false), 3);
        assert_eq!(s(None, Some(15), false, false), 143);
        assert_eq!(s(None, Some(9), true, false), 124);
        assert_eq!(s(None, Some(9), false, true), 137);
    }
}
