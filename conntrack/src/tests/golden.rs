//! Golden tests: messages the kernel sent (see each fixture file for the command behind it)
//! parse to exactly the expected values, and emit back to exactly the same bytes.
//!
//! Some expectations are checkable without this crate: counters match the traffic the capture
//! sent (seven UDP datagrams of 6 payload bytes are 7 × 34 bytes over IPv4, 7 × 54 over IPv6;
//! a refused connect is one 60-byte SYN and one 40-byte RST), and addresses and ports are those
//! of the commands.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::fixtures::{self, ALL, Fixture};
use crate::*;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(text: &str) -> IpAddr {
    IpAddr::V6(text.parse::<Ipv6Addr>().unwrap())
}

fn tuple(src: IpAddr, src_port: u16, dst: IpAddr, dst_port: u16, proto: u8) -> Tuple {
    Tuple::new(src, dst, proto, src_port, dst_port)
}

fn icmp_tuple(src: IpAddr, dst: IpAddr, proto: u8, kind: u8) -> Tuple {
    Tuple { icmp: Some(Icmp { id: 0x1234, kind, code: 0 }), ..Tuple::new(src, dst, proto, 0, 0) }
}

/// The one conntrack message of a single-message fixture.
fn message(bytes: &[u8]) -> CtMessage<'_> {
    let mut messages = Datagram::new(bytes);
    let Some(Ok(Message::Conntrack(message))) = messages.next() else {
        panic!("not a conntrack message")
    };
    assert!(messages.next().is_none(), "more than one message");
    message
}

fn event(fixture: Fixture) -> Event {
    let bytes = fixture.bytes();
    Event::from_message(&message(&bytes)).unwrap().unwrap()
}

/// A conntrack value with the fields every event of these captures shares.
fn entry(orig: Tuple, reply: Tuple, status: Status, id: u32) -> Conntrack {
    Conntrack {
        family: orig.family(),
        orig,
        reply,
        status,
        tcp: None,
        timeout: None,
        mark: None,
        zone: 0,
        id: Some(id),
        use_count: None,
        counters: None,
        timestamp: None,
        has_helper: false,
        seq_adjust: false,
        has_labels: false,
        has_master: false,
        ask: AskInfo::default(),
        skipped: SkippedAttrs::NONE,
    }
}

fn tcp(state: TcpState, wscale: (u8, u8), flags: (TcpFlags, TcpFlags)) -> Option<TcpInfo> {
    Some(TcpInfo {
        state,
        orig_wscale: Some(wscale.0),
        reply_wscale: Some(wscale.1),
        orig_flags: Some(flags.0),
        reply_flags: Some(flags.1),
    })
}

fn tcp_destroyed(state: TcpState) -> Option<TcpInfo> {
    Some(TcpInfo {
        state,
        orig_wscale: None,
        reply_wscale: None,
        orig_flags: None,
        reply_flags: None,
    })
}

fn counters(orig: (u64, u64), reply: (u64, u64)) -> Option<Counters> {
    Some(Counters {
        orig: Counter { packets: orig.0, bytes: orig.1 },
        reply: Counter { packets: reply.0, bytes: reply.1 },
    })
}

const SNAT: Status = Status::CONFIRMED
    .union(Status::SRC_NAT)
    .union(Status::SRC_NAT_DONE)
    .union(Status::DST_NAT_DONE);
const DNAT: Status = Status::CONFIRMED
    .union(Status::DST_NAT)
    .union(Status::SRC_NAT_DONE)
    .union(Status::DST_NAT_DONE);
const ESTABLISHED_FLAGS: TcpFlags =
    TcpFlags::WINDOW_SCALE.union(TcpFlags::SACK_PERM).union(TcpFlags::MAXACK_SET);

#[test]
fn every_fixture_emits_back_to_its_bytes() {
    for fixture in ALL {
        let bytes = fixture.bytes();
        let mut emitted = Vec::new();
        for message in Datagram::new(&bytes) {
            match message.unwrap() {
                Message::Conntrack(message) => message.emit(&mut emitted).unwrap(),
                Message::Done { seq } => {
                    // NLMSG_DONE as the kernel writes it: header and a zero errno, port of the dump.
                    let port = message_port(&bytes, emitted.len());
                    emitted.extend_from_slice(&20u32.to_ne_bytes());
                    emitted.extend_from_slice(&[3, 0, 2, 0]);
                    emitted.extend_from_slice(&seq.to_ne_bytes());
                    emitted.extend_from_slice(&port.to_ne_bytes());
                    emitted.extend_from_slice(&[0; 4]);
                }
                other => panic!("{}: unexpected {other:?}", fixture.name),
            }
        }
        assert_eq!(emitted, bytes, "{}", fixture.name);
    }
}

