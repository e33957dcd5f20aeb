{{/* SPDX-License-Identifier: Apache-2.0 */}}
{{- define "signpost.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "signpost.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "router") */}}
{{- define "signpost.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* An image reference: (dict "root" $ "image" .Values.router.image) */}}
{{- define "signpost.image" -}}
{{- $tag := .image.tag | default .root.Chart.AppVersion -}}
{{- if .root.Values.image.registry -}}
{{- printf "%s/%s:%s" .root.Values.image.registry .image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The port of a "host:port" listen address. */}}
{{- define "signpost.port" -}}
{{- regexReplaceAll "^.*:" . "" -}}
{{- end -}}

{{/* Every rules file the router's configuration names (one domain, or domains.<id>). */}}
{{- define "signpost.rulesFiles" -}}
{{- $files := list -}}
{{- with .Values.router.config.rules_file }}{{ $files = append $files . }}{{ end -}}
{{- range $id, $d := .Values.router.config.domains | default dict }}{{ $files = append $files $d.rules_file }}{{ end -}}
{{- join "\n" $files -}}
{{- end -}}
