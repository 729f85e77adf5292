//! The offload worker's VLAN and PPPoE commands: the engine's [`ItfSpec`]s as FPP
//! `VLAN_ENTRY` / `VLAN_RESET` / `PPPOE_ENTRY` payloads, the walk of both tables, and how cdx's
//! answers are classified (vendor rules: a deregistration of what cdx does not hold is done;
//! everything else but success is a refusal the engine retries).

use cdx_sys::fci::Reply;
use cdx_sys::fpp::{
    self, Abi, AbiPayload, Action, FCode, Payload, PppoeEntry, ReturnCode, VlanEntry,
};

use crate::core::hw::{HwFailure, HwReply, ItfSpec, PppoeSpec, VlanSpec};
use crate::core::net::{IfName, Mac};

/// Longest walk accepted (entries).
const WALK_LIMIT: usize = 4096;

const LONG_IFNAME: HwFailure = HwFailure::Unencodable("an interface name longer than cdx holds");

fn name(n: &IfName) -> Result<fpp::IfName, HwFailure> {
    fpp::IfName::new(n.as_str()).map_err(|_| LONG_IFNAME)
}

fn our_name(n: Option<fpp::IfName>) -> IfName {
    n.as_ref().and_then(fpp::IfName::as_str).and_then(IfName::new).unwrap_or_default()
}

fn vlan_entry(action: Action, v: &VlanSpec) -> Result<VlanEntry, HwFailure> {
    Ok(VlanEntry {
        action,
        vlan_id: v.id,
        ifname: name(&v.name)?,
        phy_ifname: name(&v.parent)?,
        mac: v.mac.0,
    })
}

fn pppoe_entry(action: Action, p: &PppoeSpec) -> Result<PppoeEntry, HwFailure> {
    Ok(PppoeEntry {
        action,
        session_id: p.session,
        mac: p.peer.0,
        phy_ifname: name(&p.parent)?,
        ifname: name(&p.name)?,
        mode: 0,
    })
}

fn bytes<P: AbiPayload>(abi: Abi, p: &P) -> Result<Vec<u8>, HwFailure> {
    let mut payload = vec![0u8; p.len_for(abi)];
    p.emit_for(abi, &mut payload)
        .map_err(|_| HwFailure::Unencodable("a value that does not fit its FPP layout"))?;
    Ok(payload)
}

/// The command registering (`register`) or removing `spec`, in `abi`.
pub(super) fn encode(
    abi: Abi,
    register: bool,
    spec: &ItfSpec,
) -> Result<(FCode, Vec<u8>), HwFailure> {
    let action = if register { Action::Register } else { Action::Deregister };
    match spec {
        ItfSpec::Vlan(v) => Ok((FCode::VlanEntry, bytes(abi, &vlan_entry(action, v)?)?)),
        ItfSpec::Pppoe(p) => Ok((FCode::PppoeEntry, bytes(abi, &pppoe_entry(action, p)?)?)),
    }
}

/// cdx's answer to a registration (`register`) or a removal.
pub(super) fn classify(register: bool, rc: ReturnCode) -> Result<HwReply, HwFailure> {
    use ReturnCode as R;
    match (register, rc) {
        (_, R::Ok) => Ok(HwReply::Done),
        (false, R::VlanEntryNotFound | R::PppoeEntryNotFound) => Err(HwFailure::NotFound),
        (_, rc) => Err(HwFailure::Rejected(rc.value())),
    }
}

/// One command sent to cdx, and its reply.
pub(super) type Call<'a> = dyn FnMut(FCode, &[u8]) -> Result<Reply, HwFailure> + 'a;

