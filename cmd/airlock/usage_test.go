package main

import (
	"bytes"
	"context"
	"flag"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/airlock-dev/airlock/server"
)

// runCLI runs airlock with args and no database.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// Every command's --help and -h print its help on stdout and exit 0; the
// help has the usage line, every flag the command's FlagSet defines and
// every variable it reads, and is the same text as `airlock help NAME`,
// which renders the flags from the command table rather than from the
// FlagSet the command parsed with: so the two cannot differ.
func TestHelpEveryCommand(t *testing.T) {
	t.Parallel()
	want := []string{"serve", "check", "scope", "scope plan", "scope apply", "doctor", "pending", "show", "commit",
		"rollback", "revert", "reap", "branches", "merge", "discard", "connect", "demo", "version", "help"}
	if len(commands) != len(want) {
		t.Errorf("the command table has %d commands, want %d", len(commands), len(want))
	}
	for _, name := range want {
		c := lookup(name)
		if c == nil {
			t.Errorf("no command %q in the table", name)
			continue
		}
		_, viaHelp, _ := runCLI(append([]string{"help"}, strings.Fields(name)...)...)
		for _, h := range []string{"--help", "-h"} {
			args := append(strings.Fields(name), h)
			code, stdout, stderr := runCLI(args...)
			if code != 0 || stdout == "" || stderr != "" {
				t.Errorf("airlock %s: exit %d, stdout %d bytes, stderr %q; want 0, the help, nothing", strings.Join(args, " "), code, len(stdout), stderr)
				continue
			}
			if !strings.HasPrefix(stdout, "usage: airlock "+name) || !strings.HasPrefix(stdout, "usage: "+c.usageLine()+"\n\n") {
				t.Errorf("airlock %s: help does not start with its usage line:\n%s", strings.Join(args, " "), stdout)
			}
			if stdout != viaHelp {
				t.Errorf("airlock %s differs from airlock help %s:\n%s\n---\n%s", strings.Join(args, " "), name, stdout, viaHelp)
			}
			fs := flag.NewFlagSet(name, flag.ContinueOnError)
			if c.flags != nil {
				c.flags(fs)
			}
			fs.VisitAll(func(f *flag.Flag) {
				if !regexp.MustCompile(`(?m)^  --` + regexp.QuoteMeta(f.Name) + `( |$)`).MatchString(stdout) {
					t.Errorf("airlock %s: help does not list --%s:\n%s", strings.Join(args, " "), f.Name, stdout)
				}
			})
			for _, e := range c.env {
				if !strings.Contains(stdout, e.name) {
					t.Errorf("airlock %s: help does not name %s", strings.Join(args, " "), e.name)
				}
			}
		}
	}
	// The reviewer's commands all offer --log-json, and say so.
	for _, name := range []string{"pending", "show", "commit", "rollback", "reap", "branches", "merge", "discard"} {
		if _, stdout, _ := runCLI(name, "--help"); !strings.Contains(stdout, "--log-json") || !strings.Contains(lookup(name).args, "[--log-json]") {
			t.Errorf("airlock %s --help does not document --log-json:\n%s", name, stdout)
		}
	}
}

