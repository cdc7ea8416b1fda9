#!/usr/bin/env bash
# The oldest cargo-generate the template supports (0.23.7, the newest CLI that
# installs on rustc 1.95) must render exactly what the harness renders with
# the cargo-generate 0.26 library: compared byte for byte, for the defaults
# and for custom values with the optional parts switched.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# Installed on first use into the harness's tool cache (ci/src/tools.rs).
cli=$(cd "$repo" && cargo run --quiet -p template-ci -- tool cargo-generate)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Render from the repository's files only, as from a fresh clone (this
# cargo-generate copies the whole folder, target/ included).
mkdir -p "$work/repo"
(cd "$repo" && git ls-files -co --exclude-standard -z | tar --null -cf - -T -) | tar -xf - -C "$work/repo"
# cargo-generate needs an author; CI machines may have neither $USER nor a git identity.
export CARGO_NAME=${CARGO_NAME:-template-ci}

check() {
    rm -rf "$work/cli" "$work/library"
    mkdir -p "$work/cli"
    "$cli" generate --path "$work/repo" template --name compat-plugin \
        --silent --vcs none --destination "$work/cli" "$@" >/dev/null
    cargo run --quiet -p template-ci -- render --name compat-plugin --into "$work/library" \
        --template "$work/repo" "$@" >/dev/null 2>&1
    diff -r "$work/cli/compat-plugin" "$work/library/compat-plugin"
    echo "cargo-generate 0.23.7 renders the same files as 0.26 ${*:-(defaults)}"
    # What the CLI rendered records the version and answers `upgrade` reads.
    cargo run --quiet -p template-ci -- upgrade --check "$work/cli/compat-plugin" --template "$work/repo"
}

check
check -d plugin_port=8088 -d plugin_namespace=team-a -d metrics=false -d github_actions=false -d http_client=true -d tls=true

# The README's `cargo generate --path .` commands, as written (plus --silent
# where they would prompt), in a fresh clone: they must succeed, leave the
# clone clean, and make each project a Git repository of its own beside it.
git clone --quiet "$repo" "$work/clone"
commands=$(awk '
    /^cargo generate --path \. / { line = $0; collecting = 1 }
    collecting && !/^cargo generate --path \. / { line = line " " $0 }
    collecting && !/\\$/ { gsub(/\\ +/, "", line); print line; collecting = 0 }
' "$repo/README.md")
[[ -n $commands ]] || { echo "README.md shows no 'cargo generate --path .' command" >&2; exit 1; }
while read -r command; do
    [[ $command == *--silent* ]] || command="$command --silent"
    echo "README: $command"
    (cd "$work/clone" && eval "\"$cli\" generate ${command#cargo generate }" >/dev/null)
    name=$(sed -E 's/.*--name ([a-z0-9-]+).*/\1/' <<<"$command")
    top=$(git -C "$work/$name" rev-parse --show-toplevel 2>/dev/null) || top=none
    if [[ $top != "$work/$name" ]]; then
        echo "README: $command left $work/$name outside a Git repository of its own ($top)" >&2
        exit 1
    fi
done <<<"$commands"
status=$(git -C "$work/clone" status --porcelain)
if [[ -n $status ]]; then
    echo "the README's commands changed the clone:" >&2
    echo "$status" >&2
    exit 1
fi
# The clone's own workspace still loads (cargo-generate did not rewrite it).
(cd "$work/clone" && cargo metadata --no-deps --format-version 1 >/dev/null)
echo "the README's render commands work as written and leave the clone clean"

# The floors of the dependencies' versions: plugin-server's comments rely on
# actix-http 3.20's handling of unread bodies, and every floor must build.
# cargo-minimal-versions resolves each direct dependency of the rendered
# project (the http_client example with tls, which has the most, with every
# feature) to the lowest version its manifest allows, on stable Rust, and
# checks every target.
hack=$(cd "$repo" && cargo run --quiet -p template-ci -- tool cargo-hack)
minimal=$(cd "$repo" && cargo run --quiet -p template-ci -- tool cargo-minimal-versions)
cargo run --quiet -p template-ci -- render --name floors-plugin --into "$work/floors" \
    --template "$work/repo" -d http_client=true -d tls=true >/dev/null 2>&1
(
    cd "$work/floors/floors-plugin"
    PATH="$(dirname "$hack"):$(dirname "$minimal"):$PATH" \
        CARGO_TARGET_DIR="$repo/target/floors" \
        cargo minimal-versions check --workspace --direct --all-features --all-targets --quiet
)
echo "every direct dependency builds at the floor its manifest names"
