package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHandlerExposesFlagsyncMetrics(t *testing.T) {
	m := New()
	m.ObserveSync("success", 1500*time.Millisecond)
	m.SetRevision("abc123")
	m.SetRevision("def456")
	m.APICalls.WithLabelValues("/feature-flags", "GET", "200").Inc()

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	text := string(body)
	for _, want := range []string{
		`flagsync_syncs_total{result="success"} 1`,
		`flagsync_applied_revision_info{revision="def456"} 1`,
		`flagsync_api_calls_total{code="200",endpoint="/feature-flags",method="GET"} 1`,
		`flagsync_sync_duration_seconds_count{result="success"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics output lacks %q", want)
		}
	}
	if strings.Contains(text, `revision="abc123"`) {
		t.Error("old revision still exported after SetRevision")
	}
}
