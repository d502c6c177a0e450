//! Dashboard: per-commit rollout progress over axum with server-sent events. Lands with its issue.
