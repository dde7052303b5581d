package tenants_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/tenants"
	"github.com/breachflow/breachflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func generate(t *testing.T, n, k int, seed uint64) (string, string) {
	t.Helper()
	dir := t.TempDir()
	var tb, cb bytes.Buffer
	require.NoError(t, tenants.Generate(tenants.Options{Tenants: n, ContactsPerTenant: k, Seed: seed}, &tb, &cb))
	tp, cp := filepath.Join(dir, "tenants.csv"), filepath.Join(dir, "contacts.csv")
	require.NoError(t, os.WriteFile(tp, tb.Bytes(), 0o600))
	require.NoError(t, os.WriteFile(cp, cb.Bytes(), 0o600))
	return tp, cp
}

func TestGenerateIsDeterministicAndValid(t *testing.T) {
	t.Parallel()
	var a1, b1, a2, b2 bytes.Buffer
	opts := tenants.Options{Tenants: 500, ContactsPerTenant: 3, Seed: 7, AlternateShare: 0.3}
	require.NoError(t, tenants.Generate(opts, &a1, &b1))
	require.NoError(t, tenants.Generate(opts, &a2, &b2))
	require.Equal(t, a1.String(), a2.String())
	require.Equal(t, b1.String(), b2.String())

	ts, err := tenants.ReadTenants(&a1, "tenants.csv")
	require.NoError(t, err)
	require.Len(t, ts, 500)
	cs, err := tenants.ReadContacts(&b1, "contacts.csv")
	require.NoError(t, err)
	require.Len(t, cs, 1500)

	countries, partner, alternates := map[string]bool{}, 0, 0
	for _, tn := range ts {
		countries[tn.Country] = true
		for _, s := range tn.Services {
			if s == tenants.PartnerService {
				partner++
			}
		}
	}
	for _, c := range cs {
		if c.Kind == "alternate" {
			alternates++
		}
	}
	require.Greater(t, len(countries), 5)
	require.Greater(t, partner, 20)
	require.InDelta(t, 150, alternates, 40)
}

func TestGenerateRejectsBadOptions(t *testing.T) {
	t.Parallel()
	var a, b bytes.Buffer
	require.ErrorContains(t, tenants.Generate(tenants.Options{Tenants: 0, ContactsPerTenant: 1}, &a, &b), "tenants")
	require.ErrorContains(t, tenants.Generate(tenants.Options{Tenants: 1, ContactsPerTenant: 0}, &a, &b), "contacts-per-tenant")
	require.ErrorContains(t, tenants.Generate(tenants.Options{Tenants: 1, ContactsPerTenant: 2, AlternateShare: 2}, &a, &b), "alternates")
}

func TestReadReportsEveryBadRowWithLine(t *testing.T) {
	t.Parallel()
	in := strings.Join([]string{
		strings.Join(tenants.TenantHeader, ","),
		`t-1,Acme GmbH,DE,de-DE,compute;backup,google,eu-central,gdpr,72`,
		`t-2,Bad Country,Germany,de,compute,,eu-central,gdpr,72`,
		`t-3,Zero SLA,DE,de,compute,,eu-central,gdpr,0`,
		`t-1,Duplicate,DE,de,compute,,eu-central,gdpr,72`,
		`t-5,"Quoted, Name",IT,it,compute,,eu-south,gdpr,48`,
		`t-6,Bad Item,IT,it,Compute Engine,,eu-south,gdpr,48`,
		`t-7,Short`,
	}, "\n")
	_, err := tenants.ReadTenants(strings.NewReader(in), "tenants.csv")
	var ie *store.ImportError
	require.True(t, errors.As(err, &ie), "%v", err)
	lines := []int{}
	for _, r := range ie.Rows {
		lines = append(lines, r.Line)
		require.Equal(t, "tenants.csv", r.File)
	}
	require.Equal(t, []int{3, 4, 5, 7, 8}, lines)
	require.Contains(t, ie.Error(), "tenants.csv:3: country")
	require.Contains(t, ie.Error(), "tenants.csv:5: tenant \"t-1\" already on line 2")
}

