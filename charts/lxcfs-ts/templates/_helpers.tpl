{{/*
Names are fixed, not derived from the release name: the webhook looks for its configuration, Service,
Secret and Lease under these names, and the agent owns a directory on every node, so there is one
release of this chart per cluster.
*/}}

{{/* Labels of every object: the ones deploy/ sets, Helm's own, and commonLabels. */}}
{{- define "lxcfs-ts.labels" -}}
app.kubernetes.io/name: lxcfs-ts
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* metadata of an object: name, namespace (unless cluster-scoped), labels, annotations. */}}
{{- define "lxcfs-ts.metadata" -}}
name: {{ .name }}
{{- if not .clusterScoped }}
namespace: {{ .root.Release.Namespace }}
{{- end }}
labels:
  {{- include "lxcfs-ts.labels" . | nindent 2 }}
{{- with (merge (dict) (.annotations | default dict) .root.Values.commonAnnotations) }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Selector of a component's pods (never changes: selectors are immutable). */}}
{{- define "lxcfs-ts.selectorLabels" -}}
app.kubernetes.io/name: lxcfs-ts
app.kubernetes.io/component: {{ . }}
{{- end }}

{{/* Labels of a component's pods: the selector, commonLabels and the component's podLabels. */}}
{{- define "lxcfs-ts.podLabels" -}}
{{- include "lxcfs-ts.selectorLabels" .component }}
{{- with (merge (dict) .values.podLabels .root.Values.commonLabels) }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "lxcfs-ts.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* imagePullPolicy, only when set (else Kubernetes' default applies). */}}
{{- define "lxcfs-ts.pullPolicy" -}}
{{- with .Values.image.pullPolicy }}
imagePullPolicy: {{ . }}
{{- end }}
{{- end }}

{{- define "lxcfs-ts.pullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* The agent's mountpoint. */}}
{{- define "lxcfs-ts.viewDir" -}}
{{- $default := "/var/lib/lxcfs-ts/lxcfs" -}}
{{- if .Values.agent.legacyLxcfsLayout -}}
{{- if not (has .Values.agent.viewDir (list $default "/var/lib/lxcfs")) -}}
{{- fail (printf "agent.legacyLxcfsLayout puts the view at /var/lib/lxcfs; leave agent.viewDir unset (it is %s)" .Values.agent.viewDir) -}}
{{- end -}}
/var/lib/lxcfs
{{- else -}}
{{- $dir := .Values.agent.viewDir | trimSuffix "/" -}}
{{- if has (dir $dir) (list "/" "/var" "/var/lib" "/run" "/var/run" "/tmp" "/etc" "/usr" "/opt" "/home" "/root" "/mnt" "/srv") -}}
{{- fail (printf "agent.viewDir %s: its parent %s would be shared with the host and mounted into every pod; use a directory of its own, like /var/lib/lxcfs-ts/lxcfs (or agent.legacyLxcfsLayout: true for LXCFS's /var/lib/lxcfs)" $dir (dir $dir)) -}}
{{- end -}}
{{- $dir -}}
{{- end -}}
{{- end }}

{{/* The host directory the agent shares with the host (Bidirectional): the mountpoint's parent. */}}
{{- define "lxcfs-ts.viewParent" -}}
{{- dir (include "lxcfs-ts.viewDir" .) -}}
{{- end }}

{{/* Namespaces never injected, as the webhook computes them: kube-system, its own, then the configured ones. */}}
{{- define "lxcfs-ts.excludedNamespaces" -}}
{{- toJson (uniq (concat (list "kube-system" .Release.Namespace) .Values.webhook.excludedNamespaces)) -}}
{{- end }}
