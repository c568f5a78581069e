//! Message framing: a 4-byte length word (counting itself), the 24-byte
//! header, then the XDR payload — libvirt's `virnetprotocol.x`.

use std::io::{self, Read, Write};

use thiserror::Error;

use crate::xdr::{Decoder, Encoder, XdrDecode, XdrEncode, XdrError};

/// Maximum size of header plus payload (`VIR_NET_MESSAGE_MAX`); the length
/// word is not counted.
pub const MESSAGE_MAX: usize = 16_777_216;
/// Size of the encoded header (`VIR_NET_MESSAGE_HEADER_MAX`).
pub const HEADER_LEN: usize = 24;
/// Maximum payload size (`VIR_NET_MESSAGE_PAYLOAD_MAX`).
pub const PAYLOAD_MAX: usize = MESSAGE_MAX - HEADER_LEN;
/// Size of the length word (`VIR_NET_MESSAGE_LEN_MAX`).
pub const LEN_WORD: usize = 4;
/// Payload size old peers could receive (`VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX`).
pub const LEGACY_PAYLOAD_MAX: usize = 262_144;
/// Most file descriptors one message may carry (`VIR_NET_MESSAGE_NUM_FDS_MAX`).
pub const NUM_FDS_MAX: u32 = 32;

/// The libvirt remote program (`REMOTE_PROGRAM`).
pub const REMOTE_PROGRAM: u32 = 0x2000_8086;
/// Version of the remote program (`REMOTE_PROTOCOL_VERSION`).
pub const REMOTE_PROTOCOL_VERSION: u32 = 1;
/// The keepalive program (`KEEPALIVE_PROGRAM`, "keep" in ASCII).
pub const KEEPALIVE_PROGRAM: u32 = 0x6b65_6570;
/// Version of the keepalive program.
pub const KEEPALIVE_PROTOCOL_VERSION: u32 = 1;
/// Keepalive procedure: are you there?
pub const KEEPALIVE_PROC_PING: i32 = 1;
/// Keepalive procedure: yes, I am.
pub const KEEPALIVE_PROC_PONG: i32 = 2;

/// `virNetMessageType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum MessageType {
    /// Client to server: a method call.
    Call = 0,
    /// Server to client: reply or error for a call.
    Reply = 1,
    /// Either direction: an asynchronous notification (events, keepalive).
    Message = 2,
    /// Either direction: stream data.
    Stream = 3,
    /// Client to server: a call carrying file descriptors.
    CallWithFds = 4,
    /// Server to client: a reply carrying file descriptors.
    ReplyWithFds = 5,
    /// Either direction: a hole in a sparse stream.
    StreamHole = 6,
}

impl MessageType {
    /// The type for a wire value.
    pub fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::Call,
            1 => Self::Reply,
            2 => Self::Message,
            3 => Self::Stream,
            4 => Self::CallWithFds,
            5 => Self::ReplyWithFds,
            6 => Self::StreamHole,
            _ => return None,
        })
    }
}

/// `virNetMessageStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum MessageStatus {
    /// Success (always for calls and messages).
    Ok = 0,
    /// A `remote_error` follows.
    Error = 1,
    /// More stream data follows.
    Continue = 2,
}

impl MessageStatus {
    /// The status for a wire value.
    pub fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::Ok,
            1 => Self::Error,
            2 => Self::Continue,
            _ => return None,
        })
    }
}

/// `virNetMessageHeader`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Program number.
    pub program: u32,
    /// Program version.
    pub version: u32,
    /// Procedure number within the program.
    pub procedure: i32,
    /// Message type.
    pub kind: MessageType,
    /// Serial: set by the client per call, echoed in the reply, 0 for messages.
    pub serial: u32,
    /// Status.
    pub status: MessageStatus,
}

impl Header {
    /// A remote-program header.
    pub fn remote(procedure: i32, kind: MessageType, serial: u32, status: MessageStatus) -> Self {
        Self {
            program: REMOTE_PROGRAM,
            version: REMOTE_PROTOCOL_VERSION,
            procedure,
            kind,
            serial,
            status,
        }
    }

