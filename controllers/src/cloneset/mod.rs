//! The CloneSet controller: a pipeline `gather → decide (pure) → execute → status`
//! ([`controller`] runs it), with the planner in [`plan`] and pod/PVC builders in [`pods`].

pub mod controller;
mod execute;
mod facts;
mod gather;
pub mod plan;
pub mod pods;
mod status;
pub mod vct;
