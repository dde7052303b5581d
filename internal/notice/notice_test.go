package notice_test

import (
	"strings"
	"time"

	"github.com/breachflow/breachflow/internal/notice"
)

// validDraft returns a complete draft; each call returns fresh slices and maps.
func validDraft() notice.Draft {
	return notice.Draft{Fields: notice.Fields{
		Reference: "INC-2026-0042",
		Title:     "Unauthorised access to a backup storage bucket",
		AwareAt:   time.Date(2026, 3, 2, 14, 5, 0, 0, time.UTC),
		Nature: "An access key for a backup storage bucket was exposed in a public repository.\n" +
			"The key was used from an unknown address to list and download backup archives.",
		DataCategories:        []string{"Names", "Business email addresses"},
		DataSubjectCategories: []string{"Customer employees", "End users of the customer's application"},
		ApproxDataSubjects:    1200,
		ApproxRecords:         2500000,
		Contact: notice.ContactPoint{
			Name:  "Jane Doe",
			Role:  "Data Protection Officer",
			Email: "dpo@provider.example",
			Phone: "+39 02 1234 5678",
		},
		LikelyConsequences: "Targeted phishing against the people whose email addresses were exposed.",
		MeasuresTaken:      "The key was revoked within 40 minutes and the bucket policy was tightened.",
		MeasuresProposed:   "Warn affected users about phishing and rotate any credentials shared by email.",
	}, Sender: notice.Sender{Organisation: "Example Cloud S.r.l."}}
}

// recipient returns a recipient in the given locale.
func recipient(locale string) notice.Recipient {
	return notice.Recipient{
		TenantName: "Rossi & Figli S.p.A.",
		AckURL:     "https://breachflow.example/ack/tok123?r=1&src=mail",
		Deadline:   time.Date(2026, 3, 3, 14, 5, 0, 0, time.UTC),
		Locale:     locale,
	}
}

// italianText is the Italian free text of validDraft, by element.
var italianText = map[string]string{
	"title": "Accesso non autorizzato a un bucket di archiviazione dei backup",
	"nature": "Una chiave di accesso a un bucket di backup è stata esposta in un repository pubblico.\n" +
		"La chiave è stata usata da un indirizzo sconosciuto per elencare e scaricare archivi di backup.",
	"likely_consequences":    "Phishing mirato contro le persone i cui indirizzi e-mail sono stati esposti.",
	"measures_taken":         "La chiave è stata revocata entro 40 minuti e la policy del bucket è stata rafforzata.",
	"measures_proposed":      "Avvisare gli utenti interessati del rischio di phishing e cambiare le credenziali condivise via e-mail.",
	"additional_information": "Seguirà un rapporto forense.",
	"whats_new":              "Ora conosciamo il numero di registrazioni coinvolte.",
}

// italianLists are the Italian category lists of validDraft, by element.
var italianLists = map[string][]string{
	"data_categories":         {"Nomi", "Indirizzi e-mail aziendali"},
	"data_subject_categories": {"Dipendenti del cliente", "Utenti finali dell'applicazione del cliente"},
}

// translationFor returns a complete translation of f for loc: real Italian for "it", the
// English marked with the locale code otherwise. It gives exactly the elements the
// English states, as Validate requires.
func translationFor(f notice.Fields, loc string) notice.Translation {
	unknown := map[string]bool{}
	for _, el := range f.NotYetKnown {
		unknown[el] = true
	}
	text := func(el, english string) string {
		if strings.TrimSpace(english) == "" || unknown[el] {
			return ""
		}
		if s, ok := italianText[el]; ok && loc == "it" {
			return s
		}
		return "[" + loc + "] " + english
	}
	list := func(el string, english []string) []string {
		if len(english) == 0 || unknown[el] {
			return nil
		}
		if it, ok := italianLists[el]; ok && loc == "it" && len(it) == len(english) {
			return append([]string(nil), it...)
		}
		out := make([]string, len(english))
		for i, e := range english {
			out[i] = "[" + loc + "] " + e
		}
		return out
	}
	return notice.Translation{
		Title:                 text("title", f.Title),
		Nature:                text("nature", f.Nature),
		DataCategories:        list("data_categories", f.DataCategories),
		DataSubjectCategories: list("data_subject_categories", f.DataSubjectCategories),
		LikelyConsequences:    text("likely_consequences", f.LikelyConsequences),
		MeasuresTaken:         text("measures_taken", f.MeasuresTaken),
		MeasuresProposed:      text("measures_proposed", f.MeasuresProposed),
		AdditionalInformation: text("additional_information", f.AdditionalInformation),
		WhatsNew:              text("whats_new", f.WhatsNew),
	}
}

// updateDraft returns validDraft as notice number n of the given kind, saying what changed.
func updateDraft(n int, kind string) notice.Draft {
	d := validDraft()
	d.Phase = notice.Phase{Number: n, Kind: kind}
	d.Fields.WhatsNew = "The attacker's address has been traced.\nNo further downloads were found."
	return d
}