    /// A keepalive message (PING or PONG).
    pub fn keepalive(procedure: i32) -> Self {
        Self {
            program: KEEPALIVE_PROGRAM,
            version: KEEPALIVE_PROTOCOL_VERSION,
            procedure,
            kind: MessageType::Message,
            serial: 0,
            status: MessageStatus::Ok,
        }
    }

    /// True for a keepalive program message with the given procedure.
    pub fn is_keepalive(&self, procedure: i32) -> bool {
        self.program == KEEPALIVE_PROGRAM && self.procedure == procedure
    }
}

impl XdrEncode for Header {
    fn encode(&self, enc: &mut Encoder) -> Result<(), XdrError> {
        enc.put_u32(self.program);
        enc.put_u32(self.version);
        enc.put_i32(self.procedure);
        enc.put_i32(self.kind as i32);
        enc.put_u32(self.serial);
        enc.put_i32(self.status as i32);
        Ok(())
    }
}

impl XdrDecode for Header {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError> {
        let program = dec.get_u32()?;
        let version = dec.get_u32()?;
        let procedure = dec.get_i32()?;
        let kind = dec.get_i32()?;
        let kind = MessageType::from_i32(kind).ok_or(XdrError::InvalidDiscriminant {
            what: "message type",
            value: i64::from(kind),
        })?;
        let serial = dec.get_u32()?;
        let status = dec.get_i32()?;
        let status = MessageStatus::from_i32(status).ok_or(XdrError::InvalidDiscriminant {
            what: "message status",
            value: i64::from(status),
        })?;
        Ok(Self {
            program,
            version,
            procedure,
            kind,
            serial,
            status,
        })
    }
}

/// One decoded message: its header and the raw payload after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The header.
    pub header: Header,
    /// Payload bytes (arguments, return value, error or event).
    pub body: Vec<u8>,
}

impl Message {
    /// Decodes the payload as `T`.
    pub fn decode_body<T: XdrDecode>(&self) -> Result<T, XdrError> {
        T::from_xdr(&self.body)
    }

    /// Parses a complete frame (length word included).
    pub fn from_frame(frame: &[u8]) -> Result<Self, FrameError> {
        if frame.len() < LEN_WORD {
            return Err(FrameError::TooSmall(frame.len() as u64));
        }
        let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        check_frame_len(len as u64)?;
        if len != frame.len() {
            return Err(FrameError::LengthMismatch {
                declared: len,
                actual: frame.len(),
            });
        }
        Self::from_packet(&frame[LEN_WORD..])
    }

    /// Parses header + payload (the frame without its length word).
    pub fn from_packet(packet: &[u8]) -> Result<Self, FrameError> {
        let mut dec = Decoder::new(packet);
        let header = Header::decode(&mut dec).map_err(FrameError::Header)?;
        Ok(Self {
            header,
            body: dec.rest().to_vec(),
        })
    }

    /// Encodes the message as a complete frame.
    pub fn to_frame(&self) -> Result<Vec<u8>, XdrError> {
        encode_frame_raw(&self.header, &self.body)
    }
}

/// Encodes a complete frame: length word, header, payload `body`.
pub fn encode_frame<T: XdrEncode + ?Sized>(header: &Header, body: &T) -> Result<Vec<u8>, XdrError> {
    let mut enc = Encoder::from_vec(Vec::with_capacity(64));
    enc.put_u32(0);
    header.encode(&mut enc)?;
    body.encode(&mut enc)?;
    finish_frame(enc.into_vec())
}

/// Encodes a frame whose payload is already XDR bytes.
pub fn encode_frame_raw(header: &Header, body: &[u8]) -> Result<Vec<u8>, XdrError> {
    let mut enc = Encoder::from_vec(Vec::with_capacity(LEN_WORD + HEADER_LEN + body.len()));
    enc.put_u32(0);
    header.encode(&mut enc)?;
    let mut buf = enc.into_vec();
    buf.extend_from_slice(body);
    finish_frame(buf)
}

