package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/api"
)

// TestIncidentViewWithoutWorker: with no worker to answer the status query, GET
// /v1/incidents/{id} still answers, with the stored facts and no status, well before a
// client gives up.
func TestIncidentViewWithoutWorker(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{})
	id := e.declare(t, declaration("Nobody is working", nil))

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/incidents/"+id, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.keys[keyResponder])
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "the view waited for a worker")
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var v api.IncidentView
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	require.Equal(t, id, v.Incident.ID)
	require.Equal(t, "Nobody is working", v.Incident.Title)
	require.Nil(t, v.Status)
}
