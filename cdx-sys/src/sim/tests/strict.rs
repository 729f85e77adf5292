//! What cdx does with our commands that a kinder model would not: each test names the cdx
//! source (file and function) it follows.

use super::*;
use crate::fpp::{CtFlags, FfControl};

fn hw(output: &str, input: &str, mac: u8, mtu: u16) -> Option<SimHwEntry> {
    let (output, input) = (output.into(), input.into());
    Some(SimHwEntry { output, input, mac: [2, 0, 0, 0, 0, mac], mtu, source_mac: None })
}

/// `control_ipv4.c` `ct_update_one`: for a direction already in hardware an UPDATE rewrites
/// only the MTU; the port and MAC stay those `devman.c` `dpa_get_tx_info_by_itf` copied at
/// insertion, whatever route the direction is linked to now.
#[test]
fn update_of_a_direction_in_hardware_changes_only_its_mtu() {
    let mut rig = Rig::new();
    rig.two_routes();
    let jumbo = with(&route_cmd(Action::Register, 3, "eth2", "eth1"), |c| c.mtu = 9000);
    assert_eq!(rig.send(FCode::IpRoute, &jumbo.to_vec()).rc(), ReturnCode::Ok);
    let flow = flow4(6, 1000, (1, 2));
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    assert_eq!(
        rig.ct4(&with(&flow, |c| {
            c.action = Action::Update;
            c.route_id = 3;
        })),
        ReturnCode::Ok
    );
    let ct = rig.conntrack(flow.orig);
    assert_eq!(ct.linked_orig, Some(3), "the link moved");
    assert_eq!(ct.hw_orig, hw("eth0", "eth1", 1, 9000), "the hardware still sends out eth0 to :01");
    let table = rig.snapshot();
    assert_eq!((table.route(1).unwrap().refcount, table.route(3).unwrap().refcount), (0, 1));
}

/// `control_ipv4.c` `IP_HandleIP_ROUTE_RESOLVE` (ACTION_UPDATE) changes the route object
/// only: flows inserted before keep forwarding with the old port and MAC; flows inserted
/// after use the new ones.
#[test]
fn route_update_touches_no_inserted_flow() {
    let mut rig = Rig::new();
    rig.two_routes();
    let before = flow4(6, 1000, (1, 2));
    assert_eq!(rig.ct4(&before), ReturnCode::Ok);
    let moved =
        with(&route_cmd(Action::Update, 1, "eth2", "eth1"), |c| c.dst_mac = [2, 0, 0, 0, 0, 0xaa]);
    assert_eq!(rig.send(FCode::IpRoute, &moved.to_vec()).rc(), ReturnCode::Ok);
    assert_eq!(rig.snapshot().route(1).unwrap().output, "eth2");
    assert_eq!(rig.conntrack(before.orig).hw_orig, hw("eth0", "eth1", 1, 1500));
    let after = flow4(6, 1001, (1, 2));
    assert_eq!(rig.ct4(&after), ReturnCode::Ok);
    assert_eq!(rig.conntrack(after.orig).hw_orig, hw("eth2", "eth1", 0xaa, 1500));
}

/// `control_ipv4.c` `IPv4_HandleIP_CONNTRACK` (ACTION_UPDATE) and `ct_update_one`: a
/// disabled direction loses its route link; on NXP's cdx its hardware entry stays, with
/// MTU 0; the ASK port deletes it (`is_CT_COMPLETE`).
#[test]
fn disabling_a_direction_leaves_mtu_zero_on_nxp_and_deletes_it_on_ask() {
    for (abi, reply_in_hw) in [(Abi::Lsdk, true), (Abi::Ask, false)] {
        let mut rig = Rig::with(|c| c.abi = abi);
        rig.two_routes();
        let flow = flow4(17, 1000, (1, 2));
        assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
        let one_way = with(&flow, |c| {
            c.action = Action::Update;
            c.flags = CtFlags::REP_DISABLED;
            c.route_id_reply = 0;
        });
        assert_eq!(rig.ct4(&one_way), ReturnCode::Ok);
        let ct = rig.conntrack(flow.orig);
        assert_eq!((ct.in_hw_reply, ct.linked_reply), (reply_in_hw, None), "{abi}");
        if reply_in_hw {
            assert_eq!(ct.hw_reply.unwrap().mtu, 0, "the entry forwards on, with MTU 0");
        }
        assert_eq!(ct.remaining, Duration::from_secs(30), "one-way UDP");
        assert_eq!(rig.snapshot().route(2).unwrap().refcount, 0, "{abi}");
    }
}

