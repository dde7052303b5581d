package activities

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
)

// PlanStepInput plans the next step of a notification pass.
type PlanStepInput struct {
	IncidentID   string `json:"incident_id"`
	Pass         int    `json:"pass"`
	Kind         string `json:"kind"`  // initial, followup (a phase's notices), reminder
	Phase        int    `json:"phase"` // the phase a notice pass delivers; 0 for reminders
	ScopeVersion int    `json:"scope_version"`
	// ReminderAfter and EscalateFrom schedule reminders (Phase 0 only).
	ReminderAfter []time.Duration `json:"reminder_after,omitempty"`
	EscalateFrom  int             `json:"escalate_from,omitempty"`
	// Lane is which of the pass's Lanes this step plans; 0 lanes is one.
	Lane     int           `json:"lane,omitempty"`
	Lanes    int           `json:"lanes,omitempty"`
	Chunk    int           `json:"chunk"`
	PageSize int           `json:"page_size"`
	TokenTTL time.Duration `json:"token_ttl"`
}

// PlanStepResult is where the pass's planning stands.
type PlanStepResult struct {
	Pages       int  `json:"pages"`
	Notices     int  `json:"notices"`
	Tenants     int  `json:"tenants"`
	Unreachable int  `json:"unreachable"`
	Done        bool `json:"done"`
}

// PlanStep plans up to Chunk more tenants of a pass into the outbox.
func (a *Activities) PlanStep(ctx context.Context, in PlanStepInput) (PlanStepResult, error) {
	a.alertIfStuck(ctx, in.IncidentID, "planning pass "+strconv.Itoa(in.Pass)+" lane "+strconv.Itoa(in.Lane))
	out, err := a.Store.PlanStep(ctx, store.PassPlan{IncidentID: in.IncidentID, Pass: in.Pass, Kind: in.Kind, Phase: in.Phase,
		ScopeVersion: in.ScopeVersion, ReminderAfter: in.ReminderAfter, EscalateFrom: in.EscalateFrom, Lane: in.Lane, Lanes: in.Lanes, Chunk: in.Chunk,
		PageSize: in.PageSize, Locales: notice.Locales(), Fallback: notice.DefaultLocale, TokenTTL: in.TokenTTL}, a.AckSecret)
	return PlanStepResult{Pages: out.Pages, Notices: out.Notices, Tenants: out.Tenants, Unreachable: out.Unreachable, Done: out.Done}, classify(err)
}

// SendPageInput names one page of a pass.
type SendPageInput struct {
	IncidentID string `json:"incident_id"`
	Round      int    `json:"round"`
	Page       int    `json:"page"`
}

// SendPageResult counts what a page did.
type SendPageResult struct {
	Sent        int `json:"sent"`
	AlreadySent int `json:"already_sent"`
	Requests    int `json:"requests"`
	// PossibleDuplicates counts notices sent again after being in doubt.
	PossibleDuplicates int `json:"possible_duplicates,omitempty"`
}

// ErrTypeInDoubt is a page with notices in doubt: a retry after the grace window
// settles them from their delivery events, or sends them again as possible duplicates.
const ErrTypeInDoubt = "NoticesInDoubt"

// DefaultInDoubtGrace is how long a notice whose send got no recorded answer waits for
// SendGrid's delivery events before it is sent again. SendGrid posts events in batches
// within about 30 seconds: a shorter wait sends more duplicates, a longer one makes a
// crashed page's notices later.
const DefaultInDoubtGrace = time.Minute

func (a *Activities) inDoubtGrace() time.Duration {
	if a.InDoubtGrace > 0 {
		return a.InDoubtGrace
	}
	return DefaultInDoubtGrace
}

