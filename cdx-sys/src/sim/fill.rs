//! What the software cdx puts in the bytes cdx leaves unwritten
//! ([`crate::fpp::unwritten`]): zeros, or random non-zero bytes.

use std::ops::Range;
use std::str::FromStr;

/// How the software cdx fills the fields cdx does not write in walk replies and events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum UnwrittenFill {
    /// Zeros (memory fresh from the allocator).
    #[default]
    Zeros,
    /// Random bytes, none of them NUL, from a generator seeded with `seed` (recycled
    /// memory at its worst: no name field ends, no id or flag means anything).
    Garbage {
        /// The generator's seed; the same seed gives the same bytes.
        seed: u64,
    },
}

impl UnwrittenFill {
    /// Garbage with a fixed seed.
    pub const GARBAGE: UnwrittenFill = UnwrittenFill::Garbage { seed: 0x5eed_cd0c_5eed_cd0c };
}

/// A name that is no fill mode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown fill {0:?}: expected zeros or garbage")]
pub struct FillParseError(pub String);

impl FromStr for UnwrittenFill {
    type Err = FillParseError;

    /// `zeros` or `garbage` (fixed seed), case-insensitive.
    fn from_str(text: &str) -> Result<UnwrittenFill, FillParseError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "zeros" | "zero" => Ok(UnwrittenFill::Zeros),
            "garbage" => Ok(UnwrittenFill::GARBAGE),
            _ => Err(FillParseError(text.to_string())),
        }
    }
}

/// The filler: a splitmix64 generator when filling with garbage.
#[derive(Clone, Copy, Debug)]
pub(super) struct Filler {
    state: Option<u64>,
}

impl Filler {
    pub(super) fn new(fill: UnwrittenFill) -> Filler {
        match fill {
            UnwrittenFill::Zeros => Filler { state: None },
            UnwrittenFill::Garbage { seed } => Filler { state: Some(seed) },
        }
    }

    fn next_byte(state: &mut u64) -> u8 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        // 1..=255: never a NUL.
        (((z ^ (z >> 31)) % 255) + 1) as u8
    }

    /// Fills `ranges` of `bytes` (out-of-range parts are skipped).
    pub(super) fn fill(&mut self, bytes: &mut [u8], ranges: &[Range<usize>]) {
        for range in ranges {
            let Some(target) = bytes.get_mut(range.clone()) else { continue };
            match &mut self.state {
                None => target.fill(0),
                Some(state) => target.iter_mut().for_each(|b| *b = Filler::next_byte(state)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_has_no_nul_zeros_are_zero_and_names_parse() {
        let mut bytes = [0u8; 64];
        Filler::new(UnwrittenFill::GARBAGE).fill(&mut bytes, &[4..60, 70..80]);
        assert!(bytes[4..60].iter().all(|&b| b != 0));
        assert!(bytes[..4].iter().chain(&bytes[60..]).all(|&b| b == 0), "only the ranges");
        assert!(bytes[4..60].windows(2).any(|w| w[0] != w[1]), "not one repeated byte");
        let everything = 0..bytes.len();
        Filler::new(UnwrittenFill::Zeros).fill(&mut bytes, std::slice::from_ref(&everything));
        assert!(bytes.iter().all(|&b| b == 0));
        assert_eq!("Garbage".parse(), Ok(UnwrittenFill::GARBAGE));
        assert_eq!("zeros".parse(), Ok(UnwrittenFill::Zeros));
        assert!("random".parse::<UnwrittenFill>().is_err());
    }
}
