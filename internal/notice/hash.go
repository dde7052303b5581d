package notice

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sort"
	"strconv"
	"time"
)

// hashVersion changes whenever the canonical encoding or the rendering rules change.
const hashVersion = "breachflow-notice-v2"

// ContentHash returns the hex SHA-256 of a canonical encoding of the draft — its phase
// (the zero Phase as the initial one), fields, not-yet-known elements, translations,
// English fallbacks and sender — and of the exact template sources every supported locale
// renders with: any change to any of them changes it, while map order, the order of
// NotYetKnown and EnglishFallback, and time zones never do.
func ContentHash(d Draft) string {
	h := sha256.New()
	w := canonicalWriter{h: h}
	w.str("version", hashVersion)

	p := d.PhaseOrInitial()
	w.str(ElementPhase+".number", strconv.Itoa(p.Number))
	w.str(ElementPhase+".kind", p.Kind)

	f := d.Fields
	w.str(ElementReference, f.Reference)
	w.str(ElementTitle, f.Title)
	aware := ""
	if !f.AwareAt.IsZero() {
		aware = f.AwareAt.UTC().Format(time.RFC3339Nano)
	}
	w.str(ElementAwareAt, aware)
	w.str(ElementNature, f.Nature)
	w.list(ElementDataCategories, f.DataCategories)
	w.list(ElementDataSubjectCategories, f.DataSubjectCategories)
	w.str(ElementApproxDataSubjects, strconv.FormatInt(f.ApproxDataSubjects, 10))
	w.str(ElementApproxRecords, strconv.FormatInt(f.ApproxRecords, 10))
	w.str(ElementContactPoint+".name", f.Contact.Name)
	w.str(ElementContactPoint+".role", f.Contact.Role)
	w.str(ElementContactPoint+".email", f.Contact.Email)
	w.str(ElementContactPoint+".phone", f.Contact.Phone)
	w.str(ElementLikelyConsequences, f.LikelyConsequences)
	w.str(ElementMeasuresTaken, f.MeasuresTaken)
	w.str(ElementMeasuresProposed, f.MeasuresProposed)
	w.str(ElementAdditionalInformation, f.AdditionalInformation)
	w.str(ElementWhatsNew, f.WhatsNew)
	w.list(ElementNotYetKnown, sorted(f.NotYetKnown))

	// Translation keys are hashed as given, supported or not: what approvers saw.
	trKeys := make([]string, 0, len(d.Translations))
	for k := range d.Translations {
		trKeys = append(trKeys, k)
	}
	sort.Strings(trKeys)
	w.str(ElementTranslations, strconv.Itoa(len(trKeys)))
	for _, loc := range trKeys {
		tr := d.Translations[loc]
		prefix := ElementTranslations + "." + loc + "."
		w.str(ElementTranslations+"[]", loc)
		w.str(prefix+ElementTitle, tr.Title)
		w.str(prefix+ElementNature, tr.Nature)
		w.list(prefix+ElementDataCategories, tr.DataCategories)
		w.list(prefix+ElementDataSubjectCategories, tr.DataSubjectCategories)
		w.str(prefix+ElementLikelyConsequences, tr.LikelyConsequences)
		w.str(prefix+ElementMeasuresTaken, tr.MeasuresTaken)
		w.str(prefix+ElementMeasuresProposed, tr.MeasuresProposed)
		w.str(prefix+ElementAdditionalInformation, tr.AdditionalInformation)
		w.str(prefix+ElementWhatsNew, tr.WhatsNew)
	}
	w.list(ElementEnglishFallback, sorted(d.EnglishFallback))
	w.str(ElementSender+".organisation", d.Sender.Organisation)
	w.str(ElementSender+".signature", d.Sender.Signature)
	w.str(ElementSender+".reply_to", d.Sender.ReplyTo)

	for _, loc := range locales {
		t := effectiveSources(d, loc)
		w.str("template."+loc+"."+PartSubject, t.Subject)
		w.str("template."+loc+"."+PartText, t.Text)
		w.str("template."+loc+"."+PartHTML, t.HTML)
	}
	// Overrides for unsupported locales never render, but they are still part of what
	// approvers were shown.
	var extra []string
	for k := range d.Templates {
		if !IsSupported(k) {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		t := d.Templates[k]
		w.str("unsupported_template", k)
		w.str(PartSubject, t.Subject)
		w.str(PartText, t.Text)
		w.str(PartHTML, t.HTML)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sorted returns a sorted copy of items, for lists whose order does not change the notice.
func sorted(items []string) []string {
	out := append([]string(nil), items...)
	sort.Strings(out)
	return out
}

// canonicalWriter writes length-prefixed, labelled values so no two encodings collide.
type canonicalWriter struct {
	h hash.Hash
}

func (w canonicalWriter) str(label, v string) {
	w.h.Write([]byte(label))
	w.h.Write([]byte{' '})
	w.h.Write([]byte(strconv.Itoa(len(v))))
	w.h.Write([]byte{':'})
	w.h.Write([]byte(v))
	w.h.Write([]byte{'\n'})
}

func (w canonicalWriter) list(label string, items []string) {
	w.str(label, strconv.Itoa(len(items)))
	for _, it := range items {
		w.str(label+"[]", it)
	}
}
