//! T-SQL → SQLite: rewrites a parsed statement in place so that SQLite runs
//! it with SQL Server's meaning, or refuses it with SQL Server's error.
//!
//! What it does:
//! - resolves every table name case-insensitively against the catalog (208
//!   when unknown), gives every table an alias so `T.col` keeps working, and
//!   drops table hints (`WITH (NOLOCK)`), which have no meaning here;
//! - maps T-SQL functions to SQLite or to the simulator's own functions; an
//!   unknown function is error 195, never passed through to SQLite;
//! - turns CAST/CONVERT into `__sim_cast`, which applies SQL Server's
//!   conversion rules, and `TOP n` into `LIMIT n`;
//! - turns `+` on strings into `||`, and converts a literal compared with a
//!   typed column (date, GUID, ...) to the column's type first;
//! - replaces `@@TRANCOUNT`, `@@ROWCOUNT`, `@@VERSION`, ... by their values.
//!
//! It must never let SQLite run something whose result differs from SQL
//! Server's without saying so: where it cannot tell, it refuses.
//!
//! Its parts: `rewriter` (the visitor and its state), `names` (table
//! resolution), `builtins` (functions and `@@` variables), `types` (the
//! type of an expression), `collate` (the collation of a comparison),
//! `ast` (AST builders); CHANGETABLE is translated
//! next to the change tracking it reads, in `engine::ct::changetable`.

pub mod ast;
pub mod builtins;
mod collate;
pub mod names;
pub mod rewriter;
mod types;

pub use ast::{call, ident, null_lit, number_lit, parse_object_name, parse_query, string_lit};
pub(in crate::engine) use collate::Label;
pub use names::{name_parts, Resolved, Resolver, CATALOG_VIEWS};
pub use rewriter::{projection_hints, projection_is_explicit, Rewriter, SessionView};
