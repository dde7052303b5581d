package tenants

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/breachflow/breachflow/internal/store"
)

// ImportFiles reads and checks both files, reporting the bad rows of both, then loads
// them into s in one transaction.
func ImportFiles(ctx context.Context, s *store.Store, tenantsPath, contactsPath string) (store.ImportResult, error) {
	tf, err := os.Open(tenantsPath)
	if err != nil {
		return store.ImportResult{}, err
	}
	defer tf.Close()
	cf, err := os.Open(contactsPath)
	if err != nil {
		return store.ImportResult{}, err
	}
	defer cf.Close()
	// Contacts are parsed while the tenants are written; both files' bad rows are
	// reported together.
	type parsed struct {
		cs  []store.Contact
		err error
	}
	ch := make(chan parsed, 1)
	go func() {
		cs, err := ReadContacts(cf, contactsPath)
		ch <- parsed{cs, err}
	}()
	ts, terr := ReadTenants(tf, tenantsPath)
	if terr != nil {
		p := <-ch
		return store.ImportResult{}, mergeImportErrors(terr, p.err)
	}
	return s.ImportTenants(ctx, contactsPath, ts, func() ([]store.Contact, error) {
		p := <-ch
		if p.err != nil {
			return nil, mergeImportErrors(p.err)
		}
		return p.cs, nil
	})
}

func mergeImportErrors(errs ...error) error {
	merged := &store.ImportError{}
	var other []error
	for _, err := range errs {
		var ie *store.ImportError
		switch {
		case err == nil:
		case errors.As(err, &ie):
			merged.Rows = append(merged.Rows, ie.Rows...)
		default:
			other = append(other, err)
		}
	}
	if len(other) > 0 {
		return fmt.Errorf("import refused, nothing written: %w", errors.Join(other...))
	}
	return merged
}
