{{- /*
The pod of the StatefulSet (one wharf) and of the Deployment (cluster
mode): one definition, so both modes run the same hardened container.
*/}}
{{- define "wharf.podTemplate" -}}
metadata:
  labels:
    {{- include "wharf.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # A changed config file (or a password, read at start) rolls the pod.
    checksum/config: {{ include "wharf.config" . | sha256sum }}
    {{- if include "wharf.ownSecret" . }}
    checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with include "wharf.serviceAccountName" . }}
  serviceAccountName: {{ . }}
  {{- end }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: wharf
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args: ["serve", "--config", "/etc/wharf/config.yaml"]
      ports:
        - name: registry
          containerPort: {{ .Values.containerPort }}
          protocol: TCP
        {{- if .Values.cluster.enabled }}
        - name: peer
          containerPort: {{ .Values.cluster.port }}
          protocol: TCP
        {{- end }}
      {{- if or .Values.cluster.enabled (include "wharf.s3KeysOn" .) }}
      env:
        {{- if .Values.cluster.enabled }}
        - name: POD_IP
          valueFrom:
            fieldRef:
              fieldPath: status.podIP
        # This replica's peer address as the others reach it: the
        # headless Service resolves to the pods' IPs.
        - name: WHARF_CLUSTER_SELF
          value: "$(POD_IP):{{ .Values.cluster.port }}"
        {{- end }}
        {{- if include "wharf.s3KeysOn" . }}
        - name: WHARF_STORAGE_S3_ACCESS_KEY
          valueFrom:
            secretKeyRef:
              name: {{ .Values.s3.existingSecret | default (include "wharf.fullname" .) }}
              key: {{ ternary .Values.s3.existingSecretAccessKeyKey "s3-access-key" (ne .Values.s3.existingSecret "") }}
        {{- end }}
      {{- end }}
      {{- with include "wharf.resources" . }}
      resources:
        {{- . | nindent 8 }}
      {{- end }}
      {{- with .Values.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      startupProbe:
        httpGet:
          path: /healthz
          port: registry
        {{- toYaml .Values.probes.startup | nindent 8 }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: registry
        {{- toYaml .Values.probes.liveness | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /healthz
          port: registry
        {{- toYaml .Values.probes.readiness | nindent 8 }}
      volumeMounts:
        - name: data
          mountPath: {{ .Values.persistence.mountPath }}
        - name: config
          mountPath: /etc/wharf
          readOnly: true
        {{- if include "wharf.htpasswdOn" . }}
        - name: auth
          mountPath: {{ include "wharf.htpasswdDir" . }}
          readOnly: true
        {{- end }}
        {{- if include "wharf.upstreamPasswordOn" . }}
        - name: upstream-credentials
          mountPath: {{ include "wharf.upstreamDir" . }}
          readOnly: true
        {{- end }}
        {{- if include "wharf.s3KeysOn" . }}
        - name: s3-credentials
          mountPath: {{ include "wharf.s3Dir" . }}
          readOnly: true
        {{- end }}
        {{- if .Values.cluster.enabled }}
        - name: cluster-secret
          mountPath: {{ include "wharf.clusterDir" . }}
          readOnly: true
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "wharf.fullname" . }}
    {{- if include "wharf.htpasswdOn" . }}
    - name: auth
      secret:
        secretName: {{ .Values.auth.existingSecret | default (include "wharf.fullname" .) }}
        items:
          - key: {{ ternary .Values.auth.existingSecretKey "htpasswd" (ne .Values.auth.existingSecret "") }}
            path: htpasswd
    {{- end }}
    {{- if include "wharf.upstreamPasswordOn" . }}
    - name: upstream-credentials
      secret:
        secretName: {{ .Values.upstreamCredentials.existingSecret | default (include "wharf.fullname" .) }}
        items:
          - key: {{ ternary .Values.upstreamCredentials.existingSecretKey "password" (ne .Values.upstreamCredentials.existingSecret "") }}
            path: password
    {{- end }}
    {{- if include "wharf.s3KeysOn" . }}
    - name: s3-credentials
      secret:
        secretName: {{ .Values.s3.existingSecret | default (include "wharf.fullname" .) }}
        items:
          - key: {{ ternary .Values.s3.existingSecretSecretKeyKey "s3-secret-key" (ne .Values.s3.existingSecret "") }}
            path: secret-key
    {{- end }}
    {{- if .Values.cluster.enabled }}
    - name: cluster-secret
      secret:
        secretName: {{ .Values.cluster.existingSecret | default (include "wharf.fullname" .) }}
        items:
          - key: {{ ternary .Values.cluster.existingSecretKey "cluster-secret" (ne .Values.cluster.existingSecret "") }}
            path: secret
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- if .Values.cluster.enabled }}
    # The local tier, lost with the pod and refilled from the bucket and
    # the peers. Past sizeLimit the kubelet evicts the pod: keep
    # config.storage.maxSize below it.
    - name: data
      emptyDir:
        sizeLimit: {{ .Values.cluster.localTierSize }}
    {{- else if not .Values.persistence.enabled }}
    # The cache is lost with the pod: persistence.enabled is false.
    - name: data
      emptyDir: {}
    {{- end }}
{{- end }}
