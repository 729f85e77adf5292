//! Which [`Abi`] cdx speaks, found by asking it something that changes nothing.
//!
//! The probe is `FPP_CMD_IPV4_GET_TIMEOUT` of a conntrack that cannot exist (all-zero
//! addresses and ports, protocol 0), sent once in each ABI's size (44 and 48 bytes). cdx
//! checks the size before anything else and answers a size it does not know with
//! `WRONG_COMMAND_SIZE` (2); a size it knows leads to a lookup that finds nothing, answered
//! with `CMD_ERR` (0xFFFE). Checked in both sources:
//!
//! - NXP's cdx, `IPv4_HandleIP_Get_Timeout` (`control_ipv4.c`): the first statement is
//!   `if (Length != sizeof(CtCommand)) return ERR_WRONG_COMMAND_SIZE;`; then
//!   `IPv4_find_ctentry` and, when nothing is found, `return CMD_ERR` without touching any
//!   state (the `memset` of the reply and the activity refresh happen only for a found
//!   entry).
//! - The ASK port: the same handler with the 48-byte `CtCommand` (master, `mt-6.12.y`); on
//!   `fix/security-hardening` the table dispatcher checks the exact size
//!   (`CDX_CMD(CMD_IPV4_GET_TIMEOUT, CtCommand, …)`, `cdx_cmd_validator.h`) before calling the
//!   same handler.
//!
//! An all-zero tuple of protocol 0 is no connection CMM or cmmd registers, so the lookup
//! cannot hit. A cdx whose owner is the Linux flowtable (`offload_owner=flowtable`) refuses
//! every FCI command with a netlink `EOPNOTSUPP`; [`detect`] reports that as
//! [`DetectError::OffloadOwnerNotCmm`].
//!
//! The sans-IO half is [`probe`] (the bytes to send) and [`decide`] (the ABI from the two
//! answers); [`detect`] runs both over a [`crate::fci::Transport`].

use std::fmt;
use std::time::Duration;

use crate::fci::{DatagramSocket, FciError, Transport};
use crate::fpp::{Abi, AbiPayload, Action, Ct4Cmd, FCode, ReturnCode, Tuple};

/// The command code of the probe.
pub const PROBE_FCODE: FCode = FCode::Ipv4GetTimeout;

/// The probe in `abi`'s size: `GET_TIMEOUT` of a conntrack that cannot exist.
pub fn probe(abi: Abi) -> Vec<u8> {
    let zero = Tuple::new([0, 0, 0, 0].into(), [0, 0, 0, 0].into(), 0, 0);
    Ct4Cmd::new(Action::Register, 0, zero, zero).to_vec_for(abi)
}

/// What one probe's answer says about the ABI it was sized for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeAnswer {
    /// cdx took the size (it looked the conntrack up): it speaks this ABI.
    Accepted,
    /// `WRONG_COMMAND_SIZE`: it does not.
    WrongSize,
    /// Anything else: says nothing.
    Other(ReturnCode),
}

/// Classifies the return code of a probe.
pub fn classify(rc: ReturnCode) -> ProbeAnswer {
    match rc {
        // Not found, as expected; or found (a conntrack with that tuple exists after all).
        ReturnCode::CmdErr | ReturnCode::Ok => ProbeAnswer::Accepted,
        ReturnCode::WrongCommandSize => ProbeAnswer::WrongSize,
        other => ProbeAnswer::Other(other),
    }
}

/// The ABI cdx speaks, and the answers that showed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Detection {
    /// The ABI.
    pub abi: Abi,
    /// The return code of the probe in each ABI's size, LSDK first.
    pub answers: [(Abi, ReturnCode); 2],
}

impl fmt::Display for Detection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (IPv4 GET_TIMEOUT probe:", self.abi)?;
        for (abi, rc) in self.answers {
            write!(f, " {} B → {rc};", probe(abi).len())?;
        }
        f.write_str(" cdx takes only its own size)")
    }
}

/// Why no ABI was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DetectError {
    /// cdx refuses FCI (netlink `EOPNOTSUPP`): it was booted with
    /// `offload_owner=flowtable`, or refuses FCI altogether.
    #[error(
        "cdx refuses FCI commands (EOPNOTSUPP): its hardware flows are owned by the Linux \
         flowtable; boot cdx with offload_owner=cmm to let cmmd program it"
    )]
    OffloadOwnerNotCmm,
    /// Both sizes or neither were taken.
    #[error("cdx's answers name no ABI: {answers:?}")]
    Inconclusive {
        /// The return code of the probe in each ABI's size, LSDK first.
        answers: [(Abi, ReturnCode); 2],
    },
    /// The transport failed.
    #[error("probing cdx: {0}")]
    Fci(#[from] FciError),
}

