//! FPP: the command language of cdx.
//!
//! An FPP command is a `u16` command code ([`FCode`]) and a packed payload; cdx answers with a
//! `u16` [`ReturnCode`] optionally followed by data (query results, timeouts). This module is
//! bytes ⇄ values only: no I/O.
//!
//! # Contract of every payload module
//!
//! - A `#[repr(C)]` wire struct made only of byte-aligned fields (`zerocopy`), so a
//!   `&[u8]` of the exact size *is* a view of the command with no copying and no alignment
//!   requirement. `const` assertions pin its size and every field offset: a wrong layout
//!   fails the build, on every target.
//! - An owned value with `parse(&[u8])` (exact size checked, never panics), `emit(&mut [u8])`
//!   (never panics; errors if the buffer is short) and `buffer_len()`.
//! - Byte order as cdx expects it on LS1043A/LS1046A: IP addresses and L4 ports in network
//!   order, every other integer (actions, codes, ids, flags, marks, timeouts, MTU) in the
//!   CPU's order. The owned values hold ports as ordinary numbers and addresses as
//!   [`std::net`] types; the conversion happens in `parse`/`emit`.
//! - Reserved and padding bytes are emitted as zero and ignored when parsing.
//!
//! Two ABIs exist ([`abi`]): NXP's cdx `4f0e3a7b` / cmm `cmm_13_01_1` built with `LS1043`
//! (the default), and the maintained ASK port. Payloads whose layout differs implement
//! [`AbiPayload`] only. Walk replies and change events carry fields cdx never writes
//! ([`unwritten`]); their decoders ([`query`], [`CtEvent`]) neither read nor fail on them.

pub mod abi;
pub mod conntrack;
pub mod ff_control;
mod ifname;
pub mod mark;
pub mod pppoe;
pub mod query;
pub mod route;
pub mod timeout;
pub mod unwritten;
pub mod vlan;

pub use abi::{Abi, AbiParseError, AbiPayload, AbiSetting};
pub use conntrack::{
    Ct4Change, Ct4Cmd, Ct6Change, Ct6Cmd, CtChange, CtCmd, CtEvent, CtExtension, CtFlags, CtFormat,
    Family, SaInfo, Tuple, V4, V6,
};
pub use ff_control::FfControl;
pub use ifname::{IFNAMSIZ, IfName, IfNameError};
pub use pppoe::PppoeEntry;
pub use route::{RouteCmd, RouteFlags};
pub use timeout::TimeoutCmd;
pub use vlan::VlanEntry;

