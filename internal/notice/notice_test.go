package notice_test

import (
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
	}}
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
