//! SPDY/3.1 frames: the 8-byte frame header, the control frames a stream
//! server sees, data frames, and the zlib-compressed name/value header blocks
//! (one compression context per direction for the whole session, primed with
//! the SPDY/3 dictionary).

use super::dictionary::DICTIONARY;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The protocol version in every control frame.
pub const VERSION: u16 = 3;
/// FLAG_FIN on data, SYN_STREAM, SYN_REPLY and HEADERS frames.
pub const FLAG_FIN: u8 = 0x01;
/// Largest frame payload accepted from a client.
pub const MAX_FRAME: usize = 1 << 20;
/// Largest decompressed header block accepted.
const MAX_HEADER_BLOCK: usize = 256 * 1024;

/// RST_STREAM status codes used here.
pub const RST_PROTOCOL_ERROR: u32 = 1;
pub const RST_REFUSED_STREAM: u32 = 3;
pub const RST_CANCEL: u32 = 5;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// Header name/value pairs; names are lowercase on the wire.
pub type Headers = Vec<(String, String)>;

/// A SPDY protocol failure (the session ends).
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Protocol(String),
}

/// One frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    SynStream {
        id: u32,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        id: u32,
        status: u32,
    },
    Settings,
    Ping(u32),
    GoAway {
        last_id: u32,
        status: u32,
    },
    Headers {
        id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        id: u32,
        delta: u32,
    },
    Data {
        id: u32,
        flags: u8,
        data: Vec<u8>,
    },
    /// A control frame type this server ignores.
    Other(u16),
}

fn proto(msg: impl Into<String>) -> SpdyError {
    SpdyError::Protocol(msg.into())
}

fn be32(b: &[u8], at: usize) -> Result<u32, SpdyError> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| proto("frame too short"))
}

/// Inflates header blocks (the receive direction's zlib context).
pub struct HeaderDecoder {
    z: Decompress,
}

impl Default for HeaderDecoder {
    fn default() -> Self {
        Self {
            z: Decompress::new(true),
        }
    }
}

impl HeaderDecoder {
    fn inflate(&mut self, input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(input.len() * 4 + 256);
        let mut pos = 0;
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(4096);
            }
            let before = self.z.total_in();
            match self
                .z
                .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync)
            {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.z
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| proto(format!("header dictionary: {e}")))?;
                }
                Err(e) => return Err(proto(format!("header block: {e}"))),
            }
            pos += (self.z.total_in() - before) as usize;
            if out.len() > MAX_HEADER_BLOCK {
                return Err(proto("header block too large"));
            }
            if pos >= input.len() && out.capacity() > out.len() {
                return Ok(out);
            }
        }
    }

    /// Decodes a compressed name/value block.
    pub fn decode(&mut self, block: &[u8]) -> Result<Headers, SpdyError> {
        let raw = self.inflate(block)?;
        let count = be32(&raw, 0)? as usize;
        let mut at = 4;
        let mut out = Vec::with_capacity(count.min(64));
        let string = |at: &mut usize| -> Result<String, SpdyError> {
            let n = be32(&raw, *at)? as usize;
            let s = raw
                .get(*at + 4..*at + 4 + n)
                .ok_or_else(|| proto("header block truncated"))?;
            *at += 4 + n;
            Ok(String::from_utf8_lossy(s).into_owned())
        };
        for _ in 0..count {
            let name = string(&mut at)?.to_ascii_lowercase();
            let value = string(&mut at)?;
            out.push((name, value));
        }
        Ok(out)
    }
}

/// Deflates header blocks (the send direction's zlib context).
pub struct HeaderEncoder {
    z: Compress,
}

impl Default for HeaderEncoder {
    fn default() -> Self {
        let mut z = Compress::new(Compression::fast(), true);
        // A fresh stream always takes a dictionary; the call cannot fail here.
        let _ = z.set_dictionary(DICTIONARY);
        Self { z }
    }
}

impl HeaderEncoder {
    /// Encodes and compresses a name/value block.
    pub fn encode(&mut self, headers: &[(String, String)]) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (k, v) in headers {
            let k = k.to_ascii_lowercase();
            raw.extend_from_slice(&(k.len() as u32).to_be_bytes());
            raw.extend_from_slice(k.as_bytes());
            raw.extend_from_slice(&(v.len() as u32).to_be_bytes());
            raw.extend_from_slice(v.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut pos = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.z.total_in();
            if self
                .z
                .compress_vec(&raw[pos..], &mut out, FlushCompress::Sync)
                .is_err()
            {
                break;
            }
            pos += (self.z.total_in() - before) as usize;
            if pos >= raw.len() && out.capacity() > out.len() {
                break;
            }
        }
        out
    }
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + payload.len());
    f.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    f.extend_from_slice(&kind.to_be_bytes());
    f.push(flags);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(payload);
    f
}

