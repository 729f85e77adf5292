//! The hardware backend: cdx through `fci.ko`, or the software cdx.
//!
//! Either way the daemon gets an FCI command transport (moved to the offload worker) and an
//! FCI event socket (registered in the loop); with the software cdx it also gets the sim's
//! handle, which the CLI's `show sim` / `sim …` commands use. The software cdx is the one the
//! `[sim]` table describes ([`sim_config`]), in this process or in `cmmd sim serve`. cmmd never
//! opens `/dev/cdx_ctrl` (it admits one opener, `dpa_app`'s, and cmm needs none of it).

use std::io;
use std::time::Duration;

use cdx_sys::fci::{FciSocket, NetlinkFf, PackedSocket, Transport};
use cdx_sys::sim::{
    self, Fault, FlowMatch, Ipv6Activity, SimConfig, SimHandle, SimHwEntry, SimTuple, UnwrittenFill,
};

use crate::edge::control::SimControl;
use crate::edge::offload::FciExecutor;

/// How long the worker waits for one reply from cdx.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// What the daemon needs from a backend.
pub struct Backend {
    /// `cdx` or `sim`.
    pub name: &'static str,
    /// Executes commands on the worker thread.
    pub executor: FciExecutor<FciSocket>,
    /// Unsolicited events (REMOVED), non-blocking.
    pub events: FciSocket,
    /// The software cdx, when it is the backend.
    pub sim: Option<SimHandle>,
}

/// Why the backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// `fci.ko` is not there.
    #[error(
        "cannot open the cdx FCI socket (netlink protocol 30): {0}; is the NXP fci/cdx module loaded \
         on this board? Start with --backend sim (CMM_BACKEND=sim) to run without hardware"
    )]
    NoCdx(io::Error),
    /// The software cdx failed to start.
    #[error("cannot start the software cdx: {0}")]
    Sim(String),
}

/// Requests in flight to a software cdx in another process. cdx answers inside `sendmsg`,
/// so for it the window only bounds the replies queued; across processes the requests of a
/// window leave in one pack ([`PackedSocket`]) and come back answered in one, so the window
/// is the number of commands per round trip (`docs/performance.md`). 128 replies stay within
/// the default socket buffer of the serving end, which drops a pack that does not fit, as
/// `fci.ko` drops a reply.
const REMOTE_SIM_WINDOW: usize = 128;

impl Backend {
    /// cdx through `fci.ko` (initial network namespace only).
    pub fn cdx(event_buffer: usize) -> Result<Backend, BackendError> {
        let commands = NetlinkFf::command().map_err(BackendError::NoCdx)?;
        let events = NetlinkFf::events().map_err(BackendError::NoCdx)?;
        if let Err(e) = events.set_receive_buffer(event_buffer) {
            tracing::warn!(error = %e, "cannot size the cdx event socket buffer");
        }
        Ok(Backend {
            name: "cdx",
            executor: FciExecutor::new(Transport::new(FciSocket::from(commands)), COMMAND_TIMEOUT),
            events: FciSocket::from(events),
            sim: None,
        })
    }

    /// The software cdx of another process (`cmmd sim serve`), reached through `path`.
    pub fn remote_sim(path: &std::path::Path) -> Result<Backend, BackendError> {
        let (commands, events) = crate::cmd::sim_server::connect(path)
            .map_err(|e| BackendError::Sim(format!("cannot connect to {}: {e}", path.display())))?;
        Ok(Backend {
            name: "sim (remote)",
            executor: FciExecutor::new(
                Transport::with_window(
                    FciSocket::from(PackedSocket::new(commands)),
                    REMOTE_SIM_WINDOW,
                ),
                COMMAND_TIMEOUT,
            ),
            events: FciSocket::from(events),
            sim: None,
        })
    }

