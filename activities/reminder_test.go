package activities_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/store"
)

// A reminder's subject is marked in the language its notice is written in, not in English
// whatever the notice's language.
func TestRemindersAreMarkedInTheNoticesLanguage(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 3, "SG.good")
	_, err := f.send(0)
	require.NoError(t, err)
	// The tenants' languages change after the first pass was planned; the reminders are
	// planned now, in these.
	emails := map[string]string{} // locale → the address of the tenant that reads it
	rows, err := f.st.Pool().Query(ctx, `WITH t AS (SELECT id, (ARRAY['it', 'de', 'en'])[row_number() OVER (ORDER BY id)] AS loc FROM tenants),
		u AS (UPDATE tenants SET locale = t.loc FROM t WHERE tenants.id = t.id RETURNING tenants.id, t.loc)
		SELECT u.loc, c.email FROM u JOIN contacts c ON c.tenant_id = u.id`)
	require.NoError(t, err)
	for rows.Next() {
		var loc, email string
		require.NoError(t, rows.Scan(&loc, &email))
		emails[loc] = email
	}
	require.NoError(t, rows.Err())
	require.Len(t, emails, 3)

	planned := 0
	for {
		v, err := f.env.ExecuteActivity(f.acts.PlanStep, activities.PlanStepInput{IncidentID: f.id, Pass: 2, Kind: store.RoundReminder,
			ReminderAfter: []time.Duration{0}, Chunk: 1000, PageSize: 1000, TokenTTL: time.Hour})
		require.NoError(t, err)
		var p activities.PlanStepResult
		require.NoError(t, v.Get(&p))
		if p.Done {
			planned = p.Pages
			break
		}
	}
	require.Equal(t, 3, planned, "one page per language")
	for page := range planned {
		v, err := f.env.ExecuteActivity(f.acts.SendPage, activities.SendPageInput{IncidentID: f.id, Round: 2, Page: page})
		require.NoError(t, err)
		var r activities.SendPageResult
		require.NoError(t, v.Get(&r))
		require.Equal(t, 1, r.Sent)
	}

	subjects := map[string][]string{} // address → the subjects it received
	for _, m := range f.sink.Messages(sink.Query{Limit: sink.MaxListLimit}).Messages {
		for _, to := range m.To {
			subjects[to.Email] = append(subjects[to.Email], m.Subject)
		}
	}
	for loc, prefix := range map[string]string{"it": "[Promemoria] ", "de": "[Erinnerung] ", "en": "[Reminder] "} {
		got := subjects[emails[loc]]
		require.Len(t, got, 2, loc) // the notice, then its reminder
		require.False(t, strings.HasPrefix(got[0], "["), "%s: the first notice is no reminder: %q", loc, got[0])
		require.True(t, strings.HasPrefix(got[1], prefix), "%s reminder: %q", loc, got[1])
	}
}
