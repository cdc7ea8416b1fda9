#!/usr/bin/env bash
# Brings the template's later changes into this project as one pull request,
# or does nothing when the project is current. Run weekly by
# .github/workflows/template-update.yml; runs by hand too (with gh logged in).
#
#   .github/template-update.sh [TEMPLATE_REPOSITORY]
#
# The template repository defaults to template_repository in .template.toml.
# GitHub refuses changes to .github/workflows/ pushed with a workflow's own
# token: unless WORKFLOWS=push (a token of yours with the workflow scope),
# those files are left out of the commit and listed in the pull request.
# BRANCH names the pull request's branch; TEMPLATE_CI a template-ci binary
# to use instead of building the template's.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

repository=${1:-$(sed -n 's/^template_repository = "\(.*\)"$/\1/p' .template.toml)}
[[ -n $repository ]] || { echo "no template_repository in .template.toml" >&2; exit 2; }
branch=${BRANCH:-template-update}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

git clone --quiet "$repository" "$work/template"
ci=${TEMPLATE_CI:-}
if [[ -z $ci ]]; then
    cargo build --quiet --locked --manifest-path "$work/template/Cargo.toml" -p template-ci
    ci=$work/template/target/debug/template-ci
fi

if "$ci" upgrade --check . --template "$work/template" >"$work/check.txt"; then
    cat "$work/check.txt"
    exit 0
fi

git checkout --quiet -B "$branch"
# Exit 1 with conflicts: they are committed, marked, and listed below.
"$ci" upgrade . --template "$work/template" >"$work/upgrade.txt" || true
grep -q '^upgraded ' "$work/upgrade.txt" || { cat "$work/upgrade.txt" >&2; exit 1; }
to=$(sed -n 's/^upgraded .* to \(.*\)$/\1/p' "$work/upgrade.txt")

held=()
if [[ ${WORKFLOWS:-} != push ]]; then
    while IFS= read -r file; do
        held+=("$file")
    done < <(git status --porcelain -- .github/workflows | cut -c4-)
fi

{
    echo "Template changes up to version $to, from $repository."
    echo
    echo '```text'
    grep -E '^  ' "$work/upgrade.txt" || true
    echo '```'
    if grep -q CONFLICT "$work/upgrade.txt"; then
        echo
        echo "Conflicts, marked <<<<<<< yours / ======= / >>>>>>> template now:"
        grep CONFLICT "$work/upgrade.txt" | sed 's/^ *CONFLICT */- /'
        echo
        echo "Resolve them on this branch, run cargo test --workspace, and merge."
    fi
    if ((${#held[@]})); then
        echo
        echo "Not in this pull request (GitHub refuses workflow changes pushed with"
        echo "the workflow's token): run .github/template-update.sh where you can push"
        echo "workflows, or copy these from the template:"
        for file in "${held[@]}"; do
            echo "- $file"
            echo
            echo '```diff'
            if git ls-files --error-unmatch "$file" >/dev/null 2>&1; then
                git diff -- "$file"
            else
                git diff --no-index -- /dev/null "$file" || true
            fi | head -200
            echo '```'
        done
    fi
} >"$work/body.md"

if ((${#held[@]})); then
    git checkout --quiet HEAD -- "${held[@]}" 2>/dev/null || true
    for file in "${held[@]}"; do
        git ls-files --error-unmatch "$file" >/dev/null 2>&1 || rm -f "$file"
    done
fi
git add -A
git -c user.name="${GIT_AUTHOR_NAME:-github-actions[bot]}" \
    -c user.email="${GIT_AUTHOR_EMAIL:-41898282+github-actions[bot]@users.noreply.github.com}" \
    commit --quiet -m "Template update to version $to"
if [[ -z ${PUSH_REMOTE:-} && -n ${GITHUB_REPOSITORY:-} && -n ${GH_TOKEN:-} ]]; then
    # In a workflow: the token as git's HTTP header, through the environment
    # (never in a URL, an argument or .git/config).
    PUSH_REMOTE=https://github.com/$GITHUB_REPOSITORY.git
    export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.https://github.com/.extraheader
    GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $(printf 'x-access-token:%s' "$GH_TOKEN" | base64 -w0)"
    export GIT_CONFIG_VALUE_0
fi
git push --quiet --force "${PUSH_REMOTE:-origin}" "$branch"

title="Template update to version $to"
number=$(gh pr list --head "$branch" --state open --json number --jq '.[0].number')
if [[ -n $number ]]; then
    gh pr edit "$number" --title "$title" --body-file "$work/body.md"
else
    gh pr create --head "$branch" --title "$title" --body-file "$work/body.md"
fi
