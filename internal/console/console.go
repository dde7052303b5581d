// Package console is the server-rendered web console for responders and partner teams:
// sign-in with an API key, incidents, the incident page with its evidence, forms for
// every responder action and the partner review page. Forms go through the same actions
// as the JSON API. No JavaScript is needed.
package console

import (
	"crypto/hmac"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"sigs.k8s.io/yaml"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/authz"
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
	// Keys sign session cookies and CSRF tokens; the first signs new sessions.
	Keys []SessionKey
	// SinkURL links the mail sink's mailbox (dev only).
	SinkURL string
	// Secure marks cookies Secure (serve behind https).
	Secure bool

	pages map[string]*template.Template
}

var funcs = template.FuncMap{
	"join": func(s []string) string { return strings.Join(s, ", ") },
	// listed: v is one of the comma-separated values of a form field shown again.
	"listed": func(csv, v string) bool { return containsStr(splitList(csv), v) },
	// phase labels a notice phase as the English notice does ("Update 2").
	"phase": func(p notice.Phase) string { return notice.PhaseLabel(p, notice.DefaultLocale) },
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
	for _, p := range []string{"login", "incidents", "declare", "incident", "preview", "partner", "audit"} {
		c.pages[p] = template.Must(template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html"))
	}
	static, _ := fs.Sub(staticFS, "static")
	mux := http.NewServeMux()
	mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServer(http.FS(static))))
	for _, rt := range c.routes() {
		h := rt.handler
		switch {
		case rt.Action != "":
			h = c.authed(c.allow(h, rt.Action))
		case !rt.public:
			h = c.authed(h)
		}
		mux.HandleFunc(rt.Pattern, h)
	}
	return securityHeaders(mux)
}

// Route is one console route and the action it takes; an empty Action is a page any
// signed-in key (or, for the sign-in pages, anyone) may open.
type Route struct {
	Pattern string
	Action  authz.Action
}

type consoleRoute struct {
	Route
	public  bool
	handler http.HandlerFunc
}

// routes is the console's whole route table. Each form has a route of its own, named
// here: the action is the route's, never read from the path.
func (c *Console) routes() []consoleRoute {
	rt := func(pattern string, action authz.Action, h http.HandlerFunc) consoleRoute {
		return consoleRoute{Route: Route{Pattern: pattern, Action: action}, handler: h}
	}
	out := []consoleRoute{
		{Route: Route{Pattern: "GET /console/login"}, public: true, handler: c.loginPage},
		{Route: Route{Pattern: "POST /console/login"}, public: true, handler: c.login},
		rt("POST /console/logout", "", c.logout),
		rt("GET /console/{$}", "", c.incidents),
		rt("GET /console/declare", authz.IncidentDeclare, c.declarePage),
		rt("POST /console/declare", authz.IncidentDeclare, c.declare),
		rt("GET /console/incidents/{id}", authz.IncidentRead, c.incident),
		rt("GET /console/incidents/{id}/tenants.csv", authz.IncidentRead, c.evidenceCSV),
		rt("GET /console/incidents/{id}/preview", authz.IncidentRead, c.tenantPreview),
		rt("GET /console/partner", authz.PartnerRead, c.partnerPage),
		rt("POST /console/partner/reviews/{id}/decision", authz.PartnerDecide, c.decide),
		rt("GET /console/audit", authz.AuditVerify, c.auditPage),
	}
	for _, a := range formActions {
		out = append(out, rt("POST /console/incidents/{id}/"+a.name, a.action, c.action(a)))
	}
	return out
}

// Routes lists the console's routes with the action each takes.
func Routes() []Route {
	var out []Route
	for _, rt := range (&Console{}).routes() {
		out = append(out, rt.Route)
	}
	return out
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
	CanAudit                           bool
}

type ctxKey struct{}

type caller struct {
	key  store.APIKey
	sess session
}

