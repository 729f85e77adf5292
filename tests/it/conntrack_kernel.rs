//! Placeholder: the conntrack crate against the real kernel.