// SendPage sends the unsent notices of one page through SendGrid: it claims them in the
// outbox, renders the approved notice they carry in the page's locale, sends one request
// (more only when the page holds the same address twice, which SendGrid refuses), and
// records SendGrid's message id. A retry sends only what is not yet recorded as sent. A
// refusal for good marks the notices failed (their tenants stay owed); a temporary error
// puts them back for the next attempt. A send whose answer never came is in doubt: its
// notices stay claimed and the page is retried after the grace window, when delivery
// events have settled them or they are sent again as possible duplicates.
func (a *Activities) SendPage(ctx context.Context, in SendPageInput) (res SendPageResult, err error) {
	defer func() { a.Metrics.Page(pageOutcome(res, err), res.Sent, res.PossibleDuplicates) }()
	a.alertIfStuck(ctx, in.IncidentID, fmt.Sprintf("sending page %d of pass %d", in.Page, in.Round))
	grace := a.inDoubtGrace()
	cp, err := a.Store.ClaimPage(ctx, in.IncidentID, in.Round, in.Page, a.AckSecret, grace)
	if err != nil {
		return res, classify(err)
	}
	res.AlreadySent, res.PossibleDuplicates = cp.AlreadySent, cp.Resent
	if cp.Resent > 0 {
		a.Logger.Warn("notices in doubt sent again", zap.String("incident_id", in.IncidentID), zap.Int("round", in.Round),
			zap.Int("page", in.Page), zap.Int("notices", cp.Resent))
		if aerr := a.AlertResponders(ctx, AlertInput{IncidentID: in.IncidentID, Kind: "possible_duplicates",
			Detail: map[string]any{"notices": cp.Resent, "pass": in.Round, "page": in.Page},
			Message: fmt.Sprintf("%d notices of page %d of pass %d were sent again: their first send's answer was lost and no delivery "+
				"event confirmed them within %s; their recipients may have the notice twice", cp.Resent, in.Page, in.Round, grace)}); aerr != nil {
			a.Logger.Error("alert about possible duplicates", zap.String("incident_id", in.IncidentID), zap.Error(aerr))
		}
	}
	if err = a.sendClaimed(ctx, in, cp, &res); err != nil {
		return res, err
	}
	if cp.InDoubt > 0 {
		return res, inDoubt(cp.InDoubt, time.Until(cp.SettleBy))
	}
	return res, nil
}

// inDoubt is the retryable error of a page holding n notices in doubt for wait more.
func inDoubt(n int, wait time.Duration) error {
	return temporal.NewApplicationErrorWithOptions(fmt.Sprintf("%d notices in doubt: waiting %s for their delivery events", n, wait.Round(time.Second)),
		ErrTypeInDoubt, temporal.ApplicationErrorOptions{NextRetryDelay: max(wait, time.Second)})
}

