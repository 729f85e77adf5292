//! The VM harness proven on what the host's kernel cannot do: inside Debian's kernel under QEMU
//! (`cmmd_tests::vm`), a PPPoE session over an 802.1Q VLAN carries real, masqueraded TCP from
//! the client through the router to the server. Each test is one function with two halves: on
//! the host it boots the VM and re-runs itself there; in the VM it builds the network and
//! asserts on what the kernel holds. cmmd (the host's `cmmd-test` binary, software cdx) runs in
//! the guest's router as it does in the host's namespace tests.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use cmmd_tests::daemon::Daemon;
use cmmd_tests::scenario::hold_tcp;
use cmmd_tests::traffic::{TCP_REPLY_PREFIX, TcpHoldServer, wait_for};
use cmmd_tests::wan::{self, PppoeOverVlan};
use cmmd_tests::{conntrack_cli, require_root, vm};

/// Wall-clock time of each phase, printed as `PHASE name seconds` lines.
struct Phases {
    last: Instant,
}

impl Phases {
    fn start() -> Self {
        Self { last: Instant::now() }
    }

    fn done(&mut self, phase: &str) {
        eprintln!("PHASE {phase} {:.2} s", self.last.elapsed().as_secs_f64());
        self.last = Instant::now();
    }
}

#[test]
fn pppoe_over_vlan_carries_masqueraded_tcp_tracked_by_the_router() {
    if !vm::in_vm() {
        require_root();
        let run =
            vm::run_test_in_vm("vm::pppoe_over_vlan_carries_masqueraded_tcp_tracked_by_the_router");
        assert!(
            run.output.contains("PHASE traffic"),
            "the guest ran the whole body:\n{}",
            run.output
        );
        return;
    }
    let mut phases = Phases::start();
    wan::load_modules().expect("8021q, ppp_generic, pppoe, ppp_async, veth, nf_conntrack load");
    phases.done("modules");

    let mut topology = PppoeOverVlan::links().expect("namespaces, veth pairs and the VLAN");
    phases.done("links");

    let session = topology.start_pppoe().expect("the PPPoE session comes up");
    phases.done("pppoe");

    topology.masquerade().expect("the router's ruleset loads");
    phases.done("nft");

    // The daemon as the later VLAN and PPPoE tests run it: a host binary, in the router.
    let daemon = Daemon::start(
        Path::new(env!("CARGO_BIN_EXE_cmmd-test")),
        &topology.router,
        &["--backend", "sim", "--ports", "r0,r1", "--log", "info,cmmd=debug"],
    )
    .expect("cmmd starts in the guest's router");
    phases.done("cmmd");

    // The session the kernel holds is the one pppd negotiated, with the concentrator's VLAN
    // device as peer, on the router's VLAN device; ppp0 carries PPPoE's MTU.
    let router = &topology.router;
    let server_mac = wan::mac_address(&topology.server, wan::SERVER_VLAN).unwrap();
    assert_eq!(session.peer, server_mac, "the session's peer is the server's VLAN device");
    assert_eq!(session.device, wan::ROUTER_VLAN);
    assert_ne!(session.id, 0, "a session id is never 0");
    assert!(
        topology.logs().contains(&format!("PPP session is {}", session.id)),
        "pppd negotiated the session the kernel lists:\n{}",
        topology.logs()
    );
    assert_eq!(wan::mtu(router, wan::PPP_DEVICE).unwrap(), wan::PPPOE_MTU);
    let routes = router.ip(&["-4", "route", "show", "default"]).unwrap();
    assert!(routes.contains("dev ppp0"), "the router's default route is the PPPoE link: {routes}");

    // Real TCP from the client, held open while the router's conntrack is read.
    let vlan_before = wan::device_counters(router, wan::ROUTER_VLAN).unwrap();
    let server_vlan_before = wan::device_counters(&topology.server, wan::SERVER_VLAN).unwrap();
    let _service = TcpHoldServer::start(&topology.server, SocketAddr::from((wan::SERVER_V4, 80)))
        .expect("the service listens");
    let mut stream = hold_tcp(&topology.client, SocketAddr::from((wan::SERVER_V4, 80)))
        .expect("connect through the router");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let sport = stream.local_addr().unwrap().port();
    let entry = wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        conntrack_cli::list(router).ok()?.into_iter().find(|e| {
            e.proto == "tcp"
                && e.value("sport", 0) == Some(&sport.to_string())
                && e.value("dport", 0) == Some("80")
        })
    })
    .expect("the router's conntrack holds the connection");
    assert_eq!(entry.state.as_deref(), Some("ESTABLISHED"), "{}", entry.line);
    assert_eq!(entry.value("src", 0), Some("10.1.0.2"), "{}", entry.line);
    assert_eq!(entry.value("dst", 0), Some("10.2.0.2"), "{}", entry.line);
    assert_eq!(entry.value("src", 1), Some("10.2.0.2"), "{}", entry.line);
    assert_eq!(
        entry.value("dst", 1),
        Some(wan::ROUTER_PPP_V4.to_string().as_str()),
        "masqueraded to the router's PPP address: {}",
        entry.line
    );
    // cmmd heard of it from ctnetlink; what it may do with a flow through ppp0 is the VLAN and
    // PPPoE work's to assert (today: counted under a reason, not offloaded).
    let heard = wait_for(Duration::from_secs(30), Duration::from_millis(500), || {
        daemon.counters().ok().filter(|c| c.get("events_new").is_some_and(|n| n != "0"))
    });
    let counters = heard
        .unwrap_or_else(|| panic!("cmmd in the guest got the NEW event; log:\n{}", daemon.log()));
    eprintln!(
        "cmmd: events_new={:?} not_fastpath_port={:?}",
        counters.get("events_new"),
        counters.get("not_fastpath_port")
    );

    // Several full-size segments each way, then a normal close.
    let request = vec![b'x'; 8000];
    stream.write_all(&request).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("the server's answer");
    assert_eq!(reply, [TCP_REPLY_PREFIX, &request].concat(), "the echo came back whole");
    phases.done("traffic");

    // Every packet of the exchange crossed the VLAN both ways (PPPoE frames carry it).
    let vlan_after = wan::device_counters(router, wan::ROUTER_VLAN).unwrap();
    let server_vlan_after = wan::device_counters(&topology.server, wan::SERVER_VLAN).unwrap();
    let sent = vlan_after.tx_packets - vlan_before.tx_packets;
    let received = vlan_after.rx_packets - vlan_before.rx_packets;
    assert!(
        sent >= 6,
        "the router sent the client's segments through {}: {sent}",
        wan::ROUTER_VLAN
    );
    assert!(received >= 6, "and received the server's through it: {received}");
    assert!(
        vlan_after.tx_bytes - vlan_before.tx_bytes >= 8000,
        "8000 bytes of payload left through the VLAN"
    );
    let server_received = server_vlan_after.rx_packets - server_vlan_before.rx_packets;
    assert!(server_received >= 6, "the server's VLAN device received them: {server_received}");
    phases.done("checks");
}