enum_with_unknown! {
    /// FPP command codes (module in the high byte). Only the codes this crate models or the
    /// reference names exactly are named; every other code round-trips as `Unknown`.
    pub enum FCode(u16) {
        /// `FPP_CMD_RX_L2FLOW_ENTRY`: auto-bridge L2 flow (event from cdx).
        L2FlowEntry = 0x000d,
        /// `FPP_CMD_IP_ROUTE`: register/update/deregister/query a route object (84 B).
        IpRoute = 0x0313,
        /// `FPP_CMD_IPV4_CONNTRACK` (44/72 B LSDK, 48/76 B ASK).
        Ipv4Conntrack = 0x0314,
        /// `FPP_CMD_IPV4_CONNTRACK_CHANGE`: event, action REMOVED or TCP_FIN (44/48 B).
        Ipv4ConntrackChange = 0x0315,
        /// `FPP_CMD_IPV4_RESET`: remove every conntrack (IPv4 and IPv6) and route. No payload.
        Ipv4Reset = 0x0316,
        /// `FPP_CMD_IPV4_ROUTE_CHANGE` (defined, unused).
        Ipv4RouteChange = 0x0318,
        /// `FPP_CMD_IPV4_SET_TIMEOUT` (12 B).
        Ipv4SetTimeout = 0x0319,
        /// `FPP_CMD_IPV4_GET_TIMEOUT`: basic IPv4 conntrack in, remaining seconds out.
        Ipv4GetTimeout = 0x0320,
        /// `FPP_CMD_IPV4_FF_CONTROL` (4 B).
        Ipv4FfControl = 0x0321,
        /// `FPP_CMD_IPV6_CONNTRACK` (92/120 B LSDK, 96/124 B ASK).
        Ipv6Conntrack = 0x0414,
        /// `FPP_CMD_IPV6_CONNTRACK_CHANGE`: event (92/96 B).
        Ipv6ConntrackChange = 0x0415,
        /// `FPP_CMD_IPV6_RESET`: a no-op in cdx that answers OK.
        Ipv6Reset = 0x0416,
        /// `FPP_CMD_IPV6_GET_TIMEOUT`: basic IPv6 conntrack in, remaining seconds out.
        Ipv6GetTimeout = 0x0420,
        /// `FPP_CMD_PORT_UPDATE` (non-LS1043 builds only).
        PortUpdate = 0x0505,
        /// `FPP_CMD_PPPOE_ENTRY`: register, deregister or walk PPPoE sessions (44 B).
        PppoeEntry = 0x0601,
        /// `FPP_CMD_VOICE_BUFFER_RESET`: answered OK by cdx's dispatcher itself.
        VoiceBufferReset = 0x0824,
        /// `FPP_CMD_VLAN_ENTRY` (36 B LSDK, 44 B ASK).
        VlanEntry = 0x0901,
        /// `FPP_CMD_VLAN_RESET`.
        VlanReset = 0x0902,
        /// `FPP_CMD_IPSEC_SA_NOTIFY`: event for the key engine.
        IpsecSaNotify = 0x0a09,
        /// `FPP_CMD_MACVLAN_ENTRY` (no handler in the LS1043 cdx).
        MacvlanEntry = 0x1401,
        /// `FPP_CMD_MACVLAN_RESET`.
        MacvlanReset = 0x1402,
    }
}

enum_with_unknown! {
    /// The `action` field of route, conntrack and VLAN commands and of change events.
    pub enum Action(u16) {
        /// Create an entry.
        Register = 0,
        /// Remove an entry.
        Deregister = 1,
        /// Defined by the ABI, unused for conntracks.
        KeepAlive = 2,
        /// Event: cdx removed the entry (aged out, or its output port went away).
        Removed = 3,
        /// Change an existing entry.
        Update = 4,
        /// Restart a table walk and return its first entry.
        Query = 6,
        /// Return the next entry of the walk.
        QueryCont = 7,
        /// CMM-internal query of its own tables; never sent to cdx.
        QueryLocal = 8,
        /// Event: TCP FIN seen (never produced by the LS1043 cdx).
        TcpFin = 9,
    }
}

