//! The conntrack crate against the real kernel, in network namespaces: the events of real TCP
//! and UDP flows through a masquerading, port-forwarding router; dump, get, update, create and
//! delete checked against the `conntrack` tool; overrun on a tiny receive buffer; the socket as
//! a mio source. Each test builds its own namespaces (unique names), so they run in parallel.
//!
//! The assertions name the flows the tests made (addresses, ports, states, status bits,
//! counters), so a parser that misread any of them would fail here.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use cmmd_tests::conntrack_cli::{self, ListedEntry};
use cmmd_tests::topology::{
    CLIENT_V4, CLIENT_V6, FORWARDED_PORT, ROUTER_CLIENT_SIDE_V4, ROUTER_CLIENT_SIDE_V6, SERVER_V4,
    SERVER_V6, SERVICE_PORT,
};
use cmmd_tests::traffic::{
    TCP_REPLY_PREFIX, TcpServer, UdpEchoServer, tcp_exchange, udp_exchange, wait_for,
};
use cmmd_tests::{Netns, Topology, require_root};
use conntrack::{
    Conntrack, Create, CtSocket, Datagram, Event, EventKind, Family, Groups, Message, RecvError,
    RequestError, Status, TcpState, Tuple, Update, request,
};

const TCP: u8 = 6;
const UDP: u8 = 17;

/// An event socket inside `netns`, non-blocking, with a large receive buffer.
fn subscribe(netns: &Netns) -> CtSocket {
    let events = netns.run_in(CtSocket::events).expect("enter namespace").expect("subscribe");
    events.set_nonblocking(true).expect("non-blocking");
    events.set_receive_buffer(8 << 20).expect("receive buffer");
    events.set_broadcast_error(true).expect("NETLINK_BROADCAST_ERROR");
    events
}

/// A request socket inside `netns` (blocking).
fn requests(netns: &Netns) -> CtSocket {
    netns.run_in(CtSocket::requests).expect("enter namespace").expect("request socket")
}

