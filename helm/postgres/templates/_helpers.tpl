{{- define "postgres.fullname" -}}
{{- default (printf "%s-postgres" .Release.Name) .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "postgres.selectorLabels" -}}
app.kubernetes.io/name: postgres
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "postgres.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{ include "postgres.selectorLabels" . }}
app.kubernetes.io/version: {{ include "postgres.versionLabel" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: database
app.kubernetes.io/part-of: quintet
{{- end }}

{{- define "postgres.secretName" -}}
{{- default (include "postgres.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{- define "postgres.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* From the chart's appVersion (kept equal to the image's version), made a valid label value. */}}
{{- define "postgres.versionLabel" -}}
{{- regexReplaceAll "[^A-Za-z0-9._-]" (toString .Chart.AppVersion) "_" | trunc 63 | trimAll "-_." }}
{{- end }}

{{- define "postgres.podLabels" -}}
{{ include "postgres.labels" . }}
{{- with .Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "postgres.imagePullSecrets" -}}
{{- with (concat ((.Values.global | default dict).imagePullSecrets | default list) (.Values.imagePullSecrets | default list)) }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Who may connect: this release's pods (the Quintet processes when installed as a subchart),
plus the clients networkPolicy names, so an application in another release or namespace
reaches a separately installed postgres.
*/}}
{{- define "postgres.networkPolicyPeers" -}}
{{- if .Values.networkPolicy.allowSameRelease }}
- podSelector:
    matchLabels:
      app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
{{- with .Values.networkPolicy.allowedPodLabels }}
- podSelector:
    matchLabels:
      {{- toYaml . | nindent 6 }}
  {{- with $.Values.networkPolicy.allowedNamespaceLabels }}
  namespaceSelector:
    matchLabels:
      {{- toYaml . | nindent 6 }}
  {{- end }}
{{- end }}
{{- with .Values.networkPolicy.extraFrom }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The data directory: dataDir, or /var/lib/postgresql/<major>/docker as in the official 18+
images (the major version from the image tag, else the chart's appVersion).
*/}}
{{- define "postgres.pgdata" -}}
{{- if .Values.dataDir }}
{{- .Values.dataDir }}
{{- else }}
{{- $version := regexFind "^[0-9]+" (toString (.Values.image.tag | default .Chart.AppVersion)) | default (regexFind "^[0-9]+" (toString .Chart.AppVersion)) }}
{{- printf "/var/lib/postgresql/%s/docker" $version }}
{{- end }}
{{- end }}
