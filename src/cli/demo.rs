//! `ctferry demo` (cargo feature `demo`): the whole job on the embedded
//! simulator; see `ctferry::demo`.

use super::args::DemoDelivery;
use anyhow::Result;
use ctferry::demo::{Delivery, Options};
use std::path::PathBuf;

pub fn run(dir: PathBuf, delivery: DemoDelivery) -> Result<()> {
    let delivery = match delivery {
        DemoDelivery::Sftp => Delivery::Sftp,
        DemoDelivery::Folder => Delivery::Folder,
        DemoDelivery::Auto => Delivery::Auto,
    };
    Ok(ctferry::demo::run(&Options { dir, delivery })?)
}
