#!/usr/bin/env bash
# The alerts' checks with Prometheus' promtool (Debian: apt-get install
# prometheus): the rules as the PrometheusRule holds them, and their unit
# tests (tests.yaml). Run from anywhere; the project's CI runs it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v promtool >/dev/null || {
    echo "promtool is required (Debian and Ubuntu: apt-get install prometheus)" >&2
    exit 2
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The PrometheusRule's spec is a Prometheus rules file, indented under `spec:`.
awk 'found { sub(/^  /, ""); print } /^spec:/ { found = 1 }' "$here/prometheusrule.yaml" >"$work/full.yaml"
promtool check rules "$work/full.yaml"
# The tests judge when each alert fires and with which labels; its words
# (summary, description, runbook) are left out of the comparison.
awk '
    /^ *annotations:/ { skip = match($0, /[^ ]/); next }
    skip && match($0, /[^ ]/) > skip { next }
    { skip = 0; print }
' "$work/full.yaml" >"$work/rules.yaml"
cp "$here/tests.yaml" "$work/tests.yaml"
promtool test rules "$work/tests.yaml"
