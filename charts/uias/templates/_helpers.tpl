{{/*
The components in the order they are rendered, and what each needs from the
platform. This mirrors the modules the binary registers (cmd/uias/app
Registry(): SQL, NATS, Edge; rest: it has REST routes on the gateway, whose
/readyz waits for the enabled ones, --gateway-backends); the chart test in cmd/uias/internal/serve
checks the rendered Deployments against them.
*/}}
{{- define "uias.componentDefs" -}}
identity: {grpc: true, database: true, nats: true, keyRing: true, bootstrap: true, rest: true}
ticket: {grpc: true, database: true, nats: true, keyRing: true, rest: true}
authz: {grpc: true, database: true, nats: true, rest: true}
audit: {grpc: true, database: true, nats: true, keyRing: true, rest: true}
sync: {grpc: true, database: true, nats: true, rest: true}
gateway: {grpc: false, database: false, nats: false, edge: true, rest: false}
{{- end -}}

{{- define "uias.componentOrder" -}}
identity ticket authz audit sync gateway
{{- end -}}

{{- define "uias.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "uias.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of a component's objects: <fullname>-<component>. Call with (list $ "identity"). */}}
{{- define "uias.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "uias.fullname" $root | trunc 50 | trimSuffix "-") (index . 1) -}}
{{- end -}}

{{- define "uias.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "uias.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: uias
{{- end -}}

{{/* Selector labels of the whole release (every component). */}}
{{- define "uias.releaseSelector" -}}
app.kubernetes.io/name: {{ include "uias.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of one component. Call with (list $ "identity"). */}}
{{- define "uias.selector" -}}
{{ include "uias.releaseSelector" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "uias.componentLabels" -}}
{{ include "uias.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "uias.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default .Chart.AppVersion $img.tag) -}}
{{- end -}}
{{- end -}}

{{- define "uias.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "uias.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* HTTP scheme of the components' listeners. */}}
{{- define "uias.scheme" -}}
{{- if .Values.tls.secretName -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}

{{/* Whether any enabled component needs NATS / the database / the key ring. */}}
{{- define "uias.anyNeeds" -}}
{{- $root := index . 0 -}}
{{- $need := index . 1 -}}
{{- $defs := include "uias.componentDefs" $root | fromYaml -}}
{{- range $name, $def := $defs -}}
{{- if and (index $root.Values.components $name).enabled (index $def $need) -}}yes{{- end -}}
{{- end -}}
{{- end -}}

{{/* The merged extra configuration file of a component ("" when none). */}}
{{- define "uias.configFile" -}}
{{- $root := index . 0 -}}
{{- $c := index $root.Values.components (index . 1) -}}
{{- $cfg := mustMergeOverwrite (deepCopy $root.Values.config) (deepCopy $c.config) -}}
{{- if $cfg -}}{{- toYaml $cfg -}}{{- end -}}
{{- end -}}

{{/*
Checks that schema rules cannot express (they need other values); each
failure is one clear line.
*/}}
{{- define "uias.validate" -}}
{{- $v := .Values -}}
{{- $enabled := list -}}
{{- range $name := include "uias.componentOrder" . | splitList " " -}}
{{- if (index $v.components $name).enabled -}}{{- $enabled = append $enabled $name -}}{{- end -}}
{{- end -}}
{{- if not $enabled -}}
{{- fail "uias: no component is enabled: set components.<name>.enabled (identity, ticket, authz, audit, sync, gateway)" -}}
{{- end -}}
{{- if not $v.etcd.endpoints -}}
{{- fail "uias: etcd.endpoints is required: the components register in etcd and find each other through it (e.g. --set etcd.endpoints={http://etcd:2379})" -}}
{{- end -}}
{{- if and (include "uias.anyNeeds" (list . "nats")) (not $v.nats.url) -}}
{{- fail "uias: nats.url is required: an enabled component publishes events to NATS JetStream (e.g. nats://nats:4222)" -}}
{{- end -}}
{{- if and (include "uias.anyNeeds" (list . "database")) (not $v.database.dsnSecret.name) -}}
{{- fail "uias: database.dsnSecret.name is required: the name of an existing Secret whose key database.dsnSecret.key holds the PostgreSQL DSN" -}}
{{- end -}}
{{- if and (include "uias.anyNeeds" (list . "keyRing")) (not $v.secrets.keyRing.name) -}}
{{- fail "uias: secrets.keyRing.name is required with identity, ticket or audit: the name of an existing Secret holding the key ring JSON (every replica must share it; see docs/operators.md \"Key ring\")" -}}
{{- end -}}
{{- if and $v.etcd.passwordSecret.name (not $v.etcd.username) -}}
{{- fail "uias: etcd.username is required when etcd.passwordSecret is set" -}}
{{- end -}}
{{- with $v.secrets.bootstrapAuditorPassword -}}
{{- if and .name (eq .name $v.secrets.bootstrapPassword.name) (eq .key $v.secrets.bootstrapPassword.key) -}}
{{- fail "uias: secrets.bootstrapAuditorPassword names the same Secret key as secrets.bootstrapPassword: the security auditor's password must differ from the system administrator's (use another key, e.g. auditor-password)" -}}
{{- end -}}
{{- end -}}
{{- if and (not $v.tls.secretName) (not $v.tls.allowPlaintext) -}}
{{- fail "uias: tls.secretName is required: every listener serves TLS (JR/T 0185-2020 9.2.2; a kubernetes.io/tls Secret, e.g. from cert-manager). On a network you trust, tls.allowPlaintext=true serves without TLS" -}}
{{- end -}}
{{- if and $v.tls.verifyClients (not $v.tls.secretName) -}}
{{- fail "uias: tls.verifyClients needs tls.secretName (client certificates need server TLS)" -}}
{{- end -}}
{{- if and $v.tls.peopleCASecret (not $v.tls.secretName) -}}
{{- fail "uias: tls.peopleCASecret needs tls.secretName (certificate login needs server TLS)" -}}
{{- end -}}
{{- if and $v.tls.crlSecret (not $v.tls.verifyClients) (not $v.tls.peopleCASecret) -}}
{{- fail "uias: tls.crlSecret needs tls.verifyClients or tls.peopleCASecret (the lists revoke client certificates)" -}}
{{- end -}}
{{- range $name := $enabled -}}
{{- $c := index $v.components $name -}}
{{- if le (int $c.terminationGracePeriodSeconds) (add (int $c.preStopSeconds) 15 | int) -}}
{{- fail (printf "uias: components.%s.terminationGracePeriodSeconds (%d) must be more than preStopSeconds (%d) + 15 s, the longest graceful shutdown of uias serve, or Kubernetes kills the pod while it drains" $name (int $c.terminationGracePeriodSeconds) (int $c.preStopSeconds)) -}}
{{- end -}}
{{- if and $c.autoscaling.enabled (gt (int $c.autoscaling.minReplicas) (int $c.autoscaling.maxReplicas)) -}}
{{- fail (printf "uias: components.%s.autoscaling.minReplicas (%d) is more than maxReplicas (%d)" $name (int $c.autoscaling.minReplicas) (int $c.autoscaling.maxReplicas)) -}}
{{- end -}}
{{- if and $c.pdb.enabled (not (kindIs "invalid" $c.pdb.minAvailable)) (not (kindIs "invalid" $c.pdb.maxUnavailable)) -}}
{{- fail (printf "uias: components.%s.pdb: set minAvailable or maxUnavailable, not both (set the other one to null)" $name) -}}
{{- end -}}
{{- if and $c.pdb.enabled (kindIs "invalid" $c.pdb.minAvailable) (kindIs "invalid" $c.pdb.maxUnavailable) -}}
{{- fail (printf "uias: components.%s.pdb: set minAvailable or maxUnavailable" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
