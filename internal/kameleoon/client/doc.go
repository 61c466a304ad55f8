// Package kclient is the client of Kameleoon's Automation API: OAuth2 token, list, get,
// create and merge-patch calls within a request budget, built on the core's api.Caller,
// and the conversion between the API's wire shapes and Kameleoon's flag model.
package kclient
