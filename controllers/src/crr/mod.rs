//! ContainerRecreateRequest, manager side (kruise-api.md §7): fill requests from their pods,
//! complete them when the pod is gone or the deadline passed, hold the pod not ready during
//! `unreadyGracePeriodSeconds`, clean up after `ttlSecondsAfterFinished`. The node agent
//! (`graft-nodeagent`) does the recreating.

pub mod controller;
pub mod plan;
