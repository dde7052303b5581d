package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// declareAnswer is one concurrent declaration's reply.
type declareAnswer struct {
	code int
	body []byte
	err  error
}

// declareAll sends every body at once as POST /v1/incidents under one Idempotency-Key, as
// the responder. It does not use e.do: require must not stop a goroutine other than the
// test's, so failures come back as values.
func (e *apiEnv) declareAll(t *testing.T, key string, bodies []any) []declareAnswer {
	t.Helper()
	out := make([]declareAnswer, len(bodies))
	client := &http.Client{Timeout: time.Minute}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, body := range bodies {
		data, err := json.Marshal(body)
		require.NoError(t, err)
		req, err := http.NewRequest("POST", e.srv.URL+"/v1/incidents", bytes.NewReader(data))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+e.keys[keyResponder])
		req.Header.Set("Idempotency-Key", key)
		wg.Go(func() {
			<-start
			resp, err := client.Do(req)
			if err != nil {
				out[i].err = err
				return
			}
			defer resp.Body.Close()
			out[i].code = resp.StatusCode
			out[i].body, out[i].err = io.ReadAll(resp.Body)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// TestConcurrentIdenticalDeclarations: 50 identical declarations sent at once under one
// Idempotency-Key all get the same incident, exactly one of them 201 and the rest 200,
// never a 409; one incident row, one 'incident.declared' audit row, one workflow run. A
// different body under the key, racing identical ones, is the only 409.
func TestConcurrentIdenticalDeclarations(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{})
	d := declaration("Credential exposure", nil)
	const n = 50
	bodies := make([]any, n)
	for i := range bodies {
		bodies[i] = d
	}

	answers := e.declareAll(t, "race-1", bodies)
	codes := map[int]int{}
	ids := map[string]int{}
	for i, a := range answers {
		require.NoError(t, a.err, "request %d", i)
		codes[a.code]++
		require.Contains(t, []int{http.StatusOK, http.StatusCreated}, a.code, "request %d: %s", i, a.body)
		var out struct{ Incident store.Incident }
		require.NoError(t, json.Unmarshal(a.body, &out), "request %d: %s", i, a.body)
		ids[out.Incident.ID]++
	}
	require.Equal(t, map[int]int{http.StatusCreated: 1, http.StatusOK: n - 1}, codes)
	require.Len(t, ids, 1, "one incident for every answer: %v", ids)
	var id string
	for k := range ids {
		id = k
	}
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM incidents`))
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM audit_log WHERE action = 'incident.declared'`))
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM audit_log WHERE action = 'incident.declared' AND incident_id = $1`, id))
	desc, err := e.tc.DescribeWorkflowExecution(context.Background(), workflows.IncidentWorkflowID(id), "")
	require.NoError(t, err)
	runID := desc.WorkflowExecutionInfo.Execution.RunId

	// The same key with another body, sent with identical ones, is refused and only it.
	other := with(d, "severity", "critical")
	bodies = bodies[:0]
	for i := range 20 {
		if i%2 == 1 {
			bodies = append(bodies, other)
		} else {
			bodies = append(bodies, d)
		}
	}
	for i, a := range e.declareAll(t, "race-1", bodies) {
		require.NoError(t, a.err, "request %d", i)
		if i%2 == 0 {
			require.Equal(t, http.StatusOK, a.code, "request %d: %s", i, a.body)
			var out struct{ Incident store.Incident }
			require.NoError(t, json.Unmarshal(a.body, &out))
			require.Equal(t, id, out.Incident.ID)
			continue
		}
		require.Equal(t, http.StatusConflict, a.code, "request %d: %s", i, a.body)
		var out struct {
			Error struct{ Code, Message string }
		}
		require.NoError(t, json.Unmarshal(a.body, &out))
		require.Equal(t, "conflict", out.Error.Code)
		require.Contains(t, out.Error.Message, id, "names the incident the key belongs to")
	}
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM incidents`))
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM audit_log WHERE action = 'incident.declared'`))
	desc, err = e.tc.DescribeWorkflowExecution(context.Background(), workflows.IncidentWorkflowID(id), "")
	require.NoError(t, err)
	require.Equal(t, runID, desc.WorkflowExecutionInfo.Execution.RunId, "one workflow run")

	// Another key races on its own: a different body under it is a new incident.
	answers = e.declareAll(t, "race-2", []any{other, other, other})
	created := 0
	for i, a := range answers {
		require.NoError(t, a.err, "request %d", i)
		require.Contains(t, []int{http.StatusOK, http.StatusCreated}, a.code, "request %d: %s", i, a.body)
		if a.code == http.StatusCreated {
			created++
		}
	}
	require.Equal(t, 1, created)
	require.Equal(t, 2, e.count(t, `SELECT count(*) FROM incidents`))
}
