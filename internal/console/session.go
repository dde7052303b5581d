package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/breachflow/breachflow/internal/store"
)

const (
	sessionCookie = "bf_session"
	loginCookie   = "bf_login"
	sessionTTL    = 12 * time.Hour
)

// SessionKey signs session cookies and CSRF tokens. Keys rotate: the first signs new
// sessions, every listed key is still accepted, and the cookie names its key's id.
type SessionKey struct {
	ID     string
	Secret []byte
}

// session is a live console session: the random id its cookie carries (the database
// keeps only its SHA-256, its key and its expiry, fixed when it was issued) and the key
// that signed in.
type session struct {
	id  string
	kid string
	key store.APIKey
}

func (c *Console) keyFor(kid string) ([]byte, bool) {
	for _, k := range c.Keys {
		if k.ID == kid {
			return k.Secret, true
		}
	}
	return nil, false
}

func sign(secret []byte, parts ...string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strings.Join(parts, "|")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newSession stores a session of key id and sets its cookie.
func (c *Console) newSession(w http.ResponseWriter, r *http.Request, keyID int64) error {
	if len(c.Keys) == 0 {
		return errors.New("no console session key is configured (BREACHFLOW_SESSION_KEYS)")
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	id := base64.RawURLEncoding.EncodeToString(raw)
	if _, err := c.Store.CreateSession(r.Context(), store.HashKey(id), keyID, sessionTTL); err != nil {
		return err
	}
	k := c.Keys[0]
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: k.ID + "." + id + "." + sign(k.Secret, "session", k.ID, id), Path: "/console/",
		HttpOnly: true, Secure: c.Secure, SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL.Seconds())})
	return nil
}

// readSession checks the cookie's signature, then asks the database: a session ended by
// sign-out, past the expiry fixed at issue, or of a revoked key is no session.
func (c *Console) readSession(r *http.Request) (session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, err
	}
	parts := strings.Split(ck.Value, ".")
	if len(parts) != 3 {
		return session{}, errors.New("malformed session")
	}
	secret, ok := c.keyFor(parts[0])
	if !ok || !hmac.Equal([]byte(parts[2]), []byte(sign(secret, "session", parts[0], parts[1]))) {
		return session{}, errors.New("bad session signature")
	}
	ss, err := c.Store.GetSession(r.Context(), store.HashKey(parts[1]))
	if err != nil {
		return session{}, err
	}
	return session{id: parts[1], kid: parts[0], key: ss.Key}, nil
}

// endSession ends the request's session in the database (sign-out).
func (c *Console) endSession(r *http.Request, s session) error {
	return c.Store.EndSession(r.Context(), store.HashKey(s.id))
}

// csrfFor is the token every form of a session carries.
func (c *Console) csrfFor(s session) string {
	secret, _ := c.keyFor(s.kid)
	return sign(secret, "csrf", s.id)
}

// loginToken sets (or reuses) the pre-session cookie whose value the login form echoes.
func (c *Console) loginToken(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(loginCookie); err == nil && len(ck.Value) == 32 {
		return ck.Value
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	v := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: v, Path: "/console/", HttpOnly: true, Secure: c.Secure,
		SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	return v
}
