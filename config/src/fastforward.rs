//! The vendor `fastforward` file (`/etc/config/fastforward`, UCI-like), read so that existing
//! exclusion lists keep working.
//!
//! Contract: the vendor *semantics* are kept, its parser's defects are not.
//! * Kept: `config fastforward <name>` sections are deny rules whose options are ANDed; `port`,
//!   `ip_v4_addr` and `ip_v6_addr` expand into four rules (orig source, orig destination, reply source,
//!   reply destination), each ANDed with the options before it, and no option may follow them;
//!   `proto tcp|udp` selects the L4 protocol and `proto ipv4|ipv6` the family; `mark <n> [mask <m>]`.
//! * Fixed: lines of any length and any number of tokens; numbers are parsed, not `atoi`ed, and
//!   range-checked; unknown section types, unknown options, missing values, repeated options and
//!   options outside a section are errors with their line number; a section without options is an
//!   error (it would deny everything) instead of being dropped or leaking into the next one.
//! * Sections of other vendor features are parsed, their options checked, and reported as notices:
//!   `logging`, `tun`, `tcp_lro`, `wifi_fastforward` are ignored, `asym_fastforward` is
//!   unsupported, `cli_listenaddr`'s `ip4addr` is offered to the loader as `cli.listen` and
//!   `vlan`'s `policy` as `offload.vlan` (the vendor rejects the literal `manual` by an
//!   inverted test; here it is valid).
//!
//! Tokens are separated by blanks; a token may be quoted with `'` or `"` (as `uci` writes them); a
//! token starting with `#` starts a comment.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::keys::parse_unsigned;
use crate::model::{InterfaceName, Named, VlanPolicy};
use crate::rules::{Cidr, ExcludeRule, Family, MarkMatch};

/// A parsed `fastforward` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fastforward {
    /// The file.
    pub path: PathBuf,
    /// Deny rules, in file order (a `port` option yields four).
    pub rules: Vec<ExcludeRule>,
    /// `config cli_listenaddr` / `option ip4addr`: the address and its line.
    pub cli_listen: Option<(Ipv4Addr, usize)>,
    /// `config vlan` / `option policy`: the policy and its line.
    pub vlan_policy: Option<(VlanPolicy, usize)>,
    /// What was ignored or is unsupported, one per section.
    pub notices: Vec<Notice>,
}

/// A section the daemon does not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Line of the `config` keyword.
    pub line: usize,
    /// Section type, e.g. `logging`.
    pub section: String,
    /// What happens to it.
    pub message: &'static str,
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: section {:?} {}", self.line, self.section, self.message)
    }
}

impl Fastforward {
    /// The notices as log lines, `<path>:<line>: section "<type>" <what happens>`.
    pub fn notice_lines(&self) -> Vec<String> {
        self.notices.iter().map(|notice| format!("{}:{notice}", self.path.display())).collect()
    }
}

/// Reads and parses a `fastforward` file.
pub fn read_fastforward(path: &Path) -> Result<Fastforward, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    parse_fastforward(path, &bytes)
}

/// What an option of a non-rule section accepts.
#[derive(Clone, Copy)]
enum Accepts {
    Anything,
    ZeroOrOne,
    Port,
    Interface,
    Ipv4,
    Words(&'static [&'static str]),
    VlanPolicy,
}

