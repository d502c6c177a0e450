#!/usr/bin/env bash
# Dashboard benchmark (issue 7): page render time with 200 commits and 1,000 pods, SSE delivery
# latency from a change to 50 connected clients, server memory per connected SSE client. Each is
# printed next to a baseline measured in the same run (1 commit / 10 pods; 1 client; the idle
# server). Runs on fixture objects over loopback; needs no cluster. Figures are printed, never
# asserted. See web/examples/web_bench.rs.
#
# Usage: bench/web.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p graft-web --example web_bench
"${CARGO_TARGET_DIR:-target}/release/examples/web_bench"
