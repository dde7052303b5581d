// Package deploy holds the checks on how breachflow is deployed: its tests load the
// repository's docker-compose.yml with the Compose specification's own loader and check
// the services, their wiring and their settings without a container engine.
package deploy
