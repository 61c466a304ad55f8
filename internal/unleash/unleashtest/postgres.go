package unleashtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Why a throwaway cluster rather than Debian's "15 main": it needs only PostgreSQL's binaries,
// which is all that `apt-get install postgresql` reliably leaves on a fresh machine (the
// package's attempt to start "main" depends on an init system a container may not have); it
// does not care which major version is installed, nor what another run did to "main" or which
// port it holds; it is reachable by its Unix socket only, with trust authentication, so there
// are no passwords and no TCP port to collide on; and it goes away with its directory, so a run
// leaves no users or databases behind. It costs about a second of initdb per test binary.

// pgSocketPort is the port in the socket's file name (.s.PGSQL.<port>): the cluster listens on
// no TCP port, and its directory is its own, so the default never collides.
const pgSocketPort = 5432

// pgSuperuser is the superuser initdb creates; trust authentication lets any local user in.
const pgSuperuser = "postgres"

// account is the system user a child process runs as.
type account struct {
	name     string
	uid, gid uint32
}

// cluster is a PostgreSQL cluster in a temporary directory, private to this test process.
type cluster struct {
	binDir  string   // where initdb, postgres, pg_isready, createdb and psql are
	root    string   // temporary directory: data/, the socket, postgres.log, owner.pid
	runAs   *account // who initdb and postgres run as; nil for the current user
	proc    *process
	logPath string
}

// sockDir is the directory of the cluster's Unix socket, the "host" for clients.
func (c *cluster) sockDir() string { return c.root }

// rootPrefix names this package's temporary directories, so that sweepOrphans can find those
// of runs that died without cleaning up.
const rootPrefix = "flagsync-unleash-"

// findPostgresBin returns the directory holding PostgreSQL's server binaries: $FLAGSYNC_PG_BINDIR,
// else the newest /usr/lib/postgresql/<major>/bin (Debian, Ubuntu), else initdb's directory on PATH.
func findPostgresBin() (string, error) {
	if dir := os.Getenv("FLAGSYNC_PG_BINDIR"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err != nil {
			return "", unavailable("PostgreSQL", fmt.Errorf("FLAGSYNC_PG_BINDIR=%s: %w", dir, err), "")
		}
		return dir, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return pgMajor(matches[i]) > pgMajor(matches[j]) })
	for _, m := range matches {
		if _, err := os.Stat(filepath.Join(filepath.Dir(m), "postgres")); err == nil {
			return filepath.Dir(m), nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return filepath.Dir(p), nil
	}
	return "", unavailable("PostgreSQL", errors.New("no initdb in /usr/lib/postgresql/*/bin or on PATH"),
		"install it with `apt-get install postgresql` (the tests start their own cluster; nothing needs to run)")
}

// pgMajor reads the major version out of /usr/lib/postgresql/<major>/bin/initdb.
func pgMajor(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// clusterAccount is who the cluster runs as: the current user, or "postgres" when that is root
// (PostgreSQL refuses to run as root).
func clusterAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, unavailable("PostgreSQL", fmt.Errorf("running as root and %w", err),
			"PostgreSQL cannot run as root; `apt-get install postgresql` creates the postgres user")
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user postgres: %w", err)
	}
	return &account{name: u.Username, uid: uint32(uid), gid: uint32(gid)}, nil
}

// tempBase is where cluster directories go: os.TempDir, unless its path is so long that the
// socket's path would pass the 107 bytes a Unix socket address holds.
func tempBase() string {
	base := os.TempDir()
	if len(base)+len("/"+rootPrefix+"0123456789/.s.PGSQL.5432") > 100 {
		return "/tmp"
	}
	return base
}

