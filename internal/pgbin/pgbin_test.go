package pgbin

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindBinDir(t *testing.T) {
	dir, err := FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range serverBinaries {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("FindBinDir() = %s, which has no %s: %v", dir, name, err)
		}
	}
}

func TestFindBinDirNotFound(t *testing.T) {
	_, err := findBinDir([]string{t.TempDir(), "/nonexistent"})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("FindBinDir() error = %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), "apt-get install -y postgresql") || !strings.Contains(err.Error(), "brew install postgresql@15") {
		t.Errorf("error does not say how to install: %v", err)
	}
}

func TestInstallVersionOrder(t *testing.T) {
	tests := []struct {
		dirs []string
		want string
	}{
		{[]string{"/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/10/bin"}, "/usr/lib/postgresql/15/bin"},
		{[]string{"/opt/homebrew/opt/postgresql@14/bin", "/opt/homebrew/opt/postgresql@16/bin"}, "/opt/homebrew/opt/postgresql@16/bin"},
	}
	for _, tt := range tests {
		best := tt.dirs[0]
		for _, d := range tt.dirs[1:] {
			if compareVersions(installVersion(d), installVersion(best)) > 0 {
				best = d
			}
		}
		if best != tt.want {
			t.Errorf("newest of %v = %s, want %s", tt.dirs, best, tt.want)
		}
	}
}
