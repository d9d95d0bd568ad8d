{{- define "task.github" -}}
{{- /* Validate values */ -}}
{{- if not . }}
{{- fail "github notify values object is nil" }}
{{- end }}
{{- if not .owner }}
{{- fail "please set a value for the owner parameter" }}
{{- end }}
{{- if not .repo }}
{{- fail "please set a value for the repo parameter" }}
{{- end }}
{{- if not .token }}
{{- fail "please set a value for the token parameter" }}
{{- end }}
# task: send a GitHub notification
- task: notify
  with:
    url: https://api.github.com/repos/{{ .owner }}/{{ .repo }}/dispatches
    method: POST
    headers:
      Authorization: token {{ .token }}
      Accept: application/vnd.github+json
    payloadTemplateURL: {{ default "https://raw.githubusercontent.com/iter8-tools/iter8/v0.16.5/templates/notify/_payload-github.tpl" .payloadTemplateURL }}
    softFailure: {{ default true .softFailure }}
{{ end }}