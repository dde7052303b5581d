// Package console is the server-rendered web console for responders and partner teams:
// sign-in with an API key, incidents, the incident page with its evidence, forms for
// every responder action and the partner review page. Forms go through the same actions
// as the JSON API. No JavaScript is needed.
package console

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console serves /console/.
type Console struct {
	API    *api.Server
	Store  *store.Store
	Logger *zap.Logger
	// Secret signs session cookies and CSRF tokens.
	Secret []byte
	// SinkURL links the mail sink's mailbox (dev only).
	SinkURL string
	// Secure marks cookies Secure (serve behind https).
	Secure bool

	pages map[string]*template.Template
}

var funcs = template.FuncMap{
	"join": func(s []string) string { return strings.Join(s, ", ") },
	"bar": func(id, label string, value, maxV int) progressBar {
		return progressBar{ID: id, Label: label, Value: value, Max: maxV}
	},
	// late: notified after the deadline, or still owed past it.
	"late": func(met *bool) bool { return met != nil && !*met },
	"ts": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
}

// progressBar is one <progress> element: the CSP refuses inline styles, so a bar is
// the element's value and max, drawn by the style sheet.
type progressBar struct {
	ID, Label  string
	Value, Max int
}

// Handler returns the console's handler; mount it at /console/.
func (c *Console) Handler() http.Handler {
	c.pages = map[string]*template.Template{}
	for _, p := range []string{"login", "incidents", "declare", "incident", "partner"} {
		c.pages[p] = template.Must(template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html"))
	}
	static, _ := fs.Sub(staticFS, "static")
	mux := http.NewServeMux()
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServer(http.FS(static))))
	mux.HandleFunc("GET /console/login", c.loginPage)
	mux.HandleFunc("POST /console/login", c.login)
	mux.HandleFunc("POST /console/logout", c.authed(c.logout))
	mux.HandleFunc("GET /console/{$}", c.authed(c.incidents))
	mux.HandleFunc("GET /console/declare", c.authed(c.roles(c.declarePage, api.Responders...)))
	mux.HandleFunc("POST /console/declare", c.authed(c.roles(c.declare, api.Responders...)))
	mux.HandleFunc("GET /console/incidents/{id}", c.authed(c.roles(c.incident, api.Responders...)))
	mux.HandleFunc("GET /console/incidents/{id}/tenants.csv", c.authed(c.roles(c.evidenceCSV, api.Responders...)))
	mux.HandleFunc("POST /console/incidents/{id}/approve", c.authed(c.roles(c.action, "approver")))
	mux.HandleFunc("POST /console/incidents/{id}/{action}", c.authed(c.roles(c.action, api.Responders...)))
	mux.HandleFunc("GET /console/partner", c.authed(c.roles(c.partnerPage, "partner")))
	mux.HandleFunc("POST /console/partner/reviews/{id}/decision", c.authed(c.roles(c.decide, "partner")))
	return securityHeaders(mux)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'none'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

type flash struct{ Kind, Message string }

type page struct {
	Title                              string
	Key                                store.APIKey
	CSRF                               string
	SinkURL                            string
	Flash                              *flash
	Form                               map[string]string
	Data                               any
	CanRespond, CanApprove, CanPartner bool
}

type ctxKey struct{}

