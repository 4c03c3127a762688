{{/* Names ---------------------------------------------------------------------------------- */}}

{{- define "cratedb-restore.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cratedb-restore.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "cratedb-restore.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cratedb-restore.webhookName" -}}
{{- printf "%s-webhook" (include "cratedb-restore.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cratedb-restore.serviceName" -}}
{{- include "cratedb-restore.webhookName" . -}}
{{- end -}}

{{- define "cratedb-restore.webhookServiceAccountName" -}}
{{- default (include "cratedb-restore.webhookName" .) .Values.webhook.serviceAccount.name -}}
{{- end -}}

{{- define "cratedb-restore.jobServiceAccountName" -}}
{{- .Values.restoreJob.serviceAccount.name -}}
{{- end -}}

{{- define "cratedb-restore.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "cratedb-restore.webhookName" .)) .Values.tls.secretName -}}
{{- end -}}

{{- define "cratedb-restore.jobTemplateName" -}}
{{- printf "%s-job-template" (include "cratedb-restore.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels --------------------------------------------------------------------------------- */}}

{{- define "cratedb-restore.labels" -}}
helm.sh/chart: {{ include "cratedb-restore.chart" . }}
app.kubernetes.io/name: {{ include "cratedb-restore.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cratedb
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "cratedb-restore.webhookSelectorLabels" -}}
app.kubernetes.io/name: {{ include "cratedb-restore.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}

{{/* Images ---------------------------------------------------------------------------------- */}}

{{- define "cratedb-restore.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "cratedb-restore.jobImage" -}}
{{- $repo := default .Values.image.repository .Values.restoreJob.image.repository -}}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.restoreJob.image.tag -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* Restore namespaces ----------------------------------------------------------------------
Normalises restoreJob.namespaces (strings or {name, clusters}) into a YAML list of
{name, clusters} and rejects duplicates. Use with fromYaml: (include ... | fromYaml).items */}}

{{- define "cratedb-restore.restoreNamespaces" -}}
{{- $seen := dict -}}
{{- $items := list -}}
{{- /* Without a list, restores run in the release namespace: the defaults give a working install. */ -}}
{{- range (.Values.restoreJob.namespaces | default (list .Release.Namespace)) -}}
{{- $name := "" -}}
{{- $clusters := list -}}
{{- if kindIs "string" . -}}
{{- $name = . -}}
{{- else -}}
{{- $name = .name -}}
{{- $clusters = default (list) .clusters -}}
{{- end -}}
{{- if not $name -}}
{{- fail "restoreJob.namespaces: every item needs a namespace name" -}}
{{- end -}}
{{- if hasKey $seen $name -}}
{{- fail (printf "restoreJob.namespaces: namespace %q is listed twice" $name) -}}
{{- end -}}
{{- $_ := set $seen $name true -}}
{{- $items = append $items (dict "name" $name "clusters" $clusters) -}}
{{- end -}}
{{- toYaml (dict "items" $items) -}}
{{- end -}}

{{/* Webhook scope ---------------------------------------------------------------------------- */}}

{{- /* The webhooks only ever match cratedbs, so the release namespace needs no exclusion (and a
CrateDB resource there is restored like anywhere else). */ -}}
{{- define "cratedb-restore.excludedNamespaces" -}}
{{- $excluded := list -}}
{{- range .Values.webhook.excludeNamespaces -}}
{{- if not (has . $excluded) -}}
{{- $excluded = append $excluded . -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "items" $excluded) -}}
{{- end -}}

{{- /* The namespaces the webhooks leave alone (webhook.excludeNamespaces), unless a custom
namespaceSelector replaces that exclusion. */ -}}
{{- define "cratedb-restore.webhookExcludes" -}}
{{- if not .Values.webhook.namespaceSelector -}}
{{- include "cratedb-restore.excludedNamespaces" . -}}
{{- else -}}
{{- toYaml (dict "items" list) -}}
{{- end -}}
{{- end -}}

{{- /* Kubernetes sets kubernetes.io/metadata.name on every namespace from 1.21 on; below, the
webhook labels the excluded namespaces itself (--label-excluded-namespaces). */ -}}
{{- define "cratedb-restore.setsNamespaceNameLabel" -}}
{{- if semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version -}}true{{- end -}}
{{- end -}}

{{- define "cratedb-restore.namespaceSelector" -}}
{{- if .Values.webhook.namespaceSelector -}}
{{- toYaml .Values.webhook.namespaceSelector -}}
{{- else -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
{{- range (include "cratedb-restore.excludedNamespaces" . | fromYaml).items }}
      - {{ . | quote }}
{{- end }}
{{- end -}}
{{- end -}}

{{/* Consistency checks that the schema cannot express. Included by every webhook template. */}}
{{- define "cratedb-restore.validate" -}}
{{- if ge (int .Values.webhook.kubeTimeoutSeconds) (int .Values.webhook.timeoutSeconds) -}}
{{- fail (printf "webhook.kubeTimeoutSeconds (%v) must be smaller than webhook.timeoutSeconds (%v): the webhook must answer before the API server gives up" .Values.webhook.kubeTimeoutSeconds .Values.webhook.timeoutSeconds) -}}
{{- end -}}
{{- if lt (int .Values.webhook.terminationGracePeriodSeconds) (add (int .Values.webhook.shutdownDelaySeconds) (int .Values.webhook.shutdownGraceSeconds) 2) -}}
{{- fail (printf "webhook.terminationGracePeriodSeconds (%v) must be at least webhook.shutdownDelaySeconds (%v) + webhook.shutdownGraceSeconds (%v) + 2: otherwise the kubelet kills a webhook Pod while it still drains its connections" .Values.webhook.terminationGracePeriodSeconds .Values.webhook.shutdownDelaySeconds .Values.webhook.shutdownGraceSeconds) -}}
{{- end -}}
{{- if and .Values.restoreJob.notifications.url (not .Values.restoreJob.notifications.existingSecret) -}}
{{- fail "restoreJob.notifications.url needs restoreJob.notifications.existingSecret (the Basic-auth username and password are read from a Secret, never from values)" -}}
{{- end -}}
{{- if not .Values.webhook.namespaceSelector -}}
{{- $excluded := (include "cratedb-restore.excludedNamespaces" . | fromYaml).items -}}
{{- range (include "cratedb-restore.restoreNamespaces" . | fromYaml).items -}}
{{- if has .name $excluded -}}
{{- fail (printf "namespace %q is in restoreJob.namespaces but the webhooks ignore it (webhook.excludeNamespaces): restores there would never be checked or run. Remove it from one of the two lists" .name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Certificates ----------------------------------------------------------------------------
The CA, certificate and key of the webhook's serving certificate (base64), as YAML. Reuses the
Secret already in the cluster so that `helm upgrade` keeps the certificate and the caBundle
stable; generates them only when there is none (first install, or `helm template`, where lookup
returns nothing). Include it ONCE per template file: every call without an existing Secret
generates a new CA. */}}

{{- define "cratedb-restore.tls" -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace (include "cratedb-restore.tlsSecretName" .) | default dict -}}
{{- $ca := dig "data" "ca.crt" "" $secret -}}
{{- $crt := dig "data" "tls.crt" "" $secret -}}
{{- $key := dig "data" "tls.key" "" $secret -}}
{{- if and $ca $crt $key -}}
ca: {{ $ca }}
crt: {{ $crt }}
key: {{ $key }}
reused: true
{{- else -}}
{{- $svc := include "cratedb-restore.serviceName" . -}}
{{- $ns := .Release.Namespace -}}
{{- $days := int .Values.tls.validityDays -}}
{{- $dns := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) -}}
{{- $gen := genCA (printf "%s-ca" (include "cratedb-restore.fullname" .)) $days -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc $ns) nil $dns $days $gen -}}
ca: {{ $gen.Cert | b64enc }}
crt: {{ $cert.Cert | b64enc }}
key: {{ $cert.Key | b64enc }}
reused: false
{{- end -}}
{{- end -}}

{{/* Kubernetes version gates. */}}
{{- define "cratedb-restore.supportsMatchConditions" -}}
{{- if semverCompare ">=1.28-0" .Capabilities.KubeVersion.Version -}}true{{- end -}}
{{- end -}}

{{- define "cratedb-restore.supportsPodFailurePolicy" -}}
{{- if semverCompare ">=1.26-0" .Capabilities.KubeVersion.Version -}}true{{- end -}}
{{- end -}}

{{- define "cratedb-restore.pdbApiVersion" -}}
{{- if semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version -}}policy/v1{{- else -}}policy/v1beta1{{- end -}}
{{- end -}}

{{/* "host:port", with brackets around an IPv6 address. Argument: (list address port). */}}
{{- define "cratedb-restore.hostPort" -}}
{{- $addr := index . 0 | toString -}}
{{- $port := index . 1 | int -}}
{{- if contains ":" $addr -}}
{{- printf "[%s]:%d" (trimAll "[]" $addr) $port -}}
{{- else -}}
{{- printf "%s:%d" $addr $port -}}
{{- end -}}
{{- end -}}
