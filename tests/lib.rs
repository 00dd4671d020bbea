//! The one integration-test binary: every test file is a module here, so the crate and the binary are
//! built once.

#![allow(clippy::unwrap_used)] // a test that meets bad data should stop loudly

mod advice;
mod check;
mod cli;
mod corpus;
mod golden;
mod imap;
mod imap_bound;
mod metrics;
mod notify;
mod oauth;
mod package;
mod postgres;
mod prune;
mod rollups;
mod schema;
mod tables;
mod tidy;
mod users;
mod web;
