// Package deploy holds the checks on how breachflow is deployed: its tests load the
// repository's docker-compose.yml (and deploy/compose.api-tls.yml) with the Compose
// specification's own loader, as production, with the dev profile and with the API's own
// TLS, and check without a container engine the services, their wiring and settings, and
// what they expose: exactly the ports meant to be published (Caddy's 80 and 443, the
// read-only Temporal UI and the dev mail sink on loopback only), PostgreSQL and Temporal on
// an internal network, secrets taken from .env with no default and given only to the
// services that use them, .env documented by .env.example and ignored by git. Each check is
// shown to fail on a broken copy of the files.
package deploy
