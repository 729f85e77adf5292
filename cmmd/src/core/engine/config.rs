//! What the engine is configured with.
//!
//! Contract: these are plain values the engine reads; it never writes them except through
//! the run-time setters (SIGHUP, CLI). They come from the configuration ([`EngineConfig::new`]);
//! every default is the configuration crate's (`config::defaults`), including the engine's
//! own tuning that has no configuration key and the kernel timeouts assumed when the
//! namespace's sysctls cannot be read.

use std::time::Duration;

use config::defaults;
pub use config::{KeepaliveConfig, KeepaliveMode, OnRemoved};

use crate::core::hw::{AbiSetting, HwTimeouts};
use crate::core::net::IfName;
use crate::core::policy::Policy;

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
    /// The kernel's own defaults.
    fn default() -> Self {
        KernelTimeouts {
            tcp_established: defaults::KERNEL_TCP_TIMEOUT_ESTABLISHED,
            udp_stream: defaults::KERNEL_UDP_TIMEOUT_STREAM,
            udp: defaults::KERNEL_UDP_TIMEOUT,
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
    /// Keepalive (the `[keepalive]` table).
    pub keepalive: KeepaliveConfig,
    /// Pass the conntrack mark to cdx as its QoS fwmark, under this mask (a kernel's own
    /// QoS mark, `CTA_QOSCONNMARK`, is passed whenever it is sent).
    pub fwmark_mask: Option<u32>,
    /// WAN ports, for the vendor's rule on the QoS mark's halves (`offload.wan_ports`).
    pub wan_ports: Vec<IfName>,
    /// Which cdx ABI to speak: detected at start, or fixed (`cdx.abi`).
    pub cdx_abi: AbiSetting,
    /// The conntrack mark bits route lookups carry where the kernel does not report each
    /// direction's packet mark (stock kernels).
    pub route_mark_mask: u32,
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
    /// Which VLAN interfaces are registered with cdx.
    pub vlan_policy: config::VlanPolicy,
}

impl EngineConfig {
    /// The engine's settings from the daemon's configuration and the kernel's timeouts.
    pub fn new(cfg: &config::Config, kernel_timeouts: KernelTimeouts) -> EngineConfig {
        EngineConfig {
            capacity: cfg.max_connections.get() as usize,
            policy: Policy::new(&cfg.offload),
            hw_timeouts: HwTimeouts::from(&cfg.timeouts),
            kernel_timeouts,
            keepalive: cfg.keepalive,
            fwmark_mask: cfg.offload.fwmark_from_ctmark.then_some(cfg.offload.fwmark_mask),
            wan_ports: cfg
                .offload
                .wan_ports
                .iter()
                .filter_map(|p| IfName::new(p.as_str()))
                .collect(),
            cdx_abi: abi_setting(cfg.cdx.abi),
            route_mark_mask: cfg.netlink.route_mark_mask,
            sweep_interval: cfg.netlink.sweep_interval,
            resync_min_interval: cfg.netlink.resync_min_interval,
            retry_base: defaults::ENGINE_RETRY_BASE,
            retry_max: defaults::ENGINE_RETRY_MAX,
            reconcile: defaults::ENGINE_RECONCILE,
            retry_queue: defaults::ENGINE_RETRY_QUEUE,
            programming_window: defaults::ENGINE_PROGRAMMING_WINDOW,
            vlan_policy: cfg.offload.vlan,
        }
    }
}

/// `cdx.abi` as `cdx-sys` reads it: the configuration's words are those its `AbiSetting`
/// parses (a test checks every one).
pub(crate) fn abi_setting(abi: config::CdxAbiSetting) -> AbiSetting {
    abi.as_str().parse().unwrap_or_default()
}

impl Default for EngineConfig {
    /// The engine of a default configuration on a kernel with its own default timeouts.
    fn default() -> Self {
        EngineConfig::new(&config::Config::default(), KernelTimeouts::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hw::Abi;

    #[test]
    fn every_cdx_abi_word_of_the_configuration_is_one_cdx_sys_reads() {
        use config::CdxAbiSetting as C;
        for (word, expected) in [
            (C::Auto, AbiSetting::Auto),
            (C::Lsdk, AbiSetting::Fixed(Abi::Lsdk)),
            (C::Ask, AbiSetting::Fixed(Abi::Ask)),
        ] {
            assert_eq!(word.as_str().parse::<AbiSetting>(), Ok(expected), "{word}");
            assert_eq!(abi_setting(word), expected);
        }
        assert_eq!(EngineConfig::default().cdx_abi, AbiSetting::Auto);
    }
}
