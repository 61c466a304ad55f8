package plan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flagsync/flagsync/internal/api"
)

func pricedPlan(price *Price, changes int) Plan {
	p := Plan{Revision: "abc1234", Service: "Kameleoon", Changes: []Change{}, Unmanaged: []Address{}, Price: price}
	for i := range changes {
		p.Changes = append(p.Changes, Change{Order: i + 1, Action: ActionUpdate,
			Address: Address{Service: "Kameleoon", Scope: "pzllysfw2f", Key: "f", Environment: "production"},
			Request: api.Request{Method: "PATCH", Path: "/feature-flags/pzllysfw2f/f/production"}, Reason: "changed"})
	}
	return p
}

func kameleoonPrice(writes, left int, fits bool, waves int, seconds float64) ServicePrice {
	return ServicePrice{Service: "Kameleoon", Token: 1, Reads: 10, Writes: writes, Calls: 11 + writes,
		Limits: []Limit{{50, "10s"}, {1000, "1h"}}, Window: &Window{Period: "1h", Limit: 1000, Left: left, Apply: writes},
		Waves: waves, Seconds: seconds, Fits: fits}
}

// TestPriceInEveryRendering: a priced plan states its API calls, its budget and its time
// in the text and Markdown plans, before the summary line, and as the price object in
// the JSON plan.
func TestPriceInEveryRendering(t *testing.T) {
	dry := kameleoonPrice(10, 989, true, 1, 0)
	dry.Calls = 11
	unleash := ServicePrice{Service: "Unleash", Rule: "default price: one call per change", Reads: 3, Writes: 2, Calls: 5, Limits: []Limit{}, Waves: 1, Fits: true}
	tests := []struct {
		name  string
		price *Price
		want  []string // lines, in order, of the text plan
	}{
		{"a sync that fits", &Price{Calls: 21, Services: []ServicePrice{kameleoonPrice(10, 989, true, 1, 0)}}, []string{
			"API calls (Kameleoon): 21 (1 token request, 10 reads; then 10 writes, 0 reads to confirm).",
			"  Budget: applying uses 10 of the 989 calls left in this 1h window; about 0 s at Kameleoon's limits (50 per 10s, 1000 per 1h).",
		}},
		{"a dry run", &Price{DryRun: true, Calls: 11, Services: []ServicePrice{dry}}, []string{
			"API calls (Kameleoon): 11 made to plan (1 token request, 10 reads); applying adds 10 (10 writes, 0 reads to confirm).",
			"  Budget: applying would use 10 of the 989 calls left in this 1h window; about 0 s at Kameleoon's limits (50 per 10s, 1000 per 1h).",
		}},
		{"a sync in waves", &Price{Calls: 1211, Services: []ServicePrice{kameleoonPrice(1200, 989, false, 2, 3630)}}, []string{
			"API calls (Kameleoon): 1211 (1 token request, 10 reads; then 1200 writes, 0 reads to confirm).",
			"  Budget: applying needs 1200 calls, more than the 989 left in this 1h window: it goes in 2 waves, each waiting for the window to make room; about 1 h 0 min at Kameleoon's limits (50 per 10s, 1000 per 1h).",
		}},
		{"nothing to apply", &Price{Calls: 11, Services: []ServicePrice{kameleoonPrice(0, 989, true, 0, 0)}}, []string{
			"API calls (Kameleoon): 11 (1 token request, 10 reads); nothing to apply.",
		}},
		{"a service without a price rule", &Price{Calls: 5, Services: []ServicePrice{unleash}}, []string{
			"API calls (Unleash, default price: one call per change): 5 (0 token requests, 3 reads; then 2 writes, 0 reads to confirm).",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pricedPlan(tt.price, tt.price.Services[0].Writes)
			var txt, md, js bytes.Buffer
			if err := RenderText(&txt, p, TextOptions{}); err != nil {
				t.Fatal(err)
			}
			want := strings.Join(tt.want, "\n") + "\n" + p.SummaryLine() + "\n"
			if !strings.HasSuffix(txt.String(), want) {
				t.Errorf("text plan ends:\n%s\nwant it to end:\n%s", tail(txt.String(), 4), want)
			}
			if err := RenderMarkdown(&md, p, MarkdownOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, l := range tt.want {
				if !strings.Contains(md.String(), mdEscape(strings.TrimSpace(l))) {
					t.Errorf("Markdown plan lacks %q:\n%s", strings.TrimSpace(l), md.String())
				}
			}
			if err := RenderJSON(&js, p); err != nil {
				t.Fatal(err)
			}
			var got struct {
				Price *Price `json:"price"`
			}
			if err := json.Unmarshal(js.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.Price == nil || got.Price.Calls != tt.price.Calls || len(got.Price.Services) != 1 || got.Price.Services[0].Writes != tt.price.Services[0].Writes {
				t.Errorf("JSON price %+v, want %+v", got.Price, tt.price)
			}
		})
	}
}

// TestUnpricedPlanHasNoPrice: a plan no sync priced renders as before: no price line,
// no price key.
func TestUnpricedPlanHasNoPrice(t *testing.T) {
	p := pricedPlan(nil, 1)
	var txt, js bytes.Buffer
	if err := RenderText(&txt, p, TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := RenderJSON(&js, p); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(txt.String(), "API calls") || strings.Contains(js.String(), `"price"`) {
		t.Errorf("an unpriced plan shows a price:\n%s\n%s", txt.String(), js.String())
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0 s", 1400 * time.Millisecond: "1 s", 70 * time.Second: "1 min 10 s", 3725 * time.Second: "1 h 2 min"} {
		if got := HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
