//! The attached sim (`sim::attach`): requests answered inside `send`, in the caller's thread,
//! with the same bytes, model and faults as the spawned sim.

use std::time::{Duration, Instant};

use cdx_sys::fci::{DatagramSocket, FciError, FciSocket, Transport};
use cdx_sys::fpp::{Action, Ct4Cmd, CtEvent, FCode, ReturnCode};
use cdx_sys::sim::{self, Fault};

mod common;

use common::{config, route};

fn flow(sport: u16) -> Ct4Cmd {
    common::udp_flow(sport, (1, 0))
}

#[test]
fn replies_are_ready_when_send_returns() {
    let (handle, socket, _events) = sim::attach(config(Duration::from_millis(100))).unwrap();
    let mut t = Transport::new(FciSocket::from(socket));
    let started = Instant::now();
    for id in 1..=64 {
        t.send_payload(FCode::IpRoute, &route(id)).unwrap();
    }
    for id in 1..=64 {
        let reply = t.recv_until(Instant::now()).unwrap();
        assert_eq!((reply.seq, reply.rc), (id, ReturnCode::Ok), "in order, without waiting");
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(handle.snapshot().routes.len(), 64);
    let dup = t.call_payload(FCode::IpRoute, &route(1), Duration::from_secs(1)).unwrap();
    assert_eq!(dup.rc, ReturnCode::RtEntryAlreadyRegistered);
    handle.shutdown();
}

#[test]
fn faults_behave_as_with_the_spawned_sim() {
    let (handle, socket, _events) = sim::attach(config(Duration::from_millis(100))).unwrap();
    let mut t = Transport::new(FciSocket::from(socket));
    t.call_payload(FCode::IpRoute, &route(1), Duration::from_secs(1)).unwrap();
    handle.inject(Fault::DropReply { count: 1 }).unwrap();
    let started = Instant::now();
    let lost = t.call_payload(FCode::Ipv4Conntrack, &flow(1), Duration::from_secs(5));
    assert!(matches!(lost, Err(FciError::RepliesLost)), "{lost:?}");
    assert!(started.elapsed() < Duration::from_secs(1), "ENOBUFS, not a wait for the deadline");
    assert_eq!(handle.snapshot().conntracks.len(), 1, "the command took effect");
    handle.inject(Fault::Eio { count: 1 }).unwrap();
    let eio = t.call_payload(FCode::Ipv4Conntrack, &flow(2), Duration::from_secs(1));
    assert!(matches!(eio, Err(FciError::Netlink { errno: 5, .. })), "{eio:?}");
    handle
        .inject(Fault::ErrorCode { fcode: None, rc: ReturnCode::NotEnoughMemory, count: 1 })
        .unwrap();
    assert_eq!(
        t.call_payload(FCode::Ipv4Conntrack, &flow(3), Duration::from_secs(1)).unwrap().rc,
        ReturnCode::NotEnoughMemory
    );
    handle.inject(Fault::Delay { duration: Duration::from_millis(100), count: 1 }).unwrap();
    let started = Instant::now();
    assert_eq!(
        t.call_payload(FCode::Ipv4Conntrack, &flow(4), Duration::from_secs(1)).unwrap().rc,
        ReturnCode::Ok
    );
    assert!(started.elapsed() >= Duration::from_millis(100), "the delay stalls the command");
    handle.shutdown();
}

#[test]
fn aging_sends_removed_events_on_the_event_socket() {
    let (handle, socket, events) = sim::attach(config(Duration::from_millis(20))).unwrap();
    let mut t = Transport::new(FciSocket::from(socket));
    let timeout = cdx_sys::fpp::TimeoutCmd { protocol: 17, sam_4o6: 0, value1: 1, value2: 1 };
    assert_eq!(
        t.call_payload(FCode::Ipv4SetTimeout, &timeout, Duration::from_secs(1)).unwrap().rc,
        ReturnCode::Ok
    );
    t.call_payload(FCode::IpRoute, &route(1), Duration::from_secs(1)).unwrap();
    t.call_payload(FCode::Ipv4Conntrack, &flow(7), Duration::from_secs(1)).unwrap();
    handle.advance(Duration::from_secs(5));
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + Duration::from_secs(5);
    let event = loop {
        if let Ok(Some(len)) = events.try_recv(&mut buf) {
            let Ok(cdx_sys::fci::Frame::Event { fcode, payload }) =
                cdx_sys::fci::decode(&buf[..len])
            else {
                continue;
            };
            break CtEvent::parse(fcode, payload).unwrap().unwrap();
        }
        assert!(Instant::now() < deadline, "no REMOVED event");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(event.kind(), Action::Removed);
    assert_eq!(event.orig().sport, 7);
    assert!(handle.snapshot().conntracks.is_empty());
    handle.shutdown();
}

#[test]
fn the_flowtable_owner_and_the_other_abi_are_refused_in_the_callers_thread_too() {
    let config = cdx_sys::sim::SimConfig {
        abi: cdx_sys::fpp::Abi::Ask,
        ..config(Duration::from_millis(100))
    };
    let (handle, socket, _events) = sim::attach(config).unwrap();
    let mut t = Transport::new(FciSocket::from(socket));
    t.call_payload(FCode::IpRoute, &route(1), Duration::from_secs(1)).unwrap();
    let lsdk = t.call_payload(FCode::Ipv4Conntrack, &flow(1), Duration::from_secs(1)).unwrap();
    assert_eq!(lsdk.rc, ReturnCode::WrongCommandSize, "an LSDK-sized command to the ASK port");
    assert_eq!(
        cdx_sys::detect::detect(&mut t, Duration::from_secs(1)).unwrap().abi,
        cdx_sys::fpp::Abi::Ask
    );
    handle.inject(Fault::OffloadOwnerFlowtable).unwrap();
    let refused = t.call_payload(FCode::IpRoute, &route(2), Duration::from_secs(1)).unwrap_err();
    assert!(refused.is_offload_refused(), "{refused:?}");
    handle.shutdown();
}
