{{/*
Names and labels, the way `helm create` lays them down.
*/}}
{{- define "quintet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "quintet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "quintet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "quintet.labels" -}}
helm.sh/chart: {{ include "quintet.chart" . }}
{{ include "quintet.selectorLabels" . }}
app.kubernetes.io/version: {{ include "quintet.versionLabel" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: quintet
{{- end }}

{{/*
The version label comes from the chart's appVersion, never from image.tag: a tag may be a git
sha, `tag@sha256:...` (skaffold) or anything else a label value (63 characters of
[A-Za-z0-9._-], alphanumeric at both ends) cannot hold.
*/}}
{{- define "quintet.versionLabel" -}}
{{- regexReplaceAll "[^A-Za-z0-9._-]" (toString .Chart.AppVersion) "_" | trunc 63 | trimAll "-_." }}
{{- end }}

{{/* Labels on every pod template: the component's labels plus podLabels. */}}
{{- define "quintet.podLabels" -}}
{{ include "quintet.componentLabels" . }}
{{- with .ctx.Values.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "quintet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "quintet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one process (api, worker, bot, migrate, test): pass (dict "ctx" $ "component" "api"). */}}
{{- define "quintet.componentLabels" -}}
{{ include "quintet.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "quintet.componentSelectorLabels" -}}
{{ include "quintet.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "quintet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "quintet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, repository@digest, or repository:tag@digest when both are set (skaffold). */}}
{{- define "quintet.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- if .Values.image.tag }}
{{- printf "%s:%s@%s" .Values.image.repository .Values.image.tag .Values.image.digest }}
{{- else }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- end }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The Secret holding the application's secrets: the user's existingSecret or the chart's own. */}}
{{- define "quintet.secretName" -}}
{{- default (include "quintet.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "quintet.postgres.fullname" -}}
{{- default (printf "%s-postgres" .Release.Name) .Values.postgres.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "quintet.redis.fullname" -}}
{{- default (printf "%s-redis" .Release.Name) .Values.redis.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The telegram bot runs only when a token is given, inline or through a Secret.
*/}}
{{- define "quintet.bot.enabled" -}}
{{- if and .Values.bot.enabled (or .Values.telegram.botToken .Values.telegram.existingSecret) }}true{{- end }}
{{- end }}

{{/*
When the migration hook runs. Before install only works when everything the Job reads exists
before the release does: an external database and secrets created outside the chart. With the
bundled PostgreSQL (or chart-made secrets) the first migration runs as an ordinary Job of the
release (migrate-job.yaml), so only pre-upgrade remains a hook.
*/}}
{{- define "quintet.migrations.hookEvents" -}}
{{- if .Values.migrations.hookEvents }}
{{- join "," .Values.migrations.hookEvents }}
{{- else if and (not .Values.postgres.enabled) .Values.existingSecret (not .Values.externalDatabase.url) }}
{{- "pre-install,pre-upgrade" }}
{{- else }}
{{- "pre-upgrade" }}
{{- end }}
{{- end }}

{{/*
Environment shared by every process: the database and Redis URLs (built from the bundled
charts' Secrets, or read from the operator's Secrets) and the Telegram token. Secrets are
referenced, never copied into the manifest.
*/}}
{{- define "quintet.env" -}}
{{ include "quintet.env.database" . }}
{{- include "quintet.env.services" . }}
{{- end }}

{{/* DATABASE_URL alone: all the migration Job needs. */}}
{{- define "quintet.env.database" -}}
{{- if .Values.postgres.enabled }}
- name: POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.postgres.auth.existingSecret | default (include "quintet.postgres.fullname" .) }}
      key: password
- name: DATABASE_URL
  value: {{ printf "postgresql+asyncpg://%s:$(POSTGRES_PASSWORD)@%s:%d/%s" .Values.postgres.auth.username (include "quintet.postgres.fullname" .) (int .Values.postgres.service.port) .Values.postgres.auth.database | quote }}
{{- else if .Values.externalDatabase.existingSecret }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalDatabase.existingSecret }}
      key: {{ .Values.externalDatabase.existingSecretKey }}
{{- else if not (or .Values.externalDatabase.url .Values.existingSecret) }}
{{- fail "postgres.enabled is false: set externalDatabase.url, externalDatabase.existingSecret, or a DATABASE_URL key in existingSecret" }}
{{- end }}
{{- end }}

{{- define "quintet.env.services" -}}
{{- if .Values.redis.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.auth.existingSecret | default (include "quintet.redis.fullname" .) }}
      key: password
- name: REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:%d/0" (include "quintet.redis.fullname" .) (int .Values.redis.service.port) | quote }}
{{- else if .Values.externalRedis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalRedis.existingSecret }}
      key: {{ .Values.externalRedis.existingSecretKey }}
{{- else if not (or .Values.externalRedis.url .Values.existingSecret) }}
{{- fail "redis.enabled is false: set externalRedis.url, externalRedis.existingSecret, or a REDIS_URL key in existingSecret" }}
{{- end }}
{{- if .Values.telegram.existingSecret }}
- name: TELEGRAM_BOT_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.telegram.existingSecret }}
      key: {{ .Values.telegram.existingSecretKey }}
{{- end }}
{{- end }}

{{- define "quintet.envFrom" -}}
- configMapRef:
    name: {{ include "quintet.fullname" . }}
- secretRef:
    name: {{ include "quintet.secretName" . }}
{{- with .Values.extraEnvFrom }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "quintet.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "quintet.containerSecurityContext" -}}
{{- toYaml .Values.securityContext }}
{{- end }}

{{/* The writable /tmp that a read-only root filesystem needs. */}}
{{- define "quintet.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
{{- end }}

{{- define "quintet.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "quintet.imagePullSecrets" -}}
{{- with (concat ((.Values.global | default dict).imagePullSecrets | default list) (.Values.imagePullSecrets | default list)) }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
What every container of the app image gets besides the chart's own settings: extraEnv (a
list of EnvVar, after the chart's variables so $(VAR) references to them work) and
extraEnvFrom. Secret settings must not appear there as literal values.
*/}}
{{- define "quintet.extraEnv" -}}
{{- range .Values.extraEnv }}
{{- if and (hasKey . "value") (has .name (list "DATABASE_URL" "REDIS_URL" "SECRET_KEY" "ADMIN_API_KEY" "TELEGRAM_BOT_TOKEN" "TELEGRAM_WEBHOOK_SECRET")) }}
{{- fail (printf "extraEnv: %s is a secret: put it in existingSecret (or a valueFrom.secretKeyRef), not a literal value" .name) }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "quintet.volumeMounts" -}}
{{ include "quintet.tmpVolumeMount" . }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "quintet.volumes" -}}
{{ include "quintet.tmpVolume" . }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Restart the pods when what they read at start changes: the ConfigMap and the chart's Secret
(a Secret you manage through existingSecret is not seen here: `kubectl rollout restart`).
*/}}
{{- define "quintet.checksums" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}

{{/* Scheduling knobs shared by every pod: pass (dict "ctx" $ "own" .Values.api). */}}
{{- define "quintet.scheduling" -}}
{{- with .ctx.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with (.own.nodeSelector | default .ctx.Values.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.own.tolerations | default .ctx.Values.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .own.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .own.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
ALLOWED_HOSTS, the Host headers the app answers: config.allowedHosts, or else the names
clients use to reach it here: the host of config.publicBaseUrl, the Ingress hosts or the
HTTPRoute hostnames, plus the api Service's own names (the helm test pod, other pods) and
localhost (kubectl port-forward). Empty when nothing names a host (an HTTPRoute without
hostnames matches any).
*/}}
{{- define "quintet.allowedHosts" -}}
{{- $hosts := list }}
{{- if .Values.config.allowedHosts }}
{{- $hosts = .Values.config.allowedHosts }}
{{- else }}
{{- with .Values.config.publicBaseUrl }}
{{- $hosts = append $hosts (urlParse .).hostname }}
{{- end }}
{{- if .Values.ingress.enabled }}
{{- $hosts = concat $hosts .Values.ingress.hosts }}
{{- end }}
{{- if and .Values.httpRoute.enabled .Values.httpRoute.hostnames }}
{{- $hosts = concat $hosts .Values.httpRoute.hostnames }}
{{- end }}
{{- if $hosts }}
{{- $service := printf "%s-api" (include "quintet.fullname" .) }}
{{- $namespace := .Release.Namespace }}
{{- $hosts = concat $hosts (list $service (printf "%s.%s" $service $namespace) (printf "%s.%s.svc" $service $namespace) (printf "%s.%s.svc.cluster.local" $service $namespace) "localhost" "127.0.0.1") }}
{{- end }}
{{- end }}
{{- $hosts | uniq | join "," }}
{{- end }}