fn message_port(bytes: &[u8], offset: usize) -> u32 {
    u32::from_ne_bytes(bytes[offset + 12..offset + 16].try_into().unwrap())
}

#[test]
fn every_tuple_emits_as_the_kernel_wrote_it() {
    let mut tuples = 0;
    for fixture in ALL {
        let bytes = fixture.bytes();
        for message in Datagram::new(&bytes) {
            let Message::Conntrack(message) = message.unwrap() else { continue };
            for attr in message.attrs() {
                let (kind, nest) = match attr.unwrap() {
                    Attr::TupleOrig(nest) => (1u16, nest),
                    Attr::TupleReply(nest) => (2, nest),
                    _ => continue,
                };
                let mut emitted = Vec::new();
                let mut writer = nla::AttrWriter::new(&mut emitted);
                Tuple::from_nest(nest).unwrap().emit(&mut writer, kind);
                writer.finish().unwrap();
                let header = [
                    &((nest.as_bytes().len() + 4) as u16).to_ne_bytes()[..],
                    &(kind | 0x8000).to_ne_bytes(),
                ]
                .concat();
                assert_eq!(emitted, [&header[..], nest.as_bytes()].concat(), "{}", fixture.name);
                tuples += 1;
            }
        }
    }
    assert_eq!(tuples, 2 * 30, "every fixture message has both tuples");
}

#[test]
fn delivery_follows_type_flags_and_sequence() {
    let expected = [
        (fixtures::TCP4_SNAT_NEW, Delivery::Event(EventKind::New)),
        (fixtures::TCP4_SNAT_SYN_RECV, Delivery::Event(EventKind::Update)),
        (fixtures::TCP4_SNAT_DESTROY, Delivery::Event(EventKind::Destroy)),
        (fixtures::CLI_UPDATE, Delivery::Event(EventKind::Update)),
        (fixtures::CLI_ZONE_MARK_DESTROY, Delivery::Event(EventKind::Destroy)),
    ];
    for (fixture, delivery) in expected {
        let bytes = fixture.bytes();
        assert_eq!(message(&bytes).delivery(), delivery, "{}", fixture.name);
    }
    let bytes = fixtures::DUMP_TWO_ENTRIES.bytes();
    let messages: Vec<_> = Datagram::new(&bytes).map(Result::unwrap).collect();
    let [Message::Conntrack(first), Message::Conntrack(second), Message::Done { seq: 1 }] =
        messages[..]
    else {
        panic!("{messages:?}")
    };
    for entry in [first, second] {
        assert_eq!(entry.delivery(), Delivery::DumpEntry);
        assert_eq!(entry.kind(), MessageKind::New);
        assert_eq!(Event::from_message(&entry), Ok(None), "a dump entry is not an event");
    }
}

#[test]
fn tcp4_masqueraded_connection_from_syn_to_destroy() {
    let orig = tuple(v4(10, 1, 0, 2), 48990, v4(10, 2, 0, 2), 80, 6);
    let reply = tuple(v4(10, 2, 0, 2), 80, v4(10, 2, 0, 100), 48990, 6);
    let id = 2_225_734_976;
    let syn = TcpFlags::WINDOW_SCALE | TcpFlags::SACK_PERM;

    let new = event(fixtures::TCP4_SNAT_NEW);
    assert_eq!(new.kind, EventKind::New);
    assert_eq!(
        new.ct,
        Conntrack {
            tcp: tcp(TcpState::SynSent, (10, 0), (syn, TcpFlags::empty())),
            timeout: Some(120),
            ..entry(orig, reply, SNAT, id)
        }
    );

    let syn_recv = event(fixtures::TCP4_SNAT_SYN_RECV);
    assert_eq!(syn_recv.kind, EventKind::Update);
    assert_eq!(
        syn_recv.ct,
        Conntrack {
            tcp: tcp(TcpState::SynRecv, (10, 10), (syn, ESTABLISHED_FLAGS)),
            timeout: Some(60),
            ..entry(orig, reply, SNAT | Status::SEEN_REPLY, id)
        }
    );

    let established = event(fixtures::TCP4_SNAT_ESTABLISHED);
    assert_eq!(established.kind, EventKind::Update);
    assert_eq!(
        established.ct,
        Conntrack {
            tcp: tcp(TcpState::Established, (10, 10), (ESTABLISHED_FLAGS, ESTABLISHED_FLAGS)),
            timeout: Some(432_000),
            ..entry(orig, reply, SNAT | Status::SEEN_REPLY | Status::ASSURED, id)
        }
    );

    let fin_wait = event(fixtures::TCP4_SNAT_FIN_WAIT);
    let closing = ESTABLISHED_FLAGS | TcpFlags::CLOSE_INIT | TcpFlags::DATA_UNACKNOWLEDGED;
    assert_eq!(fin_wait.ct.tcp, tcp(TcpState::FinWait, (10, 10), (closing, ESTABLISHED_FLAGS)));

    let destroy = event(fixtures::TCP4_SNAT_DESTROY);
    assert_eq!(destroy.kind, EventKind::Destroy);
    assert_eq!(
        destroy.ct,
        Conntrack {
            tcp: tcp_destroyed(TcpState::TimeWait),
            counters: counters((6, 323), (4, 222)),
            timestamp: Some(Timestamp {
                start: 1_795_607_203_585_091_595,
                stop: Some(1_795_607_204_592_332_415)
            }),
            ..entry(orig, reply, SNAT | Status::SEEN_REPLY | Status::ASSURED | Status::DYING, id)
        }
    );
}

