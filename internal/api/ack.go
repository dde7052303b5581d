package api

import (
	"errors"
	"html/template"
	"net/http"
	"regexp"
	"time"

	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
)

type ackText struct {
	Title, Intro, Incident, Tenant, Button, Done, Already, NotFound, NotFoundBody string
}

var ackTexts = map[string]ackText{
	"en": {"Acknowledge receipt", "Please confirm that your organisation has received our personal data breach notice.",
		"Incident", "Organisation", "Acknowledge receipt", "Thank you. Your acknowledgement was recorded at %s.",
		"This notice was already acknowledged at %s.", "Link not valid", "This acknowledgement link is unknown or has expired. Please contact us using the details in the notice."},
	"it": {"Conferma di ricezione", "Vi chiediamo di confermare che la vostra organizzazione ha ricevuto la nostra notifica di violazione dei dati personali.",
		"Incidente", "Organizzazione", "Conferma ricezione", "Grazie. La vostra conferma è stata registrata il %s.",
		"Questa notifica era già stata confermata il %s.", "Link non valido", "Questo link di conferma è sconosciuto o scaduto. Contattateci ai recapiti indicati nella notifica."},
	"de": {"Empfang bestätigen", "Bitte bestätigen Sie, dass Ihre Organisation unsere Meldung einer Verletzung des Schutzes personenbezogener Daten erhalten hat.",
		"Vorfall", "Organisation", "Empfang bestätigen", "Vielen Dank. Ihre Bestätigung wurde am %s erfasst.",
		"Diese Meldung wurde bereits am %s bestätigt.", "Link ungültig", "Dieser Bestätigungslink ist unbekannt oder abgelaufen. Bitte kontaktieren Sie uns über die Angaben in der Meldung."},
	"fr": {"Accusé de réception", "Merci de confirmer que votre organisation a bien reçu notre notification de violation de données à caractère personnel.",
		"Incident", "Organisation", "Accuser réception", "Merci. Votre accusé de réception a été enregistré le %s.",
		"Cette notification a déjà été confirmée le %s.", "Lien non valide", "Ce lien de confirmation est inconnu ou a expiré. Veuillez nous contacter aux coordonnées indiquées dans la notification."},
	"es": {"Acuse de recibo", "Les rogamos que confirmen que su organización ha recibido nuestra notificación de violación de datos personales.",
		"Incidente", "Organización", "Confirmar recepción", "Gracias. Su confirmación se registró el %s.",
		"Esta notificación ya se confirmó el %s.", "Enlace no válido", "Este enlace de confirmación es desconocido o ha caducado. Contacte con nosotros a través de los datos de la notificación."},
}

var ackPageTmpl = template.Must(template.New("ack").Funcs(template.FuncMap{
	"printf": func(f string, t string) string { return sprintf(f, t) },
}).Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.T.Title}}</title>
<style>body{font-family:Arial,Helvetica,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1f2328}
button{font-size:1rem;padding:.6rem 1.2rem;background:#0b5cad;color:#fff;border:0;border-radius:4px;cursor:pointer}
dt{font-weight:bold}</style></head><body>
{{if .NotFound}}<h1>{{.T.NotFound}}</h1><p>{{.T.NotFoundBody}}</p>{{else}}
<h1>{{.T.Title}}</h1>
<dl>{{if or .Target.Title .Target.Reference}}<dt>{{.T.Incident}}</dt><dd>{{.Target.Title}}{{if and .Target.Title .Target.Reference}} {{end}}{{with .Target.Reference}}({{.}}){{end}}</dd>{{end}}<dt>{{.T.Tenant}}</dt><dd>{{.Target.TenantName}}</dd></dl>
{{if .AckedAt}}<p role="status">{{if .JustNow}}{{printf .T.Done .AckedAt}}{{else}}{{printf .T.Already .AckedAt}}{{end}}</p>
{{else}}<p>{{.T.Intro}}</p><form method="post"><button type="submit">{{.T.Button}}</button></form>{{end}}
{{end}}</body></html>`))

type ackPageData struct {
	Lang     string
	T        ackText
	NotFound bool
	Target   store.AckTarget
	AckedAt  string
	JustNow  bool
}

var tokenRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

func ackHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}

// lookupAck resolves the path's token; unknown, expired, tampered and malformed tokens
// all get the same 404 page (or 429 once the address has had too many, see limitedAck).
// A malformed token is refused without a lookup.
func (s *Server) lookupAck(w http.ResponseWriter, r *http.Request) (store.AckTarget, bool) {
	token := r.PathValue("token")
	if !tokenRe.MatchString(token) {
		ackNotFoundPage(w)
		return store.AckTarget{}, false
	}
	t, err := s.Store.LookupAck(r.Context(), token)
	if err != nil {
		s.ackMiss(w, r, err)
		return t, false
	}
	return t, true
}

// ackMiss answers a token that was looked up and not found (or whose lookup failed).
// A failed lookup is the server's fault, not the client's: it spends none of its budget.
func (s *Server) ackMiss(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, store.ErrNotFound) {
		s.Logger.Error("acknowledgement lookup", zap.Error(err))
	} else if !s.ackNotFound(w, r) {
		return
	}
	ackNotFoundPage(w)
}

func ackNotFoundPage(w http.ResponseWriter) {
	ackHeaders(w)
	w.WriteHeader(http.StatusNotFound)
	_ = ackPageTmpl.Execute(w, ackPageData{Lang: "en", T: ackTexts["en"], NotFound: true})
}

// ackPage shows the notice summary and a button; it changes nothing, so mail scanners
// that prefetch links cannot acknowledge on the customer's behalf.
func (s *Server) ackPage(w http.ResponseWriter, r *http.Request) {
	t, ok := s.lookupAck(w, r)
	if !ok {
		return
	}
	s.renderAck(w, t, false)
}

// ackSubmit records the acknowledgement, once.
func (s *Server) ackSubmit(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if !tokenRe.MatchString(token) {
		ackNotFoundPage(w)
		return
	}
	t, err := s.Store.LookupAck(r.Context(), token)
	if errors.Is(err, store.ErrNotFound) {
		s.ackMiss(w, r, err)
		return
	}
	recorded := false
	if err == nil && t.AcknowledgedAt == nil {
		recorded, err = s.acks.acknowledge(r.Context(), store.AckRequest{IncidentID: t.IncidentID, TenantID: t.TenantID, Via: "link", Actor: "customer"})
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if recorded {
		now := time.Now()
		t.AcknowledgedAt = &now
		s.Logger.Info("tenant acknowledged", zap.String("incident_id", t.IncidentID), zap.String("tenant_id", t.TenantID))
	} else if t.AcknowledgedAt == nil {
		// Raced with another POST: read it back for the page.
		if t2, err := s.Store.LookupAck(r.Context(), token); err == nil {
			t = t2
		}
	}
	s.renderAck(w, t, recorded)
}

func (s *Server) renderAck(w http.ResponseWriter, t store.AckTarget, justNow bool) {
	lang := notice.NormalizeLocale(t.Locale)
	text, ok := ackTexts[lang]
	if !ok {
		lang, text = "en", ackTexts["en"]
	}
	d := ackPageData{Lang: lang, T: text, Target: t, JustNow: justNow}
	if t.AcknowledgedAt != nil {
		d.AckedAt = notice.FormatTime(*t.AcknowledgedAt, lang)
	}
	ackHeaders(w)
	if err := ackPageTmpl.Execute(w, d); err != nil {
		s.Logger.Error("render acknowledgement page", zap.Error(err))
	}
}
