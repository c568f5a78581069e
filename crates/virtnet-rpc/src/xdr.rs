//! XDR (RFC 4506) encoding and decoding as libvirt's remote protocol uses it.
//!
//! Every item is a multiple of four bytes, big endian. Variable-length items
//! (strings, opaque data, arrays) carry a 32-bit length and a maximum that the
//! protocol definition fixes; decoding checks the length against that maximum
//! *and* against the bytes actually left before allocating anything, so a
//! hostile length word can never make the decoder allocate more than the
//! message it was handed.
//!
//! Types implement [`XdrEncode`] / [`XdrDecode`] when their wire form is
//! fully determined by the type (integers, `bool`, fixed opaque `[u8; N]`,
//! `String` as `remote_nonnull_string`, `Option<T>` as an XDR optional
//! pointer). Types whose maximum length depends on the field they sit in
//! (`Vec<T>` arrays, strings with a smaller limit, variable opaque data)
//! implement [`XdrBounded`] and take that maximum at each use.

use thiserror::Error;

/// Maximum length of `remote_nonnull_string` (libvirt's `REMOTE_STRING_MAX`,
/// equal to `VIR_NET_MESSAGE_STRING_MAX`).
pub const STRING_MAX: u32 = 4_194_304;

/// What went wrong while encoding or decoding XDR data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum XdrError {
    /// The input ended before the item was complete.
    #[error("XDR data truncated: need {needed} more bytes, {remaining} left")]
    Truncated {
        /// Bytes the item still needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length word exceeded the maximum the protocol allows for that item.
    #[error("XDR length {len} exceeds the maximum of {max}")]
    TooLong {
        /// Length found (or to be encoded).
        len: u64,
        /// Protocol maximum.
        max: u32,
    },
    /// An XDR `bool` that was neither 0 nor 1.
    #[error("invalid XDR boolean {0}")]
    InvalidBool(u32),
    /// An optional-data flag that was neither 0 nor 1.
    #[error("invalid XDR optional-data flag {0}")]
    InvalidOptional(u32),
    /// A string that is not valid UTF-8.
    #[error("XDR string is not valid UTF-8")]
    InvalidUtf8,
    /// A union or enum discriminant with no defined arm.
    #[error("invalid {what} discriminant {value}")]
    InvalidDiscriminant {
        /// Which union or enum.
        what: &'static str,
        /// The value found.
        value: i64,
    },
    /// An encoded message would exceed the protocol's message size limit.
    #[error("message of {len} bytes exceeds the maximum of {max}")]
    MessageTooLarge {
        /// Encoded size.
        len: usize,
        /// Maximum allowed.
        max: usize,
    },
}

/// Builds XDR data into a growable buffer.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An encoder that appends to `buf`.
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Self { buf }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Consumes the encoder, returning the buffer.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// Writes an unsigned 32-bit integer.
    pub fn put_u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes a signed 32-bit integer.
    pub fn put_i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes an unsigned hyper (64-bit).
    pub fn put_u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes a signed hyper (64-bit).
    pub fn put_i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Writes an IEEE double.
    pub fn put_f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_bits().to_be_bytes());
    }

    /// Writes an XDR boolean.
    pub fn put_bool(&mut self, v: bool) {
        self.put_u32(u32::from(v));
    }

    fn pad(&mut self, len: usize) {
        let pad = (4 - len % 4) % 4;
        self.buf.extend_from_slice(&[0u8; 3][..pad]);
    }

    /// Writes fixed-length opaque data (no length word), padded to 4 bytes.
    pub fn put_fixed_opaque(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        self.pad(data.len());
    }

    /// Writes variable-length opaque data of at most `max` bytes.
    pub fn put_opaque(&mut self, data: &[u8], max: u32) -> Result<(), XdrError> {
        let len = check_len(data.len(), max)?;
        self.put_u32(len);
        self.put_fixed_opaque(data);
        Ok(())
    }

    /// Writes a string of at most `max` bytes.
    pub fn put_string(&mut self, s: &str, max: u32) -> Result<(), XdrError> {
        self.put_opaque(s.as_bytes(), max)
    }

    /// Writes an array of at most `max` elements.
    pub fn put_array<T: XdrEncode>(&mut self, items: &[T], max: u32) -> Result<(), XdrError> {
        let len = check_len(items.len(), max)?;
        self.put_u32(len);
        for item in items {
            item.encode(self)?;
        }
        Ok(())
    }
}