/// Walks cdx's VLAN table, then its PPPoE table, with `call` (one command, its reply). A
/// table cdx cannot walk (`UNKNOWN_ACTION`, `UNKNOWN_COMMAND`) counts as empty.
pub(super) fn walk(abi: Abi, call: &mut Call<'_>) -> Result<HwReply, HwFailure> {
    let mut held = Vec::new();
    let step = |action| VlanEntry {
        action,
        vlan_id: 0,
        ifname: fpp::IfName::EMPTY,
        phy_ifname: fpp::IfName::EMPTY,
        mac: [0; 6],
    };
    let mut query = bytes(abi, &step(Action::Query))?;
    for _ in 0..WALK_LIMIT {
        let reply = call(FCode::VlanEntry, &query)?;
        match reply.rc {
            ReturnCode::Ok => {
                let v = fpp::query::vlan_from_walk(abi, &reply.payload)
                    .map_err(|e| HwFailure::Io(format!("bad VLAN walk entry: {e}")))?;
                held.push(ItfSpec::Vlan(VlanSpec {
                    name: our_name(v.ifname),
                    id: v.vlan_id,
                    parent: our_name(v.phy_ifname),
                    mac: Mac::default(),
                }));
            }
            ReturnCode::VlanEntryNotFound
            | ReturnCode::UnknownAction
            | ReturnCode::UnknownCommand => break,
            rc => return Err(HwFailure::Rejected(rc.value())),
        }
        query = bytes(abi, &step(Action::QueryCont))?;
    }
    let mut query = PppoeEntry::walk_step(Action::Query).to_vec();
    for _ in 0..WALK_LIMIT {
        let reply = call(FCode::PppoeEntry, &query)?;
        match reply.rc {
            ReturnCode::Ok => {
                let p = fpp::query::pppoe_from_walk(&reply.payload)
                    .map_err(|e| HwFailure::Io(format!("bad PPPoE walk entry: {e}")))?;
                held.push(ItfSpec::Pppoe(PppoeSpec {
                    name: our_name(p.ifname),
                    session: p.session_id,
                    peer: Mac(p.mac),
                    parent: our_name(p.phy_ifname),
                }));
            }
            ReturnCode::PppoeEntryNotFound
            | ReturnCode::UnknownAction
            | ReturnCode::UnknownCommand => break,
            rc => return Err(HwFailure::Rejected(rc.value())),
        }
        query = PppoeEntry::walk_step(Action::QueryCont).to_vec();
    }
    // Relayed sessions (`relay`) are no interface of ours.
    held.retain(|spec| spec.name().as_str() != "relay" && spec.name() != IfName::default());
    Ok(HwReply::Interfaces(held))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> IfName {
        IfName::new(s).unwrap()
    }

    #[test]
    fn vlan_and_pppoe_specs_become_their_fpp_commands_in_each_abi() {
        let vlan = ItfSpec::Vlan(VlanSpec {
            name: n("r1.100"),
            id: 100,
            parent: n("r1"),
            mac: Mac([2, 0, 0, 0, 0, 1]),
        });
        for (abi, len) in [(Abi::Lsdk, 36), (Abi::Ask, 44)] {
            let (fcode, payload) = encode(abi, true, &vlan).unwrap();
            assert_eq!((fcode, payload.len()), (FCode::VlanEntry, len));
            let parsed = VlanEntry::parse_for(abi, &payload).unwrap();
            assert_eq!((parsed.action, parsed.vlan_id), (Action::Register, 100));
        }
        let session = ItfSpec::Pppoe(PppoeSpec {
            name: n("ppp0"),
            session: 7,
            peer: Mac([2, 0, 0, 0, 0, 9]),
            parent: n("r1.100"),
        });
        let (fcode, payload) = encode(Abi::Ask, false, &session).unwrap();
        let parsed = PppoeEntry::parse(&payload).unwrap();
        assert_eq!(fcode, FCode::PppoeEntry);
        assert_eq!(
            (parsed.action, parsed.session_id, parsed.ifname.as_str(), parsed.phy_ifname.as_str()),
            (Action::Deregister, 7, Some("ppp0"), Some("r1.100"))
        );
        assert_eq!(classify(false, ReturnCode::PppoeEntryNotFound), Err(HwFailure::NotFound));
        assert_eq!(
            classify(true, ReturnCode::VlanEntryAlreadyRegistered),
            Err(HwFailure::Rejected(600))
        );
    }

    /// The bytes reach the software cdx, which answers as cdx does, and the walk reads back
    /// what it holds, in both ABIs, from replies whose unwritten bytes are garbage. A session
    /// whose VLAN went is read with the parent cdx then names: none.
    #[test]
    fn registrations_and_the_walk_against_the_software_cdx() {
        use cdx_sys::fci::Transport;
        use cdx_sys::sim::{self, SimConfig, UnwrittenFill};
        use std::time::Duration;
        for abi in Abi::ALL {
            let (sim, commands, _events) = sim::spawn(SimConfig {
                interfaces: vec!["r1".into()],
                abi,
                unwritten: UnwrittenFill::Garbage { seed: 11 },
                ..SimConfig::default()
            })
            .unwrap();
            let mut transport = Transport::new(commands);
            let mut call = |fcode: FCode, payload: &[u8]| {
                transport
                    .call(fcode, payload, Duration::from_secs(2))
                    .map_err(|e| HwFailure::Io(e.to_string()))
            };
            let vlan = ItfSpec::Vlan(VlanSpec {
                name: n("r1.100"),
                id: 100,
                parent: n("r1"),
                mac: Mac::default(),
            });
            let session = ItfSpec::Pppoe(PppoeSpec {
                name: n("ppp0"),
                session: 7,
                peer: Mac([2, 0, 0, 0, 0, 9]),
                parent: n("r1.100"),
            });
            for (spec, expected) in [
                (session, Err(HwFailure::Rejected(5))),
                (vlan, Ok(HwReply::Done)),
                (session, Ok(HwReply::Done)),
            ] {
                let (fcode, payload) = encode(abi, true, &spec).unwrap();
                let reply = call(fcode, &payload).unwrap();
                assert_eq!(classify(true, reply.rc), expected, "{abi} {spec:?}");
            }
            assert_eq!(walk(abi, &mut call), Ok(HwReply::Interfaces(vec![vlan, session])));
            assert_eq!(sim.snapshot().pppoe[0].session, 7);
            let (fcode, payload) = encode(abi, false, &vlan).unwrap();
            assert_eq!(classify(false, call(fcode, &payload).unwrap().rc), Ok(HwReply::Done));
            let ItfSpec::Pppoe(orphan) = session else { unreachable!() };
            let orphan = ItfSpec::Pppoe(PppoeSpec { parent: IfName::default(), ..orphan });
            assert_eq!(walk(abi, &mut call), Ok(HwReply::Interfaces(vec![orphan])));
            let (fcode, payload) = encode(abi, false, &session).unwrap();
            assert_eq!(classify(false, call(fcode, &payload).unwrap().rc), Ok(HwReply::Done));
            assert_eq!(
                classify(false, call(fcode, &payload).unwrap().rc),
                Err(HwFailure::NotFound)
            );
        }
        assert_eq!(
            classify(true, ReturnCode::VlanEntryAlreadyRegistered),
            Err(HwFailure::Rejected(600))
        );
    }
}
