// Package leader elects the one replica of the daemon that may write to the flag
// service, through a Kubernetes Lease or a lock file on a shared volume, and tells the
// others they are followers.
package leader
