// Package devenv brings up what `breachflow dev` embeds: an in-process Temporal server
// and a demo data set.
package devenv

import (
	"bytes"
	"context"
	"fmt"

	"go.temporal.io/server/temporaltest"

	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/tenants"
)

// DemoPartner is the partner team seeded into an empty dev database.
var DemoPartner = store.Partner{
	Name:                  "devicecare",
	DisplayName:           "DeviceCare (device management)",
	TeamEmails:            []string{"joint-notice@devicecare.example"},
	Service:               tenants.PartnerService,
	ResponseDeadlineHours: 24,
}

// Seed loads demo tenants, contacts and one partner when the database has no tenants.
// It reports whether it seeded.
func Seed(ctx context.Context, st *store.Store, nTenants, contactsPerTenant int) (bool, error) {
	n, _, err := st.CountTenants(ctx)
	if err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	var tb, cb bytes.Buffer
	if err := tenants.Generate(tenants.Options{Tenants: nTenants, ContactsPerTenant: contactsPerTenant, Seed: 42, AlternateShare: 0.5}, &tb, &cb); err != nil {
		return false, err
	}
	ts, err := tenants.ReadTenants(&tb, "demo-tenants.csv")
	if err != nil {
		return false, err
	}
	cs, err := tenants.ReadContacts(&cb, "demo-contacts.csv")
	if err != nil {
		return false, err
	}
	if _, err := st.ImportTenants(ctx, "demo-contacts.csv", ts, func() ([]store.Contact, error) { return cs, nil }); err != nil {
		return false, fmt.Errorf("seed demo tenants: %w", err)
	}
	if err := st.UpsertPartner(ctx, DemoPartner); err != nil {
		return false, err
	}
	return true, nil
}

// Temporal is an in-process Temporal server.
type Temporal struct {
	srv *temporaltest.TestServer
}

// StartTemporal starts an ephemeral in-process Temporal server.
func StartTemporal() (t *Temporal, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("start in-process Temporal: %v", r)
		}
	}()
	return &Temporal{srv: temporaltest.NewServer()}, nil
}

// Address is the frontend's host:port.
func (t *Temporal) Address() string { return t.srv.GetFrontendHostPort() }

// Namespace is the namespace created for this run.
func (t *Temporal) Namespace() string { return t.srv.GetDefaultNamespace() }

// Stop shuts the server down.
func (t *Temporal) Stop() {
	defer func() { _ = recover() }() // temporaltest logs stop errors through a test handle it does not have here
	t.srv.Stop()
}
