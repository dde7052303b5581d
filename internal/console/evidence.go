package console

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/store"
)

// evidenceColumns head the per-tenant evidence CSV, one line per tenant of the initial
// notice as the ledger holds it.
var evidenceColumns = []string{"tenant_id", "tenant_name", "country", "phase", "state", "deadline", "content_hash", "scope_version",
	"released_at", "notices", "first_sent_at", "notified_at", "delivered_at", "bounced_at", "last_error", "reminders",
	"acknowledged_at", "deadline_met"}

// evidenceCSV streams who was told what and when, per tenant, from the ledger: it needs
// no answer from the workflow, so it still exports after the workflow ended or while
// no worker runs.
func (c *Console) evidenceCSV(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	// Only the scope matters here: no ledger summary, no wait for the workflow's status.
	scope, err := c.API.Scope(ctx, callerOf(r).key, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if scope == nil {
		c.incidentPage(w, r, http.StatusConflict, &flash{"error", "No scope yet: nothing to export."})
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`-tenants.csv"`)
	cw := csv.NewWriter(w)
	err = cw.Write(evidenceColumns)
	if err == nil {
		err = c.Store.TenantStatuses(ctx, id, 1, false, 0, time.Now(), func(s store.TenantStatus) error {
			return cw.Write(evidenceRow(s))
		})
	}
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	if err != nil {
		// The status line is gone with the first row; the log is all that is left.
		c.Logger.Error("export evidence", zap.String("incident_id", id), zap.Error(err))
	}
}

// evidenceRow is one tenant's CSV line, in evidenceColumns order.
func evidenceRow(s store.TenantStatus) []string {
	met := ""
	if s.DeadlineMet != nil {
		met = strconv.FormatBool(*s.DeadlineMet)
	}
	scopeVersion := ""
	if s.ScopeVersion > 0 {
		scopeVersion = strconv.Itoa(s.ScopeVersion)
	}
	return []string{csvText(s.TenantID), csvText(s.TenantName), csvText(s.Country), strconv.Itoa(s.Phase), csvText(s.State),
		s.Deadline.UTC().Format(time.RFC3339), csvText(s.ContentHash), scopeVersion, csvTime(s.ReleasedAt), strconv.Itoa(s.Notices),
		csvTime(s.FirstSentAt), csvTime(s.NotifiedAt), csvTime(s.DeliveredAt), csvTime(s.BouncedAt), csvText(s.LastError),
		strconv.Itoa(s.Reminders), csvTime(s.AcknowledgedAt), met}
}

func csvTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// csvText defuses a text cell a spreadsheet would run as a formula: tenant names come
// from customers and errors from SendGrid, so a cell starting with = + - @, a tab or a
// carriage return gets a leading apostrophe.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