/// Reads events of the flow `of_flow` until `done` says the sequence is complete or `timeout`
/// passes. While it waits it dumps the table every half second: a dump removes expired entries
/// at once, so their DESTROY comes now instead of at the kernel's next garbage collection.
fn collect(
    events: &CtSocket,
    requests: &CtSocket,
    timeout: Duration,
    of_flow: impl Fn(&Conntrack) -> bool,
    done: impl Fn(&[Event]) -> bool,
) -> Vec<Event> {
    let deadline = Instant::now() + timeout;
    let mut next_sweep = Instant::now();
    let mut buf = vec![0; 1 << 16];
    let mut seen = Vec::new();
    while Instant::now() < deadline && !done(&seen) {
        match events.recv(&mut buf) {
            Ok(length) => {
                for message in Datagram::new(&buf[..length]) {
                    let Message::Conntrack(message) = message.expect("kernel datagrams decode")
                    else {
                        continue;
                    };
                    let event = Event::from_message(&message)
                        .expect("events decode")
                        .expect("only events here");
                    if of_flow(&event.ct) {
                        seen.push(event);
                    }
                }
            }
            Err(RecvError::WouldBlock) => {
                if Instant::now() >= next_sweep {
                    requests.dump_all(None).expect("dump");
                    next_sweep = Instant::now() + Duration::from_millis(500);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(error) => panic!("receiving events: {error}"),
        }
    }
    seen
}

fn ends_with_destroy(events: &[Event]) -> bool {
    events.last().is_some_and(|event| event.kind == EventKind::Destroy)
}

fn tcp_state(event: &Event) -> Option<TcpState> {
    event.ct.tcp.map(|tcp| tcp.state)
}

fn position(events: &[Event], what: &str, wanted: impl Fn(&Event) -> bool) -> usize {
    events.iter().position(wanted).unwrap_or_else(|| panic!("no {what} event in {events:#?}"))
}

/// A TCP connection through the masquerading router, from SYN to DESTROY.
fn masqueraded_tcp_connection(ipv6: bool) {
    require_root();
    let topology = Topology::new().expect("topology");
    let events = subscribe(&topology.router);
    let requests = requests(&topology.router);
    let server = TcpServer::start(&topology.server, Topology::server_addr(ipv6, SERVICE_PORT))
        .expect("server");

    let exchange = tcp_exchange(&topology.client, server.addr, b"cmmd").expect("exchange");
    assert_eq!(exchange.reply, [TCP_REPLY_PREFIX, b"cmmd"].concat());
    let port = exchange.local.port();
    let (client, server_ip): (IpAddr, IpAddr) = if ipv6 {
        (CLIENT_V6.into(), SERVER_V6.into())
    } else {
        (CLIENT_V4.into(), SERVER_V4.into())
    };
    let orig = Tuple::new(client, server_ip, TCP, port, SERVICE_PORT);
    let seen = collect(
        &events,
        &requests,
        Duration::from_secs(30),
        |ct| ct.orig == orig,
        ends_with_destroy,
    );

    // NEW: the SYN, unreplied, already masqueraded.
    let new = seen.first().expect("events of the flow");
    assert_eq!((new.kind, tcp_state(new)), (EventKind::New, Some(TcpState::SynSent)), "{seen:#?}");
    assert_eq!(new.ct.family, if ipv6 { Family::Ipv6 } else { Family::Ipv4 });
    assert_eq!(
        new.ct.reply,
        Tuple::new(server_ip, Topology::masquerade_addr(ipv6), TCP, SERVICE_PORT, port)
    );
    assert!(new.ct.status.contains(Status::CONFIRMED | Status::SRC_NAT));
    assert!(!new.ct.status.intersects(Status::SEEN_REPLY | Status::ASSURED));
    assert_eq!(new.ct.timeout, Some(120), "SYN_SENT timeout");

    // UPDATE SYN_RECV, then ESTABLISHED with ASSURED in the same event, then closing states.
    let syn_recv = position(&seen, "SYN_RECV", |event| tcp_state(event) == Some(TcpState::SynRecv));
    let established =
        position(&seen, "ESTABLISHED", |event| tcp_state(event) == Some(TcpState::Established));
    let closing = position(&seen, "closing", |event| {
        matches!(
            tcp_state(event),
            Some(TcpState::FinWait | TcpState::CloseWait | TcpState::LastAck | TcpState::TimeWait)
        )
    });
    let destroy = seen.len() - 1;
    assert!(
        0 < syn_recv && syn_recv < established && established < closing && closing < destroy,
        "{seen:#?}"
    );
    assert!(seen[syn_recv].ct.status.contains(Status::SEEN_REPLY));
    assert!(seen[established].ct.status.contains(Status::SEEN_REPLY | Status::ASSURED));
    assert!(seen[1..destroy].iter().all(|event| event.kind == EventKind::Update));
    assert!(
        seen.iter().any(|event| tcp_state(event) == Some(TcpState::TimeWait)),
        "the client closed first"
    );

    // DESTROY: counters and timestamps (accounting and timestamping are on in the router).
    let destroyed = &seen[destroy].ct;
    assert!(destroyed.status.contains(Status::DYING | Status::ASSURED));
    let counters = destroyed.counters.expect("counters");
    let header = if ipv6 { 60 } else { 40 };
    assert!((4..=8).contains(&counters.orig.packets), "{counters:?}");
    assert!((3..=8).contains(&counters.reply.packets), "{counters:?}");
    assert!(counters.orig.bytes >= counters.orig.packets * header + 4, "{counters:?}");
    assert!(counters.reply.bytes >= counters.reply.packets * header + 10, "{counters:?}");
    let timestamp = destroyed.timestamp.expect("timestamps");
    assert!(timestamp.stop.expect("stop time") >= timestamp.start);
    assert!(
        seen.iter().all(|event| event.ct.id == new.ct.id && new.ct.id.is_some()),
        "one entry, one id"
    );
}

#[test]
fn tcp_over_ipv4_from_syn_to_destroy() {
    masqueraded_tcp_connection(false);
}

#[test]
fn tcp_over_ipv6_from_syn_to_destroy() {
    masqueraded_tcp_connection(true);
}

#[test]
fn port_forward_shows_in_the_reply_tuple() {
    require_root();
    let topology = Topology::new().expect("topology");
    let events = subscribe(&topology.router);
    let requests = requests(&topology.router);
    for ipv6 in [false, true] {
        let server = TcpServer::start(&topology.server, Topology::server_addr(ipv6, SERVICE_PORT))
            .expect("server");
        let exchange = tcp_exchange(&topology.client, Topology::forward_addr(ipv6), b"forwarded")
            .expect("exchange");
        assert_eq!(exchange.reply, [TCP_REPLY_PREFIX, b"forwarded"].concat());
        let port = exchange.local.port();
        let (client, public, server_ip): (IpAddr, IpAddr, IpAddr) = if ipv6 {
            (CLIENT_V6.into(), ROUTER_CLIENT_SIDE_V6.into(), SERVER_V6.into())
        } else {
            (CLIENT_V4.into(), ROUTER_CLIENT_SIDE_V4.into(), SERVER_V4.into())
        };
        let orig = Tuple::new(client, public, TCP, port, FORWARDED_PORT);
        let seen = collect(
            &events,
            &requests,
            Duration::from_secs(10),
            |ct| ct.orig == orig,
            |seen| !seen.is_empty(),
        );
        let new = seen.first().expect("NEW event of the forwarded flow");
        assert_eq!(new.kind, EventKind::New);
        // DNAT: the reply comes from the server's real address and port, to the client itself.
        assert_eq!(new.ct.reply, Tuple::new(server_ip, client, TCP, SERVICE_PORT, port));
        assert!(new.ct.status.contains(Status::DST_NAT));
        assert!(!new.ct.status.contains(Status::SRC_NAT), "forwarded flows are not masqueraded");
        drop(server);
    }
}

#[test]
fn udp_new_update_assured_destroy() {
    require_root();
    let topology = Topology::new().expect("topology");
    let events = subscribe(&topology.router);
    let requests = requests(&topology.router);
    let server =
        UdpEchoServer::start(&topology.server, Topology::server_addr(false, 5353)).expect("server");

    let local = udp_exchange(&topology.client, server.addr, 7, Duration::from_millis(500))
        .expect("exchange");
    let orig = Tuple::new(CLIENT_V4.into(), SERVER_V4.into(), UDP, local.port(), 5353);
    let seen = collect(
        &events,
        &requests,
        Duration::from_secs(20),
        |ct| ct.orig == orig,
        ends_with_destroy,
    );

    let kinds: Vec<EventKind> = seen.iter().map(|event| event.kind).collect();
    assert_eq!(kinds.first(), Some(&EventKind::New), "{seen:#?}");
    assert_eq!(kinds.last(), Some(&EventKind::Destroy), "{seen:#?}");
    let new = &seen[0].ct;
    assert_eq!(
        new.reply,
        Tuple::new(SERVER_V4.into(), Topology::masquerade_addr(false), UDP, 5353, local.port())
    );
    assert!(!new.status.contains(Status::SEEN_REPLY));
    let replied = position(&seen, "SEEN_REPLY", |event| {
        event.kind == EventKind::Update && event.ct.status.contains(Status::SEEN_REPLY)
    });
    let assured = position(&seen, "ASSURED", |event| event.ct.status.contains(Status::ASSURED));
    assert!(0 < replied && replied < assured && assured < seen.len() - 1, "{seen:#?}");
    assert!(
        !seen[replied].ct.status.contains(Status::ASSURED),
        "ASSURED needs more than 2 s of two-way traffic"
    );
    // Seven datagrams each way, "ping 0" to "ping 6": 20 + 8 + 6 bytes each.
    let counters = seen[seen.len() - 1].ct.counters.expect("counters");
    assert_eq!((counters.orig.packets, counters.orig.bytes), (7, 7 * 34));
    assert_eq!((counters.reply.packets, counters.reply.bytes), (7, 7 * 34));
}

fn listed<'a>(entries: &'a [ListedEntry], orig_src: &str, sport: u16) -> Option<&'a ListedEntry> {
    let sport = sport.to_string();
    entries.iter().find(|entry| {
        entry.value("src", 0) == Some(orig_src) && entry.value("sport", 0) == Some(&sport)
    })
}

