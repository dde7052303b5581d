package activities

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
)

// PlanRound writes a round's outbox rows and acknowledgement tokens.
func (a *Activities) PlanRound(ctx context.Context, p store.RoundPlan) (store.RoundPlanned, error) {
	if len(p.Locales) == 0 {
		p.Locales = notice.Locales()
	}
	if p.Fallback == "" {
		p.Fallback = notice.DefaultLocale
	}
	out, err := a.Store.PlanRound(ctx, p, a.AckSecret)
	return out, classify(err)
}

// SendPageInput names one page of a round.
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
}

var subjectPrefix = map[string]string{
	store.RoundReminder:   "[Reminder] ",
	store.RoundEscalation: "[Reminder] ",
	store.RoundFollowup:   "[Update] ",
}

// SendPage sends the unsent notices of one page through SendGrid: it claims them in the
// outbox, renders the approved notice in the page's locale, sends one request (more only
// when the page holds the same address twice, which SendGrid refuses), and records
// SendGrid's message id. A retry sends only what is not yet recorded as sent.
func (a *Activities) SendPage(ctx context.Context, in SendPageInput) (SendPageResult, error) {
	var res SendPageResult
	cp, err := a.Store.ClaimPage(ctx, in.IncidentID, in.Round, in.Page, a.AckSecret)
	if err != nil {
		return res, classify(err)
	}
	res.AlreadySent = cp.AlreadySent
	if len(cp.Recipients) == 0 {
		return res, nil
	}
	inc, err := a.Store.GetIncident(ctx, in.IncidentID)
	if err != nil {
		return res, classify(err)
	}
	d, err := ParseDraft(inc.NoticeDraft)
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, err)
	}
	if h := notice.ContentHash(d); h != cp.ContentHash {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("notice changed since round %d was approved", in.Round), ErrTypeInvalidInput, nil)
	}
	rendered, err := notice.Render(d, cp.Locale)
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, err)
	}
	base := strings.TrimRight(a.PublicURL, "/")
	for _, batch := range distinctBatches(cp.Recipients) {
		page := mail.Page{Subject: subjectPrefix[cp.Kind] + rendered.Subject, Text: rendered.Text, HTML: rendered.HTML}
		ids := make([]int64, len(batch))
		for i, r := range batch {
			ids[i] = r.NoticeID
			page.Personalizations = append(page.Personalizations, mail.Personalization{
				To: r.Email, ToName: r.Name,
				Substitutions: notice.Substitutions(notice.Recipient{TenantName: r.TenantName, AckURL: base + "/ack/" + r.Token,
					Deadline: r.Deadline, Locale: cp.Locale}),
				Args: mail.CustomArgs{NoticeID: strconv.FormatInt(r.NoticeID, 10), IncidentID: in.IncidentID, Round: in.Round},
			})
		}
		result, err := a.Mail.Send(ctx, page)
		if err != nil {
			terr := mail.TemporalError(err)
			var appErr *temporal.ApplicationError
			if errors.As(terr, &appErr) && appErr.NonRetryable() {
				if ferr := a.Store.MarkFailed(ctx, ids, appErr.Error()); ferr != nil {
					return res, ferr
				}
			}
			a.Logger.Warn("send page failed", zap.String("incident_id", in.IncidentID), zap.Int("round", in.Round),
				zap.Int("page", in.Page), zap.Error(terr))
			return res, terr
		}
		res.Requests++
		if err := a.Store.MarkSent(ctx, ids, result.MessageID); err != nil {
			return res, err
		}
		res.Sent += len(ids)
		activity.RecordHeartbeat(ctx, res.Sent)
	}
	return res, nil
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
