#!/usr/bin/env bash
# Try the gate on a local kind cluster: installs pinned Tekton, Kueue and Kyverno, applies dist/,
# submits more PipelineRuns than the quota admits, and shows them queue, drain and give the quota back.
#
#   demo/demo.sh            create the cluster and run the demo
#   demo/demo.sh cleanup    delete the cluster
set -euo pipefail

CLUSTER="${CLUSTER:-tekton-kueue-policies}"
TEKTON_VERSION="v1.15.0"
KUEUE_VERSION="v0.19.2"
KYVERNO_VERSION="v1.19.1"
NAMESPACE="ci-team-a"
QUEUE="pipelines"           # ClusterQueue "pipelines" admits 2 runs at once (policies/config.yaml)
RUNS="${RUNS:-6}"
TIMEOUT_SECONDS="${TIMEOUT_SECONDS:-900}"

TEKTON_URL="https://infra.tekton.dev/tekton-releases/pipeline/previous/${TEKTON_VERSION}/release.yaml"
KUEUE_URL="https://github.com/kubernetes-sigs/kueue/releases/download/${KUEUE_VERSION}/manifests.yaml"
KYVERNO_URL="https://github.com/kyverno/kyverno/releases/download/${KYVERNO_VERSION}/install.yaml"

here="$(cd "${BASH_SOURCE[0]%/*}" && pwd)"
dist="${here}/../dist"
cli="${here}/../bin/tekton-kueue-policies.mjs"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

check_prerequisites() {
  local missing=()
  command -v kind >/dev/null 2>&1 || missing+=("kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)")
  command -v kubectl >/dev/null 2>&1 || missing+=("kubectl (https://kubernetes.io/docs/tasks/tools/)")
  command -v node >/dev/null 2>&1 || missing+=("node 20 or later, for the project's CLI (https://nodejs.org/)")
  if ! command -v docker >/dev/null 2>&1 && ! command -v podman >/dev/null 2>&1; then
    missing+=("a container engine for kind: docker or podman")
  fi
  [ -f "${dist}/kustomization.yaml" ] || missing+=("dist/ (run: npm ci && npm run synth)")
  [ -d "${here}/../node_modules" ] || missing+=("the project's packages (run: npm ci)")
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "demo.sh needs:" >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
  fi
}

wait_rollout() {
  local namespace="$1"
  kubectl -n "${namespace}" wait deployment --all --for=condition=Available --timeout=300s
}

install_stack() {
  say "kind cluster ${CLUSTER}"
  kind get clusters 2>/dev/null | grep -qx "${CLUSTER}" || kind create cluster --name "${CLUSTER}" --wait 120s
  kubectl config use-context "kind-${CLUSTER}" >/dev/null

  say "Kyverno ${KYVERNO_VERSION}"
  kubectl apply --server-side -f "${KYVERNO_URL}" >/dev/null
  wait_rollout kyverno

  say "Kueue ${KUEUE_VERSION}"
  kubectl apply --server-side -f "${KUEUE_URL}" >/dev/null
  wait_rollout kueue-system

  say "Tekton Pipelines ${TEKTON_VERSION}"
  kubectl apply --server-side -f "${TEKTON_URL}" >/dev/null
  wait_rollout tekton-pipelines
}

apply_bundle() {
  say "the bundle (dist/)"
  # One call: RBAC first, then Kueue's objects, then the policies once Kyverno's roles have their
  # permissions, waiting until every policy is Ready.
  node "${cli}" apply "${dist}"
  say "doctor: the cluster checked against the bundle"
  node "${cli}" doctor "${dist}"
}

submit_runs() {
  say "submitting ${RUNS} PipelineRuns to ${NAMESPACE}/${QUEUE} (quota: 2 at a time)"
  local i
  for i in $(seq 1 "${RUNS}"); do
    sed -e "s/^  name: sample-${QUEUE}-low$/  generateName: demo-${i}-/" "${dist}/samples/${NAMESPACE}-sample-${QUEUE}-low.yaml" \
      | kubectl create -f - -o name
  done
}

running_count() {
  kubectl -n "${NAMESPACE}" get taskruns -l tekton.dev/pipelineTask=build -o jsonpath='{range .items[*]}{.status.conditions[0].reason}{"\n"}{end}' \
    | grep -c '^Running$' || true
}

watch_drain() {
  say "watching the queue drain (never more than 2 runs past the gate)"
  local deadline=$((SECONDS + TIMEOUT_SECONDS)) max_seen=0 done_count
  while [ "${SECONDS}" -lt "${deadline}" ]; do
    local running
    running="$(running_count)"
    [ "${running}" -gt "${max_seen}" ] && max_seen="${running}"
    # Each run: running, or waiting with its place in the queue and Kueue's reason; the quota in use.
    node "${cli}" status -n "${NAMESPACE}"
    done_count="$(kubectl -n "${NAMESPACE}" get pipelineruns -o jsonpath='{range .items[*]}{.status.conditions[0].status}{"\n"}{end}' | grep -cE '^(True|False)$' || true)"
    echo "-- finished ${done_count}/${RUNS}, build tasks running now: ${running} (max seen ${max_seen})"
    [ "${done_count}" -ge "${RUNS}" ] && break
    sleep 5
  done
  [ "${done_count}" -ge "${RUNS}" ] || { echo "runs did not finish within ${TIMEOUT_SECONDS}s" >&2; exit 1; }
}

show_quota() {
  say "every run finished, the quota back at zero"
  node "${cli}" status -n "${NAMESPACE}"
}

main() {
  if [ "${1:-}" = "cleanup" ]; then
    kind delete cluster --name "${CLUSTER}"
    exit 0
  fi
  check_prerequisites
  install_stack
  apply_bundle
  submit_runs
  watch_drain
  show_quota
}

main "$@"
