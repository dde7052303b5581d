package metrics_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/metrics"
	"github.com/breachflow/breachflow/internal/metrics/metricstest"
)

// The SDK tags one metric differently at different call sites; every label set must
// scrape side by side, counters as _total, timers as histograms in seconds.
func TestTemporalHandlerRecordsSDKMetrics(t *testing.T) {
	w := metrics.NewWorker()
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)
	root := w.Temporal().WithTags(map[string]string{"namespace": "default", "client_name": "temporal_go"})
	wf := root.WithTags(map[string]string{"task_queue": "breachflow", "workflow_type": "IncidentWorkflow", "worker_type": "WorkflowWorker"})

	wf.Timer("temporal_workflow_task_execution_latency").Record(30 * time.Millisecond)
	wf.Timer("temporal_workflow_task_execution_latency").Record(2 * time.Second)
	root.Counter("temporal_request").Inc(2)
	root.WithTags(map[string]string{"operation": "PollWorkflowTaskQueue"}).Counter("temporal_request").Inc(1)
	root.Counter("temporal_request").Inc(-5) // a counter never goes down
	wf.Gauge("temporal_worker_task_slots_available").Update(7)
	wf.WithTags(map[string]string{"workflow_type": "NotifyPassWorkflow"}).Timer("temporal_workflow_task_execution_latency").Record(time.Millisecond)
	root.WithTags(map[string]string{"task_queue": ""}).Counter("temporal_request").Inc(1) // an empty tag is no label

	s := metricstest.Get(t, srv.URL)
	n, ok := s.HistogramCount("breachflow_temporal_workflow_task_execution_latency_seconds", "workflow_type", "IncidentWorkflow",
		"task_queue", "breachflow", "namespace", "default")
	require.True(t, ok)
	require.Equal(t, uint64(2), n)
	n, _ = s.HistogramCount("breachflow_temporal_workflow_task_execution_latency_seconds", "workflow_type", "NotifyPassWorkflow")
	require.Equal(t, uint64(1), n)
	total, _ := s.Value("breachflow_temporal_request_total")
	require.Equal(t, 4.0, total)
	polls, _ := s.Value("breachflow_temporal_request_total", "operation", "PollWorkflowTaskQueue")
	require.Equal(t, 1.0, polls)
	require.Len(t, s.Series("breachflow_temporal_request_total"), 2, "two label sets")
	slots, _ := s.Value("breachflow_temporal_worker_task_slots_available", "worker_type", "WorkflowWorker")
	require.Equal(t, 7.0, slots)
}
