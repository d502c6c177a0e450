# graft — build, test, lint. `make test` is the README's test command and what CI runs.
SHELL := /bin/bash
export GRAFT_CACHE ?= /var/cache/graft
export CARGO_TARGET_DIR ?= $(GRAFT_CACHE)/target
CLUSTER := deploy/local/cluster
CARGO ?= cargo

.PHONY: demo demo-down no-demo sshd build test test-unit test-argocd-health test-integration test-kruise test-cluster-down lint fmt crds cluster-up cluster-down browser

## The README's first command: local cluster, graft built and installed with its chart, a Git
## repository from examples/ with a GitSync, and a commit rolled out in place (deploy/demo/run).
demo:
	deploy/demo/run

## Removes the demo and stops the local cluster.
demo-down:
	deploy/demo/down

build:
	$(CARGO) build --workspace

## Unit tests only: no cluster needed.
test-unit:
	$(CARGO) test --workspace
	python3 -B -m unittest bench/lib/podwatch_test.py

## Everything: unit tests, the health rules against Argo CD's, the local cluster (built and cached on
## first use), integration tests, the takeover from the real OpenKruise, and finally `cluster down`
## with a check that it left nothing behind.
test: test-unit test-argocd-health cluster-up test-integration test-kruise test-cluster-down

## sync/tests/argocd_health.rs: graft's health rules next to Argo CD's own Lua checks for the
## OpenKruise kinds (no cluster needed). The checks come from a pinned Argo CD release on the Go module
## proxy, cached on first use (deploy/argocd/health-scripts; its output in its download.log).
test-argocd-health:
	@dir="$$(deploy/argocd/health-scripts)" && GRAFT_ARGOCD_HEALTH="$$dir" \
	  $(CARGO) test -p graft-sync --features cluster-tests --test argocd_health

cluster-up:
	$(CLUSTER) up

## Headless Chromium + chromedriver for the dashboard's browser test (Debian packages).
browser:
	deploy/local/browser install

cluster-down:
	$(CLUSTER) down

## A running demo's graft would reconcile next to the tests' own controllers.
no-demo:
	@if [ -e /var/lib/graft-demo ]; then echo "the demo is running: 'make demo-down' first (its graft would act next to the tests')" >&2; exit 1; fi

## OpenSSH's server for the Git-over-SSH test (from Debian's packages, if missing).
sshd:
	deploy/local/sshd

## Every file in tests/ is a test target (cargo finds it; `#![cfg(feature = "cluster-tests")]` at its top).
test-integration: no-demo browser sshd
	@eval "$$($(CLUSTER) env)" && eval "$$(deploy/local/browser env)" && $(CARGO) test --features cluster-tests --test '*' -- --test-threads=4 \
	  || { echo "integration tests failed; component logs: /var/log/graft-local/"; exit 1; }

## tests/kruise_takeover.rs: workloads created by the real OpenKruise taken over by graft. kruise-manager
## 1.9.1 is built from the Go module proxy on first use (deploy/kruise/build.sh, cached; its output in
## its build.log), the test installs and removes it (deploy/kruise/kruise). Its webhooks are
## cluster-wide, so it runs alone, after test-integration.
test-kruise: no-demo
	deploy/kruise/build.sh >/dev/null
	@eval "$$($(CLUSTER) env)" && $(CARGO) test --features cluster-tests,kruise-tests --test kruise_takeover \
	  || { echo "the OpenKruise takeover test failed; logs: /var/log/graft-kruise/ (kruise-manager), /tmp/graft-test-logs/ (graft)"; exit 1; }

test-cluster-down:
	@eval "$$($(CLUSTER) env)" && $(CARGO) test --features cluster-down-tests --test local_cluster_down -- --test-threads=1

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --features cluster-tests,cluster-down-tests,kruise-tests -- -D warnings

fmt:
	$(CARGO) fmt --all

## Regenerate deploy/crds/ (and the chart's copy) from the types in api/.
crds:
	$(CARGO) run -q -- crds --out-dir deploy/crds
	$(CARGO) run -q -- crds --out-dir deploy/helm/graft/crds

## Regenerate the plain manifests (deploy/manifests/graft.yaml) from the Helm chart; tests/helm_chart.rs
## fails when they are stale. helm is built once from the Go module proxy (deploy/helm/build-helm.sh).
.PHONY: manifests
manifests:
	deploy/helm/manifests.sh > deploy/manifests/graft.yaml.tmp && mv deploy/manifests/graft.yaml.tmp deploy/manifests/graft.yaml

## Figures on the local cluster (printed as ratios against a baseline, never asserted):
## bench/kruise.sh: CloneSet in-place / ReCreate vs a Deployment, 30 pods each, graft (bench/rollout.sh)
##   next to OpenKruise v1.9.1 (built from the Go module proxy, installed and removed by the script),
##   with the per-pod breakdown of both in-place rollouts;
## bench/realistic.sh: the same with real-looking pods (app ready ~3 s after start, unchanged sidecar,
##   a PVC per pod): graft in-place / ReCreate vs a Deployment, and OpenKruise v1.9.1's in-place;
## bench/scale.sh: 100 CloneSets x 30 pods on 30 kwok nodes, graft vs kruise-manager: template change
##   -> all pods patched / updated, peak RSS, CPU seconds (kwok built from the Go module proxy);
## bench/prepull.sh: pre-pull of the large image vs a pod pulling it itself;
## bench/sync.sh: Git sync of 1,000 objects, no-op resync, webhook/file-watch latency vs kubectl;
## bench/commit.sh: commit -> pods on a large image with BeforeRollout pre-pull vs Off; manager memory/CPU;
## bench/sidecarset.sh: a SidecarSet's in-place sidecar upgrade of 30 pods vs recreating them through
##   their CloneSet; pod-create latency through graft's webhook, with graft down, and without it;
## bench/statefulset.sh: an Advanced StatefulSet's in-place rollout of 10 Parallel pods with PVCs vs the
##   same change on a native StatefulSet (RollingUpdate), 2 rounds each; pods recreated, PVCs kept;
## bench/web.sh: the dashboard's render time, SSE latency and memory per client (no cluster).
.PHONY: bench bench-web
bench:
	$(CARGO) build --release --bin graft
	bench/kruise.sh
	bench/realistic.sh
	bench/scale.sh
	bench/prepull.sh
	bench/sync.sh
	bench/commit.sh
	bench/sidecarset.sh
	bench/statefulset.sh
	bench/web.sh

bench-web:
	bench/web.sh
