//! `show route`, `show neighbor`, `show fpp_route` and their `detail` variants.
//!
//! The vendor's lines (`route_cache.c`, `neighbor_resolution.c` of the ASK build: LS1043,
//! without `VLAN_FILTER`): an interface the system cannot name prints as glibc prints a null
//! string, `(null)`; a route's trailer is printed only when it has lines. cmmd's route
//! cache has the vendor's identity (input interface, mark, source, destination): a lookup
//! without an input interface or a source (the host's own route towards a client, on stock
//! kernels) prints `IIf: (null)` and the unspecified address, as the vendor prints a lookup
//! without them; `Gateway:` is the destination itself on a direct route, as the vendor
//! stores it. The host's own routes towards clients (how a stock kernel's ingress is
//! inferred, a lookup the vendor never makes) are in `detail` only, and count for no
//! neighbour. Only answered lookups are routes to the vendor; `detail` also lists lookups
//! in flight and failed ones, with the MTU and the route type.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cli::Session;

use crate::core::engine::Engine;
use crate::core::hw::RouteObjState;
use crate::core::net::{Mac, Neighbour, nud};
use crate::core::route::{RouteInfo, RouteKey, RouteState};

/// What glibc prints for a null `%s`: the vendor's name of an interface it cannot name.
const NULL: &str = "(null)";

/// The interface's name, or `(null)` as the vendor's `if_indextoname` failure prints.
pub(super) fn ifname(engine: &Engine, index: u32) -> String {
    engine.net().link(index).map_or_else(|| NULL.to_owned(), |l| l.name.to_string())
}

/// Route-cache entries of one family, sorted by destination, source, input and mark.
fn routes_of(engine: &Engine, v4: bool) -> Vec<(RouteKey, RouteState, u32)> {
    let mut routes: Vec<_> =
        engine.routes().entries().filter(|(key, _, _)| key.dst.is_ipv4() == v4).collect();
    routes.sort_by_key(|(key, _, _)| (key.dst, key.src, key.iif, key.mark));
    routes
}

/// A lookup's input interface and source as the vendor prints them: `(null)` and the
/// unspecified address when it has none.
fn iif_and_src(engine: &Engine, key: &RouteKey) -> (String, IpAddr) {
    let unspecified: IpAddr =
        if key.dst.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
    let iif = if key.iif == 0 { NULL.to_owned() } else { ifname(engine, key.iif) };
    (iif, key.src.unwrap_or(unspecified))
}

/// `show route`.
pub(super) fn show_route(engine: &Engine, out: &mut Session) {
    for (title, v4, family) in [("IPv4 Route:", true, "IPv4"), ("IPv6 Route:", false, "IPv6")] {
        out.reply_line(title);
        // The vendor spells the output interface `OIf` for IPv4 and `Oif` for IPv6.
        let oif_label = if v4 { "OIf" } else { "Oif" };
        let mut printed = 0;
        for (key, state, users) in routes_of(engine, v4) {
            let RouteState::Resolved(info) = state else { continue };
            if !key.is_forwarded() {
                continue;
            }
            let oif = ifname(engine, info.oif);
            let (iif, src) = iif_and_src(engine, &key);
            out.reply_line(&format!(
                "IIf: {iif}, Mark: {:08x}, Src: {src}, Dst: {} --> Gateway: {}, \
                 {oif_label}: {oif}, PhysOif: {oif}, Count: {users}",
                key.mark,
                key.dst,
                info.gateway.unwrap_or(key.dst),
            ));
            printed += 1;
        }
        if printed > 0 {
            out.reply_line(&format!("{printed} {family} Routes printed"));
        }
    }
}

/// The MTU cdx is given for a route: the route's own, else its output link's.
fn route_mtu(engine: &Engine, info: &RouteInfo) -> u32 {
    if info.mtu != 0 { info.mtu } else { engine.net().link(info.oif).map_or(0, |l| l.mtu) }
}

