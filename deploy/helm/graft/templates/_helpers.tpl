{{/* Base name of every object; cluster-scoped objects carry it too, so two releases never clash. */}}
{{- define "graft.fullname" -}}
{{- if contains "graft" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-graft" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "graft.labels" -}}
app.kubernetes.io/name: graft
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "graft.selector" -}}
app.kubernetes.io/name: graft
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "graft.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "graft.pullSecretsNamespace" -}}
{{ .Values.manager.pullSecretsNamespace | default .Release.Namespace }}
{{- end -}}

{{- define "graft.nodeImageManager" -}}
{{- if kindIs "bool" .Values.manager.nodeImageManager -}}
{{ .Values.manager.nodeImageManager }}
{{- else -}}
{{ empty .Values.manager.watchNamespace }}
{{- end -}}
{{- end -}}

{{- define "graft.webhookSecretName" -}}
{{ .Values.webhook.existingSecret | default (printf "%s-webhook" (include "graft.fullname" .)) }}
{{- end -}}

{{- define "graft.dashboardSecretName" -}}
{{ .Values.dashboard.existingSecret | default (printf "%s-dashboard" (include "graft.fullname" .)) }}
{{- end -}}

{{/* Namespaced rules of the manager: controllers, GitSync controller, dashboard. */}}
{{- define "graft.managerNamespacedRules" -}}
# CloneSet, Advanced StatefulSet, ContainerRecreateRequest, ImagePullJob, BroadcastJob and
# AdvancedCronJob controllers (SidecarSets are cluster-scoped: the ClusterRole has them). The
# finalizers subresources: pods, PVCs and jobs name their owner as one that blocks its deletion.
- apiGroups: [apps.kruise.io]
  resources: [clonesets, containerrecreaterequests, imagepulljobs, statefulsets, broadcastjobs, advancedcronjobs]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [apps.kruise.io]
  resources: [clonesets/status, containerrecreaterequests/status, imagepulljobs/status, clonesets/finalizers, statefulsets/status, statefulsets/finalizers, broadcastjobs/status, broadcastjobs/finalizers, advancedcronjobs/status, advancedcronjobs/finalizers]
  verbs: [get, update, patch]
# The Jobs of AdvancedCronJobs with a jobTemplate.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, update, patch, delete]
# Pods of CloneSets, Advanced StatefulSets and BroadcastJobs: created, deleted, patched in place,
# readiness gates in their status, resources resized in place.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [""]
  resources: [pods/status, pods/resize]
  verbs: [get, update, patch]
# CloneSet and Advanced StatefulSet volumeClaimTemplates (and their retention owners).
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, list, watch, create, update, patch, delete]
# Advanced StatefulSet PVC expansion (volumeClaimUpdateStrategy: OnPodRollingUpdate) and its
# apply-time validation read the storage classes' allowVolumeExpansion.
- apiGroups: [storage.k8s.io]
  resources: [storageclasses]
  verbs: [get, list, watch]
# Revisions of CloneSets and Advanced StatefulSets (orphans are adopted).
- apiGroups: [apps]
  resources: [controllerrevisions]
  verbs: [get, list, watch, create, update, patch, delete]
# The dashboard follows the workloads the sync applies; the PodUnavailableBudget webhook finds
# a pod's Deployment through its ReplicaSet.
- apiGroups: [apps]
  resources: [deployments, statefulsets, daemonsets, replicasets]
  verbs: [get, list, watch]
# PodUnavailableBudgets: the pod webhook reads them and spends their budget in the status.
- apiGroups: [policy.kruise.io]
  resources: [podunavailablebudgets]
  verbs: [get, list, watch]
- apiGroups: [policy.kruise.io]
  resources: [podunavailablebudgets/status]
  verbs: [get, update, patch]
# Events: written by the controllers, read by the dashboard.
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [get, list, watch, create, update, patch]
# GitSync credentials and ImagePullJob pull secrets (read where they are).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
# The sync's state ConfigMaps.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, update, patch, delete]
# GitSyncs: the controller writes their status; webhooks annotate them.
- apiGroups: [graft.dev]
  resources: [gitsyncs]
  verbs: [get, list, watch, update, patch]
- apiGroups: [graft.dev]
  resources: [gitsyncs/status]
  verbs: [get, update, patch]
{{- end -}}
