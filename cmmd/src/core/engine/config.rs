//! What the engine is configured with.
//!
//! Contract: these are plain values the engine reads; it never writes them except through
//! the run-time setters (SIGHUP, CLI).

use std::time::Duration;

use crate::core::hw::HwTimeouts;
use crate::core::policy::Policy;

/// How kernel conntracks of offloaded connections are kept alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepaliveMode {
    /// Refresh CTA_TIMEOUT from the hardware's activity (stock kernels).
    Refresh,
    /// Set IPS_PERMANENT on offloaded conntracks (ASK-patched kernels).
    Permanent,
    /// Do nothing.
    Off,
}

/// What to do with the kernel conntrack when the hardware ages a connection out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnRemoved {
    /// Delete it (vendor behaviour): the next packet creates a fresh conntrack.
    Delete,
    /// Leave it to expire in the kernel.
    Expire,
}

/// The kernel's own conntrack timeouts (read from the namespace's sysctls at start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelTimeouts {
    /// `nf_conntrack_tcp_timeout_established`.
    pub tcp_established: u32,
    /// `nf_conntrack_udp_timeout_stream` (ASSURED UDP).
    pub udp_stream: u32,
    /// `nf_conntrack_udp_timeout` (not ASSURED UDP).
    pub udp: u32,
}

impl Default for KernelTimeouts {
    fn default() -> Self {
        KernelTimeouts { tcp_established: 432_000, udp_stream: 120, udp: 30 }
    }
}

/// Keepalive settings.
#[derive(Clone, Copy, Debug)]
pub struct Keepalive {
    /// Mechanism.
    pub mode: KeepaliveMode,
    /// Shortest period between two activity polls of one connection.
    pub interval: Duration,
    /// Upper bound of a refreshed kernel timeout (`None`: the kernel's own timeout).
    pub margin: Option<Duration>,
    /// Kernel timeout refreshes per second, at most.
    pub max_refresh_per_second: u32,
    /// Bit number of IPS_PERMANENT (permanent mode).
    pub permanent_bit: u8,
    /// Reaction to hardware aging.
    pub on_removed: OnRemoved,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            mode: KeepaliveMode::Refresh,
            interval: Duration::from_secs(10),
            margin: None,
            max_refresh_per_second: 20_000,
            permanent_bit: 15,
            on_removed: OnRemoved::Delete,
        }
    }
}

/// Everything the engine is configured with.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Flow table capacity (`CMM_MAX_CONNECTIONS`).
    pub capacity: usize,
    /// Static offload rules.
    pub policy: Policy,
    /// cdx aging timeouts (sent at start).
    pub hw_timeouts: HwTimeouts,
    /// The kernel's timeouts.
    pub kernel_timeouts: KernelTimeouts,
    /// Keepalive.
    pub keepalive: Keepalive,
    /// Pass the conntrack mark to cdx as its QoS fwmark, under this mask.
    pub fwmark_mask: Option<u32>,
    /// Periodic dump-and-sweep.
    pub sweep_interval: Option<Duration>,
    /// Minimum time between two resync dumps.
    pub resync_min_interval: Duration,
    /// First back-off delay after a hardware failure (doubles up to `retry_max`).
    pub retry_base: Duration,
    /// Longest back-off delay.
    pub retry_max: Duration,
    /// Read the hardware tables at start and adopt what matches the kernel.
    pub reconcile: bool,
    /// Refused-for-room connections remembered for a retry when room appears.
    pub retry_queue: usize,
    /// Connections being programmed at once; more wait their turn (`hw_busy`). Bounds the
    /// hardware backlog, and the memory of queued commands, during bursts and cold starts.
    pub programming_window: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            capacity: 131_072,
            policy: Policy::default(),
            hw_timeouts: HwTimeouts::default(),
            kernel_timeouts: KernelTimeouts::default(),
            keepalive: Keepalive::default(),
            fwmark_mask: None,
            sweep_interval: Some(Duration::from_secs(60)),
            resync_min_interval: Duration::from_secs(1),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            reconcile: true,
            retry_queue: 4096,
            programming_window: 4096,
        }
    }
}
