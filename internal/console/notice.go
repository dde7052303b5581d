package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
)

type incidentData struct {
	View     api.IncidentView
	Versions []store.ScopeVersion
	// Open lists initial-notice tenants in scope that have not acknowledged, earliest
	// deadline first, at most openListed; OpenCount is how many there are in all.
	Open      []store.TenantStatus
	OpenCount int
	Audit     []store.AuditRecord
	// Notice is the draft the approve form approves, in every locale, with its changes
	// since the previous draft; NoticeError says why it cannot be shown. Locale is the
	// locale shown open.
	Notice      *api.NoticePreview
	NoticeError string
	Locale      string
	DraftJSON   string
	// FollowupJSON starts the follow-up form: the current draft without its phase, for
	// the next phase's draft to say what is new.
	FollowupJSON string
	// Retry offers the retry action: the ledger holds released tenants still owed, or
	// tenants a send failed for; RetryTenants counts the released ones still owed.
	Retry        bool
	RetryTenants int
}

// openListed bounds the open tenants the incident page lists; the CSV has them all.
const openListed = 50

func (c *Console) incidentPage(w http.ResponseWriter, r *http.Request, code int, fl *flash) {
	ctx := r.Context()
	id := r.PathValue("id")
	v, err := c.API.View(ctx, callerOf(r).key, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := incidentData{View: v, OpenCount: v.Ledger.Tenants - v.Ledger.Acknowledged}
	d.Retry, d.RetryTenants = retryable(v.Incident, v.Ledger)
	if d.Audit, err = c.Store.AuditTrail(ctx, id); err != nil {
		c.fail(w, r, err)
		return
	}
	if d.Versions, err = c.Store.ScopeVersions(ctx, id); err != nil {
		c.fail(w, r, err)
		return
	}
	if v.Scope != nil {
		err := c.Store.TenantStatuses(ctx, id, 1, true, openListed, time.Now(), func(ts store.TenantStatus) error {
			d.Open = append(d.Open, ts)
			return nil
		})
		if err != nil {
			c.fail(w, r, err)
			return
		}
	}
	if len(v.Incident.NoticeDraft) > 0 {
		d.DraftJSON = string(v.Incident.NoticeDraft)
		d.FollowupJSON = followupStart(v.Incident.NoticeDraft)
	}
	d.Locale = notice.NormalizeLocale(r.URL.Query().Get("locale"))
	if hash := previewHash(v); hash != "" {
		p, err := c.API.NoticePreview(ctx, callerOf(r).key, id, hash, "")
		if err != nil && !errors.Is(err, api.ErrUnknownDraft) {
			c.fail(w, r, err)
			return
		}
		if err != nil {
			d.NoticeError = err.Error()
		} else {
			d.Notice = &p
		}
	}
	c.render(w, r, code, "incident", page{Title: id, Data: d, Flash: fl})
}

func (c *Console) incident(w http.ResponseWriter, r *http.Request) {
	c.incidentPage(w, r, http.StatusOK, nil)
}

// previewHash is the draft the incident page shows and the approve form posts: the
// workflow's current draft, or the stored one when the workflow does not answer (and no
// approval is offered).
func previewHash(v api.IncidentView) string {
	if v.Status != nil && v.Status.ContentHash != "" {
		return v.Status.ContentHash
	}
	return v.Incident.NoticeHash
}

// followupStart is the stored draft as the start of the next phase's: without its phase
// (the service sets the next one) and without what was new in the previous phase.
func followupStart(raw json.RawMessage) string {
	var d map[string]json.RawMessage
	if json.Unmarshal(raw, &d) != nil {
		return string(raw)
	}
	delete(d, "phase")
	var f map[string]json.RawMessage
	if json.Unmarshal(d["fields"], &f) == nil {
		f["whats_new"] = json.RawMessage(`""`)
		if b, err := json.Marshal(f); err == nil {
			d["fields"] = b
		}
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return string(raw)
	}
	return string(out)
}

type previewData struct {
	View api.IncidentView
	// Tenant is the tenant id asked for; Notice the draft as that tenant receives it
	// (nil when it cannot be shown, NoticeError then saying why).
	Tenant      string
	Notice      *api.NoticePreview
	NoticeError string
}

// tenantPreview shows the incident's current draft exactly as one tenant receives it:
// in its locale, with its name, deadline and facts.
func (c *Console) tenantPreview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	k := callerOf(r).key
	id := r.PathValue("id")
	v, err := c.API.View(ctx, k, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := previewData{View: v, Tenant: strings.TrimSpace(r.URL.Query().Get("tenant"))}
	show := func(code int, fl *flash) {
		c.render(w, r, code, "preview", page{Title: id + ": notice for a tenant", Data: d, Flash: fl})
	}
	if d.Tenant == "" {
		show(http.StatusBadRequest, &flash{"error", "tenant: required: the id of the tenant to preview the notice for"})
		return
	}
	hash := previewHash(v)
	if hash == "" {
		show(http.StatusConflict, &flash{"error", "The incident has no notice draft yet: propose one."})
		return
	}
	p, err := c.API.NoticePreview(ctx, k, id, hash, d.Tenant)
	switch {
	case errors.Is(err, api.ErrUnknownDraft):
		d.NoticeError = err.Error()
		show(http.StatusOK, nil)
		return
	case err != nil:
		code, e := api.ErrorFor(err)
		if code >= 500 || code == http.StatusNotFound {
			c.fail(w, r, err)
			return
		}
		show(code, &flash{"error", fieldMsg(e)})
		return
	}
	d.Notice = &p
	show(http.StatusOK, nil)
}

type reviewItem struct {
	api.ReviewView
	// PreviousReview is the content hash of the previous review of the incident ("" for none).
	PreviousReview string
	// Notice is the draft under review in every locale, compared with the previous
	// review's draft; NoticeError says why it cannot be shown.
	Notice      *api.NoticePreview
	NoticeError string
}

func (c *Console) partnerPage(w http.ResponseWriter, r *http.Request) {
	c.partnerRender(w, r, http.StatusOK, nil)
}

func (c *Console) partnerRender(w http.ResponseWriter, r *http.Request, code int, fl *flash) {
	ctx := r.Context()
	list, err := c.API.Reviews(ctx, callerOf(r).key)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	items := make([]reviewItem, 0, len(list))
	for _, rv := range list {
		it := reviewItem{ReviewView: rv}
		if it.PreviousReview, err = c.Store.PreviousReviewHash(ctx, rv.IncidentID, rv.ID); err != nil {
			c.fail(w, r, err)
			return
		}
		p, err := c.API.ReviewNotice(ctx, callerOf(r).key, rv.ID)
		switch {
		case err == nil:
			it.Notice = &p
		case errors.Is(err, api.ErrUnknownDraft):
			it.NoticeError = err.Error()
		default:
			c.fail(w, r, err)
			return
		}
		items = append(items, it)
	}
	c.render(w, r, code, "partner", page{Title: "Partner reviews", Data: struct{ Reviews []reviewItem }{items}, Flash: fl})
}