fn check_len(len: usize, max: u32) -> Result<u32, XdrError> {
    match u32::try_from(len) {
        Ok(l) if l <= max => Ok(l),
        _ => Err(XdrError::TooLong {
            len: len as u64,
            max,
        }),
    }
}

/// Reads XDR data from a byte slice. Never panics and never allocates more
/// than the input could hold.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Current offset from the start of the input.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unconsumed rest of the input.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], XdrError> {
        if n > self.remaining() {
            return Err(XdrError::Truncated {
                needed: n,
                remaining: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], XdrError> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// Reads an unsigned 32-bit integer.
    pub fn get_u32(&mut self) -> Result<u32, XdrError> {
        Ok(u32::from_be_bytes(self.take_array()?))
    }

    /// Reads a signed 32-bit integer.
    pub fn get_i32(&mut self) -> Result<i32, XdrError> {
        Ok(i32::from_be_bytes(self.take_array()?))
    }

    /// Reads an unsigned hyper.
    pub fn get_u64(&mut self) -> Result<u64, XdrError> {
        Ok(u64::from_be_bytes(self.take_array()?))
    }

    /// Reads a signed hyper.
    pub fn get_i64(&mut self) -> Result<i64, XdrError> {
        Ok(i64::from_be_bytes(self.take_array()?))
    }

    /// Reads an IEEE double.
    pub fn get_f64(&mut self) -> Result<f64, XdrError> {
        Ok(f64::from_bits(self.get_u64()?))
    }

    /// Reads an XDR boolean (must be 0 or 1).
    pub fn get_bool(&mut self) -> Result<bool, XdrError> {
        match self.get_u32()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(XdrError::InvalidBool(v)),
        }
    }

    /// Reads `len` bytes of fixed opaque data plus padding.
    pub fn get_fixed_opaque(&mut self, len: usize) -> Result<&'a [u8], XdrError> {
        let padded = len
            .checked_add((4 - len % 4) % 4)
            .ok_or(XdrError::Truncated {
                needed: len,
                remaining: self.remaining(),
            })?;
        let s = self.take(padded)?;
        Ok(&s[..len])
    }

    /// Reads variable-length opaque data of at most `max` bytes.
    pub fn get_opaque(&mut self, max: u32) -> Result<&'a [u8], XdrError> {
        let len = self.get_u32()?;
        if len > max {
            return Err(XdrError::TooLong {
                len: u64::from(len),
                max,
            });
        }
        self.get_fixed_opaque(len as usize)
    }

    /// Reads a UTF-8 string of at most `max` bytes.
    pub fn get_string(&mut self, max: u32) -> Result<String, XdrError> {
        let bytes = self.get_opaque(max)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| XdrError::InvalidUtf8)
    }

    /// Reads an array of at most `max` elements.
    pub fn get_array<T: XdrDecode>(&mut self, max: u32) -> Result<Vec<T>, XdrError> {
        let len = self.get_u32()?;
        if len > max {
            return Err(XdrError::TooLong {
                len: u64::from(len),
                max,
            });
        }
        // Every XDR item takes at least four bytes: never reserve more
        // elements than the remaining input could possibly describe.
        let len = len as usize;
        let mut out = Vec::with_capacity(len.min(self.remaining() / 4));
        for _ in 0..len {
            out.push(T::decode(self)?);
        }
        Ok(out)
    }
}

/// A value with a fixed XDR encoding.
pub trait XdrEncode {
    /// Appends the encoding of `self`.
    fn encode(&self, enc: &mut Encoder) -> Result<(), XdrError>;

