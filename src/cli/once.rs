//! `ctferry once`: one cycle, with deliveries tried now (several attempts).

use super::report::{delivery_result, print_cycle};
use anyhow::Result;
use ctferry::mssql::client::Db;
use ctferry::publisher::Publisher;
use std::path::Path;

pub fn run(config: &Path) -> Result<()> {
    let cfg = ctferry::config::load(config)?;
    let mut db = Db::connect(&cfg.source.connection, &cfg.source.password)?;
    let mut p = Publisher::open(&cfg)?;
    let r = p.once(&mut db, true)?;
    print_cycle(&r);
    delivery_result(&r)
}
