package sink

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The hand-written decoder must agree with encoding/json: what one accepts the other accepts,
// with the same values.

type mirrorAddr struct {
	Email string `json:"email"`
	Name  string `json:"name"`
}

type mirrorPers struct {
	To            []mirrorAddr      `json:"to"`
	CC            []mirrorAddr      `json:"cc"`
	BCC           []mirrorAddr      `json:"bcc"`
	From          *mirrorAddr       `json:"from"`
	Subject       string            `json:"subject"`
	Substitutions map[string]string `json:"substitutions"`
	CustomArgs    map[string]string `json:"custom_args"`
	SendAt        int64             `json:"send_at"`
}

type mirrorContent struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

type mirrorReq struct {
	From             *mirrorAddr       `json:"from"`
	ReplyTo          *mirrorAddr       `json:"reply_to"`
	Subject          string            `json:"subject"`
	Personalizations []mirrorPers      `json:"personalizations"`
	Content          []mirrorContent   `json:"content"`
	TemplateID       string            `json:"template_id"`
	CustomArgs       map[string]string `json:"custom_args"`
	SendAt           int64             `json:"send_at"`
	MailSettings     *struct {
		SandboxMode *struct {
			Enable bool `json:"enable"`
		} `json:"sandbox_mode"`
	} `json:"mail_settings"`
	Sandbox bool `json:"-"`
}

func emptyNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func mapNil(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func (m *mirrorReq) normalize() {
	if m.MailSettings != nil {
		m.Sandbox = m.MailSettings.SandboxMode != nil && m.MailSettings.SandboxMode.Enable
		m.MailSettings = nil
	}
	m.Personalizations = emptyNil(m.Personalizations)
	m.Content = emptyNil(m.Content)
	m.CustomArgs = mapNil(m.CustomArgs)
	for i := range m.Personalizations {
		p := &m.Personalizations[i]
		p.To, p.CC, p.BCC = emptyNil(p.To), emptyNil(p.CC), emptyNil(p.BCC)
		p.Substitutions, p.CustomArgs = mapNil(p.Substitutions), mapNil(p.CustomArgs)
	}
}

func addrs(in []sgAddress) []mirrorAddr {
	if len(in) == 0 {
		return nil
	}
	out := make([]mirrorAddr, len(in))
	for i, a := range in {
		out[i] = mirrorAddr(a)
	}
	return out
}

func addrPtr(a *sgAddress) *mirrorAddr {
	if a == nil {
		return nil
	}
	m := mirrorAddr(*a)
	return &m
}

func mirrorOf(r *sgRequest) mirrorReq {
	m := mirrorReq{
		From: addrPtr(r.From), ReplyTo: addrPtr(r.ReplyTo), Subject: r.Subject, TemplateID: r.TemplateID,
		CustomArgs: r.CustomArgs.toMap(), SendAt: r.SendAt, Sandbox: r.Sandbox,
	}
	for _, c := range r.Content {
		m.Content = append(m.Content, mirrorContent(c))
	}
	for _, p := range r.Personalizations {
		m.Personalizations = append(m.Personalizations, mirrorPers{
			To: addrs(p.To), CC: addrs(p.CC), BCC: addrs(p.BCC), From: addrPtr(p.From), Subject: p.Subject,
			Substitutions: p.Substitutions.toMap(), CustomArgs: p.CustomArgs.toMap(), SendAt: p.SendAt,
		})
	}
	m.normalize()
	return m
}

func TestDecodeRequestAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		ok   bool
	}{
		{"full request", `{"from":{"email":"a@example.com","name":"A"},"reply_to":{"email":"r@example.com"},"subject":"S -x-",
			"personalizations":[{"to":[{"email":"b@example.com","name":"B"}],"cc":[{"email":"c@example.com"}],"bcc":[],
			"subject":"own","substitutions":{"-x-":"y","-z-":""},"custom_args":{"notice_id":"n1","round":"2"},"send_at":1700000000,
			"headers":{"X-A":"b"},"from":{"email":"p@example.com"}}],
			"content":[{"type":"text/plain","value":"hi"},{"type":"text/html","value":"<p>hi</p>"}],
			"template_id":"d-1","custom_args":{"k":"v"},"send_at":0,"mail_settings":{"sandbox_mode":{"enable":true},"footer":{"enable":false}}}`, true},
		{"escapes and unicode", `{"subject":"caf\u00e9 \"q\" \\ \/ \b\f\n\r\t \ud83d\ude00 é 日本","personalizations":[{"substitutions":{"-\u006e-":"line\nbreak"}}]}`, true},
		{"invalid utf-8 is replaced", "{\"subject\":\"bad \xff byte\"}", true},
		{"lone surrogate", `{"subject":"\ud800"}`, true},
		{"nulls everywhere", `{"from":null,"reply_to":null,"subject":null,"personalizations":[{"to":null,"substitutions":null,"custom_args":{"a":null},"send_at":null}],"content":null,"custom_args":null,"send_at":null,"mail_settings":{"sandbox_mode":null}}`, true},
		{"null document", `null`, true},
		{"empty object", `{}`, true},
		{"whitespace", " \t\r\n{ \"subject\" :\n\"s\" , \"personalizations\" : [ ] }\n ", true},
		{"repeated keys, last wins", `{"subject":"one","subject":"two","custom_args":{"a":"1","a":"2"},"personalizations":[{"to":[{"email":"x@example.com"}]}],"personalizations":[{"to":[{"email":"y@example.com"}]}]}`, true},
		{"unknown nested values", `{"attachments":[{"content":"aGk=","filename":"a.txt","nested":[1,-2.5e+3,true,false,null,{"x":[[]]}]}],"asm":{"group_id":1},"batch_id":"b"}`, true},
		{"numbers", `{"send_at":-0,"x":[0,1,-1,1.5,1e10,1E-2,0.0e0]}`, true},

		{"trailing comma in object", `{"subject":"s",}`, false},
		{"trailing comma in array", `{"personalizations":[{},]}`, false},
		{"missing colon", `{"subject" "s"}`, false},
		{"unterminated string", `{"subject":"s}`, false},
		{"control character", "{\"subject\":\"a\x01b\"}", false},
		{"bad escape", `{"subject":"\x41"}`, false},
		{"short unicode escape", `{"subject":"\u12"}`, false},
		{"leading zero", `{"send_at":01}`, false},
		{"bare minus", `{"x":-}`, false},
		{"dangling fraction", `{"x":1.}`, false},
		{"dangling exponent", `{"x":1e}`, false},
		{"bare word", `{"x":nope}`, false},
		{"truncated literal", `{"x":tru}`, false},
		{"single quotes", `{'subject':'s'}`, false},
		{"unclosed array", `{"personalizations":[{}`, false},
		{"two documents", `{}{}`, false},
		{"empty", ``, false},
		{"array document", `[]`, false},
		{"string document", `"s"`, false},
		{"key not a string", `{1:"s"}`, false},

		{"subject not a string", `{"subject":1}`, false},
		{"personalizations not an array", `{"personalizations":{}}`, false},
		{"to not an array", `{"personalizations":[{"to":{"email":"a@example.com"}}]}`, false},
		{"email not a string", `{"from":{"email":["a@example.com"]}}`, false},
		{"send_at fraction", `{"send_at":1.5}`, false},
		{"send_at string", `{"send_at":"1"}`, false},
		{"substitution value not a string", `{"personalizations":[{"substitutions":{"a":1}}]}`, false},
		{"custom_args not an object", `{"custom_args":"a"}`, false},
		{"sandbox enable not a bool", `{"mail_settings":{"sandbox_mode":{"enable":"yes"}}}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var want mirrorReq
			stdErr := json.Unmarshal([]byte(tc.body), &want)
			got, err := decodeRequest([]byte(tc.body))
			if !tc.ok {
				require.Error(t, stdErr, "encoding/json accepts it; fix the case")
				require.Error(t, err)
				return
			}
			require.NoError(t, stdErr)
			require.NoError(t, err)
			want.normalize()
			require.Equal(t, want, mirrorOf(got))
		})
	}
}

func TestDecodeRequestDeepNesting(t *testing.T) {
	t.Parallel()
	body := `{"x":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}`
	_, err := decodeRequest([]byte(body))
	require.Error(t, err)
	shallow := `{"x":` + strings.Repeat("[", 50) + strings.Repeat("]", 50) + `}`
	_, err = decodeRequest([]byte(shallow))
	require.NoError(t, err)
}

func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"from":{"email":"a@example.com"},"subject":"s","personalizations":[{"to":[{"email":"b@example.com"}],"substitutions":{"-a-":"\u00e9"}}],"content":[{"type":"text/plain","value":"v"}]}`,
		`{"x":[1,-2.5e3,true,false,null,{"y":"\ud83d\ude00"}]}`,
		`{"send_at":1700000000,"mail_settings":{"sandbox_mode":{"enable":true}}}`,
		`null`, `{}`, `{"a":}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeRequest(data)
		if !json.Valid(data) {
			require.Error(t, err, "accepted invalid JSON")
			return
		}
		if err != nil {
			require.NotErrorIs(t, err, errSyntax, "refused valid JSON as malformed")
			return
		}
		// encoding/json also matches keys case-insensitively; SendGrid and the decoder do not.
		if strings.ToLower(string(data)) != string(data) {
			return
		}
		var want mirrorReq
		require.NoError(t, json.Unmarshal(data, &want))
		want.normalize()
		require.Equal(t, want, mirrorOf(got))
	})
}

func TestStringMapDedupe(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"b", "2", "a", "3"}, dedupe([]string{"a", "1", "b", "2", "a", "3"}))
	var many []string
	for i := range 40 {
		many = append(many, string(rune('a'+i%20)), string(rune('0'+i/20)))
	}
	got := dedupe(many)
	require.Len(t, got, 40)
	require.Equal(t, "1", stringMap{pairs: got}.toMap()["a"])
}
