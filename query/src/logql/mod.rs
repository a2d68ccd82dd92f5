//! LogQL: the syntax tree, the parser, label matchers and the log pipeline.

pub mod ast;
pub mod lexer;
pub mod matcher;
pub mod parser;
pub mod pipeline;

pub use parser::parse;
