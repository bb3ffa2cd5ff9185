//! `ctferry snapshot`: start a new epoch for one caregiver (or all, which
//! also accepts changed columns), then run one cycle.

use super::report::{delivery_result, print_cycle};
use anyhow::{bail, Result};
use ctferry::mssql::client::Db;
use ctferry::publisher::Publisher;
use std::path::Path;

pub fn run(config: &Path, subscriber: Option<&str>, all: bool) -> Result<()> {
    let cfg = ctferry::config::load(config)?;
    let mut p = Publisher::open(&cfg)?;
    if all {
        p.snapshot_all_accepting_schema()?;
    } else {
        let subscriber = subscriber.unwrap_or_default();
        if cfg.subscriber(subscriber).is_none() {
            bail!(
                "{subscriber} is not a [[subscriber]] in {}",
                config.display()
            );
        }
        p.request_snapshot(subscriber, "requested with `ctferry snapshot`")?;
    }
    let mut db = Db::connect(&cfg.source.connection, &cfg.source.password)?;
    let r = p.once(&mut db, true)?;
    print_cycle(&r);
    delivery_result(&r)
}