// sendClaimed sends a claimed page and records what SendGrid accepted. It settles the
// page's claim when SendGrid's answer to everything it sent is recorded; a claim left
// behind puts the page's unsent notices in doubt for the next attempt.
func (a *Activities) sendClaimed(ctx context.Context, in SendPageInput, cp store.ClaimedPage, res *SendPageResult) (err error) {
	if len(cp.Recipients) == 0 {
		return nil
	}
	// Until each is recorded sent, the claimed notices are put back (temporary error) or
	// marked failed (permanent) when the attempt ends early — unless their send is in
	// doubt, when they are marked so for the grace window.
	unsent := map[int64]bool{}
	for _, r := range cp.Recipients {
		unsent[r.NoticeID] = true
	}
	recorded := true // SendGrid's every answer so far is in the database
	defer func() {
		bg := context.WithoutCancel(ctx)
		if len(unsent) > 0 && err != nil {
			ids := make([]int64, 0, len(unsent))
			for id := range unsent {
				ids = append(ids, id)
			}
			var appErr *temporal.ApplicationError
			var ferr error
			if errors.As(err, &appErr) && appErr.NonRetryable() {
				ferr = a.Store.MarkFailed(bg, in.IncidentID, ids, appErr.Error())
			} else {
				ferr = a.Store.ReleaseClaims(bg, ids, err.Error())
			}
			if ferr != nil {
				// They stay pending, unsent: only the note of why is lost.
				a.Logger.Error("settle unsent claims", zap.String("incident_id", in.IncidentID), zap.Int("round", in.Round), zap.Error(ferr))
			}
		}
		if !recorded {
			return
		}
		if serr := a.retrying(ctx, func() error { return a.Store.SettlePage(bg, cp.Ref) }); serr != nil {
			a.Logger.Error("settle page", zap.String("incident_id", in.IncidentID), zap.Int("round", in.Round), zap.Int("page", in.Page), zap.Error(serr))
		}
	}()
	rendered, err := a.render(ctx, in.IncidentID, cp.ContentHash, cp.Locale)
	if err != nil {
		return err
	}
	// From here SendGrid may have the page: a claim left behind now puts it in doubt.
	if err = a.Store.StartRequest(ctx, cp.Ref); err != nil {
		return err
	}
	base := strings.TrimRight(a.PublicURL, "/")
	// Everything substituted is the tenant's (name, link, deadline, facts; the page has
	// one locale): its contacts share one map, made once.
	subs := map[string]map[string]string{}
	for _, batch := range distinctBatches(cp.Recipients) {
		page := mail.Page{Subject: store.SubjectPrefix(cp.Kind, cp.Locale) + rendered.Subject, Text: rendered.Text, HTML: rendered.HTML, ReplyTo: rendered.ReplyTo}
		ids := make([]int64, len(batch))
		for i, r := range batch {
			ids[i] = r.NoticeID
			sub, ok := subs[r.TenantID]
			if !ok {
				sub = notice.Substitutions(notice.Recipient{TenantName: r.TenantName, AckURL: base + "/ack/" + r.Token,
					Deadline: r.Deadline, Locale: cp.Locale, Facts: r.Facts})
				subs[r.TenantID] = sub
			}
			page.Personalizations = append(page.Personalizations, mail.Personalization{
				To: r.Email, ToName: r.Name, Substitutions: sub,
				Args: mail.CustomArgs{NoticeID: strconv.FormatInt(r.NoticeID, 10), IncidentID: in.IncidentID, Round: in.Round},
			})
		}
		start := time.Now()
		result, serr := a.Mail.Send(ctx, page)
		a.Metrics.Request(time.Since(start), serr)
		if serr != nil {
			if mail.InDoubt(serr) {
				// SendGrid may have them: marked in doubt, to be settled by their events or
				// sent again as possible duplicates after the grace window, never on a guess
				// now. If even that cannot be recorded, the page's claim stays and says so.
				for _, id := range ids {
					delete(unsent, id)
				}
				if merr := a.retrying(ctx, func() error { return a.Store.MarkInDoubt(context.WithoutCancel(ctx), ids, serr.Error()) }); merr != nil {
					recorded = false
					a.Logger.Error("record notices in doubt", zap.String("incident_id", in.IncidentID), zap.Error(merr))
				}
				a.Logger.Warn("send page in doubt", zap.String("incident_id", in.IncidentID), zap.Int("round", in.Round),
					zap.Int("page", in.Page), zap.Error(serr))
				return inDoubt(len(ids), a.inDoubtGrace())
			}
			err = mail.TemporalError(serr)
			a.Logger.Warn("send page failed", zap.String("incident_id", in.IncidentID), zap.Int("round", in.Round),
				zap.Int("page", in.Page), zap.Error(err))
			return err
		}
		res.Requests++
		// SendGrid has them: not to be put back or failed on a guess, even if recording
		// fails (the claim left behind then keeps them in doubt for the retry).
		for _, id := range ids {
			delete(unsent, id)
		}
		if err = a.markSent(ctx, in.IncidentID, ids, result.MessageID); err != nil {
			recorded = false
			return err
		}
		res.Sent += len(ids)
	}
	return nil
}

// markSent records what SendGrid accepted. SendGrid has these notices: a failure to
// record it (PostgreSQL down) is retried for as long as the attempt lives (the worker
// heartbeats it meanwhile),
// because a retried page would find them in doubt and, without delivery events, send them
// again.
func (a *Activities) markSent(ctx context.Context, incidentID string, ids []int64, messageID string) error {
	return a.retrying(ctx, func() error { return a.Store.MarkSent(ctx, incidentID, ids, messageID) })
}

