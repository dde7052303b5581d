package workflows_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
)

// draftJSON is a complete notice draft, the note its additional information; its contact
// point has a phone, no email, and its title, awareness time and data categories come
// from the declaration.
func draftJSON(t testing.TB, note string) []byte {
	t.Helper()
	d := notice.Draft{EnglishFallback: []string{"de", "es", "fr", "it"}, Fields: notice.Fields{
		Reference:             "INC-TEST",
		Nature:                "Unauthorised access to a device-management database through a leaked service credential.",
		DataSubjectCategories: []string{"employees of the tenant"},
		ApproxDataSubjects:    1200, ApproxRecords: 5400,
		Contact:               notice.ContactPoint{Name: "Privacy Office", Role: "DPO", Phone: "+49 30 1234567"},
		LikelyConsequences:    "Targeted phishing against affected users is possible.",
		MeasuresTaken:         "The credential was revoked and access logs were reviewed.",
		MeasuresProposed:      "Rotate device enrolment tokens; watch for phishing.",
		AdditionalInformation: note,
	}, Sender: notice.Sender{Organisation: "Provider Cloud SE"}}
	raw, err := json.Marshal(d)
	require.NoError(t, err)
	return raw
}

func newHTTPServer(t testing.TB, sk interface{ Handler() http.Handler }) string {
	t.Helper()
	srv := httptest.NewServer(sk.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}