#[test]
fn dump_and_get_return_entries_made_with_the_conntrack_tool() {
    require_root();
    let netns = Netns::new("ctd").expect("namespace");
    conntrack_cli::insert(
        &netns,
        &[
            "-s",
            "192.0.2.9",
            "-d",
            "198.51.100.9",
            "-p",
            "udp",
            "--sport",
            "5000",
            "--dport",
            "53",
            "-t",
            "60",
        ],
    )
    .expect("insert udp");
    conntrack_cli::insert(
        &netns,
        &[
            "-s",
            "2001:db8::9",
            "-d",
            "2001:db8:1::9",
            "-p",
            "tcp",
            "--sport",
            "5001",
            "--dport",
            "80",
            "--state",
            "ESTABLISHED",
            "-u",
            "SEEN_REPLY,ASSURED",
            "-t",
            "120",
            "--mark",
            "7",
        ],
    )
    .expect("insert tcp");
    let requests = requests(&netns);

    let all = requests.dump_all(None).expect("dump");
    assert_eq!(all.len(), 2, "{all:#?}");
    let udp =
        Tuple::new("192.0.2.9".parse().unwrap(), "198.51.100.9".parse().unwrap(), UDP, 5000, 53);
    let tcp =
        Tuple::new("2001:db8::9".parse().unwrap(), "2001:db8:1::9".parse().unwrap(), TCP, 5001, 80);
    let udp_entry = all.iter().find(|ct| ct.orig == udp).expect("the udp entry");
    let tcp_entry = all.iter().find(|ct| ct.orig == tcp).expect("the tcp entry");
    assert_eq!(
        (udp_entry.family, udp_entry.reply, udp_entry.status),
        (Family::Ipv4, udp.reversed(), Status::CONFIRMED)
    );
    assert!((55..=60).contains(&udp_entry.timeout.expect("timeout")));
    assert_eq!(
        (tcp_entry.family, tcp_entry.reply, tcp_entry.mark),
        (Family::Ipv6, tcp.reversed(), Some(7))
    );
    assert_eq!(tcp_entry.status, Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED);
    assert_eq!(tcp_entry.tcp.map(|tcp| tcp.state), Some(TcpState::Established));
    assert!((115..=120).contains(&tcp_entry.timeout.expect("timeout")));
    assert_eq!(tcp_entry.use_count, Some(1));

    let ipv4_only = requests.dump_all(Some(Family::Ipv4)).expect("dump ipv4");
    assert_eq!(ipv4_only.iter().map(|ct| ct.orig).collect::<Vec<_>>(), [udp]);

    let got = requests.get(&tcp, 0).expect("get").expect("the tcp entry exists");
    assert_eq!((got.orig, got.id), (tcp, tcp_entry.id));
    let absent = Tuple { src_port: 5002, ..tcp };
    assert_eq!(requests.get(&absent, 0).expect("get"), None);
}

