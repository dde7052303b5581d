// Package notice holds personal-data-breach notice drafts: the facts a data
// processor owes its controllers under GDPR Art. 33(2)–(3), the templates that
// turn them into an email, validation, rendering and the content hash that
// approvers sign off on.
package notice

import "time"

// Fields is what a notice tells the controller about the incident.
type Fields struct {
	// Reference identifies the incident in every exchange with the controller.
	Reference string `json:"reference"`
	// Title is a one-line name for the incident.
	Title string `json:"title"`
	// AwareAt is when the processor became aware of the breach.
	AwareAt time.Time `json:"aware_at"`
	// Nature describes what happened (Art. 33(3)(a)).
	Nature string `json:"nature"`
	// DataCategories lists the categories of personal data concerned (Art. 33(3)(a)).
	DataCategories []string `json:"data_categories"`
	// DataSubjectCategories lists the categories of data subjects concerned (Art. 33(3)(a)).
	DataSubjectCategories []string `json:"data_subject_categories"`
	// ApproxDataSubjects is the approximate number of data subjects concerned (Art. 33(3)(a)).
	ApproxDataSubjects int64 `json:"approx_data_subjects"`
	// ApproxRecords is the approximate number of personal data records concerned (Art. 33(3)(a)).
	ApproxRecords int64 `json:"approx_records"`
	// Contact is the DPO or other contact point for more information (Art. 33(3)(b)).
	Contact ContactPoint `json:"contact_point"`
	// LikelyConsequences describes the likely consequences of the breach (Art. 33(3)(c)).
	LikelyConsequences string `json:"likely_consequences"`
	// MeasuresTaken describes what has been done to address the breach (Art. 33(3)(d)).
	MeasuresTaken string `json:"measures_taken"`
	// MeasuresProposed describes further measures, including mitigation of adverse effects (Art. 33(3)(d)).
	MeasuresProposed string `json:"measures_proposed"`
	// AdditionalInformation is optional free text shown after the required elements.
	AdditionalInformation string `json:"additional_information,omitempty"`
	// WhatsNew says what changed since the previous phase's notice; required for an
	// update or final phase, empty for the initial one.
	WhatsNew string `json:"whats_new,omitempty"`
	// NotYetKnown names the elements (from UnknowableElements) this phase cannot state
	// yet; each is left empty and the notice says it will follow (Art. 33(4)).
	NotYetKnown []string `json:"not_yet_known,omitempty"`
}

// Phase kinds: an incident's notices are an initial notice, updates and a final one.
const (
	// PhaseInitial is the first notice of an incident.
	PhaseInitial = "initial"
	// PhaseUpdate is an intermediate notice with what was learned since.
	PhaseUpdate = "update"
	// PhaseFinal is the last notice; it states every element.
	PhaseFinal = "final"
)

// Phase names which notice of the incident a draft is. The zero value reads as the
// initial notice (see Draft.PhaseOrInitial).
type Phase struct {
	// Number is 1 for the initial notice, then 2, 3, … for each later one.
	Number int `json:"number"`
	// Kind is PhaseInitial (number 1 only), PhaseUpdate or PhaseFinal.
	Kind string `json:"kind"`
}

// Translation is the free text of a notice in one locale other than English; the
// English text is Fields itself. Numbers, times, the reference and the contact point
// are not translated. A translation gives exactly the free-text elements the English
// states: none that the English leaves out or marks not yet known, and lists with as
// many entries as the English ones.
type Translation struct {
	// Title translates Fields.Title.
	Title string `json:"title"`
	// Nature translates Fields.Nature.
	Nature string `json:"nature"`
	// DataCategories translates Fields.DataCategories entry by entry.
	DataCategories []string `json:"data_categories,omitempty"`
	// DataSubjectCategories translates Fields.DataSubjectCategories entry by entry.
	DataSubjectCategories []string `json:"data_subject_categories,omitempty"`
	// LikelyConsequences translates Fields.LikelyConsequences.
	LikelyConsequences string `json:"likely_consequences,omitempty"`
	// MeasuresTaken translates Fields.MeasuresTaken.
	MeasuresTaken string `json:"measures_taken,omitempty"`
	// MeasuresProposed translates Fields.MeasuresProposed.
	MeasuresProposed string `json:"measures_proposed,omitempty"`
	// AdditionalInformation translates Fields.AdditionalInformation.
	AdditionalInformation string `json:"additional_information,omitempty"`
	// WhatsNew translates Fields.WhatsNew.
	WhatsNew string `json:"whats_new,omitempty"`
}

