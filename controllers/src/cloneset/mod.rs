//! The CloneSet controller: a pure [`plan`] and the executor that carries it out.

pub mod controller;
pub mod plan;
pub mod pods;
