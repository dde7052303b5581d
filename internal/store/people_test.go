package store_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
)

// Approvals count people, whatever door they came through: the database refuses an
// invented actor, a key without the approver role (admin included), a revoked key, the
// drafter of the notice, and a second approval by the same person with another key.
func TestApproveCountsPeopleNotKeys(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	f.simple("a")
	f.scope("a")
	key := func(name, roles string) store.APIKey {
		_, k, err := f.s.CreateAPIKey(f.ctx, name, roles, "test")
		require.NoError(t, err)
		return k
	}
	rita := key("rita", "responder")
	require.NoError(t, f.s.PutDraft(f.ctx, f.id, json.RawMessage(`{"draft":"a"}`), hashA, rita.Actor()))
	ritaApprover := key("Rita", "approver") // the same person with another key
	admin := key("ada", "admin")
	alice := key("alice", "approver")
	aliceToo := key("alice", "responder,approver")
	revoked := key("victor", "approver")
	require.NoError(t, f.s.RevokeAPIKey(f.ctx, revoked.ID, "test"))
	bothAdmin := key("bea", "admin,approver")

	refused := []struct{ name, actor, msg string }{
		{"an invented actor", "nobody#9001", "not a live API key"},
		{"a real id under another name", "nobody#" + strconv.FormatInt(alice.ID, 10), "not a live API key"},
		{"a responder", rita.Actor(), "approver role"},
		{"an admin", admin.Actor(), "approver role"},
		{"a revoked key", revoked.Actor(), "not a live API key"},
		{"the drafter with an approver key", ritaApprover.Actor(), "drafted this notice"},
	}
	for _, tc := range refused {
		_, err := f.s.Approve(f.ctx, f.id, hashA, 1, tc.actor)
		require.ErrorIs(t, err, store.ErrSeparation, tc.name)
		require.ErrorContains(t, err, tc.msg, tc.name)
	}
	n, err := f.s.Approve(f.ctx, f.id, hashA, 1, alice.Actor())
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = f.s.Approve(f.ctx, f.id, hashA, 1, aliceToo.Actor())
	require.ErrorContains(t, err, "already approved")
	_, _, err = f.s.Release(f.ctx, f.id, hashA, 1, "system")
	require.ErrorIs(t, err, store.ErrNotApproved, "one person with two keys is one approval")

	n, err = f.s.Approve(f.ctx, f.id, hashA, 1, bothAdmin.Actor())
	require.NoError(t, err, "an admin also given the approver role approves")
	require.Equal(t, 2, n)
	released, _, err := f.s.Release(f.ctx, f.id, hashA, 1, "system")
	require.NoError(t, err)
	require.Equal(t, 1, released)
}

func TestRolesAreASetAndPartnersStandAlone(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"responder", []string{"responder"}, true},
		{"approver, responder,approver", []string{"approver", "responder"}, true},
		{"admin,approver", []string{"admin", "approver"}, true},
		{"partner:devicecare", []string{"partner:devicecare"}, true},
		{"partner:devicecare,responder", nil, false},
		{"root", nil, false},
		{"", nil, false},
		{"Approver", nil, false},
	} {
		got, err := store.ParseRoles(tc.in)
		if !tc.ok {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got)
	}
}