/// An option of a non-rule section and what it accepts.
type OptionSpec = (&'static str, Accepts);

/// Section types other than `fastforward`: options they take and what happens to them.
const OTHER_SECTIONS: &[(&str, &[OptionSpec], &str)] = &[
    (
        "logging",
        &[
            ("file", Accepts::Anything),
            ("command", Accepts::ZeroOrOne),
            ("error", Accepts::ZeroOrOne),
            ("warning", Accepts::ZeroOrOne),
            ("info", Accepts::ZeroOrOne),
        ],
        "ignored: cmmd logs to stdout/stderr (set log.level or CMM_LOG)",
    ),
    (
        "vlan",
        &[("policy", Accepts::VlanPolicy)],
        "mapped: policy becomes offload.vlan unless that is set",
    ),
    ("tun", &[("proto", Accepts::Anything)], "ignored: cmmd does not offload tunnels"),
    ("tcp_lro", &[("ifname", Accepts::Interface)], "ignored: cmmd does not enable LRO"),
    (
        "wifi_fastforward",
        &[
            ("ifname", Accepts::Interface),
            ("direct_path_rx", Accepts::Anything),
            ("wifi_guest", Accepts::Anything),
        ],
        "ignored: these boards have no Wi-Fi fast path",
    ),
    (
        "asym_fastforward",
        &[
            ("orig_src_port", Accepts::Port),
            ("orig_dst_port", Accepts::Port),
            ("l3proto", Accepts::Words(&["ipv4", "ipv6"])),
            ("l4proto", Accepts::Words(&["tcp", "udp"])),
            ("interface", Accepts::Interface),
        ],
        "unsupported: asymmetric fast-forward needs Wi-Fi ports; its rules are not applied",
    ),
    (
        "cli_listenaddr",
        &[("ip4addr", Accepts::Ipv4)],
        "mapped: ip4addr becomes cli.listen unless that is set",
    ),
];

const PORT_RULE: &str = "expected 1..=65535";

/// Splits a line into tokens; `None` inside means an unterminated quote.
fn tokens(line: &str) -> Result<Vec<&str>, String> {
    let mut tokens = Vec::new();
    let mut rest = line.trim_start();
    while let Some(first) = rest.chars().next() {
        if first == '#' {
            break;
        }
        let (token, after) = if first == '\'' || first == '"' {
            let body = rest.get(1..).unwrap_or("");
            let end = body.find(first).ok_or_else(|| format!("unterminated {first} quote"))?;
            (body.get(..end).unwrap_or(""), body.get(end + 1..).unwrap_or(""))
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            rest.split_at(end)
        };
        tokens.push(token);
        rest = after.trim_start();
    }
    Ok(tokens)
}

/// The rule being built for one `config fastforward` section.
struct RuleSection {
    name: String,
    line: usize,
    rule: ExcludeRule,
    options: usize,
    /// Set once `port`, `ip_v4_addr` or `ip_v6_addr` expanded the rule: no option may follow.
    expanded_by: Option<String>,
    /// Option slots already given (`proto` counts separately for the L3 and L4 meaning).
    given: Vec<&'static str>,
}

enum Section {
    Rules(Box<RuleSection>),
    Other { kind: &'static str, options: &'static [OptionSpec] },
}

struct Parser<'a> {
    path: &'a Path,
    line: usize,
    result: Fastforward,
    section: Option<Section>,
}