type caller struct {
	key  store.APIKey
	sess session
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	if cl, ok := r.Context().Value(ctxKey{}).(caller); ok {
		p.Key = cl.key
		p.CSRF = c.csrfFor(cl.sess.raw)
		p.CanRespond = api.Allowed(cl.key.Role, api.Responders...)
		p.CanApprove = api.Allowed(cl.key.Role, "approver")
		p.CanPartner = api.Allowed(cl.key.Role, "partner")
	}
	p.SinkURL = c.SinkURL
	if m := r.URL.Query().Get("ok"); m != "" && p.Flash == nil {
		p.Flash = &flash{Kind: "info", Message: m}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := c.pages[name].ExecuteTemplate(w, "layout", p); err != nil {
		c.Logger.Error("render console page", zap.String("page", name), zap.Error(err))
	}
}

// authed admits requests with a valid session of a live key and checks the CSRF token
// of every POST.
func (c *Console) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, err := c.readSession(r)
		var k store.APIKey
		if err == nil {
			k, err = c.Store.GetAPIKey(r.Context(), sess.keyID)
		}
		if err != nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			if err := r.ParseForm(); err != nil {
				http.Error(w, "bad form", http.StatusBadRequest)
				return
			}
			if r.PostForm.Get("csrf") != c.csrfFor(sess.raw) {
				c.audit(r, k, "console.csrf_refused")
				http.Error(w, "missing or wrong CSRF token; reload the page and try again", http.StatusForbidden)
				return
			}
		}
		ctx := r.Context()
		r = r.WithContext(contextWith(ctx, caller{key: k, sess: sess}))
		h(w, r)
	}
}

// roles refuses keys whose role may not use the page, as the API does.
func (c *Console) roles(h http.HandlerFunc, roles ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k := callerOf(r).key
		if !api.Allowed(k.Role, roles...) {
			c.audit(r, k, "console.forbidden")
			c.render(w, r, http.StatusForbidden, "incidents", page{Title: "Not allowed",
				Flash: &flash{"error", "Your key's role (" + k.Role + ") may not do that."}, Data: incidentsData{}})
			return
		}
		h(w, r)
	}
}

func (c *Console) audit(r *http.Request, k store.APIKey, action string) {
	if _, err := c.Store.AppendAudit(r.Context(), store.AuditEntry{Actor: fmt.Sprintf("%s#%d", k.Name, k.ID), Action: action,
		Detail: map[string]any{"path": r.URL.Path, "method": r.Method}}); err != nil {
		c.Logger.Error("audit", zap.Error(err))
	}
}

