# shellcheck shell=bash
# The benchmarks' turn on the shared local cluster (sourced by bench/kruise.sh, bench/realistic.sh,
# bench/scale.sh). Installing OpenKruise (its pod webhook, its CRDs in place of graft's) or adding
# simulated nodes breaks other users' cluster tests, so a benchmark does that only in its turn:
#   exclusive_begin   creates $BENCH_MARKER, then waits until no `cargo test --features
#                     cluster-tests` has run for $BENCH_QUIET seconds (at most $BENCH_WAIT seconds)
#   exclusive_end     removes $BENCH_MARKER (the caller's EXIT trap)
# (OpenKruise's own marker, /tmp/kruise-installed, is kept by deploy/kruise/kruise while installed.)

BENCH_MARKER="${BENCH_MARKER:-/tmp/bench-running}"
BENCH_QUIET="${BENCH_QUIET:-20}"
BENCH_WAIT="${BENCH_WAIT:-1800}"
EXCLUSIVE=0

exclusive_begin() {
  touch "$BENCH_MARKER"
  EXCLUSIVE=1
  local quiet=0 start last_say=0 now
  start=$(date +%s)
  while (( quiet < BENCH_QUIET )); do
    now=$(date +%s)
    if pgrep -f 'cargo test --features cluster-tests' >/dev/null; then
      quiet=0
      if (( now - last_say >= 60 )); then
        echo "waiting for other cluster test runs to end (pgrep -f 'cargo test --features cluster-tests'; $BENCH_MARKER is set)" >&2
        last_say=$now
      fi
      if (( now - start > BENCH_WAIT )); then
        echo "cluster tests still running after ${BENCH_WAIT}s; giving up" >&2
        return 1
      fi
    else
      quiet=$((quiet + 1))
    fi
    sleep 1
  done
}

exclusive_end() {
  if (( EXCLUSIVE )); then rm -f "$BENCH_MARKER"; fi
  EXCLUSIVE=0
}
