//! `show rules`: the deny rules as the vendor prints its rule lists (`cmmFcRulesShow`).
//!
//! The vendor keeps one list per rule, newest first, and each list's attributes newest first;
//! `port` (and `ip_v4_addr`/`ip_v6_addr`) expand into four lists, one per tuple position, the
//! last (`repl_dst_…`) printed first. A rule here is printed the same way, its fields taken
//! as written in the vendor file's order (family, protocol, ports, addresses, mark), so the
//! last written is printed first: `ftp:` / `\trepl_dst_port: 21 mask ffff` / `\tproto: tcp
//! (6)  mask ff`, then the three other positions. What the vendor cannot express (an address
//! prefix, a zone) is printed in the same shape (the prefix's mask; `\tzone: <z>`).

use cli::Session;
use config::{Cidr, ExcludeRule, Family, MarkMatch};

/// Tuple positions, in the order the vendor registers an expanded option.
const POSITIONS: [&str; 4] = ["orig_src", "orig_dst", "repl_src", "repl_dst"];

/// One attribute line, without its tab.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Attribute {
    Family(Family),
    Proto(u8),
    Port { position: usize, port: u16 },
    Addr { position: usize, cidr: Cidr },
    Mark(MarkMatch),
    Zone(u16),
}

impl Attribute {
    fn line(&self) -> String {
        match self {
            Attribute::Family(family) => {
                let number = if *family == Family::Ipv4 { 2 } else { 10 };
                format!("l3 proto: {family} ({number})  mask ff")
            }
            Attribute::Proto(number) => match number {
                6 => "proto: tcp (6)  mask ff".to_owned(),
                17 => "proto: udp (17)  mask ff".to_owned(),
                4 => "proto: ipip (4)  mask ff".to_owned(),
                other => format!("proto: unknown ({other}) mask ff"),
            },
            Attribute::Port { position, port } => {
                format!("{}_port: {port} mask ffff", position_name(*position))
            }
            Attribute::Addr { position, cidr } => {
                let (family, mask) = match cidr.addr() {
                    std::net::IpAddr::V4(_) => ("ipv4", cidr.mask()),
                    // The vendor's IPv6 mask field is 32 bits, all ones for an address.
                    std::net::IpAddr::V6(_) if cidr.prefix_len() == 128 => ("ipv6", 0xffff_ffff),
                    std::net::IpAddr::V6(_) => ("ipv6", cidr.mask()),
                };
                format!("{}_{family}: {} mask {mask:x}", position_name(*position), cidr.addr())
            }
            // The vendor prints the value with `%d` of an int.
            Attribute::Mark(mark) => {
                format!(
                    "mark: {} mask {:x}",
                    i32::from_ne_bytes(mark.value.to_ne_bytes()),
                    mark.mask
                )
            }
            Attribute::Zone(zone) => format!("zone: {zone}"),
        }
    }
}

fn position_name(position: usize) -> &'static str {
    POSITIONS.get(position).copied().unwrap_or("repl_dst")
}

/// The vendor's lists for one rule, in the order the vendor prints them, each list's
/// attributes in print order.
fn vendor_lists(rule: &ExcludeRule) -> Vec<Vec<Attribute>> {
    // In the order of the vendor file's options.
    let mut written: Vec<Attribute> = Vec::new();
    written.extend(rule.family.map(Attribute::Family));
    written.extend(rule.proto.map(Attribute::Proto));
    for (position, port) in
        [rule.orig_src_port, rule.orig_dst_port, rule.reply_src_port, rule.reply_dst_port]
            .into_iter()
            .enumerate()
    {
        written.extend(port.map(|port| Attribute::Port { position, port }));
    }
    for (position, cidr) in
        [rule.orig_src, rule.orig_dst, rule.reply_src, rule.reply_dst].into_iter().enumerate()
    {
        written.extend(cidr.map(|cidr| Attribute::Addr { position, cidr }));
    }
    written.extend(rule.mark.map(Attribute::Mark));
    written.extend(rule.zone.map(Attribute::Zone));
    // Options that expand into one list per position: each is the last option of its list.
    let mut expansions: Vec<Vec<Attribute>> = Vec::new();
    if let Some(port) = rule.port {
        expansions.push((0..4).map(|position| Attribute::Port { position, port }).collect());
    }
    if let Some(cidr) = rule.addr {
        expansions.push((0..4).map(|position| Attribute::Addr { position, cidr }).collect());
    }
    let mut lists: Vec<Vec<Attribute>> = vec![written];
    for expansion in expansions {
        lists = lists
            .iter()
            .flat_map(|list| {
                expansion.iter().map(move |last| {
                    let mut list = list.clone();
                    list.push(last.clone());
                    list
                })
            })
            .collect();
    }
    // Newest first: the last list registered, and in each list the last attribute.
    lists.reverse();
    for list in &mut lists {
        list.reverse();
    }
    lists
}

/// `show rules`: the most recently defined rule first.
pub(super) fn show(rules: &[ExcludeRule], out: &mut Session) {
    for line in lines(rules) {
        out.reply_line(&line);
    }
}

/// The lines of `show rules`.
pub(super) fn lines(rules: &[ExcludeRule]) -> Vec<String> {
    let mut lines = Vec::new();
    for rule in rules.iter().rev() {
        for list in vendor_lists(rule) {
            lines.push(format!("{}:", rule.name));
            lines.extend(list.iter().map(|attribute| format!("\t{}", attribute.line())));
        }
    }
    lines
}
