//! `show connections` as an operator runs it: a logged-in `cli::Session`, the command parsed by
//! the session, executed by `cmmd::edge::control`, and streamed by [`ConnectionsJob::step`].
//!
//! The daemon calls `step` from its event loop while the session's socket has room; a step is
//! the longest time the loop spends on the CLI before it reads events again, so its duration
//! is the stall the CLI can cause.

use std::time::Instant;

use cli::{Request, Session, SessionConfig};
use cmmd::core::engine::Engine;
use cmmd::edge::control::{self, ConnectionsJob, ControlState, Ctx, Next};
use cmmd::edge::metrics::Extra;

/// Why a session could not be brought to a running `show connections`.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The session did not ask for the credentials to be checked.
    #[error("the session did not ask to authenticate")]
    NoLogin,
    /// The session did not turn the typed line into a command.
    #[error("the session did not parse {0:?} into a command")]
    NoCommand(&'static str),
    /// The command did not start a streamed reply.
    #[error("{0:?} did not start a streamed reply")]
    NotStreamed(&'static str),
}

/// A session logged in at the `cmm>` prompt, its greeting discarded.
pub fn logged_in_session(now: Instant) -> Result<Session, SessionError> {
    let mut session = Session::new(SessionConfig::default());
    session.start(now);
    session.receive(b"admin\r\nadmin\r\n", now);
    match session.next_request() {
        Some(Request::Authenticate { .. }) => session.authenticated(true, now),
        _ => return Err(SessionError::NoLogin),
    }
    session.consume_output(session.output_len());
    Ok(session)
}

/// Type `line` (a `show connections …` command) into `session` and start its streamed reply.
pub fn start_show_connections(
    session: &mut Session,
    engine: &mut Engine,
    line: &'static str,
    now: Instant,
) -> Result<ConnectionsJob, SessionError> {
    session.receive(line.as_bytes(), now);
    session.receive(b"\r\n", now);
    let Some(Request::Execute(invocation)) = session.next_request() else {
        return Err(SessionError::NoCommand(line));
    };
    let mut stop = false;
    let extra = Extra::default();
    let mut state = ControlState::default();
    let mut ctx = Ctx {
        engine,
        now,
        telemetry: None,
        log_level: "info",
        state: &mut state,
        config_text: "",
        rules: &[],
        sim: None,
        stop: &mut stop,
        started: now,
        backend: "sim",
        extra: &extra,
    };
    match control::execute(&mut ctx, &invocation.command, session) {
        Next::Stream(job) => Ok(job),
        Next::Done | Next::Lines(_) | Next::Await { .. } => Err(SessionError::NotStreamed(line)),
    }
}

/// Counts of one complete rendering.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Steps the job took.
    pub steps: usize,
    /// Lines written (the connection lines and the closing counts).
    pub lines: usize,
    /// Bytes written to the client.
    pub bytes: usize,
}

/// Run `job` to completion, draining the session's output after every step as a fast client
/// would; `on_step` sees each step's output bytes.
pub fn render(
    job: &mut ConnectionsJob,
    engine: &Engine,
    session: &mut Session,
    now: Instant,
    mut on_step: impl FnMut(&[u8]),
) -> Rendered {
    let mut rendered = Rendered::default();
    loop {
        let done = job.step(engine, now, session);
        let output = session.pending_output();
        rendered.steps += 1;
        rendered.bytes += output.len();
        rendered.lines += output.iter().filter(|&&b| b == b'\n').count();
        on_step(output);
        session.consume_output(session.output_len());
        if done {
            return rendered;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{Churn, FakeWorld};

    #[test]
    fn show_connections_prints_every_tracked_connection() {
        let mut world = FakeWorld::new(3000);
        Churn::new(3000).fill(&mut world);
        let now = world.now;
        let mut session = logged_in_session(now).unwrap();
        let mut job =
            start_show_connections(&mut session, &mut world.engine, "show connections", now)
                .unwrap();
        let mut text = Vec::new();
        let rendered =
            render(&mut job, &world.engine, &mut session, now, |out| text.extend_from_slice(out));
        // The session writes telnet line ends.
        let text = String::from_utf8(text).unwrap().replace("\r\n", "\n");
        // 3000 lines in steps of STEP_LINES, then the count lines and the prompt.
        assert_eq!(rendered.steps, 3000usize.div_ceil(control::STEP_LINES));
        assert!(
            text.contains("\n3000 connections printed\n0 connections with > 1 ids\n"),
            "{}",
            &text[text.len() - 200..]
        );
        assert_eq!(text.matches("ipv4     2 tcp      6 ").count(), 750);
        assert_eq!(text.matches("ipv6     10 udp      17 ").count(), 750);
        assert!(text.ends_with("cmm> "), "{:?}", &text[text.len() - 20..]);
    }
}