/// `control_ipv4.c` `ct_update_one`: an insertion that fails during UPDATE is only logged;
/// the UPDATE answers 0 and the direction stays out of hardware.
#[test]
fn an_update_that_cannot_insert_answers_zero() {
    let mut rig = Rig::with(|c| c.capacity = 1);
    rig.two_routes();
    assert_eq!(rig.ct4(&flow4(6, 1, (1, 2))), ReturnCode::Ok);
    let software_only = flow4(6, 2, (0, 0));
    assert_eq!(rig.ct4(&software_only), ReturnCode::Ok);
    let update = with(&flow4(6, 2, (1, 2)), |c| c.action = Action::Update);
    assert_eq!(rig.ct4(&update), ReturnCode::Ok, "not 0xFFFF");
    let ct = rig.conntrack(software_only.orig);
    assert_eq!((ct.in_hw_orig, ct.in_hw_reply, ct.linked_orig), (false, false, Some(1)));
    assert_eq!(rig.cdx.counters().insert_failures, 2);
}

/// `control_ipv4.c` `IP_HandleIP_ROUTE_RESOLVE` stores an unknown input as no interface;
/// `cdx_dpa.c` `add_incoming_iface_info` then fails every insertion through that route, and
/// `cdx_ehash.c` `insert_entry_in_classif_table` answers `FAILURE` (0xFFFF): the REGISTER
/// fails and nothing is kept (`ct_add`'s error path). The same for a protocol FMan has no
/// table for, and for a full table.
#[test]
fn insertion_failures_answer_0xffff_and_keep_nothing() {
    let mut rig = Rig::with(|c| c.capacity = 1);
    rig.two_routes();
    assert_eq!(
        rig.route(Action::Register, 5, "eth0", "cni0"),
        ReturnCode::Ok,
        "unknown input: accepted"
    );
    let through_unknown_input = flow4(6, 1, (5, 2));
    assert_eq!(rig.ct4(&through_unknown_input), ReturnCode::Failure);
    let gre = flow4(47, 0, (1, 2));
    assert_eq!(
        rig.send(FCode::Ipv4Conntrack, &gre.to_vec_for(Abi::Lsdk)).as_bytes(),
        &[0xff, 0xff]
    );
    assert_eq!(rig.ct4(&flow4(6, 2, (1, 2))), ReturnCode::Ok);
    assert_eq!(rig.ct4(&flow4(6, 3, (1, 2))), ReturnCode::Failure, "table full");
    assert_eq!(rig.ct4(&flow4(47, 4, (0, 0))), ReturnCode::Ok, "nothing to insert: kept");
    let table = rig.snapshot();
    assert_eq!(table.conntracks.len(), 2);
    assert_eq!(
        [1, 2, 5].map(|id| table.route(id).unwrap().refcount),
        [1, 1, 0],
        "failed registrations hold no link"
    );
}