// Sender is who the notice comes from, as the controller reads it.
type Sender struct {
	// Organisation is the processor's name, e.g. "Example Cloud GmbH".
	Organisation string `json:"organisation"`
	// Signature closes the notice, e.g. "Security and Privacy Team"; empty keeps each
	// locale's default closing.
	Signature string `json:"signature,omitempty"`
	// ReplyTo is the address replies go to; empty sends them to the From address.
	ReplyTo string `json:"reply_to,omitempty"`
}

// ContactPoint is the person or office a controller can ask for more information.
type ContactPoint struct {
	// Name is the person or office to contact, e.g. "Jane Doe" or "Privacy Office".
	Name string `json:"name"`
	// Role is an optional function or team, e.g. "Data Protection Officer".
	Role string `json:"role,omitempty"`
	// Email is the contact's email address; Email or Phone is required.
	Email string `json:"email,omitempty"`
	// Phone is the contact's phone number; Email or Phone is required.
	Phone string `json:"phone,omitempty"`
}

// String renders the contact point on one line, skipping empty parts.
func (c ContactPoint) String() string {
	out := ""
	for _, part := range []string{c.Name, c.Role, c.Email, c.Phone} {
		if part == "" {
			continue
		}
		if out != "" {
			out += ", "
		}
		out += part
	}
	return out
}

// Draft is a notice awaiting approval: its phase, its fields, their translations, who
// sends it and any per-locale template overrides.
type Draft struct {
	// Phase is which notice of the incident this is; the zero value reads as the initial one.
	Phase Phase `json:"phase"`
	// Fields are the facts the notice states, in English.
	Fields Fields `json:"fields"`
	// Translations gives the free text per supported locale other than "en".
	Translations map[string]Translation `json:"translations,omitempty"`
	// EnglishFallback lists the locales whose recipients may read the English free text
	// inside their own locale's template, by explicit choice, for want of a translation.
	EnglishFallback []string `json:"english_fallback,omitempty"`
	// Sender is who the notice comes from; its Organisation is required.
	Sender Sender `json:"sender"`
	// Templates overrides the default templates, keyed by a supported locale code ("en", "it", …).
	Templates map[string]Template `json:"templates,omitempty"`
}

// PhaseOrInitial returns the draft's phase, reading the zero Phase as notice 1, the
// initial one; validation, rendering and the content hash all see this value.
func (d Draft) PhaseOrInitial() Phase {
	if d.Phase == (Phase{}) {
		return Phase{Number: 1, Kind: PhaseInitial}
	}
	return d.Phase
}

// Template holds the sources of one locale's notice; an empty part keeps the default.
type Template struct {
	// Subject is a text/template source for the subject line.
	Subject string `json:"subject,omitempty"`
	// Text is a text/template source for the plain-text body.
	Text string `json:"text,omitempty"`
	// HTML is an html/template source for the HTML body.
	HTML string `json:"html,omitempty"`
}

// Stable names of the elements a notice must contain; they appear in validation errors.
const (
	// ElementReference names Fields.Reference.
	ElementReference = "reference"
	// ElementTitle names Fields.Title.
	ElementTitle = "title"
	// ElementAwareAt names Fields.AwareAt.
	ElementAwareAt = "aware_at"
	// ElementNature names Fields.Nature.
	ElementNature = "nature"
	// ElementDataCategories names Fields.DataCategories.
	ElementDataCategories = "data_categories"
	// ElementDataSubjectCategories names Fields.DataSubjectCategories.
	ElementDataSubjectCategories = "data_subject_categories"
	// ElementApproxDataSubjects names Fields.ApproxDataSubjects.
	ElementApproxDataSubjects = "approx_data_subjects"
	// ElementApproxRecords names Fields.ApproxRecords.
	ElementApproxRecords = "approx_records"
	// ElementContactPoint names Fields.Contact.
	ElementContactPoint = "contact_point"
	// ElementLikelyConsequences names Fields.LikelyConsequences.
	ElementLikelyConsequences = "likely_consequences"
	// ElementMeasuresTaken names Fields.MeasuresTaken.
	ElementMeasuresTaken = "measures_taken"
	// ElementMeasuresProposed names Fields.MeasuresProposed.
	ElementMeasuresProposed = "measures_proposed"
	// ElementAdditionalInformation names Fields.AdditionalInformation (optional).
	ElementAdditionalInformation = "additional_information"
	// ElementWhatsNew names Fields.WhatsNew, required for an update or final notice.
	ElementWhatsNew = "whats_new"
	// ElementNotYetKnown names Fields.NotYetKnown.
	ElementNotYetKnown = "not_yet_known"
	// ElementPhase names Draft.Phase.
	ElementPhase = "phase"
	// ElementSender names Draft.Sender; its Organisation is required.
	ElementSender = "sender"
	// ElementTranslations names Draft.Translations in validation problems about the map itself.
	ElementTranslations = "translations"
	// ElementEnglishFallback names Draft.EnglishFallback.
	ElementEnglishFallback = "english_fallback"
	// ElementAckURL names the per-recipient acknowledgement link a body template must show.
	ElementAckURL = "ack_url"
	// ElementTemplates names the Draft.Templates overrides in validation problems.
	ElementTemplates = "templates"
)

