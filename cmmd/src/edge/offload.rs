//! Translation between the engine's hardware commands and cdx's FPP commands over FCI.
//!
//! [`FciExecutor`] runs on the offload worker thread: it turns each [`HwOp`] into FPP payloads
//! (`cdx-sys` encodes them), sends them over an FCI transport (`fci.ko`, or the software cdx on
//! a socket pair: the same bytes either way), pipelines independent commands, and classifies
//! cdx's return codes the way the engine needs them (success, full, linked, not found,
//! rejected, timeout). The events side ([`decode_events`]) turns `CONNTRACK_CHANGE` frames
//! from the event socket into [`HwEvent`]s.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use cdx_sys::fci::{self, DatagramSocket, FciError, Frame, Transport};
use cdx_sys::fpp::{
    self, Action, CtCmd, CtFlags, FCode, Family, Payload, ReturnCode, RouteCmd, TimeoutCmd, V4, V6,
};

use crate::core::flow::Tuple;
use crate::core::hw::{
    CtSpec, HwEvent, HwFailure, HwOp, HwReply, HwRequest, HwResult, RouteSpec, WalkedCt,
    WalkedRoute,
};
use crate::core::net::{IfName, Mac};
use crate::edge::worker::Executor;

/// Longest walk accepted (entries), a guard against a table that never ends.
const WALK_LIMIT: usize = 1 << 20;

/// A command that cannot be written in cdx's format: nothing is sent, and the engine is told
/// why (never as a return code of cdx's).
const MIXED_FAMILIES: HwFailure =
    HwFailure::Unencodable("addresses of two families in one connection");
const LONG_IFNAME: HwFailure = HwFailure::Unencodable("an interface name longer than cdx holds");
const NO_FIT: HwFailure = HwFailure::Unencodable("a value that does not fit its FPP layout");
const NOT_SINGLE: HwFailure = HwFailure::Unencodable("reset and walk are not single commands");

fn fpp_tuple<F: Family>(t: &Tuple) -> Result<fpp::Tuple<F::Addr>, HwFailure> {
    let addr = |ip| F::addr_from_ip(ip).ok_or(MIXED_FAMILIES);
    Ok(fpp::Tuple::new(addr(t.src)?, addr(t.dst)?, t.src_port, t.dst_port))
}

