//! SQL text for CrateDB: identifier parsing and quoting, literal checking and escaping.
//!
//! Identifiers cannot be bound as parameters, so every identifier the product sends is parsed here
//! and re-emitted as a quoted identifier. Values are bound as parameters wherever CrateDB accepts
//! them; where it does not (statements sent through `crash`), they are escaped here.

pub mod ident;
pub mod literal;

pub use ident::{IdentError, TableIdent, parse_single_ident, quote_ident};
pub use literal::{LiteralError, SqlLiteral, quote_literal};
