// Package codehost talks to the code hosts flagsync reports a plan to, GitHub and
// GitLab, through the few REST calls that needs: who the token is, the comments of a
// pull or merge request, and the status of a commit (check runs, commit statuses).
package codehost
