{{/*
A Deployment for a process without an HTTP port (worker, bot): same image, same settings,
a different command. Pass (dict "ctx" $ "component" "worker" "own" .Values.worker "replicas" 1).
*/}}
{{- define "quintet.processDeployment" -}}
{{- $ctx := .ctx }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "quintet.fullname" $ctx }}-{{ .component }}
  namespace: {{ $ctx.Release.Namespace }}
  labels:
    {{- include "quintet.componentLabels" (dict "ctx" $ctx "component" .component) | nindent 4 }}
  annotations:
    checkov.io/skip1: CKV_K8S_8=no HTTP port to probe; a crashed process exits and the kubelet restarts it (set {{ .component }}.livenessProbe for an exec probe)
    checkov.io/skip2: CKV_K8S_9=no Service routes to this pod, so readiness gates nothing
spec:
  replicas: {{ .replicas }}
  revisionHistoryLimit: 5
  strategy:
    {{- if eq .component "bot" }}
    # Telegram allows one long-poll consumer per token: stop the old bot before starting the new.
    type: Recreate
    {{- else }}
    type: RollingUpdate
    {{- end }}
  selector:
    matchLabels:
      {{- include "quintet.componentSelectorLabels" (dict "ctx" $ctx "component" .component) | nindent 6 }}
  template:
    metadata:
      annotations:
        {{- include "quintet.checksums" $ctx | nindent 8 }}
        {{- with .own.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      labels:
        {{- include "quintet.podLabels" (dict "ctx" $ctx "component" .component) | nindent 8 }}
    spec:
      {{- include "quintet.imagePullSecrets" $ctx | nindent 6 }}
      serviceAccountName: {{ include "quintet.serviceAccountName" $ctx }}
      automountServiceAccountToken: false
      securityContext:
        {{- include "quintet.podSecurityContext" $ctx | nindent 8 }}
      terminationGracePeriodSeconds: {{ .own.terminationGracePeriodSeconds }}
      containers:
        - name: {{ .component }}
          image: {{ include "quintet.image" $ctx | quote }}
          imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
          args: [{{ .component | quote }}{{ range .own.args }}, {{ . | quote }}{{ end }}]
          envFrom:
            {{- include "quintet.envFrom" $ctx | nindent 12 }}
          {{- with (list (include "quintet.env" $ctx | trim) (include "quintet.extraEnv" $ctx | trim) | compact | join "\n") }}
          env:
            {{- . | nindent 12 }}
          {{- end }}
          {{- with .own.livenessProbe }}
          livenessProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          resources:
            {{- toYaml .own.resources | nindent 12 }}
          securityContext:
            {{- include "quintet.containerSecurityContext" $ctx | nindent 12 }}
          volumeMounts:
            {{- include "quintet.volumeMounts" $ctx | nindent 12 }}
      volumes:
        {{- include "quintet.volumes" $ctx | nindent 8 }}
      {{- include "quintet.scheduling" (dict "ctx" $ctx "own" .own) | nindent 6 }}
{{- end }}
