package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
)

func TestDeclarationKeyIsIdempotent(t *testing.T) {
	t.Parallel()
	s := testenv.Store(t)
	ctx := context.Background()
	now := time.Now()
	d := store.Declaration{Title: "Leak", Severity: "high", AwareAt: now.Add(-time.Hour)}
	a, created, err := s.CreateIncident(ctx, "key-1", d, "alice", now)
	require.NoError(t, err)
	require.True(t, created)
	b, created, err := s.CreateIncident(ctx, "key-1", d, "alice", now)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, a.ID, b.ID)

	d.Title = "Another leak"
	_, _, err = s.CreateIncident(ctx, "key-1", d, "alice", now)
	require.ErrorIs(t, err, store.ErrConflict)

	bad := []struct {
		d     store.Declaration
		field string
	}{
		{store.Declaration{Severity: "high", AwareAt: now}, "title"},
		{store.Declaration{Title: "x", Severity: "urgent", AwareAt: now}, "severity"},
		{store.Declaration{Title: "x", Severity: "low"}, "aware_at"},
		{store.Declaration{Title: "x", Severity: "low", AwareAt: now.Add(time.Hour)}, "aware_at"},
		{store.Declaration{Title: "x", Severity: "low", AwareAt: now, Partner: "nobody"}, "partner"},
		{store.Declaration{Title: "x", Severity: "low", AwareAt: now, Scope: store.ScopeCriteria{Countries: []string{"Germany"}}}, "scope.countries"},
	}
	for _, tc := range bad {
		_, _, err := s.CreateIncident(ctx, "", tc.d, "alice", now)
		var fe *store.FieldError
		require.True(t, errors.As(err, &fe), "%v", err)
		require.Equal(t, tc.field, fe.Field)
		require.ErrorIs(t, err, store.ErrInvalidInput)
	}
	list, err := s.ListIncidents(ctx, "", 10, time.Time{})
	require.NoError(t, err)
	require.Len(t, list, 1, "refused declarations write nothing")
}
