#!/usr/bin/env bash
# Creates or rotates the token shared by Argo CD and {{project-name}}.
#
#   deploy/token.sh create   new random token into both Secrets (skips if they exist)
#   deploy/token.sh rotate   new token, without a failed request on the way
#   deploy/token.sh print    the Secrets `create` would apply, without a cluster
#
# The token never touches the disk or Git: it goes from /dev/urandom to kubectl.
set -euo pipefail

SECRET_NAME={{project-name}}-token
SECRET_KEY=token
PLUGIN_NAMESPACE=${PLUGIN_NAMESPACE:-{{plugin_namespace}}}
ARGOCD_NAMESPACE=${ARGOCD_NAMESPACE:-{{argocd_namespace}}}
# How long the kubelet may take to update a mounted Secret (sync period plus cache).
ROTATION_WAIT=${ROTATION_WAIT:-120}

new_token() {
    # 256 random bits, hex-encoded.
    od -An -vtx1 -N32 /dev/urandom | tr -d ' \n'
}

# secret_yaml NAMESPACE VALUE [LABEL]: the Secret's manifest on stdout.
secret_yaml() {
    local namespace=$1 value=$2 label=${3:-}
    kubectl create secret generic "$SECRET_NAME" \
        --namespace "$namespace" \
        --from-literal="$SECRET_KEY=$value" \
        --dry-run=client -o yaml |
        if [[ -n $label ]]; then kubectl label --local -f - "$label" -o yaml; else cat; fi
}

# The plugin's copy; during a rotation it holds several tokens, one a line.
plugin_secret() {
    secret_yaml "$PLUGIN_NAMESPACE" "$1" app.kubernetes.io/name={{project-name}}
}

# Argo CD's copy: Argo CD reads only Secrets labelled part-of=argocd.
argocd_secret() {
    secret_yaml "$ARGOCD_NAMESPACE" "$1" app.kubernetes.io/part-of=argocd
}

exists() {
    kubectl get secret "$SECRET_NAME" --namespace "$1" >/dev/null 2>&1
}

case ${1:-} in
create)
    if exists "$PLUGIN_NAMESPACE" || exists "$ARGOCD_NAMESPACE"; then
        echo "$SECRET_NAME already exists; use '$0 rotate' to replace the token" >&2
        exit 0
    fi
    kubectl get namespace "$PLUGIN_NAMESPACE" >/dev/null 2>&1 ||
        kubectl create namespace "$PLUGIN_NAMESPACE"
    token=$(new_token)
    plugin_secret "$token" | kubectl apply -f -
    argocd_secret "$token" | kubectl apply -f -
    ;;
rotate)
    old=$(kubectl get secret "$SECRET_NAME" --namespace "$ARGOCD_NAMESPACE" \
        -o jsonpath="{.data.$SECRET_KEY}" | base64 -d)
    token=$(new_token)
    # 1. The plugin accepts the new and the old token.
    plugin_secret "$token"$'\n'"$old" | kubectl apply -f -
    echo "waiting ${ROTATION_WAIT}s for the kubelet to update the plugin's token file..." >&2
    sleep "$ROTATION_WAIT"
    # 2. Argo CD switches to the new token.
    argocd_secret "$token" | kubectl apply -f -
    # 3. The plugin stops accepting the old one.
    plugin_secret "$token" | kubectl apply -f -
    echo "rotated; the old token stops working within ${ROTATION_WAIT}s" >&2
    ;;
print)
    token=$(new_token)
    plugin_secret "$token"
    echo ---
    argocd_secret "$token"
    ;;
*)
    sed -n '2,8s/^# \{0,1\}//p' "$0" >&2
    exit 2
    ;;
esac
