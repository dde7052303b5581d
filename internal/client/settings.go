package client

import (
	"net/url"

	"github.com/spf13/pflag"
)

// The client's settings: environment variables and the default API URL.
const (
	EnvURL     = "BREACHFLOW_URL"
	EnvAPIKey  = "BREACHFLOW_API_KEY"
	DefaultURL = "http://127.0.0.1:8080"
)

// Settings says where the API is and which key calls it: flags first, then the
// environment, then the default.
type Settings struct {
	URL string
	Key string
}

// Register adds --url and --api-key to fs, bound to s. Neither shows a default value:
// the help would print the environment's key.
func (s *Settings) Register(fs *pflag.FlagSet) {
	fs.StringVar(&s.URL, "url", "", "base URL of the breachflow API (env "+EnvURL+", default "+DefaultURL+")")
	fs.StringVar(&s.Key, "api-key", "", "API key the commands call it with (env "+EnvAPIKey+")")
}

// Resolve fills what the flags left empty from getenv and the default.
func (s Settings) Resolve(getenv func(string) (string, bool)) Settings {
	if s.URL == "" {
		if v, ok := getenv(EnvURL); ok && v != "" {
			s.URL = v
		} else {
			s.URL = DefaultURL
		}
	}
	if s.Key == "" {
		if v, ok := getenv(EnvAPIKey); ok {
			s.Key = v
		}
	}
	return s
}

// Client checks the resolved settings and returns a client for them.
func (s Settings) Client() (*Client, error) {
	if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, Errorf("invalid", "url", "--url / %s %q: want an http:// or https:// URL such as %s", EnvURL, s.URL, DefaultURL)
	}
	if s.Key == "" {
		return nil, Errorf("unauthenticated", "api-key", "no API key: give --api-key or set %s (an admin creates keys with `breachflow apikey create`)", EnvAPIKey)
	}
	return New(s.URL, s.Key), nil
}
