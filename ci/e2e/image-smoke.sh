#!/usr/bin/env bash
# Runs a built plugin image as Kubernetes would (read-only root filesystem,
# non-root, token mounted as a file) and asks it for parameters.
# Usage: ci/e2e/image-smoke.sh IMAGE BINARY-NAME
set -euo pipefail

image=${1:?usage: $0 IMAGE BINARY-NAME}
binary=${2:?usage: $0 IMAGE BINARY-NAME}
dir=$(mktemp -d)
od -An -vtx1 -N32 /dev/urandom | tr -d ' \n' >"$dir/token"
chmod 0444 "$dir/token"

container=$(docker run -d --read-only --cap-drop ALL --security-opt no-new-privileges \
    -v "$dir:/var/run/argo:ro" -p 127.0.0.1:4355:4355 "$image")
trap 'docker logs "$container"; docker rm -f "$container" >/dev/null' EXIT

for _ in $(seq 30); do
    curl -fsS http://127.0.0.1:4355/readyz >/dev/null 2>&1 && break
    sleep 1
done
# The generator's example request must get over HTTP what `preview` prints.
normalise() { python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))'; }
request=$(docker run --rm "$image" preview --request)
expected=$(docker run --rm "$image" preview | normalise)
reply=$(curl -fsS http://127.0.0.1:4355/api/v1/getparams.execute \
    -H "Authorization: Bearer $(cat "$dir/token")" \
    -d "$request")
echo "$reply"
[[ $(normalise <<<"$reply") == "$expected" ]]
[[ $(docker inspect -f '{{.Config.User}}' "$image") == 65532:65532 ]]
docker exec "$container" "/usr/local/bin/$binary" healthcheck
echo "image smoke test: passed"
