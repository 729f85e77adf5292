//! Records ctnetlink messages as hex, the way the fixtures in `conntrack/fixtures/` were made.
//!
//! ```text
//! capture [--seconds N] [--dump]
//! ```
//!
//! Subscribes to NEW, UPDATE and DESTROY events of the network namespace it runs in, and with
//! `--dump` also dumps the table once at the start. Each netlink message goes to stdout as a
//! comment line (what it is) followed by its bytes in hex, 16 a line; stop with the deadline.
//! Run it inside a namespace: `ip netns exec NS target/debug/examples/capture --seconds 10`.

use std::io::Write;
use std::time::{Duration, Instant};

use conntrack::{CtSocket, Datagram, Message, RecvError, request};
use mio::{Events, Interest, Poll, Token};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut seconds = 10;
    let mut dump = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => seconds = args.next().ok_or("--seconds needs a value")?.parse()?,
            "--dump" => dump = true,
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: capture [--seconds N] [--dump]"
                )
                .into());
            }
        }
    }

    let mut events = CtSocket::events()?;
    events.set_nonblocking(true)?;
    let granted = events.set_receive_buffer(8 << 20)?;
    eprintln!("capture: subscribed, receive buffer {granted} bytes, {seconds} s");
    let mut requests = CtSocket::requests()?;
    requests.set_nonblocking(true)?;
    if dump {
        let mut buf = Vec::new();
        request::dump(&mut buf, None, requests.next_seq());
        requests.send(&buf)?;
    }

    let mut poll = Poll::new()?;
    poll.registry().register(&mut events, Token(0), Interest::READABLE)?;
    poll.registry().register(&mut requests, Token(1), Interest::READABLE)?;
    let mut ready = Events::with_capacity(4);
    let mut buf = vec![0; 1 << 16];
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut out = std::io::stdout().lock();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        poll.poll(&mut ready, Some(left))?;
        for socket in [&events, &requests] {
            loop {
                match socket.recv(&mut buf) {
                    Ok(length) => print_datagram(&mut out, buf.get(..length).unwrap_or_default())?,
                    Err(RecvError::WouldBlock) => break,
                    Err(RecvError::Overrun) => {
                        writeln!(out, "# OVERRUN (ENOBUFS): events were lost")?
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
    }
    Ok(())
}

fn print_datagram(out: &mut impl Write, datagram: &[u8]) -> std::io::Result<()> {
    let mut offset = 0;
    for message in Datagram::new(datagram) {
        let described = match message {
            Ok(Message::Conntrack(ct)) => {
                let what = match conntrack::Conntrack::from_message(&ct) {
                    Ok(entry) => format!(
                        "proto {} {}:{} -> {}:{} reply {}:{} -> {}:{} status {:?} tcp {:?}",
                        entry.orig.proto,
                        entry.orig.src,
                        entry.orig.src_port,
                        entry.orig.dst,
                        entry.orig.dst_port,
                        entry.reply.src,
                        entry.reply.src_port,
                        entry.reply.dst,
                        entry.reply.dst_port,
                        entry.status,
                        entry.tcp.map(|tcp| tcp.state),
                    ),
                    Err(error) => format!("undecodable: {error}"),
                };
                let header = ct.header();
                format!(
                    "{:?} type={:#06x} flags={:#06x} seq={} {what}",
                    ct.delivery(),
                    header.message_type,
                    header.flags,
                    header.seq
                )
            }
            Ok(other) => format!("{other:?}"),
            Err(error) => {
                writeln!(out, "# undecodable datagram: {error}")?;
                return Ok(());
            }
        };
        let length = datagram
            .get(offset..offset + 4)
            .and_then(|bytes| bytes.try_into().ok())
            .map_or(0, |bytes| u32::from_ne_bytes(bytes) as usize);
        writeln!(out, "# {described}")?;
        for line in datagram.get(offset..offset + length).unwrap_or_default().chunks(16) {
            let hex: Vec<String> = line.iter().map(|byte| format!("{byte:02x}")).collect();
            writeln!(out, "{}", hex.join(" "))?;
        }
        offset += (length + 3) & !3;
    }
    out.flush()
}
