//! The region's side: change tracking → route → stage → package → deliver.
//!
//! - `cycle`: one publisher cycle (`Publisher::once`): read the source in
//!   one snapshot transaction, route, stage, commit; then deltas, delivery;
//! - `catalog`: a published table at the source (`describe`) and as it was
//!   published (`PublishedSchema`, kept in the state; `drift`);
//! - `route`: where a changed row goes, as a pure decision, and the
//!   ownership index as the cycle sees it;
//! - `membership`: the rules of tables owned by members (a patient in
//!   every copy where it has care), as the cycle and snapshots use them;
//! - `accept`: the decision to publish columns held back (`ctferry schema
//!   accept`);
//! - `reshape`: a table's shape changing while ctferry runs (a column
//!   added, widened or dropped, a mask changed, a table added or removed):
//!   how each copy follows, and which rows travel again;
//! - `stage`: how a staged change is encoded;
//! - `snapshot` and `delta`: writing a caregiver's snapshot, draining a due
//!   caregiver's stage into a delta;
//! - `packager`: keys, manifests and the registration of written packages;
//! - `state`: the publisher's durable state in sled (watermark, stages,
//!   ownership index, packages, audit and delivery logs);
//! - `deliver`: registered packages from the outbox to each caregiver's own
//!   area (folder or SFTP);
//! - `check`: the configuration against the live source, and each delivery
//!   area, before anything runs;
//! - `status` and `audit`: what the state says, as typed rows (stale and lag
//!   rules; the delivery log merged into the audit), for the commands of the
//!   same name;
//! - `error`, `report`: what a cycle returns.

pub mod accept;
pub mod audit;
pub mod audit_log;
pub mod catalog;
pub mod check;
pub mod cycle;
pub mod deliver;
pub mod delta;
pub mod error;
pub mod membership;
pub mod monitor;
pub mod owner_index;
pub mod packager;
pub mod report;
pub mod reshape;
pub mod route;
pub mod snapshot;
pub mod stage;
pub mod state;
pub mod status;

pub use cycle::Publisher;
pub use error::PublishError;
pub use report::CycleReport;
