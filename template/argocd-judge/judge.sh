#!/usr/bin/env bash
# Argo CD's own code judges this plugin: builds the judge (Go, this folder)
# and the plugin's release binary, then runs every check of README.md here.
# Run from anywhere; it works on the project this folder belongs to.
#   argocd-judge/judge.sh [--binary FILE]   every check (the release binary: built unless given)
#   argocd-judge/judge.sh application       only deploy/argocd/application.yaml
#   argocd-judge/judge.sh external-secrets  only deploy/components/external-secrets
set -euo pipefail
module=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(dirname "$module")
# The Go that go.mod asks for (Argo CD's own minimum).
required=$(sed -n 's/^go //p' "$module/go.mod")

if ! command -v go >/dev/null; then
    echo "argocd-judge: needs Go $required or newer on PATH (https://go.dev/dl/); it builds Argo CD's code" >&2
    exit 2
fi
found=$(go env GOVERSION)
version=${found#go}
if ! printf '%s\n%s\n' "$required" "$version" | sort -V -C; then
    echo "argocd-judge: needs Go $required or newer; this is $found" >&2
    exit 2
fi
command -v kubectl >/dev/null || {
    echo "argocd-judge: needs kubectl on PATH (it renders deploy/ with kustomize)" >&2
    exit 2
}

# No optimisation, no inlining, no symbol tables: Argo CD's dependency tree
# compiles faster, and the judge runs for seconds. Go caches the result.
flags=(-mod=readonly "-gcflags=all=-N -l" "-ldflags=-s -w")
# A stable path, so that Go relinks it only when something changed.
binary="$project/target/argocd-judge/argocd-judge"
echo "==> building Argo CD's judge with $found (first time only: downloads and compiles Argo CD's code, 2 to 3 minutes on 2 cores; then seconds)"
start=$SECONDS
go -C "$module" build "${flags[@]}" -o "$binary" .
echo "    done in $((SECONDS - start)) s"
command=project
case ${1:-} in
application | external-secrets)
    command=$1
    shift
    ;;
esac
"$binary" "$command" --dir "$project" "$@"