fn ct_cmd<F: Family>(action: Action, spec: &CtSpec) -> Result<CtCmd<F>, HwFailure> {
    let mut cmd = CtCmd::<F>::new(
        action,
        spec.proto,
        fpp_tuple::<F>(&spec.orig)?,
        fpp_tuple::<F>(&spec.reply)?,
    );
    cmd.fwmark = spec.fwmark;
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

fn spec_of<F: Family>(cmd: &CtCmd<F>) -> CtSpec
where
    F::Addr: Into<IpAddr>,
{
    CtSpec {
        proto: u8::try_from(cmd.protocol).unwrap_or(u8::MAX),
        orig: ip_tuple(&cmd.orig),
        reply: ip_tuple(&cmd.reply),
        fwmark: cmd.fwmark,
        route_orig: u16::try_from(cmd.route_id).unwrap_or(0),
        route_reply: u16::try_from(cmd.route_id_reply).unwrap_or(0),
    }
}

fn route_cmd(action: Action, r: &RouteSpec) -> Result<RouteCmd, HwFailure> {
    let output = fpp::IfName::new(r.output.as_str()).map_err(|_| LONG_IFNAME)?;
    let input = fpp::IfName::new(r.input.as_str()).map_err(|_| LONG_IFNAME)?;
    Ok(RouteCmd::new(action, u32::from(r.id), output, input, r.mac.0, r.mtu))
}

fn if_name(n: &fpp::IfName) -> IfName {
    n.as_str().and_then(IfName::new).unwrap_or_default()
}

/// One command's bytes.
struct Encoded {
    fcode: FCode,
    payload: Vec<u8>,
}

fn encode<P: Payload>(fcode: FCode, p: &P) -> Result<Encoded, HwFailure> {
    let mut payload = vec![0u8; p.buffer_len()];
    p.emit(&mut payload).map_err(|_| NO_FIT)?;
    Ok(Encoded { fcode, payload })
}

fn encode_ct(action: Action, spec: &CtSpec) -> Result<Encoded, HwFailure> {
    match spec.orig.src {
        IpAddr::V4(_) => encode(FCode::Ipv4Conntrack, &ct_cmd::<V4>(action, spec)?),
        IpAddr::V6(_) => encode(FCode::Ipv6Conntrack, &ct_cmd::<V6>(action, spec)?),
    }
}

fn encode_remaining(spec: &CtSpec) -> Result<Encoded, HwFailure> {
    match spec.orig.src {
        IpAddr::V4(_) => encode(FCode::Ipv4GetTimeout, &ct_cmd::<V4>(Action::Register, spec)?),
        IpAddr::V6(_) => encode(FCode::Ipv6GetTimeout, &ct_cmd::<V6>(Action::Register, spec)?),
    }
}

/// The single-command form of an op (everything but reset and walk).
fn encode_op(op: &HwOp) -> Result<Encoded, HwFailure> {
    match op {
        HwOp::RouteRegister(r) => encode(FCode::IpRoute, &route_cmd(Action::Register, r)?),
        HwOp::RouteUpdate(r) => encode(FCode::IpRoute, &route_cmd(Action::Update, r)?),
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
            encode(FCode::IpRoute, &cmd)
        }
        HwOp::CtRegister(c) => encode_ct(Action::Register, c),
        HwOp::CtUpdate(c) => encode_ct(Action::Update, c),
        HwOp::CtDeregister(c) => encode_ct(Action::Deregister, c),
        HwOp::CtRemaining(c) => encode_remaining(c),
        HwOp::SetTimeout { proto, seconds, unidir } => encode(
            FCode::Ipv4SetTimeout,
            &TimeoutCmd {
                protocol: u16::from(*proto),
                sam_4o6: 0,
                value1: *seconds,
                value2: *unidir,
            },
        ),
        HwOp::Reset | HwOp::Walk => Err(NOT_SINGLE),
    }
}

/// Classify cdx's answer to `op` (vendor success rules, reference §4.3 and §4.4).
fn classify(op: &HwOp, rc: ReturnCode, payload: &[u8]) -> Result<HwReply, HwFailure> {
    use ReturnCode as R;
    match (op, rc) {
        (HwOp::RouteRegister(_), R::Ok | R::RtEntryAlreadyRegistered) => Ok(HwReply::Done),
        (HwOp::RouteDeregister(_), R::Ok) => Ok(HwReply::Done),
        (HwOp::RouteDeregister(_) | HwOp::RouteUpdate(_), R::RtEntryNotFound) => {
            Err(HwFailure::NotFound)
        }
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
        (HwOp::CtRegister(_), R::Failure) => Err(HwFailure::Full),
        (_, R::Ok) => Ok(HwReply::Done),
        (_, rc) => Err(HwFailure::Rejected(rc.value())),
    }
}

fn failure(e: &FciError) -> HwFailure {
    match e {
        FciError::Timeout => HwFailure::Timeout,
        FciError::Netlink { errno, .. } => HwFailure::Io(format!(
            "netlink error {errno} ({})",
            std::io::Error::from_raw_os_error(*errno)
        )),
        other => HwFailure::Io(other.to_string()),
    }
}

/// Executes hardware commands over an FCI transport.
pub struct FciExecutor<S: DatagramSocket> {
    transport: Transport<S>,
    timeout: Duration,
}

