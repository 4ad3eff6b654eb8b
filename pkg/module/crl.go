package module

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/x509cert"
)

// crlFile serves the revocation lists of tls.crl_file and reads them
// again when the file changes (size or modification time, looked at on
// use at most every certCheckInterval), as CertReloader does for the
// certificate: a file that does not parse (being replaced) is logged and
// the previous lists kept until it does.
type crlFile struct {
	path  string
	log   *zap.Logger
	every time.Duration

	mu         sync.Mutex
	rev        *x509cert.Revocation
	stamp      fileStamp
	checked    time.Time
	failed     fileStamp // the stamp that did not parse (logged once)
	unreadable bool      // the file could not be looked at (logged once)
}

// newCRLFile reads path (an error when it does not hold CRLs).
func newCRLFile(path string, log *zap.Logger) (*crlFile, error) {
	f := &crlFile{path: path, log: log, every: certCheckInterval}
	st, rev, err := f.read()
	if err != nil {
		return nil, fmt.Errorf("TLS CRL file %s: %w", path, err)
	}
	f.rev, f.stamp, f.checked = rev, st, time.Now()
	f.logLoaded()
	return f, nil
}

func (f *crlFile) read() (fileStamp, *x509cert.Revocation, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return fileStamp{}, nil, err
	}
	b, err := os.ReadFile(f.path)
	if err != nil {
		return fileStamp{}, nil, err
	}
	rev, err := x509cert.ParseCRLs(b)
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, rev, err
}

func (f *crlFile) logLoaded() {
	fields := []zap.Field{zap.String("crl_file", f.path), zap.Int("lists", f.rev.Len())}
	if stale := f.rev.Stale(time.Now()); len(stale) > 0 {
		// Still applied: what they list stays revoked.
		f.log.Warn("TLS CRL file holds lists past their next update; publish the issuers' newer lists",
			append(fields, zap.String("issuers", strings.Join(stale, "; ")))...)
		return
	}
	f.log.Info("TLS certificate revocation lists loaded", fields...)
}

// current returns the lists in use, reading the file again first if it
// changed.
func (f *crlFile) current() *x509cert.Revocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if now.Sub(f.checked) < f.every {
		return f.rev
	}
	f.checked = now
	fi, err := os.Stat(f.path)
	if err != nil {
		if !f.unreadable {
			f.unreadable = true
			f.log.Warn("TLS CRL file unreadable; the previous lists stay in force", zap.Error(err))
		}
		return f.rev
	}
	f.unreadable = false
	if (fileStamp{mod: fi.ModTime(), size: fi.Size()}) == f.stamp {
		return f.rev
	}
	st, rev, err := f.read()
	if err != nil {
		if st != f.failed {
			f.failed = st
			f.log.Warn("TLS CRL file changed but does not parse; the previous lists stay in force until it does",
				zap.String("crl_file", f.path), zap.Error(err))
		}
		return f.rev
	}
	f.rev, f.stamp = rev, st
	f.logLoaded()
	return f.rev
}

// verifyConnection is a tls.Config VerifyConnection: it refuses a
// connection whose verified client chain the lists revoke. It runs on every
// connection, resumed ones included (a session resumed from a ticket
// carries the chains verified when it began, and VerifyPeerCertificate
// would not run again: a certificate revoked since would go on). Without
// verified chains (no certificate, or an edge that verifies in code:
// verifyPeers asks check then) it has nothing to judge.
func (f *crlFile) verifyConnection(cs tls.ConnectionState) error {
	return f.check(cs.VerifiedChains)
}

// check refuses chains that the lists revoke.
func (f *crlFile) check(chains [][]*x509.Certificate) error {
	rev := f.current()
	for _, chain := range chains {
		if err := rev.Check(chain); err != nil {
			return err
		}
	}
	return nil
}
