// Package prcomment reports a plan on its pull request (GitHub) or merge request
// (GitLab): one living comment, found by its hidden marker among the comments the token's
// own account wrote and updated in place, and a check run or commit status on the
// request's head commit.
package prcomment
