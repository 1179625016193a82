{{/* The name of every object: the release name when it holds "podgate", else <release>-podgate. */}}
{{- define "podgate.fullname" -}}
{{- if contains "podgate" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-podgate" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "podgate.selectorLabels" -}}
app.kubernetes.io/name: podgate
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "podgate.labels" -}}
{{ include "podgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "podgate.rulesConfigMap" -}}
{{- default (printf "%s-rules" (include "podgate.fullname" .)) .Values.rules.existingConfigMap -}}
{{- end -}}

{{- define "podgate.webhookService" -}}
{{- printf "%s-webhook" (include "podgate.fullname" .) -}}
{{- end -}}

{{- define "podgate.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "podgate.fullname" .) -}}
{{- end -}}

{{- define "podgate.deploymentMode" -}}
{{- if eq .Values.mode "deployment" -}}true{{- end -}}
{{- end -}}
