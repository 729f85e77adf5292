//! Per-source lockout.

use std::net::IpAddr;
use std::time::Duration;

use crate::limiter::{Admission, LockoutPolicy, LoginLimiter};
use crate::tests::t0;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn policy() -> LockoutPolicy {
    LockoutPolicy {
        max_failures: 3,
        window: Duration::from_secs(60),
        lockout: Duration::from_secs(300),
        max_sources: 16,
    }
}

#[test]
fn repeated_failures_lock_the_source_out_for_the_lockout_time() {
    let mut limiter = LoginLimiter::new(policy());
    let source = ip("192.0.2.7");
    let now = t0();
    assert_eq!(limiter.record_failure(source, now), Admission::Allowed);
    assert_eq!(limiter.record_failure(source, now + Duration::from_secs(1)), Admission::Allowed);
    let until = now + Duration::from_secs(302);
    assert_eq!(
        limiter.record_failure(source, now + Duration::from_secs(2)),
        Admission::LockedOut { until }
    );
    assert_eq!(
        limiter.check(source, now + Duration::from_secs(100)),
        Admission::LockedOut { until }
    );
    // Failures while locked do not extend the lock.
    assert_eq!(
        limiter.record_failure(source, now + Duration::from_secs(200)),
        Admission::LockedOut { until }
    );
    assert_eq!(
        limiter.check(source, until - Duration::from_millis(1)),
        Admission::LockedOut { until }
    );
    assert_eq!(limiter.check(source, until), Admission::Allowed);
    assert_eq!(limiter.tracked_sources(), 0);
    // Other sources are not affected.
    assert_eq!(limiter.check(ip("192.0.2.8"), now + Duration::from_secs(3)), Admission::Allowed);
    assert_eq!((limiter.failures_total(), limiter.lockouts_total()), (4, 1));
}

#[test]
fn failures_older_than_the_window_do_not_count() {
    let mut limiter = LoginLimiter::new(policy());
    let source = ip("192.0.2.7");
    limiter.record_failure(source, t0());
    limiter.record_failure(source, t0() + Duration::from_secs(30));
    assert_eq!(limiter.record_failure(source, t0() + Duration::from_secs(61)), Admission::Allowed);
    assert!(matches!(
        limiter.record_failure(source, t0() + Duration::from_secs(62)),
        Admission::LockedOut { .. }
    ));
}

#[test]
fn success_clears_failures_but_not_a_lockout() {
    let mut limiter = LoginLimiter::new(policy());
    let source = ip("192.0.2.7");
    limiter.record_failure(source, t0());
    limiter.record_failure(source, t0());
    limiter.record_success(source, t0());
    assert_eq!(limiter.tracked_sources(), 0);
    assert_eq!(limiter.record_failure(source, t0()), Admission::Allowed);
    limiter.record_failure(source, t0());
    let locked = limiter.record_failure(source, t0());
    limiter.record_success(source, t0());
    assert_eq!(limiter.check(source, t0()), locked);
}

#[test]
fn ipv6_sources_are_grouped_by_slash_64_and_mapped_ipv4_is_ipv4() {
    assert_eq!(LoginLimiter::source_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
    assert_eq!(LoginLimiter::source_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    let mut limiter = LoginLimiter::new(policy());
    limiter.record_failure(ip("2001:db8::1"), t0());
    limiter.record_failure(ip("2001:db8::2"), t0());
    assert!(matches!(limiter.record_failure(ip("2001:db8::3"), t0()), Admission::LockedOut { .. }));
    assert!(matches!(limiter.check(ip("2001:db8::ffff"), t0()), Admission::LockedOut { .. }));
    assert_eq!(limiter.check(ip("2001:db8:0:1::1"), t0()), Admission::Allowed);
}

#[test]
fn memory_is_bounded_and_locked_sources_are_evicted_last() {
    let mut limiter = LoginLimiter::new(LockoutPolicy { max_sources: 3, ..policy() });
    let locked = ip("198.51.100.1");
    for _ in 0..3 {
        limiter.record_failure(locked, t0());
    }
    for (index, last) in (2..=20u8).enumerate() {
        let at = t0() + Duration::from_secs(u64::try_from(index).unwrap());
        limiter.record_failure(IpAddr::from([198, 51, 100, last]), at);
        assert!(limiter.tracked_sources() <= 3);
    }
    assert!(matches!(
        limiter.check(locked, t0() + Duration::from_secs(30)),
        Admission::LockedOut { .. }
    ));
    // Pruning forgets expired records.
    limiter.prune(t0() + Duration::from_secs(1000));
    assert_eq!(limiter.tracked_sources(), 0);
}

#[test]
fn an_absurd_lockout_does_not_panic() {
    let mut limiter =
        LoginLimiter::new(LockoutPolicy { max_failures: 1, lockout: Duration::MAX, ..policy() });
    assert!(
        matches!(limiter.record_failure(ip("192.0.2.1"), t0()), Admission::LockedOut { until } if until > t0())
    );
}