#[test]
fn timeout_and_mark_updates_are_visible_to_the_conntrack_tool() {
    require_root();
    let netns = Netns::new("ctu").expect("namespace");
    let events = subscribe(&netns);
    conntrack_cli::insert(
        &netns,
        &[
            "-s",
            "192.0.2.1",
            "-d",
            "198.51.100.7",
            "-p",
            "tcp",
            "--sport",
            "40000",
            "--dport",
            "443",
            "--state",
            "ESTABLISHED",
            "-u",
            "SEEN_REPLY,ASSURED",
            "-t",
            "100",
        ],
    )
    .expect("insert");
    let requests = requests(&netns);
    let orig =
        Tuple::new("192.0.2.1".parse().unwrap(), "198.51.100.7".parse().unwrap(), TCP, 40000, 443);
    let mut buf = Vec::new();
    let change = Update { timeout: Some(777), mark: Some(7), ..Update::default() };
    request::update(&mut buf, &orig, 0, change, requests.next_seq(), true);
    requests.request_ack(&buf).expect("update acknowledged");

    let listed_entries = conntrack_cli::list(&netns).expect("conntrack -L");
    let entry = listed(&listed_entries, "192.0.2.1", 40000).expect("listed");
    let timeout = entry.timeout;
    assert!((775..=777).contains(&timeout), "{}", entry.line);
    assert_eq!(entry.value("mark", 0), Some("7"), "{}", entry.line);
    assert_eq!(entry.state.as_deref(), Some("ESTABLISHED"));

    // The change came back as an UPDATE event too.
    let update = collect(
        &events,
        &requests,
        Duration::from_secs(5),
        |ct| ct.orig == orig,
        |seen| seen.iter().any(|event| event.kind == EventKind::Update),
    );
    let update = update.iter().find(|event| event.kind == EventKind::Update).expect("UPDATE event");
    assert_eq!((update.ct.timeout, update.ct.mark), (Some(777), Some(7)));

    // Updating an entry that does not exist never creates it.
    buf.clear();
    let absent = Tuple { src_port: 40001, ..orig };
    request::update(&mut buf, &absent, 0, change, requests.next_seq(), true);
    assert!(matches!(
        requests.request_ack(&buf),
        Err(RequestError::Kernel { errno: libc::ENOENT })
    ));
    assert!(listed(&conntrack_cli::list(&netns).expect("list"), "192.0.2.1", 40001).is_none());
}