fn finish_frame(mut buf: Vec<u8>) -> Result<Vec<u8>, XdrError> {
    let total = buf.len();
    if total - LEN_WORD > MESSAGE_MAX {
        return Err(XdrError::MessageTooLarge {
            len: total - LEN_WORD,
            max: MESSAGE_MAX,
        });
    }
    // total <= MESSAGE_MAX + 4, which fits in u32.
    let len = (total as u32).to_be_bytes();
    buf[..LEN_WORD].copy_from_slice(&len);
    Ok(buf)
}

/// Framing failures. Any of them means the stream can no longer be trusted
/// and the connection should be closed.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The length word is smaller than a header needs.
    #[error("packet {0} bytes received too small, want at least {min}", min = LEN_WORD + HEADER_LEN)]
    TooSmall(u64),
    /// The length word exceeds the protocol maximum.
    #[error("packet {0} bytes received too large, want at most {max}", max = MESSAGE_MAX + LEN_WORD)]
    TooLarge(u64),
    /// A frame buffer whose length disagrees with its length word.
    #[error("frame length word says {declared} bytes but {actual} were given")]
    LengthMismatch {
        /// Length word value.
        declared: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The header could not be decoded.
    #[error("unable to decode message header: {0}")]
    Header(XdrError),
    /// The peer closed the stream in the middle of a frame.
    #[error("connection closed in the middle of a message")]
    UnexpectedEof,
    /// An I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

fn check_frame_len(len: u64) -> Result<(), FrameError> {
    if len < (LEN_WORD + HEADER_LEN) as u64 {
        return Err(FrameError::TooSmall(len));
    }
    if len > (MESSAGE_MAX + LEN_WORD) as u64 {
        return Err(FrameError::TooLarge(len));
    }
    Ok(())
}

/// What one attempt to read a frame produced.
#[derive(Debug)]
pub enum ReadOutcome {
    /// A complete message.
    Message(Message),
    /// The read timed out (socket read timeout); any partial frame is kept.
    TimedOut,
    /// The peer closed the stream cleanly between frames.
    Eof,
}

/// Reads frames from a byte stream, keeping partial data across read
/// timeouts so a socket with `SO_RCVTIMEO` can be polled.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Bytes the current frame needs in total (length word included), once known.
    want: Option<usize>,
}

impl<R: Read> FrameReader<R> {
    /// Wraps a reader.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            buf: Vec::new(),
            want: None,
        }
    }

    /// The wrapped reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The wrapped reader, mutably (to adjust timeouts between reads).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Reads until a frame is complete, the read times out, or the stream ends.
    pub fn read(&mut self) -> Result<ReadOutcome, FrameError> {
        loop {
            let target = self.want.unwrap_or(LEN_WORD);
            if self.buf.len() >= target {
                if self.want.is_none() {
                    let len =
                        u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
                    check_frame_len(u64::from(len))?;
                    self.want = Some(len as usize);
                    continue;
                }
                let frame = std::mem::take(&mut self.buf);
                self.want = None;
                let msg = Message::from_packet(&frame[LEN_WORD..])?;
                return Ok(ReadOutcome::Message(msg));
            }
            // Grow only to what this frame declared (at most MESSAGE_MAX + 4).
            let start = self.buf.len();
            let chunk = (target - start).min(64 * 1024);
            self.buf.resize(start + chunk, 0);
            match self.inner.read(&mut self.buf[start..]) {
                Ok(0) => {
                    self.buf.truncate(start);
                    if start == 0 {
                        return Ok(ReadOutcome::Eof);
                    }
                    return Err(FrameError::UnexpectedEof);
                }
                Ok(n) => self.buf.truncate(start + n),
                Err(e) => {
                    self.buf.truncate(start);
                    match e.kind() {
                        io::ErrorKind::Interrupted => {}
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                            return Ok(ReadOutcome::TimedOut);
                        }
                        _ => return Err(FrameError::Io(e)),
                    }
                }
            }
        }
    }

    /// Reads the next message, treating a read timeout as an error.
    pub fn read_message(&mut self) -> Result<Option<Message>, FrameError> {
        match self.read()? {
            ReadOutcome::Message(m) => Ok(Some(m)),
            ReadOutcome::Eof => Ok(None),
            ReadOutcome::TimedOut => Err(FrameError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "timed out waiting for a message",
            ))),
        }
    }
}

