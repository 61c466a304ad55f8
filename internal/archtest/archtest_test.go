package archtest

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/flagsync/flagsync/internal/provider/builtin"
)

const module = "github.com/flagsync/flagsync"

// vendorRoots are the vendor folders: everything below one is that vendor's. A new
// vendor adds its folder here (TestProvidersLiveInVendorFolders checks that every
// registered provider has one).
var vendorRoots = []string{"internal/kameleoon", "internal/split", "internal/unleash"}

// registration is the one package that names the vendors: it registers their providers,
// and only the commands import it. It is neither core nor a vendor.
const registration = "internal/provider/builtin"

// coreTestsUsingVendors are the core packages whose tests may import a vendor's
// packages: integration tests that run the core against a real vendor's sandbox. Their
// production code imports no vendor like every core package. The others test with the
// fake vendor of internal/provider/providertest/fake, which passes the same contract as
// the real vendors; the list only shrinks.
var coreTestsUsingVendors = map[string]string{
	"internal/daemon": "runs the daemon against Kameleoon's and Split's sandboxes over real Git",
	"internal/faults": "fault injection across the whole system",
}

// pkg is what go list says of one package.
type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// trackSources stats every Go file of the module so that go test's cache, which knows
// the files a test opens but not what go list reads, reruns these tests when one changes.
func trackSources(t *testing.T) {
	t.Helper()
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".go") || d.Name() == "go.mod") {
			_, err = os.Stat(p)
		}
		return err
	})
	if err != nil {
		t.Fatalf("list the module's files: %v", err)
	}
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	trackSources(t)
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list: decode: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages: not the module", len(pkgs))
	}
	return pkgs
}

// local returns a module package's path relative to the module, or "" for others.
func local(path string) string {
	if rel, ok := strings.CutPrefix(path, module+"/"); ok {
		return rel
	}
	return ""
}

// vendorOf returns the vendor folder a module package belongs to, or "" for the core
// (and for cmd).
func vendorOf(rel string) string {
	for _, root := range vendorRoots {
		if rel == root || strings.HasPrefix(rel, root+"/") {
			return root
		}
	}
	return ""
}

func isCore(rel string) bool {
	return strings.HasPrefix(rel, "internal/") && vendorOf(rel) == "" && rel != registration
}

// TestVendorsImportTheCoreOnly: no package of one vendor imports another vendor's, in
// its code or its tests.
func TestVendorsImportTheCoreOnly(t *testing.T) {
	for _, p := range listPackages(t) {
		from := vendorOf(local(p.ImportPath))
		if from == "" {
			continue
		}
		for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
			if to := vendorOf(local(imp)); to != "" && to != from {
				t.Errorf("%s imports %s: a vendor imports the core, never another vendor", local(p.ImportPath), local(imp))
			}
		}
	}
}

// TestCoreImportsNoVendor: no core package imports a vendor's package; only the tests of
// coreTestsUsingVendors may, and each of them still does.
func TestCoreImportsNoVendor(t *testing.T) {
	testUses := map[string]bool{}
	for _, p := range listPackages(t) {
		rel := local(p.ImportPath)
		if !isCore(rel) {
			continue
		}
		for _, imp := range p.Imports {
			if vendorOf(local(imp)) != "" {
				t.Errorf("%s imports %s: the core never imports a vendor", rel, local(imp))
			}
		}
		for _, imp := range slices.Concat(p.TestImports, p.XTestImports) {
			if vendorOf(local(imp)) == "" {
				continue
			}
			testUses[rel] = true
			if _, ok := coreTestsUsingVendors[rel]; !ok {
				t.Errorf("the tests of %s import %s: the core's tests use a fake vendor, or the package joins coreTestsUsingVendors with a reason", rel, local(imp))
			}
		}
	}
	for rel := range coreTestsUsingVendors {
		if !testUses[rel] {
			t.Errorf("the tests of %s import no vendor any more: remove it from coreTestsUsingVendors", rel)
		}
	}
}

// TestBinaryLinksNoTestHelpers: the flagsync binary links neither testing nor
// net/http/httptest (test helpers live in their own ...test packages).
func TestBinaryLinksNoTestHelpers(t *testing.T) {
	trackSources(t)
	out, err := exec.Command("go", "list", "-deps", module+"/cmd/flagsync").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	var bad []string
	for _, d := range deps {
		if d == "testing" || d == "net/http/httptest" {
			bad = append(bad, d)
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Errorf("cmd/flagsync links %s", strings.Join(bad, " and "))
	}
	if !slices.Contains(deps, module+"/internal/plan") {
		t.Fatalf("go list -deps did not list the binary's packages:\n%s", out)
	}
}

// TestCommandsNameNoVendor: the flagsync command imports no vendor package (its tests
// may): it reaches every service through the registry, and only commands import the
// registration.
func TestCommandsNameNoVendor(t *testing.T) {
	registered := false
	for _, p := range listPackages(t) {
		rel := local(p.ImportPath)
		for _, imp := range p.Imports {
			if rel == "cmd/flagsync" && vendorOf(local(imp)) != "" {
				t.Errorf("cmd/flagsync imports %s: commands reach the vendors through internal/provider", local(imp))
			}
			if local(imp) == registration {
				registered = registered || rel == "cmd/flagsync"
				if !strings.HasPrefix(rel, "cmd/") {
					t.Errorf("%s imports %s: only commands register the built-in vendors", rel, registration)
				}
			}
		}
	}
	if !registered {
		t.Errorf("cmd/flagsync does not import %s", registration)
	}
}

// TestProvidersLiveInVendorFolders: every built-in provider is defined in its own vendor
// folder, named as the provider is.
func TestProvidersLiveInVendorFolders(t *testing.T) {
	for _, p := range builtin.Registry().All() {
		rel := local(reflect.TypeOf(p).PkgPath())
		if want := "internal/" + p.Name(); rel != want || vendorOf(rel) != want {
			t.Errorf("provider %s is defined in %s, want %s (a folder of vendorRoots)", p.Name(), rel, want)
		}
	}
}

// maxCommandFuncLines bounds a function of the flagsync command (issue 14: the commands
// parse flags into options and call into internal packages, so none needs a long one).
const maxCommandFuncLines = 80

// TestCommandFunctionsAreShort: every function of cmd/flagsync outside its tests is
// shorter than maxCommandFuncLines lines, counted from func to the closing brace.
func TestCommandFunctionsAreShort(t *testing.T) {
	dir := filepath.Join("..", "..", "cmd", "flagsync")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			if n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1; n >= maxCommandFuncLines {
				t.Errorf("%s: %s is %d lines long; keep the commands' functions under %d lines (move the work into an internal package or a helper)",
					fset.Position(fd.Pos()), fd.Name.Name, n, maxCommandFuncLines)
			}
		}
	}
}
