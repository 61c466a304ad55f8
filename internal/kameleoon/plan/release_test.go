package kplan

import (
	"testing"

	kmodel "github.com/flagsync/flagsync/internal/kameleoon/model"
)

func TestReleaseEqual(t *testing.T) {
	rel := func(from, to, zone string) *kmodel.Release {
		return &kmodel.Release{ReleaseFrom: from, ReleaseTo: to, TimeZone: zone}
	}
	for _, tt := range []struct {
		name string
		a, b *kmodel.Release
		want bool
	}{
		{"both absent", nil, nil, true},
		{"one absent", rel("2025-12-11T11:58:01", "", "Europe/Paris"), nil, false},
		{"local in Paris is UTC minus one in winter", rel("2025-12-11T11:58:01", "", "Europe/Paris"), rel("2025-12-11T10:58:01Z", "", "Europe/Paris"), true},
		{"and minus two in summer", rel("2026-07-01T09:00:00", "", "Europe/Paris"), rel("2026-07-01T07:00:00Z", "", "Europe/Paris"), true},
		{"an offset names the instant", rel("2025-12-11T11:58:01+01:00", "", "Europe/Paris"), rel("2025-12-11T10:58:01Z", "", "Europe/Paris"), true},
		{"fractional seconds", rel("2025-12-11T10:58:01.000Z", "", "UTC"), rel("2025-12-11T10:58:01", "", "UTC"), true},
		{"no zone is UTC", rel("2025-12-11T10:58:01", "", ""), rel("2025-12-11T10:58:01Z", "", ""), true},
		{"an hour apart", rel("2025-12-11T12:58:01", "", "Europe/Paris"), rel("2025-12-11T10:58:01Z", "", "Europe/Paris"), false},
		{"releaseTo compared too", rel("", "2025-12-13T11:58:01", "Europe/Paris"), rel("", "2025-12-13T11:58:01Z", "Europe/Paris"), false},
		{"another time zone is a change", rel("2025-12-11T11:58:01", "", "Europe/Berlin"), rel("2025-12-11T11:58:01", "", "Europe/Paris"), false},
		{"one side unparsable compares as a string", rel("11/12/2025 11:58", "", "Europe/Paris"), rel("2025-12-11T10:58:01Z", "", "Europe/Paris"), false},
		{"both unparsable and equal", rel("soon", "later", "Europe/Paris"), rel("soon", "later", "Europe/Paris"), true},
		{"unknown zone compares local times as strings", rel("2025-12-11T11:58:01", "", "Mars/Olympus"), rel("2025-12-11T10:58:01Z", "", "Mars/Olympus"), false},
		{"Local is not a window's zone", rel("2025-12-11T11:58:01", "", "Local"), rel("2025-12-11T11:58:01Z", "", "Local"), false},
		{"absent bound against a set one", rel("", "", "UTC"), rel("2025-12-11T10:58:01Z", "", "UTC"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := releaseEqual(tt.a, tt.b); got != tt.want {
				t.Errorf("releaseEqual = %v, want %v", got, tt.want)
			}
			if got := releaseEqual(tt.b, tt.a); got != tt.want {
				t.Errorf("releaseEqual (swapped) = %v, want %v", got, tt.want)
			}
		})
	}
}
