//! The attribute (TLV) layer: walking, decoding and encoding netlink attributes.
//!
//! Contract:
//! - [`AttrIter`] walks the attributes of one container (a message body or a nested attribute),
//!   laid out as netlink-packet-core's [`NlaBuffer`] describes. Every length is checked before it
//!   is used, so a walk over any bytes yields attributes or one typed [`DecodeError`], then
//!   stops; it never panics and never allocates. A [`Nest`]'s walk goes on past a child whose
//!   value does not decode (its place is known), and stops at a framing error.
//! - [`AttrValue`] is how one attribute's value is decoded from and encoded to bytes. Integers
//!   are big-endian, as everywhere in ctnetlink; fixed-size values of the wrong size are errors.
//! - [`AttrSet`] is a family of attributes (`CTA_*`, `CTA_TUPLE_*`…): an enum with a variant per
//!   known attribute and `Other(RawAttr)` for the rest. [`Nest`] is a lazily decoded nested
//!   attribute: a borrowed view whose children are decoded as they are iterated.
//! - [`AttrWriter`] appends attributes to a `Vec<u8>`: headers, values, padding, nesting.
//!   Re-encoding a decoded [`AttrSet`] value gives back the bytes it came from (children whose
//!   values do not decode are copied as they came); the golden tests hold it to that.

use std::fmt;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{
    NLA_F_NESTED, NLA_F_NET_BYTEORDER, NLA_HEADER_SIZE, NLA_TYPE_MASK, NlaBuffer,
};

use crate::error::{DecodeError, EmitError};

/// Rounds an attribute or message length up to the 4-byte netlink alignment.
pub(crate) const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// One attribute as it stands in the bytes: its type field (flags included) and its value.
/// This is what unknown attributes are kept as.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawAttr<'a> {
    type_field: u16,
    value: &'a [u8],
}

impl<'a> RawAttr<'a> {
    /// An attribute of type `type_field` (which may carry `NLA_F_NESTED`/`NLA_F_NET_BYTEORDER`).
    pub fn new(type_field: u16, value: &'a [u8]) -> Self {
        Self { type_field, value }
    }

    /// The attribute type without the flag bits.
    pub fn kind(&self) -> u16 {
        self.type_field & NLA_TYPE_MASK
    }

    /// The whole type field, flags included.
    pub fn type_field(&self) -> u16 {
        self.type_field
    }

    /// Whether the sender marked it nested (`NLA_F_NESTED`).
    pub fn is_nested(&self) -> bool {
        self.type_field & NLA_F_NESTED != 0
    }

    /// The value bytes (without header or padding).
    pub fn value(&self) -> &'a [u8] {
        self.value
    }
}

impl fmt::Debug for RawAttr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawAttr {{ kind: {}, nested: {}, value: [", self.kind(), self.is_nested())?;
        for (i, byte) in self.value.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{byte:02x}")?;
        }
        write!(f, "] }}")
    }
}

/// Walks the attributes of one container. Yields each attribute, or one error and then `None`.
#[derive(Clone, Debug)]
pub struct AttrIter<'a> {
    bytes: &'a [u8],
    offset: usize,
    within: &'static str,
}

impl<'a> AttrIter<'a> {
    /// Walks `bytes`; `within` names the container in errors.
    pub fn new(bytes: &'a [u8], within: &'static str) -> Self {
        Self { bytes, offset: 0, within }
    }

    /// Where the next attribute starts in the container.
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// The attribute that starts at `offset` (one [`AttrIter::offset`] gave), walked again.
    pub(crate) fn at(&self, offset: usize) -> Option<Result<RawAttr<'a>, DecodeError>> {
        Self { offset, ..self.clone() }.next()
    }

    #[cold]
    fn fail(&mut self, error: DecodeError) -> Option<Result<RawAttr<'a>, DecodeError>> {
        self.offset = self.bytes.len();
        Some(Err(error))
    }
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = Result<RawAttr<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.bytes.get(self.offset..).filter(|rest| !rest.is_empty())?;
        // The header is read in place rather than through `NlaBuffer`'s accessors, which check
        // the slice again on every field: this loop runs about 30 times per event.
        let Some(([len_lo, len_hi, type_lo, type_hi], _)) =
            rest.split_first_chunk::<NLA_HEADER_SIZE>()
        else {
            let error = DecodeError::AttrTruncated {
                within: self.within,
                offset: self.offset,
                available: rest.len(),
            };
            return self.fail(error);
        };
        let length = u16::from_ne_bytes([*len_lo, *len_hi]);
        let Some(value) = rest.get(NLA_HEADER_SIZE..usize::from(length)) else {
            let error = DecodeError::AttrLength {
                within: self.within,
                offset: self.offset,
                length,
                available: rest.len(),
            };
            return self.fail(error);
        };
        self.offset += align4(usize::from(length));
        Some(Ok(RawAttr { type_field: u16::from_ne_bytes([*type_lo, *type_hi]), value }))
    }
}

