package component

import (
	"context"
	"crypto/hkdf"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/services/ticket"
)

// idTokenKeys are the ID token keys: those of ticket.oidc_key_file when set
// (keys of their own, which the key ring's holders cannot derive), else
// derived from the ring's signing keys (from its master keys in a
// version-1 ring without a signing set, as the tickets' own key).
func idTokenKeys(cfg *Config, r *crypto.Ring) (*ticket.IDTokenKeys, error) {
	if cfg.OIDCKeyFile != "" {
		keys, err := readRSAKeys(cfg.OIDCKeyFile, cfg.KeyFileAllowOpenMode)
		if err != nil {
			return nil, fmt.Errorf("ticket.oidc_key_file: %w", err)
		}
		return ticket.NewIDTokenKeysRSA(keys)
	}
	if len(r.Signing.Keys) > 0 {
		return ticket.NewIDTokenKeys(r.Signing.Active, r.Signing.Keys)
	}
	if len(r.Master.Keys) == 0 {
		return nil, errors.New("the key ring has neither signing nor master keys")
	}
	seeds := make(map[string][]byte, len(r.Master.Keys))
	for id, k := range r.Master.Keys {
		dk, err := hkdf.Key(sha256.New, k, nil, "uias oidc id token v1", 32)
		if err != nil {
			return nil, err
		}
		seeds["m"+id] = dk
	}
	return ticket.NewIDTokenKeys("m"+r.Master.Active, seeds)
}

// The modes a key file may not have (unless
// ticket.key_file_allow_open_mode), for readKeyFile.
const (
	// secretMask: a secret (a private key, the keytab) that others may read
	// or its group write; group read is a Kubernetes Secret's mode 0440 for
	// the pod's fsGroup.
	secretMask fs.FileMode = 0o037
	// publicMask: trusted public keys that its group or others may write
	// (whoever writes the file adds trust; sec28b L2).
	publicMask fs.FileMode = 0o022
)

// openModeError is a key file refused for its mode.
type openModeError struct {
	path       string
	mode, mask fs.FileMode
}

func (e *openModeError) Error() string {
	if e.mask&0o004 != 0 {
		return fmt.Sprintf("%s may be read by others or written by its group (mode %v): chmod 600 (or 440) it", e.path, e.mode)
	}
	return fmt.Sprintf("%s may be written by its group or others (mode %v): chmod 644 (or 444) it", e.path, e.mode)
}

// readKeyFile reads a key file, refusing one whose mode has a bit of mask
// (secretMask, publicMask) unless allowOpen: the one reader of the
// component's key files (OpenID Connect keys, the peer key and the peers'
// public keys, the Kerberos keytab).
func readKeyFile(path string, mask fs.FileMode, allowOpen bool) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&mask != 0 && !allowOpen {
		return nil, &openModeError{path: path, mode: fi.Mode().Perm(), mask: mask}
	}
	return os.ReadFile(path) // #nosec G304 -- the operator's configured key file
}

// readRSAKeys reads the RSA private keys of a PEM file (PKCS#8 or PKCS#1,
// in order), refusing a file that others may read or group may write unless
// allowOpen (group read is a Kubernetes Secret's mode 0440 for the pod's
// fsGroup).
func readRSAKeys(path string, allowOpen bool) ([]*rsa.PrivateKey, error) {
	data, err := readKeyFile(path, secretMask, allowOpen)
	if err != nil {
		return nil, err
	}
	var keys []*rsa.PrivateKey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var key any
		switch b.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			if strings.Contains(b.Type, "PRIVATE KEY") {
				return nil, fmt.Errorf("%s: key %d is a %s: give RSA keys unencrypted, as PKCS#8 (PRIVATE KEY) or PKCS#1 (RSA PRIVATE KEY)",
					path, len(keys)+1, b.Type)
			}
			continue // a certificate beside the keys
		}
		if err != nil {
			return nil, fmt.Errorf("%s: key %d: %w", path, len(keys)+1, err)
		}
		rk, ok := key.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s: key %d is not an RSA key (ID tokens are signed RS256)", path, len(keys)+1)
		}
		keys = append(keys, rk)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no PEM private key", path)
	}
	return keys, nil
}

// profiles answer the ID token's and userinfo's claims from the attributes
// validations release (the same short cache).
type profiles struct{ attrs *attributeCache }

func (p profiles) Profile(ctx context.Context, userID, appID string) (ticket.Profile, error) {
	a, err := p.attrs.Attributes(ctx, userID, appID)
	if err != nil {
		return ticket.Profile{}, err
	}
	return ticket.Profile{Login: a.GetLogin(), Name: a.GetDisplayName(), OrgID: a.GetOrgId(), OrgName: a.GetOrgName(),
		Account: a.GetAppAccountId(), Groups: a.GetGroups(), UserType: a.GetUserType()}, nil
}
