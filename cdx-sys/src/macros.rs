//! `enum_with_unknown!`: a protocol-number enum whose unknown values are kept, not rejected.

/// Declares an enum over an integer type with one variant per known value and
/// `Unknown(value)` for everything else, plus both `From` conversions.
///
/// Values must be literals (they become match patterns). `From<int>` never produces
/// `Unknown(v)` for a known `v`, so `Unknown` always means "not named by this crate".
macro_rules! enum_with_unknown {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($ty:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this crate has no name for, kept as received.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant, )+
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }

        impl $name {
            /// Every named value, in declaration order.
            pub const KNOWN: &'static [$name] = &[$( $name::$variant, )+];

            /// The value on the wire.
            pub const fn value(self) -> $ty {
                match self {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}

/// Declares a transparent bit-set newtype over an integer with named bits. Unknown bits are
/// kept (`from_bits_retain` semantics): cdx and CMM grow flags over time.
macro_rules! flag_set {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($ty:ty) {
            $( $(#[$bmeta:meta])* const $bit:ident = $value:literal; )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub $ty);

        impl $name {
            $( $(#[$bmeta])* pub const $bit: $name = $name($value); )+
            /// No bit set.
            pub const EMPTY: $name = $name(0);

            /// The raw bits.
            pub const fn bits(self) -> $ty {
                self.0
            }

            /// `true` if every bit of `other` is set in `self`.
            pub const fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }

            /// `self` with the bits of `other` added.
            #[must_use]
            pub const fn union(self, other: $name) -> $name {
                $name(self.0 | other.0)
            }
        }

        impl std::ops::BitOr for $name {
            type Output = $name;
            fn bitor(self, other: $name) -> $name {
                self.union(other)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut rest = self.0;
                write!(f, "{}(", stringify!($name))?;
                let mut first = true;
                $(
                    if self.contains($name::$bit) && $value != 0 {
                        if !first { f.write_str(" | ")?; }
                        f.write_str(stringify!($bit))?;
                        rest &= !$value;
                        first = false;
                    }
                )+
                if rest != 0 || first {
                    if !first { f.write_str(" | ")?; }
                    write!(f, "{rest:#x}")?;
                }
                f.write_str(")")
            }
        }
    };
}