#[test]
fn create_then_delete_by_tuple_and_id() {
    require_root();
    let netns = Netns::new("ctx").expect("namespace");
    let requests = requests(&netns);
    let orig = Tuple::new(
        "192.0.2.50".parse().unwrap(),
        "198.51.100.50".parse().unwrap(),
        TCP,
        33000,
        8443,
    );
    let entry = Create {
        status: Status::SEEN_REPLY | Status::ASSURED,
        mark: Some(0x4000),
        tcp_state: Some(TcpState::Established),
        ..Create::new(orig, 300)
    };
    let mut buf = Vec::new();
    request::create(&mut buf, &entry, requests.next_seq());
    requests.request_ack(&buf).expect("create acknowledged");
    assert!(
        matches!(requests.request_ack(&buf), Err(RequestError::Kernel { errno: libc::EEXIST })),
        "NLM_F_EXCL: a second create is refused"
    );

    let listed_entries = conntrack_cli::list(&netns).expect("conntrack -L");
    let line = listed(&listed_entries, "192.0.2.50", 33000).expect("the created entry is listed");
    assert_eq!(line.state.as_deref(), Some("ESTABLISHED"));
    assert_eq!(
        (line.value("dport", 0), line.value("src", 1)),
        (Some("8443"), Some("198.51.100.50"))
    );
    assert_eq!(line.value("mark", 0), Some("16384"));
    assert!(line.has_flag("ASSURED"), "{}", line.line);

    let id = requests.get(&orig, 0).expect("get").expect("exists").id.expect("id");
    buf.clear();
    request::delete(&mut buf, &orig, 0, Some(id.wrapping_add(1)), requests.next_seq());
    assert!(
        matches!(requests.request_ack(&buf), Err(RequestError::Kernel { errno: libc::ENOENT })),
        "a delete with another id leaves the entry alone"
    );
    assert!(requests.get(&orig, 0).expect("get").is_some());
    buf.clear();
    request::delete(&mut buf, &orig, 0, Some(id), requests.next_seq());
    requests.request_ack(&buf).expect("delete acknowledged");
    assert_eq!(requests.get(&orig, 0).expect("get"), None);
    assert!(listed(&conntrack_cli::list(&netns).expect("list"), "192.0.2.50", 33000).is_none());
}

/// `count` entries 198.18.x.y:1000 -> 198.19.0.1:80, created in batches of 100 per datagram.
fn create_burst(requests: &CtSocket, count: u16) {
    let mut buf = Vec::new();
    for batch in 0..count.div_ceil(100) {
        buf.clear();
        for i in batch * 100..((batch + 1) * 100).min(count) {
            let [hi, lo] = i.to_be_bytes();
            let orig = Tuple::new(
                Ipv4Addr::new(198, 18, hi, lo).into(),
                Ipv4Addr::new(198, 19, 0, 1).into(),
                UDP,
                1000,
                80,
            );
            request::create(&mut buf, &Create::new(orig, 60), requests.next_seq());
        }
        requests.send(&buf).expect("send burst");
    }
}

