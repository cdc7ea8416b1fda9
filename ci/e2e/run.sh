#!/usr/bin/env bash
# End-to-end test on a real cluster: render the template, build the image,
# load it into kind, install upstream Argo CD, deploy the plugin with its
# token command and `kubectl apply -k deploy/local`, apply the example ApplicationSet and
# wait for its Applications; then make the generator fail and check that
# Argo CD leaves the Applications alone (fail closed).
#
# Needs docker, kind (a cluster named $KIND_CLUSTER), kubectl, cargo and
# network access: it runs on GitHub's runners (.github/workflows/template.yml),
# not on machines without a Docker daemon.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${E2E_WORKDIR:-$(mktemp -d)}
name=${E2E_PLUGIN_NAME:-e2e-plugin}
cluster=${KIND_CLUSTER:-kind}
argocd_version=${ARGOCD_VERSION:-stable}
# The image deploy/local runs: the default repository, tag dev.
image=ghcr.io/my-org/$name:dev

log() { printf '\n=== %s\n' "$*"; }

# wait_for DESCRIPTION SECONDS COMMAND...: retries COMMAND until it succeeds.
wait_for() {
    local what=$1 seconds=$2
    shift 2
    for ((i = 0; i < seconds; i += 5)); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 5
    done
    echo "timed out after ${seconds}s waiting for: $what" >&2
    return 1
}

applications() {
    kubectl -n argocd get applications -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort
}

expected_applications() {
    printf '%s\n' guestbook-dev guestbook-prod guestbook-staging
}

has_expected_applications() {
    [[ "$(applications)" == "$(expected_applications)" ]]
}

log "render $name"
(cd "$repo" && cargo run --quiet -p template-ci -- render --name "$name" --into "$work")
project=$work/$name

log "build and load $image"
docker build -t "$image" "$project"
kind load docker-image "$image" --name "$cluster"

log "install Argo CD ($argocd_version)"
kubectl create namespace argocd --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -n argocd --server-side --force-conflicts \
    -f "https://raw.githubusercontent.com/argoproj/argo-cd/$argocd_version/manifests/install.yaml"
kubectl -n argocd rollout status deployment/argocd-applicationset-controller --timeout=300s

log "deploy the plugin"
"$project/deploy/token.sh" create
# The rendered local-cluster install: the :dev image loaded into kind, never pulled.
kubectl apply -k "$project/deploy/local"
kubectl -n argocd-plugins rollout status "deployment/$name" --timeout=180s

log "the example ApplicationSet makes its Applications"
kubectl apply -n argocd -f "$project/deploy/examples/applicationset.yaml"
wait_for "Applications $(expected_applications | tr '\n' ' ')" 180 has_expected_applications
applications

log "a failing generator leaves the Applications alone"
kubectl -n argocd patch applicationset "$name-example" --type merge \
    -p '{"spec":{"generators":[{"plugin":{"configMapRef":{"name":"'"$name"'"},"input":{"parameters":{"environments":"not-a-list"}}}}]}}'
error_shown() {
    kubectl -n argocd get applicationset "$name-example" -o jsonpath='{.status.conditions}' |
        grep -q 'API error with status code 400'
}
wait_for "the plugin's error in the ApplicationSet status" 120 error_shown
sleep 30 # a few more reconciles
if ! has_expected_applications; then
    echo "Applications changed after a failed generation:" >&2
    applications >&2
    exit 1
fi
kubectl -n argocd get applicationset "$name-example" -o jsonpath='{.status.conditions}'
echo
log "end-to-end: passed"