impl<S: DatagramSocket + Send + 'static> FciExecutor<S> {
    /// An executor waiting at most `timeout` for each reply.
    pub fn new(transport: Transport<S>, timeout: Duration) -> Self {
        FciExecutor { transport, timeout }
    }

    fn call(&mut self, e: &Encoded) -> Result<fci::Reply, FciError> {
        self.transport.call(e.fcode, &e.payload, self.timeout)
    }

    fn run_one(&mut self, op: &HwOp) -> Result<HwReply, HwFailure> {
        match op {
            HwOp::Reset => {
                for fcode in [FCode::Ipv4Reset, FCode::Ipv6Reset] {
                    let reply =
                        self.transport.call(fcode, &[], self.timeout).map_err(|e| failure(&e))?;
                    if reply.rc != ReturnCode::Ok {
                        return Err(HwFailure::Rejected(reply.rc.value()));
                    }
                }
                Ok(HwReply::Done)
            }
            HwOp::Walk => self.walk(),
            HwOp::CtRegister(spec) => {
                let e = encode_op(op)?;
                let reply = self.call(&e).map_err(|e| failure(&e))?;
                if reply.rc == ReturnCode::CtEntryAlreadyRegistered {
                    // Registered before (a restart without reconcile, a lost reply): make the
                    // hardware hold exactly this entry.
                    let update = encode_ct(Action::Update, spec)?;
                    let reply = self.call(&update).map_err(|e| failure(&e))?;
                    return classify(&HwOp::CtUpdate(*spec), reply.rc, &reply.payload);
                }
                classify(op, reply.rc, &reply.payload)
            }
            _ => {
                let e = encode_op(op)?;
                let reply = self.call(&e).map_err(|e| failure(&e))?;
                classify(op, reply.rc, &reply.payload)
            }
        }
    }

    fn walk_family<F: Family>(&mut self, out: &mut Vec<WalkedCt>) -> Result<(), HwFailure>
    where
        F::Addr: Into<IpAddr>,
    {
        let mut query = CtCmd::<F>::walk_step(Action::Query);
        for _ in 0..WALK_LIMIT {
            let e = encode(F::CONNTRACK, &query)?;
            let reply = self.call(&e).map_err(|e| failure(&e))?;
            match reply.rc {
                ReturnCode::Ok => {
                    let entry: CtCmd<F> = fpp::query::entry_from_reply(&reply.payload)
                        .map_err(|e| HwFailure::Io(format!("bad walk entry: {e}")))?;
                    out.push(WalkedCt { spec: spec_of(&entry) });
                }
                ReturnCode::CtEntryNotFound => return Ok(()),
                ReturnCode::UnknownAction | ReturnCode::UnknownCommand => return Ok(()),
                rc => return Err(HwFailure::Rejected(rc.value())),
            }
            query = CtCmd::<F>::walk_step(Action::QueryCont);
        }
        Err(HwFailure::Io("walk did not end".into()))
    }

    fn walk(&mut self) -> Result<HwReply, HwFailure> {
        let mut conntracks = Vec::new();
        self.walk_family::<V4>(&mut conntracks)?;
        self.walk_family::<V6>(&mut conntracks)?;
        let mut routes = Vec::new();
        let mut query = RouteCmd::walk_step(Action::Query);
        for _ in 0..WALK_LIMIT {
            let e = encode(FCode::IpRoute, &query)?;
            let reply = self.call(&e).map_err(|e| failure(&e))?;
            match reply.rc {
                ReturnCode::Ok => {
                    let r: RouteCmd = fpp::query::entry_from_reply(&reply.payload)
                        .map_err(|e| HwFailure::Io(format!("bad walk entry: {e}")))?;
                    routes.push(WalkedRoute {
                        spec: RouteSpec {
                            id: u16::try_from(r.id).unwrap_or(0),
                            output: if_name(&r.output),
                            input: if_name(&r.input),
                            mac: Mac(r.dst_mac),
                            mtu: r.mtu,
                        },
                    });
                }
                ReturnCode::RtEntryNotFound | ReturnCode::UnknownAction => break,
                rc => return Err(HwFailure::Rejected(rc.value())),
            }
            query = RouteCmd::walk_step(Action::QueryCont);
        }
        Ok(HwReply::Walk { conntracks, routes })
    }

    /// Pipeline a run of single-command ops: send as many as the window allows, collect.
    fn run_pipelined(&mut self, batch: &[HwRequest], out: &mut Vec<HwResult>) {
        let mut sent: Vec<(u32, usize)> = Vec::with_capacity(batch.len());
        let mut results: Vec<Option<Result<HwReply, HwFailure>>> = vec![None; batch.len()];
        let mut next = 0;
        while next < batch.len() || !sent.is_empty() {
            while next < batch.len() && sent.len() < self.transport.window() {
                match encode_op(&batch[next].op) {
                    Err(unencodable) => results[next] = Some(Err(unencodable)),
                    Ok(e) => match self.transport.send(e.fcode, &e.payload) {
                        Ok(seq) => sent.push((seq, next)),
                        Err(FciError::WindowFull(_)) => break,
                        Err(err) => results[next] = Some(Err(failure(&err))),
                    },
                }
                next += 1;
            }
            if sent.is_empty() {
                continue;
            }
            let deadline = Instant::now() + self.timeout;
            match self.transport.recv_until(deadline) {
                Ok(reply) => {
                    if let Some(pos) = sent.iter().position(|(s, _)| *s == reply.seq) {
                        let (_, i) = sent.swap_remove(pos);
                        results[i] = Some(classify(&batch[i].op, reply.rc, &reply.payload));
                    }
                }
                Err(err) => {
                    if let Some(seq) = err.seq()
                        && let Some(pos) = sent.iter().position(|(s, _)| *s == seq)
                    {
                        let (_, i) = sent.swap_remove(pos);
                        results[i] = Some(Err(failure(&err)));
                        continue;
                    }
                    // Timeout or a broken socket: every request in flight fails.
                    for (seq, i) in sent.drain(..) {
                        self.transport.forget(seq);
                        results[i] = Some(Err(failure(&err)));
                    }
                }
            }
        }
        for (req, result) in batch.iter().zip(results) {
            out.push(HwResult { tag: req.tag, outcome: result.unwrap_or(Err(HwFailure::Timeout)) });
        }
    }
}