/// `layer2.c` `L2_route_get`: the reference count (`nbref`, 16 bits in `layer2.h`) refuses
/// a link at 0xFFFF; `IP_Check_Route` then leaves the direction without a route, it is not
/// inserted, and the REGISTER answers 0.
#[test]
fn route_references_saturate_at_0xffff_and_the_direction_silently_stays_out() {
    let mut rig = Rig::with(|c| c.capacity = 100_000);
    assert_eq!(rig.route(Action::Register, 1, "eth0", "eth1"), ReturnCode::Ok);
    // Both directions through route 1: two links per flow, 65 534 in all.
    for sport in 0..32_767u16 {
        assert_eq!(rig.ct4(&flow4(17, sport, (1, 1))), ReturnCode::Ok);
    }
    let last = flow4(6, 1, (1, 0));
    assert_eq!(rig.ct4(&last), ReturnCode::Ok);
    assert_eq!(rig.snapshot().route(1).unwrap().refcount, 0xffff);
    let refused = flow4(6, 2, (1, 0));
    assert_eq!(rig.ct4(&refused), ReturnCode::Ok, "cdx says nothing");
    let ct = rig.conntrack(refused.orig);
    assert_eq!((ct.linked_orig, ct.in_hw_orig), (None, false), "and forwards it in software");
    assert_eq!(rig.cdx.counters().links_refused, 1);
    assert_eq!(rig.ct4(&flow4(17, 0, (1, 1)).basic(Action::Deregister)), ReturnCode::Ok);
    assert_eq!(rig.ct4(&with(&refused, |c| c.action = Action::Update)), ReturnCode::Ok);
    assert!(rig.conntrack(refused.orig).in_hw_orig, "room again: the next UPDATE links it");
}

/// `control_ipv4.c` `IPv4_HandleIP_CONNTRACK` (ACTION_REGISTER): 7 only when both tuples
/// hit and the original tuple hits a reply entry, else 100; `control_ipv6.c`
/// `IPv6_handle_CONNTRACK`: always 100.
#[test]
fn register_collisions_answer_7_only_for_the_ipv4_inverse_flow() {
    let mut rig = Rig::new();
    let flow = flow4(6, 1000, (0, 0));
    assert_eq!(rig.ct4(&flow), ReturnCode::Ok);
    assert_eq!(rig.ct4(&flow), ReturnCode::CtEntryAlreadyRegistered);
    let inverse = with(&flow, |c| std::mem::swap(&mut c.orig, &mut c.reply));
    assert_eq!(rig.ct4(&inverse), ReturnCode::CreationFailed);
    let half_inverse = with(&inverse, |c| c.reply.dport = 9);
    assert_eq!(rig.ct4(&half_inverse), ReturnCode::CtEntryAlreadyRegistered, "one tuple only");
    let nat_clash = with(&flow, |c| c.orig.src = v4(9));
    assert_eq!(rig.ct4(&nat_clash), ReturnCode::CtEntryAlreadyRegistered);
    assert_eq!(rig.ct4(&with(&flow, |c| c.protocol = 17)), ReturnCode::Ok, "another protocol");
    let v6 = flow6(6, 1, (0, 0));
    assert_eq!(rig.ct6(&v6), ReturnCode::Ok);
    assert_eq!(
        rig.ct6(&with(&v6, |c| std::mem::swap(&mut c.orig, &mut c.reply))),
        ReturnCode::CtEntryAlreadyRegistered
    );
    // IPv6's lookup accepts swapped tuples for UPDATE/DEREGISTER and then misreads the
    // pair (`container_of` on the reply entry): counted, nothing changed.
    let swapped = with(&v6, |c| std::mem::swap(&mut c.orig, &mut c.reply));
    assert_eq!(rig.ct6(&swapped.basic(Action::Deregister)), ReturnCode::Ok);
    assert_eq!((rig.cdx.counters().undefined_commands, rig.cdx.conntrack_count()), (1, 3));
}

