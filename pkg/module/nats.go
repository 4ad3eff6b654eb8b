package module

import (
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/uias/uias/pkg/config"
)

// NATSOptions are the client options a process named name (its target,
// e.g. "identity") uses for an external NATS (nats.url): its name, its
// credentials (user and password from a file or
// the environment, an NKEY seed file or a credentials file), TLS with a CA
// file and optional client certificate, and an inbox prefix of its own,
// "_INBOX.<name>", so that the server can let each component subscribe
// only to its own replies (deploy/nats/nats-server.conf). Errors name the
// setting, never a secret.
func NATSOptions(n config.NATS, name string) ([]nats.Option, error) {
	opts := []nats.Option{nats.Name("uias-" + name), nats.CustomInboxPrefix(InboxPrefix(name))}
	switch {
	case n.User != "":
		pw, err := n.ReadPassword()
		if err != nil {
			return nil, err
		}
		if pw == "" {
			return nil, &config.FieldError{Field: "nats.password_file", Msg: "the NATS password is empty"}
		}
		opts = append(opts, nats.UserInfo(n.User, pw))
	case n.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(n.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("nats.nkey_seed_file %s: %w", n.NKeySeedFile, err)
		}
		opts = append(opts, o)
	case n.CredentialsFile != "":
		if _, err := os.Stat(n.CredentialsFile); err != nil {
			return nil, fmt.Errorf("nats.credentials_file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(n.CredentialsFile))
	}
	if n.TLS.CAFile != "" {
		opts = append(opts, nats.RootCAs(n.TLS.CAFile))
	}
	if n.TLS.CertFile != "" {
		opts = append(opts, nats.ClientCert(n.TLS.CertFile, n.TLS.KeyFile))
	}
	return opts, nil
}

// InboxPrefix is the reply-subject prefix of a process named name (its
// target): "_INBOX." followed by the name ("_INBOX.identity"; the commas of
// a list become underscores).
func InboxPrefix(name string) string {
	return "_INBOX." + strings.NewReplacer(",", "_", " ", "", ".", "_", "*", "_", ">", "_").Replace(name)
}
