// Package unleashclient calls Unleash's admin API through the core's api.Caller: the
// admin token as the Authorization header, the live state of a project read with few
// calls, planned requests sent exactly, Unleash's error bodies parsed and its rate limits
// honoured.
package unleashclient
