//! Unit tests over captured kernel messages.

mod golden;
