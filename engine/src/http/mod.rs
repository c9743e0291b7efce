//! HTTP/1.1: request parsing ([`parse`]), response writing ([`response`]) and the
//! handler interface ([`handler`]).

pub mod date;
pub mod handler;
pub mod parse;
pub mod response;
pub(crate) mod scan;
