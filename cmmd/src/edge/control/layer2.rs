//! The CLI's view of bridges, VLANs and PPPoE: the vendor's `show vlan` (`vlan show`),
//! `show pppoe`, `query vlan`, `query pppoe` in cmm's formats (`module_vlan.c`
//! `cmmVlanLocalShow`, `cmmVlanQuery`; `pppoe.c` `cmmPPPoELocalShow`,
//! `cmmPPPoEQueryProcess`), and the ports of each direction of a connection for
//! `show connections` ([`connection_ports`]).
//!
//! The local tables list every VLAN and PPP link of the kernel, with `Flags: 1` (cmm's
//! `FPP_PROGRAMMED`) when cdx holds it as it is now; `show pppoe` adds cmm's `itf_flags`
//! `0x10` (`ITF_PPPOE_SESSION_UP`) when the kernel lists the link's session. The `query`
//! commands walk cdx's own tables.

use std::fmt::Write as _;
use std::time::Instant;

use cli::Session;

use crate::core::engine::{DirPorts, Engine, Flow, RegState};
use crate::core::hw::{HwFailure, HwReply, ItfSpec};
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
/// Flags: %x, itf_flags: %x` (then the empty line cmm's format ends with) for every PPP link.
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
        out.reply_line("");
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

/// Print the result of `query vlan` or `query pppoe` in cmm's format.
pub fn render(query: InterfaceQuery, result: Result<HwReply, HwFailure>, out: &mut Session) {
    let Some(held) = super::walked(result, out, |reply| match reply {
        HwReply::Interfaces(held) => Ok(held),
        other => Err(other),
    }) else {
        return;
    };
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
    out.reply_done();
}

/// Appends each direction's ports to a `show connections` line, when any is known:
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

#[cfg(test)]
mod tests {
    use super::super::tests::{logged_in, run};
    use super::*;
    use crate::core::engine::{Action, EngineConfig};
    use crate::core::hw::{HwOp, HwResult, PppoeSpec, VlanSpec};
    use crate::core::net::{Link, NetView, PppoeSession};

    fn name(n: &str) -> IfName {
        IfName::new(n).unwrap()
    }

    /// An engine over r1 (a port), its VLAN r1.100, a PPP link ppp0 with its session on the
    /// VLAN and a VLAN on a veth; every hardware command succeeds.
    fn engine(now: Instant) -> Engine {
        let mut net = NetView::new([name("r1")]);
        net.upsert_link(Link::plain(2, name("r1"), true, 1500));
        net.upsert_link(Link::plain(3, name("veth0"), true, 1500));
        for (index, n, parent) in [(4, "r1.100", 2), (5, "veth0.7", 3)] {
            let kind = LinkKind::Vlan { id: if parent == 2 { 100 } else { 7 }, parent };
            net.upsert_link(Link { kind, ..Link::plain(index, name(n), true, 1500) });
        }
        net.upsert_link(Link {
            kind: LinkKind::Ppp,
            noarp: true,
            ..Link::plain(6, name("ppp0"), true, 1492)
        });
        let peer = Mac([0x5a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f]);
        net.set_pppoe_sessions(vec![PppoeSession {
            id: 42,
            peer,
            device: name("r1.100"),
            ppp: None,
        }]);
        let cfg = EngineConfig { reconcile: false, ..EngineConfig::default() };
        let mut engine = Engine::new(cfg, net, now);
        engine.start(now);
        while let Some(action) = engine.pop_action() {
            match action {
                Action::Hw(req) => {
                    let outcome = Ok(match req.op {
                        HwOp::WalkInterfaces => HwReply::Interfaces(Vec::new()),
                        _ => HwReply::Done,
                    });
                    engine.on_hw_result(HwResult { tag: req.tag, outcome }, now);
                }
                Action::Dump { generation } => engine.on_dump_done(generation, now),
                _ => {}
            }
        }
        engine
    }

    #[test]
    fn show_vlan_and_show_pppoe_list_the_kernels_links_in_cmms_format() {
        let now = Instant::now();
        let mut engine = engine(now);
        let vlans = run(&mut engine, "show vlan", now);
        assert!(
            vlans.contains(
                "Interface: r1.100, VLAN Id:  100, physical Interface: r1, Flags: 1\r\n\
                 Interface: veth0.7, VLAN Id:    7, physical Interface: veth0, Flags: 0\r\n"
            ),
            "{vlans:?}"
        );
        assert_eq!(run(&mut engine, "vlan show", now), vlans.replace("show vlan", "vlan show"));
        let refused = run(&mut engine, "vlan add veth0", now);
        assert!(refused.contains("% veth0 is not a VLAN interface"), "{refused:?}");
        let noted = run(&mut engine, "vlan add veth0.7", now);
        assert!(noted.contains("% offload.vlan is \"allow\""), "{noted:?}");
        let pppoe = run(&mut engine, "show pppoe", now);
        assert!(
            pppoe.contains(
                "PPP Device: ppp0, Session ID: 42, MAC addr: 5A:1B:2C:3D:4E:5F, Physical Device: r1.100, Flags: 1, itf_flags: 10\r\n\r\n"
            ),
            "{pppoe:?}"
        );
    }

    #[test]
    fn query_vlan_and_query_pppoe_print_cdxs_tables_in_cmms_format() {
        let now = Instant::now();
        let vlan = ItfSpec::Vlan(VlanSpec {
            name: name("r1.100"),
            id: 100,
            parent: name("r1"),
            mac: Mac::default(),
        });
        let session = ItfSpec::Pppoe(PppoeSpec {
            name: name("ppp0"),
            session: 42,
            peer: Mac([2, 0, 0, 0, 0, 0xab]),
            parent: name("r1.100"),
        });
        let print = |query, held: Vec<ItfSpec>| {
            let mut out = logged_in(now);
            out.receive(b"query vlan\r\n", now);
            let _ = out.next_request();
            out.consume_output(out.output_len());
            render(query, Ok(HwReply::Interfaces(held)), &mut out);
            String::from_utf8_lossy(out.pending_output()).into_owned()
        };
        let printed = print(InterfaceQuery::Vlans, vec![vlan, session]);
        assert!(printed.starts_with(
            "VLAN interfaces:\r\nInterface: r1.100, VLAN Id  :  100,  physical Interface: r1 \r\nTotal VLAN Entries:1\r\n"
        ), "{printed:?}");
        assert!(print(InterfaceQuery::Pppoe, vec![vlan, session]).starts_with(
            "PPP Device: ppp0, Session ID: 42, MAC addr: 02:00:00:00:00:AB, Physical Device: r1.100\r\nPPPoE Entry Count: 1\r\n"
        ));
        assert!(
            print(InterfaceQuery::Vlans, vec![]).starts_with("ERROR: FPP VLAN table empty\r\n")
        );
        assert!(
            print(InterfaceQuery::Pppoe, vec![vlan])
                .starts_with("ERROR: FPP PPPoE table empty\r\n")
        );
    }
}
