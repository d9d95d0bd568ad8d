{{- define "env.kserve.none" }}

{{- /* routemap */}}
{{ include "env.kserve.none.routemap" . }}

{{- end }} {{- /* define "env.kserve.none" */}}