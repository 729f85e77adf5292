//! The engine's hardware commands as FPP bytes in one cdx ABI, and cdx's answers as the
//! engine's outcomes.
//!
//! Contract: every command is encoded in the ABI given (`cdx-sys` lays the bytes out); the
//! QoS mark goes into the ABI's mark field, its halves swapped by the vendor's rule where
//! that ABI's cmm swaps them (LSDK), and a mark the field cannot hold is refused
//! ([`HwFailure::MarkTooWide`]), never truncated; a command cdx's format cannot hold is
//! refused before anything is sent ([`HwFailure::Unencodable`]). cdx's return codes are kept
//! apart where the engine acts differently on them: a full table (`0xFFFF`), an unknown
//! interface (`UNKNOWN_INTERFACE`), not found, still linked, any other code; a netlink
//! `EOPNOTSUPP` is cdx refusing FCI (it is not cmm's) and `ENOBUFS` a lost reply.

use std::net::IpAddr;

use cdx_sys::fci::FciError;
use cdx_sys::fpp::{
    self, Abi, AbiPayload, Action, CtCmd, CtFlags, FCode, Family, FfControl, FppError, Payload,
    ReturnCode, RouteCmd, TimeoutCmd, V4, V6,
};

use crate::core::flow::Tuple;
use crate::core::hw::{CtSpec, HwFailure, HwOp, HwReply, RouteSpec, WalkedCt};
use crate::core::net::IfName;

/// A command that cannot be written in cdx's format: nothing is sent, and the engine is told
/// why (never as a return code of cdx's).
const MIXED_FAMILIES: HwFailure =
    HwFailure::Unencodable("addresses of two families in one connection");
const LONG_IFNAME: HwFailure = HwFailure::Unencodable("an interface name longer than cdx holds");
const NO_FIT: HwFailure = HwFailure::Unencodable("a value that does not fit its FPP layout");
const NOT_SINGLE: HwFailure =
    HwFailure::Unencodable("detection, reset and walk are not single commands");

/// The route id of the worker's probe of an interface (never given to a route object:
/// `crate::core::hw::MAX_ROUTE_ID` is one less).
pub(super) const PROBE_ROUTE_ID: u32 = 0xFFFF;

fn fpp_tuple<F: Family>(t: &Tuple) -> Result<fpp::Tuple<F::Addr>, HwFailure> {
    let addr = |ip| F::addr_from_ip(ip).ok_or(MIXED_FAMILIES);
    Ok(fpp::Tuple::new(addr(t.src)?, addr(t.dst)?, t.src_port, t.dst_port))
}

/// The mark as the ABI's cmm sends it: the LSDK cmm swaps the halves of a mark with a reply
/// half when the originator is downstream; the ASK cmm does not on LS1043A/LS1046A.
fn qos_mark(abi: Abi, spec: &CtSpec) -> u64 {
    if abi == Abi::Lsdk && spec.originator_downstream {
        fpp::mark::swap_halves(abi, spec.qos_mark)
    } else {
        spec.qos_mark
    }
}

fn ct_cmd<F: Family>(abi: Abi, action: Action, spec: &CtSpec) -> Result<CtCmd<F>, HwFailure> {
    let mut cmd = CtCmd::<F>::new(
        action,
        spec.proto,
        fpp_tuple::<F>(&spec.orig)?,
        fpp_tuple::<F>(&spec.reply)?,
    );
    cmd.qos_mark = qos_mark(abi, spec);
    cmd.route_id = u32::from(spec.route_orig);
    cmd.route_id_reply = u32::from(spec.route_reply);
    let mut flags = CtFlags::EMPTY;
    if spec.route_orig == 0 {
        flags = flags | CtFlags::ORIG_DISABLED;
    }
    if spec.route_reply == 0 {
        flags = flags | CtFlags::REP_DISABLED;
    }
    cmd.flags = flags;
    Ok(cmd)
}

fn ip_tuple<A: Into<IpAddr> + Copy>(t: &fpp::Tuple<A>) -> Tuple {
    Tuple { src: t.src.into(), dst: t.dst.into(), src_port: t.sport, dst_port: t.dport }
}

