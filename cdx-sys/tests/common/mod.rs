//! Commands and configuration shared by the software-cdx integration tests.

use std::net::Ipv4Addr;
use std::time::Duration;

use cdx_sys::fpp::{Action, Ct4Cmd, IfName, RouteCmd, Tuple};
use cdx_sys::sim::SimConfig;

/// A sim with ports eth0 and eth1, ageing every `tick`.
pub(crate) fn config(tick: Duration) -> SimConfig {
    SimConfig { interfaces: vec!["eth0".into(), "eth1".into()], tick, ..SimConfig::default() }
}

/// Register route object `id`: in eth0, out eth1, to 02:00:00:00:00:01, MTU 1500.
pub(crate) fn route(id: u32) -> RouteCmd {
    RouteCmd::new(
        Action::Register,
        id,
        IfName::new("eth0").unwrap(),
        IfName::new("eth1").unwrap(),
        [2, 0, 0, 0, 0, 1],
        1500,
    )
}

/// Register the UDP flow 192.0.2.1:`sport` → 198.51.100.1:53 with route objects `routes`
/// (original, reply).
pub(crate) fn udp_flow(sport: u16, routes: (u32, u32)) -> Ct4Cmd {
    let orig = Tuple::new(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 1), sport, 53);
    let mut cmd = Ct4Cmd::new(Action::Register, 17, orig, orig.inverse());
    (cmd.route_id, cmd.route_id_reply) = routes;
    cmd
}