#[test]
fn overrun_on_a_tiny_buffer_is_reported_as_overrun() {
    require_root();
    let netns = Netns::new("cto").expect("namespace");
    let events = netns.run_in(CtSocket::events).expect("enter").expect("subscribe");
    events.set_nonblocking(true).expect("non-blocking");
    let granted = events.set_receive_buffer(4096).expect("receive buffer");
    assert!((4096..64 << 10).contains(&granted), "granted {granted}");
    let requests = requests(&netns);
    // The acknowledgements must fit, or the request socket would overrun instead.
    assert!(
        requests.set_receive_buffer(16 << 20).expect("large buffer") >= 16 << 20,
        "SO_RCVBUFFORCE past rmem_max"
    );

    create_burst(&requests, 2000);
    let mut buf = vec![0; 1 << 16];
    let (mut overruns, mut received) = (0, 0);
    loop {
        match events.recv(&mut buf) {
            Ok(length) => received += Datagram::new(&buf[..length]).count(),
            Err(RecvError::Overrun) => overruns += 1,
            Err(RecvError::WouldBlock) => break,
            Err(error) => panic!("an overrun must not surface as {error}"),
        }
    }
    assert!(overruns >= 1, "no overrun reported ({received} events received)");
    assert!(received < 2000, "{received} events fit in a {granted}-byte buffer?");
    assert_eq!(requests.dump_all(None).expect("dump").len(), 2000, "every entry was created");

    // After an overrun the socket keeps working.
    conntrack_cli::insert(
        &netns,
        &[
            "-s",
            "192.0.2.1",
            "-d",
            "192.0.2.2",
            "-p",
            "udp",
            "--sport",
            "1",
            "--dport",
            "2",
            "-t",
            "9",
        ],
    )
    .expect("insert after the overrun");
    // A datagram larger than the buffer is reported as truncated, with its real length.
    let mut tiny = [0; 16];
    let truncated = wait_for(Duration::from_secs(5), Duration::from_millis(10), || {
        match events.recv(&mut tiny) {
            Err(RecvError::WouldBlock) => None,
            other => Some(other),
        }
    });
    assert!(
        matches!(truncated, Some(Err(RecvError::Truncated { length, capacity: 16 })) if length > 100),
        "{truncated:?}"
    );
    conntrack_cli::insert(
        &netns,
        &[
            "-s",
            "192.0.2.3",
            "-d",
            "192.0.2.4",
            "-p",
            "udp",
            "--sport",
            "3",
            "--dport",
            "4",
            "-t",
            "9",
        ],
    )
    .expect("insert after the overrun");
    let event = wait_for(Duration::from_secs(5), Duration::from_millis(10), || {
        match events.recv(&mut buf) {
            Ok(length) => Some(length),
            Err(RecvError::WouldBlock) => None,
            Err(error) => panic!("after the overrun: {error}"),
        }
    });
    assert!(event.is_some(), "events flow again after the overrun");
}

#[test]
fn the_event_socket_wakes_a_mio_poll() {
    require_root();
    let netns = Netns::new("ctm").expect("namespace");
    let mut events = subscribe(&netns);
    let mut poll = mio::Poll::new().expect("poll");
    poll.registry()
        .register(&mut events, mio::Token(7), mio::Interest::READABLE)
        .expect("register");
    conntrack_cli::insert(
        &netns,
        &[
            "-s",
            "192.0.2.77",
            "-d",
            "198.51.100.77",
            "-p",
            "udp",
            "--sport",
            "7",
            "--dport",
            "77",
            "-t",
            "30",
        ],
    )
    .expect("insert");
    let mut ready = mio::Events::with_capacity(4);
    poll.poll(&mut ready, Some(Duration::from_secs(5))).expect("poll");
    assert_eq!(
        ready.iter().map(|event| (event.token(), event.is_readable())).collect::<Vec<_>>(),
        [(mio::Token(7), true)]
    );
    let mut buf = vec![0; 1 << 16];
    let length = events.recv(&mut buf).expect("readable means a datagram");
    let Some(Ok(Message::Conntrack(message))) = Datagram::new(&buf[..length]).next() else {
        panic!("not conntrack")
    };
    let event = Event::from_message(&message).expect("decodes").expect("an event");
    assert_eq!(event.kind, EventKind::New);
    assert_eq!(
        event.ct.orig,
        Tuple::new("192.0.2.77".parse().unwrap(), "198.51.100.77".parse().unwrap(), UDP, 7, 77)
    );
    assert_eq!(
        events.recv(&mut buf).err().map(|error| matches!(error, RecvError::WouldBlock)),
        Some(true)
    );
}