/// A walked conntrack: only what cdx writes in a walk entry (no route ids, no flags).
pub(super) fn walked_ct<F: Family>(walked: &fpp::query::WalkedConntrack<F>) -> WalkedCt
where
    F::Addr: Into<IpAddr>,
{
    WalkedCt {
        proto: u8::try_from(walked.protocol).unwrap_or(u8::MAX),
        orig: ip_tuple(&walked.orig),
        reply: ip_tuple(&walked.reply),
        qos_mark: walked.qos_mark,
    }
}

fn route_cmd(action: Action, r: &RouteSpec) -> Result<RouteCmd, HwFailure> {
    let output = fpp::IfName::new(r.output.as_str()).map_err(|_| LONG_IFNAME)?;
    let input = fpp::IfName::new(r.input.as_str()).map_err(|_| LONG_IFNAME)?;
    Ok(RouteCmd::new(action, u32::from(r.id), output, input, r.mac.0, r.mtu))
}

/// The probe of whether cdx knows `name`: a route out of it (cdx refuses an unknown output
/// with `UNKNOWN_INTERFACE`, and takes an unknown input silently).
pub(super) fn probe_route(action: Action, name: &IfName) -> Result<Encoded, HwFailure> {
    let name = fpp::IfName::new(name.as_str()).map_err(|_| LONG_IFNAME)?;
    let cmd = RouteCmd::new(action, PROBE_ROUTE_ID, name, name, [0; 6], 0);
    encode(Abi::Lsdk, FCode::IpRoute, &cmd)
}

pub(super) fn if_name(n: &fpp::IfName) -> IfName {
    n.as_str().and_then(IfName::new).unwrap_or_default()
}

/// One command's bytes.
pub(super) struct Encoded {
    pub(super) fcode: FCode,
    pub(super) payload: Vec<u8>,
}

pub(super) fn encode<P: AbiPayload>(abi: Abi, fcode: FCode, p: &P) -> Result<Encoded, HwFailure> {
    let mut payload = vec![0u8; p.len_for(abi)];
    p.emit_for(abi, &mut payload).map_err(|e| match e {
        FppError::MarkTooWide { mark, .. } => HwFailure::MarkTooWide(mark),
        _ => NO_FIT,
    })?;
    Ok(Encoded { fcode, payload })
}

pub(super) fn encode_ct(abi: Abi, action: Action, spec: &CtSpec) -> Result<Encoded, HwFailure> {
    match spec.orig.src {
        IpAddr::V4(_) => encode(abi, FCode::Ipv4Conntrack, &ct_cmd::<V4>(abi, action, spec)?),
        IpAddr::V6(_) => encode(abi, FCode::Ipv6Conntrack, &ct_cmd::<V6>(abi, action, spec)?),
    }
}

fn encode_remaining(abi: Abi, spec: &CtSpec) -> Result<Encoded, HwFailure> {
    // GET_TIMEOUT looks the tuples up; the mark plays no part.
    let spec = CtSpec { qos_mark: 0, ..*spec };
    match spec.orig.src {
        IpAddr::V4(_) => {
            encode(abi, FCode::Ipv4GetTimeout, &ct_cmd::<V4>(abi, Action::Register, &spec)?)
        }
        IpAddr::V6(_) => {
            encode(abi, FCode::Ipv6GetTimeout, &ct_cmd::<V6>(abi, Action::Register, &spec)?)
        }
    }
}