    /// Encodes `self` into a fresh buffer.
    fn to_xdr(&self) -> Result<Vec<u8>, XdrError> {
        let mut enc = Encoder::new();
        self.encode(&mut enc)?;
        Ok(enc.into_vec())
    }
}

/// A value that can be decoded from XDR.
pub trait XdrDecode: Sized {
    /// Decodes one value, consuming its bytes.
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError>;

    /// Decodes one value from the start of `bytes`. Trailing bytes are
    /// ignored, as libvirt's own decoder does.
    fn from_xdr(bytes: &[u8]) -> Result<Self, XdrError> {
        Self::decode(&mut Decoder::new(bytes))
    }
}

/// A value whose XDR form carries a length limited by the field it sits in
/// (arrays, bounded strings, variable opaque data).
pub trait XdrBounded: Sized {
    /// Appends the encoding of `self`, refusing more than `max` items.
    fn encode_bounded(&self, enc: &mut Encoder, max: u32) -> Result<(), XdrError>;
    /// Decodes a value, refusing more than `max` items.
    fn decode_bounded(dec: &mut Decoder<'_>, max: u32) -> Result<Self, XdrError>;
}

impl XdrEncode for () {
    fn encode(&self, _enc: &mut Encoder) -> Result<(), XdrError> {
        Ok(())
    }
}

impl XdrDecode for () {
    fn decode(_dec: &mut Decoder<'_>) -> Result<Self, XdrError> {
        Ok(())
    }
}

macro_rules! xdr_primitive {
    ($t:ty, $put:ident, $get:ident) => {
        impl XdrEncode for $t {
            fn encode(&self, enc: &mut Encoder) -> Result<(), XdrError> {
                enc.$put(*self);
                Ok(())
            }
        }
        impl XdrDecode for $t {
            fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError> {
                dec.$get()
            }
        }
    };
}

xdr_primitive!(u32, put_u32, get_u32);
xdr_primitive!(i32, put_i32, get_i32);
xdr_primitive!(u64, put_u64, get_u64);
xdr_primitive!(i64, put_i64, get_i64);
xdr_primitive!(f64, put_f64, get_f64);
xdr_primitive!(bool, put_bool, get_bool);

impl<const N: usize> XdrEncode for [u8; N] {
    fn encode(&self, enc: &mut Encoder) -> Result<(), XdrError> {
        enc.put_fixed_opaque(self);
        Ok(())
    }
}

impl<const N: usize> XdrDecode for [u8; N] {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError> {
        let s = dec.get_fixed_opaque(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }
}

/// `String` is `remote_nonnull_string`: at most [`STRING_MAX`] bytes.
impl XdrEncode for String {
    fn encode(&self, enc: &mut Encoder) -> Result<(), XdrError> {
        enc.put_string(self, STRING_MAX)
    }
}

impl XdrDecode for String {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError> {
        dec.get_string(STRING_MAX)
    }
}

impl XdrBounded for String {
    fn encode_bounded(&self, enc: &mut Encoder, max: u32) -> Result<(), XdrError> {
        enc.put_string(self, max)
    }
    fn decode_bounded(dec: &mut Decoder<'_>, max: u32) -> Result<Self, XdrError> {
        dec.get_string(max)
    }
}

/// `Option<T>` is XDR optional data (`T *` in the `.x` files): a boolean
/// followed by the value when present.
impl<T: XdrEncode> XdrEncode for Option<T> {
    fn encode(&self, enc: &mut Encoder) -> Result<(), XdrError> {
        match self {
            None => {
                enc.put_u32(0);
                Ok(())
            }
            Some(v) => {
                enc.put_u32(1);
                v.encode(enc)
            }
        }
    }
}

impl<T: XdrDecode> XdrDecode for Option<T> {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, XdrError> {
        match dec.get_u32()? {
            0 => Ok(None),
            1 => Ok(Some(T::decode(dec)?)),
            v => Err(XdrError::InvalidOptional(v)),
        }
    }
}

impl<T: XdrEncode + XdrDecode> XdrBounded for Vec<T> {
    fn encode_bounded(&self, enc: &mut Encoder, max: u32) -> Result<(), XdrError> {
        enc.put_array(self, max)
    }
    fn decode_bounded(dec: &mut Decoder<'_>, max: u32) -> Result<Self, XdrError> {
        dec.get_array(max)
    }
}

/// Variable-length opaque data (`opaque x<MAX>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Opaque(pub Vec<u8>);

impl XdrBounded for Opaque {
    fn encode_bounded(&self, enc: &mut Encoder, max: u32) -> Result<(), XdrError> {
        enc.put_opaque(&self.0, max)
    }
    fn decode_bounded(dec: &mut Decoder<'_>, max: u32) -> Result<Self, XdrError> {
        Ok(Opaque(dec.get_opaque(max)?.to_vec()))
    }
}

/// Declares a struct whose XDR form is its fields in order.
///
/// Fields whose type implements [`XdrBounded`] give their maximum after the
/// type: `pub names: Vec<String> [max NETWORK_LIST_MAX]`.
#[macro_export]
macro_rules! xdr_struct {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            $(
                $(#[$fm:meta])*
                pub $f:ident : $t:ty $([max $max:expr])?
            ),* $(,)?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[$fm])* pub $f: $t, )*
        }

