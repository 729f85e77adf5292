//! The CLI's view of bridges, VLANs and PPPoE: the vendor's `show vlan` (`vlan show`),
//! `show pppoe`, `query vlan`, `query pppoe` in cmm's formats (`module_vlan.c`
//! `cmmVlanLocalShow`, `cmmVlanQuery`; `pppoe.c` `cmmPPPoELocalShow`,
//! `cmmPPPoEQueryProcess`), and the ports of each direction of a connection for
//! `show connections detail` ([`connection_ports`]).
//!
//! The local tables list every VLAN and PPP link of the kernel, with `Flags: 1` (cmm's
//! `FPP_PROGRAMMED`) when cdx holds it as it is now; `show pppoe` adds cmm's `itf_flags`
//! `0x10` (`ITF_PPPOE_SESSION_UP`) when the kernel lists the link's session. The `query`
//! commands walk cdx's own tables.

use std::fmt::Write as _;
use std::time::Instant;

use cli::Session;

use crate::core::engine::{DirPorts, Engine, Flow, RegState};
use crate::core::hw::ItfSpec;
use crate::core::l2::session_of;
use crate::core::net::{IfName, LinkKind, Mac};

/// `Flags` of cmm's interface table: `FPP_PROGRAMMED`.
const FPP_PROGRAMMED: u8 = 0x1;
/// `itf_flags` of a PPP interface whose session is up: `ITF_PPPOE_SESSION_UP`.
const ITF_PPPOE_SESSION_UP: u8 = 0x10;

/// MAC in cmm's `%02X:…` notation (upper case).
fn vendor_mac(mac: &Mac) -> String {
    let m = mac.0;
    format!("{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}", m[0], m[1], m[2], m[3], m[4], m[5])
}

/// Whether cdx holds `name` as it is registered now.
fn programmed(engine: &Engine, name: &IfName) -> u8 {
    let held = engine.registrations().any(|(n, r)| n == name && r.state == RegState::Registered);
    if held { FPP_PROGRAMMED } else { 0 }
}

/// `show vlan` / `vlan show`: `Interface: %s, VLAN Id: %4d, physical Interface: %s, Flags: %x`
/// for every VLAN link.
pub fn show_vlan(engine: &Engine, out: &mut Session) {
    let net = engine.net();
    let mut vlans: Vec<_> = net
        .links()
        .filter_map(|l| match l.kind {
            LinkKind::Vlan { id, parent } => Some((l.name, id, parent)),
            _ => None,
        })
        .collect();
    vlans.sort_by_key(|(name, _, _)| *name);
    for (name, id, parent) in vlans {
        let parent = net.link(parent).map_or_else(|| format!("if{parent}"), |p| p.name.to_string());
        out.reply_line(&format!(
            "Interface: {name}, VLAN Id: {id:4}, physical Interface: {parent}, Flags: {:x}",
            programmed(engine, &name)
        ));
    }
}

/// `vlan add <ifname>` (`add`) or `vlan delete <ifname>`: under the `manual` VLAN policy,
/// register this VLAN interface with cdx, or stop registering it. Nothing is printed on
/// success, as cmm prints nothing; a name that is no VLAN interface, or another policy, is
/// said in cmmd's own `% ` line.
pub fn vlan_add(engine: &mut Engine, name: &str, add: bool, now: Instant, out: &mut Session) {
    let Some(ifname) = IfName::new(name) else {
        out.reply_error(&format!("{name:?} is not an interface name"));
        return;
    };
    let is_vlan =
        engine.net().link_by_name(&ifname).is_some_and(|l| matches!(l.kind, LinkKind::Vlan { .. }));
    if add && !is_vlan {
        out.reply_error(&format!("{name} is not a VLAN interface"));
        return;
    }
    if add {
        engine.vlan_add(ifname, now);
    } else {
        engine.vlan_delete(ifname, now);
    }
    let policy = engine.config().vlan_policy;
    if policy != config::VlanPolicy::Manual {
        out.reply_error(&format!(
            "offload.vlan is \"{policy}\": it decides which VLANs cdx holds, not vlan add|delete"
        ));
    }
}

