#!/usr/bin/env bash
# Offline checks of the image definition and the Kubernetes manifests (no cluster, no registry):
#   1. hadolint on the Dockerfile (every warning fails);
#   2. every kustomization under deploy/kubernetes rendered with kustomize (kubectl's own);
#   3. every rendered object validated strictly (unknown fields fail) against the schemas of the
#      oldest Kubernetes we support and of the newest the validator knows; a kind without a
#      schema fails, but for KServe's InferenceService, whose containers are validated as core
#      Containers instead;
#   4. deploy/check_manifests.py: the settings that must agree (probes, grace period against
#      --timeout, CPU against --concurrency × --threads, HPA metrics against the adapter's rules,
#      selectors against pod labels).
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/tools.sh

# The oldest Kubernetes we support: autoscaling/v2 and policy/v1 are GA from 1.23; 1.25 is the
# oldest the offline schemas go back to.
OLDEST_KUBERNETES=1.25.0
NEWEST_KUBERNETES=1.37.0

start=$SECONDS
deploy_python_tools
export PATH=$DEPLOY_VENV/bin:$PATH
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

deploy_log "hadolint $(hadolint --version | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1): Dockerfile"
hadolint --failure-threshold style Dockerfile || deploy_fail "hadolint found problems in the Dockerfile"

rendered=()
while IFS= read -r kustomization; do
    dir=$(dirname "$kustomization")
    grep -q '^kind: Component' "$kustomization" && continue   # used through overlays
    name=$(echo "${dir#deploy/kubernetes/}" | tr '/' '-')
    kubectl kustomize "$dir" > "$out/$name.yaml" || deploy_fail "kustomize could not render $dir"
    rendered+=("$out/$name.yaml")
    deploy_log "rendered $dir: $(grep -c '^kind:' "$out/$name.yaml") objects"
done < <(find deploy/kubernetes -name kustomization.yaml | sort)
[ ${#rendered[@]} -ge 5 ] || deploy_fail "expected at least 5 kustomizations, rendered ${#rendered[@]}"

# InferenceService (a CRD): its containers, as a Pod's, get the core schema.
python3 - "$out" <<'PY'
import sys, pathlib, yaml
out = pathlib.Path(sys.argv[1])
for f in sorted(out.glob("*.yaml")):
    for doc in yaml.safe_load_all(f.read_text()):
        if doc and doc.get("kind") == "InferenceService":
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": doc["metadata"]["name"] + "-predictor"},
                   "spec": {"containers": doc["spec"]["predictor"]["containers"]}}
            (out / f"{f.stem}-predictor-pod.yaml").write_text(yaml.safe_dump(pod))
PY

for version in "$OLDEST_KUBERNETES" "$NEWEST_KUBERNETES"; do
    report=$(kubernetes-validate --strict -k "$version" "$out"/*.yaml 2>&1) || {
        echo "$report" | grep -v '^INFO' >&2
        deploy_fail "manifests do not validate against Kubernetes $version"
    }
    missing=$(echo "$report" | grep "Couldn't find schema" | grep -v 'kind InferenceService with api version serving.kserve.io/' || true)
    [ -z "$missing" ] || { echo "$missing" >&2; deploy_fail "objects without a schema in Kubernetes $version"; }
    deploy_log "Kubernetes $version (strict): $(echo "$report" | grep -c '^INFO .* passed') objects pass"
done

python3 deploy/check_manifests.py "$out" || deploy_fail "manifest settings disagree (above)"
deploy_log "passed in $((SECONDS - start)) s"
