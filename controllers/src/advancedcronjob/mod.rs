//! The AdvancedCronJob controller (kruise-api.md §5): [`plan`] decides, [`controller`] reads the
//! caches and carries the plan out.

pub mod controller;
pub mod plan;
