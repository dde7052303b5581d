package notice

import (
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
	},
	"it": {
		name:         "Italian",
		months:       [12]string{"gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre", "ottobre", "novembre", "dicembre"},
		thousands:    ".",
		notSpecified: "non specificato",
		formatTime: func(t time.Time, month string) string {
			return strconv.Itoa(t.Day()) + " " + month + " " + strconv.Itoa(t.Year()) + ", ore " + t.Format("15:04") + " UTC"
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
	},
	"es": {
		name:         "Spanish",
		months:       [12]string{"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"},
		thousands:    ".",
		notSpecified: "no especificado",
		formatTime: func(t time.Time, month string) string {
			return strconv.Itoa(t.Day()) + " de " + month + " de " + strconv.Itoa(t.Year()) + ", " + t.Format("15:04") + " UTC"
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