/// Writes one complete frame.
pub fn write_frame<W: Write + ?Sized>(w: &mut W, frame: &[u8]) -> io::Result<()> {
    w.write_all(frame)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        let h = Header::remote(46, MessageType::Call, 7, MessageStatus::Ok);
        let frame = encode_frame(&h, &"default".to_string()).unwrap();
        assert_eq!(
            frame,
            [
                0, 0, 0, 40, // length incl. itself
                0x20, 0x00, 0x80, 0x86, // program
                0, 0, 0, 1, // version
                0, 0, 0, 46, // NETWORK_LOOKUP_BY_NAME
                0, 0, 0, 0, // CALL
                0, 0, 0, 7, // serial
                0, 0, 0, 0, // OK
                0, 0, 0, 7, b'd', b'e', b'f', b'a', b'u', b'l', b't', 0,
            ]
        );
        let m = Message::from_frame(&frame).unwrap();
        assert_eq!(m.header, h);
        assert_eq!(m.decode_body::<String>().unwrap(), "default");
    }

    #[test]
    fn keepalive_ping_bytes() {
        let frame = encode_frame(&Header::keepalive(KEEPALIVE_PROC_PING), &()).unwrap();
        assert_eq!(
            frame,
            [
                0, 0, 0, 28, b'k', b'e', b'e', b'p', 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0,
                0, 0, 0, 0, 0
            ]
        );
    }

    #[test]
    fn reader_rejects_bad_lengths() {
        let mut r = FrameReader::new(&[0u8, 0, 0, 3][..]);
        assert!(matches!(r.read(), Err(FrameError::TooSmall(3))));
        let mut r = FrameReader::new(&[0xffu8, 0xff, 0xff, 0xff][..]);
        assert!(matches!(r.read(), Err(FrameError::TooLarge(_))));
        let mut r = FrameReader::new(&[0u8, 0, 0, 40, 0, 0][..]);
        assert!(matches!(r.read(), Err(FrameError::UnexpectedEof)));
        let mut r = FrameReader::new(&[][..]);
        assert!(matches!(r.read(), Ok(ReadOutcome::Eof)));
    }

    #[test]
    fn reader_reads_consecutive_frames() {
        let a = encode_frame(&Header::keepalive(KEEPALIVE_PROC_PING), &()).unwrap();
        let b = encode_frame(
            &Header::remote(1, MessageType::Reply, 1, MessageStatus::Ok),
            &5u32,
        )
        .unwrap();
        let all = [a, b].concat();
        let mut r = FrameReader::new(&all[..]);
        let m1 = r.read_message().unwrap().unwrap();
        assert!(m1.header.is_keepalive(KEEPALIVE_PROC_PING));
        let m2 = r.read_message().unwrap().unwrap();
        assert_eq!(m2.decode_body::<u32>().unwrap(), 5);
        assert!(r.read_message().unwrap().is_none());
    }

    #[test]
    fn bad_header_enum_rejected() {
        let mut frame = encode_frame(&Header::keepalive(1), &()).unwrap();
        frame[19] = 9; // message type
        assert!(matches!(
            Message::from_frame(&frame),
            Err(FrameError::Header(_))
        ));
    }

    #[test]
    fn oversize_message_not_encoded() {
        let body = vec![0u8; MESSAGE_MAX];
        assert!(matches!(
            encode_frame_raw(&Header::keepalive(1), &body),
            Err(XdrError::MessageTooLarge { .. })
        ));
    }
}