func TestTopLevelHelp(t *testing.T) {
	t.Parallel()
	_, top, _ := runCLI("help")
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, stdout, stderr := runCLI(args...)
		if code != 0 || stderr != "" || stdout != top || !strings.Contains(stdout, "usage: airlock COMMAND [ARGS]") {
			t.Errorf("airlock %v: exit %d, stderr %q, stdout:\n%s", args, code, stderr, stdout)
		}
	}
	for _, c := range commands {
		if !strings.Contains(top, "  airlock "+c.name) {
			t.Errorf("top-level help does not list %q", c.name)
		}
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(top, "  --"+f.Name+" ") && !strings.Contains(top, "  --"+f.Name+"\n") {
			t.Errorf("top-level help does not list serve's --%s", f.Name)
		}
	})
	for _, want := range []string{"--http ADDR", "--tls-cert FILE", "--tls-key FILE", "AIRLOCK_DATABASE_URL", "database.url_env", "AIRLOCK_HTTP_TOKEN"} {
		if !strings.Contains(top, want) {
			t.Errorf("top-level help does not mention %q", want)
		}
	}

	// Asked for nothing, or for what does not exist: stderr, exit 2.
	if code, stdout, stderr := runCLI(); code != 2 || stdout != "" || stderr != top {
		t.Errorf("airlock: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	for _, args := range [][]string{{"bogus"}, {"--scope", "x"}, {"scope plan"}} {
		code, stdout, stderr := runCLI(args...)
		if code != 2 || stdout != "" || !strings.HasPrefix(stderr, "airlock: unknown command "+`"`+args[0]+`"`+"\nusage: airlock COMMAND [ARGS]\n") {
			t.Errorf("airlock %q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

// Every usage error has one shape: "airlock NAME: what is wrong", then the
// usage line; nothing on stdout; exit 2. None needs a database.
func TestUsageErrors(t *testing.T) {
	t.Setenv(reviewEnv, "")
	tests := []struct {
		args []string
		name string // the command the message names
		what string // the first line's tail
	}{
		{[]string{"serve"}, "serve", "--scope FILE is required"},
		{[]string{"serve", "--tls-cert", "c.pem"}, "serve", "--allow-origin, --tls-cert, --tls-key, --http-token-file and the review page and notification flags need --http"},
		{[]string{"serve", "--notify-webhook", "https://x.example/h"}, "serve", "--allow-origin, --tls-cert, --tls-key, --http-token-file and the review page and notification flags need --http"},
		{[]string{"commit", "ID", "--server", "http://x", "--reviewer", "a"}, "commit", "--reviewer is not taken with --server: the decision is recorded under your reviewer token's name"},
		{[]string{"serve", "--scope", "s.json", "--allow-owner", "false"}, "serve", `unexpected argument "false"`},
		{[]string{"serve", "--http-rate", "fast"}, "serve", `invalid value "fast" for flag --http-rate: parse error`},
		{[]string{"check"}, "check", "--scope FILE is required"},
		{[]string{"check", "--scope", "s.json", "extra"}, "check", `unexpected argument "extra"`},
		{[]string{"scope"}, "scope", "want plan or apply"},
		{[]string{"scope", "drop"}, "scope", `want plan or apply, not "drop"`},
		{[]string{"scope", "--scope", "s.json"}, "scope", `want plan or apply, not "--scope"`},
		{[]string{"scope", "plan"}, "scope plan", "--scope FILE is required"},
		{[]string{"scope", "apply", "--scope", "s.json", "x"}, "scope apply", `unexpected argument "x"`},
		{[]string{"doctor"}, "doctor", "--scope FILE is required"},
		{[]string{"doctor", "--scope"}, "doctor", "flag needs an argument: --scope"},
		{[]string{"pending", "x"}, "pending", `unexpected argument "x"`},
		{[]string{"pending", "--jsn"}, "pending", "flag provided but not defined: --jsn"},
		{[]string{"show"}, "show", "missing ID"},
		{[]string{"show", "a", "b"}, "show", `unexpected argument "b"`},
		{[]string{"commit", "--reviewer", "alice"}, "commit", "missing ID"},
		{[]string{"commit", "ID"}, "commit", "--reviewer NAME is required: the decision is recorded with it"},
		{[]string{"commit", "ID", "--reviewer", " "}, "commit", "--reviewer NAME is required: the decision is recorded with it"},
		{[]string{"commit", "ID", "--reviewer", "a", "--reason", "r"}, "commit", "flag provided but not defined: --reason"},
		{[]string{"rollback", "ID", "--reason", "no"}, "rollback", "--reviewer NAME is required: the decision is recorded with it"},
		{[]string{"reap", "now"}, "reap", `unexpected argument "now"`},
		{[]string{"revert", "ID"}, "revert", "--reviewer NAME is required: the revert is recorded with it"},
		{[]string{"revert", "ID", "--server", "http://x", "--reviewer", "a"}, "revert", "--reviewer is not taken with --server: the revert is recorded under your reviewer token's name"},
		{[]string{"branches", "x"}, "branches", `unexpected argument "x"`},
		{[]string{"merge", "ID"}, "merge", "--reviewer NAME is required: the decision is recorded with it"},
		{[]string{"discard"}, "discard", "missing BRANCH_ID"},
		{[]string{"demo", "--keep", "--stop"}, "demo", "--keep and --stop do not go together"},
		{[]string{"demo", "extra"}, "demo", `unexpected argument "extra"`},
		{[]string{"version", "x"}, "version", `unexpected argument "x"`},
		{[]string{"help", "nosuch"}, "help", `unknown command "nosuch"`},
		{[]string{"help", "--bogus"}, "help", "flag provided but not defined: --bogus"},
	}
	for _, tt := range tests {
		code, stdout, stderr := runCLI(tt.args...)
		want := "airlock " + tt.name + ": " + tt.what + "\nusage: " + mustLookup(tt.name).usageLine() + "\n"
		if code != 2 || stdout != "" || stderr != want {
			t.Errorf("airlock %q: exit %d, stdout %q, stderr\n%q\nwant exit 2 and\n%q", tt.args, code, stdout, stderr, want)
		}
	}
}

func TestVersionText(t *testing.T) {
	t.Parallel()
	settings := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	v := "airlock " + server.Version
	tests := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"clean", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: settings("vcs.revision", "5cf8f3b42a9fa1ba7c5147f6ac88ed7a5bb45d1e", "vcs.modified", "false")},
			true, v + " (commit 5cf8f3b42a9f, built with go1.26.8)"},
		{"modified", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: settings("vcs.revision", "5cf8f3b42a9fa1ba7c5147f6ac88ed7a5bb45d1e", "vcs.modified", "true")},
			true, v + " (commit 5cf8f3b42a9f, modified, built with go1.26.8)"},
		{"short revision", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: settings("vcs.revision", "abc")},
			true, v + " (commit abc, built with go1.26.8)"},
		{"go run or go test", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: settings("-compiler", "gc")},
			true, v + " (commit unknown, built with go1.26.8)"},
		{"no build info", nil, false, v + " (commit unknown, built with " + runtime.Version() + ")"},
	}
	for _, tt := range tests {
		if got := versionText(tt.info, tt.ok); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}

	// A test binary carries no VCS stamp.
	re := regexp.MustCompile(`^airlock ` + regexp.QuoteMeta(server.Version) + ` \(commit ([0-9a-f]{1,12}(, modified)?|unknown), built with go[^)]+\)\n$`)
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, stdout, stderr := runCLI(args...)
		if code != 0 || stderr != "" || !re.MatchString(stdout) {
			t.Errorf("airlock %v: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"/etc/airlock/scope.json", "/etc/airlock/scope.json"},
		{"scopes/support-v2.json", "scopes/support-v2.json"},
		{"my scopes/s.json", "'my scopes/s.json'"},
		{"it's.json", `'it'\''s.json'`},
		{"$HOME/s.json", "'$HOME/s.json'"},
		{"", "''"},
	} {
		if got := shellQuote(tc.in); got != tc.want {
			t.Errorf("shellQuote(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
