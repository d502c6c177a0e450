//! The pure CloneSet planner: a snapshot in, a plan of actions out.
