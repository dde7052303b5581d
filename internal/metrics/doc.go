// Package metrics holds breachflow's Prometheus series (prometheus/client_golang). Both
// server roles serve theirs on a listener of their own (BREACHFLOW_METRICS_LISTEN), never
// on the public one: `breachflow serve` the API's registry, `breachflow worker` the
// worker's. deploy/grafana-dashboard.json charts them.
//
// No label holds an email address, a tenant id or an incident id: every label below has
// a small fixed set of values.
//
// # API process: truth read from PostgreSQL (Domain)
//
// Gauges computed at scrape time, one aggregate query per family under one timeout
// (DefaultScrapeTimeout), so they are right whichever process did the work and across
// restarts. "Open" incidents are those not closed; tenants count once per incident.
//
//	breachflow_incidents{stage}                   gauge  incidents by stage (declared … tracking, closed)
//	breachflow_notices{status}                    gauge  notices of open incidents by outbox status
//	                                                     (pending, sending, sent, delivered, deferred,
//	                                                     bounced, dropped, failed, cancelled)
//	breachflow_possible_duplicate_notices         gauge  notices of open incidents sent again after an
//	                                                     unanswered send
//	breachflow_acknowledged_tenants               gauge  acknowledgements of open incidents
//	breachflow_owed_tenants                       gauge  tenants still owed a notice of an open incident
//	breachflow_unreachable_tenants                gauge  owed tenants with no deliverable contact left
//	breachflow_tenants_at_risk{window}            gauge  owed tenants past their deadline (window="past")
//	                                                     or near it (window="near": at least
//	                                                     DefaultNearDeadline of their time used)
//	breachflow_domain_scrape_success              gauge  1 when every query above answered in time
//	breachflow_domain_scrape_duration_seconds     gauge  how long they took
//
// The API's registry also holds breachflow_http_requests_total{route,code} (counter:
// requests by route pattern and status class, code="2xx" …), and the Go runtime's and
// process's go_… and process_… series.
//
// # Worker process: events (Worker)
//
// Counters and histograms of what this worker did; a restart resets them (rate() and
// increase() absorb that). SendGrid series count the requests of notice pages (SendPage),
// not the responders' alert emails.
//
//	breachflow_pages_total{outcome}                      counter    SendPage attempts by outcome: sent,
//	                                                                nothing_to_send, in_doubt,
//	                                                                temporary_error, refused
//	breachflow_notices_sent_total                        counter    notices SendGrid accepted, recorded sent
//	breachflow_sendgrid_requests_total{outcome}          counter    Mail Send requests by outcome: accepted,
//	                                                                rate_limited (429), server_error (5xx),
//	                                                                unauthorized (401/403), rejected (other
//	                                                                4xx), no_answer (in doubt),
//	                                                                network_error (never reached SendGrid)
//	breachflow_sendgrid_request_duration_seconds{outcome} histogram Mail Send request latency
//	breachflow_sendgrid_retries_total{status}            counter    refusals that are retried, by status
//	                                                                class: 429, 5xx, 4xx (408), none (no
//	                                                                connection)
//	breachflow_possible_duplicates_total                 counter    notices sent again after being in doubt
//
// The Temporal SDK reports to Worker.Temporal(): each SDK metric temporal_X becomes
// breachflow_temporal_X (counters with _total, timers as histograms in _seconds), with the
// SDK's tags as labels (namespace, task_queue, workflow_type, activity_type, worker_type,
// poller_type, operation …). Among them:
//
//	breachflow_temporal_workflow_task_execution_latency_seconds          histogram
//	breachflow_temporal_workflow_task_schedule_to_start_latency_seconds  histogram
//	breachflow_temporal_activity_execution_latency_seconds               histogram
//	breachflow_temporal_activity_execution_failed_total                  counter
//	breachflow_temporal_worker_task_slots_available                      gauge
//
// plus the Go runtime's and process's series.
package metrics
