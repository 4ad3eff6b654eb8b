package component

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadKeyFile (rr29 B8): the one key-file reader refuses a secret that
// others may read or its group write, and trusted public keys that its
// group or others may write, unless open modes are allowed; the sentence
// says what to do.
func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode fs.FileMode
		mask fs.FileMode
		want string // "" for read
	}{
		{0o600, secretMask, ""},
		{0o440, secretMask, ""},
		{0o400, secretMask, ""},
		{0o640, secretMask, ""},
		{0o644, secretMask, "chmod 600 (or 440)"},
		{0o660, secretMask, "chmod 600 (or 440)"},
		{0o604, secretMask, "may be read by others"},
		{0o644, publicMask, ""},
		{0o444, publicMask, ""},
		{0o664, publicMask, "chmod 644 (or 444)"},
		{0o646, publicMask, "may be written by its group or others"},
	} {
		path := filepath.Join(dir, "key-"+tc.mode.String()+"-"+tc.mask.String())
		if err := os.WriteFile(path, []byte("key"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
		data, err := readKeyFile(path, tc.mask, false)
		switch {
		case tc.want == "" && (err != nil || string(data) != "key"):
			t.Errorf("mode %v, mask %v: %q %v", tc.mode, tc.mask, data, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path)):
			t.Errorf("mode %v, mask %v: %v, want %q", tc.mode, tc.mask, err, tc.want)
		}
		if tc.want != "" {
			if data, err := readKeyFile(path, tc.mask, true); err != nil || string(data) != "key" {
				t.Errorf("mode %v allowed explicitly: %v", tc.mode, err)
			}
		}
	}
	if _, err := readKeyFile(filepath.Join(dir, "none"), secretMask, true); err == nil {
		t.Fatal("a missing file read")
	}
}