// retrying runs write until it succeeds or the attempt ends:
// what it records (an answer SendGrid gave, a page's settled claim) would otherwise be
// doubted by the next attempt.
func (a *Activities) retrying(ctx context.Context, write func() error) error {
	wait := 200 * time.Millisecond
	for {
		err := write()
		if err == nil || ctx.Err() != nil {
			return err
		}
		a.Logger.Warn("record a page's outcome: retrying", zap.Error(err))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// renderCache keeps rendered notices by (incident, content hash, locale): a notice's
// content never changes under its hash, so a page need not re-read and re-render it.
type renderCache struct {
	mu sync.Mutex
	m  map[string]renderedNotice
}

// renderedNotice is one locale's rendering of a notice and where replies to it go.
type renderedNotice struct {
	notice.Rendered
	ReplyTo string
}

const renderCacheMax = 256

func (a *Activities) render(ctx context.Context, incidentID, hash, locale string) (renderedNotice, error) {
	key := incidentID + "/" + hash + "/" + locale
	a.cache.mu.Lock()
	r, ok := a.cache.m[key]
	a.cache.mu.Unlock()
	if ok {
		return r, nil
	}
	raw, err := a.Store.GetDraft(ctx, incidentID, hash)
	if err != nil {
		return r, classify(err)
	}
	d, err := ParseDraft(raw)
	if err != nil {
		return r, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, err)
	}
	if h := notice.ContentHash(d); h != hash {
		return r, temporal.NewNonRetryableApplicationError("stored notice does not match its content hash "+hash, ErrTypeInvalidInput, nil)
	}
	if r.Rendered, err = notice.Render(d, locale); err != nil {
		return r, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, err)
	}
	r.ReplyTo = d.Sender.ReplyTo
	a.cache.mu.Lock()
	if a.cache.m == nil || len(a.cache.m) >= renderCacheMax {
		a.cache.m = map[string]renderedNotice{}
	}
	a.cache.m[key] = r
	a.cache.mu.Unlock()
	return r, nil
}

// stuckAttempts are the attempts at which an activity that keeps failing (or timing out)
// alerts the responders: nothing retries forever in silence.
var stuckAttempts = map[int32]bool{4: true, 10: true, 30: true, 100: true, 300: true, 1000: true}

// alertIfStuck raises an alert when this is one of the stuckAttempts of the running
// activity; the alert never fails the activity.
func (a *Activities) alertIfStuck(ctx context.Context, incidentID, what string) {
	if !activity.IsActivity(ctx) {
		return
	}
	info := activity.GetInfo(ctx)
	if !stuckAttempts[info.Attempt] {
		return
	}
	msg := fmt.Sprintf("%s keeps failing: attempt %d of activity %s", what, info.Attempt, info.ActivityType.Name)
	a.Logger.Error("activity keeps failing", zap.String("incident_id", incidentID), zap.String("activity", info.ActivityType.Name),
		zap.Int32("attempt", info.Attempt))
	if err := a.AlertResponders(ctx, AlertInput{IncidentID: incidentID, Kind: "activity_failing", Message: msg,
		Detail: map[string]any{"activity": info.ActivityType.Name, "attempt": info.Attempt}}); err != nil {
		a.Logger.Error("alert about a failing activity", zap.String("incident_id", incidentID), zap.Error(err))
	}
}

// distinctBatches splits recipients so that no address appears twice in one request.
func distinctBatches(rs []store.Recipient) [][]store.Recipient {
	var batches [][]store.Recipient
	var seen []map[string]bool
	for _, r := range rs {
		key := strings.ToLower(r.Email)
		placed := false
		for i := range batches {
			if !seen[i][key] {
				batches[i] = append(batches[i], r)
				seen[i][key] = true
				placed = true
				break
			}
		}
		if !placed {
			batches = append(batches, []store.Recipient{r})
			seen = append(seen, map[string]bool{key: true})
		}
	}
	return batches
}