#[test]
fn tcp4_new_carries_exactly_the_kernels_attributes_in_order() {
    let bytes = fixtures::TCP4_SNAT_NEW.bytes();
    let attrs: Vec<Attr<'_>> = message(&bytes).attrs().iter().map(Result::unwrap).collect();
    let [
        Attr::TupleOrig(_),
        Attr::TupleReply(_),
        Attr::Id(2_225_734_976),
        Attr::Status(status),
        Attr::Timeout(120),
        Attr::ProtoInfo(info),
        Attr::TimestampEvent(_),
    ] = attrs[..]
    else {
        panic!("{attrs:#?}")
    };
    assert_eq!(status, SNAT);
    let [Ok(ProtoInfoAttr::Tcp(tcp))] = info.iter().collect::<Vec<_>>()[..] else { panic!() };
    let tcp: Vec<TcpAttr<'_>> = tcp.iter().map(Result::unwrap).collect();
    let syn = MaskedTcpFlags {
        flags: TcpFlags::WINDOW_SCALE | TcpFlags::SACK_PERM,
        mask: TcpFlags::empty(),
    };
    assert_eq!(
        tcp,
        [
            TcpAttr::State(TcpState::SynSent),
            TcpAttr::WindowScaleOrig(10),
            TcpAttr::WindowScaleReply(0),
            TcpAttr::FlagsOrig(syn),
            TcpAttr::FlagsReply(MaskedTcpFlags::default()),
        ]
    );
}

#[test]
fn tcp6_masqueraded_connection() {
    let orig = tuple(v6("fd01::2"), 45556, v6("fd02::2"), 80, 6);
    let reply = tuple(v6("fd02::2"), 80, v6("fd02::100"), 45556, 6);
    let id = 3_873_662_338;
    let new = event(fixtures::TCP6_SNAT_NEW);
    assert_eq!(new.kind, EventKind::New);
    assert_eq!(
        new.ct,
        Conntrack {
            tcp: tcp(
                TcpState::SynSent,
                (10, 0),
                (TcpFlags::WINDOW_SCALE | TcpFlags::SACK_PERM, TcpFlags::empty())
            ),
            timeout: Some(120),
            ..entry(orig, reply, SNAT, id)
        }
    );
    assert_eq!(new.ct.family, Family::Ipv6);
    let established = event(fixtures::TCP6_SNAT_ESTABLISHED);
    assert_eq!(established.ct.status, SNAT | Status::SEEN_REPLY | Status::ASSURED);
    assert_eq!(established.ct.tcp.map(|tcp| tcp.state), Some(TcpState::Established));
    let destroy = event(fixtures::TCP6_SNAT_DESTROY);
    assert_eq!(destroy.kind, EventKind::Destroy);
    // The same exchange as over IPv4, with 20 more bytes of header per packet.
    assert_eq!(destroy.ct.counters, counters((6, 323 + 6 * 20), (4, 222 + 4 * 20)));
}

