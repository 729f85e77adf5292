//! A minimal blocking server around `cli::Session`, to try the CLI with a real `telnet` or
//! `ncat` (the daemon's mio server is the real one): `cargo run -p cli --example serve -- 2103`.
//! Login admin/admin; every command is answered with one line naming it.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use cli::{Credentials, Request, Session, SessionConfig};

fn serve(mut stream: TcpStream, credentials: &Credentials) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut session = Session::new(SessionConfig::default());
    session.start(Instant::now());
    let mut buffer = [0u8; 4096];
    loop {
        let mut close = false;
        while let Some(request) = session.next_request() {
            match request {
                Request::Authenticate { user, password } => {
                    let ok = credentials.verify(&user, password.expose());
                    session.authenticated(ok, Instant::now());
                }
                Request::Enable { .. } => session.enable_result(true),
                Request::Execute(invocation) => {
                    session.reply_line(&format!("executed: {:?}", invocation.command));
                    session.reply_done();
                }
                Request::Close => close = true,
            }
        }
        stream.write_all(session.pending_output())?;
        let written = session.output_len();
        session.consume_output(written);
        if close {
            return Ok(());
        }
        match stream.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(read) => session.receive(buffer.get(..read).unwrap_or_default(), Instant::now()),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(error) => return Err(error),
        }
        session.on_timer(Instant::now());
    }
}

fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).unwrap_or_else(|| "2103".to_owned());
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"))?;
    let credentials = Credentials::default_admin();
    for stream in listener.incoming() {
        if let Err(error) = serve(stream?, &credentials) {
            eprintln!("session ended: {error}");
        }
    }
    Ok(())
}
