//! The PodUnavailableBudget status controller (kruise-api.md §8): counts a budget's available
//! pods and writes `totalReplicas`, `desiredAvailable`, `currentAvailable`,
//! `unavailableAllowed` and the expiry of the webhook's `disruptedPods`/`unavailablePods`.
//! [`budget`] is the pure arithmetic. (The protection side, the webhook that spends the budget,
//! is `pubguard`.)

pub mod budget;
