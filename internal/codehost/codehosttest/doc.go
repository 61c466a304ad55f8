// Package codehosttest provides fake GitHub and GitLab REST APIs on httptest for tests:
// they keep comments, check runs and commit statuses in memory, enforce the hosts'
// permission rules for the kind of token used, and record every call.
package codehosttest
