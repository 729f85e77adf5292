//! `cmmd ctl`: run one CLI command against a running daemon and print its output.
//!
//! Made for scripts and `kubectl exec ds/cmm -- cmmd ctl show connections`: it logs in over the
//! same telnet port an operator uses (the `cli::CtlClient` state machine does the protocol),
//! prints the command's output without telnet bytes or prompts, and exits 0, or 1 with the
//! error. This is a short-lived client process: plain blocking I/O with timeouts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use cli::{CtlClient, CtlRequest, Secret, command_line};

use crate::cmd::args::CtlArgs;

/// Default timeout of one `ctl` run.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

fn address(args: &CtlArgs) -> Result<SocketAddr, String> {
    let text = args
        .addr
        .clone()
        .or_else(|| std::env::var("CMM_CLI_LISTEN").ok())
        .unwrap_or_else(|| format!("127.0.0.1:{}", config::defaults::CLI_PORT));
    let mut addr = text
        .to_socket_addrs()
        .map_err(|e| format!("--addr {text:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("--addr {text:?}: no address"))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Ok(addr)
}

fn password(args: &CtlArgs) -> Result<Secret, String> {
    if let Some(path) = &args.password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--password-file {}: {e}", path.display()))?;
        return Ok(Secret::new(text.lines().next().unwrap_or("").to_string()));
    }
    Ok(Secret::new(std::env::var("CMM_CLI_PASSWORD").unwrap_or_else(|_| "admin".into())))
}

/// Run the command; `Ok(output)` to print on stdout and exit 0, `Err(message)` for stderr
/// and exit 1.
pub fn run(args: &CtlArgs) -> Result<String, String> {
    let addr = address(args)?;
    let timeout = args.timeout.map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let request = CtlRequest {
        user: args
            .user
            .clone()
            .or_else(|| std::env::var("CMM_CLI_USER").ok())
            .unwrap_or_else(|| "admin".into()),
        password: password(args)?,
        enable_password: std::env::var("CMM_CLI_ENABLE_PASSWORD").ok().map(Secret::new),
        command: command_line(&args.command),
    };
    let mut client = CtlClient::new(request);
    let mut stream = TcpStream::connect_timeout(&addr, timeout.min(Duration::from_secs(10)))
        .map_err(|e| {
            format!("cannot connect to the cmmd CLI at {addr}: {e} (is cmmd running? see --addr)")
        })?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let out = client.pending_output();
        if !out.is_empty() {
            let n = out.len();
            stream.write_all(out).map_err(|e| format!("write to {addr}: {e}"))?;
            client.consume_output(n);
        }
        if let Some(done) = client.finished() {
            return if done.error {
                Err(done.output.trim_end().to_string())
            } else {
                Ok(done.output.clone())
            };
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("no answer from {addr} within {}s", timeout.as_secs()));
        }
        stream.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => {
                client.closed();
                if let Some(done) = client.finished() {
                    return if done.error {
                        Err(done.output.trim_end().to_string())
                    } else {
                        Ok(done.output.clone())
                    };
                }
                return Err(format!("{addr} closed the connection"));
            }
            Ok(n) => client.receive(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("no answer from {addr} within {}s", timeout.as_secs()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read from {addr}: {e}")),
        }
    }
}