enum_with_unknown! {
    /// Every FPP return code the vendor headers name. cdx answers each command with one;
    /// values not listed (and the cdx-internal `0xFFFE`/`0xFFFF`) are named or kept.
    pub enum ReturnCode(u16) {
        /// Success.
        Ok = 0,
        /// No handler for this command code.
        UnknownCommand = 1,
        /// Payload size is not one the command accepts.
        WrongCommandSize = 2,
        /// Malformed parameter.
        WrongCommandParam = 3,
        /// The action (or protocol selector) is not supported by this command.
        UnknownAction = 4,
        /// An interface name is not registered in cdx.
        UnknownInterface = 5,
        /// Allocation failed.
        NotEnoughMemory = 6,
        /// Entry could not be created (e.g. the inverse flow is registered).
        CreationFailed = 7,
        /// Parameter value not accepted.
        WrongParamValue = 8,
        /// Parameter value out of range.
        ParamValueOutOfRange = 9,
        /// Bridge entry not found.
        BridgeEntryNotFound = 50,
        /// Bridge entry already exists.
        BridgeEntryAlreadyExists = 51,
        /// Wrong bridge mode.
        BridgeWrongMode = 52,
        /// macvlan entry already registered.
        MacvlanEntryAlreadyRegistered = 60,
        /// macvlan entry not found.
        MacvlanEntryNotFound = 61,
        /// macvlan entry invalid.
        MacvlanEntryInvalid = 62,
        /// A conntrack with this tuple is already registered.
        CtEntryAlreadyRegistered = 100,
        /// No conntrack with this tuple (also ends a conntrack walk).
        CtEntryNotFound = 101,
        /// Invalid IPsec SA.
        CtEntryInvalidSa = 102,
        /// Too many SA operations.
        CtEntryTooManySaOp = 103,
        /// A route with this id is already registered.
        RtEntryAlreadyRegistered = 200,
        /// No route with this id (also ends a route walk).
        RtEntryNotFound = 201,
        /// The route is still referenced by conntracks.
        RtEntryLinked = 202,
        /// A tunnel route the conntrack references does not exist.
        RtLinkNotPossible = 203,
        /// QoS: queue is rate limited.
        QmQueueRateLimited = 500,
        /// QoS: rate limit not applied to off.
        QmRateLimitNotAppliedToOff = 501,
        /// QoS: queue out of range.
        QmQueueOutOfRange = 502,
        /// QoS: number of DSCP values out of range.
        QmNumDscpOutOfRange = 503,
        /// QoS: DSCP out of range.
        QmDscpOutOfRange = 504,
        /// QoS: no free shaper.
        QmNoFreeShaper = 505,
        /// QoS: no queue specified.
        QmNoQueueSpecified = 506,
        /// VLAN entry already registered.
        VlanEntryAlreadyRegistered = 600,
        /// VLAN entry not found.
        VlanEntryNotFound = 601,
        /// Multicast entry not found.
        McEntryNotFound = 700,
        /// Multicast: too many listeners.
        McMaxListeners = 701,
        /// Multicast: duplicate listener.
        McDupListener = 702,
        /// Multicast: overlapping entry.
        McEntryOverlap = 703,
        /// Multicast: invalid address.
        McInvalidAddr = 704,
        /// Multicast: interface not allowed.
        McInterfaceNotAllowed = 705,
        /// PPPoE entry already registered.
        PppoeEntryAlreadyRegistered = 800,
        /// PPPoE entry not found.
        PppoeEntryNotFound = 801,
        /// IPsec: duplicated SA.
        SaDuplicated = 904,
        /// IPsec: duplicated SA handle.
        SaDuplicatedHandle = 905,
        /// IPsec: unknown SA.
        SaUnknown = 906,
        /// IPsec: invalid cipher key.
        SaInvalidCipherKey = 907,
        /// IPsec: invalid digest key.
        SaInvalidDigestKey = 908,
        /// IPsec: SA entry not found.
        SaEntryNotFound = 909,
        /// IPsec: SA socket entry not found.
        SaSockEntryNotFound = 910,
        /// IPsec: invalid mode.
        SaInvalidMode = 911,
        /// Tunnel: table full.
        TnlMaxEntries = 1000,
        /// Tunnel entry not found.
        TnlEntryNotFound = 1001,
        /// Tunnel type not supported.
        TnlNotSupported = 1002,
        /// Tunnel: no free entry.
        TnlNoFreeEntry = 1003,
        /// Tunnel already created.
        TnlAlreadyCreated = 1004,
        /// Statistics feature not compiled into cdx.
        StatFeatureNotEnabled = 1100,
        /// Exception queue out of range.
        ExptQueueOutOfRange = 1101,
        /// Exception path: number of DSCP values out of range.
        ExptNumDscpOutOfRange = 1102,
        /// Exception path: DSCP out of range.
        ExptDscpOutOfRange = 1103,
        /// Socket already open.
        SockAlreadyOpen = 1200,
        /// Socket id already used.
        SockidAlreadyUsed = 1201,
        /// Socket already opened with another id.
        SockAlreadyOpenedWithOtherId = 1202,
        /// Too many sockets open.
        TooManySocketOpen = 1203,
        /// Unknown socket id.
        SockidUnknown = 1204,
        /// Socket already in use.
        SockAlreadyInUse = 1206,
        /// RTP call id in use.
        RtpCallidInUse = 1207,
        /// Unknown RTP call.
        RtpUnknownCall = 1208,
        /// Wrong socket id.
        WrongSockid = 1209,
        /// RTP special packet length.
        RtpSpecialPktLen = 1210,
        /// RTP call table full.
        RtpCallTableFull = 1211,
        /// Wrong socket family.
        WrongSockFamily = 1212,
        /// Wrong socket protocol.
        WrongSockProto = 1213,
        /// Wrong socket type.
        WrongSockType = 1214,
        /// MSP not ready.
        MspNotReady = 1215,
        /// Wrong socket mode.
        WrongSockMode = 1216,
        /// No route to the socket (LS1043).
        NoRouteToSock = 1217,
        /// Socket update error (LS1043).
        SockUpdateErr = 1218,
        /// NAT-PT: unknown connection.
        NatptUnknownConnection = 1220,
        /// RTP statistics: table full.
        RtpStatsMaxEntries = 1230,
        /// RTP statistics: stream id already used.
        RtpStatsStreamidAlreadyUsed = 1231,
        /// RTP statistics: unknown stream id.
        RtpStatsStreamidUnknown = 1232,
        /// RTP statistics: duplicated.
        RtpStatsDuplicated = 1233,
        /// RTP statistics: wrong DTMF payload type.
        RtpStatsWrongDtmfPt = 1234,
        /// RTP statistics: wrong type.
        RtpStatsWrongType = 1235,
        /// RTP statistics: not available.
        RtpStatsNotAvailable = 1236,
        /// Voice buffer unknown.
        VoiceBufferUnknown = 1240,
        /// Voice buffer in use.
        VoiceBufferUsed = 1241,
        /// Voice buffer payload type.
        VoiceBufferPt = 1242,
        /// Voice buffer frame size.
        VoiceBufferFrameSize = 1243,
        /// Voice buffer entries.
        VoiceBufferEntries = 1244,
        /// Voice buffer size.
        VoiceBufferSize = 1245,
        /// Voice buffer already started.
        VoiceBufferStarted = 1246,
        /// Alternate configuration: option not supported.
        AltconfOptionNotSupported = 1300,
        /// Alternate configuration: mode not supported.
        AltconfModeNotSupported = 1301,
        /// Alternate configuration: wrong number of parameters.
        AltconfWrongNumParams = 1302,
        /// Packet capture already enabled.
        PktcapAlreadyEnabled = 1400,
        /// Packet capture not enabled.
        PktcapNotEnabled = 1401,
        /// Packet capture filter reset.
        PktcapFlfReset = 1402,
        /// ICC: too many entries.
        IccTooManyEntries = 1500,
        /// ICC: entry already exists.
        IccEntryAlreadyExists = 1501,
        /// ICC: entry not found.
        IccEntryNotFound = 1502,
        /// ICC: threshold out of range.
        IccThresholdOutOfRange = 1503,
        /// ICC: invalid mask length.
        IccInvalidMasklen = 1504,
        /// Flow statistics entry not found.
        FlowEntryNotFound = 1600,
        /// Invalid IP family.
        InvalidIpFamily = 1601,
        /// Wi-Fi: duplicate operation.
        WifiDuplicateOperation = 2001,
        /// cdx-internal `CMD_ERR`: e.g. GET_TIMEOUT of an unknown conntrack.
        CmdErr = 0xFFFE,
        /// cdx-internal `FAILURE (-1)`: a hardware insertion failed (table full, protocol
        /// without a hardware table).
        Failure = 0xFFFF,
    }
}