impl Parser<'_> {
    fn error(&self, message: String) -> ConfigError {
        ConfigError::Fastforward { path: self.path.to_owned(), line: self.line, message }
    }

    fn value_error(&self, option: &str, value: &str, rule: &str) -> ConfigError {
        self.error(format!("option {option:?} value {value:?}: {rule}"))
    }

    fn finish_section(&mut self) -> Result<(), ConfigError> {
        let Some(Section::Rules(section)) = self.section.take() else {
            return Ok(());
        };
        if section.options == 0 {
            return Err(ConfigError::Fastforward {
                path: self.path.to_owned(),
                line: section.line,
                message: format!(
                    "section fastforward {:?} has no options (it would deny everything)",
                    section.name
                ),
            });
        }
        if section.expanded_by.is_none() {
            self.push_rule(section.line, section.rule)?;
        }
        Ok(())
    }

    fn push_rule(&mut self, line: usize, rule: ExcludeRule) -> Result<(), ConfigError> {
        rule.check().map_err(|why| ConfigError::Fastforward {
            path: self.path.to_owned(),
            line,
            message: format!("section fastforward {:?}: {why}", rule.name),
        })?;
        self.result.rules.push(rule);
        Ok(())
    }

    fn config_line(&mut self, args: &[&str]) -> Result<(), ConfigError> {
        self.finish_section()?;
        let (kind, name) = match args {
            [kind] => (*kind, None),
            [kind, name] => (*kind, Some(*name)),
            [] => return Err(self.error("\"config\" needs a section type".into())),
            _ => {
                return Err(self.error("\"config\" takes a section type and at most a name".into()));
            }
        };
        if kind == "fastforward" {
            let name =
                name.map_or_else(|| format!("@fastforward[line {}]", self.line), str::to_owned);
            self.section = Some(Section::Rules(Box::new(RuleSection {
                rule: ExcludeRule { name: name.clone(), ..ExcludeRule::default() },
                name,
                line: self.line,
                options: 0,
                expanded_by: None,
                given: Vec::new(),
            })));
            return Ok(());
        }
        let Some((kind, options, message)) =
            OTHER_SECTIONS.iter().find(|(known, _, _)| *known == kind)
        else {
            return Err(self.error(format!("unknown section type {kind:?}")));
        };
        self.result.notices.push(Notice { line: self.line, section: (*kind).to_owned(), message });
        self.section = Some(Section::Other { kind, options });
        Ok(())
    }

    fn option_line(&mut self, args: &[&str]) -> Result<(), ConfigError> {
        let (option, values) = match args {
            [] => return Err(self.error("\"option\" needs a name and a value".into())),
            [option] => return Err(self.error(format!("option {option:?} needs a value"))),
            [option, values @ ..] => (*option, values),
        };
        match self.section.take() {
            None => Err(self.error(format!("option {option:?} outside of a \"config\" section"))),
            Some(Section::Other { kind, options }) => {
                let result = self.other_option(kind, options, option, values);
                self.section = Some(Section::Other { kind, options });
                result
            }
            Some(Section::Rules(mut section)) => {
                let result = self.rule_option(&mut section, option, values);
                self.section = Some(Section::Rules(section));
                result
            }
        }
    }

    fn single<'v>(&self, option: &str, values: &[&'v str]) -> Result<&'v str, ConfigError> {
        match values {
            [value] => Ok(value),
            _ => {
                Err(self
                    .error(format!("option {option:?} takes one value, found {}", values.len())))
            }
        }
    }

    fn other_option(
        &mut self,
        kind: &str,
        options: &[(&str, Accepts)],
        option: &str,
        values: &[&str],
    ) -> Result<(), ConfigError> {
        let Some((_, accepts)) = options.iter().find(|(known, _)| *known == option) else {
            return Err(self.error(format!("unknown option {option:?} in section {kind:?}")));
        };
        let value = self.single(option, values)?;
        let valid = match accepts {
            Accepts::Anything => Ok(()),
            Accepts::ZeroOrOne => {
                matches!(value, "0" | "1").then_some(()).ok_or_else(|| "expected 0 or 1".to_owned())
            }
            Accepts::Port => port(value).map(drop).map_err(str::to_owned),
            Accepts::Interface => InterfaceName::new(value).map(drop),
            Accepts::Words(words) => words.contains(&value).then_some(()).ok_or_else(|| {
                let quoted: Vec<String> = words.iter().map(|word| format!("{word:?}")).collect();
                format!("expected one of {}", quoted.join(", "))
            }),
            Accepts::VlanPolicy => match VlanPolicy::ALL.iter().find(|(word, _)| *word == value) {
                Some((_, policy)) => {
                    self.result.vlan_policy = Some((*policy, self.line));
                    Ok(())
                }
                None => Err("expected one of \"allow\", \"prohibit\", \"manual\"".to_owned()),
            },
            Accepts::Ipv4 => match value.parse::<Ipv4Addr>() {
                Ok(addr) => {
                    self.result.cli_listen = Some((addr, self.line));
                    Ok(())
                }
                Err(_) => Err("expected an IPv4 address".to_owned()),
            },
        };
        valid.map_err(|rule| self.value_error(option, value, &rule))
    }

    fn rule_option(
        &mut self,
        section: &mut RuleSection,
        option: &str,
        values: &[&str],
    ) -> Result<(), ConfigError> {
        self.apply_rule_option(section, option, values)?;
        section
            .rule
            .check_families()
            .map_err(|why| self.error(format!("section fastforward {:?}: {why}", section.name)))
    }

    fn apply_rule_option(
        &mut self,
        section: &mut RuleSection,
        option: &str,
        values: &[&str],
    ) -> Result<(), ConfigError> {
        if let Some(expander) = &section.expanded_by {
            return Err(self.error(format!(
                "option {option:?} after {expander:?}: {expander:?} expands into four rules and must be the \
                 last option of its section"
            )));
        }
        section.options += 1;
        let mut slot = |slot: &'static str, this: &Self| {
            if section.given.contains(&slot) {
                Err(this
                    .error(format!("option {option:?} given twice in section {:?}", section.name)))
            } else {
                section.given.push(slot);
                Ok(())
            }
        };
        if option == "mark" {
            let (value, mask) = match values {
                [value] => (*value, None),
                [value, "mask", mask] => (*value, Some(*mask)),
                _ => {
                    return Err(self.error(
                        "option \"mark\" takes \"<mark>\" or \"<mark> mask <mask>\"".into(),
                    ));
                }
            };
            let number = |text: &str| parse_unsigned(text).and_then(|n| u32::try_from(n).ok());
            let value_number = number(value)
                .ok_or_else(|| self.value_error("mark", value, "expected 0..=4294967295"))?;
            let mask_number = match mask {
                Some(mask) => number(mask)
                    .ok_or_else(|| self.value_error("mask", mask, "expected 0..=4294967295"))?,
                None => u32::MAX,
            };
            slot("mark", self)?;
            section.rule.mark = Some(MarkMatch { value: value_number, mask: mask_number });
            return Ok(());
        }
        let value = self.single(option, values)?;
        match option {
            "proto" => match value {
                "tcp" | "udp" => {
                    slot("proto", self)?;
                    section.rule.proto = Some(if value == "tcp" { 6 } else { 17 });
                }
                "ipv4" | "ipv6" => {
                    slot("family", self)?;
                    section.rule.family =
                        Some(if value == "ipv4" { Family::Ipv4 } else { Family::Ipv6 });
                }
                _ => {
                    return Err(self.value_error(
                        option,
                        value,
                        "expected \"tcp\", \"udp\", \"ipv4\" or \"ipv6\"",
                    ));
                }
            },
            "orig_src_port" | "orig_dst_port" | "repl_src_port" | "repl_dst_port" | "port" => {
                let number = port(value).map_err(|rule| self.value_error(option, value, rule))?;
                let positions = [
                    ("orig_src_port", &mut section.rule.orig_src_port),
                    ("orig_dst_port", &mut section.rule.orig_dst_port),
                    ("repl_src_port", &mut section.rule.reply_src_port),
                    ("repl_dst_port", &mut section.rule.reply_dst_port),
                ];
                if option != "port" {
                    for (name, field) in positions {
                        if name == option {
                            slot(name, self)?;
                            *field = Some(number);
                        }
                    }
                } else {
                    self.expand(section, option, |rule, position| {
                        let field = match position {
                            0 => &mut rule.orig_src_port,
                            1 => &mut rule.orig_dst_port,
                            2 => &mut rule.reply_src_port,
                            _ => &mut rule.reply_dst_port,
                        };
                        field.replace(number).is_none_or(|before| before == number)
                    })?;
                }
            }
            _ => {
                let Some((family, position)) = address_option(option) else {
                    return Err(
                        self.error(format!("unknown option {option:?} in section \"fastforward\""))
                    );
                };
                let cidr = Cidr::parse(value)
                    .filter(|cidr| Family::of(&cidr.addr()) == family)
                    .ok_or_else(|| {
                        let example =
                            if family == Family::Ipv4 { "192.0.2.0/24" } else { "2001:db8::/32" };
                        self.value_error(
                            option,
                            value,
                            &format!("expected an {family} address or prefix such as {example}"),
                        )
                    })?;
                match position {
                    Some(position) => {
                        slot(option_slot(option), self)?;
                        *address_field(&mut section.rule, position) = Some(cidr);
                    }
                    None => self.expand(section, option, |rule, position| {
                        address_field(rule, position)
                            .replace(cidr)
                            .is_none_or(|before| before == cidr)
                    })?,
                }
            }
        }
        Ok(())
    }

    /// The vendor's four-way expansion: one rule per tuple position, each ANDed with the options
    /// given so far. `set` stores the value at a position and says whether it agrees with what an
    /// earlier option put there.
    fn expand(
        &mut self,
        section: &mut RuleSection,
        option: &str,
        set: impl Fn(&mut ExcludeRule, usize) -> bool,
    ) -> Result<(), ConfigError> {
        for position in 0..4 {
            let mut rule = section.rule.clone();
            if !set(&mut rule, position) {
                return Err(self.error(format!(
                    "option {option:?} conflicts with a port or address given before it in section {:?}",
                    section.name
                )));
            }
            self.push_rule(self.line, rule)?;
        }
        section.expanded_by = Some(option.to_owned());
        Ok(())
    }
}

