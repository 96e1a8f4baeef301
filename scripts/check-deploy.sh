#!/usr/bin/env bash
# Check deploy/ offline: kustomize builds it (alone, and with the opt-in config-dump component
# added by an overlay as a user would write one), and kubectl's client-side dry run accepts every
# object. kubectl needs API discovery to map kinds to resources even for a client-side dry run;
# with no cluster here, it reads a discovery cache written below for the built-in kinds deploy/
# uses (Namespace, ServiceAccount, Job, the RBAC kinds: their groups, versions and scopes are
# Kubernetes' own), so nothing is contacted. Field-level schema checks: tests/it/ship.rs (the
# Kubernetes API types of k8s-openapi).
#
#   bash scripts/check-deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v kubectl >/dev/null || { echo "check-deploy.sh: kubectl is required (Debian package kubectl)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
server=127.0.0.1:9
disc="$work/cache/discovery/${server/:/_}"
mkdir -p "$disc/v1" "$disc/batch/v1" "$disc/rbac.authorization.k8s.io/v1"
cat >"$disc/servergroups.json" <<'JSON'
{"kind":"APIGroupList","apiVersion":"v1","groups":[
{"name":"","versions":[{"groupVersion":"v1","version":"v1"}],"preferredVersion":{"groupVersion":"v1","version":"v1"}},
{"name":"batch","versions":[{"groupVersion":"batch/v1","version":"v1"}],"preferredVersion":{"groupVersion":"batch/v1","version":"v1"}},
{"name":"rbac.authorization.k8s.io","versions":[{"groupVersion":"rbac.authorization.k8s.io/v1","version":"v1"}],"preferredVersion":{"groupVersion":"rbac.authorization.k8s.io/v1","version":"v1"}}]}
JSON
cat >"$disc/v1/serverresources.json" <<'JSON'
{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"v1","resources":[
{"name":"namespaces","singularName":"namespace","namespaced":false,"kind":"Namespace","verbs":["create","delete","get","list","patch","update","watch"]},
{"name":"serviceaccounts","singularName":"serviceaccount","namespaced":true,"kind":"ServiceAccount","verbs":["create","delete","get","list","patch","update","watch"]},
{"name":"persistentvolumeclaims","singularName":"persistentvolumeclaim","namespaced":true,"kind":"PersistentVolumeClaim","verbs":["create","delete","get","list","patch","update","watch"]}]}
JSON
cat >"$disc/batch/v1/serverresources.json" <<'JSON'
{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"batch/v1","resources":[
{"name":"jobs","singularName":"job","namespaced":true,"kind":"Job","verbs":["create","delete","get","list","patch","update","watch"]}]}
JSON
cat >"$disc/rbac.authorization.k8s.io/v1/serverresources.json" <<'JSON'
{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"rbac.authorization.k8s.io/v1","resources":[
{"name":"clusterroles","singularName":"clusterrole","namespaced":false,"kind":"ClusterRole","verbs":["create","delete","get","list","patch","update","watch"]},
{"name":"clusterrolebindings","singularName":"clusterrolebinding","namespaced":false,"kind":"ClusterRoleBinding","verbs":["create","delete","get","list","patch","update","watch"]},
{"name":"roles","singularName":"role","namespaced":true,"kind":"Role","verbs":["create","delete","get","list","patch","update","watch"]},
{"name":"rolebindings","singularName":"rolebinding","namespaced":true,"kind":"RoleBinding","verbs":["create","delete","get","list","patch","update","watch"]}]}
JSON
cat >"$work/kubeconfig" <<EOF2
apiVersion: v1
kind: Config
clusters: [{name: offline, cluster: {server: "https://$server"}}]
users: [{name: offline, user: {token: offline}}]
contexts: [{name: offline, context: {cluster: offline, user: offline, namespace: default}}]
current-context: offline
EOF2
# An overlay outside deploy/ (kustomize refuses an overlay inside the base it builds on).
overlay=target/check-deploy-overlay
mkdir -p "$overlay"
rel=$(realpath --relative-to="$overlay" deploy)
printf 'resources:\n- %s\ncomponents:\n- %s/config-dump\n' "$rel" "$rel" >"$overlay/kustomization.yaml"
for dir in deploy "$overlay"; do
    kubectl kustomize "$dir" >"$work/built.yaml"
    kubectl --kubeconfig="$work/kubeconfig" --cache-dir="$work/cache" --request-timeout=5s \
        create --dry-run=client --validate=false -o name -f "$work/built.yaml" >"$work/names"
    built=$(grep -c '^kind:' "$work/built.yaml")
    accepted=$(wc -l <"$work/names")
    if [ "$built" != "$accepted" ]; then
        echo "check-deploy.sh: $dir: kustomize built $built objects, the dry run accepted $accepted" >&2
        exit 1
    fi
    echo "check-deploy.sh: $dir: $accepted objects pass kubectl's client-side dry run"
done