impl ReturnCode {
    /// `true` for [`ReturnCode::Ok`].
    pub const fn is_ok(self) -> bool {
        matches!(self, ReturnCode::Ok)
    }
}

impl std::fmt::Display for ReturnCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReturnCode::Unknown(v) => write!(f, "unknown return code {v} (0x{v:04x})"),
            known => write!(f, "{known:?} ({})", known.value()),
        }
    }
}

/// Why a payload could not be parsed or emitted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FppError {
    /// The payload length is not one the command has.
    #[error("{what}: payload is {actual} bytes, expected one of {expected:?}")]
    WrongSize {
        /// The payload kind.
        what: &'static str,
        /// The accepted sizes.
        expected: &'static [usize],
        /// The length received.
        actual: usize,
    },
    /// The output buffer is shorter than [`Payload::buffer_len`].
    #[error("output buffer of {actual} bytes is shorter than the {needed} bytes to emit")]
    BufferTooShort {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        actual: usize,
    },
    /// An interface-name field is not a valid NUL-terminated name.
    #[error("interface name: {0}")]
    IfName(#[from] IfNameError),
    /// The payload has a size of the other ABI: cdx (or the peer) speaks `expected.other()`.
    #[error("{what}: payload of {actual} bytes is the {} layout, not the {expected} one", expected.other())]
    OtherAbi {
        /// The payload kind.
        what: &'static str,
        /// The ABI asked for.
        expected: Abi,
        /// The length received.
        actual: usize,
    },
    /// A conntrack mark wider than the ABI's mark field (LSDK: 32 bits).
    #[error("QoS mark {mark:#x} does not fit the {abi} conntrack mark field")]
    MarkTooWide {
        /// The mark.
        mark: u64,
        /// The ABI.
        abi: Abi,
    },
}