/// `control_ipv4.c` `IPv4_HandleIP_SET_TIMEOUT`: seconds × HZ in a `u32`; `cdx_timer.c`
/// `__timer_add` and `IPv6_HandleIP_Get_Timeout` compare signed 32-bit values. From 2³¹
/// ticks (2 147 484 s at HZ 1000) the aging handler runs at every tick and IPv6 GET_TIMEOUT
/// reports 0 while 2³¹ ticks or more are left; IPv4's rounding wraps near 2³²; from 2³² ticks (4 294 968 s) the timeout
/// itself wraps (here to 704 ticks); 0 s never ages.
#[test]
fn set_timeout_is_seconds_times_hz_in_32_bits() {
    let mut rig = Rig::new();
    let v6 = flow6(17, 1, (0, 0));
    let v4 = flow4(17, 1, (0, 0));
    assert_eq!(rig.set_timeout(Duration::ZERO, 17, 3_000_000, 0), ReturnCode::Ok);
    assert_eq!(rig.ct6(&v6), ReturnCode::Ok);
    assert_eq!(rig.ct4(&v4), ReturnCode::Ok);
    assert_eq!(rig.remaining6(S, &v6), (ReturnCode::Ok, 0), "3e9 ticks as an i32: clamped to 0");
    assert_eq!(rig.remaining4(S, &v4), (ReturnCode::Ok, 2_999_999));
    assert!(rig.cdx.tick(rig.at(20 * 86_400 * S)).is_empty(), "ages as long as its u32 says");

    let mut rig = Rig::new();
    assert_eq!(rig.set_timeout(Duration::ZERO, 6, 4_294_967, 0), ReturnCode::Ok);
    let tcp = flow4(6, 2, (0, 0));
    assert_eq!(rig.ct4(&tcp), ReturnCode::Ok);
    assert_eq!(rig.remaining4(Duration::ZERO, &tcp), (ReturnCode::Ok, 0), "(ticks + 999) wraps");
    assert_eq!(rig.set_timeout(Duration::ZERO, 6, 4_294_968, 0), ReturnCode::Ok);
    let wrapped = flow4(6, 3, (0, 0));
    assert_eq!(rig.ct4(&wrapped), ReturnCode::Ok);
    assert_eq!(rig.aged(S), vec![SimTuple::from(wrapped.orig)], "49.7 days became 0.704 s");

    // 0 s: `cdx_timer_add(timer, 0)` deletes the timer, so the flow never ages.
    let mut rig = Rig::new();
    assert_eq!(rig.set_timeout(Duration::ZERO, 0, 0, 0), ReturnCode::Ok);
    let icmp = flow4(1, 4, (0, 0));
    assert_eq!(rig.ct4(&icmp), ReturnCode::Ok);
    assert!(rig.cdx.tick(rig.at(1_000_000 * S)).is_empty());
    assert_eq!(rig.cdx.conntrack_count(), 1);
}

/// `control_ipv4.c` `IPv4_HandleIP_FF_CONTROL`: 1 and 0 only (else `WRONG_COMMAND_PARAM`);
/// enabling sets every entry's `last_ct_timer` to now, which `ct_timer_refresh` overwrites
/// from the hardware stamp at the next refresh: the reset lasts only for entries not in
/// hardware.
#[test]
fn ff_control_accepts_0_and_1_and_its_activity_reset_does_not_last() {
    let mut rig = Rig::new();
    let (in_hw, software_only) = rig.udp_in_and_out_of_hardware();
    let raw = |value: u16| [value.to_ne_bytes(), [0, 0]].concat();
    assert_eq!(
        rig.send_at(100 * S, FCode::Ipv4FfControl, &raw(2)).rc(),
        ReturnCode::WrongCommandParam
    );
    let on = FfControl { enable: true }.to_vec();
    assert_eq!(rig.send_at(100 * S, FCode::Ipv4FfControl, &on).rc(), ReturnCode::Ok);
    assert_eq!(rig.remaining4(100 * S, &software_only), (ReturnCode::Ok, 180), "reset kept");
    assert_eq!(rig.remaining4(100 * S, &in_hw), (ReturnCode::Ok, 80), "the hardware stamp wins");
    assert!(rig.cdx.ff_enabled());
}

