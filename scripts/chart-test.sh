#!/usr/bin/env bash
# Offline tests of the Helm chart charts/uias (no cluster, no network beyond
# the Go module proxy that scripts/chart-tools.sh uses once):
#
#   1. helm lint --strict with the minimal and the full values of charts/uias/ci;
#   2. helm template --kube-version 1.35.0 of both (the full one with all six
#      components enabled), validated by kubeconform -strict against the
#      Kubernetes 1.35 schemas (and the ServiceMonitor CRD's);
#   3. with --go: the chart's Go tests (cmd/uias/internal/serve, -run Chart):
#      every registered component has its place in the chart, each rendered
#      Deployment's arguments and environment parse with the real `uias serve`
#      flag parser and validate, security settings, and values.schema.json
#      rejections with their messages. scripts/test.sh runs them with the
#      other cmd/uias tests instead.
#
# scripts/test.sh (make test) runs it; `make chart-test` runs it with --go.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/.bin
scripts/chart-tools.sh
HELM=$BIN/helm
CHART=charts/uias
KUBE=1.35.0
out=$(mktemp -d /tmp/uias-chart.XXXXXX)
trap 'rm -rf "$out"' EXIT

all_components=()
for c in identity ticket authz audit sync gateway; do
	all_components+=(--set "components.$c.enabled=true")
done

status=0
for v in minimal full; do
	echo "== helm lint --strict ($v values)"
	"$HELM" lint --strict --kube-version "$KUBE" "$CHART" -f "$CHART/ci/$v-values.yaml" || status=1
done

echo "== helm template --kube-version $KUBE (minimal, full with every component)"
"$HELM" template uias "$CHART" --kube-version "$KUBE" -f "$CHART/ci/minimal-values.yaml" >"$out/minimal.yaml" || status=1
"$HELM" template uias "$CHART" --kube-version "$KUBE" -f "$CHART/ci/full-values.yaml" \
	"${all_components[@]}" >"$out/full.yaml" || status=1

echo "== kubeconform -strict (Kubernetes $KUBE schemas)"
"$BIN/kubeconform" -strict -summary -output text \
	-schema-location "$BIN/k8s-schemas/v$KUBE/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
	"$out/minimal.yaml" "$out/full.yaml" || status=1

if [[ ${1:-} == --go ]]; then
	echo "== chart Go tests (cmd/uias/internal/serve)"
	(cd cmd/uias && UIAS_HELM=$HELM go test -count=1 -run 'Chart' ./internal/serve) || status=1
fi
exit $status
