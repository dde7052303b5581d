package console

import (
	"errors"
	"net/http"
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
	}
	d.Locale = notice.NormalizeLocale(r.URL.Query().Get("locale"))
	// The preview is of the hash the approve form posts: the workflow's current draft,
	// or the stored one when the workflow does not answer (and no approval is offered).
	hash := v.Incident.NoticeHash
	if v.Status != nil && v.Status.ContentHash != "" {
		hash = v.Status.ContentHash
	}
	if hash != "" {
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