#[test]
fn a_destroy_only_subscription_sees_only_destroys() {
    require_root();
    let netns = Netns::new("ctg").expect("namespace");
    let destroys =
        netns.run_in(|| CtSocket::events_for(Groups::DESTROY)).expect("enter").expect("subscribe");
    destroys.set_nonblocking(true).expect("non-blocking");
    let tuple = ["-s", "192.0.2.5", "-d", "192.0.2.6", "-p", "udp", "--sport", "5", "--dport", "6"];
    conntrack_cli::insert(&netns, &[&tuple[..], &["-t", "30"]].concat()).expect("insert");
    netns.exec("conntrack", &[&["-D"][..], &tuple[..]].concat()).expect("delete");
    let mut buf = vec![0; 1 << 16];
    let mut kinds = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match destroys.recv(&mut buf) {
            Ok(length) => {
                for message in Datagram::new(&buf[..length]) {
                    let Message::Conntrack(message) = message.expect("decodes") else { continue };
                    kinds.push(message.event_kind());
                }
            }
            Err(RecvError::WouldBlock) => std::thread::sleep(Duration::from_millis(10)),
            Err(error) => panic!("{error}"),
        }
    }
    assert_eq!(kinds, [Some(EventKind::Destroy)], "the NEW went to another group");
}

#[test]
fn recv_batch_takes_many_events_per_call_and_reports_overruns() {
    require_root();
    let netns = Netns::new("ctb").expect("namespace");
    let events = netns.run_in(CtSocket::events).expect("enter").expect("subscribe");
    events.set_nonblocking(true).expect("non-blocking");
    events.set_receive_buffer(8 << 20).expect("receive buffer");
    let requests = requests(&netns);
    requests.set_receive_buffer(16 << 20).expect("large buffer");
    create_burst(&requests, 500);
    let mut batch = conntrack::RecvBatch::new(64, 4096);
    let (mut news, mut calls) = (0, 0);
    loop {
        match events.recv_batch(&mut batch) {
            Ok(n) => {
                calls += 1;
                assert_eq!(n, batch.len());
                for i in 0..n {
                    assert!(!batch.truncated(i));
                    for message in Datagram::new(batch.datagram(i).expect("datagram")) {
                        if let Ok(Message::Conntrack(m)) = message
                            && let Ok(Some(event)) = Event::from_message(&m)
                            && event.kind == EventKind::New
                        {
                            news += 1;
                        }
                    }
                }
            }
            Err(RecvError::WouldBlock) => break,
            Err(error) => panic!("unexpected {error}"),
        }
    }
    assert_eq!(news, 500, "every NEW event arrives");
    assert!(calls <= 500 / 64 + 2, "{calls} calls for 500 events: batched");

    // A tiny buffer overflows: the batch call reports the overrun, then keeps working.
    events.set_receive_buffer(4096).expect("tiny buffer");
    let more = requests.dump_all(None).expect("dump");
    assert_eq!(more.len(), 500);
    let deletes = netns.run_in(|| {
        let s = CtSocket::requests()?;
        let mut buf = Vec::new();
        for entry in &more {
            conntrack::request::delete(&mut buf, &entry.orig, entry.zone, None, s.next_seq());
        }
        s.send(&buf)
    });
    deletes.expect("enter").expect("deletes sent");
    let mut overruns = 0;
    for _ in 0..10_000 {
        match events.recv_batch(&mut batch) {
            Ok(_) => {}
            Err(RecvError::Overrun) => overruns += 1,
            Err(RecvError::WouldBlock) => break,
            Err(error) => panic!("unexpected {error}"),
        }
    }
    assert!(overruns >= 1, "the overrun is reported by recv_batch");
}
