package sink

import (
	"bytes"
	"html/template"
	"net/http"
	"strconv"

	"go.uber.org/zap"
)

// mailboxCSP keeps the pages inert: no script runs, in the page or in a message it shows.
const mailboxCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src 'self'; base-uri 'none'; form-action 'self'"

var mailboxTemplates = template.Must(template.New("layout").Parse(`{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.}} · mail sink</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#f4f4f4}code,pre{font:12px ui-monospace,monospace}pre{white-space:pre-wrap;background:#f8f8f8;padding:.5rem}
iframe{width:100%;height:480px;border:1px solid #ccc}.muted{color:#777}dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}
</style></head><body>{{end}}

{{define "list"}}{{template "head" "Mailbox"}}
<h1>Mailbox</h1>
<p class="muted">{{.List.Total}} shown of {{.List.Stored}} stored; {{.List.Accepted}} accepted since start.
Requests {{.Stats.Requests}}, refused {{.Stats.Rejected}}; webhook events posted {{.Stats.WebhookEvents}}.</p>
<form method="get" action="/sink/"><label>To <input name="to" value="{{.To}}" size="40"></label> <button>Filter</button></form>
<table><thead><tr><th>#</th><th>Accepted</th><th>To</th><th>Subject</th><th>Custom args</th><th>Message ID</th></tr></thead><tbody>
{{range .List.Messages}}<tr>
<td><a href="/sink/view/{{.Seq}}">{{.Seq}}</a></td>
<td>{{.AcceptedAt.Format "2006-01-02 15:04:05"}}</td>
<td>{{range $i, $a := .To}}{{if $i}}, {{end}}{{$a.Email}}{{end}}</td>
<td><a href="/sink/view/{{.Seq}}">{{.Subject}}</a></td>
<td>{{range $k, $v := .CustomArgs}}<code>{{$k}}={{$v}}</code> {{end}}</td>
<td><code>{{.MessageID}}</code></td>
</tr>{{else}}<tr><td colspan="6" class="muted">No messages.</td></tr>{{end}}
</tbody></table>
{{if .List.NextAfter}}<p><a href="/sink/?to={{.To}}&amp;after={{.List.NextAfter}}">Older</a></p>{{end}}
</body></html>{{end}}

{{define "view"}}{{template "head" .Subject}}
<p><a href="/sink/">← Mailbox</a></p>
<h1>{{.Subject}}</h1>
<dl>
<dt>From</dt><dd>{{.From.Name}} &lt;{{.From.Email}}&gt;</dd>
<dt>To</dt><dd>{{range $i, $a := .To}}{{if $i}}, {{end}}{{$a.Name}} &lt;{{$a.Email}}&gt;{{end}}</dd>
{{if .CC}}<dt>Cc</dt><dd>{{range $i, $a := .CC}}{{if $i}}, {{end}}{{$a.Email}}{{end}}</dd>{{end}}
<dt>Accepted</dt><dd>{{.AcceptedAt.Format "2006-01-02 15:04:05 MST"}}</dd>
<dt>Message ID</dt><dd><code>{{.MessageID}}</code> (<code>{{.SGMessageID}}</code>)</dd>
<dt>Custom args</dt><dd>{{range $k, $v := .CustomArgs}}<code>{{$k}}={{$v}}</code> {{end}}</dd>
</dl>
{{if .HTML}}<h2>HTML</h2>
<iframe sandbox="" referrerpolicy="no-referrer" srcdoc="{{.HTML}}" title="HTML content"></iframe>
<details><summary>HTML source</summary><pre>{{.HTML}}</pre></details>{{end}}
{{if .Text}}<h2>Text</h2><pre>{{.Text}}</pre>{{end}}
</body></html>{{end}}`))

func (s *Sink) render(w http.ResponseWriter, name string, data any) {
	var buf bytes.Buffer
	if err := mailboxTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("mailbox page failed", zap.String("template", name), zap.Error(err))
		http.Error(w, "page failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", mailboxCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(buf.Bytes())
}

// handleMailbox is GET /sink/: the newest messages, optionally filtered by ?to=.
func (s *Sink) handleMailbox(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q.Newest = true
	if q.Limit == 0 {
		q.Limit = 200
	}
	s.render(w, "list", struct {
		To    string
		List  MessageList
		Stats Stats
	}{q.To, s.store.list(q), s.Stats()})
}

// handleView is GET /sink/view/{seq}: one rendered message; its HTML runs in a sandboxed frame.
func (s *Sink) handleView(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		http.Error(w, "bad message seq", http.StatusBadRequest)
		return
	}
	m, ok := s.store.get(seq)
	if !ok {
		http.Error(w, "message not stored", http.StatusNotFound)
		return
	}
	s.render(w, "view", m)
}