    /// The software cdx, in this process. It answers each command inside the worker's
    /// `send`, as `fci.ko` answers inside `sendmsg` (same bytes; no second thread to wake per
    /// command).
    pub fn sim(config: SimConfig) -> Result<Backend, BackendError> {
        let (handle, commands, events) =
            sim::attach(config).map_err(|e| BackendError::Sim(e.to_string()))?;
        Ok(Backend {
            name: "sim",
            executor: FciExecutor::new(Transport::new(FciSocket::from(commands)), COMMAND_TIMEOUT),
            events: FciSocket::from(events),
            sim: Some(handle),
        })
    }
}

/// The software cdx the configuration describes: the `[sim]` table, and as its FMan ports
/// `sim.interfaces`, or the names of `ports` when that is empty. Every word of the table is
/// one `cdx-sys` reads (a test checks them all).
pub fn sim_config(cfg: &config::Config) -> SimConfig {
    let sim = &cfg.sim;
    let names = if sim.interfaces.is_empty() { &cfg.ports } else { &sim.interfaces };
    let defaults = SimConfig::default();
    SimConfig {
        interfaces: names.iter().map(|n| n.as_str().to_string()).collect(),
        capacity: sim.capacity.get() as usize,
        abi: sim.abi.as_str().parse().unwrap_or(defaults.abi),
        unwritten: sim.unwritten.as_str().parse().unwrap_or(UnwrittenFill::GARBAGE),
        ipv6_activity: match sim.ipv6_activity {
            config::SimIpv6Activity::Build => None,
            other => other.as_str().parse::<Ipv6Activity>().ok(),
        },
        hz: sim.hz.get(),
        hw_latency: sim.hw_latency,
        ..defaults
    }
}

fn tuple_text(t: &SimTuple) -> String {
    format!("src={} dst={} sport={} dport={}", t.src, t.dst, t.sport, t.dport)
}

fn mac_text(m: &[u8; 6]) -> String {
    format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])
}

/// What a direction's hardware entry forwards with, `input>output,mac,mtu` (`-`: not in
/// hardware).
fn hw_text(entry: Option<&SimHwEntry>) -> String {
    entry.map_or_else(
        || "-".to_string(),
        |e| format!("{}>{},{},{}", e.input, e.output, mac_text(&e.mac), e.mtu),
    )
}

impl SimControl for SimHandle {
    fn show(&self) -> Vec<String> {
        let table = self.snapshot();
        let stats = self.stats();
        let mut lines = vec!["Software cdx routes:".to_string()];
        for r in &table.routes {
            lines.push(format!(
                "Id: {}, Output: {}, Input: {}, Mac: {}, Mtu: {}, Refs: {}",
                r.id,
                r.output,
                r.input,
                mac_text(&r.mac),
                r.mtu,
                r.refcount
            ));
        }
        lines.push(format!("{} routes", table.routes.len()));
        lines.push("Software cdx connections:".to_string());
        for c in &table.conntracks {
            lines.push(format!(
                "protocol={} orig: {} reply: {} routes={}/{} in_hw={}/{} hw={}/{} fwmark=0x{:x} remaining={}s",
                c.protocol,
                tuple_text(&c.orig),
                tuple_text(&c.reply),
                c.route_id,
                c.route_id_reply,
                u8::from(c.in_hw_orig),
                u8::from(c.in_hw_reply),
                hw_text(c.hw_orig.as_ref()),
                hw_text(c.hw_reply.as_ref()),
                c.qos_mark,
                c.remaining.as_secs(),
            ));
        }
        lines.push(format!("{} connections", table.conntracks.len()));
        lines.push("Software cdx VLANs:".to_string());
        for v in &table.vlans {
            lines.push(format!("Interface: {}, VLAN Id: {}, Parent: {}", v.name, v.id, v.parent));
        }
        lines.push("Software cdx PPPoE sessions:".to_string());
        for p in &table.pppoe {
            lines.push(format!(
                "Interface: {}, Session: {}, Peer: {}, Parent: {}",
                p.name,
                p.session,
                mac_text(&p.mac),
                p.parent
            ));
        }
        lines.push(format!(
            "commands: {}, netlink errors: {}, replies dropped: {}, events sent: {}, events unheard: {}",
            stats.total_commands(),
            stats.netlink_errors,
            stats.replies_dropped,
            stats.events_sent,
            stats.events_unheard
        ));
        lines
    }

