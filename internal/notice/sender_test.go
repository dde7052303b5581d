package notice_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
)

func TestValidateSender(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sender  notice.Sender
		missing bool
		message string
	}{
		{"organisation only", notice.Sender{Organisation: "Example Cloud GmbH"}, false, ""},
		{"everything", notice.Sender{Organisation: "Example Cloud GmbH", Signature: "Anna Bianchi\nHead of Security", ReplyTo: "privacy@provider.example"}, false, ""},
		{"no organisation", notice.Sender{Signature: "Team"}, true, ""},
		{"blank organisation", notice.Sender{Organisation: " \t"}, true, ""},
		{"organisation too long", notice.Sender{Organisation: strings.Repeat("x", notice.MaxOrganisationLen+1)}, false, "organisation is 201 characters long"},
		{"organisation on two lines", notice.Sender{Organisation: "Example\nCloud"}, false, "organisation must be a single line"},
		{"signature too long", notice.Sender{Organisation: "E", Signature: strings.Repeat("x", notice.MaxSignatureLen+1)}, false, "signature is 501 characters long"},
		{"signature with control character", notice.Sender{Organisation: "E", Signature: "Team\a"}, false, "signature contains the control character"},
		{"reply-to malformed", notice.Sender{Organisation: "E", ReplyTo: "not-an-address"}, false, "reply-to"},
		{"reply-to with display name", notice.Sender{Organisation: "E", ReplyTo: "Privacy <privacy@provider.example>"}, false, "not a plain email address"},
		{"reply-to with spaces", notice.Sender{Organisation: "E", ReplyTo: " privacy@provider.example"}, false, "not a plain email address"},
		{"two reply-to addresses", notice.Sender{Organisation: "E", ReplyTo: "a@provider.example, b@provider.example"}, false, "reply-to"},
		{"reply-to header injection", notice.Sender{Organisation: "E", ReplyTo: "a@provider.example\r\nBcc: x@evil.example"}, false, "reply-to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := validDraft()
			d.Sender = tt.sender
			err := notice.Validate(d)
			if !tt.missing && tt.message == "" {
				require.NoError(t, err)
				return
			}
			ve := validationError(t, err)
			if tt.missing {
				require.Equal(t, []string{"sender"}, ve.Missing)
				require.Empty(t, ve.Invalid)
				require.Contains(t, ve.Error(), "missing sender (organisation) (sender)")
				return
			}
			require.Empty(t, ve.Missing)
			require.Len(t, ve.Invalid, 1, ve.Error())
			require.Equal(t, "sender", ve.Invalid[0].Element)
			require.Contains(t, ve.Invalid[0].Message, tt.message)
		})
	}

	_, err := notice.Render(notice.Draft{Fields: validDraft().Fields}, "en")
	require.Equal(t, []string{"sender"}, validationError(t, err).Missing, "a draft without a sender does not render")
}

func TestRenderShowsTheSender(t *testing.T) {
	t.Parallel()
	// closings are each locale's default team line.
	closings := map[string]string{
		"en": "Security and Privacy Team",
		"it": "Team Sicurezza e Privacy",
		"de": "Ihr Sicherheits- und Datenschutzteam",
		"fr": "L'équipe Sécurité et Protection des données",
		"es": "Equipo de Seguridad y Privacidad",
	}
	for _, loc := range notice.Locales() {
		t.Run(loc, func(t *testing.T) {
			t.Parallel()
			d := validDraft()
			d.Sender = notice.Sender{Organisation: "Example Cloud <GmbH>"}
			plain, err := notice.Render(d, loc)
			require.NoError(t, err)
			require.True(t, strings.HasSuffix(plain.Text, "\n"+closings[loc]+"\nExample Cloud <GmbH>\n"), plain.Text)
			require.Contains(t, plain.HTML, closings[loc]+"<br>\nExample Cloud &lt;GmbH&gt;</p>")
			// The opening names the organisation as the processor.
			opening := plain.Text[:strings.Index(plain.Text, "\n1. ")]
			require.Contains(t, opening, "Example Cloud <GmbH>")

			d.Sender.Signature = "Anna Bianchi\nHead of Security & Privacy"
			signed, err := notice.Render(d, loc)
			require.NoError(t, err)
			require.True(t, strings.HasSuffix(signed.Text, "\nAnna Bianchi\nHead of Security & Privacy\nExample Cloud <GmbH>\n"), signed.Text)
			require.NotContains(t, signed.Text, closings[loc])
			require.Contains(t, signed.HTML, "Anna Bianchi<br>\nHead of Security &amp; Privacy<br>\nExample Cloud &lt;GmbH&gt;</p>")
			require.NotContains(t, signed.HTML, closings[loc])
		})
	}
}
