package notice

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultLocale is the locale used when a tenant's locale is unknown or unsupported.
const DefaultLocale = "en"

// locales lists the supported locale codes in the order content hashes and listings use.
var locales = []string{"de", "en", "es", "fr", "it"}

// localeInfo is what rendering needs to know about one language.
type localeInfo struct {
	name         string
	months       [12]string
	thousands    string
	notSpecified string
	formatTime   func(t time.Time, month string) string
	// notYetKnown stands in for an element marked not yet known.
	notYetKnown string
	// phaseInitial, phaseUpdate and phaseFinal label a notice; %d is the phase number.
	phaseInitial, phaseUpdate, phaseFinal string
	// reminder marks the subject of a reminder.
	reminder string
	// facts reads the per-tenant facts block.
	facts factsWords
}

// factsWords are one language's words for the per-tenant facts block.
type factsWords struct {
	services, connectors, regions string // line prefixes
	andMore                       string // %s is the formatted number of entries left out
	and                           string // joins the entries before "and N more"
	numbers                       string // prefix of the numbers line
	joinNumbers                   string // joins the two counts
	subject, subjects             string // one and several data subjects
	record, records               string // one and several records
	none                          string // the line when nothing is recorded
}

var localeInfos = map[string]localeInfo{
	"en": {
		name:         "English",
		months:       [12]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
		thousands:    ",",
		notSpecified: "not specified",
		formatTime: func(t time.Time, month string) string {
			return strconv.Itoa(t.Day()) + " " + month + " " + strconv.Itoa(t.Year()) + ", " + t.Format("15:04") + " UTC"
		},
		notYetKnown:  "Not yet known — we will tell you in a later update.",
		phaseInitial: "Initial notification",
		phaseUpdate:  "Update %d",
		phaseFinal:   "Final report (notice %d)",
		reminder:     "[Reminder] ",
		facts: factsWords{
			services:    "Affected services of yours: ",
			connectors:  "Affected connectors of yours: ",
			regions:     "Affected data regions of yours: ",
			andMore:     "%s more",
			and:         " and ",
			numbers:     "For your tenant: approximately ",
			joinNumbers: " and ",
			subject:     "data subject", subjects: "data subjects",
			record: "record", records: "records",
			none: "No tenant-specific details were recorded.",
		},
	},
	"it": {
		name:         "Italian",
		months:       [12]string{"gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre", "ottobre", "novembre", "dicembre"},
		thousands:    ".",
		notSpecified: "non specificato",
		formatTime: func(t time.Time, month string) string {
			return strconv.Itoa(t.Day()) + " " + month + " " + strconv.Itoa(t.Year()) + ", ore " + t.Format("15:04") + " UTC"
		},
		notYetKnown:  "Non ancora noto — ve lo comunicheremo in un aggiornamento successivo.",
		phaseInitial: "Notifica iniziale",
		phaseUpdate:  "Aggiornamento %d",
		phaseFinal:   "Relazione finale (notifica %d)",
		reminder:     "[Promemoria] ",
		facts: factsWords{
			services:    "Vostri servizi interessati: ",
			connectors:  "Vostri connettori interessati: ",
			regions:     "Vostre regioni dei dati interessate: ",
			andMore:     "altri %s",
			and:         " e ",
			numbers:     "Per il vostro tenant: circa ",
			joinNumbers: " e ",
			subject:     "interessato", subjects: "interessati",
			record: "registrazione", records: "registrazioni",
			none: "Non sono stati registrati dettagli specifici per il vostro tenant.",
		},
	},
	"de": {
		name:         "German",
		months:       [12]string{"Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober", "November", "Dezember"},
		thousands:    ".",
		notSpecified: "nicht angegeben",
		formatTime: func(t time.Time, month string) string {
			return strconv.Itoa(t.Day()) + ". " + month + " " + strconv.Itoa(t.Year()) + ", " + t.Format("15:04") + " Uhr UTC"
		},
		notYetKnown:  "Noch nicht bekannt — wir teilen es Ihnen in einer späteren Aktualisierung mit.",
		phaseInitial: "Erstmeldung",
		phaseUpdate:  "Aktualisierung %d",
		phaseFinal:   "Abschlussbericht (Meldung %d)",
		reminder:     "[Erinnerung] ",
		facts: factsWords{
			services:    "Ihre betroffenen Dienste: ",
			connectors:  "Ihre betroffenen Konnektoren: ",
			regions:     "Ihre betroffenen Datenregionen: ",
			andMore:     "%s weitere",
			and:         " und ",
			numbers:     "Für Ihren Mandanten: ungefähr ",
			joinNumbers: " und ",
			subject:     "betroffene Person", subjects: "betroffene Personen",
			record: "Datensatz", records: "Datensätze",
			none: "Es wurden keine mandantenspezifischen Angaben erfasst.",
		},
	},
	"fr": {
		name:         "French",
		months:       [12]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"},
		thousands:    "\u202f",
		notSpecified: "non précisé",
		formatTime: func(t time.Time, month string) string {
			day := strconv.Itoa(t.Day())
			if t.Day() == 1 {
				day = "1er"
			}
			return day + " " + month + " " + strconv.Itoa(t.Year()) + " à " + t.Format("15:04") + " UTC"
		},
		notYetKnown:  "Pas encore connu — nous vous en informerons dans une prochaine mise à jour.",
		phaseInitial: "Notification initiale",
		phaseUpdate:  "Mise à jour n° %d",
		phaseFinal:   "Rapport final (notification n° %d)",
		reminder:     "[Rappel] ",
		facts: factsWords{
			services:    "Vos services concernés\u00a0: ",
			connectors:  "Vos connecteurs concernés\u00a0: ",
			regions:     "Vos régions de données concernées\u00a0: ",
			andMore:     "%s autres",
			and:         " et ",
			numbers:     "Pour votre tenant\u00a0: environ ",
			joinNumbers: " et ",
			subject:     "personne concernée", subjects: "personnes concernées",
			record: "enregistrement", records: "enregistrements",
			none: "Aucune information propre à votre tenant n'a été enregistrée.",
		},
	},
	"es": {
		name:         "Spanish",
		months:       [12]string{"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"},
		thousands:    ".",
		notSpecified: "no especificado",
		formatTime: func(t time.Time, month string) string {
			return strconv.Itoa(t.Day()) + " de " + month + " de " + strconv.Itoa(t.Year()) + ", " + t.Format("15:04") + " UTC"
		},
		notYetKnown:  "Aún no se conoce — se lo comunicaremos en una actualización posterior.",
		phaseInitial: "Notificación inicial",
		phaseUpdate:  "Actualización n.º %d",
		phaseFinal:   "Informe final (notificación n.º %d)",
		reminder:     "[Recordatorio] ",
		facts: factsWords{
			services:    "Sus servicios afectados: ",
			connectors:  "Sus conectores afectados: ",
			regions:     "Sus regiones de datos afectadas: ",
			andMore:     "%s más",
			and:         " y ",
			numbers:     "Para su tenant: aproximadamente ",
			joinNumbers: " y ",
			subject:     "interesado", subjects: "interesados",
			record: "registro", records: "registros",
			none: "No se han registrado datos específicos de su tenant.",
		},
	},
}

