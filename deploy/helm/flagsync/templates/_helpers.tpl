{{/* Name of the chart, shortened to what a label value allows. */}}
{{- define "flagsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects: the release name when it already names the chart. */}}
{{- define "flagsync.fullname" -}}
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

{{- define "flagsync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "flagsync.labels" -}}
helm.sh/chart: {{ include "flagsync.chart" . }}
{{ include "flagsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flagsync
{{- end }}

{{/* Labels that select the daemon's pods; they never change across upgrades. */}}
{{- define "flagsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flagsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "flagsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "flagsync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name the existing service account to use when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image, by digest when one is given (the tag is then only informative), never "latest". */}}
{{- define "flagsync.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else if eq $tag "latest" }}
{{- fail "image.tag: \"latest\" is refused: pin a release tag, or better image.digest (see docs/deploy.md)" }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The credentials the daemon reads from files: the value's name, the environment variable
naming the file, and the key of the Secret the chart creates from secret.values.
*/}}
{{- define "flagsync.credentials" -}}
kameleoonClientId: {env: KAMELEOON_CLIENT_ID_FILE, key: kameleoon-client-id}
kameleoonClientSecret: {env: KAMELEOON_CLIENT_SECRET_FILE, key: kameleoon-client-secret}
gitToken: {env: FLAGSYNC_GIT_TOKEN_FILE, key: git-token}
webhookSecret: {env: FLAGSYNC_WEBHOOK_SECRET_FILE, key: webhook-secret}
adminToken: {env: FLAGSYNC_ADMIN_TOKEN_FILE, key: admin-token}
gitSshKey: {env: FLAGSYNC_GIT_SSH_KEY_FILE, key: git-ssh-key}
gitSshKeyPassphrase: {env: FLAGSYNC_GIT_SSH_KEY_PASSPHRASE_FILE, key: git-ssh-key-passphrase}
gitKnownHosts: {env: FLAGSYNC_GIT_KNOWN_HOSTS, key: git-known-hosts}
splitAdminApiKey: {env: SPLIT_ADMIN_API_KEY_FILE, key: split-admin-api-key}
notifyWebhookUrl: {env: FLAGSYNC_NOTIFY_WEBHOOK_URL_FILE, key: notify-webhook-url}
notifyWebhookSecret: {env: FLAGSYNC_NOTIFY_WEBHOOK_SECRET_FILE, key: notify-webhook-secret}
notifySlackUrl: {env: FLAGSYNC_NOTIFY_SLACK_URL_FILE, key: notify-slack-url}
{{- end }}

{{/* Name of the Secret mounted at /etc/flagsync/secrets. */}}
{{- define "flagsync.secretName" -}}
{{- default (include "flagsync.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/*
The mounted credentials as YAML, {ENV_NAME: key in the Secret}: from secret.keys with
existingSecret, else from the non-empty secret.values. Fails when neither is set, when
both are, and for a placeholder value: the chart never deploys a daemon with a credential
nobody chose.
*/}}
{{- define "flagsync.secretFiles" -}}
{{- $creds := include "flagsync.credentials" . | fromYaml }}
{{- $values := .Values.secret.values | default dict }}
{{- $set := dict }}
{{- range $name, $v := $values }}
{{- if $v }}
{{- if not (hasKey $creds $name) }}
{{- fail (printf "secret.values.%s: not a credential flagsync reads (known: %s)" $name (keys $creds | sortAlpha | join ", ")) }}
{{- end }}
{{- $_ := set $set $name $v }}
{{- end }}
{{- end }}
{{- $files := dict }}
{{- if .Values.secret.existingSecret }}
{{- if $set }}
{{- fail "secret: set either secret.existingSecret or secret.values, not both" }}
{{- end }}
{{- range $name, $c := $creds }}
{{- $key := index ($.Values.secret.keys | default dict) $name }}
{{- if $key }}
{{- $_ := set $files $c.env $key }}
{{- end }}
{{- end }}
{{- else if $set }}
{{- /* flagsync run refuses the same list (placeholderSecrets in cmd/flagsync; a test keeps them equal) */}}
{{- $placeholders := list "replace-me" "replaceme" "changeme" "change-me" "placeholder" "todo" "xxx" "example" }}
{{- range $name, $v := $set }}
{{- if has (lower (trim (toString $v))) $placeholders }}
{{- fail (printf "secret.values.%s: %q is a placeholder, not a credential" $name (toString $v)) }}
{{- end }}
{{- $_ := set $files (get $creds $name).env (get $creds $name).key }}
{{- end }}
{{- else }}
{{- fail "secret: no credentials configured. Set secret.existingSecret to the name of a Secret holding kameleoon-client-id, kameleoon-client-secret and the other keys of secret.keys (recommended), or secret.values to have the chart create one. The chart ships no placeholder Secret." }}
{{- end }}
{{- toYaml $files }}
{{- end }}

{{/* Checks across values that the schema cannot express. */}}
{{- define "flagsync.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail (printf "replicaCount: %d replicas need leaderElection.enabled=true: without it every replica syncs and writes to Kameleoon, and together they exceed the account's API budget" (int .Values.replicaCount)) }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (ge (int .Values.podDisruptionBudget.minAvailable) (int .Values.replicaCount)) }}
{{- fail (printf "podDisruptionBudget.minAvailable: %d with replicaCount %d would block every voluntary eviction (node drains); run more replicas (with leader election) or lower minAvailable" (int .Values.podDisruptionBudget.minAvailable) (int .Values.replicaCount)) }}
{{- end }}
{{- if and .Values.admin.enabled (eq (int .Values.admin.port) (int .Values.port)) }}
{{- fail "admin.port: must differ from port (the webhook port)" }}
{{- end }}
{{- $_ := required "config.repo: set the Git repository of the flag files, e.g. https://github.com/acme/feature-flags.git" .Values.config.repo }}
{{- end }}

{{/* Name of the Lease of leader election. */}}
{{- define "flagsync.leaseName" -}}
{{- default (include "flagsync.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* Name of the port /metrics is served on. */}}
{{- define "flagsync.metricsPort" -}}
{{- if .Values.admin.enabled }}admin{{ else }}http{{ end }}
{{- end }}

{{/* Number of the port /metrics is served on. */}}
{{- define "flagsync.metricsPortNumber" -}}
{{- if .Values.admin.enabled }}{{ .Values.admin.port }}{{ else }}{{ .Values.port }}{{ end }}
{{- end }}