/// Ops that depend on the result of an earlier op in the same batch, or that are walks or
/// resets, run one at a time; everything else is pipelined. A conntrack register must not
/// overtake the route register it references: cdx executes in arrival order, which the
/// pipeline keeps (one socket, sent in order).
fn pipelinable(op: &HwOp) -> bool {
    !matches!(op, HwOp::Reset | HwOp::Walk | HwOp::CtRegister(_))
}

impl<S: DatagramSocket + Send + 'static> Executor for FciExecutor<S> {
    fn execute(&mut self, batch: &[HwRequest], out: &mut Vec<HwResult>) {
        let mut start = 0;
        while start < batch.len() {
            let mut end = start;
            while end < batch.len() && pipelinable(&batch[end].op) {
                end += 1;
            }
            if end > start {
                self.run_pipelined(&batch[start..end], out);
                start = end;
                continue;
            }
            let req = &batch[start];
            let outcome = self.run_one(&req.op);
            if let Err(f) = &outcome {
                tracing::debug!(target: "cmmd::offload", op = req.op.name(), failure = ?f, "hardware command failed");
            }
            out.push(HwResult { tag: req.tag, outcome });
            start += 1;
        }
    }
}

/// Decode the `CONNTRACK_CHANGE` events of one datagram from the event socket. Other frames
/// are counted in `ignored`.
pub fn decode_events(datagram: &[u8], out: &mut Vec<HwEvent>, ignored: &mut u64) {
    for frame in fci::frames(datagram) {
        let event = match frame {
            Ok(Frame::Event { fcode, payload }) => {
                fpp::CtEvent::parse(fcode, payload).ok().flatten()
            }
            _ => None,
        };
        match event {
            Some(e) if e.kind() == Action::Removed => {
                let (o, r) = (e.orig(), e.reply());
                out.push(HwEvent::Removed {
                    proto: u8::try_from(e.protocol()).unwrap_or(u8::MAX),
                    orig: Tuple { src: o.src, dst: o.dst, src_port: o.sport, dst_port: o.dport },
                    reply: Tuple { src: r.src, dst: r.dst, src_port: r.sport, dst_port: r.dport },
                });
            }
            _ => *ignored += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdx_sys::fpp::{Ct4Change, Ct4Cmd};
    use cdx_sys::sim::{self, SimConfig};
    use std::net::Ipv4Addr;

    fn t(s: &str, sp: u16, d: &str, dp: u16) -> Tuple {
        Tuple { src: s.parse().unwrap(), dst: d.parse().unwrap(), src_port: sp, dst_port: dp }
    }

    fn spec(orig: Tuple, r_orig: u16, r_reply: u16) -> CtSpec {
        CtSpec {
            proto: 6,
            orig,
            reply: orig.inverse(),
            fwmark: 0,
            route_orig: r_orig,
            route_reply: r_reply,
        }
    }

    fn route(id: u16, out: &str, inp: &str) -> RouteSpec {
        RouteSpec {
            id,
            output: IfName::new(out).unwrap(),
            input: IfName::new(inp).unwrap(),
            mac: Mac([2, 0, 0, 0, 0, 9]),
            mtu: 1500,
        }
    }

    fn run(
        exec: &mut FciExecutor<cdx_sys::fci::PairSocket>,
        ops: Vec<HwOp>,
    ) -> Vec<Result<HwReply, HwFailure>> {
        let batch: Vec<HwRequest> =
            ops.into_iter().enumerate().map(|(i, op)| HwRequest { tag: i as u64, op }).collect();
        let mut out = Vec::new();
        exec.execute(&batch, &mut out);
        assert_eq!(
            out.iter().map(|r| r.tag).collect::<Vec<_>>(),
            (0..batch.len() as u64).collect::<Vec<_>>()
        );
        out.into_iter().map(|r| r.outcome).collect()
    }

    #[test]
    fn commands_reach_the_software_cdx_and_walks_read_them_back() {
        let (sim, commands, _events) = sim::spawn(SimConfig {
            interfaces: vec!["eth0".into(), "eth1".into()],
            ..SimConfig::default()
        })
        .unwrap();
        let mut exec = FciExecutor::new(Transport::new(commands), Duration::from_secs(2));
        let v4 = t("10.1.0.2", 40000, "10.2.0.2", 443);
        let v6 = t("fd01::2", 40000, "fd02::2", 443);
        let results = run(
            &mut exec,
            vec![
                HwOp::SetTimeout { proto: 17, seconds: 60, unidir: 20 },
                HwOp::RouteRegister(route(1, "eth1", "eth0")),
                HwOp::RouteRegister(route(2, "eth0", "eth1")),
                HwOp::CtRegister(spec(v4, 1, 2)),
                HwOp::CtRegister(spec(v6, 1, 2)),
                HwOp::CtRegister(spec(v4, 1, 2)),
                HwOp::CtRemaining(spec(v4, 1, 2)),
                HwOp::RouteDeregister(1),
                HwOp::RouteRegister(route(3, "wlan9", "eth0")),
            ],
        );
        assert!(results[..6].iter().all(Result::is_ok), "{results:?}");
        assert_eq!(results[6], Ok(HwReply::Remaining(432_000)));
        assert_eq!(results[7], Err(HwFailure::Linked));
        assert_eq!(results[8], Err(HwFailure::Rejected(5)), "unknown interface");
        let table = sim.snapshot();
        assert_eq!(table.conntracks.len(), 2);
        assert!(table.conntracks.iter().all(|c| c.in_hw_orig && c.in_hw_reply));
        let walk = run(&mut exec, vec![HwOp::Walk]).remove(0);
        let Ok(HwReply::Walk { conntracks, routes }) = walk else { panic!("{walk:?}") };
        let mut origs: Vec<Tuple> = conntracks.iter().map(|c| c.spec.orig).collect();
        origs.sort_by_key(|t| t.src.is_ipv6());
        assert_eq!(origs, vec![v4, v6]);
        assert_eq!(conntracks[0].spec.route_orig, 1);
        assert_eq!(routes.iter().map(|r| r.spec.id).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(routes[0].spec.output.as_str(), "eth1");
        let results = run(
            &mut exec,
            vec![
                HwOp::CtDeregister(spec(v4, 1, 2)),
                HwOp::CtDeregister(spec(v4, 1, 2)),
                HwOp::CtRemaining(spec(v4, 1, 2)),
                HwOp::Reset,
            ],
        );
        assert_eq!(results[0], Ok(HwReply::Done));
        assert_eq!(results[1], Err(HwFailure::NotFound));
        assert_eq!(results[2], Err(HwFailure::NotFound));
        assert_eq!(results[3], Ok(HwReply::Done));
        assert!(sim.snapshot().conntracks.is_empty() && sim.snapshot().routes.is_empty());
    }

    #[test]
    fn full_table_and_timeouts_are_classified() {
        let (sim, commands, _events) = sim::spawn(SimConfig {
            interfaces: vec!["eth0".into(), "eth1".into()],
            capacity: 1,
            ..SimConfig::default()
        })
        .unwrap();
        let mut exec = FciExecutor::new(Transport::new(commands), Duration::from_millis(200));
        let results = run(
            &mut exec,
            vec![
                HwOp::RouteRegister(route(1, "eth1", "eth0")),
                HwOp::CtRegister(spec(t("10.1.0.2", 1, "10.2.0.2", 2), 1, 0)),
                HwOp::CtRegister(spec(t("10.1.0.2", 3, "10.2.0.2", 4), 1, 0)),
            ],
        );
        assert!(results[1].is_ok());
        assert_eq!(results[2], Err(HwFailure::Full));
        sim.inject(cdx_sys::sim::Fault::DropReply { count: 1 }).unwrap();
        let results = run(
            &mut exec,
            vec![
                HwOp::SetTimeout { proto: 6, seconds: 100, unidir: 0 },
                HwOp::SetTimeout { proto: 0, seconds: 100, unidir: 0 },
            ],
        );
        assert_eq!(results[0], Err(HwFailure::Timeout));
        assert_eq!(results[1], Ok(HwReply::Done), "the transport recovers after a lost reply");
        sim.inject(cdx_sys::sim::Fault::Eio { count: 1 }).unwrap();
        let results = run(&mut exec, vec![HwOp::RouteRegister(route(2, "eth0", "eth1"))]);
        assert!(
            matches!(&results[0], Err(HwFailure::Io(m)) if m.contains("netlink error 5")),
            "{results:?}"
        );
    }

    #[test]
    fn a_command_that_cannot_be_encoded_is_not_reported_as_a_cdx_answer() {
        let (_sim, commands, _events) = sim::spawn(SimConfig {
            interfaces: vec!["eth0".into(), "eth1".into()],
            ..SimConfig::default()
        })
        .unwrap();
        let mut exec = FciExecutor::new(Transport::new(commands), Duration::from_secs(2));
        // One direction IPv4, the other IPv6: no FPP conntrack command holds that.
        let mut mixed = spec(t("10.1.0.2", 40000, "10.2.0.2", 443), 0, 0);
        mixed.reply = t("fd02::2", 443, "fd01::2", 40000);
        let results = run(
            &mut exec,
            vec![
                HwOp::CtRegister(mixed),
                HwOp::CtUpdate(mixed),
                HwOp::CtRemaining(mixed),
                HwOp::RouteRegister(route(1, "eth1", "eth0")),
            ],
        );
        for result in &results[..3] {
            assert!(matches!(result, Err(HwFailure::Unencodable(_))), "{results:?}");
        }
        assert_eq!(results[3], Ok(HwReply::Done), "the transport is not disturbed");
    }

    #[test]
    fn removed_events_are_decoded() {
        let orig = fpp::Tuple::new(Ipv4Addr::new(10, 1, 0, 2), Ipv4Addr::new(10, 2, 0, 2), 1, 2);
        let cmd = Ct4Cmd::new(Action::Register, 17, orig, orig.inverse());
        let mut payload = [0u8; 44];
        Ct4Change::removed(&cmd).emit(&mut payload).unwrap();
        let mut frame = [0u8; 128];
        let len = fci::encode_event(FCode::Ipv4ConntrackChange, &payload, &mut frame).unwrap();
        let mut out = Vec::new();
        let mut ignored = 0;
        decode_events(&frame[..len], &mut out, &mut ignored);
        decode_events(b"garbage that is not netlink", &mut out, &mut ignored);
        assert_eq!(
            out,
            vec![HwEvent::Removed {
                proto: 17,
                orig: t("10.1.0.2", 1, "10.2.0.2", 2),
                reply: t("10.2.0.2", 2, "10.1.0.2", 1)
            }]
        );
        assert!(ignored >= 1);
    }
}
