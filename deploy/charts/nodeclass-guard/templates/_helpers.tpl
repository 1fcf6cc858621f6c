{{/*
nodeclass-guard.name is the chart name, overridable, for the name label.
*/}}
{{- define "nodeclass-guard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
nodeclass-guard.fullname names every object. With the release named
nodeclass-guard (the documented install) it is "nodeclass-guard", the name the
kustomize base uses.
*/}}
{{- define "nodeclass-guard.fullname" -}}
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

{{/*
nodeclass-guard.namespace is where the namespaced objects go: the release
namespace. Install with --namespace nodeclass-guard --create-namespace to
match the kustomize base.
*/}}
{{- define "nodeclass-guard.namespace" -}}
{{- default "nodeclass-guard" .Release.Namespace }}
{{- end }}

{{/*
nodeclass-guard.selectorLabels select the webhook pods; they never change
after install (a Deployment's selector is immutable).
*/}}
{{- define "nodeclass-guard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nodeclass-guard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
nodeclass-guard.labels go on every object.
*/}}
{{- define "nodeclass-guard.labels" -}}
{{ include "nodeclass-guard.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ include "nodeclass-guard.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
nodeclass-guard.serviceAccountName is the service account the pods run as.
*/}}
{{- define "nodeclass-guard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nodeclass-guard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
nodeclass-guard.imageTag is image.tag, or the chart's appVersion.
*/}}
{{- define "nodeclass-guard.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
nodeclass-guard.servingCertificate names the cert-manager Certificate whose CA
is injected into the webhook configuration.
*/}}
{{- define "nodeclass-guard.servingCertificate" -}}
{{- printf "%s-serving" (include "nodeclass-guard.fullname" .) }}
{{- end }}

{{/*
nodeclass-guard.tlsSecret names the Secret holding the serving certificate.
*/}}
{{- define "nodeclass-guard.tlsSecret" -}}
{{- printf "%s-tls" (include "nodeclass-guard.fullname" .) }}
{{- end }}

{{/*
nodeclass-guard.metricsPortName names the Service's metrics port:
https-metrics with metrics.secure, so that the port says what it speaks, to
people and to tools that choose the protocol from the name (service meshes).
*/}}
{{- define "nodeclass-guard.metricsPortName" -}}
{{- if .Values.metrics.secure }}https-metrics{{ else }}metrics{{ end }}
{{- end }}

{{/*
nodeclass-guard.metricsCertDir is where controller-runtime's metrics server
looks for tls.crt and tls.key when serve sets no certificate directory of its
own: <os.TempDir()>/k8s-metrics-server/serving-certs, and TMPDIR is unset in
the image. With metrics.secure the serving certificate's Secret is mounted
there too.
*/}}
{{- define "nodeclass-guard.metricsCertDir" -}}
/tmp/k8s-metrics-server/serving-certs
{{- end }}
