// Package notify tells people when a sync starts failing, finds drift, refuses changes
// or recovers, through signed webhooks (Standard Webhooks) and Slack incoming
// webhooks, once per change of state rather than on every sync.
package notify
