//! The checks, one per clause, grouped by section of the contract.

pub(crate) mod accept;
pub(crate) mod driver;
pub(crate) mod engine_api;
pub(crate) mod exhaust;
pub(crate) mod hostile;
pub(crate) mod http;
pub(crate) mod migrate;
pub(crate) mod select;
pub(crate) mod worker;

use crate::ctx::Ctx;

/// The scenario's configuration ([`Ctx::config`]) with `workers` workers: the checks
/// that need a known worker count start their engine with it.
pub(crate) fn with_workers(ctx: &Ctx, workers: usize) -> engine::Config {
    engine::Config {
        workers,
        ..ctx.config()
    }
}

pub(crate) use crate::client::read_again as nothing_yet;
