//! Git sync: fetch, render, validate, apply, prune and per-commit history. Lands with its issue.
