package unleashload_test

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flagsync/flagsync/internal/diag"
	unleashload "github.com/flagsync/flagsync/internal/unleash/load"
)

func TestLoadExample(t *testing.T) {
	d, err := unleashload.Load(os.DirFS("../../../examples/unleash"), ".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range d.Flags {
		names = append(names, f.Ref().String())
	}
	want := "default/dark-mode default/express-payment default/internal-tools default/maintenance-banner default/new-checkout"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("flags = %s\nwant %s", got, want)
	}
	if !slices.Equal(d.Settings.Environments, []string{"development", "production"}) || d.SettingsFile != "flagsync.yaml" {
		t.Errorf("settings = %+v from %q", d.Settings, d.SettingsFile)
	}
	nc := d.Flags[4]
	s := nc.Environments["production"].Strategies[1]
	if nc.Source.File != "checkout/new-checkout.yaml" || nc.Source.Line != 2 || s.Title != "gradual" ||
		s.Parameters["rollout"] != "25" || s.Constraints[1].Value != "4.2.0" {
		t.Errorf("new-checkout = %+v", nc)
	}
}

// settings are the flagsync.yaml of the one-file fixtures.
const settings = `vendor: unleash
environments: [development, production]
segments: [beta-testers, internal]
`

// TestInvalid loads each fixture of testdata/invalid and compares its diagnostics with the
// fixture's "# want: " lines: line:col: field: message for the fixture's own file, the
// whole diagnostic for another file. A file fixture is loaded beside settings; a folder
// fixture as it is (its wants are in its first file).
func TestInvalid(t *testing.T) {
	entries, err := os.ReadDir("testdata/invalid")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Run(strings.TrimSuffix(e.Name(), ".yaml"), func(t *testing.T) {
			fsys := fstest.MapFS{}
			var wantFrom string
			if e.IsDir() {
				sub := os.DirFS("testdata/invalid/" + e.Name())
				err := fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return err
					}
					data, err := fs.ReadFile(sub, p)
					fsys["flags/"+p] = &fstest.MapFile{Data: data}
					if wantFrom == "" && p != "flagsync.yaml" {
						wantFrom = "flags/" + p
					}
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			} else {
				data, err := os.ReadFile("testdata/invalid/" + e.Name())
				if err != nil {
					t.Fatal(err)
				}
				fsys["flags/flagsync.yaml"] = &fstest.MapFile{Data: []byte(settings)}
				fsys["flags/"+e.Name()] = &fstest.MapFile{Data: data}
				wantFrom = "flags/" + e.Name()
			}
			var want []string
			sc := bufio.NewScanner(bytes.NewReader(fsys[wantFrom].Data))
			for sc.Scan() {
				if w, ok := strings.CutPrefix(sc.Text(), "# want: "); ok {
					want = append(want, w)
				}
			}
			if len(want) == 0 && !*update {
				t.Fatalf("%s has no want lines", wantFrom)
			}
			_, err := unleashload.Load(fsys, "flags")
			var invalid *diag.InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("Load = %v, want an *InvalidError", err)
			}
			var got []string
			for _, d := range invalid.Diagnostics {
				s := d.String()
				if d.File == wantFrom {
					s = strings.TrimPrefix(s, d.File+":")
				}
				got = append(got, s)
			}
			if *update {
				writeWants(t, "testdata/invalid/"+e.Name(), wantFrom, got)
				return
			}
			if !slices.Equal(got, want) {
				t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

var update = flag.Bool("update", false, "rewrite the fixtures' want lines with the diagnostics found")

// writeWants replaces the want lines at the top of the fixture that holds them.
func writeWants(t *testing.T, fixture, wantFrom string, got []string) {
	t.Helper()
	file := fixture
	if st, err := os.Stat(fixture); err == nil && st.IsDir() {
		file = fixture + "/" + strings.TrimPrefix(wantFrom, "flags/")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var body []string
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if !strings.HasPrefix(line, "# want: ") {
			body = append(body, line)
		}
	}
	var head strings.Builder
	for _, g := range got {
		head.WriteString("# want: " + g + "\n")
	}
	if err := os.WriteFile(file, []byte(head.String()+strings.Join(body, "")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestClaim(t *testing.T) {
	fsys := fstest.MapFS{
		"flagsync.yaml":        {Data: []byte("siteCode: pzllysfw2f\n")},
		"kameleoon.yaml":       {Data: []byte("featureKey: k\nname: K\n")},
		"unleash/beta.yaml":    {Data: []byte("vendor: unleash\nname: beta\n")},
		"unleash/broken.yaml":  {Data: []byte("name: [broken\nvendor: unleash\n")},
		"split.yaml":           {Data: []byte("vendor: split\nname: s\n")},
		".hidden/unleash.yaml": {Data: []byte("vendor: unleash\nname: hidden\n")},
	}
	r, err := unleashload.Survey(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	if r.Whole || !r.Settings || r.Others != 2 || !slices.Equal(r.Files, []string{"unleash/beta.yaml", "unleash/broken.yaml"}) {
		t.Errorf("survey = %+v", r)
	}
	fsys["flagsync.yaml"] = &fstest.MapFile{Data: []byte("vendor: unleash\n")}
	files, whole, err := unleashload.Claim(fsys, ".")
	if err != nil || !whole || len(files) != 4 {
		t.Errorf("claim = %v %t %v", files, whole, err)
	}
	// In a repository that is not Unleash's, a flag file's project defaults to default.
	delete(fsys, "unleash/broken.yaml")
	fsys["flagsync.yaml"] = &fstest.MapFile{Data: []byte("siteCode: pzllysfw2f\n")}
	d, err := unleashload.Load(fsys, ".")
	if err != nil || len(d.Flags) != 1 || d.Flags[0].Ref().String() != "default/beta" || d.SettingsFile != "" {
		t.Errorf("load = %+v, %v", d, err)
	}
}
