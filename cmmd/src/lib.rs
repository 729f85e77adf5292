//! cmmd library.
