{{- define "env.deployment-gtw.canary" }}

{{- /* routemap */}}
{{ include "env.deployment-gtw.canary.routemap" . }}

{{- end }} {{- /* define "env.deployment-gtw.canary" */}}