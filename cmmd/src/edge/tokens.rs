//! Token ranges of the event loop's TCP servers.
//!
//! Each server (CLI, metrics) owns a listener token and a range of connection tokens. Tokens are
//! handed out round-robin, so a token is not reused right after its connection closed: a late
//! readiness event for the old connection then finds nothing instead of a new session.

use mio::Token;

/// A listener token and the range of its connection tokens.
#[derive(Debug, Clone)]
pub struct TokenRange {
    listener: Token,
    base: usize,
    span: usize,
    next: usize,
}

impl TokenRange {
    /// Connection tokens are `base..base + span`.
    pub fn new(listener: Token, base: usize, span: usize) -> TokenRange {
        TokenRange { listener, base, span: span.max(1), next: 0 }
    }

    /// The listener's token.
    pub fn listener(&self) -> Token {
        self.listener
    }

    /// True for the listener's token and every connection token of the range.
    pub fn owns(&self, token: Token) -> bool {
        token == self.listener || (self.base..self.base + self.span).contains(&token.0)
    }

    /// The next token not `in_use`, or `None` when the whole range is taken.
    pub fn next_free(&mut self, in_use: impl Fn(&Token) -> bool) -> Option<Token> {
        for _ in 0..self.span {
            self.next = (self.next + 1) % self.span;
            let token = Token(self.base + self.next);
            if !in_use(&token) {
                return Some(token);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_skips_tokens_in_use_and_reports_exhaustion() {
        let mut r = TokenRange::new(Token(1), 10, 3);
        assert!(r.owns(Token(1)) && r.owns(Token(10)) && r.owns(Token(12)) && !r.owns(Token(13)));
        assert_eq!(r.next_free(|_| false), Some(Token(11)));
        assert_eq!(r.next_free(|t| *t == Token(12)), Some(Token(10)));
        assert_eq!(r.next_free(|_| true), None);
    }
}
