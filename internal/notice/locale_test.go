package notice_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
)

func TestLocales(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"de", "en", "es", "fr", "it"}, notice.Locales())
	require.Equal(t, "en", notice.DefaultLocale)

	got := notice.Locales()
	got[0] = "xx"
	require.Equal(t, "de", notice.Locales()[0], "Locales must return a copy")
}

func TestNormalizeLocale(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"en", "en"},
		{"it", "it"},
		{"it-IT", "it"},
		{"it_IT", "it"},
		{"IT", "it"},
		{"de_DE.UTF-8", "de"},
		{"de-AT", "de"},
		{"fr-CA", "fr"},
		{"fr_FR@euro", "fr"},
		{"es-419", "es"},
		{" es_MX ", "es"},
		{"pt-BR", "en"},
		{"english", "en"},
		{"", "en"},
		{"C", "en"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, notice.NormalizeLocale(tt.in))
		})
	}
}

func TestFormatTime(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 2, 14, 5, 0, 0, time.UTC)
	rome := time.FixedZone("CET", 3600)
	tests := []struct {
		name   string
		t      time.Time
		locale string
		want   string
	}{
		{"en", at, "en", "2 March 2026, 14:05 UTC"},
		{"it", at, "it-IT", "2 marzo 2026, ore 14:05 UTC"},
		{"de", at, "de_DE", "2. März 2026, 14:05 Uhr UTC"},
		{"fr", at, "fr", "2 mars 2026 à 14:05 UTC"},
		{"fr first of month", time.Date(2026, 8, 1, 9, 0, 0, 0, time.UTC), "fr", "1er août 2026 à 09:00 UTC"},
		{"es", at, "es", "2 de marzo de 2026, 14:05 UTC"},
		{"converted to UTC", time.Date(2026, 1, 1, 0, 30, 0, 0, rome), "en", "31 December 2025, 23:30 UTC"},
		{"unsupported falls back to en", at, "ja-JP", "2 March 2026, 14:05 UTC"},
		{"zero en", time.Time{}, "en", "not specified"},
		{"zero de", time.Time{}, "de", "nicht angegeben"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, notice.FormatTime(tt.t, tt.locale))
		})
	}
}

func TestFormatCount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n      int64
		locale string
		want   string
	}{
		{7, "en", "7"},
		{999, "en", "999"},
		{1200, "en", "1,200"},
		{2500000, "en", "2,500,000"},
		{1200, "it", "1.200"},
		{2500000, "de", "2.500.000"},
		{2500000, "fr", "2\u202f500\u202f000"},
		{1200, "es", "1.200"},
		{123456789, "xx", "123,456,789"},
	}
	for _, tt := range tests {
		t.Run(tt.locale+"/"+tt.want, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, notice.FormatCount(tt.n, tt.locale))
		})
	}
}

func TestReminderPrefix(t *testing.T) {
	t.Parallel()
	want := map[string]string{"de": "[Erinnerung] ", "en": "[Reminder] ", "es": "[Recordatorio] ", "fr": "[Rappel] ", "it": "[Promemoria] "}
	for _, loc := range notice.Locales() {
		require.Equal(t, want[loc], notice.ReminderPrefix(loc), loc)
	}
	require.Equal(t, "[Promemoria] ", notice.ReminderPrefix("it-CH"))
	require.Equal(t, "[Reminder] ", notice.ReminderPrefix("pt-BR"), "an unsupported locale reads as the default")
}