func actorOf(r *http.Request) string {
	k := callerOf(r).key
	return fmt.Sprintf("%s#%d", k.Name, k.ID)
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	tok := c.loginToken(w, r)
	c.render(w, r, http.StatusOK, "login", page{Title: "Sign in", CSRF: tok})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || r.PostForm.Get("csrf") != ck.Value {
		http.Error(w, "missing or wrong CSRF token; reload the sign-in page", http.StatusForbidden)
		return
	}
	k, err := c.Store.Authenticate(r.Context(), strings.TrimSpace(r.PostForm.Get("key")))
	if err != nil {
		c.Logger.Warn("console sign-in refused")
		c.render(w, r, http.StatusUnauthorized, "login", page{Title: "Sign in", CSRF: ck.Value,
			Flash: &flash{"error", "That key is unknown or revoked."}})
		return
	}
	c.newSession(w, k.ID)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/console/", MaxAge: -1, HttpOnly: true, Secure: c.Secure, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

type incidentRow struct {
	ID, Title, Stage, Severity, TimeLeft string
	Scope, Notified, Acked, Late         int
	AtRisk                               bool
}

type incidentsData struct {
	Stages []string
	Stage  string
	Rows   []incidentRow
}

var stages = []string{store.StageDeclared, store.StageAssessing, store.StageScoping, store.StageApproval, store.StagePartnerReview,
	store.StageNotifying, store.StageTracking, store.StageClosed}

func (c *Console) incidents(w http.ResponseWriter, r *http.Request) {
	k := callerOf(r).key
	if !api.Allowed(k.Role, api.Responders...) {
		http.Redirect(w, r, "/console/partner", http.StatusSeeOther)
		return
	}
	stage := r.URL.Query().Get("stage")
	d := incidentsData{Stages: stages, Stage: stage}
	if stage != "" && !containsStr(stages, stage) {
		c.render(w, r, http.StatusBadRequest, "incidents", page{Title: "Incidents", Data: d, Flash: &flash{"error", "Unknown stage."}})
		return
	}
	list, err := c.Store.ListIncidents(r.Context(), stage, 100, time.Time{})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	now := time.Now()
	reminders := c.API.Timing.WithDefaults().ReminderAfter
	for _, inc := range list {
		// The ledger is read, not the workflow: the list must not wait for a status query
		// per incident, and it must show the counts when no worker answers.
		l, err := c.Store.Ledger(r.Context(), inc.ID, now, reminders)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		d.Rows = append(d.Rows, rowOf(inc, l, now))
	}
	c.render(w, r, http.StatusOK, "incidents", page{Title: "Incidents", Data: d})
}

// rowOf counts an incident for the list in tenants of its initial notice.
func rowOf(inc store.Incident, l store.LedgerStats, now time.Time) incidentRow {
	first := l.Initial()
	row := incidentRow{ID: inc.ID, Title: inc.Title, Stage: inc.Stage, Severity: inc.Severity, TimeLeft: "—",
		Scope: l.Tenants, Notified: first.Notified, Acked: l.Acknowledged, Late: first.Late}
	if first.Earliest != nil && inc.Stage != store.StageClosed {
		left := first.Earliest.Sub(now)
		if left < 0 {
			row.TimeLeft = "overdue by " + (-left).Round(time.Minute).String()
		} else {
			row.TimeLeft = left.Round(time.Minute).String()
		}
		// At risk: under a quarter of the time from awareness to the deadline is left.
		row.AtRisk = left < first.Earliest.Sub(inc.AwareAt)/4
	}
	return row
}

func containsStr(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

type declareData struct {
	Severities []string
	Partners   []store.Partner
}

func (c *Console) declareData(r *http.Request) declareData {
	ps, err := c.Store.ListPartners(r.Context())
	if err != nil {
		c.Logger.Error("list partners", zap.Error(err))
	}
	return declareData{Severities: store.Severities, Partners: ps}
}

func (c *Console) declarePage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "declare", page{Title: "Declare", Data: c.declareData(r),
		Form: map[string]string{"severity": "high", "aware_at": time.Now().UTC().Truncate(time.Minute).Format(time.RFC3339)}})
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func formMap(r *http.Request) map[string]string {
	m := map[string]string{}
	for k := range r.PostForm {
		if k != "csrf" {
			m[k] = r.PostForm.Get(k)
		}
	}
	return m
}

func (c *Console) declare(w http.ResponseWriter, r *http.Request) {
	f := formMap(r)
	again := func(msg string) {
		c.render(w, r, http.StatusBadRequest, "declare", page{Title: "Declare", Data: c.declareData(r), Form: f, Flash: &flash{"error", msg}})
	}
	awareAt, err := time.Parse(time.RFC3339, strings.TrimSpace(f["aware_at"]))
	if err != nil {
		again("aware_at: want an RFC 3339 time such as 2026-11-30T08:00:00Z")
		return
	}
	counts := map[string]int64{}
	for _, name := range []string{"approx_subjects", "approx_records"} {
		if v := strings.TrimSpace(f[name]); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				again(name + ": want a whole number")
				return
			}
			counts[name] = n
		}
	}
	cats := splitList(f["data_categories"])
	cp := notice.ContactPoint{Name: strings.TrimSpace(f["contact_name"])}
	if v := strings.TrimSpace(f["contact_email"]); strings.Contains(v, "@") {
		cp.Email = v
	} else {
		cp.Phone = v
	}
	d := store.Declaration{Title: strings.TrimSpace(f["title"]), Summary: f["summary"], Severity: f["severity"], AwareAt: awareAt,
		DataCategories: cats, Partner: f["partner"]}
	draft := notice.Draft{Fields: notice.Fields{Title: d.Title, AwareAt: awareAt, Nature: f["nature"], DataCategories: cats,
		DataSubjectCategories: splitList(f["subjects"]), ApproxDataSubjects: counts["approx_subjects"], ApproxRecords: counts["approx_records"],
		Contact: cp, LikelyConsequences: f["consequences"], MeasuresTaken: f["measures_taken"], MeasuresProposed: f["measures_proposed"]}}
	// The reference is the incident id, unknown until it is stored: drafts are completed
	// and validated here with a placeholder, then proposed once the incident exists.
	draft.Fields.Reference = "pending"
	if err := notice.Validate(draft); err != nil {
		again(err.Error())
		return
	}
	inc, _, err := c.API.Declare(r.Context(), "", d, actorOf(r))
	if err != nil {
		_, e := api.ErrorFor(err)
		again(fieldMsg(e))
		return
	}
	draft.Fields.Reference = inc.ID
	raw, _ := json.Marshal(draft)
	if _, err := c.API.ProposeDraft(r.Context(), inc.ID, raw, actorOf(r)); err != nil {
		c.Logger.Warn("draft after declaration", zap.String("incident_id", inc.ID), zap.Error(err))
	}
	http.Redirect(w, r, "/console/incidents/"+inc.ID+"?ok=Declared.", http.StatusSeeOther)
}