    fn fault(&self, fault: &cli::SimFault) -> Result<String, String> {
        let n = |c: Option<u32>| c.unwrap_or(1);
        let injected = match *fault {
            cli::SimFault::ErrorCode { rc, fcode, count } => Fault::ErrorCode {
                fcode: fcode.map(cdx_sys::fpp::FCode::from),
                rc: cdx_sys::fpp::ReturnCode::from(rc),
                count: n(count),
            },
            cli::SimFault::DropReply { count } => Fault::DropReply { count: n(count) },
            cli::SimFault::Delay { milliseconds, count } => Fault::Delay {
                duration: Duration::from_millis(u64::from(milliseconds)),
                count: n(count),
            },
            cli::SimFault::Eio { count } => Fault::Eio { count: n(count) },
            cli::SimFault::Capacity { pairs } => {
                self.set_capacity(pairs as usize);
                return Ok(format!("hardware capacity set to {pairs} connections"));
            }
            cli::SimFault::SpuriousRemoved => Fault::SpuriousRemoved {
                orig: SimTuple {
                    src: [192, 0, 2, 1].into(),
                    dst: [192, 0, 2, 2].into(),
                    sport: 9,
                    dport: 9,
                },
                reply: SimTuple {
                    src: [192, 0, 2, 2].into(),
                    dst: [192, 0, 2, 1].into(),
                    sport: 9,
                    dport: 9,
                },
                protocol: 17,
            },
            cli::SimFault::OffloadOwnerFlowtable => Fault::OffloadOwnerFlowtable,
            cli::SimFault::Clear => {
                self.clear_faults();
                return Ok("faults cleared".into());
            }
        };
        let text = format!("{injected:?}");
        self.inject(injected).map_err(|e| e.to_string())?;
        Ok(format!("injected {text}"))
    }

    fn activate(&self, which: &cli::SimFlowMatch) -> Result<usize, String> {
        let flows = match which {
            cli::SimFlowMatch::All => FlowMatch::All,
            cli::SimFlowMatch::Tuple(t) => FlowMatch::Orig(SimTuple {
                src: t.source,
                dst: t.destination,
                sport: t.source_port,
                dport: t.destination_port,
            }),
        };
        Ok(self.mark_active(flows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdx_sys::fpp::Abi;

    #[test]
    fn every_sim_word_of_the_configuration_is_one_cdx_sys_reads() {
        let mut cfg = config::Config {
            ports: vec![config::InterfaceName::new("r0").unwrap()],
            ..config::Config::default()
        };
        let default = sim_config(&cfg);
        assert_eq!(default.interfaces, ["r0"], "the FMan ports default to the names of ports");
        assert_eq!(default.unwritten, UnwrittenFill::GARBAGE, "as a board leaves them");
        assert_eq!((default.abi, default.ipv6_activity, default.hz), (Abi::Lsdk, None, 1000));
        for (word, abi) in [(config::CdxAbi::Lsdk, Abi::Lsdk), (config::CdxAbi::Ask, Abi::Ask)] {
            cfg.sim.abi = word;
            assert_eq!(sim_config(&cfg).abi, abi);
        }
        cfg.sim.unwritten = config::SimUnwritten::Zeros;
        assert_eq!(sim_config(&cfg).unwritten, UnwrittenFill::Zeros);
        for (word, rule) in [
            (config::SimIpv6Activity::AgingTimer, Ipv6Activity::AgingTimer),
            (config::SimIpv6Activity::Refreshed, Ipv6Activity::Refreshed),
        ] {
            cfg.sim.ipv6_activity = word;
            assert_eq!(sim_config(&cfg).ipv6_activity, Some(rule));
        }
        cfg.sim.interfaces = vec![config::InterfaceName::new("fm1-mac3").unwrap()];
        assert_eq!(sim_config(&cfg).interfaces, ["fm1-mac3"], "separate from ports when set");
    }
}
