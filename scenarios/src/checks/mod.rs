//! The checks, one per clause, grouped by section of the contract.

pub(crate) mod accept;
pub(crate) mod driver;
pub(crate) mod engine_api;
pub(crate) mod http;
pub(crate) mod select;
pub(crate) mod worker;
