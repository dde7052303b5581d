package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// forwardedHeader is the trusted proxy's header in the tests that configure one.
const forwardedHeader = "X-Forwarded-For"

// via returns the header pair that puts a request behind the proxy as coming from addr.
func via(addr string) []string { return []string{forwardedHeader, addr} }

// countingReader counts the bytes read from it, to show what a handler left unread.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// zeros is an endless stream of spaces, for bodies larger than anything worth allocating.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// serveDirect runs one request through h without a network in between. contentLength is
// what the request declares (-1: unknown, as a chunked body).
func serveDirect(h http.Handler, method, path string, body io.Reader, contentLength int64, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, body)
	req.ContentLength = contentLength
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// notifyNotice declares an incident titled incidentTitle whose notice has fields f, takes it
// through assessment, scope (the first n tenants) and two approvals, and waits until the
// notices are out. It returns the incident's id.
func (e *apiEnv) notifyNotice(t *testing.T, incidentTitle string, f notice.Fields, n int) string {
	t.Helper()
	id := e.declare(t, declaration(incidentTitle, draftOf(t, f)))
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/assessment", keyResponder,
		map[string]any{"reportable": true, "rationale": "personal data of the controllers' users exposed"})
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/scope", keyResponder, store.ScopeCriteria{TenantIDs: e.tenantIDs(t, n)})
	st := e.waitFor(t, id, "declared draft", func(s workflows.Status) bool { return s.ContentHash != "" })
	e.approveTwice(t, id, st.ContentHash)
	v := e.waitStage(t, id, workflows.StageTracking)
	require.Equal(t, n, v.Ledger.Initial().Notified)
	return id
}