// requiredElements is the canonical order in which missing elements are reported.
var requiredElements = []string{
	ElementReference,
	ElementTitle,
	ElementAwareAt,
	ElementNature,
	ElementDataCategories,
	ElementDataSubjectCategories,
	ElementApproxDataSubjects,
	ElementApproxRecords,
	ElementContactPoint,
	ElementLikelyConsequences,
	ElementMeasuresTaken,
	ElementMeasuresProposed,
}

// RequiredElements returns the stable names of every Art. 33(3) element a draft must
// carry, in report order. ValidationError.Missing may also name ElementWhatsNew and
// ElementSender, after these.
func RequiredElements() []string {
	return append([]string(nil), requiredElements...)
}

// missingOrder is the order ValidationError.Missing reports elements in.
var missingOrder = append(RequiredElements(), ElementWhatsNew, ElementSender)

// unknowableElements may be marked not yet known in an initial or update notice.
var unknowableElements = []string{
	ElementDataCategories,
	ElementDataSubjectCategories,
	ElementApproxDataSubjects,
	ElementApproxRecords,
	ElementLikelyConsequences,
	ElementMeasuresTaken,
	ElementMeasuresProposed,
}

// UnknowableElements returns the elements Fields.NotYetKnown may name: those Art. 33(4)
// lets a processor provide in phases when it cannot state them yet.
func UnknowableElements() []string {
	return append([]string(nil), unknowableElements...)
}

func isUnknowable(el string) bool {
	for _, u := range unknowableElements {
		if u == el {
			return true
		}
	}
	return false
}

// elementLabels reads each element name for a person.
var elementLabels = map[string]string{
	ElementReference:             "incident reference",
	ElementTitle:                 "incident title",
	ElementAwareAt:               "time the breach was discovered",
	ElementNature:                "nature of the breach",
	ElementDataCategories:        "categories of personal data concerned",
	ElementDataSubjectCategories: "categories of data subjects concerned",
	ElementApproxDataSubjects:    "approximate number of data subjects",
	ElementApproxRecords:         "approximate number of personal data records",
	ElementContactPoint:          "contact point (name and email or phone)",
	ElementLikelyConsequences:    "likely consequences of the breach",
	ElementMeasuresTaken:         "measures taken",
	ElementMeasuresProposed:      "measures proposed, including mitigation",
	ElementAdditionalInformation: "additional information",
	ElementTemplates:             "templates",
	ElementAckURL:                "acknowledgement link",
	ElementWhatsNew:              "what has changed since the previous notice",
	ElementNotYetKnown:           "elements not yet known",
	ElementPhase:                 "notice phase",
	ElementSender:                "sender (organisation)",
	ElementTranslations:          "translations",
	ElementEnglishFallback:       "locales sent with the English text",
}

// templateFields maps each element a template must show to the TemplateData field holding it.
var templateFields = map[string]string{
	ElementReference:             "Reference",
	ElementTitle:                 "Title",
	ElementAwareAt:               "AwareAt",
	ElementNature:                "Nature",
	ElementDataCategories:        "DataCategories",
	ElementDataSubjectCategories: "DataSubjectCategories",
	ElementApproxDataSubjects:    "ApproxDataSubjects",
	ElementApproxRecords:         "ApproxRecords",
	ElementContactPoint:          "Contact",
	ElementLikelyConsequences:    "LikelyConsequences",
	ElementMeasuresTaken:         "MeasuresTaken",
	ElementMeasuresProposed:      "MeasuresProposed",
	ElementAckURL:                "AckURL",
	ElementWhatsNew:              "WhatsNew",
}
