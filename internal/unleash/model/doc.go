// Package unleashmodel is the Unleash flag as flagsync keeps it in Git and reads it from
// Unleash's admin API: a feature flag of one project with its tags and, per environment,
// whether it is enabled and its activation strategies (constraints, segments by name,
// parameters, strategy variants), and the rules the admin API does not check itself.
package unleashmodel
