# shellcheck shell=bash
# Shared by the benchmarks that pull graft-test/large:v1 (bench/prepull.sh, bench/commit.sh).
# Needs REGISTRY, GRAFT_CRI_SOCKET (deploy/local/cluster env) and LARGE.

# Removes large:v1 and the snapshots of its two data layers (containerd keeps unpacked layers after
# the image is deleted, and a pull would then only re-read the manifest). The first two layers are
# app:v1's and stay.
remove_large() {
  local manifest config diffs chain="" i=0 d
  local refs
  refs=$(ctr -a "$GRAFT_CRI_SOCKET" -n k8s.io images ls -q | grep "^$REGISTRY/graft-test/large[:@]" || true)
  # shellcheck disable=SC2086
  [[ -z "$refs" ]] || ctr -a "$GRAFT_CRI_SOCKET" -n k8s.io images rm --sync $refs >/dev/null 2>&1 || true
  if ctr -a "$GRAFT_CRI_SOCKET" -n k8s.io images ls -q | grep -q "^$REGISTRY/graft-test/large[:@]"; then
    echo "could not remove $LARGE from containerd" >&2
    exit 1
  fi
  manifest=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REGISTRY/v2/graft-test/large/manifests/v1")
  config=$(sed 's/.*"config":{[^}]*"digest":"\(sha256:[0-9a-f]*\)".*/\1/' <<<"$manifest")
  diffs=$(curl -sf "http://$REGISTRY/v2/graft-test/large/blobs/$config" \
    | sed 's/.*"diff_ids":\[\([^]]*\)\].*/\1/' | tr -d '"' | tr ',' '\n')
  local chains=()
  for d in $diffs; do
    if [[ -z "$chain" ]]; then chain=$d; else chain="sha256:$(printf '%s %s' "$chain" "$d" | sha256sum | cut -d' ' -f1)"; fi
    chains+=("$chain")
  done
  for ((i = ${#chains[@]} - 1; i >= 2; i--)); do
    # The kubelet removes a deleted pod's containers (the layers' children) a little later.
    local tries=0
    while ctr -a "$GRAFT_CRI_SOCKET" -n k8s.io snapshots ls | grep -q "^${chains[$i]} " && ((tries++ < 60)); do
      ctr -a "$GRAFT_CRI_SOCKET" -n k8s.io snapshots rm "${chains[$i]}" >/dev/null 2>&1 || sleep 0.5
    done
    if ctr -a "$GRAFT_CRI_SOCKET" -n k8s.io snapshots ls | grep -q "^${chains[$i]} "; then
      echo "could not remove snapshot ${chains[$i]} of $LARGE (still in use?)" >&2
      exit 1
    fi
  done
}
