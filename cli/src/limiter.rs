//! Per-source lockout after repeated failed logins, shared by all sessions of the server.
//!
//! Contract: pure and `now`-driven. The server calls [`LoginLimiter::check`] when a client
//! connects (and may call it again before verifying a password), [`LoginLimiter::record_failure`]
//! after each failed login and [`LoginLimiter::record_success`] after a successful one. A source
//! that fails `max_failures` times within `window` is locked out for `lockout`. IPv6 sources are
//! grouped by /64 (one host usually owns a whole /64); IPv4-mapped IPv6 addresses count as IPv4.
//! Memory is bounded by `max_sources`: when full, expired records go first, then the record
//! seen least recently (unlocked records before locked ones).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Lockout settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures within `window` that lock a source out.
    pub max_failures: u32,
    /// Sliding window for counting failures.
    pub window: Duration,
    /// How long a source stays locked out.
    pub lockout: Duration,
    /// Most sources tracked at once.
    pub max_sources: usize,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 10,
            window: Duration::from_secs(300),
            lockout: Duration::from_secs(300),
            max_sources: 4096,
        }
    }
}

/// Whether a source may try to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Allowed,
    /// Locked out until this instant.
    LockedOut {
        /// When the lockout ends.
        until: Instant,
    },
}

/// What the limiter remembers about one source.
#[derive(Debug, Clone)]
struct SourceRecord {
    /// Failure times within the window, oldest first (at most `max_failures`).
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
    last_seen: Instant,
}

impl SourceRecord {
    fn is_locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    /// Forget failures older than the window and an expired lock; true if nothing is left.
    fn expire(&mut self, now: Instant, window: Duration) -> bool {
        while self.failures.front().is_some_and(|at| now.saturating_duration_since(*at) >= window) {
            self.failures.pop_front();
        }
        if !self.is_locked(now) {
            self.locked_until = None;
        }
        self.failures.is_empty() && self.locked_until.is_none()
    }
}

/// Failed-login bookkeeping per source address (see the module docs).
#[derive(Debug, Clone)]
pub struct LoginLimiter {
    policy: LockoutPolicy,
    sources: HashMap<IpAddr, SourceRecord>,
    failures_total: u64,
    lockouts_total: u64,
}

impl LoginLimiter {
    /// An empty limiter.
    pub fn new(policy: LockoutPolicy) -> Self {
        Self { policy, sources: HashMap::new(), failures_total: 0, lockouts_total: 0 }
    }

    /// The key a source is counted under.
    pub fn source_key(source: IpAddr) -> IpAddr {
        match source {
            IpAddr::V4(_) => source,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let mut segments = v6.segments();
                    segments[4..].fill(0);
                    IpAddr::from(segments)
                }
            },
        }
    }

    /// May `source` log in now?
    pub fn check(&mut self, source: IpAddr, now: Instant) -> Admission {
        let key = Self::source_key(source);
        let window = self.policy.window;
        match self.sources.get_mut(&key) {
            Some(record) => {
                if record.expire(now, window) {
                    self.sources.remove(&key);
                    return Admission::Allowed;
                }
                match record.locked_until {
                    Some(until) => Admission::LockedOut { until },
                    None => Admission::Allowed,
                }
            }
            None => Admission::Allowed,
        }
    }

    /// Count a failed login from `source`; returns `LockedOut` if the source is now locked.
    pub fn record_failure(&mut self, source: IpAddr, now: Instant) -> Admission {
        self.failures_total += 1;
        let key = Self::source_key(source);
        if !self.sources.contains_key(&key) {
            self.make_room(now);
        }
        let policy = self.policy;
        let record = self.sources.entry(key).or_insert_with(|| SourceRecord {
            failures: VecDeque::new(),
            locked_until: None,
            last_seen: now,
        });
        record.expire(now, policy.window);
        record.last_seen = now;
        if let Some(until) = record.locked_until {
            return Admission::LockedOut { until };
        }
        record.failures.push_back(now);
        if record.failures.len() >= usize::try_from(policy.max_failures).unwrap_or(usize::MAX) {
            // A lockout too long for an Instant is clamped to about a century.
            let until = now
                .checked_add(policy.lockout)
                .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
                .unwrap_or(now);
            record.failures.clear();
            record.locked_until = Some(until);
            self.lockouts_total += 1;
            return Admission::LockedOut { until };
        }
        Admission::Allowed
    }

    /// A successful login clears the source's failures (not an active lockout).
    pub fn record_success(&mut self, source: IpAddr, now: Instant) {
        let key = Self::source_key(source);
        if let Some(record) = self.sources.get_mut(&key) {
            record.failures.clear();
            if !record.is_locked(now) {
                self.sources.remove(&key);
            }
        }
    }

    /// Forget everything that has expired.
    pub fn prune(&mut self, now: Instant) {
        let window = self.policy.window;
        self.sources.retain(|_, record| !record.expire(now, window));
    }

    /// Sources currently tracked.
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    /// Failed logins recorded since start.
    pub fn failures_total(&self) -> u64 {
        self.failures_total
    }

    /// Lockouts started since start.
    pub fn lockouts_total(&self) -> u64 {
        self.lockouts_total
    }

    fn make_room(&mut self, now: Instant) {
        if self.sources.len() < self.policy.max_sources {
            return;
        }
        self.prune(now);
        if self.sources.len() < self.policy.max_sources {
            return;
        }
        let victim = self
            .sources
            .iter()
            .min_by_key(|(_, record)| (record.is_locked(now), record.last_seen))
            .map(|(key, _)| *key);
        if let Some(victim) = victim {
            self.sources.remove(&victim);
        }
    }
}
