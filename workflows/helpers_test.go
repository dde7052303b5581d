package workflows_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
)

// draftJSON is a complete notice draft; its contact point has a phone, no email.
func draftJSON(t testing.TB, title string) []byte {
	t.Helper()
	d := notice.Draft{Fields: notice.Fields{
		Reference: "INC-TEST", Title: title, AwareAt: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC),
		Nature:                "Unauthorised access to a device-management database through a leaked service credential.",
		DataCategories:        []string{"device identifiers", "user names"},
		DataSubjectCategories: []string{"employees of the tenant"},
		ApproxDataSubjects:    1200, ApproxRecords: 5400,
		Contact:            notice.ContactPoint{Name: "Privacy Office", Role: "DPO", Phone: "+49 30 1234567"},
		LikelyConsequences: "Targeted phishing against affected users is possible.",
		MeasuresTaken:      "The credential was revoked and access logs were reviewed.",
		MeasuresProposed:   "Rotate device enrolment tokens; watch for phishing.",
	}}
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
