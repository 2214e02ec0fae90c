// Package mixin holds the platform's Prometheus alert rules and its
// Grafana dashboard, in the habits of the big Prometheus monitoring
// mixins: alerts with a severity label, a summary and a description that
// says what to do; dashboards with a data source variable, one row per
// concern (ingest, scale-out, reconciliation and statements, the fleet,
// the validators) and a description on every panel.
//
//	alerts.yaml     rule file for Prometheus (rule_files: [alerts.yaml])
//	tests.yaml, tests_statements.yaml   promtool unit tests of the alerts
//	dashboard.json  Grafana dashboard (import it, choose the data source)
//
// The test run checks the rules with promtool, runs their unit tests, and
// checks that every metric the rules and the dashboard use is one the
// clearing and validator processes export, so neither can go stale.
package mixin

import _ "embed"

// Alerts is alerts.yaml; Dashboard is dashboard.json.
var (
	//go:embed alerts.yaml
	Alerts []byte
	//go:embed dashboard.json
	Dashboard []byte
)