/// `cdx_cmdhandler.c` `FCODE_TO_EVENT` returns -1 for a module byte it does not know, and
/// NXP's `cdx_cmd_handler` keeps it in a `U32`: `gCmdProcTable[0xFFFFFFFF]` is read with the
/// control mutex held (on a board, an oops that leaves cdx wedged). The ASK port's `int`
/// makes it `UNKNOWN_COMMAND`.
#[test]
fn an_unknown_module_byte_wedges_nxp_cdx_and_is_unknown_to_the_ask_port() {
    let mut ask = Rig::with(|c| c.abi = Abi::Ask);
    assert_eq!(ask.send(FCode::Unknown(0x0101), &[]).rc(), ReturnCode::UnknownCommand);
    let mut nxp = Rig::new();
    nxp.two_routes();
    assert_eq!(nxp.ct4(&flow4(17, 1, (1, 2))), ReturnCode::Ok);
    assert!(nxp.send(FCode::Unknown(0x1301), &[]).is_withheld());
    assert!(nxp.cdx.is_wedged());
    assert!(nxp.send(FCode::Ipv4Reset, &[]).is_withheld(), "and answers nothing after");
    assert!(nxp.cdx.tick(nxp.at(1000 * S)).is_empty(), "nor ages");
    assert_eq!(nxp.cdx.counters().out_of_table_commands, 1);
}

/// `control_ipv6.c` `IPv6_HandleIP_Get_Timeout` (NXP) reads `last_ct_timer` without
/// `ct_timer_refresh`: traffic counts only once the aging timer has copied it; the ASK port
/// (and the `Refreshed` setting) calls `ct_get_time_remaining` like IPv4.
#[test]
fn ipv6_activity_is_refreshed_only_by_the_aging_timer_on_nxp_cdx() {
    let run = |activity: Option<Ipv6Activity>, abi: Abi| {
        let mut rig = Rig::with(|c| {
            c.abi = abi;
            c.ipv6_activity = activity;
        });
        rig.two_routes();
        let v6 = flow6(17, 1, (1, 2));
        assert_eq!(rig.ct6(&v6), ReturnCode::Ok);
        assert_eq!(rig.cdx.mark_active(&FlowMatch::All, rig.at(100 * S)), 1);
        let at_100 = rig.remaining6(100 * S, &v6).1;
        assert!(rig.cdx.tick(rig.at(180 * S)).is_empty(), "active: the timer re-arms");
        (at_100, rig.remaining6(180 * S, &v6).1)
    };
    assert_eq!(run(None, Abi::Lsdk), (80, 100), "stale until the timer ran at 180 s");
    assert_eq!(run(Some(Ipv6Activity::Refreshed), Abi::Lsdk), (180, 100));
    assert_eq!(run(None, Abi::Ask), (180, 100), "the ASK port refreshes");
}

/// `control_ipv4.c` `ct_add` links and inserts a direction by its route id alone, and
/// `ct_get_time_remaining` returns 0 for a pair with both directions disabled: it goes at
/// its first aging run, traffic or not.
#[test]
fn flags_do_not_stop_nxp_cdx_from_linking_and_fully_disabled_pairs_age_at_their_first_run() {
    let mut rig = Rig::new();
    rig.two_routes();
    let disabled =
        with(&flow4(17, 1, (1, 2)), |c| c.flags = CtFlags::ORIG_DISABLED | CtFlags::REP_DISABLED);
    assert_eq!(rig.ct4(&disabled), ReturnCode::Ok);
    let ct = rig.conntrack(disabled.orig);
    assert_eq!((ct.in_hw_orig, ct.in_hw_reply), (true, true), "NXP: linked means inserted");
    assert_eq!(rig.cdx.mark_active(&FlowMatch::All, rig.at(20 * S)), 1);
    assert_eq!(rig.cdx.tick(rig.at(30 * S)).len(), 1, "one-way UDP timer, activity ignored");
    let mut ask = Rig::with(|c| c.abi = Abi::Ask);
    ask.two_routes();
    assert_eq!(ask.ct4(&disabled), ReturnCode::Ok);
    let ct = ask.conntrack(disabled.orig);
    assert_eq!((ct.in_hw_orig, ct.linked_orig), (false, Some(1)), "ASK: linked, not inserted");
}
