//! ControllerRevisions: hashing, equality on the decoded template, history truncation.