#[test]
fn dnat_shows_in_the_reply_tuple() {
    let new = event(fixtures::TCP4_DNAT_NEW);
    assert_eq!(new.ct.orig, tuple(v4(10, 1, 0, 2), 57088, v4(10, 1, 0, 1), 8080, 6));
    assert_eq!(new.ct.reply, tuple(v4(10, 2, 0, 2), 80, v4(10, 1, 0, 2), 57088, 6));
    assert_eq!(new.ct.status, DNAT);
    let destroy = event(fixtures::TCP4_DNAT_DESTROY);
    assert_eq!(destroy.ct.counters, counters((6, 323), (4, 222)));

    let established = event(fixtures::TCP6_DNAT_ESTABLISHED);
    assert_eq!(established.ct.orig, tuple(v6("fd01::2"), 33234, v6("fd01::1"), 8080, 6));
    assert_eq!(established.ct.reply, tuple(v6("fd02::2"), 80, v6("fd01::2"), 33234, 6));
    assert_eq!(established.ct.status, DNAT | Status::SEEN_REPLY | Status::ASSURED);
}

#[test]
fn udp4_new_update_assured_destroy() {
    let orig = tuple(v4(10, 1, 0, 2), 40053, v4(10, 2, 0, 2), 5353, 17);
    let reply = tuple(v4(10, 2, 0, 2), 5353, v4(10, 2, 0, 100), 40053, 17);
    let id = 2_204_194_967;
    let events = [
        fixtures::UDP4_SNAT_NEW,
        fixtures::UDP4_SNAT_UPDATE,
        fixtures::UDP4_SNAT_ASSURED,
        fixtures::UDP4_SNAT_DESTROY,
    ]
    .map(event);
    assert_eq!(
        events.map(|event| event.kind),
        [EventKind::New, EventKind::Update, EventKind::Update, EventKind::Destroy]
    );
    assert_eq!(events[0].ct, Conntrack { timeout: Some(1), ..entry(orig, reply, SNAT, id) });
    assert_eq!(
        events[1].ct,
        Conntrack { timeout: Some(1), ..entry(orig, reply, SNAT | Status::SEEN_REPLY, id) }
    );
    let assured = SNAT | Status::SEEN_REPLY | Status::ASSURED;
    assert_eq!(events[2].ct, Conntrack { timeout: Some(2), ..entry(orig, reply, assured, id) });
    assert_eq!(
        events[3].ct,
        Conntrack {
            counters: counters((7, 7 * 34), (7, 7 * 34)),
            timestamp: Some(Timestamp {
                start: 1_795_607_245_823_918_043,
                stop: Some(1_795_607_250_828_724_534)
            }),
            ..entry(orig, reply, assured | Status::DYING, id)
        }
    );
}

#[test]
fn udp6_assured_and_destroy() {
    let assured = event(fixtures::UDP6_SNAT_ASSURED);
    assert_eq!(assured.ct.orig, tuple(v6("fd01::2"), 40053, v6("fd02::2"), 5353, 17));
    assert_eq!(assured.ct.reply, tuple(v6("fd02::2"), 5353, v6("fd02::100"), 40053, 17));
    assert!(assured.ct.status.contains(Status::ASSURED | Status::SEEN_REPLY));
    let destroy = event(fixtures::UDP6_SNAT_DESTROY);
    assert_eq!(destroy.ct.counters, counters((7, 7 * 54), (7, 7 * 54)));
    assert_eq!(event(fixtures::UDP6_SNAT_NEW).kind, EventKind::New);
}

#[test]
fn icmp_echo_tuples() {
    let new = event(fixtures::ICMP4_NEW);
    assert_eq!(
        new.ct,
        Conntrack {
            timeout: Some(1),
            ..entry(
                icmp_tuple(v4(10, 1, 0, 2), v4(10, 2, 0, 2), 1, 8),
                icmp_tuple(v4(10, 2, 0, 2), v4(10, 2, 0, 100), 1, 0),
                SNAT,
                3_593_330_211
            )
        }
    );
    let destroy = event(fixtures::ICMP4_DESTROY);
    assert_eq!(destroy.ct.counters, counters((1, 32), (1, 32)));

    let new6 = event(fixtures::ICMP6_NEW);
    assert_eq!(new6.ct.orig, icmp_tuple(v6("fd01::2"), v6("fd02::2"), 58, 128));
    assert_eq!(new6.ct.reply, icmp_tuple(v6("fd02::2"), v6("fd02::100"), 58, 129));
    let update6 = event(fixtures::ICMP6_UPDATE);
    assert_eq!(update6.kind, EventKind::Update);
    assert_eq!(update6.ct.status, SNAT | Status::SEEN_REPLY);
}

