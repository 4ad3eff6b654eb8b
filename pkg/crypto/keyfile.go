package crypto

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// keyFile is the on-disk key ring:
//
//	{"active": "k1", "keys": {"k1": "<base64 of 32 bytes>"}}
type keyFile struct {
	Active string            `json:"active"`
	Keys   map[string]string `json:"keys"`
}

// LoadOrCreateKeyFile reads the version-1 JSON key ring at path. If the file
// does not exist it is created (mode 0600, parent directories 0700) with one
// random 32-byte key "k1", which is active. It returns the keys and the
// active key id, ready for NewSealer. Errors name the file and key id, never
// key material.
//
// It is for tests and tools that want a Sealer on a scratch file: it makes a
// new ring whenever the file is missing. Services load their ring with
// LoadRing, which never does (see Ring).
func LoadOrCreateKeyFile(path string) (map[string][]byte, string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createKeyFile(path); err != nil {
			return nil, "", err
		}
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, "", fmt.Errorf("key file %s: %w", path, err)
	}
	var kf keyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return nil, "", fmt.Errorf("key file %s is not valid JSON: %w", path, err)
	}
	if len(kf.Keys) == 0 {
		return nil, "", fmt.Errorf("key file %s has no keys", path)
	}
	if _, ok := kf.Keys[kf.Active]; !ok {
		return nil, "", fmt.Errorf("key file %s: active key id %q is not among its keys", path, kf.Active)
	}
	keys := make(map[string][]byte, len(kf.Keys))
	for id, enc := range kf.Keys {
		k, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return nil, "", fmt.Errorf("key file %s: key %q is not valid base64", path, id)
		}
		if len(k) != KeySize {
			return nil, "", fmt.Errorf("key file %s: key %q is %d bytes, want %d", path, id, len(k), KeySize)
		}
		keys[id] = k
	}
	return keys, kf.Active, nil
}

// createKeyFile writes a fresh version-1 key ring to path.
func createKeyFile(path string) error {
	data, err := json.MarshalIndent(keyFile{Active: "k1", Keys: map[string]string{"k1": base64.StdEncoding.EncodeToString(randomKey())}}, "", "  ")
	if err != nil {
		return err
	}
	return createExclusive(path, append(data, '\n'))
}

// createExclusive writes data to a temporary file and links it into place
// (mode 0600, directories 0700), so concurrent starters never see a partial
// file and never overwrite each other (the loser keeps the winner's file).
func createExclusive(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create key file directory %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".keyring-*.tmp")
	if err != nil {
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() { _ = os.Remove(tmpName) }()
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // someone else created it first; use theirs
		}
		// Filesystems without hard links: fall back to an exclusive create.
		f, cerr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(cerr, fs.ErrExist) {
			return nil
		}
		if cerr != nil {
			return fmt.Errorf("create key file %s: %w", path, cerr)
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return fmt.Errorf("write key file %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write key file %s: %w", path, err)
		}
	}
	return nil
}
