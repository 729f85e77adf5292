//! HTTP/1.1 GET as the kubelet and Prometheus send it, from inside a namespace, and the samples
//! of a Prometheus text exposition.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::netns::Netns;

/// The metrics and probe endpoint of a daemon started with the defaults.
pub const METRICS: &str = "127.0.0.1:9103";

/// GET `path` from `addr` inside `netns` (connect and read time out after 2 s); the whole
/// answer, status line and headers included.
pub fn get(netns: &Netns, addr: SocketAddr, path: &str) -> io::Result<String> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    netns.run_in(move || {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(request.as_bytes())?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    })?
}

/// The samples of an HTTP answer carrying a Prometheus text exposition: `name{labels}` to value.
pub fn samples(answer: &str) -> BTreeMap<String, f64> {
    answer
        .lines()
        .skip_while(|l| !l.is_empty())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}
