package crypto

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A module key's PIN file gets the ring file's mode check (sec31b L2): one
// that group or others may access is refused, naming the file and its mode
// and never the PIN, unless accepted explicitly as for the ring file
// (RingSource.AllowOpenFile, *.key_file_allow_open_mode).
func TestPINFileMode(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode  os.FileMode
		allow bool
		ok    bool
	}{{0o600, false, true}, {0o400, false, true}, {0o644, false, false}, {0o640, false, false}, {0o604, false, false}, {0o644, true, true}} {
		f := filepath.Join(dir, "pin")
		_ = os.Remove(f)
		if err := os.WriteFile(f, []byte("12345678\n"), tc.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(f, tc.mode); err != nil { // past the umask
			t.Fatal(err)
		}
		pin, err := ModuleKeyConfig{PinFile: f, allowOpenPIN: tc.allow}.pin()
		switch {
		case tc.ok && (err != nil || pin != "12345678"):
			t.Errorf("mode %04o allow %v: %q %v", tc.mode, tc.allow, pin, err)
		case !tc.ok && (!errors.Is(err, ErrKeyFileOpen) || pin != "" || !strings.Contains(err.Error(), f)):
			t.Errorf("mode %04o allow %v: %q %v, want ErrKeyFileOpen naming the file", tc.mode, tc.allow, pin, err)
		case err != nil && strings.Contains(err.Error(), "12345678"):
			t.Errorf("mode %04o: the error shows the PIN", tc.mode)
		}
	}
	if _, err := (ModuleKeyConfig{PinFile: filepath.Join(dir, "none")}).pin(); err == nil || !strings.Contains(err.Error(), "the PIN file") {
		t.Errorf("a missing PIN file: %v", err)
	}
}