/// The ABI from the answers to both probes, LSDK first.
///
/// # Errors
/// [`DetectError::Inconclusive`] unless exactly one size was taken and the other refused.
pub fn decide(answers: [(Abi, ReturnCode); 2]) -> Result<Detection, DetectError> {
    let [(first, first_rc), (second, second_rc)] = answers;
    match (classify(first_rc), classify(second_rc)) {
        (ProbeAnswer::Accepted, ProbeAnswer::WrongSize) => Ok(Detection { abi: first, answers }),
        (ProbeAnswer::WrongSize, ProbeAnswer::Accepted) => Ok(Detection { abi: second, answers }),
        _ => Err(DetectError::Inconclusive { answers }),
    }
}

/// Probes cdx over `transport` (two commands, each waiting up to `timeout`) and decides.
///
/// # Errors
/// [`DetectError::OffloadOwnerNotCmm`] on a netlink `EOPNOTSUPP`; otherwise as [`decide`],
/// or the transport's error.
pub fn detect<S: DatagramSocket>(
    transport: &mut Transport<S>,
    timeout: Duration,
) -> Result<Detection, DetectError> {
    let mut answers = [(Abi::Lsdk, ReturnCode::Ok), (Abi::Ask, ReturnCode::Ok)];
    for (abi, rc) in &mut answers {
        match transport.call(PROBE_FCODE, &probe(*abi), timeout) {
            Ok(reply) => *rc = reply.rc,
            Err(error) if error.is_offload_refused() => {
                return Err(DetectError::OffloadOwnerNotCmm);
            }
            Err(error) => return Err(error.into()),
        }
    }
    decide(answers)
}

/// `true` if `error` is the netlink error cdx answers every command with when it does not
/// own FCI ([`crate::fci::EOPNOTSUPP`]).
pub fn is_offload_refused(error: &FciError) -> bool {
    error.is_offload_refused()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_the_basic_ipv4_sizes_and_all_zero() {
        let lsdk = probe(Abi::Lsdk);
        let ask = probe(Abi::Ask);
        assert_eq!((lsdk.len(), ask.len()), (44, 48));
        assert!(lsdk.iter().chain(&ask).all(|&b| b == 0), "action 0, zero tuples, protocol 0");
    }

    #[test]
    fn exactly_one_accepted_size_decides() {
        let lsdk_cdx = [(Abi::Lsdk, ReturnCode::CmdErr), (Abi::Ask, ReturnCode::WrongCommandSize)];
        assert_eq!(decide(lsdk_cdx).unwrap().abi, Abi::Lsdk);
        let ask_cdx = [(Abi::Lsdk, ReturnCode::WrongCommandSize), (Abi::Ask, ReturnCode::CmdErr)];
        let found = decide(ask_cdx).unwrap();
        assert_eq!(found.abi, Abi::Ask);
        assert_eq!(
            found.to_string(),
            "ask (IPv4 GET_TIMEOUT probe: 44 B → WrongCommandSize (2); 48 B → CmdErr (65534); \
             cdx takes only its own size)"
        );
        for inconclusive in [
            [(Abi::Lsdk, ReturnCode::CmdErr), (Abi::Ask, ReturnCode::CmdErr)],
            [(Abi::Lsdk, ReturnCode::WrongCommandSize), (Abi::Ask, ReturnCode::WrongCommandSize)],
            [(Abi::Lsdk, ReturnCode::UnknownCommand), (Abi::Ask, ReturnCode::WrongCommandSize)],
        ] {
            assert!(matches!(decide(inconclusive), Err(DetectError::Inconclusive { .. })));
        }
        assert_eq!(classify(ReturnCode::Ok), ProbeAnswer::Accepted);
        assert_eq!(classify(ReturnCode::Failure), ProbeAnswer::Other(ReturnCode::Failure));
        assert!(is_offload_refused(&FciError::Netlink { seq: 1, errno: crate::fci::EOPNOTSUPP }));
        assert!(!is_offload_refused(&FciError::Netlink { seq: 1, errno: 5 }));
    }
}
