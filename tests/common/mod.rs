#![allow(dead_code)]
pub mod builder;
pub mod golden;
