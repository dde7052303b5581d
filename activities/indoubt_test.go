package activities_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/store"
)

// perRecipient counts the messages each address received at the sink.
func (f *fixture) perRecipient() map[string]int {
	out := map[string]int{}
	for _, m := range f.sink.Messages(sink.Query{Limit: 100000}).Messages {
		for _, to := range m.To {
			out[to.Email]++
		}
	}
	return out
}

func inDoubtError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, activities.ErrTypeInDoubt, appErr.Type(), "%v", err)
	require.False(t, appErr.NonRetryable())
	return appErr
}

// A page whose first attempt died after SendGrid accepted it, before the answer was
// recorded, with no delivery event yet: the retry sends nothing within the grace window,
// and after it sends again only what is still unconfirmed, each recorded as a possible
// duplicate (in the outbox, the pass counts, the audit trail and an alert).
func TestInDoubtNoticesWaitOutTheGraceWindowThenAreRecordedDuplicates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 20, "SG.good")
	f.acts.InDoubtGrace = 1500 * time.Millisecond
	_, err := f.send(0)
	require.NoError(t, err)
	ctx := context.Background()
	// As if the worker died after SendGrid accepted the page: still "sending", claimed
	// just now, no answer recorded and no event (the webhook is off).
	_, err = f.st.Pool().Exec(ctx, `UPDATE notices SET status = 'sending', provider_message_id = NULL, sent_at = NULL, claimed_at = now()
		WHERE incident_id = $1`, f.id)
	require.NoError(t, err)
	// Five of them are confirmed by SendGrid's events while we wait.
	_, err = f.st.Pool().Exec(ctx, `INSERT INTO delivery_events (sg_event_id, notice_id, event, occurred_at)
		SELECT 'ev-' || id, id, 'processed', now() FROM notices WHERE incident_id = $1 ORDER BY id LIMIT 5`, f.id)
	require.NoError(t, err)

	_, err = f.send(0)
	appErr := inDoubtError(t, err)
	require.Contains(t, appErr.Error(), "15 notices in doubt")
	require.Equal(t, 20, len(f.perRecipient()))
	for to, n := range f.perRecipient() {
		require.Equal(t, 1, n, "%s got a second notice within the grace window", to)
	}
	require.Equal(t, map[string]int{"sent": 5, "sending": 15}, f.statuses(t))

	time.Sleep(f.acts.InDoubtGrace)
	r, err := f.send(0)
	require.NoError(t, err)
	require.Equal(t, 15, r.Sent)
	require.Equal(t, 15, r.PossibleDuplicates)
	got := f.perRecipient()
	twice := 0
	for _, n := range got {
		require.LessOrEqual(t, n, 2)
		if n == 2 {
			twice++
		}
	}
	require.Equal(t, 15, twice, "only the unconfirmed ones are sent again")
	var marked, audited int
	require.NoError(t, f.st.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM notices WHERE incident_id = $1 AND possible_duplicate),
		(SELECT coalesce(sum((detail->>'notices')::int), 0) FROM audit_log WHERE incident_id = $1 AND action = 'notice.possible_duplicate')`, f.id).
		Scan(&marked, &audited))
	require.Equal(t, twice, marked, "every duplicate a recipient may have is recorded")
	require.Equal(t, twice, audited)
	rounds, err := f.st.Rounds(ctx, f.id)
	require.NoError(t, err)
	require.Equal(t, twice, rounds[0].PossibleDuplicates)
	alerts, err := f.st.Alerts(ctx, f.id, 10)
	require.NoError(t, err)
	require.NotEmpty(t, alerts)
	require.Equal(t, "possible_duplicates", alerts[0].Kind)

	// A third attempt sends nothing more.
	r, err = f.send(0)
	require.NoError(t, err)
	require.Zero(t, r.Sent)
	require.Equal(t, got, f.perRecipient())
}

// A request whose answer never comes (the client times out after SendGrid accepted the
// mail) is in doubt: its notices are not put back for an immediate resend, and once the
// page's events arrive the retry settles them without sending again.
func TestTimedOutSendIsInDoubtNotResent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10, "SG.good")
	f.acts.InDoubtGrace = time.Minute
	slow, err := mail.NewSender(mail.Config{APIKey: "SG.good", BaseURL: f.sinkURL, FromEmail: "notices@provider.example",
		Timeout: 300 * time.Millisecond}, nil)
	require.NoError(t, err)
	f.acts.Mail = slow
	require.NoError(t, f.sink.SetFaults(sink.Faults{AnswerDelayMillis: 2000}))
	_, err = f.send(0)
	inDoubtError(t, err)
	require.Equal(t, 10, len(f.perRecipient()), "the sink has the page")
	require.Equal(t, map[string]int{"sending": 10}, f.statuses(t), "claimed, not put back")

	require.NoError(t, f.sink.SetFaults(sink.Faults{}))
	_, err = f.send(0)
	inDoubtError(t, err) // still within the window, no events: nothing sent
	require.Equal(t, 10, len(f.sink.Messages(sink.Query{}).Messages))

	// The events arrive (as the webhook would post them): the retry settles the page.
	_, err = f.st.Pool().Exec(context.Background(), `INSERT INTO delivery_events (sg_event_id, notice_id, event, occurred_at)
		SELECT 'ev-' || id, id, 'processed', now() FROM notices WHERE incident_id = $1`, f.id)
	require.NoError(t, err)
	r, err := f.send(0)
	require.NoError(t, err)
	require.Zero(t, r.Sent)
	require.Equal(t, map[string]int{"sent": 10}, f.statuses(t))
	require.Equal(t, 10, len(f.sink.Messages(sink.Query{}).Messages), "each recipient told once")
}

// A page whose attempt died after its request started, with nothing recorded (the
// worker was killed mid-request): the claim it left puts every unsent notice of the page
// in doubt, so the retry sends nothing within the grace window and afterwards sends them
// again, each recorded as a possible duplicate.
func TestLeftClaimPutsThePageInDoubt(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 20, "SG.good")
	f.acts.InDoubtGrace = 1500 * time.Millisecond
	ctx := context.Background()
	cp, err := f.st.ClaimPage(ctx, f.id, 1, 0, f.acts.AckSecret, f.acts.InDoubtGrace)
	require.NoError(t, err)
	require.Len(t, cp.Recipients, 20)
	require.NotZero(t, cp.Ref.Claim)
	require.NoError(t, f.st.StartRequest(ctx, cp.Ref))

	_, err = f.send(0)
	appErr := inDoubtError(t, err)
	require.Contains(t, appErr.Error(), "20 notices in doubt")
	require.Empty(t, f.perRecipient(), "nothing sent within the grace window")

	time.Sleep(f.acts.InDoubtGrace)
	r, err := f.send(0)
	require.NoError(t, err)
	require.Equal(t, 20, r.Sent)
	require.Equal(t, 20, r.PossibleDuplicates)
	for to, n := range f.perRecipient() {
		require.Equal(t, 1, n, to)
	}
	// Settled: a further attempt finds nothing to send or doubt.
	r, err = f.send(0)
	require.NoError(t, err)
	require.Zero(t, r.Sent)
	var claims int
	require.NoError(t, f.st.Pool().QueryRow(ctx, `SELECT count(*) FROM notice_pages WHERE incident_id = $1 AND claim IS NOT NULL`, f.id).Scan(&claims))
	require.Zero(t, claims)
}

// A page whose attempt died after claiming it but before its request started doubts
// nothing: the retry sends the page at once, and nobody's notice is called a possible
// duplicate.
func TestClaimLeftBeforeTheRequestDoubtsNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 20, "SG.good")
	f.acts.InDoubtGrace = time.Minute
	ctx := context.Background()
	cp, err := f.st.ClaimPage(ctx, f.id, 1, 0, f.acts.AckSecret, f.acts.InDoubtGrace)
	require.NoError(t, err)
	require.Len(t, cp.Recipients, 20)

	r, err := f.send(0)
	require.NoError(t, err)
	require.Equal(t, 20, r.Sent)
	require.Zero(t, r.PossibleDuplicates)
	for to, n := range f.perRecipient() {
		require.Equal(t, 1, n, to)
	}
	// The dead attempt's claim is gone: it can no longer start a request.
	require.ErrorIs(t, f.st.StartRequest(ctx, cp.Ref), store.ErrClaimLost)
}
