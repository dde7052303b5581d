package console_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/console"
	"github.com/breachflow/breachflow/internal/store"
)

// consoleOn serves another console with keys on the stack's API and database, and
// returns a browser of it that shares cookies with jar (cookies ignore ports).
func (s *stack) consoleOn(t *testing.T, jar http.CookieJar, keys ...console.SessionKey) *browser {
	t.Helper()
	c := &console.Console{API: s.api, Store: s.st, Logger: zap.NewNop(), Keys: keys}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return &browser{t: t, base: srv.URL, c: &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) signedIn() bool {
	b.t.Helper()
	code, _ := b.get("/console/")
	return code == http.StatusOK
}

func sessionCookieOf(t *testing.T, b *browser) *http.Cookie {
	t.Helper()
	u, err := url.Parse(b.base + "/console/")
	require.NoError(t, err)
	for _, ck := range b.c.Jar.Cookies(u) {
		if ck.Name == "bf_session" {
			return ck
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// A database reader knows the acknowledgement secret and every stored row; none of it
// makes a session: the session key is configuration, and the sessions table holds
// hashes of cookie ids only.
func TestSessionsCannotBeForgedFromTheDatabase(t *testing.T) {
	s := newStack(t, 3)
	ctx := context.Background()
	keys, err := s.st.ListAPIKeys(ctx)
	require.NoError(t, err)
	var rita int64
	for _, k := range keys {
		if k.Name == "rita" {
			rita = k.ID
		}
	}
	// The forgery that worked before: a key derived from the ack secret, an expiry in 2036.
	derived := sha256.Sum256(append([]byte("breachflow console\x00"), s.ackSecret...))
	sign := func(secret []byte, parts ...string) string {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(strings.Join(parts, "|")))
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	payload := strconv.FormatInt(rita, 10) + "." + strconv.FormatInt(time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), 10)
	forged := []string{
		payload + "." + sign(derived[:], "session", payload),
		"k1.made-up-id." + sign(derived[:], "session", "k1", "made-up-id"),
		"k1.made-up-id." + sign(s.ackSecret, "session", "k1", "made-up-id"),
	}
	for _, v := range forged {
		req, err := http.NewRequest("GET", s.url+"/console/", nil)
		require.NoError(t, err)
		req.AddCookie(&http.Cookie{Name: "bf_session", Value: v})
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, "a forged session is sent to sign in")
		require.Equal(t, "/console/login", resp.Header.Get("Location"))
	}

	// A real session: the database keeps its id's hash, not the id, and an expiry that
	// cannot be pushed past twelve hours from its issue.
	b := s.browser(t)
	b.signIn(s.keys["rita"])
	ck := sessionCookieOf(t, b)
	parts := strings.Split(ck.Value, ".")
	require.Len(t, parts, 3)
	var stored int
	require.NoError(t, s.st.Pool().QueryRow(ctx, `SELECT count(*) FROM console_sessions WHERE id_hash = sha256(convert_to($1, 'UTF8'))`, parts[1]).Scan(&stored))
	require.Equal(t, 1, stored)
	var plain int
	require.NoError(t, s.st.Pool().QueryRow(ctx, `SELECT count(*) FROM console_sessions WHERE position(convert_to($1, 'UTF8') IN id_hash) > 0`, parts[1]).Scan(&plain))
	require.Zero(t, plain)
	_, err = s.st.Pool().Exec(ctx, `UPDATE console_sessions SET expires_at = '2036-01-01'`)
	require.ErrorContains(t, err, "console_sessions_check", "an expiry past twelve hours from issue is refused")
}

// Sign-out ends the session in the database: the cookie, kept and replayed, is no
// session any more.
func TestLogoutEndsTheSession(t *testing.T) {
	s := newStack(t, 3)
	b := s.browser(t)
	b.signIn(s.keys["rita"])
	kept := sessionCookieOf(t, b)
	require.True(t, b.signedIn())
	code, _ := b.post("/console/logout", url.Values{"csrf": {b.token(t)}})
	require.Equal(t, http.StatusSeeOther, code)
	require.False(t, b.signedIn())

	replay := s.browser(t)
	u, err := url.Parse(s.url + "/console/")
	require.NoError(t, err)
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: kept.Name, Value: kept.Value, Path: "/console/"}})
	require.False(t, replay.signedIn(), "the old cookie no longer signs in")
}

