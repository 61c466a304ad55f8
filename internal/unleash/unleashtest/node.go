package unleashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// minNodeMajor is the oldest Node.js the harness was seen to work with. unleash-server 8
// declares node >= 22 but runs on 20, the version Debian's and this project's machines have.
const minNodeMajor = 20

// serverDir is the Node package that pins unleash-server, relative to the module root.
const serverDir = "tools/unleash-server"

// findServerDir walks up from the working directory (a package directory when go test runs)
// to the module root and returns the absolute path of tools/unleash-server.
func findServerDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			sd := filepath.Join(dir, serverDir)
			if _, err := os.Stat(filepath.Join(sd, "package-lock.json")); err != nil {
				return "", fmt.Errorf("unleash server package: %w", err)
			}
			return sd, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// findNode returns the paths of node and npm, checking node's version.
func findNode(ctx context.Context) (node, npm string, err error) {
	node, err = exec.LookPath("node")
	if err != nil {
		return "", "", unavailable("Node.js", err, "install Node.js 20 or newer with npm (`apt-get install nodejs npm`)")
	}
	npm, err = exec.LookPath("npm")
	if err != nil {
		return "", "", unavailable("npm", err, "install npm (`apt-get install npm`)")
	}
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return "", "", unavailable("Node.js", fmt.Errorf("node --version: %w", err), "")
	}
	version := strings.TrimSpace(string(out))
	major, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(version, "v"), ".", 2)[0])
	if major < minNodeMajor {
		return "", "", unavailable("Node.js", fmt.Errorf("node %s is older than %d", version, minNodeMajor),
			"install Node.js 20 or newer")
	}
	return node, npm, nil
}

// installState says whether node_modules holds the unleash-server version package-lock.json
// pins, and which version that is.
func installState(dir string) (pinned string, installed bool, err error) {
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return "", false, err
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return "", false, fmt.Errorf("%s/package-lock.json: %w", dir, err)
	}
	pinned = lock.Packages["node_modules/unleash-server"].Version
	if pinned == "" {
		return "", false, fmt.Errorf("%s/package-lock.json pins no unleash-server", dir)
	}
	var pkg struct {
		Version string `json:"version"`
	}
	b, err = os.ReadFile(filepath.Join(dir, "node_modules", "unleash-server", "package.json"))
	if err != nil {
		return pinned, false, nil
	}
	if json.Unmarshal(b, &pkg) != nil {
		return pinned, false, nil
	}
	// npm writes its hidden lockfile last: without it an install was interrupted.
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err != nil {
		return pinned, false, nil
	}
	return pinned, pkg.Version == pinned, nil
}

// ensureInstalled runs `npm ci` in dir unless node_modules already holds the pinned version.
// A file lock keeps test binaries that start together (go test runs packages in parallel)
// from installing over each other; the one that waited finds the work done. It returns how
// long npm ci took, or zero when nothing was installed.
func ensureInstalled(ctx context.Context, npm, dir string) (pinned string, took time.Duration, err error) {
	lock, err := os.OpenFile(filepath.Join(dir, ".npm-ci.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", 0, fmt.Errorf("npm ci lock: %w", err)
	}
	defer lock.Close()
	if err := lockFile(lock); err != nil {
		return "", 0, fmt.Errorf("npm ci lock %s: %w", lock.Name(), err)
	}
	pinned, installed, err := installState(dir)
	if err != nil || installed {
		return pinned, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	// --ignore-scripts: no install script is needed to run the server, and one of them
	// (@scarf/scarf) reports the install over the network.
	cmd := exec.CommandContext(ctx, npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return pinned, 0, unavailable("unleash-server "+pinned,
			fmt.Errorf("npm ci in %s: %w\n%s", dir, err, tail(out.Bytes(), 15)),
			"run `npm ci --prefix "+serverDir+" --ignore-scripts` where the npm registry is reachable")
	}
	if _, ok, _ := installState(dir); !ok {
		return pinned, 0, fmt.Errorf("npm ci in %s succeeded but node_modules does not hold unleash-server %s", dir, pinned)
	}
	return pinned, time.Since(start), nil
}