/// Parse, emit and size of an FPP payload. Implemented by every owned payload value.
pub trait Payload: Sized {
    /// Bytes [`Payload::emit`] writes.
    fn buffer_len(&self) -> usize;

    /// Writes the payload to the start of `buf`, returning the bytes written.
    ///
    /// # Errors
    /// [`FppError::BufferTooShort`] if `buf` is shorter than [`Payload::buffer_len`].
    fn emit(&self, buf: &mut [u8]) -> Result<usize, FppError>;

    /// Parses a payload of exactly one of the command's sizes.
    ///
    /// # Errors
    /// [`FppError::WrongSize`] for any other length; [`FppError::IfName`] for an
    /// unterminated interface name.
    fn parse(bytes: &[u8]) -> Result<Self, FppError>;

    /// The payload as a new vector.
    fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0; self.buffer_len()];
        // Cannot fail: the buffer has exactly buffer_len() bytes.
        let written = self.emit(&mut out).unwrap_or(0);
        out.truncate(written);
        out
    }
}

/// Room for any walk entry cdx sends (the largest is the ASK IPv6 extended conntrack, 124 B).
pub(crate) const MAX_ENTRY: usize = crate::fci::MAX_PAYLOAD;

/// Copies `wire` to the start of `buf` (the shared tail of every `emit`).
pub(crate) fn emit_bytes(wire: &[u8], buf: &mut [u8]) -> Result<usize, FppError> {
    let available = buf.len();
    let out = buf
        .get_mut(..wire.len())
        .ok_or(FppError::BufferTooShort { needed: wire.len(), actual: available })?;
    out.copy_from_slice(wire);
    Ok(wire.len())
}

