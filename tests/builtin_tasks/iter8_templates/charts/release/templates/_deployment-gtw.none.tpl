{{- define "env.deployment-gtw.none" }}

{{- /* routemap */}}
{{ include "env.deployment-gtw.none.routemap" . }}

{{- end }} {{- /* define "env.deployment-gtw.none" */}}