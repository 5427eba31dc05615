{{/*
Names and labels shared by every object of the chart.
*/}}

{{/* The chart's name, or nameOverride. */}}
{{- define "wharf.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The objects' name: fullnameOverride, else the release name, with the
chart's name appended unless the release name already contains it. 63
characters at most, the limit of a DNS label.
*/}}
{{- define "wharf.fullname" -}}
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

{{/* The labels that select the pod: they never change over upgrades. */}}
{{- define "wharf.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wharf.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Every object's labels. */}}
{{- define "wharf.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "wharf.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Where the secrets are mounted in the container: the config names these
files, so the paths are defined once, here.
*/}}
{{- define "wharf.htpasswdDir" -}}/run/secrets/wharf/auth{{- end }}
{{- define "wharf.upstreamDir" -}}/run/secrets/wharf/upstream{{- end }}

{{/* Whether wharf has users: an htpasswd file from the values or a Secret. */}}
{{- define "wharf.htpasswdOn" -}}
{{- if or .Values.auth.htpasswd .Values.auth.existingSecret }}true{{ end }}
{{- end }}

{{/* Whether wharf has an upstream password: from the values or a Secret. */}}
{{- define "wharf.upstreamPasswordOn" -}}
{{- if or .Values.upstreamCredentials.password .Values.upstreamCredentials.existingSecret }}true{{ end }}
{{- end }}

{{/* Whether the chart creates its own Secret. */}}
{{- define "wharf.ownSecret" -}}
{{- if or (and .Values.auth.htpasswd (not .Values.auth.existingSecret)) (and .Values.upstreamCredentials.password (not .Values.upstreamCredentials.existingSecret)) (and .Values.s3.secretKey (not .Values.s3.existingSecret)) (and .Values.cluster.enabled .Values.cluster.secret (not .Values.cluster.existingSecret)) }}true{{ end }}
{{- end }}

{{/*
wharf's config file: .Values.config with the keys that must agree with
the pod set by the chart. Those keys are refused in .Values.config, so a
value that would be silently overwritten is an error instead.
*/}}
{{- define "wharf.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $owned := dict "listen" "containerPort" "storage.dir" "persistence.mountPath" "auth.htpasswd" "auth.htpasswd or auth.existingSecret" "upstream.username" "upstreamCredentials.username" "upstream.password" "upstreamCredentials.password or upstreamCredentials.existingSecret" "upstream.passwordFile" "upstreamCredentials.password or upstreamCredentials.existingSecret" }}
{{- range $key, $from := $owned }}
{{- $path := splitList "." $key }}
{{- $parent := $cfg }}
{{- if eq (len $path) 2 }}
{{- $parent = get $cfg (first $path) | default dict }}
{{- end }}
{{- if hasKey $parent (last $path) }}
{{- fail (printf "config.%s is set by the chart: use %s" $key $from) }}
{{- end }}
{{- end }}
{{- if hasKey $cfg "cluster" }}
{{- fail "config.cluster is set by the chart: use cluster.enabled, cluster.port and cluster.secret or cluster.existingSecret" }}
{{- end }}
{{- $s3 := get (get $cfg "storage" | default dict) "s3" | default dict }}
{{- range $key, $from := dict "endpoint" "s3.endpoint" "bucket" "s3.bucket" "region" "s3.region" "pathStyle" "s3.pathStyle" "accessKey" "s3.accessKey or s3.existingSecret" "secretKey" "s3.secretKey or s3.existingSecret" "secretKeyFile" "s3.secretKey or s3.existingSecret" "iamRole" "s3.iamRole" }}
{{- if hasKey $s3 $key }}
{{- fail (printf "config.storage.s3.%s is set by the chart: use %s" $key $from) }}
{{- end }}
{{- end }}
{{- if hasKey $s3 "sessionToken" }}
{{- fail "config.storage.s3.sessionToken would sit in the ConfigMap in plain text, and temporary keys expire unrenewed: use s3.iamRole" }}
{{- end }}
{{- if and .Values.s3.iamRole (not (and .Values.s3.endpoint .Values.s3.bucket)) }}
{{- fail "s3.iamRole needs the store it signs for: set s3.endpoint and s3.bucket" }}
{{- end }}
{{- if and .Values.serviceAccount.annotations (not .Values.serviceAccount.create) }}
{{- fail "serviceAccount.annotations go on the ServiceAccount the chart creates: set serviceAccount.create" }}
{{- end }}
{{- if .Values.cluster.enabled }}
{{- if not (and .Values.s3.endpoint .Values.s3.bucket) }}
{{- fail "cluster.enabled needs the S3 store the replicas share: set s3.endpoint and s3.bucket" }}
{{- end }}
{{- if not (or .Values.cluster.existingSecret (ge (len .Values.cluster.secret) 16)) }}
{{- fail "cluster.enabled needs a cluster secret of at least 16 bytes: set cluster.secret or cluster.existingSecret" }}
{{- end }}
{{- end }}
{{- if and .Values.s3.secretKey (not .Values.s3.accessKey) }}
{{- fail "s3.secretKey needs s3.accessKey" }}
{{- end }}
{{- if and .Values.s3.iamRole (or .Values.s3.accessKey (include "wharf.s3KeysOn" .)) }}
{{- fail "s3.iamRole takes the pod's role instead of keys: unset s3.accessKey, s3.secretKey and s3.existingSecret" }}
{{- end }}
{{- $_ := set $cfg "listen" (printf ":%v" .Values.containerPort) }}
{{- $storage := get $cfg "storage" | default dict }}
{{- $_ = set $storage "dir" .Values.persistence.mountPath }}
{{- if .Values.s3.endpoint }}
{{- $_ = set $s3 "endpoint" .Values.s3.endpoint }}
{{- $_ = set $s3 "bucket" .Values.s3.bucket }}
{{- with .Values.s3.region }}
{{- $_ = set $s3 "region" . }}
{{- end }}
{{- if .Values.s3.pathStyle }}
{{- $_ = set $s3 "pathStyle" true }}
{{- end }}
{{- if include "wharf.s3KeysOn" . }}
{{- $_ = set $s3 "secretKeyFile" (printf "%s/secret-key" (include "wharf.s3Dir" .)) }}
{{- end }}
{{- if .Values.s3.iamRole }}
{{- $_ = set $s3 "iamRole" true }}
{{- end }}
{{- $_ = set $storage "s3" $s3 }}
{{- end }}
{{- $_ = set $cfg "storage" $storage }}
{{- if .Values.cluster.enabled }}
{{- $_ = set $cfg "cluster" (dict "listen" (printf ":%v" .Values.cluster.port) "dns" (printf "%s-peers.%s.svc.cluster.local:%v" (include "wharf.fullname" .) .Release.Namespace .Values.cluster.port) "secretFile" (printf "%s/secret" (include "wharf.clusterDir" .))) }}
{{- end }}
{{- if include "wharf.htpasswdOn" . }}
{{- $auth := get $cfg "auth" | default dict }}
{{- $_ = set $auth "htpasswd" (printf "%s/htpasswd" (include "wharf.htpasswdDir" .)) }}
{{- $_ = set $cfg "auth" $auth }}
{{- end }}
{{- $upstream := get $cfg "upstream" | default dict }}
{{- with .Values.upstreamCredentials.username }}
{{- $_ = set $upstream "username" . }}
{{- end }}
{{- if include "wharf.upstreamPasswordOn" . }}
{{- $_ = set $upstream "passwordFile" (printf "%s/password" (include "wharf.upstreamDir" .)) }}
{{- end }}
{{- if $upstream }}
{{- $_ = set $cfg "upstream" $upstream }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{- define "wharf.s3Dir" -}}/run/secrets/wharf/s3{{- end }}
{{- define "wharf.clusterDir" -}}/run/secrets/wharf/cluster{{- end }}

{{/*
The pods' ServiceAccount: the one the chart creates, one named, or ""
for the namespace's default.
*/}}
{{- define "wharf.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- .Values.serviceAccount.name | default (include "wharf.fullname" .) }}
{{- else }}
{{- .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Whether wharf has S3 keys: from the values or a Secret. */}}
{{- define "wharf.s3KeysOn" -}}
{{- if or .Values.s3.secretKey .Values.s3.existingSecret }}true{{ end }}
{{- end }}

{{/*
The container's resources; in cluster mode the local tier's emptyDir is
reserved on the node as ephemeral storage.
*/}}
{{- define "wharf.resources" -}}
{{- $res := deepCopy (.Values.resources | default dict) }}
{{- if .Values.cluster.enabled }}
{{- $req := get $res "requests" | default dict }}
{{- $_ := set $req "ephemeral-storage" .Values.cluster.localTierSize }}
{{- $_ = set $res "requests" $req }}
{{- end }}
{{- if $res }}{{ toYaml $res }}{{ end }}
{{- end }}
