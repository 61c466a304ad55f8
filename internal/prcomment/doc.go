// Package prcomment keeps one living plan comment on a pull request (GitHub) or merge
// request (GitLab), found by a hidden marker and updated in place on every push.
package prcomment