/// The single-command form of an op (everything but detection, reset and walk).
pub(super) fn encode_op(abi: Abi, op: &HwOp) -> Result<Encoded, HwFailure> {
    match op {
        HwOp::RouteRegister(r) => encode(abi, FCode::IpRoute, &route_cmd(Action::Register, r)?),
        HwOp::RouteDeregister(id) => {
            let mut cmd = RouteCmd::new(
                Action::Deregister,
                u32::from(*id),
                fpp::IfName::default(),
                fpp::IfName::default(),
                [0; 6],
                0,
            );
            cmd.underlying_input = fpp::IfName::default();
            encode(abi, FCode::IpRoute, &cmd)
        }
        HwOp::CtRegister(c) => encode_ct(abi, Action::Register, c),
        HwOp::CtUpdate(c) => encode_ct(abi, Action::Update, c),
        // cdx finds the connection by its tuples: the mark plays no part.
        HwOp::CtDeregister(c) => encode_ct(abi, Action::Deregister, &CtSpec { qos_mark: 0, ..*c }),
        HwOp::CtRemaining(c) => encode_remaining(abi, c),
        HwOp::SetTimeout { proto, seconds, unidir } => encode(
            abi,
            FCode::Ipv4SetTimeout,
            &TimeoutCmd {
                protocol: u16::from(*proto),
                sam_4o6: 0,
                value1: *seconds,
                value2: *unidir,
            },
        ),
        HwOp::FastForward(enable) => {
            encode(abi, FCode::Ipv4FfControl, &FfControl { enable: *enable })
        }
        HwOp::ItfRegister(spec) | HwOp::ItfDeregister(spec) => {
            let register = matches!(op, HwOp::ItfRegister(_));
            let (fcode, payload) = super::interfaces::encode(abi, register, spec)?;
            Ok(Encoded { fcode, payload })
        }
        HwOp::VlanReset => Ok(Encoded { fcode: FCode::VlanReset, payload: Vec::new() }),
        HwOp::Detect(_) | HwOp::Reset | HwOp::Walk | HwOp::WalkInterfaces => Err(NOT_SINGLE),
    }
}

/// Classify cdx's answer to `op` (vendor success rules, reference §4.3 and §4.4).
pub(super) fn classify(op: &HwOp, rc: ReturnCode, payload: &[u8]) -> Result<HwReply, HwFailure> {
    use ReturnCode as R;
    match (op, rc) {
        (HwOp::RouteRegister(_), R::Ok | R::RtEntryAlreadyRegistered) => Ok(HwReply::Done),
        (HwOp::RouteRegister(r), R::UnknownInterface) => Err(HwFailure::UnknownInterface(r.output)),
        (HwOp::RouteDeregister(_), R::Ok) => Ok(HwReply::Done),
        (HwOp::RouteDeregister(_), R::RtEntryNotFound) => Err(HwFailure::NotFound),
        (HwOp::RouteDeregister(_), R::RtEntryLinked) => Err(HwFailure::Linked),
        (HwOp::CtRegister(_) | HwOp::CtUpdate(_) | HwOp::CtDeregister(_), R::Ok) => {
            Ok(HwReply::Done)
        }
        (HwOp::CtUpdate(_) | HwOp::CtDeregister(_), R::CtEntryNotFound) => Err(HwFailure::NotFound),
        (HwOp::CtRemaining(_), R::Ok) => match TimeoutCmd::parse(payload) {
            Ok(t) => Ok(HwReply::Remaining(t.value1)),
            Err(e) => Err(HwFailure::Io(format!("bad GET_TIMEOUT reply: {e}"))),
        },
        (HwOp::CtRemaining(_), R::CmdErr) => Err(HwFailure::NotFound),
        // cdx's FAILURE to a registration: the hardware insertion failed (a full table; the
        // worker keeps routes on interfaces cdx does not know from being used).
        (HwOp::CtRegister(_), R::Failure) => Err(HwFailure::Full),
        (HwOp::ItfRegister(_), rc) => super::interfaces::classify(true, rc),
        (HwOp::ItfDeregister(_), rc) => super::interfaces::classify(false, rc),
        (_, R::Ok) => Ok(HwReply::Done),
        (_, rc) => Err(HwFailure::Rejected(rc.value())),
    }
}

/// A transport error as the engine sees it.
pub(super) fn failure(e: &FciError) -> HwFailure {
    match e {
        FciError::Timeout => HwFailure::Timeout,
        FciError::RepliesLost => HwFailure::ReplyLost,
        e if e.is_offload_refused() => HwFailure::OffloadRefused,
        FciError::Netlink { errno, .. } => HwFailure::Io(format!(
            "netlink error {errno} ({})",
            std::io::Error::from_raw_os_error(*errno)
        )),
        other => HwFailure::Io(other.to_string()),
    }
}
