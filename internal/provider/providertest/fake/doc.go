// Package fake is a minimal flag service for tests: flags with an on/off state and a
// value, kept in memory behind a client that spends an API budget, with a loader, a
// planner and a provider like a real vendor's. Its files say vendor: fake. It shows in
// one small package everything a vendor implements (see docs/vendors.md), and it lets
// the core's tests run without a real vendor.
package fake