// Session keys rotate: a console that signs with a new key still accepts sessions of the
// old one while it is listed, and refuses them once it is dropped.
func TestSessionKeysRotate(t *testing.T) {
	s := newStack(t, 3)
	old := console.SessionKey{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}
	next := console.SessionKey{ID: "k2", Secret: []byte("fedcba9876543210fedcba9876543210")}
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	first := s.consoleOn(t, jar, old)
	first.signIn(s.keys["rita"])
	require.True(t, first.signedIn())
	require.True(t, s.consoleOn(t, jar, next, old).signedIn(), "the old key is still accepted")
	require.False(t, s.consoleOn(t, jar, next).signedIn(), "a dropped key's sessions end")
	// And a new sign-in is signed with the new key.
	rotated := s.consoleOn(t, jar, next, old)
	rotated.signIn(s.keys["rita"])
	require.True(t, strings.HasPrefix(sessionCookieOf(t, rotated).Value, "k2."))
}

// Sign-in attempts are limited per address and each refusal is audited by route.
func TestSignInIsLimitedAndAudited(t *testing.T) {
	s := newStack(t, 3)
	b := s.browser(t)
	tok := b.csrf("/console/login")
	codes := map[int]int{}
	for range 8 {
		code, _ := b.post("/console/login", url.Values{"csrf": {tok}, "key": {"bf_guess"}})
		codes[code]++
	}
	require.Equal(t, 5, codes[http.StatusUnauthorized], "the burst of tries")
	require.Equal(t, 3, codes[http.StatusTooManyRequests])
	code, _ := b.post("/console/login", url.Values{"csrf": {tok}, "key": {s.keys["rita"]}})
	require.Equal(t, http.StatusTooManyRequests, code, "a limited address waits, even with a good key")
	s.api.FlushDenials()
	count := func(reason string) int {
		var n int
		require.NoError(t, s.st.Pool().QueryRow(context.Background(), `SELECT coalesce(sum((detail->>'count')::int), 0) FROM audit_log
			WHERE action = 'auth.denied' AND detail->>'route' = 'POST /console/login' AND detail->>'reason' = $1`, reason).Scan(&n))
		return n
	}
	require.Equal(t, 5, count("console sign-in refused"))
	require.Equal(t, 4, count("console sign-in rate limited"))
}

// A banner shows only the console's own messages, by code: text in the URL is not shown.
func TestBannerShowsOnlyKnownNotices(t *testing.T) {
	s := newStack(t, 3)
	b := s.browser(t)
	b.signIn(s.keys["rita"])
	_, body := b.get("/console/?ok=" + url.QueryEscape("Approved by the CISO: wire the ransom to IBAN DE00"))
	require.NotContains(t, body, "CISO")
	require.NotContains(t, body, "IBAN")
	_, body = b.get("/console/?ok=declared")
	require.Contains(t, body, "Declared.")
}

// A form field that is not valid UTF-8 is refused and changes nothing: stored, it would
// read as text nobody typed.
func TestFormsRefuseInvalidUTF8(t *testing.T) {
	s := newStack(t, 3)
	ctx := context.Background()
	inc, _, err := s.st.CreateIncident(ctx, "", store.Declaration{Title: "x", Severity: "low", AwareAt: time.Now().Add(-time.Hour)}, "setup", time.Now())
	require.NoError(t, err)
	b := s.browser(t)
	b.signIn(s.keys["rita"])
	_, before := counts(t, s)
	code, body := b.post("/console/incidents/"+inc.ID+"/assess", url.Values{"csrf": {b.token(t)}, "reportable": {"true"},
		"rationale": {"bad \xff\xfe bytes"}})
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Contains(t, body, "rationale: not valid UTF-8")
	_, after := counts(t, s)
	require.Equal(t, before, after, "nothing written")
}
