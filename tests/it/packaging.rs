//! Placeholder: packaging tests.