/// `show route detail`: every cache entry, answered or not.
pub(super) fn show_route_detail(engine: &Engine, out: &mut Session) {
    for (title, v4, family) in [("IPv4 Route:", true, "IPv4"), ("IPv6 Route:", false, "IPv6")] {
        out.reply_line(title);
        let routes = routes_of(engine, v4);
        for (key, state, users) in &routes {
            let via = match state {
                RouteState::Pending => "pending".to_owned(),
                RouteState::Failed(e) => format!("unreachable (errno {})", e.errno),
                RouteState::Resolved(info) => {
                    let gw = info.gateway.map_or_else(|| "-".to_owned(), |g| g.to_string());
                    let oif = ifname(engine, info.oif);
                    format!(
                        "Gateway: {gw}, OIf: {oif}, Mtu: {}, Type: {:?}",
                        route_mtu(engine, info),
                        info.kind
                    )
                }
            };
            let (iif, src) = iif_and_src(engine, key);
            out.reply_line(&format!(
                "IIf: {iif}, Mark: {:08x}, Src: {src}, Dst: {} --> {via}, Count: {users}",
                key.mark, key.dst
            ));
        }
        out.reply_line(&format!("{} {family} Routes printed", routes.len()));
    }
}

/// How many answered route lookups send to `n` (the vendor's count of routes holding a
/// neighbour).
fn neighbour_users(engine: &Engine, n: &Neighbour) -> usize {
    engine
        .routes()
        .entries()
        .filter(|(key, state, _)| match state {
            RouteState::Resolved(info) if key.is_forwarded() => {
                info.oif == n.ifindex && info.gateway.unwrap_or(key.dst) == n.addr
            }
            _ => false,
        })
        .count()
}

/// `show neighbor`: every neighbour of the kernel the vendor keeps (not `NOARP` ones, not
/// the host's own addresses), its MAC only while the kernel says it is valid.
pub(super) fn show_neighbor(engine: &Engine, out: &mut Session) {
    for (title, footer, v4) in [
        ("IPv4 ARP:", "Total ARP Entries", true),
        ("IPv6 Neighbor:", "Total Neighbor Entries", false),
    ] {
        out.reply_line(title);
        // The vendor spells the (bridge) port `Port:%d` for IPv4, `Port: %d` for IPv6; it is
        // -1 until a bridge port is looked up, which cmmd never does.
        let port = if v4 { "Port:-1" } else { "Port: -1" };
        let mut neighbours: Vec<&Neighbour> = engine
            .net()
            .neighbours()
            .filter(|n| n.addr.is_ipv4() == v4)
            .filter(|n| n.state & nud::NOARP == 0 && !engine.net().is_local(&n.addr))
            .collect();
        neighbours.sort_by_key(|n| (n.ifindex, n.addr));
        for n in &neighbours {
            let mac = n.valid_mac().unwrap_or(Mac::default());
            out.reply_line(&format!(
                "IP addr: {} --> MAC addr: {mac} If: {}, {port}, state: {:x}, Count: {}",
                n.addr,
                ifname(engine, n.ifindex),
                n.state,
                neighbour_users(engine, n)
            ));
        }
        out.reply_line(&format!("{footer}: {}", neighbours.len()));
    }
}

/// `show fpp_route` (`detail`: with the input port and cmmd's state of each object).
pub(super) fn show_fpp_route(engine: &Engine, detail: bool, out: &mut Session) {
    out.reply_line("FPP Route:");
    let mut objects: Vec<_> = engine.hw_routes().iter().collect();
    objects.sort_by_key(|(id, _)| *id);
    for (id, o) in &objects {
        // The vendor's route flags: 0x1 programmed.
        let flags = u8::from(o.state == RouteObjState::Registered);
        let s = &o.spec;
        if detail {
            out.reply_line(&format!(
                "OIf: {}, IIf: {}, Mtu: {}, Mac: {}, Id: {id}, Count: {}, State: {:?}",
                s.output, s.input, s.mtu, s.mac, o.refs, o.state
            ));
        } else {
            out.reply_line(&format!(
                "OIf: {}, Mtu: {}, Mac: {}, Id: {id}, Count: {}, Flags: {flags:x}",
                s.output, s.mtu, s.mac, o.refs
            ));
        }
    }
    if detail || !objects.is_empty() {
        out.reply_line(&format!("{} FPP Routes printed", objects.len()));
    }
}
