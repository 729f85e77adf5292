//! cmmd: the conntrack-to-cdx offload daemon.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod args;
pub mod cli_server;
pub mod cmdline;
pub mod control;
pub mod ctl;
pub mod daemon;
pub mod engine;
pub mod flow;
pub mod http;
pub mod hw;
pub mod manifests;
pub mod metrics;
pub mod net;
pub mod offload;
pub mod policy;
pub mod route;
pub mod rtnl;
pub mod sim_server;
pub mod stats;
pub mod telemetry;
pub mod tokens;
pub mod worker;
