//! Shared pieces of the benchmarks and of the end-to-end harness.
//!
//! - [`load`]: deterministic synthetic connections (TCP/UDP, IPv4/IPv6) and the kernel event
//!   sequence each one produces, so every bench drives the engine with the same realistic mix.
//! - [`world`]: a small fake world around [`cmmd::core::engine::Engine`] — links, addresses,
//!   neighbours, a routing table that answers lookups at once and a hardware that accepts every
//!   command — so the engine runs its real policy, table and state machine without a kernel.
//! - [`inject`]: the ctnetlink requests of the end-to-end load generator (`ct-inject`).
//! - [`cli`]: a logged-in `cli::Session` running `show connections` against an engine.
//!
//! Contract: nothing here reads a clock or does I/O; the caller owns `now`. Everything is
//! deterministic for a given index, so two runs measure the same work.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]

pub mod cli;
pub mod inject;
pub mod load;
pub mod world;