/// Vendor address options: family and tuple position (`None` for the four-way `ip_v*_addr`).
fn address_option(option: &str) -> Option<(Family, Option<usize>)> {
    let (stem, family) = if let Some(stem) = option.strip_suffix("_ipv4") {
        (stem, Family::Ipv4)
    } else if let Some(stem) = option.strip_suffix("_ipv6") {
        (stem, Family::Ipv6)
    } else {
        return match option {
            "ip_v4_addr" => Some((Family::Ipv4, None)),
            "ip_v6_addr" => Some((Family::Ipv6, None)),
            _ => None,
        };
    };
    let position = ["orig_src", "orig_dst", "reply_src", "reply_dst"]
        .iter()
        .position(|known| *known == stem)?;
    Some((family, Some(position)))
}

/// Both families of an address option fill the same slot.
fn option_slot(option: &str) -> &'static str {
    match option.get(..option.len().saturating_sub(5)) {
        Some("orig_src") => "orig_src",
        Some("orig_dst") => "orig_dst",
        Some("reply_src") => "reply_src",
        _ => "reply_dst",
    }
}

fn address_field(rule: &mut ExcludeRule, position: usize) -> &mut Option<Cidr> {
    match position {
        0 => &mut rule.orig_src,
        1 => &mut rule.orig_dst,
        2 => &mut rule.reply_src,
        _ => &mut rule.reply_dst,
    }
}

