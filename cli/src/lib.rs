//! The operator CLI of cmmd, without I/O: bytes in, bytes and typed requests out.
//!
//! What this crate owns: the telnet option codec, the line editor (echo, cursor keys, history,
//! TAB completion, `?` help), login and privilege levels, one command table that drives
//! parsing, help and completion, output filters, per-source login lockout, password hashing,
//! and the scripting client behind `cmmd ctl`. What it refuses to own: sockets, threads and
//! clocks (the daemon's mio loop passes bytes and `now`), and any knowledge of conntrack or cdx
//! (the daemon renders replies in the vendor formats and hands over finished lines).
//!
//! Layers, bottom up:
//! - `telnet`: IAC decoding, option negotiation, NAWS, CR LF / CR NUL / LF line ends.
//! - `editor`: one line of input with echo, history and cursor movement.
//! - `lexer`, [`command`], `table` and `grammar`: libcli's line lexer, the table
//!   ([`COMMANDS`]: the vendor's commands and cmmd's), libcli's abbreviations, arguments;
//!   `complete`: candidates for `?` and TAB; [`filter`]: libcli's `| include|exclude|begin|
//!   between|grep|egrep|count` (`posix` translates the regular expressions).
//! - [`session`]: login → prompt → requests to the daemon → streamed replies.
//! - [`auth`], [`limiter`]: credentials and lockout, used by the daemon around the session.
//! - [`client`]: the `cmmd ctl` side of the same protocol.
//!
//! A server loop, in short:
//!
//! ```
//! use std::time::Instant;
//! use cli::{Request, Session, SessionConfig};
//!
//! let mut session = Session::new(SessionConfig::default());
//! session.start(Instant::now());
//! session.receive(b"admin\nadmin\n", Instant::now());
//! while let Some(request) = session.next_request() {
//!     match request {
//!         // Verify on a worker thread; here inline.
//!         Request::Authenticate { .. } => session.authenticated(true, Instant::now()),
//!         Request::Enable { .. } => session.enable_result(true),
//!         Request::Execute(_invocation) => {
//!             session.reply_line("1");
//!             session.reply_done();
//!         }
//!         Request::Close => break,
//!     }
//! }
//! assert!(session.pending_output().ends_with(b"cmm> "));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]

pub mod auth;
pub mod client;
pub mod command;
mod complete;
mod editor;
pub mod filter;
mod grammar;
mod lexer;
pub mod limiter;
mod listing;
mod output;
mod posix;
pub mod session;
mod table;
mod telnet;

#[cfg(test)]
mod tests;

pub use auth::{AuthError, Credentials, PhcHash, Secret, VerifyMemory, hash_password};
pub use client::{CtlClient, CtlRequest, Finished, command_line, is_error_reply};
pub use command::{
    COMMANDS, Command, CommandSpec, ConnectionFilter, DebugCategory, FlowTuple, Origin, Privilege,
    SimFault, SimFlowMatch, StateWord, TimeoutClass,
};
pub use filter::{FilterStage, OutputFilter};
pub use grammar::ParseError;
pub use limiter::{Admission, LockoutPolicy, LoginLimiter};
pub use session::{
    CloseReason, DEFAULT_BANNER, Invocation, Request, Session, SessionConfig, SessionStats,
};