#[test]
fn zone_mark_and_synproxy_of_a_conntrack_tool_entry() {
    let bytes = fixtures::CLI_ZONE_MARK_NEW.bytes();
    let message = message(&bytes);
    let orig = tuple(v4(192, 0, 2, 1), 40000, v4(198, 51, 100, 7), 443, 6);
    let liberal = TcpFlags::SACK_PERM | TcpFlags::BE_LIBERAL;
    assert_eq!(
        Event::from_message(&message).unwrap().unwrap().ct,
        Conntrack {
            tcp: tcp(TcpState::Established, (0, 0), (liberal, liberal)),
            timeout: Some(300),
            mark: Some(42),
            zone: 7,
            ..entry(
                orig,
                orig.reversed(),
                Status::CONFIRMED | Status::SEEN_REPLY | Status::ASSURED,
                436_001_995
            )
        }
    );
    let synproxy: Vec<_> = message
        .attrs()
        .iter()
        .filter_map(|attr| match attr.unwrap() {
            Attr::Synproxy(nest) => Some(nest.iter().map(Result::unwrap).collect::<Vec<_>>()),
            _ => None,
        })
        .collect();
    assert_eq!(synproxy, [[SynproxyAttr::Isn(0), SynproxyAttr::Its(0), SynproxyAttr::TsOff(0)]]);
    // The event was caused by conntrack's own netlink socket: its port id is in the header.
    assert_ne!(message.header().port, 0);

    let destroy = event(fixtures::CLI_ZONE_MARK_DESTROY);
    assert_eq!(
        (destroy.ct.zone, destroy.ct.mark, destroy.ct.counters),
        (7, Some(42), counters((0, 0), (0, 0)))
    );
}

#[test]
fn update_made_by_the_conntrack_tool() {
    let update = event(fixtures::CLI_UPDATE);
    let orig = tuple(v4(192, 0, 2, 2), 40001, v4(198, 51, 100, 7), 53, 17);
    assert_eq!(update.kind, EventKind::Update);
    assert_eq!(
        update.ct,
        Conntrack {
            timeout: Some(777),
            mark: Some(7),
            ..entry(orig, orig.reversed(), Status::CONFIRMED, 1_921_602_458)
        }
    );
}

#[test]
fn helper_name_and_status() {
    let bytes = fixtures::FTP4_HELPER_NEW.bytes();
    let ftp = message(&bytes);
    assert_eq!(ftp.helper_name(), Ok(Some("ftp")));
    let ct = Conntrack::from_message(&ftp).unwrap();
    assert!(ct.has_helper);
    assert!(ct.status.contains(Status::HELPER));
    assert_eq!(ct.orig.dst_port, 21);
    let bytes = fixtures::TCP4_SNAT_NEW.bytes();
    assert_eq!(message(&bytes).helper_name(), Ok(None));
}

#[test]
fn mark_set_by_the_ruleset() {
    let established = event(fixtures::TCP4_MARK_ESTABLISHED);
    assert_eq!(established.ct.mark, Some(0x4000));
    assert_eq!(established.ct.orig.dst_port, 8443);
}

#[test]
fn refused_connect_is_destroyed_at_once_in_close() {
    let destroy = event(fixtures::TCP4_REFUSED_DESTROY);
    assert_eq!(destroy.kind, EventKind::Destroy);
    assert_eq!(destroy.ct.tcp, tcp_destroyed(TcpState::Close));
    assert_eq!(destroy.ct.counters, counters((1, 60), (1, 40)));
    assert!(!destroy.ct.status.contains(Status::SEEN_REPLY), "the RST does not count as a reply");
}

#[test]
fn dump_entries_carry_use_and_mark() {
    let bytes = fixtures::DUMP_TWO_ENTRIES.bytes();
    let entries: Vec<Conntrack> = Datagram::new(&bytes)
        .filter_map(|message| match message.unwrap() {
            Message::Conntrack(message) => Some(Conntrack::from_message(&message).unwrap()),
            _ => None,
        })
        .collect();
    let tcp6 = tuple(v6("2001:db8::9"), 5001, v6("2001:db8:1::9"), 80, 6);
    let udp4 = tuple(v4(192, 0, 2, 9), 5000, v4(198, 51, 100, 9), 53, 17);
    assert_eq!(
        entries.iter().map(|ct| (ct.orig, ct.reply)).collect::<Vec<_>>(),
        [(tcp6, tcp6.reversed()), (udp4, udp4.reversed())]
    );
    assert_eq!(
        entries.iter().map(|ct| (ct.use_count, ct.mark, ct.timeout)).collect::<Vec<_>>(),
        [(Some(1), Some(0), Some(119)), (Some(1), Some(0), Some(59))]
    );
    assert_eq!(entries[0].timestamp.map(|ts| ts.stop), Some(None));
}