// notices are the only messages a redirect may show, by code: a banner never shows
// text that came in a URL.
var notices = map[string]string{
	"declared":    "Declared.",
	"decision":    "Decision recorded.",
	"signed_out":  "Signed out.",
	"assess":      "Done: assessment recorded.",
	"scope":       "Done: scope resolved.",
	"draft":       "Done: draft proposed.",
	"approve":     "Done: approval recorded.",
	"override":    "Done: partner gate overridden.",
	"followup":    "Done: follow-up drafted; it is sent once two people approve it.",
	"retry":       "Done: retry requested.",
	"close":       "Done: incident closed.",
	"not_allowed": "Not allowed.",
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	if cl, ok := r.Context().Value(ctxKey{}).(caller); ok {
		p.Key = cl.key
		p.CSRF = c.csrfFor(cl.sess)
		p.CanRespond = authz.Allows(cl.key.Roles, authz.IncidentDeclare)
		p.CanApprove = authz.Allows(cl.key.Roles, authz.IncidentApprove)
		p.CanPartner = authz.Allows(cl.key.Roles, authz.PartnerRead)
		p.CanAudit = authz.Allows(cl.key.Roles, authz.AuditVerify)
	}
	p.SinkURL = c.SinkURL
	if m, ok := notices[r.URL.Query().Get("ok")]; ok && p.Flash == nil {
		p.Flash = &flash{Kind: "info", Message: m}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if err := c.pages[name].ExecuteTemplate(w, "layout", p); err != nil {
		c.Logger.Error("render console page", zap.String("page", name), zap.Error(err))
	}
}

// authed admits requests with a live session (of a live key) and checks the CSRF token
// of every POST.
func (c *Console) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, err := c.readSession(r)
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
			if field, ok := invalidUTF8(r.PostForm); ok {
				http.Error(w, field+": not valid UTF-8; nothing was changed", http.StatusBadRequest)
				return
			}
			if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(c.csrfFor(sess))) {
				c.API.Deny(r, r.Pattern, "console CSRF token refused", sess.key.ID)
				http.Error(w, "missing or wrong CSRF token; reload the page and try again", http.StatusForbidden)
				return
			}
		}
		r = r.WithContext(contextWith(r.Context(), caller{key: sess.key, sess: sess}))
		h(w, r)
	}
}

// invalidUTF8 names the first form field whose name or value is not valid UTF-8: Go
// would carry the bytes on and JSON would turn them into U+FFFD, so the audit trail would
// hold text nobody typed.
func invalidUTF8(f url.Values) (string, bool) {
	for k, vs := range f {
		if !utf8.ValidString(k) {
			return "form", true
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return k, true
			}
		}
	}
	return "", false
}

// allow refuses keys whose roles may not take action, as the API does (the action
// itself checks again in the service behind both).
func (c *Console) allow(h http.HandlerFunc, action authz.Action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k := callerOf(r).key
		if !authz.Allows(k.Roles, action) {
			c.forbidden(w, r, k)
			return
		}
		h(w, r)
	}
}

func (c *Console) forbidden(w http.ResponseWriter, r *http.Request, k store.APIKey) {
	c.API.Deny(r, r.Pattern, "role not allowed", k.ID)
	c.render(w, r, http.StatusForbidden, "incidents", page{Title: "Not allowed",
		Flash: &flash{"error", "Your key's roles (" + strings.Join(k.Roles, ", ") + ") may not do that."}, Data: incidentsData{}})
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	tok := c.loginToken(w, r)
	c.render(w, r, http.StatusOK, "login", page{Title: "Sign in", CSRF: tok})
}

// login signs a key in. Attempts are limited per address and refusals audited.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	ck, err := r.Cookie(loginCookie)
	if err != nil || !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(ck.Value)) {
		http.Error(w, "missing or wrong CSRF token; reload the sign-in page", http.StatusForbidden)
		return
	}
	if ok, wait := c.API.AllowSignIn(r); !ok {
		c.API.Deny(r, r.Pattern, "console sign-in rate limited", 0)
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		c.render(w, r, http.StatusTooManyRequests, "login", page{Title: "Sign in", CSRF: ck.Value,
			Flash: &flash{"error", "Too many sign-in attempts from your address; wait a minute and try again."}})
		return
	}
	k, err := c.Store.Authenticate(r.Context(), strings.TrimSpace(r.PostForm.Get("key")))
	if err != nil {
		c.API.Deny(r, r.Pattern, "console sign-in refused", 0)
		c.render(w, r, http.StatusUnauthorized, "login", page{Title: "Sign in", CSRF: ck.Value,
			Flash: &flash{"error", "That key is unknown or revoked."}})
		return
	}
	if err := c.newSession(w, r, k.ID); err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

