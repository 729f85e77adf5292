//! Translation between the engine's hardware commands and cdx's FPP commands over FCI.
//!
//! [`FciExecutor`] runs on the offload worker thread: it turns each [`HwOp`] into FPP payloads
//! in the cdx ABI in force (`encode`), sends them over an FCI transport (`fci.ko`, or the
//! software cdx on a socket pair: the same bytes either way), pipelines independent commands,
//! and classifies cdx's return codes the way the engine needs them. The ABI is decided by the
//! first command of a start, [`HwOp::Detect`]: fixed by the configuration, or found by asking
//! cdx (`cdx_sys::detect`) on this thread, never on the event loop. Before a route object is
//! registered, the worker makes sure cdx knows its input interface (cdx takes a route whose
//! input it does not know and then fails every connection on it with `0xFFFF`): a route out
//! of that interface is registered and removed at once, and the answer is kept for a while
//! (forgotten when cmmd registers or removes that interface: VLANs and PPPoE sessions,
//! `interfaces`, whose registrations go ahead of the routes on them in the same batch).
//! A reply lost to a full socket (`ENOBUFS`) is told apart from a timeout: replies come in
//! the order of the requests, so the requests sent before the next reply that arrives are
//! those whose replies were lost. The events side ([`decode_events`]) turns
//! `CONNTRACK_CHANGE` frames from the event socket into [`HwEvent`]s, reading only what cdx
//! writes in them.

mod encode;
mod interfaces;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use cdx_sys::detect::{self, DetectError};
use cdx_sys::fci::{self, DatagramSocket, FciError, Frame, Transport};
use cdx_sys::fpp::{self, Abi, Action, CtCmd, FCode, Family, ReturnCode, RouteCmd, V4, V6};
use hashbrown::HashMap;

use self::encode::{
    Encoded, classify, encode, encode_ct, encode_op, failure, if_name, probe_route, walked_ct,
};
use crate::core::flow::Tuple;
use crate::core::hw::{
    AbiChoice, AbiDecided, AbiSetting, CtSpec, HwEvent, HwFailure, HwOp, HwReply, HwRequest,
    HwResult, RouteSpec, WalkedCt, WalkedRoute,
};
use crate::core::net::{IfName, Mac};
use crate::edge::worker::Executor;

/// Longest walk accepted (entries), a guard against a table that never ends.
const WALK_LIMIT: usize = 1 << 20;

/// How long the answer of an interface probe is trusted (VLAN and PPPoE interfaces come and
/// go in cdx's table).
const INTERFACE_TTL: Duration = Duration::from_secs(10);

/// Executes hardware commands over an FCI transport.
pub struct FciExecutor<S: DatagramSocket> {
    transport: Transport<S>,
    timeout: Duration,
    /// The ABI commands are encoded in (NXP's until [`HwOp::Detect`] says otherwise).
    abi: Abi,
    /// Whether cdx knows an interface, and until when that answer is trusted.
    interfaces: HashMap<IfName, (bool, Instant)>,
    /// Interfaces whose probe failed in the batch being executed, and how: the routes on them
    /// fail the same way, unsent (one failure per route, as the engine counts them).
    probe_failures: HashMap<IfName, HwFailure>,
    /// A probe's registration may have happened without its removal (no answer): remove it
    /// before the next batch.
    probe_left: bool,
}

