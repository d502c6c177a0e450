//! graft's OpenKruise-compatible workload controllers (CloneSet, SidecarSet, Advanced StatefulSet, ...).
//!
//! Each controller is a pure planner plus a thin executor; see DESIGN.md. Controllers land with their issues.