// csvFile encodes rows under header as a CSV file, quoting what needs quoting.
func csvFile(t *testing.T, header []string, rows ...[]string) string {
	t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	require.NoError(t, w.Write(header))
	require.NoError(t, w.WriteAll(rows))
	return b.String()
}

func TestReadRefusesControlCharactersInNames(t *testing.T) {
	t.Parallel()
	tenant := func(name string) []string {
		return []string{"t-2", name, "DE", "de", "compute", "", "eu-central", "gdpr", "72"}
	}
	contact := func(name, role string) []string {
		return []string{"t-1", "dpo@t-1.example", name, role, "", "primary"}
	}
	tests := []struct {
		name   string
		file   string
		row    []string
		reason string
	}{
		{"tenant name with LF", "tenants.csv", tenant("Acme\nGmbH"), "name: contains the control character U+000A"},
		{"tenant name with CR", "tenants.csv", tenant("Acme\rGmbH"), "name: contains the control character U+000D"},
		{"tenant name with NEL", "tenants.csv", tenant("Acme\u0085GmbH"), "name: contains the control character U+0085"},
		{"tenant name with a direction override", "tenants.csv", tenant("Acme \u202eHbmG"), "name: contains the control character U+202E"},
		{"tenant name not UTF-8", "tenants.csv", tenant("Acme \xff GmbH"), "name: is not valid UTF-8"},
		{"contact name with CRLF and a header", "contacts.csv", contact("Eve\r\nBcc: victim@example.com", "DPO"),
			"name: contains the control character U+000A"},
		{"contact name with CR", "contacts.csv", contact("Eve\rBcc: victim@example.com", "DPO"), "name: contains the control character U+000D"},
		{"contact name with a tab", "contacts.csv", contact("Eve\tSmith", "DPO"), "name: contains the control character U+0009"},
		{"contact name with ESC", "contacts.csv", contact("Eve\x1b[31m", "DPO"), "name: contains the control character U+001B"},
		{"contact name not UTF-8", "contacts.csv", contact("Ev\xe9", "DPO"), "name: is not valid UTF-8"},
		{"contact role with LF", "contacts.csv", contact("Eve", "DPO\nCc: x@example.com"), "role: contains the control character U+000A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var err error
			if tt.file == "tenants.csv" {
				good := []string{"t-1", "Acme GmbH", "DE", "de", "compute", "", "eu-central", "gdpr", "72"}
				in := csvFile(t, tenants.TenantHeader, good, tt.row, []string{"t-3", "Rossi, Bianchi & Figli", "IT", "it", "compute", "", "eu-south", "gdpr", "48"})
				var ts []store.Tenant
				ts, err = tenants.ReadTenants(strings.NewReader(in), tt.file)
				require.Nil(t, ts, "nothing is returned when a row is bad")
			} else {
				good := []string{"t-1", "privacy@t-1.example", "Jürgen Müller-Øster", "Datenschutzbeauftragter", "de", "primary"}
				in := csvFile(t, tenants.ContactHeader, good, tt.row, []string{"t-1", "ciso@t-1.example", "Rossi, Mario", "CISO", "", "alternate"})
				var cs []store.Contact
				cs, err = tenants.ReadContacts(strings.NewReader(in), tt.file)
				require.Nil(t, cs, "nothing is returned when a row is bad")
			}
			var ie *store.ImportError
			require.True(t, errors.As(err, &ie), "%v", err)
			require.Len(t, ie.Rows, 1, "only the bad row is reported: %v", err)
			require.Equal(t, store.RowError{File: tt.file, Line: 3, Reason: ie.Rows[0].Reason}, ie.Rows[0])
			require.Contains(t, ie.Rows[0].Reason, tt.reason)
			require.Contains(t, err.Error(), tt.file+":3: "+tt.reason)
		})
	}
}

