{{/* Chart name. */}}
{{- define "shroud.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of the webhook's resources. */}}
{{- define "shroud.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- printf "%s-webhook" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s-webhook" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Common labels. */}}
{{- define "shroud.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "shroud.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels. */}}
{{- define "shroud.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shroud.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
shroud.dev/component: webhook
{{- end -}}

{{- define "shroud.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "shroud.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "shroud.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret holding the serving certificate. */}}
{{- define "shroud.tlsSecret" -}}
{{- printf "%s-tls" (include "shroud.fullname" .) -}}
{{- end -}}

{{/* The Service's DNS names, in the serving certificate. */}}
{{- define "shroud.dnsNames" -}}
{{- $svc := include "shroud.fullname" . -}}
{{- list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) | toJson -}}
{{- end -}}

{{/* The namespaces both webhooks see: the configured selector, never the release's
own namespace (the webhook's pods must start when no replica is up; a label
would be an opt-out any pod author could use). Called with (dict "root" .
"extra" LIST): LIST holds more expressions, e.g. the Pod Security level split. */}}
{{- define "shroud.namespaceSelector" -}}
{{- $root := .root -}}
{{- $sel := deepCopy (default dict $root.Values.webhook.namespaceSelector) -}}
{{- $exprs := concat (default list $sel.matchExpressions) (list (dict "key" "kubernetes.io/metadata.name" "operator" "NotIn" "values" (list $root.Release.Namespace))) (default list .extra) -}}
{{- $_ := set $sel "matchExpressions" $exprs -}}
namespaceSelector:
  {{- toYaml $sel | nindent 2 }}
{{- end }}

{{/* The registrations of one endpoint: with webhook.podSecurity.enabled, one for
namespaces whose Pod Security level is in podSecurity.levels, at ENDPOINT/restricted
(the restricted profile: no IPC_LOCK), and one for every other namespace (NotIn also
matches namespaces without the label), at ENDPOINT. A path segment, not a query:
the API server accepts only DNS-1123 segments in a service path. Returns a JSON
list of {name, path, extra}. */}}
{{- define "shroud.registrations" -}}
{{- $ps := .root.Values.webhook.podSecurity -}}
{{- if $ps.enabled -}}
{{- $in := dict "key" $ps.label "operator" "In" "values" $ps.levels -}}
{{- $notIn := dict "key" $ps.label "operator" "NotIn" "values" $ps.levels -}}
{{- list (dict "name" .name "path" .path "extra" (list $notIn)) (dict "name" (printf "restricted.%s" .name) "path" (printf "%s/restricted" .path) "extra" (list $in)) | toJson -}}
{{- else -}}
{{- list (dict "name" .name "path" .path "extra" list) | toJson -}}
{{- end -}}
{{- end }}
