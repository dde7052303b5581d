package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	sessionCookie = "bf_session"
	loginCookie   = "bf_login"
	sessionTTL    = 12 * time.Hour
)

// session is the signed cookie value: the key id and an expiry, so a revoked key's
// session ends at its next request.
type session struct {
	keyID   int64
	expires time.Time
	raw     string
}

func (c *Console) sign(parts ...string) string {
	m := hmac.New(sha256.New, c.Secret)
	m.Write([]byte(strings.Join(parts, "|")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Console) newSession(w http.ResponseWriter, keyID int64) {
	exp := time.Now().Add(sessionTTL).Unix()
	payload := strconv.FormatInt(keyID, 10) + "." + strconv.FormatInt(exp, 10)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: payload + "." + c.sign("session", payload), Path: "/console/",
		HttpOnly: true, Secure: c.Secure, SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL.Seconds())})
}

func (c *Console) readSession(r *http.Request) (session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, err
	}
	parts := strings.Split(ck.Value, ".")
	if len(parts) != 3 {
		return session{}, errors.New("malformed session")
	}
	payload := parts[0] + "." + parts[1]
	if !hmac.Equal([]byte(parts[2]), []byte(c.sign("session", payload))) {
		return session{}, errors.New("bad session signature")
	}
	id, err1 := strconv.ParseInt(parts[0], 10, 64)
	exp, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil || time.Now().Unix() > exp {
		return session{}, errors.New("expired session")
	}
	return session{keyID: id, expires: time.Unix(exp, 0), raw: ck.Value}, nil
}

// csrfFor is the token every form of a session carries.
func (c *Console) csrfFor(sessionValue string) string { return c.sign("csrf", sessionValue) }

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
