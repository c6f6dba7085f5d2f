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

{{/* Selector labels; `shroud.dev/component: webhook` also keeps the webhook's own
pods out of its objectSelector. */}}
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