#[test]
fn a_vm_command_returns_its_status_output_and_files_and_is_killed_at_its_timeout() {
    require_root();
    let kernel = vm::kernel().expect("the kernel cache");
    let script = r#"echo to-stdout; echo to-stderr >&2
        uname -r >"$CMMD_VM_SCRATCH/release"
        test "$CMMD_IN_VM" = 1 || exit 1
        touch /etc/written-in-the-guest || exit 2
        modprobe 8021q && grep -q '^8021q ' /proc/modules || exit 3
        exit 7"#;
    let run = vm::VmCommand::new("/bin/sh").args(["-c", script]).run().expect("the VM runs");
    assert_eq!(run.status, 7, "the command's own exit status: {}", run.output);
    assert_eq!(run.output, "to-stdout\nto-stderr\n", "standard output and error, in order");
    assert_eq!(run.scratch_file("release").unwrap().trim(), kernel.release, "Debian's kernel ran");
    assert!(
        !Path::new("/etc/written-in-the-guest").exists(),
        "the guest's writes stay in the guest"
    );
    eprintln!(
        "VM command: boot_s={:.1} total_s={:.1}",
        run.boot.as_secs_f64(),
        run.elapsed.as_secs_f64()
    );

    let slow = vm::VmCommand::new("/bin/sleep")
        .args(["600"])
        .timeout(Duration::from_secs(2))
        .run()
        .expect("the VM runs");
    assert_eq!(slow.status, 143, "killed by SIGTERM at its timeout: {}", slow.output);
    assert!(
        slow.elapsed < Duration::from_secs(60),
        "and the VM ended soon after: {:?}",
        slow.elapsed
    );
}
