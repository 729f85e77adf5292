//! From configuration to the pieces the daemon is made of: the CLI's settings and
//! credentials, and the kernel facts read at start-up. (The engine takes its settings from the
//! configuration itself: `EngineConfig::new`.)

use std::path::Path;
use std::time::Duration;

use cli::{Credentials, LockoutPolicy, PhcHash, SessionConfig};
use config::{Config, defaults};

use conntrack::{DialectSetting, PermanentBit};

use crate::core::engine::KernelTimeouts;
use crate::edge::cli_server::CliSettings;

/// The CLI's limits.
pub fn cli_settings(cfg: &Config) -> CliSettings {
    let c = &cfg.cli;
    CliSettings {
        max_sessions: c.max_sessions.get() as usize,
        session: SessionConfig {
            enable_password_required: c.enable_password_hash.is_some(),
            max_login_failures: c.max_login_failures.get(),
            login_timeout: Some(c.login_timeout),
            idle_timeout: Some(c.idle_timeout),
            ..SessionConfig::default()
        },
        lockout: LockoutPolicy {
            max_failures: c.lockout_failures.get(),
            window: c.lockout_window,
            lockout: c.lockout_duration,
            ..LockoutPolicy::default()
        },
    }
}

/// The CLI's accounts and enable password. `Err` names the user whose hash is unusable.
///
/// The vendor's admin/admin exists only when no account source is configured at all; a
/// configured password file that lists nobody means nobody can log in (config warns).
pub fn credentials(cfg: &Config) -> Result<(Credentials, Option<PhcHash>), String> {
    let mut creds = if cfg.cli.uses_default_admin() {
        Credentials::default_admin()
    } else {
        Credentials::new()
    };
    for user in cfg.cli.all_users() {
        creds
            .add_user(&user.name, &user.password_hash)
            .map_err(|e| format!("cli user {:?}: {e}", user.name))?;
    }
    let enable = match &cfg.cli.enable_password_hash {
        Some(h) => Some(PhcHash::parse(h).map_err(|e| format!("cli.enable_password_hash: {e}"))?),
        None => None,
    };
    Ok((creds, enable))
}

fn read_u32(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The kernel's conntrack timeouts in this network namespace (defaults when unreadable).
pub fn kernel_timeouts() -> KernelTimeouts {
    let base = Path::new("/proc/sys/net/netfilter");
    KernelTimeouts {
        tcp_established: read_u32(&base.join("nf_conntrack_tcp_timeout_established"))
            .unwrap_or(defaults::KERNEL_TCP_TIMEOUT_ESTABLISHED),
        udp_stream: read_u32(&base.join("nf_conntrack_udp_timeout_stream"))
            .unwrap_or(defaults::KERNEL_UDP_TIMEOUT_STREAM),
        udp: read_u32(&base.join("nf_conntrack_udp_timeout"))
            .unwrap_or(defaults::KERNEL_UDP_TIMEOUT),
    }
}

/// Turn on conntrack event delivery for every entry in this namespace (the kernel's default,
/// 2, only delivers events for entries created while a listener existed). Returns what was
/// there before, or the error.
pub fn enable_conntrack_events() -> Result<u32, String> {
    let path = Path::new("/proc/sys/net/netfilter/nf_conntrack_events");
    let before = read_u32(path).ok_or_else(|| format!("cannot read {}", path.display()))?;
    if before != 1 {
        std::fs::write(path, "1").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(before)
}

/// `shutdown` waits this long for the hardware worker to finish.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(3);

/// The kernel's conntrack dialect (`netlink.conntrack_dialect`) and the pinned permanent bit
/// (`keepalive.permanent_bit`), whose grammar and range are the conntrack crate's: checked
/// here, so that a bad value is a configuration error (one line naming its source, exit code
/// 2) like every other, at start, in `check-config` and on SIGHUP.
pub fn conntrack_dialect(
    loaded: &config::Loaded,
) -> Result<(DialectSetting, Option<PermanentBit>), config::ConfigError> {
    let cfg = &loaded.config;
    let dialect =
        loaded.check_text("netlink.conntrack_dialect", &cfg.netlink.conntrack_dialect, |text| {
            text.parse::<DialectSetting>().map_err(|error| error.to_string())
        })?;
    let permanent = match cfg.keepalive.permanent_bit {
        None => None,
        Some(bit) => {
            Some(loaded.check_text("keepalive.permanent_bit", &bit.to_string(), |_| {
                PermanentBit::new(bit).ok_or_else(|| "expected a bit below 31".to_owned())
            })?)
        }
    };
    Ok((dialect, permanent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::engine::EngineConfig;

    #[test]
    fn defaults_translate_to_the_engine_defaults() {
        let cfg = Config::default();
        let e = EngineConfig::new(&cfg, KernelTimeouts::default());
        let d = EngineConfig::default();
        assert_eq!(e.capacity, 131_072);
        assert_eq!(e.hw_timeouts, d.hw_timeouts);
        assert_eq!(e.policy.rules.len(), 3, "vendor exclusions");
        assert_eq!(e.keepalive.margin, None);
        assert_eq!(e.fwmark_mask, None);
        let (creds, enable) = credentials(&cfg).unwrap();
        assert!(creds.is_default_admin());
        assert!(enable.is_none());
        let mut with_file = Config::default();
        with_file.cli.password_file = Some("/run/secret/cli-users".into());
        let (nobody, _) = credentials(&with_file).unwrap();
        assert!(nobody.is_empty(), "an empty password file does not bring admin/admin back");
        assert_eq!(cli_settings(&cfg).max_sessions, 8);
    }
}
