//! Test harness for Ludus integration tests.
