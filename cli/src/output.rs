//! The session's outgoing byte queue, with NVT text encoding.
//!
//! Contract: text written with [`OutputBuffer::push_text`] is sent as telnet NVT text: every `\n`
//! not already preceded by `\r` becomes `\r\n`, and a data byte 0xFF is doubled (`IAC IAC`).
//! Protocol bytes (negotiation) go through [`OutputBuffer::push_raw`] unchanged. The caller
//! drains the queue with [`OutputBuffer::pending`] / [`OutputBuffer::consume`]; consuming is
//! amortised O(1) (a read offset, compacted when the front half is dead).

use crate::telnet::IAC;

/// Outgoing bytes of one connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct OutputBuffer {
    bytes: Vec<u8>,
    /// Bytes before this offset were already consumed.
    start: usize,
    /// The last text byte written was `\r` (so a following `\n` is already a CR LF pair).
    last_was_cr: bool,
}

impl OutputBuffer {
    /// Bytes waiting to be written.
    pub(crate) fn pending(&self) -> &[u8] {
        self.bytes.get(self.start..).unwrap_or_default()
    }

    /// Number of bytes waiting to be written.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    /// Forget the first `n` pending bytes (they were written); `n` larger than
    /// [`len`](Self::len) consumes everything.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.bytes.len());
        if self.start == self.bytes.len() {
            self.bytes.clear();
            self.start = 0;
        } else if self.start > 4096 && self.start * 2 > self.bytes.len() {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
    }

    /// Append protocol bytes unchanged.
    pub(crate) fn push_raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
        self.last_was_cr = false;
    }

    /// Append text as NVT data (see the module docs).
    pub(crate) fn push_text(&mut self, text: &str) {
        self.push_data(text.as_bytes());
    }

    /// Append data bytes as NVT data (see the module docs).
    pub(crate) fn push_data(&mut self, data: &[u8]) {
        self.bytes.reserve(data.len() + 8);
        for &byte in data {
            match byte {
                b'\n' if !self.last_was_cr => self.bytes.extend_from_slice(b"\r\n"),
                IAC => self.bytes.extend_from_slice(&[IAC, IAC]),
                _ => self.bytes.push(byte),
            }
            self.last_was_cr = byte == b'\r';
        }
    }

    /// Append one data byte (used for echo and cursor movement).
    pub(crate) fn push_byte(&mut self, byte: u8) {
        self.push_data(&[byte]);
    }

    /// Append `count` copies of `byte` (cursor movement, blanking).
    pub(crate) fn push_repeated(&mut self, byte: u8, count: usize) {
        for _ in 0..count {
            self.push_byte(byte);
        }
    }

    /// Append one character as UTF-8.
    pub(crate) fn push_char(&mut self, ch: char) {
        let mut utf8 = [0u8; 4];
        self.push_data(ch.encode_utf8(&mut utf8).as_bytes());
    }
}