// logout ends the session in the database, so its cookie is worthless even if kept.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if err := c.endSession(r, callerOf(r).sess); err != nil {
		c.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/console/", MaxAge: -1, HttpOnly: true, Secure: c.Secure, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/console/login?ok=signed_out", http.StatusSeeOther)
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
	if !authz.Allows(k.Roles, authz.IncidentRead) {
		if authz.Allows(k.Roles, authz.PartnerRead) {
			http.Redirect(w, r, "/console/partner", http.StatusSeeOther)
			return
		}
		c.render(w, r, http.StatusOK, "incidents", page{Title: "Incidents", Data: incidentsData{Stages: stages},
			Flash: &flash{"info", "Your key's roles (" + strings.Join(k.Roles, ", ") + ") manage API keys; incidents are for responders and approvers."}})
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
	// Locales are the locales other than English, each of which the notice may send the
	// English text to by choice until it is translated.
	Locales []string
}

func (c *Console) declareData(r *http.Request) declareData {
	ps, err := c.Store.ListPartners(r.Context())
	if err != nil {
		c.Logger.Error("list partners", zap.Error(err))
	}
	var locales []string
	for _, loc := range notice.Locales() {
		if loc != notice.DefaultLocale {
			locales = append(locales, loc)
		}
	}
	return declareData{Severities: store.Severities, Partners: ps, Locales: locales}
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

// formMap is the posted form to show again; a field posted more than once (checkboxes)
// keeps its values comma-separated.
func formMap(r *http.Request) map[string]string {
	m := map[string]string{}
	for k, vs := range r.PostForm {
		if k != "csrf" {
			m[k] = strings.Join(vs, ",")
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
	// The title, awareness time and categories are the declaration's: the service fills
	// them in, and they are set here only so the form's draft can be checked first.
	draft := notice.Draft{Fields: notice.Fields{Nature: f["nature"], DataSubjectCategories: splitList(f["subjects"]),
		ApproxDataSubjects: counts["approx_subjects"], ApproxRecords: counts["approx_records"],
		Contact: cp, LikelyConsequences: f["consequences"], MeasuresTaken: f["measures_taken"], MeasuresProposed: f["measures_proposed"]},
		EnglishFallback: r.PostForm["english_fallback"]}
	// The reference is the incident id, unknown until it is stored: drafts are completed
	// and validated here with a placeholder, then proposed once the incident exists.
	check := draft
	check.Fields.Reference, check.Fields.Title, check.Fields.AwareAt, check.Fields.DataCategories = "pending", d.Title, awareAt, cats
	check.Sender = c.API.Sender
	if err := notice.Validate(check); err != nil {
		again(err.Error())
		return
	}
	inc, _, err := c.API.Declare(r.Context(), callerOf(r).key, "", d)
	if err != nil {
		_, e := api.ErrorFor(err)
		again(fieldMsg(e))
		return
	}
	draft.Fields.Reference = inc.ID
	raw, _ := json.Marshal(draft)
	if _, err := c.API.ProposeDraft(r.Context(), callerOf(r).key, inc.ID, raw); err != nil {
		c.Logger.Warn("draft after declaration", zap.String("incident_id", inc.ID), zap.Error(err))
	}
	http.Redirect(w, r, "/console/incidents/"+inc.ID+"?ok=declared", http.StatusSeeOther)
}

func fieldMsg(e api.Error) string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
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

// formAction is one responder form: its route name, the action it takes and how its
// fields become that action's input.
type formAction struct {
	name   string
	action authz.Action
	input  func(f url.Values) (any, error)
}

// formActions is the fixed set of responder forms.
var formActions = []formAction{
	{"assess", authz.IncidentAssess, func(f url.Values) (any, error) {
		rep := f.Get("reportable")
		if rep != "true" && rep != "false" {
			return nil, &store.FieldError{Field: "reportable", Message: "choose yes or no"}
		}
		return workflows.AssessInput{Reportable: rep == "true", Rationale: f.Get("rationale")}, nil
	}},
	{"scope", authz.IncidentScope, func(f url.Values) (any, error) {
		crit := store.ScopeCriteria{Services: splitList(f.Get("services")), Connectors: splitList(f.Get("connectors")),
			Countries: splitList(f.Get("countries")), DataRegions: splitList(f.Get("data_regions")), Regimes: splitList(f.Get("regimes")),
			TenantIDs: splitList(f.Get("tenant_ids")), Exclude: splitList(f.Get("exclude"))}
		if err := crit.Validate(); err != nil {
			return nil, err
		}
		if crit.Empty() {
			return nil, &store.FieldError{Field: "scope", Message: "no criteria"}
		}
		return workflows.ScopeInput{Criteria: crit}, nil
	}},
	{"draft", authz.IncidentDraft, func(f url.Values) (any, error) {
		raw, err := draftOf(f.Get("draft"), "draft")
		if err != nil {
			return nil, err
		}
		return draftInput{raw}, nil
	}},
	{"approve", authz.IncidentApprove, func(f url.Values) (any, error) {
		return workflows.ApproveInput{ContentHash: f.Get("content_hash")}, nil
	}},
	{"override", authz.IncidentOverride, func(f url.Values) (any, error) {
		return workflows.OverrideInput{Justification: f.Get("justification")}, nil
	}},
	{"followup", authz.IncidentFollowup, func(f url.Values) (any, error) {
		kind := f.Get("kind")
		if kind != notice.PhaseUpdate && kind != notice.PhaseFinal {
			return nil, &store.FieldError{Field: "kind", Message: "choose an update or the final notice"}
		}
		raw, err := draftOf(f.Get("notice"), "notice")
		if err != nil {
			return nil, err
		}
		return followupInput{kind: kind, draft: raw}, nil
	}},
	{"retry", authz.IncidentRetry, func(url.Values) (any, error) { return workflows.RetryInput{}, nil }},
	{"close", authz.IncidentClose, func(f url.Values) (any, error) {
		return workflows.CloseInput{Reason: f.Get("reason")}, nil
	}},
}

// draftInput is the draft form's notice draft, for the current phase.
type draftInput struct{ draft json.RawMessage }

// followupInput is the follow-up form's draft of the next phase, of kind update or final.
type followupInput struct {
	kind  string
	draft json.RawMessage
}

// draftOf reads a notice draft typed into field as JSON or YAML (YAML is a superset of
// JSON) and returns it as JSON.
func draftOf(text, field string) (json.RawMessage, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil, &store.FieldError{Field: field, Message: "required: the notice draft, as JSON or YAML"}
	}
	raw, err := yaml.YAMLToJSON([]byte(text))
	if err != nil {
		return nil, &store.FieldError{Field: field, Message: "not valid JSON or YAML: " + err.Error()}
	}
	if !json.Valid(raw) {
		return nil, &store.FieldError{Field: field, Message: "not valid JSON or YAML"}
	}
	return raw, nil
}

// action runs one responder form through the same service as the API.
func (c *Console) action(a formAction) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id := r.PathValue("id")
		k := callerOf(r).key
		in, err := a.input(r.PostForm)
		if err == nil {
			switch v := in.(type) {
			case draftInput:
				_, err = c.API.ProposeDraft(ctx, k, id, v.draft)
			case followupInput:
				_, err = c.API.ProposeFollowup(ctx, k, id, v.kind, v.draft)
			default:
				_, err = c.API.Do(ctx, k, id, in)
			}
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
		http.Redirect(w, r, "/console/incidents/"+id+"?ok="+a.name, http.StatusSeeOther)
	}
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
	_, err = c.API.Decide(r.Context(), callerOf(r).key, id, decision == "confirm", f.Get("content_hash"), f.Get("comment"))
	if err != nil {
		_, e := api.ErrorFor(err)
		code, _ := api.ErrorFor(err)
		c.partnerRender(w, r, code, &flash{"error", fieldMsg(e)})
		return
	}
	http.Redirect(w, r, "/console/partner?ok=decision", http.StatusSeeOther)
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
