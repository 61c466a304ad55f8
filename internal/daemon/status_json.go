package daemon

import (
	"encoding/json"
	"time"
)

// StatusTimeLayout is how /status writes every time: RFC 3339 in UTC with milliseconds,
// always three digits ("2025-01-02T03:04:05.060Z"), so that times sort and compare as
// strings and every one has the same precision.
const StatusTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// statusTime is a time as /status writes it.
type statusTime time.Time

// MarshalJSON writes t in StatusTimeLayout.
func (t statusTime) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Time(t).UTC().Format(StatusTimeLayout))
}

func stamp(t *time.Time) *statusTime {
	if t == nil {
		return nil
	}
	s := statusTime(*t)
	return &s
}

// The MarshalJSON methods below write each type's times in StatusTimeLayout; the other
// fields are written as their tags say. A new time field of /status gets a line here.

// MarshalJSON writes s with its times in StatusTimeLayout.
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status
	return json.Marshal(struct {
		plain
		NextRun        *statusTime `json:"nextRun,omitempty"`
		NextDriftCheck *statusTime `json:"nextDriftCheck,omitempty"`
		LastFullRead   *statusTime `json:"lastFullRead,omitempty"`
	}{plain(s), stamp(s.NextRun), stamp(s.NextDriftCheck), stamp(s.LastFullRead)})
}

// MarshalJSON writes s with its time in StatusTimeLayout.
func (s Suspension) MarshalJSON() ([]byte, error) {
	type plain Suspension
	return json.Marshal(struct {
		plain
		Since statusTime `json:"since"`
	}{plain(s), statusTime(s.Since)})
}

// MarshalJSON writes r with its time in StatusTimeLayout.
func (r Running) MarshalJSON() ([]byte, error) {
	type plain Running
	return json.Marshal(struct {
		plain
		Started statusTime `json:"started"`
	}{plain(r), statusTime(r.Started)})
}

// MarshalJSON writes c with its time in StatusTimeLayout.
func (c Check) MarshalJSON() ([]byte, error) {
	type plain Check
	return json.Marshal(struct {
		plain
		At statusTime `json:"at"`
	}{plain(c), statusTime(c.At)})
}

// MarshalJSON writes v with its time in StatusTimeLayout.
func (v ValidationFailure) MarshalJSON() ([]byte, error) {
	type plain ValidationFailure
	return json.Marshal(struct {
		plain
		At statusTime `json:"at"`
	}{plain(v), statusTime(v.At)})
}

// MarshalJSON writes r with its time in StatusTimeLayout.
func (r Record) MarshalJSON() ([]byte, error) {
	type plain Record
	return json.Marshal(struct {
		plain
		Started statusTime `json:"started"`
	}{plain(r), statusTime(r.Started)})
}