func fieldMsg(e api.Error) string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

type incidentData struct {
	View     api.IncidentView
	Versions []store.ScopeVersion
	// Open lists initial-notice tenants in scope that have not acknowledged, earliest
	// deadline first, at most openListed; OpenCount is how many there are in all.
	Open      []store.TenantStatus
	OpenCount int
	Audit     []store.AuditRecord
	Notice    *notice.Rendered
	Locales   []string
	DraftJSON string
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
	v, err := c.API.View(ctx, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := incidentData{View: v, Locales: notice.Locales(), OpenCount: v.Ledger.Tenants - v.Ledger.Acknowledged}
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
		var draft notice.Draft
		if json.Unmarshal(v.Incident.NoticeDraft, &draft) == nil {
			locale := r.URL.Query().Get("locale")
			if locale == "" {
				locale = notice.DefaultLocale
			}
			if rd, err := notice.RenderFor(draft, notice.Recipient{TenantName: "Example Tenant Ltd", AckURL: "https://example.invalid/ack/preview",
				Deadline: v.Incident.AwareAt.Add(72 * time.Hour), Locale: locale}); err == nil {
				d.Notice = &rd
			}
		}
	}
	c.render(w, r, code, "incident", page{Title: id, Data: d, Flash: fl})
}

func (c *Console) incident(w http.ResponseWriter, r *http.Request) {
	c.incidentPage(w, r, http.StatusOK, nil)
}

// retryable tells whether a retry would send anything (some phase owes released tenants
// or holds tenants a send failed for, and the incident is not closed) and counts the
// released tenants still owed.
func retryable(inc store.Incident, l store.LedgerStats) (bool, int) {
	ok, owed := false, 0
	for _, p := range l.Phases {
		owed += p.Plannable
		ok = ok || p.Plannable > 0 || p.Failed > 0
	}
	return ok && inc.Stage != store.StageClosed, owed
}

// action runs one responder form through the same action as the API.
func (c *Console) action(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	f := r.PostForm
	actor := actorOf(r)
	var err error
	name := r.PathValue("action")
	if strings.HasSuffix(r.URL.Path, "/approve") {
		name = "approve"
	}
	switch name {
	case "assess":
		rep := f.Get("reportable")
		if rep != "true" && rep != "false" {
			err = &store.FieldError{Field: "reportable", Message: "choose yes or no"}
			break
		}
		_, err = c.API.Update(ctx, id, workflows.UpdateAssess, workflows.AssessInput{Reportable: rep == "true", Rationale: f.Get("rationale"), Actor: actor})
	case "scope":
		crit := store.ScopeCriteria{Services: splitList(f.Get("services")), Connectors: splitList(f.Get("connectors")),
			Countries: splitList(f.Get("countries")), DataRegions: splitList(f.Get("data_regions")), Regimes: splitList(f.Get("regimes")),
			TenantIDs: splitList(f.Get("tenant_ids")), Exclude: splitList(f.Get("exclude"))}
		if err = crit.Validate(); err == nil && crit.Empty() {
			err = &store.FieldError{Field: "scope", Message: "no criteria"}
		}
		if err == nil {
			_, err = c.API.Update(ctx, id, workflows.UpdateScope, workflows.ScopeInput{Criteria: crit, Actor: actor})
		}
	case "draft":
		raw := strings.TrimSpace(f.Get("draft"))
		if !json.Valid([]byte(raw)) {
			err = &store.FieldError{Field: "draft", Message: "not valid JSON"}
			break
		}
		_, err = c.API.ProposeDraft(ctx, id, json.RawMessage(raw), actor)
	case "approve":
		_, err = c.API.Update(ctx, id, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: f.Get("content_hash"), Actor: actor})
	case "override":
		_, err = c.API.Update(ctx, id, workflows.UpdateOverride, workflows.OverrideInput{Justification: f.Get("justification"), Actor: actor})
	case "followup":
		_, err = c.API.Update(ctx, id, workflows.UpdateFollowup, workflows.FollowupInput{Actor: actor})
	case "retry":
		_, err = c.API.Update(ctx, id, workflows.UpdateRetry, workflows.RetryInput{Actor: actor})
	case "close":
		_, err = c.API.Update(ctx, id, workflows.UpdateClose, workflows.CloseInput{Reason: f.Get("reason"), Actor: actor})
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		code, e := api.ErrorFor(err)
		if code == http.StatusNotFound {
			c.fail(w, r, err)
			return
		}
		c.incidentPage(w, r, code, &flash{"error", fieldMsg(e)})
		return
	}
	http.Redirect(w, r, "/console/incidents/"+id+"?ok=Done:+"+name, http.StatusSeeOther)
}

