// Package kameleoon is Kameleoon's side of the sync pipeline: the reconcile.Vendor that
// loads Kameleoon flag files, reads live flags with one list per site (or one get per
// flag in a partial run), plans and confirms through the Automation API client.
package kameleoon
