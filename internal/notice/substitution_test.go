package notice_test

import (
	"html"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
)

func TestTags(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{
		"-bf_tenant_name-", "-bf_tenant_name_html-",
		"-bf_ack_url-", "-bf_ack_url_html-",
		"-bf_deadline-", "-bf_deadline_html-",
		"-bf_tenant_facts-", "-bf_tenant_facts_html-",
	}, notice.Tags())
}

func TestSubstitutions(t *testing.T) {
	t.Parallel()
	deadline := time.Date(2026, 3, 3, 16, 5, 0, 0, time.FixedZone("CEST", 2*3600))
	tests := []struct {
		name         string
		recipient    notice.Recipient
		tenant       string
		tenantHTML   string
		ack, ackHTML string
		deadline     string
		facts        string
	}{
		{
			name:       "en",
			recipient:  notice.Recipient{TenantName: "Acme Corp", AckURL: "https://bf.example/ack/t1", Deadline: deadline, Locale: "en-GB"},
			tenant:     "Acme Corp",
			tenantHTML: "Acme Corp",
			ack:        "https://bf.example/ack/t1",
			ackHTML:    "https://bf.example/ack/t1",
			deadline:   "3 March 2026, 14:05 UTC",
			facts:      "No tenant-specific details were recorded.",
		},
		{
			name:       "it escapes html",
			recipient:  notice.Recipient{TenantName: `Rossi & "Figli" <srl>`, AckURL: "https://bf.example/ack/t2?a=1&b=2", Deadline: deadline, Locale: "it_IT"},
			tenant:     `Rossi & "Figli" <srl>`,
			tenantHTML: "Rossi &amp; &#34;Figli&#34; &lt;srl&gt;",
			ack:        "https://bf.example/ack/t2?a=1&b=2",
			ackHTML:    "https://bf.example/ack/t2?a=1&amp;b=2",
			deadline:   "3 marzo 2026, ore 14:05 UTC",
			facts:      "Non sono stati registrati dettagli specifici per il vostro tenant.",
		},
		{
			name:       "de",
			recipient:  notice.Recipient{TenantName: "Müller GmbH", AckURL: "https://bf.example/ack/t3", Deadline: deadline, Locale: "de-DE"},
			tenant:     "Müller GmbH",
			tenantHTML: "Müller GmbH",
			ack:        "https://bf.example/ack/t3",
			ackHTML:    "https://bf.example/ack/t3",
			deadline:   "3. März 2026, 14:05 Uhr UTC",
			facts:      "Es wurden keine mandantenspezifischen Angaben erfasst.",
		},
		{
			name:       "fr",
			recipient:  notice.Recipient{TenantName: "L'Atelier", AckURL: "https://bf.example/ack/t4", Deadline: deadline, Locale: "fr"},
			tenant:     "L'Atelier",
			tenantHTML: "L&#39;Atelier",
			ack:        "https://bf.example/ack/t4",
			ackHTML:    "https://bf.example/ack/t4",
			deadline:   "3 mars 2026 à 14:05 UTC",
			facts:      "Aucune information propre à votre tenant n'a été enregistrée.",
		},
		{
			name:       "es without deadline",
			recipient:  notice.Recipient{TenantName: "  Núñez   y Cía  ", AckURL: "http://localhost:8080/ack/t5", Locale: "es-ES"},
			tenant:     "Núñez y Cía",
			tenantHTML: "Núñez y Cía",
			ack:        "http://localhost:8080/ack/t5",
			ackHTML:    "http://localhost:8080/ack/t5",
			deadline:   "no especificado",
			facts:      "No se han registrado datos específicos de su tenant.",
		},
		{
			name:       "unknown locale falls back to en",
			recipient:  notice.Recipient{TenantName: "Acme", AckURL: "https://bf.example/ack/t6", Deadline: deadline, Locale: "ja"},
			tenant:     "Acme",
			tenantHTML: "Acme",
			ack:        "https://bf.example/ack/t6",
			ackHTML:    "https://bf.example/ack/t6",
			deadline:   "3 March 2026, 14:05 UTC",
			facts:      "No tenant-specific details were recorded.",
		},
		{
			name:       "unusable link is dropped",
			recipient:  notice.Recipient{TenantName: "Acme", AckURL: "javascript:alert(1)", Deadline: deadline, Locale: "en"},
			tenant:     "Acme",
			tenantHTML: "Acme",
			deadline:   "3 March 2026, 14:05 UTC",
			facts:      "No tenant-specific details were recorded.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := notice.Substitutions(tt.recipient)
			require.Equal(t, map[string]string{
				notice.TagTenantName:     tt.tenant,
				notice.TagTenantNameHTML: tt.tenantHTML,
				notice.TagAckURL:         tt.ack,
				notice.TagAckURLHTML:     tt.ackHTML,
				notice.TagDeadline:       tt.deadline,
				notice.TagDeadlineHTML:   tt.deadline,
				// Nothing is known about these tenants: the block says so in their language.
				notice.TagTenantFacts:     tt.facts,
				notice.TagTenantFactsHTML: "<p>" + html.EscapeString(tt.facts) + "</p>",
			}, got)
		})
	}
}

func TestSubstitutionValuesNeverHoldTags(t *testing.T) {
	t.Parallel()
	r := notice.Recipient{
		TenantName: "Acme " + notice.TagAckURL + " -BF_DEADLINE-",
		AckURL:     "https://bf.example/ack/bf_token?x=-bf_tenant_name-",
		Locale:     "en",
	}
	for key, v := range notice.Substitutions(r) {
		for _, tag := range notice.Tags() {
			require.NotContains(t, strings.ToLower(v), tag, "value of %s", key)
		}
	}
	subs := notice.Substitutions(r)
	require.Equal(t, "https://bf.example/ack/bf%5Ftoken?x=-bf%5Ftenant_name-", subs[notice.TagAckURL])
	require.Equal(t, "Acme "+notice.TagAckURL+" -BF_DEADLINE-", strings.ReplaceAll(subs[notice.TagTenantName], "\u200b", ""))
}

func TestRecipientValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		change  func(r *notice.Recipient)
		message string
	}{
		{"valid", func(*notice.Recipient) {}, ""},
		{"no tenant name", func(r *notice.Recipient) { r.TenantName = " " }, "tenant name is empty"},
		{"tenant name too long", func(r *notice.Recipient) { r.TenantName = strings.Repeat("x", notice.MaxTenantNameLen+1) }, "tenant name"},
		{"tenant name on two lines", func(r *notice.Recipient) { r.TenantName = "a\nb" }, "single line"},
		{"relative link", func(r *notice.Recipient) { r.AckURL = "/ack/tok" }, "acknowledgement link"},
		{"javascript link", func(r *notice.Recipient) { r.AckURL = "javascript:alert(1)" }, "acknowledgement link"},
		{"link with spaces", func(r *notice.Recipient) { r.AckURL = "https://bf.example/ack/a b" }, "acknowledgement link"},
		{"no link", func(r *notice.Recipient) { r.AckURL = "" }, "acknowledgement link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := recipient("en")
			tt.change(&r)
			err := r.Validate()
			if tt.message == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, notice.ErrInvalidRecipient)
			require.Contains(t, err.Error(), tt.message)
		})
	}
}