/// `show pppoe`: `PPP Device: %s, Session ID: %d, MAC addr: %02X:…, Physical Device: %s,
/// Flags: %x, itf_flags: %x` for every PPP link (the newline its format ends with makes no
/// empty line: the vendor's print callback drops empty lines).
pub fn show_pppoe(engine: &Engine, out: &mut Session) {
    let net = engine.net();
    let mut links: Vec<_> = net.links().filter(|l| l.kind == LinkKind::Ppp).collect();
    links.sort_by_key(|l| l.name);
    for link in links {
        let session = session_of(net, link);
        let (id, mac, device) =
            session.map_or((0, Mac::default(), link.name), |s| (s.id, s.peer, s.device));
        let itf_flags = if session.is_some() { ITF_PPPOE_SESSION_UP } else { 0 };
        out.reply_line(&format!(
            "PPP Device: {}, Session ID: {id}, MAC addr: {}, Physical Device: {device}, Flags: {:x}, itf_flags: {itf_flags:x}",
            link.name,
            vendor_mac(&mac),
            programmed(engine, &link.name)
        ));
    }
}

/// Which interface walk a `query` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterfaceQuery {
    /// `query vlan`.
    Vlans,
    /// `query pppoe`.
    Pppoe,
}

/// Print what cdx's interface walk returned for `query vlan` or `query pppoe` in cmm's
/// format.
pub fn render(query: InterfaceQuery, held: &[ItfSpec], out: &mut Session) {
    match query {
        InterfaceQuery::Vlans => {
            let vlans: Vec<_> = held
                .iter()
                .filter_map(|s| match s {
                    ItfSpec::Vlan(v) => Some(v),
                    ItfSpec::Pppoe(_) => None,
                })
                .collect();
            if vlans.is_empty() {
                out.reply_line("ERROR: FPP VLAN table empty");
            } else {
                out.reply_line("VLAN interfaces:");
                for v in &vlans {
                    out.reply_line(&format!(
                        "Interface: {}, VLAN Id  : {:4},  physical Interface: {} ",
                        v.name, v.id, v.parent
                    ));
                }
                out.reply_line(&format!("Total VLAN Entries:{}", vlans.len()));
            }
        }
        InterfaceQuery::Pppoe => {
            let sessions: Vec<_> = held
                .iter()
                .filter_map(|s| match s {
                    ItfSpec::Pppoe(p) => Some(p),
                    ItfSpec::Vlan(_) => None,
                })
                .collect();
            if sessions.is_empty() {
                out.reply_line("ERROR: FPP PPPoE table empty");
            } else {
                for p in &sessions {
                    out.reply_line(&format!(
                        "PPP Device: {}, Session ID: {}, MAC addr: {}, Physical Device: {}",
                        p.name,
                        p.session,
                        vendor_mac(&p.peer),
                        p.parent
                    ));
                }
                out.reply_line(&format!("PPPoE Entry Count: {}", sessions.len()));
            }
        }
    }
}

/// Appends each direction's ports to a `show connections detail` line, when any is known:
/// `, ports: <in>><out> <in>><out>`, original direction first, each interface as the kernel
/// names it, followed by cdx's port in brackets where that differs (a bridge's member):
/// `br0[r0a]>r1.100 r1.100>br0[r0a]`; `-` where nothing is known yet.
pub fn connection_ports(line: &mut String, engine: &Engine, flow: &Flow) {
    let ports = engine.flow_ports(flow);
    if ports.iter().all(|p| *p == DirPorts::default()) {
        return;
    }
    let one = |logical: Option<IfName>, physical: Option<IfName>| match (logical, physical) {
        (Some(l), Some(p)) if l != p => format!("{l}[{p}]"),
        (Some(l), _) => l.to_string(),
        (None, Some(p)) => format!("[{p}]"),
        (None, None) => "-".to_string(),
    };
    line.push_str(", ports:");
    for p in ports {
        let _ = write!(line, " {}>{}", one(p.logical_in, p.input), one(p.logical_out, p.output));
    }
}