func TestReadAcceptsPrintableNames(t *testing.T) {
	t.Parallel()
	ts, err := tenants.ReadTenants(strings.NewReader(csvFile(t, tenants.TenantHeader,
		[]string{"t-1", "Société Générale d'Études, S.A.", "FR", "fr", "compute", "", "eu-west", "gdpr", "72"},
		[]string{"t-2", "株式会社テスト", "JP", "en", "compute", "", "ap-northeast", "appi", "72"},
	)), "tenants.csv")
	require.NoError(t, err)
	require.Equal(t, "Société Générale d'Études, S.A.", ts[0].Name)
	require.Equal(t, "株式会社テスト", ts[1].Name)
	cs, err := tenants.ReadContacts(strings.NewReader(csvFile(t, tenants.ContactHeader,
		[]string{"t-1", "dpo@t-1.example", `Zoë "Zo" O'Brien-Łukasz`, "DPO / Privacy", "", "primary"},
	)), "contacts.csv")
	require.NoError(t, err)
	require.Equal(t, `Zoë "Zo" O'Brien-Łukasz`, cs[0].Name)
}

func TestImportRefusesHeaderInjectionInContactName(t *testing.T) {
	t.Parallel()
	s := testenv.Store(t)
	tp, cp := generate(t, 20, 1, 4)
	f, err := os.OpenFile(cp, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	w := csv.NewWriter(f)
	require.NoError(t, w.Write([]string{"t-1", "extra@t-1.example", "Eve\r\nBcc: victim@example.com", "DPO", "", "alternate"}))
	w.Flush()
	require.NoError(t, w.Error())
	require.NoError(t, f.Close())

	_, err = tenants.ImportFiles(context.Background(), s, tp, cp)
	var ie *store.ImportError
	require.True(t, errors.As(err, &ie), "%v", err)
	require.Equal(t, []store.RowError{{File: cp, Line: 22, Reason: ie.Rows[0].Reason}}, ie.Rows)
	require.Contains(t, err.Error(), cp+":22: name: contains the control character U+000A", "encoding/csv reads a quoted CRLF as LF")
	n, c := count(t, s)
	require.Zero(t, n)
	require.Zero(t, c)
}

func TestReadRejectsWrongHeader(t *testing.T) {
	t.Parallel()
	_, err := tenants.ReadContacts(strings.NewReader("email,tenant\n"), "contacts.csv")
	require.ErrorContains(t, err, "contacts.csv:1: header")
}

func count(t *testing.T, s *store.Store) (int64, int64) {
	t.Helper()
	n, c, err := s.CountTenants(context.Background())
	require.NoError(t, err)
	return n, c
}

func TestImportIsAllOrNothing(t *testing.T) {
	t.Parallel()
	s := testenv.Store(t)
	tp, cp := generate(t, 200, 2, 1)
	raw, err := os.ReadFile(cp)
	require.NoError(t, err)
	lines := strings.Split(string(raw), "\n")
	lines[150] = "t-100,not-an-email,Bad Row,DPO,,primary" // line 151 of the file
	require.NoError(t, os.WriteFile(cp, []byte(strings.Join(lines, "\n")), 0o600))

	_, err = tenants.ImportFiles(context.Background(), s, tp, cp)
	var ie *store.ImportError
	require.True(t, errors.As(err, &ie), "%v", err)
	require.Len(t, ie.Rows, 1)
	require.Equal(t, 151, ie.Rows[0].Line)
	require.Contains(t, err.Error(), "contacts.csv:151: email")
	n, c := count(t, s)
	require.Zero(t, n)
	require.Zero(t, c)
}

func TestImportRefusesContactOfUnknownTenant(t *testing.T) {
	t.Parallel()
	s := testenv.Store(t)
	tp, cp := generate(t, 50, 1, 2)
	f, err := os.OpenFile(cp, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("t-999,someone@t-999.example,Some One,DPO,,primary\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	_, err = tenants.ImportFiles(context.Background(), s, tp, cp)
	var ie *store.ImportError
	require.True(t, errors.As(err, &ie), "%v", err)
	require.Equal(t, 52, ie.Rows[0].Line)
	require.Contains(t, ie.Rows[0].Reason, `unknown tenant "t-999"`)
	n, c := count(t, s)
	require.Zero(t, n)
	require.Zero(t, c)
}

func TestReimportUpserts(t *testing.T) {
	t.Parallel()
	s := testenv.Store(t)
	ctx := context.Background()
	tp, cp := generate(t, 100, 2, 3)
	res, err := tenants.ImportFiles(ctx, s, tp, cp)
	require.NoError(t, err)
	require.EqualValues(t, 100, res.TenantsInserted)
	require.EqualValues(t, 200, res.ContactsInserted)

	// Rename one tenant, add one tenant and one contact, then import again.
	raw, err := os.ReadFile(tp)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	fields := strings.Split(lines[1], ",")
	fields[1] = "Renamed Holding AG"
	lines[1] = strings.Join(fields, ",")
	lines = append(lines, "t-new,New Tenant SA,FR,fr,compute,,eu-west,gdpr,24")
	require.NoError(t, os.WriteFile(tp, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	f, err := os.OpenFile(cp, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString("t-new,dpo@new.example,Jean Neuf,DPO,fr,primary\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	res, err = tenants.ImportFiles(ctx, s, tp, cp)
	require.NoError(t, err)
	require.EqualValues(t, 1, res.TenantsInserted)
	require.EqualValues(t, 1, res.TenantsUpdated)
	require.EqualValues(t, 99, res.TenantsUnchanged)
	require.EqualValues(t, 1, res.ContactsInserted)
	require.EqualValues(t, 0, res.ContactsUpdated)
	require.EqualValues(t, 200, res.ContactsUnchanged)
	n, c := count(t, s)
	require.EqualValues(t, 101, n)
	require.EqualValues(t, 201, c)
	got, err := s.GetTenant(ctx, fields[0])
	require.NoError(t, err)
	require.Equal(t, "Renamed Holding AG", got.Name)

	_, err = s.GetTenant(ctx, "t-missing")
	require.ErrorIs(t, err, store.ErrNotFound)

	rep, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK)
	require.EqualValues(t, 2, rep.Rows)
}

func TestValidEmail(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"anna.rossi@t-1.example": true, "a+b@sub.example.it": true, "x@y.z": true,
		"": false, "no-at.example": false, "@example.com": false, "a@": false, "a@localhost": false,
		"a b@example.com": false, "Anna <a@example.com>": false, "a@exa mple.com": false,
		"a..b@example.com": false, "a@-bad.example": false, "a@example..com": false, `"q"@example.com`: false,
	} {
		require.Equal(t, want, tenants.ValidEmail(s), s)
	}
}

// A first load large enough to check its contacts set-based leaves the table with every
// constraint it had: a contact of no tenant, or the same address twice, is refused after.
func TestFirstBulkLoadKeepsTheContactsConstraints(t *testing.T) {
	t.Parallel()
	s := testenv.Store(t)
	ctx := context.Background()
	tp, cp := generate(t, 5000, 3, 4) // 15,000 contacts: the set-based path
	res, err := tenants.ImportFiles(ctx, s, tp, cp)
	require.NoError(t, err)
	require.EqualValues(t, 15000, res.ContactsInserted)
	var defs []string
	rows, err := s.Pool().Query(ctx, `SELECT conname FROM pg_constraint WHERE conrelid = 'contacts'::regclass AND contype IN ('f', 'u') ORDER BY conname`)
	require.NoError(t, err)
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		defs = append(defs, n)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"contacts_tenant_id_email_key", "contacts_tenant_id_fkey"}, defs)
	_, err = s.Pool().Exec(ctx, `INSERT INTO contacts (tenant_id, email, kind) VALUES ('no-such-tenant', 'x@y.example', 'primary')`)
	require.ErrorContains(t, err, "contacts_tenant_id_fkey")
	_, err = s.Pool().Exec(ctx, `INSERT INTO contacts (tenant_id, email, kind) SELECT tenant_id, email, kind FROM contacts LIMIT 1`)
	require.ErrorContains(t, err, "contacts_tenant_id_email_key")
	// A second import of the same files takes the row-by-row path and changes nothing.
	res, err = tenants.ImportFiles(ctx, s, tp, cp)
	require.NoError(t, err)
	require.EqualValues(t, 15000, res.ContactsUnchanged)
}
