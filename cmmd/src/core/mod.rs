//! The sans-IO core: no socket, no thread, no clock.
//!
//! Everything here takes values and `now` and returns values, so it is tested without a
//! kernel, a hardware backend or a client:
//! - pure domain: [`flow`] (keys, the bounded table), [`policy`] (the static offload rules),
//!   [`net`] (the mirrored links, addresses, neighbours), [`route`] (the route cache), [`hw`]
//!   (what the hardware is asked, the route objects and their ids), [`stats`] (every counter
//!   and reason);
//! - [`engine`]: the state machine that owns all of the above. Events and `now` in,
//!   [`engine::Action`]s and the next deadline out.
//!
//! Nothing in `core` imports from the edges (`crate::edge`), the composition
//! (`crate::daemon`) or the subcommands (`crate::cmd`).

pub mod engine;
pub mod flow;
pub mod hw;
pub mod net;
pub mod policy;
pub mod route;
pub mod stats;