type reviewItem struct {
	api.ReviewView
	Text, Diff string
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
		it := reviewItem{ReviewView: rv, Text: renderText(rv.Draft)}
		if prev, err := c.Store.PreviousReviewHash(ctx, rv.IncidentID, rv.ID); err == nil && prev != "" && prev != rv.ContentHash {
			if raw, err := c.Store.GetDraft(ctx, rv.IncidentID, prev); err == nil {
				it.Diff = lineDiff(renderText(raw), it.Text)
			}
		}
		items = append(items, it)
	}
	c.render(w, r, code, "partner", page{Title: "Partner reviews", Data: struct{ Reviews []reviewItem }{items}, Flash: fl})
}

func renderText(raw json.RawMessage) string {
	var d notice.Draft
	if json.Unmarshal(raw, &d) != nil {
		return ""
	}
	rd, err := notice.RenderFor(d, notice.Recipient{TenantName: "Example Tenant Ltd", AckURL: "https://example.invalid/ack/preview",
		Deadline: d.Fields.AwareAt.Add(72 * time.Hour), Locale: notice.DefaultLocale})
	if err != nil {
		return ""
	}
	return rd.Subject + "\n\n" + rd.Text
}

// lineDiff lists the lines only in the old text (-) and only in the new one (+).
func lineDiff(old, cur string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	o, n := in(old), in(cur)
	var b strings.Builder
	for _, l := range strings.Split(old, "\n") {
		if !n[l] && strings.TrimSpace(l) != "" {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(cur, "\n") {
		if !o[l] && strings.TrimSpace(l) != "" {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}

func (c *Console) decide(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	decision := f.Get("decision")
	if decision != "confirm" && decision != "request_changes" {
		c.partnerRender(w, r, http.StatusBadRequest, &flash{"error", "decision: confirm or request changes"})
		return
	}
	_, err = c.API.Decide(r.Context(), callerOf(r).key, id, decision == "confirm", f.Get("content_hash"), f.Get("comment"), actorOf(r))
	if err != nil {
		_, e := api.ErrorFor(err)
		code, _ := api.ErrorFor(err)
		c.partnerRender(w, r, code, &flash{"error", fieldMsg(e)})
		return
	}
	http.Redirect(w, r, "/console/partner?ok=Decision+recorded.", http.StatusSeeOther)
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, e := api.ErrorFor(err)
	if code >= 500 {
		c.Logger.Error("console", zap.String("path", r.URL.Path), zap.Error(err))
	}
	if errors.Is(err, store.ErrNotFound) {
		e.Message = "No such incident or review."
	}
	c.render(w, r, code, "incidents", page{Title: "Error", Flash: &flash{"error", e.Message}, Data: incidentsData{Stages: stages}})
}