// Locales returns the supported locale codes, sorted.
func Locales() []string {
	return append([]string(nil), locales...)
}

// IsSupported reports whether code is exactly one of the supported locale codes.
func IsSupported(code string) bool {
	_, ok := localeInfos[code]
	return ok
}

// NormalizeLocale maps a tenant locale such as "it-IT", "it_IT" or "de_DE.UTF-8" to a
// supported code, falling back to DefaultLocale.
func NormalizeLocale(locale string) string {
	lang := strings.TrimSpace(locale)
	if i := strings.IndexAny(lang, "-_.@"); i >= 0 {
		lang = lang[:i]
	}
	lang = strings.ToLower(lang)
	if _, ok := localeInfos[lang]; ok {
		return lang
	}
	return DefaultLocale
}

// FormatTime formats t in UTC the way the locale writes a date and time; a zero time
// reads as "not specified" in that language.
func FormatTime(t time.Time, locale string) string {
	info := localeInfos[NormalizeLocale(locale)]
	if t.IsZero() {
		return info.notSpecified
	}
	t = t.UTC()
	return info.formatTime(t, info.months[t.Month()-1])
}

// PhaseLabel names a phase the way the locale's notices label it, e.g. "Update 2" or
// "Final report (notice 3)"; the zero Phase reads as the initial notice.
func PhaseLabel(p Phase, locale string) string {
	info := localeInfos[NormalizeLocale(locale)]
	if p == (Phase{}) {
		p = Phase{Number: 1, Kind: PhaseInitial}
	}
	switch p.Kind {
	case PhaseInitial:
		return info.phaseInitial
	case PhaseFinal:
		return fmt.Sprintf(info.phaseFinal, p.Number)
	}
	return fmt.Sprintf(info.phaseUpdate, p.Number)
}

// ReminderPrefix is what the locale puts before a reminder's subject, e.g. "[Reminder] ".
func ReminderPrefix(locale string) string {
	return localeInfos[NormalizeLocale(locale)].reminder
}

// FormatCount formats n with the locale's thousands separator.
func FormatCount(n int64, locale string) string {
	info := localeInfos[NormalizeLocale(locale)]
	digits := strconv.FormatInt(n, 10)
	sign := ""
	if strings.HasPrefix(digits, "-") {
		sign, digits = "-", digits[1:]
	}
	var b strings.Builder
	b.WriteString(sign)
	for i, r := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteString(info.thousands)
		}
		b.WriteRune(r)
	}
	return b.String()
}
