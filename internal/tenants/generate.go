package tenants

import (
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
)

// PartnerService is the tenant service that the demo partner team covers.
const PartnerService = "device-management"

type country struct {
	code    string
	locales []string
	regions []string
	regimes []string
}

var countries = []country{
	{"DE", []string{"de-DE", "de", "en"}, []string{"eu-central"}, []string{"gdpr", "nis2"}},
	{"IT", []string{"it-IT", "it"}, []string{"eu-south", "eu-central"}, []string{"gdpr", "nis2"}},
	{"FR", []string{"fr-FR", "fr"}, []string{"eu-west"}, []string{"gdpr", "nis2"}},
	{"ES", []string{"es-ES", "es"}, []string{"eu-south", "eu-west"}, []string{"gdpr", "nis2"}},
	{"AT", []string{"de-AT"}, []string{"eu-central"}, []string{"gdpr", "nis2"}},
	{"CH", []string{"de-CH", "fr-CH", "it-CH"}, []string{"eu-central"}, []string{"fadp"}},
	{"BE", []string{"fr-BE", "nl-BE"}, []string{"eu-west"}, []string{"gdpr", "nis2"}},
	{"NL", []string{"nl-NL", "en"}, []string{"eu-west"}, []string{"gdpr", "nis2"}},
	{"IE", []string{"en-IE"}, []string{"eu-west"}, []string{"gdpr", "nis2", "dora"}},
	{"GB", []string{"en-GB"}, []string{"eu-west", "uk-south"}, []string{"uk-gdpr"}},
	{"US", []string{"en-US", "es-US"}, []string{"us-east", "us-west"}, []string{"hipaa", "glba", "ccpa"}},
	{"MX", []string{"es-MX"}, []string{"us-west"}, []string{"lfpdppp"}},
}

var (
	services   = []string{"compute", "object-storage", "managed-postgres", "identity", "email-relay", "backup", PartnerService}
	connectors = []string{"apple-dep", "google", "jamf-pro", "microsoft-entra", "okta", "slack", "salesforce"}
	slas       = []int{24, 24, 48, 72, 72, 72, 96, 168}
	nameParts  = []string{"Alpen", "Borea", "Castello", "Delta", "Europa", "Fjord", "Galileo", "Helio", "Iberia",
		"Juno", "Kestrel", "Lumen", "Meridian", "Nordlicht", "Orbit", "Prisma", "Quarzo", "Riviera", "Solaris",
		"Tessera", "Umbra", "Vento", "Wolke", "Xenia", "Ypsilon", "Zenit"}
	nameKinds = []string{"Health", "Logistics", "Bank", "Retail", "Energy", "Labs", "Insurance", "Media", "Schools", "Foods"}
	forms     = map[string]string{"DE": "GmbH", "AT": "GmbH", "CH": "AG", "IT": "S.p.A.", "FR": "SAS", "BE": "SA",
		"ES": "S.L.", "MX": "S.A. de C.V.", "NL": "B.V.", "IE": "Ltd", "GB": "Ltd", "US": "Inc."}
	given  = []string{"Anna", "Luca", "Marie", "Jonas", "Giulia", "Pablo", "Sofia", "Liam", "Emma", "Noah", "Chiara", "Lucía", "Hugo", "Lena", "Matteo", "Olivia"}
	family = []string{"Rossi", "Müller", "Dubois", "García", "Smith", "Bianchi", "Schmidt", "Martin", "López", "Murphy", "Jansen", "Moreau", "Ferrari", "Weber", "Brown", "Fernández"}
	roles  = []string{"DPO", "CISO", "IT Manager", "Legal Counsel", "Security Lead", "Privacy Officer"}
)

// Options controls Generate.
type Options struct {
	Tenants           int
	ContactsPerTenant int
	Seed              uint64
	// AlternateShare is the share of tenants (0 to 1) whose last contact is an
	// alternate, notified only when the primaries cannot be reached or on escalation.
	AlternateShare float64
}

// Generate writes realistic synthetic tenants.csv and contacts.csv data. The same options
// always produce the same bytes. A tenant's contacts are primaries, except that for
// AlternateShare of the tenants with more than one contact the last is an alternate.
func Generate(opts Options, tenantsOut, contactsOut io.Writer) error {
	if opts.Tenants < 1 {
		return fmt.Errorf("tenants: want at least 1, got %d", opts.Tenants)
	}
	if opts.ContactsPerTenant < 1 || opts.ContactsPerTenant > 50 {
		return fmt.Errorf("contacts-per-tenant: want 1 to 50, got %d", opts.ContactsPerTenant)
	}
	if opts.AlternateShare < 0 || opts.AlternateShare > 1 {
		return fmt.Errorf("alternates: want a share from 0 to 1, got %g", opts.AlternateShare)
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	tw, cw := csv.NewWriter(tenantsOut), csv.NewWriter(contactsOut)
	if err := tw.Write(TenantHeader); err != nil {
		return err
	}
	if err := cw.Write(ContactHeader); err != nil {
		return err
	}
	width := len(strconv.Itoa(opts.Tenants))
	for i := 1; i <= opts.Tenants; i++ {
		c := countries[rng.IntN(len(countries))]
		id := fmt.Sprintf("t-%0*d", width, i)
		name := fmt.Sprintf("%s %s %s", nameParts[rng.IntN(len(nameParts))], nameKinds[rng.IntN(len(nameKinds))], forms[c.code])
		locale := c.locales[rng.IntN(len(c.locales))]
		rec := []string{id, name, c.code, locale,
			strings.Join(pick(rng, services, 1, 4), ";"),
			strings.Join(pick(rng, connectors, 0, 3), ";"),
			strings.Join(pick(rng, c.regions, 1, len(c.regions)), ";"),
			strings.Join(c.regimes, ";"),
			strconv.Itoa(slas[rng.IntN(len(slas))]),
		}
		if err := tw.Write(rec); err != nil {
			return err
		}
		domain := fmt.Sprintf("%s.example", id)
		withAlternate := opts.ContactsPerTenant > 1 && rng.Float64() < opts.AlternateShare
		for k := 0; k < opts.ContactsPerTenant; k++ {
			g, f := given[rng.IntN(len(given))], family[rng.IntN(len(family))]
			kind := "primary"
			if withAlternate && k == opts.ContactsPerTenant-1 {
				kind = "alternate"
			}
			contactLocale := ""
			if rng.IntN(10) == 0 {
				contactLocale = "en"
			}
			email := fmt.Sprintf("%s.%s%d@%s", ascii(g), ascii(f), k+1, domain)
			if err := cw.Write([]string{id, email, g + " " + f, roles[rng.IntN(len(roles))], contactLocale, kind}); err != nil {
				return err
			}
		}
	}
	tw.Flush()
	cw.Flush()
	if err := tw.Error(); err != nil {
		return err
	}
	return cw.Error()
}

// pick returns between min and max distinct items of from, in their original order.
func pick(rng *rand.Rand, from []string, min, max int) []string {
	n := min + rng.IntN(max-min+1)
	idx := rng.Perm(len(from))[:n]
	keep := make([]bool, len(from))
	for _, i := range idx {
		keep[i] = true
	}
	out := make([]string, 0, n)
	for i, s := range from {
		if keep[i] {
			out = append(out, s)
		}
	}
	return out
}

var asciiFold = strings.NewReplacer("ü", "ue", "ö", "oe", "ä", "ae", "í", "i", "á", "a", "é", "e", "ó", "o", "ñ", "n")

func ascii(s string) string { return strings.ToLower(asciiFold.Replace(s)) }
