//! Table tests of the planner, written like the rules they check.