/// A wrong-size error for `what` (the shared failure of every `parse`).
pub(crate) fn wrong_size(
    what: &'static str,
    expected: &'static [usize],
    actual: usize,
) -> FppError {
    FppError::WrongSize { what, expected, actual }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_are_kept_and_known_values_are_named() {
        assert_eq!(ReturnCode::from(202), ReturnCode::RtEntryLinked);
        assert_eq!(ReturnCode::from(0xFFFF), ReturnCode::Failure);
        assert_eq!(ReturnCode::from(0x1234), ReturnCode::Unknown(0x1234));
        assert_eq!(u16::from(ReturnCode::Unknown(0x1234)), 0x1234);
        assert_eq!(FCode::from(0x0314), FCode::Ipv4Conntrack);
        assert_eq!(FCode::from(0x0999), FCode::Unknown(0x0999));
        assert_eq!(Action::from(9), Action::TcpFin);
        assert_eq!(Action::from(5), Action::Unknown(5));
    }

    #[test]
    fn every_named_value_round_trips_through_its_number() {
        for rc in ReturnCode::KNOWN {
            assert_eq!(ReturnCode::from(rc.value()), *rc);
        }
        for code in FCode::KNOWN {
            assert_eq!(FCode::from(code.value()), *code);
        }
        for action in Action::KNOWN {
            assert_eq!(Action::from(action.value()), *action);
        }
        let mut values: Vec<u16> = ReturnCode::KNOWN.iter().map(|rc| rc.value()).collect();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), ReturnCode::KNOWN.len(), "return codes are distinct");
    }

    #[test]
    fn reference_return_code_values() {
        let pinned: [(ReturnCode, u16); 16] = [
            (ReturnCode::Ok, 0),
            (ReturnCode::UnknownCommand, 1),
            (ReturnCode::WrongCommandSize, 2),
            (ReturnCode::WrongCommandParam, 3),
            (ReturnCode::UnknownAction, 4),
            (ReturnCode::UnknownInterface, 5),
            (ReturnCode::NotEnoughMemory, 6),
            (ReturnCode::CreationFailed, 7),
            (ReturnCode::CtEntryAlreadyRegistered, 100),
            (ReturnCode::CtEntryNotFound, 101),
            (ReturnCode::RtEntryAlreadyRegistered, 200),
            (ReturnCode::RtEntryNotFound, 201),
            (ReturnCode::RtEntryLinked, 202),
            (ReturnCode::RtLinkNotPossible, 203),
            (ReturnCode::StatFeatureNotEnabled, 1100),
            (ReturnCode::CmdErr, 0xFFFE),
        ];
        for (rc, value) in pinned {
            assert_eq!(rc.value(), value, "{rc:?}");
        }
        assert_eq!(ReturnCode::RtEntryLinked.to_string(), "RtEntryLinked (202)");
        assert_eq!(ReturnCode::Unknown(77).to_string(), "unknown return code 77 (0x004d)");
    }

    #[test]
    fn reference_command_codes() {
        assert_eq!(FCode::IpRoute.value(), 0x0313);
        assert_eq!(FCode::Ipv4Conntrack.value(), 0x0314);
        assert_eq!(FCode::Ipv4ConntrackChange.value(), 0x0315);
        assert_eq!(FCode::Ipv4Reset.value(), 0x0316);
        assert_eq!(FCode::Ipv4SetTimeout.value(), 0x0319);
        assert_eq!(FCode::Ipv4GetTimeout.value(), 0x0320);
        assert_eq!(FCode::Ipv4FfControl.value(), 0x0321);
        assert_eq!(FCode::Ipv6Conntrack.value(), 0x0414);
        assert_eq!(FCode::Ipv6ConntrackChange.value(), 0x0415);
        assert_eq!(FCode::Ipv6Reset.value(), 0x0416);
        assert_eq!(FCode::Ipv6GetTimeout.value(), 0x0420);
        assert_eq!(FCode::VlanEntry.value(), 0x0901);
        assert_eq!(FCode::VlanReset.value(), 0x0902);
        assert_eq!(FCode::PppoeEntry.value(), 0x0601);
        assert_eq!(ReturnCode::PppoeEntryAlreadyRegistered.value(), 800);
        assert_eq!(ReturnCode::PppoeEntryNotFound.value(), 801);
        assert_eq!(ReturnCode::VlanEntryNotFound.value(), 601);
        assert_eq!(Action::Register.value(), 0);
        assert_eq!(Action::Deregister.value(), 1);
        assert_eq!(Action::Removed.value(), 3);
        assert_eq!(Action::Update.value(), 4);
        assert_eq!(Action::Query.value(), 6);
        assert_eq!(Action::QueryCont.value(), 7);
        assert_eq!(Action::TcpFin.value(), 9);
    }

    #[test]
    fn emit_into_a_short_buffer_is_an_error() {
        let mut buf = [0u8; 3];
        assert_eq!(
            emit_bytes(&[1, 2, 3, 4], &mut buf),
            Err(FppError::BufferTooShort { needed: 4, actual: 3 })
        );
    }
}
