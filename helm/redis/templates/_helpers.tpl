{{- define "redis.fullname" -}}
{{- default (printf "%s-redis" .Release.Name) .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "redis.selectorLabels" -}}
app.kubernetes.io/name: redis
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "redis.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{ include "redis.selectorLabels" . }}
app.kubernetes.io/version: {{ include "redis.versionLabel" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: cache
app.kubernetes.io/part-of: quintet
{{- end }}

{{- define "redis.secretName" -}}
{{- default (include "redis.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{- define "redis.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* From the chart's appVersion (kept equal to the image's version), made a valid label value. */}}
{{- define "redis.versionLabel" -}}
{{- regexReplaceAll "[^A-Za-z0-9._-]" (toString .Chart.AppVersion) "_" | trunc 63 | trimAll "-_." }}
{{- end }}

{{- define "redis.podLabels" -}}
{{ include "redis.labels" . }}
{{- with .Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "redis.imagePullSecrets" -}}
{{- with (concat ((.Values.global | default dict).imagePullSecrets | default list) (.Values.imagePullSecrets | default list)) }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
Who may connect: this release's pods (the Quintet processes when installed as a subchart),
plus the clients networkPolicy names, so an application in another release or namespace
reaches a separately installed redis.
*/}}
{{- define "redis.networkPolicyPeers" -}}
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
maxmemory in bytes: the maxmemory value, or maxmemoryPercent of resources.limits.memory, so
Redis refuses writes (noeviction) before the kernel OOM-kills it at the limit. Empty when
neither is set (no memory limit: Redis grows without bound).
*/}}
{{- define "redis.maxmemory" -}}
{{- if .Values.maxmemory }}
{{- .Values.maxmemory }}
{{- else }}
{{- $limit := toString ((.Values.resources.limits | default dict).memory | default "") }}
{{- if $limit }}
{{- $number := regexFind "^[0-9]+" $limit }}
{{- $suffix := trimPrefix $number $limit }}
{{- $factors := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 }}
{{- if or (not $number) (not (hasKey $factors $suffix)) }}
{{- fail (printf "resources.limits.memory %q: use a whole number with k, M, G, Ki, Mi or Gi (or set maxmemory)" $limit) }}
{{- end }}
{{- div (mul (int64 $number) (int64 (get $factors $suffix)) (int64 .Values.maxmemoryPercent)) 100 }}
{{- end }}
{{- end }}
{{- end }}
