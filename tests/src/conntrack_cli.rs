//! The `conntrack` command-line tool (conntrack-tools) as an independent witness: entries made
//! with `conntrack -I`, and `conntrack -L` parsed into fields.

use std::io;

use crate::netns::Netns;

/// One line of `conntrack -L`, e.g.
/// `tcp 6 299 ESTABLISHED src=192.0.2.1 dst=198.51.100.7 sport=40000 dport=443 src=… [ASSURED] mark=42 use=1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedEntry {
    /// The line as printed.
    pub line: String,
    /// Protocol name (`tcp`, `udp`, `icmp`…).
    pub proto: String,
    /// Seconds to expiry.
    pub timeout: u32,
    /// TCP state, if printed (`ESTABLISHED`…).
    pub state: Option<String>,
    /// `key=value` fields in order (the first `src` is the original source, the second the
    /// reply source).
    pub fields: Vec<(String, String)>,
    /// Bracketed flags (`ASSURED`, `UNREPLIED`…).
    pub flags: Vec<String>,
}

impl ListedEntry {
    /// Parses one line; `None` if it is not an entry line.
    pub fn parse(line: &str) -> Option<Self> {
        let mut tokens = line.split_whitespace();
        let proto = tokens.next()?.to_owned();
        let _number: u8 = tokens.next()?.parse().ok()?;
        let timeout = tokens.next()?.parse().ok()?;
        let mut entry = Self {
            line: line.to_owned(),
            proto,
            timeout,
            state: None,
            fields: Vec::new(),
            flags: Vec::new(),
        };
        for token in tokens {
            if let Some((key, value)) = token.split_once('=') {
                entry.fields.push((key.to_owned(), value.to_owned()));
            } else if let Some(flag) =
                token.strip_prefix('[').and_then(|rest| rest.strip_suffix(']'))
            {
                entry.flags.push(flag.to_owned());
            } else {
                entry.state = Some(token.to_owned());
            }
        }
        Some(entry)
    }

    /// The `n`-th value of `key` (0: original direction, 1: reply direction).
    pub fn value(&self, key: &str, n: usize) -> Option<&str> {
        self.fields.iter().filter(|(name, _)| name == key).nth(n).map(|(_, value)| value.as_str())
    }

    /// Whether the bracketed flag is printed.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|printed| printed == flag)
    }
}

/// `conntrack -L` (both families) inside `netns`.
pub fn list(netns: &Netns) -> io::Result<Vec<ListedEntry>> {
    let mut entries = Vec::new();
    for family in ["ipv4", "ipv6"] {
        let output = netns.exec("conntrack", &["-L", "-f", family])?;
        entries.extend(output.lines().filter_map(ListedEntry::parse));
    }
    Ok(entries)
}

/// `conntrack -I ARGS…` inside `netns`.
pub fn insert(netns: &Netns, args: &[&str]) -> io::Result<()> {
    let mut full = vec!["-I"];
    full.extend_from_slice(args);
    netns.exec("conntrack", &full).map(drop)
}

/// `conntrack -I` an ESTABLISHED, ASSURED TCP entry `src:sport → dst:dport` (no NAT) that
/// expires in 600 s, inside `netns`.
pub fn insert_established(
    netns: &Netns,
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
) -> io::Result<()> {
    let (sport, dport) = (sport.to_string(), dport.to_string());
    insert(
        netns,
        &[
            "-p",
            "tcp",
            "-s",
            src,
            "-d",
            dst,
            "--sport",
            &sport,
            "--dport",
            &dport,
            "--state",
            "ESTABLISHED",
            "--status",
            "ASSURED,SEEN_REPLY",
            "-t",
            "600",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_listed_tcp_entry() {
        let line = "tcp      6 299 ESTABLISHED src=192.0.2.1 dst=198.51.100.7 sport=40000 dport=443 \
                    src=198.51.100.7 dst=192.0.2.1 sport=443 dport=40000 [ASSURED] mark=42 zone=7 use=1";
        let entry = ListedEntry::parse(line).unwrap();
        assert_eq!(
            (entry.proto.as_str(), entry.timeout, entry.state.as_deref()),
            ("tcp", 299, Some("ESTABLISHED"))
        );
        assert_eq!(entry.value("src", 0), Some("192.0.2.1"));
        assert_eq!(entry.value("src", 1), Some("198.51.100.7"));
        assert_eq!(entry.value("dport", 0), Some("443"));
        assert_eq!((entry.value("mark", 0), entry.value("zone", 0)), (Some("42"), Some("7")));
        assert!(entry.has_flag("ASSURED"));
        assert_eq!(
            ListedEntry::parse(
                "conntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown."
            ),
            None
        );
    }
}