impl<S: DatagramSocket + Send + 'static> FciExecutor<S> {
    /// An executor waiting at most `timeout` for each reply.
    pub fn new(transport: Transport<S>, timeout: Duration) -> Self {
        FciExecutor {
            transport,
            timeout,
            abi: Abi::Lsdk,
            interfaces: HashMap::new(),
            probe_failures: HashMap::new(),
            probe_left: false,
        }
    }

    fn call(&mut self, e: &Encoded) -> Result<fci::Reply, FciError> {
        self.transport.call(e.fcode, &e.payload, self.timeout)
    }

    fn set_abi(&mut self, abi: Abi) {
        self.abi = abi;
        self.transport.set_abi(abi);
    }

    /// [`HwOp::Detect`]: the configured ABI, or cdx's answers to the probes.
    fn detect(&mut self, setting: AbiSetting) -> Result<HwReply, HwFailure> {
        let (abi, how) = match setting {
            AbiSetting::Fixed(abi) => (abi, AbiDecided::Configured),
            AbiSetting::Auto => match detect::detect(&mut self.transport, self.timeout) {
                Ok(found) => (found.abi, AbiDecided::Detected(found)),
                Err(DetectError::OffloadOwnerNotCmm) => return Err(HwFailure::OffloadRefused),
                Err(DetectError::Fci(e)) => return Err(failure(&e)),
                Err(other) => return Err(HwFailure::Io(other.to_string())),
            },
        };
        self.set_abi(abi);
        Ok(HwReply::Abi(AbiChoice { abi, how }))
    }

    fn run_one(&mut self, op: &HwOp) -> Result<HwReply, HwFailure> {
        match op {
            HwOp::Detect(setting) => self.detect(*setting),
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
            HwOp::WalkInterfaces => {
                let (transport, timeout, abi) = (&mut self.transport, self.timeout, self.abi);
                interfaces::walk(abi, &mut |fcode, payload| {
                    transport.call(fcode, payload, timeout).map_err(|e| failure(&e))
                })
            }
            _ => {
                let e = encode_op(self.abi, op)?;
                let reply = self.call(&e).map_err(|e| failure(&e))?;
                classify(op, reply.rc, &reply.payload)
            }
        }
    }

    /// A conntrack register cdx answered "already registered" (a restart without reconcile,
    /// a lost reply): cdx keeps the port and MAC it inserted then, so the connection is
    /// deregistered and registered anew.
    fn register_anew(&mut self, op: &HwOp, spec: &CtSpec) -> Result<HwReply, HwFailure> {
        let gone = encode_ct(self.abi, Action::Deregister, spec)?;
        self.call(&gone).map_err(|e| failure(&e))?;
        let e = encode_op(self.abi, op)?;
        let reply = self.call(&e).map_err(|e| failure(&e))?;
        classify(op, reply.rc, &reply.payload)
    }

    /// Whether cdx knows `name`: from a fresh enough probe, or a new one (`Ok(None)`: its
    /// answer says nothing, and cdx judges the route itself).
    fn knows(&mut self, name: IfName, now: Instant) -> Result<Option<bool>, HwFailure> {
        if let Some((known, until)) = self.interfaces.get(&name)
            && *until > now
        {
            return Ok(Some(*known));
        }
        let known = self.probe(&name)?;
        if let Some(known) = known {
            self.interfaces.insert(name, (known, now + INTERFACE_TTL));
        }
        Ok(known)
    }

    fn probe(&mut self, name: &IfName) -> Result<Option<bool>, HwFailure> {
        let register = probe_route(Action::Register, name)?;
        let deregister = probe_route(Action::Deregister, name)?;
        for _ in 0..2 {
            let reply = self.call(&register).map_err(|e| {
                let failed = failure(&e);
                self.probe_left |= failed.outcome_unknown();
                failed
            })?;
            match reply.rc {
                ReturnCode::Ok => {
                    self.call(&deregister).map_err(|e| failure(&e))?;
                    return Ok(Some(true));
                }
                ReturnCode::UnknownInterface => return Ok(Some(false)),
                // A probe left by an earlier run: remove it and ask again.
                ReturnCode::RtEntryAlreadyRegistered => {
                    self.call(&deregister).map_err(|e| failure(&e))?;
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Probe the inputs of the routes `batch` registers whose answer is not fresh (before
    /// the batch is pipelined).
    fn check_inputs(&mut self, batch: &[HwRequest]) {
        self.probe_failures.clear();
        if std::mem::take(&mut self.probe_left)
            && let Ok(deregister) = probe_route(Action::Deregister, &IfName::default())
        {
            // cdx finds a route to remove by its id alone.
            let _ = self.call(&deregister);
        }
        let now = Instant::now();
        // What cdx answered about an interface cmmd registers or removes now no longer holds;
        // a route on it in this batch follows its registration, and cdx judges it.
        let mut registered = Vec::new();
        for request in batch {
            if let HwOp::ItfRegister(spec) | HwOp::ItfDeregister(spec) = &request.op {
                self.interfaces.remove(&spec.name());
                registered.push(spec.name());
            }
        }
        for request in batch {
            if let HwOp::RouteRegister(r) = &request.op
                && !registered.contains(&r.input)
                && !r.input.as_str().is_empty()
                && !self.probe_failures.contains_key(&r.input)
                && let Err(failed) = self.knows(r.input, now)
            {
                self.probe_failures.insert(r.input, failed);
            }
        }
    }

    /// A route on an input cdx does not know, or whose probe failed, as the engine hears of
    /// it (nothing is sent).
    fn unknown_input(&self, op: &HwOp) -> Option<HwFailure> {
        let HwOp::RouteRegister(r) = op else { return None };
        if let Some(failed) = self.probe_failures.get(&r.input) {
            return Some(failed.clone());
        }
        let unknown = self.interfaces.get(&r.input).is_some_and(|(known, _)| !known);
        unknown.then_some(HwFailure::UnknownInterface(r.input))
    }

    fn walk_family<F: Family>(&mut self, out: &mut Vec<WalkedCt>) -> Result<(), HwFailure>
    where
        F::Addr: Into<IpAddr>,
    {
        let mut query = CtCmd::<F>::walk_step(Action::Query);
        for _ in 0..WALK_LIMIT {
            let e = encode(self.abi, F::CONNTRACK, &query)?;
            let reply = self.call(&e).map_err(|e| failure(&e))?;
            match reply.rc {
                ReturnCode::Ok => {
                    let entry = fpp::query::conntrack_from_walk::<F>(self.abi, &reply.payload)
                        .map_err(|e| HwFailure::Io(format!("bad walk entry: {e}")))?;
                    out.push(walked_ct(&entry));
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
            let e = encode(self.abi, FCode::IpRoute, &query)?;
            let reply = self.call(&e).map_err(|e| failure(&e))?;
            match reply.rc {
                ReturnCode::Ok => {
                    let r = fpp::query::route_from_walk(&reply.payload)
                        .map_err(|e| HwFailure::Io(format!("bad walk entry: {e}")))?;
                    let name = |n: Option<fpp::IfName>| n.as_ref().map(if_name).unwrap_or_default();
                    // A probe of an interface left by an earlier run is no route object.
                    if r.id == encode::PROBE_ROUTE_ID {
                        continue;
                    }
                    routes.push(WalkedRoute {
                        spec: RouteSpec {
                            id: u16::try_from(r.id).unwrap_or(0),
                            output: name(r.output),
                            input: name(r.input),
                            mac: Mac(r.mac),
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
    /// A conntrack register cdx answers "already registered" is registered anew at the end
    /// of the run ([`FciExecutor::register_anew`]); the run holds nothing after it that
    /// could see the difference ([`joins_run`]).
    fn run_pipelined(&mut self, batch: &[HwRequest], out: &mut Vec<HwResult>) {
        // Requests in flight, in the order they were sent (cdx answers in that order, so a
        // reply is almost always the front's).
        let mut sent: VecDeque<(u32, usize)> = VecDeque::with_capacity(self.transport.window());
        let mut results: Vec<Option<Result<HwReply, HwFailure>>> = vec![None; batch.len()];
        let mut next = 0;
        // A reply was lost since the last one that arrived.
        let mut lost = false;
        // Conntrack registers to do again (answered "already registered").
        let mut anew: Vec<usize> = Vec::new();
        while next < batch.len() || !sent.is_empty() {
            while next < batch.len() && sent.len() < self.transport.window() {
                let op = &batch[next].op;
                let encoded = match self.unknown_input(op) {
                    Some(refused) => Err(refused),
                    None => encode_op(self.abi, op),
                };
                match encoded {
                    Err(refused) => results[next] = Some(Err(refused)),
                    Ok(e) => match self.transport.send(e.fcode, &e.payload) {
                        Ok(seq) => sent.push_back((seq, next)),
                        Err(FciError::WindowFull(_)) => break,
                        Err(err) => results[next] = Some(Err(failure(&err))),
                    },
                }
                next += 1;
            }
            if sent.is_empty() {
                continue;
            }
            match self.transport.recv_within(self.timeout) {
                Ok(reply) => {
                    let Some(pos) = sent.iter().position(|(s, _)| *s == reply.seq) else {
                        continue;
                    };
                    let pos = if std::mem::take(&mut lost) {
                        // Answered in order: the replies of those sent before it were lost.
                        for (seq, i) in sent.drain(..pos) {
                            self.transport.forget(seq);
                            results[i] = Some(Err(HwFailure::ReplyLost));
                        }
                        0
                    } else {
                        pos
                    };
                    let Some((_, i)) = sent.remove(pos) else { continue };
                    if reply.rc == ReturnCode::CtEntryAlreadyRegistered
                        && matches!(batch[i].op, HwOp::CtRegister(_))
                    {
                        anew.push(i);
                        continue;
                    }
                    results[i] = Some(classify(&batch[i].op, reply.rc, &reply.payload));
                }
                Err(FciError::RepliesLost) => lost = true,
                Err(err) => {
                    if let Some(seq) = err.seq()
                        && let Some(pos) = sent.iter().position(|(s, _)| *s == seq)
                    {
                        let Some((_, i)) = sent.remove(pos) else { continue };
                        results[i] = Some(Err(failure(&err)));
                        continue;
                    }
                    // Timeout or a broken socket: every request in flight fails (lost, if a
                    // reply was reported lost meanwhile).
                    let outcome = if lost { HwFailure::ReplyLost } else { failure(&err) };
                    for (seq, i) in sent.drain(..) {
                        self.transport.forget(seq);
                        results[i] = Some(Err(outcome.clone()));
                    }
                    lost = false;
                }
            }
        }
        anew.sort_unstable();
        for i in anew {
            if let HwOp::CtRegister(spec) = &batch[i].op {
                results[i] = Some(self.register_anew(&batch[i].op, spec));
            }
        }
        for (req, result) in batch.iter().zip(results) {
            out.push(HwResult { tag: req.tag, outcome: result.unwrap_or(Err(HwFailure::Timeout)) });
        }
    }
}

/// Detections, walks and resets run one at a time; everything else is pipelined. A
/// conntrack register must not overtake the route register it references: cdx executes in
/// arrival order, which the pipeline keeps (one socket, sent in order).
fn pipelinable(op: &HwOp) -> bool {
    !matches!(op, HwOp::Detect(_) | HwOp::Reset | HwOp::Walk | HwOp::WalkInterfaces)
}

/// Whether `op` joins a pipelined run that `has_register` (holds a conntrack register).
/// Such a register may have to be done again at the end of the run (cdx held the
/// connection from before): only registers, whose outcome does not depend on what another
/// connection holds, are sent before that; an op that could see it (a deregister, an
/// update, a query, a route removal) starts a new run.
fn joins_run(op: &HwOp, has_register: bool) -> bool {
    pipelinable(op) && (!has_register || matches!(op, HwOp::CtRegister(_) | HwOp::RouteRegister(_)))
}

impl<S: DatagramSocket + Send + 'static> Executor for FciExecutor<S> {
    fn execute(&mut self, batch: &[HwRequest], out: &mut Vec<HwResult>) {
        self.check_inputs(batch);
        let mut start = 0;
        while start < batch.len() {
            let (mut end, mut has_register) = (start, false);
            while end < batch.len() && joins_run(&batch[end].op, has_register) {
                has_register |= matches!(batch[end].op, HwOp::CtRegister(_));
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