// startCluster creates a cluster in a new temporary directory and starts it. logf reports
// progress.
func startCluster(ctx context.Context, logf func(string, ...any)) (_ *cluster, err error) {
	binDir, err := findPostgresBin()
	if err != nil {
		return nil, err
	}
	runAs, err := clusterAccount()
	if err != nil {
		return nil, err
	}
	sweepOrphans(tempBase(), logf)
	root, err := os.MkdirTemp(tempBase(), rootPrefix)
	if err != nil {
		return nil, fmt.Errorf("postgres cluster directory: %w", err)
	}
	c := &cluster{binDir: binDir, root: root, runAs: runAs, logPath: filepath.Join(root, "postgres.log")}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	if err := os.WriteFile(filepath.Join(root, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("postgres cluster directory: %w", err)
	}
	if runAs != nil {
		if err := os.Chown(root, int(runAs.uid), int(runAs.gid)); err != nil {
			return nil, fmt.Errorf("postgres cluster directory: %w", err)
		}
	}

	dataDir := filepath.Join(root, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(binDir, "initdb"),
		"--pgdata="+dataDir, "--username="+pgSuperuser, "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.Dir = root
	initdb.SysProcAttr = groupAttr(runAs)
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb %s: %w\n%s", dataDir, err, tail(out, 20))
	}

	logFile, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("postgres log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor
	// No TCP listener (listen_addresses empty): clients come through the socket in root. The
	// durability settings are off because the data is thrown away at the end.
	postgres := exec.Command(filepath.Join(binDir, "postgres"),
		"-D", dataDir, "-k", c.sockDir(), "-p", strconv.Itoa(pgSocketPort),
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=100")
	postgres.Dir = root
	postgres.Stdout = logFile
	postgres.Stderr = logFile
	postgres.SysProcAttr = groupAttr(runAs)
	if c.proc, err = startProcess(postgres); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := c.waitReady(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	return c, nil
}

// waitReady polls pg_isready until the cluster accepts connections, the postmaster exits, or
// timeout passes.
func (c *cluster) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		check := exec.CommandContext(ctx, filepath.Join(c.binDir, "pg_isready"),
			"-q", "-h", c.sockDir(), "-p", strconv.Itoa(pgSocketPort))
		if check.Run() == nil {
			return nil
		}
		if c.proc.exited() {
			return fmt.Errorf("postgres exited while starting (%v):\n%s", c.proc.err, tailFile(c.logPath, 20))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("postgres not ready after %s:\n%s", timeout, tailFile(c.logPath, 20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// psql runs one SQL command in database db as the superuser and returns its output.
func (c *cluster) psql(ctx context.Context, db, sql string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, "psql"),
		"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", c.sockDir(), "-p", strconv.Itoa(pgSocketPort), "-U", pgSuperuser, "-d", db, "-c", sql)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("psql %s: %w: %s", db, err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// createDatabase creates an empty database.
func (c *cluster) createDatabase(ctx context.Context, name string) error {
	_, err := c.psql(ctx, "postgres", fmt.Sprintf(`CREATE DATABASE %q`, name))
	return err
}

// dropDatabase drops a database, ending its sessions first.
func (c *cluster) dropDatabase(ctx context.Context, name string) error {
	_, err := c.psql(ctx, "postgres", fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, name))
	return err
}

// stop shuts the cluster down (fast shutdown, then SIGKILL) and removes its directory.
func (c *cluster) stop() error {
	var errs []error
	if c.proc != nil {
		// SIGINT is PostgreSQL's fast shutdown: it ends sessions instead of waiting for them.
		if err := c.proc.end(sigInt, 10*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("stop postgres: %w", err))
		}
	}
	if err := os.RemoveAll(c.root); err != nil {
		errs = append(errs, fmt.Errorf("remove postgres cluster: %w", err))
	}
	return errors.Join(errs...)
}

// sweepOrphans removes cluster directories left by test processes that no longer exist (killed
// before their cleanup ran; their postgres died with them by the parent-death signal).
func sweepOrphans(base string, logf func(string, ...any)) {
	dirs, _ := filepath.Glob(filepath.Join(base, rootPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue // not ours, or still being set up
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || processAlive(pid) {
			continue
		}
		if pm, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			if first, _, _ := strings.Cut(string(pm), "\n"); first != "" {
				if p, err := strconv.Atoi(first); err == nil && processAlive(p) {
					continue // its postgres still runs: leave it alone
				}
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			logf("unleashtest: remove %s, left by test process %d that no longer runs: %v", dir, pid, err)
			continue
		}
		logf("unleashtest: removed %s, left by test process %d that no longer runs", dir, pid)
	}
}
