// Package faults holds the multi-process fault suite (build tag faults, `make
// test-faults`): it runs the real deployment — a SQLite-persisted Temporal server in its
// own process, serve, two workers and the mail sink, on a private PostgreSQL cluster —
// injects crashes, outages and provider storms, and counts what every recipient received
// at the sink.
package faults
