// Package api is the client of Kameleoon's Automation API: OAuth2 token, list, get,
// create and merge-patch calls within a request budget, and the conversion between the
// API's wire shapes and the flag model.
package api
