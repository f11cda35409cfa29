{{/* Names and labels. */}}
{{- define "prox-stream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "prox-stream.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "prox-stream.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "prox-stream.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Name of one component's objects; call with (dict "root" $ "component" "executor"). */}}
{{- define "prox-stream.componentName" -}}
{{- printf "%s-%s" (include "prox-stream.fullname" .root | trunc 40 | trimSuffix "-") .component }}
{{- end }}

{{- define "prox-stream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "prox-stream.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "prox-stream.labels" -}}
{{ include "prox-stream.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: prox-stream
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "prox-stream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "prox-stream.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "prox-stream.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}

{{/*
The three streaming services: CLI name and the topics (keys of .Values.topics.names) each consumes.
*/}}
{{- define "prox-stream.streamingServices" -}}
docRefiner:
  name: doc-refiner
  inputTopics: [raw]
  usesModelServer: true
chunkRefiner:
  name: chunk-refiner
  inputTopics: [kept]
  usesModelServer: true
executor:
  name: executor
  inputTopics: [docPrograms, chunkPrograms]
  usesModelServer: false
{{- end }}

{{/* Kafka connection. */}}
{{- define "prox-stream.kafkaBootstrap" -}}
{{- if .Values.kafka.embedded.enabled }}
{{- printf "%s:%d" (include "prox-stream.componentName" (dict "root" . "component" "kafka")) (int .Values.kafka.embedded.port) }}
{{- else }}
{{- required "kafka.bootstrapServers is required unless kafka.embedded.enabled" .Values.kafka.bootstrapServers }}
{{- end }}
{{- end }}

{{- define "prox-stream.kafkaProtocol" -}}
{{- if .Values.kafka.embedded.enabled }}PLAINTEXT{{ else }}{{ .Values.kafka.securityProtocol }}{{ end }}
{{- end }}

{{- define "prox-stream.kafkaUsesSasl" -}}
{{- if hasPrefix "SASL_" (include "prox-stream.kafkaProtocol" .) }}true{{ end }}
{{- end }}

{{- define "prox-stream.kafkaUsesTls" -}}
{{- if has (include "prox-stream.kafkaProtocol" .) (list "SSL" "SASL_SSL") }}true{{ end }}
{{- end }}

{{- define "prox-stream.saslSecretName" -}}
{{- default (printf "%s-kafka-sasl" (include "prox-stream.fullname" .)) .Values.kafka.sasl.existingSecret }}
{{- end }}

{{- define "prox-stream.tlsSecretName" -}}
{{- default (printf "%s-kafka-tls" (include "prox-stream.fullname" .)) .Values.kafka.tls.existingSecret }}
{{- end }}

{{- define "prox-stream.kafkaTlsDir" -}}/etc/prox/kafka-tls{{- end }}

{{/* PROX_KAFKA_* environment variables, credentials read from Secrets. */}}
{{- define "prox-stream.kafkaEnv" -}}
- name: PROX_KAFKA_BOOTSTRAP_SERVERS
  value: {{ include "prox-stream.kafkaBootstrap" . | quote }}
- name: PROX_KAFKA_SECURITY_PROTOCOL
  value: {{ include "prox-stream.kafkaProtocol" . | quote }}
- name: PROX_KAFKA_IDEMPOTENT
  value: {{ .Values.kafka.idempotent | quote }}
{{- if include "prox-stream.kafkaUsesSasl" . }}
- name: PROX_KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
- name: PROX_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "prox-stream.saslSecretName" . }}
      key: {{ .Values.kafka.sasl.usernameKey }}
- name: PROX_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "prox-stream.saslSecretName" . }}
      key: {{ .Values.kafka.sasl.passwordKey }}
{{- end }}
{{- if include "prox-stream.kafkaUsesTls" . }}
- name: PROX_KAFKA_SSL_CAFILE
  value: {{ printf "%s/%s" (include "prox-stream.kafkaTlsDir" .) .Values.kafka.tls.caKey | quote }}
{{- if .Values.kafka.tls.clientAuth }}
- name: PROX_KAFKA_SSL_CERTFILE
  value: {{ printf "%s/%s" (include "prox-stream.kafkaTlsDir" .) .Values.kafka.tls.certKey | quote }}
- name: PROX_KAFKA_SSL_KEYFILE
  value: {{ printf "%s/%s" (include "prox-stream.kafkaTlsDir" .) .Values.kafka.tls.keyKey | quote }}
{{- end }}
{{- end }}
{{- end }}

{{- define "prox-stream.topicEnv" -}}
{{- range $key, $topic := .Values.topics.names }}
- name: {{ printf "PROX_TOPICS_%s" ($key | snakecase | upper) }}
  value: {{ $topic | quote }}
{{- end }}
{{- end }}

{{/* Volumes every pod gets: a writable /tmp, plus the Kafka TLS files when TLS is on. */}}
{{- define "prox-stream.commonVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolumeSizeLimit }}
{{- if include "prox-stream.kafkaUsesTls" . }}
- name: kafka-tls
  secret:
    secretName: {{ include "prox-stream.tlsSecretName" . }}
    defaultMode: 0440
{{- end }}
{{- end }}

{{- define "prox-stream.commonVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if include "prox-stream.kafkaUsesTls" . }}
- name: kafka-tls
  mountPath: {{ include "prox-stream.kafkaTlsDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "prox-stream.podSecurity" -}}
serviceAccountName: {{ include "prox-stream.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* name: value map to an env list. */}}
{{- define "prox-stream.envFromMap" -}}
{{- range $name, $value := . }}
- name: {{ $name }}
  {{- /* YAML numbers arrive as float64; print integers without an exponent. */}}
  value: {{ ternary (int64 $value) $value (and (kindIs "float64" $value) (eq (float64 (int64 $value)) $value)) | toString | quote }}
{{- end }}
{{- end }}

{{/* gRPC address of the model server the refiners call. */}}
{{- define "prox-stream.tritonUrl" -}}
{{- if .Values.modelServer.enabled }}
{{- printf "%s:%d" (include "prox-stream.componentName" (dict "root" . "component" "model-server")) (int .Values.modelServer.ports.grpc) }}
{{- else }}
{{- required "modelServer.externalUrl is required when modelServer.enabled is false" .Values.modelServer.externalUrl }}
{{- end }}
{{- end }}

{{/* NetworkPolicy rules shared by several components. */}}
{{- define "prox-stream.netpol.dns" -}}
- ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- end }}
{{- define "prox-stream.netpol.kafkaEgress" -}}
- ports:
  {{- if .Values.kafka.embedded.enabled }}
    - {port: {{ .Values.kafka.embedded.port }}, protocol: TCP}
  to:
    - podSelector:
        matchLabels:
          {{- include "prox-stream.selectorLabels" (dict "root" . "component" "kafka") | nindent 10 }}
  {{- else }}
    {{- range .Values.kafka.ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
  {{- with .Values.kafka.networkPolicyPeers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- end }}
{{- end }}
{{- define "prox-stream.netpol.fromPrometheus" -}}
- ports:
    - {port: {{ .port }}, protocol: TCP}
  from:
    - namespaceSelector:
        {{- toYaml .root.Values.networkPolicy.prometheus.namespaceSelector | nindent 8 }}
      podSelector:
        {{- toYaml .root.Values.networkPolicy.prometheus.podSelector | nindent 8 }}
{{- end }}
