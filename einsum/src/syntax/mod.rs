//! Text syntax: AST, nom parser and pretty-printer.
pub mod ast;
pub mod parser;
pub mod printer;

pub use ast::*;
pub use parser::{parse_program, SyntaxError};
