//! The region's side: change tracking → route → stage → package → deliver.
//!
//! - `cycle`: one publisher cycle (`Publisher::once`): read the source in
//!   one snapshot transaction, route, stage, package;
//! - `state`: the publisher's durable state in sled (watermark, stages,
//!   ownership index, packages, audit and delivery logs);
//! - `deliver`: registered packages from the outbox to each caregiver's own
//!   area (folder or SFTP);
//! - `check`: the configuration against the live source, and each delivery
//!   area, before anything runs;
//! - `status` and `audit`: what the state says, as typed rows (stale and lag
//!   rules; the delivery log merged into the audit), for the commands of the
//!   same name.

pub mod audit;
pub mod check;
pub mod cycle;
pub mod deliver;
pub mod state;
pub mod status;

pub use cycle::{CycleReport, PublishError, Publisher};
