//! The SQL front-end: tokenizer, syntax tree and parser.

pub mod ast;
pub mod lexer;
pub mod parser;

pub use parser::{ParsedStatement, parse_statement, parse_statements};