/// The value of one attribute: how it decodes from and encodes to its bytes.
pub trait AttrValue<'a>: Sized {
    /// Whether attributes carrying this value are nested (the kernel sets `NLA_F_NESTED` on them).
    const NESTED: bool = false;

    /// Decodes the value bytes of attribute `attr` (its kernel name, for errors).
    fn decode(bytes: &'a [u8], attr: &'static str) -> Result<Self, DecodeError>;

    /// Appends the value bytes (the writer adds header and padding).
    fn encode(&self, out: &mut AttrWriter<'_>) -> Result<(), EmitError>;
}

/// Decodes exactly `N` bytes, or says which attribute had which size.
pub(crate) fn fixed<const N: usize>(
    bytes: &[u8],
    attr: &'static str,
) -> Result<[u8; N], DecodeError> {
    <[u8; N]>::try_from(bytes).map_err(|_| DecodeError::ValueLength {
        attr,
        expected: N,
        actual: bytes.len(),
    })
}

macro_rules! big_endian_value {
    ($($ty:ty),*) => {$(
        impl<'a> AttrValue<'a> for $ty {
            #[inline]
            fn decode(bytes: &'a [u8], attr: &'static str) -> Result<Self, DecodeError> {
                fixed(bytes, attr).map(<$ty>::from_be_bytes)
            }

            fn encode(&self, out: &mut AttrWriter<'_>) -> Result<(), EmitError> {
                out.extend(&self.to_be_bytes());
                Ok(())
            }
        }
    )*};
}

big_endian_value!(u8, u16, u32, u64, u128);

macro_rules! address_value {
    ($($ty:ty = $len:literal),*) => {$(
        impl<'a> AttrValue<'a> for $ty {
            #[inline]
            fn decode(bytes: &'a [u8], attr: &'static str) -> Result<Self, DecodeError> {
                fixed::<$len>(bytes, attr).map(<$ty>::from)
            }

            fn encode(&self, out: &mut AttrWriter<'_>) -> Result<(), EmitError> {
                out.extend(&self.octets());
                Ok(())
            }
        }
    )*};
}

address_value!(Ipv4Addr = 4, Ipv6Addr = 16);

/// Binary values of any length (helper names with their NUL, labels): kept as they came.
impl<'a> AttrValue<'a> for &'a [u8] {
    #[inline]
    fn decode(bytes: &'a [u8], _attr: &'static str) -> Result<Self, DecodeError> {
        Ok(bytes)
    }

    fn encode(&self, out: &mut AttrWriter<'_>) -> Result<(), EmitError> {
        out.extend(self);
        Ok(())
    }
}

/// A family of attributes that can appear in one container: decode one, encode one.
pub trait AttrSet<'a>: Sized {
    /// Decodes one attribute; kinds this crate does not model decode to `Other`.
    fn decode(raw: RawAttr<'a>) -> Result<Self, DecodeError>;

    /// Appends the attribute, header and padding included.
    fn encode(&self, out: &mut AttrWriter<'_>) -> Result<(), EmitError>;
}

/// A nested attribute, decoded lazily: a view over its value bytes whose children (of family
/// `T`) are decoded while iterating. Nothing is decoded, checked or allocated until then.
pub struct Nest<'a, T> {
    bytes: &'a [u8],
    name: &'static str,
    children: PhantomData<fn() -> T>,
}

impl<'a, T: AttrSet<'a>> Nest<'a, T> {
    /// A view over the value bytes of nested attribute `name`.
    pub fn new(bytes: &'a [u8], name: &'static str) -> Self {
        Self { bytes, name, children: PhantomData }
    }

    /// The children, decoded one by one.
    pub fn iter(&self) -> NestIter<'a, T> {
        NestIter { attrs: AttrIter::new(self.bytes, self.name), children: PhantomData }
    }

    /// The value bytes of the nested attribute.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The kernel name of the nested attribute.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl<'a, T: AttrSet<'a>> IntoIterator for Nest<'a, T> {
    type Item = Result<T, DecodeError>;
    type IntoIter = NestIter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T> Clone for Nest<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Nest<'_, T> {}

impl<T> PartialEq for Nest<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl<T> Eq for Nest<'_, T> {}

impl<'a, T: AttrSet<'a> + fmt::Debug> fmt::Debug for Nest<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a, T: AttrSet<'a>> AttrValue<'a> for Nest<'a, T> {
    const NESTED: bool = true;

    #[inline]
    fn decode(bytes: &'a [u8], attr: &'static str) -> Result<Self, DecodeError> {
        Ok(Self::new(bytes, attr))
    }

    /// Re-encodes every child; one whose value does not decode is written as it came.
    fn encode(&self, out: &mut AttrWriter<'_>) -> Result<(), EmitError> {
        for child in AttrIter::new(self.bytes, self.name) {
            let child = child?;
            match T::decode(child) {
                Ok(decoded) => decoded.encode(out)?,
                Err(_) => out.put_raw(&child),
            }
        }
        Ok(())
    }
}

