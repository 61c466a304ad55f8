package daemon

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

// benchFlags is the size of the benchmark's repository.
const benchFlags = 5000

// benchPushes is how many one-flag pushes one benchmark iteration times.
const benchPushes = 20

// BenchmarkWebhookToFirstWrite times, for a one-flag change in a repository of 5,000
// flags, the time from sending the push's signed webhook to the sandbox receiving the
// first write, and counts the API calls the change took. The daemon runs on a real Git
// smart-HTTP server and a sandbox without added latency, all on 127.0.0.1. Run it with
//
//	go test -run '^$' -bench WebhookToFirstWrite -benchtime 1x ./internal/daemon
//
// It reports p50-ms and p95-ms over the pushes, and calls/change (the most any one took).
// The flag files are in 50 folders of 100 ("folders"), or all in one folder ("flat"),
// which only the startup's full loads feel.
func BenchmarkWebhookToFirstWrite(b *testing.B) {
	for _, layout := range []struct {
		name string
		file func(i int) string
	}{
		{"folders", func(i int) string { return fmt.Sprintf("flags/g%02d/%04d.yaml", i%50, i) }},
		{"flat", func(i int) string { return fmt.Sprintf("flags/f/%04d.yaml", i) }},
	} {
		b.Run(layout.name, func(b *testing.B) { benchWebhookToFirstWrite(b, layout.file) })
	}
}

func benchWebhookToFirstWrite(b *testing.B, benchFile func(int) string) {
	files := map[string]string{"flags/flagsync.yaml": settingsYAML}
	for i := range benchFlags {
		files[benchFile(i)] = flagYAML(benchKey(i), "Flag "+benchKey(i), false)
	}
	h := newHarness(b, harnessOptions{files: files, quiet: true, limit: 5 * time.Minute, config: func(c *Config) {
		// The pipeline alone: no debounce, and no rate limit on the one sender of every push.
		c.Concurrency, c.WebhookDebounce, c.WebhookRateLimit = 16, -1, 1000
	}})
	start := h.waitStartup()
	if start.Summary.Applied != benchFlags {
		b.Fatalf("startup sync applied %d changes, want %d creates", start.Summary.Applied, benchFlags)
	}
	firstWrite := make(chan time.Time, 64)
	h.api.setHook(func(r *http.Request) {
		if isWrite(r) {
			select {
			case firstWrite <- time.Now():
			default:
			}
		}
	})

	var latencies []time.Duration
	var maxCalls int64
	b.ResetTimer()
	for n := range b.N {
		for i := range benchPushes {
			flagNo := (n*benchPushes + i*241) % benchFlags // spread over the repository
			on := n%2 == 0
			before := h.repo.Head(b)
			after := h.repo.Commit(b, map[string]string{benchFile(flagNo): flagYAML(benchKey(flagNo), "Flag "+benchKey(flagNo), on)}, "toggle "+benchKey(flagNo))
			dl := pushDelivery(b, "github", testWebhookSecret, before, after, []string{benchFile(flagNo)}, fmt.Sprintf("bench-%d-%d", n, i))
			for len(firstWrite) > 0 {
				<-firstWrite
			}
			next := h.cycles() + 1
			sent := time.Now()
			if code, body := h.post(dl.path, dl.header, dl.body); code != http.StatusAccepted {
				b.Fatalf("webhook: %d %s", code, body)
			}
			var wrote time.Time
			select {
			case wrote = <-firstWrite:
			case <-time.After(h.limit):
				b.Fatalf("no write within %s of push %d", h.limit, i)
			}
			latencies = append(latencies, wrote.Sub(sent))
			rec := h.waitCycle(next)
			if rec.Mode != ModePartial || rec.Result != ResultSuccess || rec.Summary.Applied != 1 {
				b.Fatalf("push %d: sync %+v, want a successful partial sync applying 1 change", i, rec)
			}
			maxCalls = max(maxCalls, rec.APICalls)
		}
	}
	b.StopTimer()
	slices.Sort(latencies)
	p50 := latencies[len(latencies)/2]
	p95 := latencies[(len(latencies)*95+99)/100-1]
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p95.Microseconds())/1000, "p95-ms")
	b.ReportMetric(float64(maxCalls), "calls/change")
	b.Logf("%d flags, %d pushes: webhook to first write p50 %s, p95 %s, max %s; at most %d API calls per change; startup full sync %d ms",
		benchFlags, len(latencies), p50.Round(time.Millisecond/10), p95.Round(time.Millisecond/10), latencies[len(latencies)-1].Round(time.Millisecond/10), maxCalls, start.DurationMS)
}

func benchKey(i int) string { return fmt.Sprintf("flag_%04d", i) }