fn port(text: &str) -> Result<u16, &'static str> {
    let is_decimal = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let number = if is_decimal { parse_unsigned(text) } else { None };
    number.and_then(|n| u16::try_from(n).ok()).filter(|n| *n != 0).ok_or(PORT_RULE)
}

/// Parses the bytes of a `fastforward` file; `path` is only used in messages.
pub fn parse_fastforward(path: &Path, bytes: &[u8]) -> Result<Fastforward, ConfigError> {
    let mut parser = Parser {
        path,
        line: 0,
        result: Fastforward {
            path: path.to_owned(),
            rules: Vec::new(),
            cli_listen: None,
            vlan_policy: None,
            notices: Vec::new(),
        },
        section: None,
    };
    for raw_line in bytes.split(|b| *b == b'\n') {
        parser.line += 1;
        let text =
            std::str::from_utf8(raw_line).map_err(|_| parser.error("not valid UTF-8".into()))?;
        let words = tokens(text).map_err(|why| parser.error(why))?;
        match words.split_first() {
            None => {}
            Some((&"config", args)) => parser.config_line(args)?,
            Some((&"option", args)) => parser.option_line(args)?,
            Some((keyword, _)) => {
                return Err(parser.error(format!(
                    "unknown keyword {keyword:?} (expected \"config\" or \"option\")"
                )));
            }
        }
    }
    parser.finish_section()?;
    Ok(parser.result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VENDOR_FILE: &[u8] = include_bytes!("../../packaging/fastforward.vendor.orig");

    fn parse(text: &str) -> Result<Fastforward, String> {
        parse_fastforward(Path::new("/etc/cmm/fastforward"), text.as_bytes())
            .map_err(|e| e.to_string())
    }

    fn error(text: &str) -> String {
        parse(text).expect_err("must be rejected")
    }

    #[test]
    fn the_vendor_default_file_gives_four_rules_per_port_section() {
        let file =
            parse_fastforward(Path::new("fastforward"), VENDOR_FILE).expect("vendor file parses");
        assert_eq!(file.rules.len(), 12);
        assert!(file.notices.is_empty(), "the logging section is commented out");
        let expected = |name: &str, proto: u8, port: u16| {
            let base =
                ExcludeRule { name: name.into(), proto: Some(proto), ..ExcludeRule::default() };
            vec![
                ExcludeRule { orig_src_port: Some(port), ..base.clone() },
                ExcludeRule { orig_dst_port: Some(port), ..base.clone() },
                ExcludeRule { reply_src_port: Some(port), ..base.clone() },
                ExcludeRule { reply_dst_port: Some(port), ..base },
            ]
        };
        let all: Vec<ExcludeRule> =
            [expected("ftp", 6, 21), expected("sip", 17, 5060), expected("pptp", 6, 1723)].concat();
        assert_eq!(file.rules, all);
        assert_eq!(
            file.rules.first().map(ToString::to_string).as_deref(),
            Some("ftp:\n\tproto: tcp (6)  mask ff\n\torig_src_port: 21 mask ffff\n")
        );
    }

    #[test]
    fn port_values_are_range_checked_with_the_line() {
        let text =
            "# deny\nconfig fastforward ftp\n\toption proto tcp\n\n\n\n\toption port 99999\n";
        assert_eq!(
            error(text),
            "/etc/cmm/fastforward:7: option \"port\" value \"99999\": expected 1..=65535"
        );
        for bad in ["0", "-1", "21abc", "0x15", ""] {
            let text = format!("config fastforward x\noption orig_dst_port '{bad}'\n");
            assert_eq!(
                error(&text),
                format!(
                    "/etc/cmm/fastforward:2: option \"orig_dst_port\" value {bad:?}: expected 1..=65535"
                )
            );
        }
    }

    #[test]
    fn options_after_an_expanding_option_are_errors() {
        assert_eq!(
            error("config fastforward ftp\noption port 21\noption proto tcp\n"),
            "/etc/cmm/fastforward:3: option \"proto\" after \"port\": \"port\" expands into four rules and \
             must be the last option of its section"
        );
    }

    #[test]
    fn addresses_expand_and_and_with_earlier_options() {
        let file = parse(
            "config fastforward lan\n option proto ipv4\n option mark 16384 mask 65280\n option ip_v4_addr 10.0.0.0/8\n",
        )
        .expect("valid");
        assert_eq!(file.rules.len(), 4);
        let base = ExcludeRule {
            name: "lan".into(),
            family: Some(Family::Ipv4),
            mark: Some(MarkMatch { value: 16_384, mask: 65_280 }),
            ..ExcludeRule::default()
        };
        let net = Cidr::parse("10.0.0.0/8");
        assert_eq!(
            file.rules,
            vec![
                ExcludeRule { orig_src: net, ..base.clone() },
                ExcludeRule { orig_dst: net, ..base.clone() },
                ExcludeRule { reply_src: net, ..base.clone() },
                ExcludeRule { reply_dst: net, ..base },
            ]
        );
        let single = parse(
            "config fastforward one\noption reply_dst_ipv6 2001:db8::1\noption repl_src_port 53\n",
        )
        .expect("valid");
        assert_eq!(
            single.rules,
            vec![ExcludeRule {
                name: "one".into(),
                reply_dst: Cidr::parse("2001:db8::1"),
                reply_src_port: Some(53),
                ..ExcludeRule::default()
            }]
        );
    }

    #[test]
    fn vendor_parser_defects_are_not_reproduced() {
        // Lines longer than 150 bytes and with more than 6 tokens are read whole.
        let long_name = "n".repeat(200);
        let file = parse(&format!("config fastforward {long_name}\n option mark 1 mask 255\n"))
            .expect("valid");
        assert_eq!(file.rules.first().map(|r| r.name.len()), Some(200));
        assert_eq!(
            error("config fastforward x\noption mark 1 mask 255 extra\n"),
            "/etc/cmm/fastforward:2: option \"mark\" takes \"<mark>\" or \"<mark> mask <mask>\""
        );
        // The vlan `manual` test is not inverted: manual is valid, garbage is not.
        let manual = parse("config vlan\noption policy manual\n").unwrap();
        assert_eq!(manual.vlan_policy, Some((VlanPolicy::Manual, 2)));
        assert_eq!(
            error("config vlan\noption policy bogus\n"),
            "/etc/cmm/fastforward:2: option \"policy\" value \"bogus\": expected one of \"allow\", \"prohibit\", \"manual\""
        );
        // Unknown sections are errors; options of a following section do not leak into `logging`.
        assert_eq!(error("config nat\n"), "/etc/cmm/fastforward:1: unknown section type \"nat\"");
        let file =
            parse("config logging\noption info 1\nconfig fastforward ftp\noption proto tcp\n")
                .expect("valid");
        assert_eq!(file.rules.len(), 1);
        assert_eq!(
            error("config logging\noption proto tcp\n"),
            "/etc/cmm/fastforward:2: unknown option \"proto\" in section \"logging\""
        );
    }

    #[test]
    fn structural_errors_name_their_line() {
        assert_eq!(
            error("option proto tcp\n"),
            "/etc/cmm/fastforward:1: option \"proto\" outside of a \"config\" section"
        );
        assert_eq!(
            error("config fastforward x\noption proto\n"),
            "/etc/cmm/fastforward:2: option \"proto\" needs a value"
        );
        assert_eq!(
            error("config fastforward x\noption proto tcp\noption proto udp\n"),
            "/etc/cmm/fastforward:3: option \"proto\" given twice in section \"x\""
        );
        assert_eq!(
            error("config fastforward x\noption colour red\n"),
            "/etc/cmm/fastforward:2: unknown option \"colour\" in section \"fastforward\""
        );
        assert_eq!(
            error("config fastforward empty\nconfig fastforward ftp\noption port 21\n"),
            "/etc/cmm/fastforward:1: section fastforward \"empty\" has no options (it would deny everything)"
        );
        assert_eq!(
            error("list ports eth0\n"),
            "/etc/cmm/fastforward:1: unknown keyword \"list\" (expected \"config\" or \"option\")"
        );
        assert_eq!(
            error("config fastforward 'x\n"),
            "/etc/cmm/fastforward:1: unterminated ' quote"
        );
        assert_eq!(
            error("config fastforward x\noption proto ipv6\noption orig_src_ipv4 10.0.0.1\n"),
            "/etc/cmm/fastforward:3: section fastforward \"x\": a deny rule cannot mix IPv4 and IPv6 (it could never match)"
        );
        assert_eq!(
            error("config fastforward x\noption orig_src_ipv4 2001:db8::1\n"),
            "/etc/cmm/fastforward:2: option \"orig_src_ipv4\" value \"2001:db8::1\": expected an ipv4 address or prefix such as 192.0.2.0/24"
        );
        assert_eq!(
            error("config fastforward x\noption orig_src_port 21\noption port 22\n"),
            "/etc/cmm/fastforward:3: option \"port\" conflicts with a port or address given before it in section \"x\""
        );
        assert_eq!(
            parse_fastforward(Path::new("ff"), b"config fastforward x\n\xfe\n")
                .map_err(|e| e.to_string()),
            Err("ff:2: not valid UTF-8".into())
        );
    }

    #[test]
    fn quoted_uci_tokens_and_trailing_comments_are_understood() {
        let file = parse("config fastforward 'ftp'  # FTP needs an ALG\n\toption proto \"tcp\"\n\toption port '21'\n")
            .expect("valid");
        assert_eq!(file.rules.len(), 4);
        assert_eq!(file.rules.first().map(|r| (r.name.as_str(), r.proto)), Some(("ftp", Some(6))));
    }

    #[test]
    fn other_sections_become_notices() {
        let file = parse(
            "config logging\n option file /var/log/cmm.log\n option error 1\nconfig tcp_lro\n option ifname eth0\n\
             config asym_fastforward a\n option l4proto udp\n option orig_dst_port 53\n\
             config cli_listenaddr\n option ip4addr 0.0.0.0\nconfig tun\n option proto IPIP\n\
             config wifi_fastforward\n option ifname wlan0\n",
        )
        .expect("valid");
        let lines: Vec<String> = file.notice_lines();
        assert_eq!(
            lines,
            [
                "/etc/cmm/fastforward:1: section \"logging\" ignored: cmmd logs to stdout/stderr (set log.level or CMM_LOG)",
                "/etc/cmm/fastforward:4: section \"tcp_lro\" ignored: cmmd does not enable LRO",
                "/etc/cmm/fastforward:6: section \"asym_fastforward\" unsupported: asymmetric fast-forward needs Wi-Fi \
                 ports; its rules are not applied",
                "/etc/cmm/fastforward:9: section \"cli_listenaddr\" mapped: ip4addr becomes cli.listen unless that is set",
                "/etc/cmm/fastforward:11: section \"tun\" ignored: cmmd does not offload tunnels",
                "/etc/cmm/fastforward:13: section \"wifi_fastforward\" ignored: these boards have no Wi-Fi fast path",
            ]
        );
        assert_eq!(file.cli_listen, Some((Ipv4Addr::UNSPECIFIED, 10)));
        assert!(file.rules.is_empty());
        assert_eq!(
            error("config cli_listenaddr\noption ip4addr ::1\n"),
            "/etc/cmm/fastforward:2: option \"ip4addr\" value \"::1\": expected an IPv4 address"
        );
        assert_eq!(
            error("config asym_fastforward a\noption orig_src_port 70000\n"),
            "/etc/cmm/fastforward:2: option \"orig_src_port\" value \"70000\": expected 1..=65535"
        );
    }
}