/// Iterator over the decoded children of a [`Nest`]. A framing error (a length that does not
/// fit) ends the walk, since what follows cannot be found; a value that does not decode is an
/// error for that child only, and the walk goes on.
#[derive(Clone, Debug)]
pub struct NestIter<'a, T> {
    attrs: AttrIter<'a>,
    children: PhantomData<fn() -> T>,
}

impl<'a, T: AttrSet<'a>> Iterator for NestIter<'a, T> {
    type Item = Result<T, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        Some(self.attrs.next()?.and_then(T::decode))
    }
}

/// Appends attributes to a buffer: header, value, zero padding to 4 bytes, nesting.
///
/// An attribute longer than 65,535 bytes cannot be written; the writer remembers the first
/// such attribute and [`AttrWriter::finish`] reports it.
#[derive(Debug)]
pub struct AttrWriter<'b> {
    buf: &'b mut Vec<u8>,
    too_long: Option<EmitError>,
}

impl<'b> AttrWriter<'b> {
    /// Appends to `buf`.
    pub fn new(buf: &'b mut Vec<u8>) -> Self {
        Self { buf, too_long: None }
    }

    /// Appends an attribute of type `kind` with `value`; nested values get `NLA_F_NESTED`.
    pub fn put<'a, V: AttrValue<'a>>(&mut self, kind: u16, value: &V) -> Result<(), EmitError> {
        let type_field = if V::NESTED { kind | NLA_F_NESTED } else { kind };
        let start = self.begin();
        value.encode(self)?;
        self.end(start, type_field);
        Ok(())
    }

    /// Appends an attribute kept as it came (type field and flags included).
    pub fn put_raw(&mut self, raw: &RawAttr<'_>) {
        let start = self.begin();
        self.extend(raw.value);
        self.end(start, raw.type_field);
    }

    /// Appends value bytes inside the attribute being written.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Appends a fixed-size leaf attribute (cannot fail).
    pub(crate) fn leaf(&mut self, kind: u16, value: &[u8]) {
        let start = self.begin();
        self.extend(value);
        self.end(start, kind);
    }

    /// Starts a nested attribute; close it with [`AttrWriter::end_nested`].
    pub(crate) fn begin_nested(&mut self) -> usize {
        self.begin()
    }

    /// Closes a nested attribute started at `start`.
    pub(crate) fn end_nested(&mut self, start: usize, kind: u16) {
        self.end(start, kind | NLA_F_NESTED);
    }

    /// Reports an attribute that did not fit its length field, if there was one.
    pub fn finish(self) -> Result<(), EmitError> {
        self.too_long.map_or(Ok(()), Err)
    }

    fn begin(&mut self) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; NLA_HEADER_SIZE]);
        start
    }

    fn end(&mut self, start: usize, type_field: u16) {
        let length = self.buf.len() - start;
        let length_field = u16::try_from(length).unwrap_or_else(|_| {
            self.too_long
                .get_or_insert(EmitError::TooLong { kind: type_field & NLA_TYPE_MASK, length });
            u16::MAX
        });
        if let Some(header) = self.buf.get_mut(start..start + NLA_HEADER_SIZE) {
            let mut nla = NlaBuffer::new(header);
            nla.set_length(length_field);
            nla.set_kind(type_field);
            if type_field & NLA_F_NESTED != 0 {
                nla.set_nested_flag();
            }
            if type_field & NLA_F_NET_BYTEORDER != 0 {
                nla.set_network_byte_order_flag();
            }
        }
        self.buf.resize(start + align4(length), 0);
    }
}

/// Declares a family of attributes: the enum (with `Other(RawAttr)`), its decoder and encoder.
/// Each variant names its kernel constant; the constant's name is what errors report.
macro_rules! attr_set {
    (
        $(#[$meta:meta])*
        pub enum $name:ident<$lt:lifetime> {
            $( $(#[$vmeta:meta])* $variant:ident($ty:ty) = $kind:ident, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum $name<$lt> {
            $( $(#[$vmeta])* $variant($ty), )*
            /// An attribute this crate does not model, kept as it came.
            Other($crate::nla::RawAttr<$lt>),
        }

        impl<$lt> $crate::nla::AttrSet<$lt> for $name<$lt> {
            #[inline]
            fn decode(raw: $crate::nla::RawAttr<$lt>) -> Result<Self, $crate::DecodeError> {
                match raw.kind() {
                    $( $kind => <$ty as $crate::nla::AttrValue<$lt>>::decode(raw.value(), stringify!($kind))
                        .map(Self::$variant), )*
                    _ => Ok(Self::Other(raw)),
                }
            }

            fn encode(&self, out: &mut $crate::nla::AttrWriter<'_>) -> Result<(), $crate::EmitError> {
                match self {
                    $( Self::$variant(value) => out.put($kind, value), )*
                    Self::Other(raw) => {
                        out.put_raw(raw);
                        Ok(())
                    }
                }
            }
        }
    };
}

pub(crate) use attr_set;