/// Serialises a frame (header blocks through `enc`).
pub fn encode(frame: &Frame, enc: &mut HeaderEncoder) -> Vec<u8> {
    match frame {
        Frame::SynStream { id, flags, headers } => {
            let mut p = Vec::new();
            p.extend_from_slice(&(id & 0x7fff_ffff).to_be_bytes());
            p.extend_from_slice(&0u32.to_be_bytes());
            p.extend_from_slice(&[0, 0]);
            p.extend(enc.encode(headers));
            control(SYN_STREAM, *flags, &p)
        }
        Frame::SynReply { id, flags, headers } | Frame::Headers { id, flags, headers } => {
            let kind = if matches!(frame, Frame::SynReply { .. }) {
                SYN_REPLY
            } else {
                HEADERS
            };
            let mut p = (id & 0x7fff_ffff).to_be_bytes().to_vec();
            p.extend(enc.encode(headers));
            control(kind, *flags, &p)
        }
        Frame::RstStream { id, status } => {
            let mut p = (id & 0x7fff_ffff).to_be_bytes().to_vec();
            p.extend_from_slice(&status.to_be_bytes());
            control(RST_STREAM, 0, &p)
        }
        Frame::Settings => control(SETTINGS, 0, &0u32.to_be_bytes()),
        Frame::Ping(id) => control(PING, 0, &id.to_be_bytes()),
        Frame::GoAway { last_id, status } => {
            let mut p = (last_id & 0x7fff_ffff).to_be_bytes().to_vec();
            p.extend_from_slice(&status.to_be_bytes());
            control(GOAWAY, 0, &p)
        }
        Frame::WindowUpdate { id, delta } => {
            let mut p = (id & 0x7fff_ffff).to_be_bytes().to_vec();
            p.extend_from_slice(&(delta & 0x7fff_ffff).to_be_bytes());
            control(WINDOW_UPDATE, 0, &p)
        }
        Frame::Data { id, flags, data } => {
            let mut f = Vec::with_capacity(8 + data.len());
            f.extend_from_slice(&(id & 0x7fff_ffff).to_be_bytes());
            f.push(*flags);
            f.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
            f.extend_from_slice(data);
            f
        }
        Frame::Other(_) => Vec::new(),
    }
}

/// Reads one frame; `Ok(None)` at a clean end of the connection.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    dec: &mut HeaderDecoder,
) -> Result<Option<Frame>, SpdyError> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let flags = head[4];
    let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
    if len > MAX_FRAME {
        return Err(proto(format!("frame of {len} bytes is too large")));
    }
    let mut p = vec![0u8; len];
    r.read_exact(&mut p).await?;
    if head[0] & 0x80 == 0 {
        let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        return Ok(Some(Frame::Data { id, flags, data: p }));
    }
    let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
    if version != VERSION {
        return Err(proto(format!("SPDY version {version}, expected 3")));
    }
    let kind = u16::from_be_bytes([head[2], head[3]]);
    let id = |at| be32(&p, at).map(|v| v & 0x7fff_ffff);
    Ok(Some(match kind {
        SYN_STREAM => Frame::SynStream {
            id: id(0)?,
            flags,
            headers: dec.decode(p.get(10..).ok_or_else(|| proto("short SYN_STREAM"))?)?,
        },
        SYN_REPLY | HEADERS => {
            let headers = dec.decode(p.get(4..).ok_or_else(|| proto("short header frame"))?)?;
            if kind == SYN_REPLY {
                Frame::SynReply {
                    id: id(0)?,
                    flags,
                    headers,
                }
            } else {
                Frame::Headers {
                    id: id(0)?,
                    flags,
                    headers,
                }
            }
        }
        RST_STREAM => Frame::RstStream {
            id: id(0)?,
            status: be32(&p, 4)?,
        },
        SETTINGS => Frame::Settings,
        PING => Frame::Ping(be32(&p, 0)?),
        GOAWAY => Frame::GoAway {
            last_id: id(0)?,
            status: be32(&p, 4).unwrap_or(0),
        },
        WINDOW_UPDATE => Frame::WindowUpdate {
            id: id(0)?,
            delta: be32(&p, 4)? & 0x7fff_ffff,
        },
        other => Frame::Other(other),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_the_spdy3_one() {
        // The SPDY/3 dictionary's Adler-32, as zlib puts it in DICTID.
        let mut z = Compress::new(Compression::fast(), true);
        assert_eq!(z.set_dictionary(DICTIONARY).unwrap(), 0xe3c6_a7c2);
        assert_eq!(DICTIONARY.len(), 1423);
    }

    #[tokio::test]
    async fn frames_round_trip_through_one_compression_context() {
        let mut enc = HeaderEncoder::default();
        let mut dec = HeaderDecoder::default();
        let frames = vec![
            Frame::SynStream {
                id: 1,
                flags: 0,
                headers: vec![("streamtype".into(), "error".into())],
            },
            Frame::SynStream {
                id: 3,
                flags: FLAG_FIN,
                headers: vec![
                    ("streamtype".into(), "stdout".into()),
                    ("port".into(), "8080".into()),
                ],
            },
            Frame::SynReply {
                id: 3,
                flags: 0,
                headers: vec![],
            },
            Frame::Data {
                id: 3,
                flags: FLAG_FIN,
                data: b"hello".to_vec(),
            },
            Frame::Ping(7),
            Frame::RstStream { id: 5, status: 5 },
            Frame::WindowUpdate { id: 0, delta: 99 },
            Frame::GoAway {
                last_id: 3,
                status: 0,
            },
        ];
        let mut wire = Vec::new();
        for f in &frames {
            wire.extend(encode(f, &mut enc));
        }
        let mut r = &wire[..];
        for f in &frames {
            assert_eq!(
                read_frame(&mut r, &mut dec).await.unwrap().as_ref(),
                Some(f)
            );
        }
        assert_eq!(read_frame(&mut r, &mut dec).await.unwrap(), None);
    }

    #[tokio::test]
    async fn garbage_is_a_protocol_error_not_a_panic() {
        let mut dec = HeaderDecoder::default();
        let mut wire = vec![0x80, 3, 0, 1, 0, 0, 0, 14];
        wire.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
        let mut r = &wire[..];
        assert!(read_frame(&mut r, &mut dec).await.is_err());
        let big = [0x80, 3, 0, 1, 0, 0xff, 0xff, 0xff];
        let mut r = &big[..];
        assert!(read_frame(&mut r, &mut dec).await.is_err());
    }
}
