//! The subcommands around the daemon: what `main` dispatches to.
//!
//! [`cmdline`] parses the command line ([`args`]) and maps every outcome to an exit code (0
//! orderly, 1 start-up failure, 2 bad configuration); `run` starts [`crate::daemon`]. The
//! tools: [`ctl`] (`cmmd ctl`, one CLI command against a running daemon), [`manifests`]
//! (`cmmd manifests`, the Kubernetes objects), [`sim_server`] (`cmmd sim serve|ctl`, the
//! software cdx as its own process).

pub mod args;
pub mod cmdline;
pub mod ctl;
pub mod manifests;
pub mod sim_server;