        impl $crate::xdr::XdrEncode for $name {
            #[allow(unused_variables)]
            fn encode(
                &self,
                enc: &mut $crate::xdr::Encoder,
            ) -> ::std::result::Result<(), $crate::xdr::XdrError> {
                $( $crate::xdr_struct!(@enc enc, &self.$f $(, $max)?); )*
                Ok(())
            }
        }

        impl $crate::xdr::XdrDecode for $name {
            #[allow(unused_variables)]
            fn decode(
                dec: &mut $crate::xdr::Decoder<'_>,
            ) -> ::std::result::Result<Self, $crate::xdr::XdrError> {
                Ok(Self { $( $f: $crate::xdr_struct!(@dec dec, $t $(, $max)?), )* })
            }
        }
    };
    (@enc $enc:ident, $v:expr) => {
        $crate::xdr::XdrEncode::encode($v, $enc)?
    };
    (@enc $enc:ident, $v:expr, $max:expr) => {
        $crate::xdr::XdrBounded::encode_bounded($v, $enc, $max)?
    };
    (@dec $dec:ident, $t:ty) => {
        <$t as $crate::xdr::XdrDecode>::decode($dec)?
    };
    (@dec $dec:ident, $t:ty, $max:expr) => {
        <$t as $crate::xdr::XdrBounded>::decode_bounded($dec, $max)?
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian() {
        let mut e = Encoder::new();
        e.put_u32(0x0102_0304);
        e.put_i32(-2);
        e.put_u64(0x0102_0304_0506_0708);
        e.put_i64(-1);
        assert_eq!(
            e.as_bytes(),
            &[
                1, 2, 3, 4, 0xff, 0xff, 0xff, 0xfe, 1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0xff, 0xff, 0xff,
                0xff, 0xff, 0xff, 0xff
            ]
        );
        let mut d = Decoder::new(e.as_bytes());
        assert_eq!(d.get_u32().unwrap(), 0x0102_0304);
        assert_eq!(d.get_i32().unwrap(), -2);
        assert_eq!(d.get_u64().unwrap(), 0x0102_0304_0506_0708);
        assert_eq!(d.get_i64().unwrap(), -1);
        assert_eq!(d.remaining(), 0);
    }

    #[test]
    fn strings_are_padded() {
        let bytes = "abcde".to_string().to_xdr().unwrap();
        assert_eq!(bytes, [0, 0, 0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0, 0]);
        assert_eq!(String::from_xdr(&bytes).unwrap(), "abcde");
        let empty = String::new().to_xdr().unwrap();
        assert_eq!(empty, [0, 0, 0, 0]);
        let four = "abcd".to_string().to_xdr().unwrap();
        assert_eq!(four.len(), 8);
    }

    #[test]
    fn optional_is_flag_then_value() {
        let none: Option<String> = None;
        assert_eq!(none.to_xdr().unwrap(), [0, 0, 0, 0]);
        let some = Some("x".to_string());
        assert_eq!(
            some.to_xdr().unwrap(),
            [0, 0, 0, 1, 0, 0, 0, 1, b'x', 0, 0, 0]
        );
        assert_eq!(
            Option::<String>::from_xdr(&[0, 0, 0, 2]),
            Err(XdrError::InvalidOptional(2))
        );
    }

    #[test]
    fn bool_rejects_other_values() {
        assert!(bool::from_xdr(&[0, 0, 0, 1]).unwrap());
        assert_eq!(bool::from_xdr(&[0, 0, 0, 7]), Err(XdrError::InvalidBool(7)));
    }

    #[test]
    fn fixed_opaque_uuid() {
        let uuid: [u8; 16] = *b"0123456789abcdef";
        let bytes = uuid.to_xdr().unwrap();
        assert_eq!(bytes.len(), 16);
        assert_eq!(<[u8; 16]>::from_xdr(&bytes).unwrap(), uuid);
        let odd: [u8; 5] = [1, 2, 3, 4, 5];
        assert_eq!(odd.to_xdr().unwrap(), [1, 2, 3, 4, 5, 0, 0, 0]);
    }

    #[test]
    fn truncated_input_is_an_error() {
        assert!(matches!(
            u32::from_xdr(&[0, 0, 1]),
            Err(XdrError::Truncated { .. })
        ));
        // Length says 5 bytes, only 3 follow.
        assert!(matches!(
            String::from_xdr(&[0, 0, 0, 5, b'a', b'b', b'c']),
            Err(XdrError::Truncated { .. })
        ));
        // Padding missing.
        assert!(matches!(
            String::from_xdr(&[0, 0, 0, 1, b'a']),
            Err(XdrError::Truncated { .. })
        ));
    }

    #[test]
    fn oversize_lengths_are_rejected_before_allocation() {
        // A string claiming 4 GiB.
        assert!(matches!(
            String::from_xdr(&[0xff, 0xff, 0xff, 0xff]),
            Err(XdrError::TooLong { .. })
        ));
        // An array claiming the maximum count but with no data.
        let mut d = Decoder::new(&[0, 0, 0x40, 0]);
        assert!(matches!(
            d.get_array::<u32>(16384),
            Err(XdrError::Truncated { .. })
        ));
        let mut d = Decoder::new(&[0, 0, 0x40, 1]);
        assert!(matches!(
            d.get_array::<u32>(16384),
            Err(XdrError::TooLong { .. })
        ));
        // A bounded string over its own limit.
        let mut d = Decoder::new(&[0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(d.get_string(8), Err(XdrError::TooLong { .. })));
    }

    #[test]
    fn encoding_enforces_limits() {
        let mut e = Encoder::new();
        assert!(e.put_string("abcdefghi", 8).is_err());
        assert!(e.put_array(&[1u32, 2, 3], 2).is_err());
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        assert_eq!(
            String::from_xdr(&[0, 0, 0, 1, 0xff, 0, 0, 0]),
            Err(XdrError::InvalidUtf8)
        );
    }

    crate::xdr_struct! {
        /// Test struct.
        pub struct Sample {
            pub a: u32,
            pub names: Vec<String> [max 3],
            pub opt: Option<String>,
            pub flag: bool,
        }
    }

    #[test]
    fn struct_macro_round_trip() {
        let s = Sample {
            a: 7,
            names: vec!["x".into(), "yz".into()],
            opt: None,
            flag: true,
        };
        let bytes = s.to_xdr().unwrap();
        assert_eq!(
            bytes,
            [
                0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 1, b'x', 0, 0, 0, 0, 0, 0, 2, b'y', b'z', 0, 0, 0,
                0, 0, 0, 0, 0, 0, 1
            ]
        );
        assert_eq!(Sample::from_xdr(&bytes).unwrap(), s);
        let too_many = Sample {
            names: vec![String::new(); 4],
            ..s
        };
        assert!(too_many.to_xdr().is_err());
    }
}
