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
// the previous lists kept until it does. The file is read outside the
// lock: handshakes meanwhile use the lists in force.
type crlFile struct {
	path     string
	cas      []*x509.Certificate     // the configured client and people's CAs (lists no one of them signs are logged)
	sigCheck x509cert.SignatureCheck // verifies the lists' signatures (nil: crypto/x509's)
	// strict refuses a file holding a list that names a CA of cas but
	// that none of them verifies (at start an error; on a change the
	// previous lists stay in force): the challenge sign-in fails closed.
	strict bool
	log    *zap.Logger
	every  time.Duration

	mu         sync.Mutex
	rev        *x509cert.Revocation
	stamp      fileStamp
	checked    time.Time
	reading    bool      // a reader is reading the file (outside mu)
	failed     fileStamp // the stamp that did not parse (logged once)
	unreadable bool      // the file could not be looked at (logged once)
	stale      string    // the stale lists last logged
}

// newCRLFile reads path (an error when it does not hold CRLs).
func newCRLFile(path string, cas []*x509.Certificate, log *zap.Logger) (*crlFile, error) {
	f := &crlFile{path: path, cas: cas, log: log, every: certCheckInterval}
	if err := f.load(); err != nil {
		return nil, err
	}
	return f, nil
}

// load reads the file the first time (before f is shared).
func (f *crlFile) load() error {
	st, rev, err := f.read()
	if err != nil {
		return fmt.Errorf("CRL file %s: %w", f.path, err)
	}
	f.rev, f.stamp, f.checked = rev, st, time.Now()
	f.logLoaded(rev)
	f.noteStale(time.Now())
	return nil
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
	rev, err := x509cert.ParseCRLsChecked(b, f.sigCheck)
	if err == nil && f.strict {
		if bad := rev.Unverifiable(f.cas); len(bad) > 0 {
			err = fmt.Errorf("lists naming a configured CA whose signature that CA does not verify "+
				"(they would revoke nothing; a re-keyed CA, a damaged or forged list?): %s", strings.Join(bad, "; "))
		}
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, rev, err
}

func (f *crlFile) logLoaded(rev *x509cert.Revocation) {
	f.log.Info("TLS certificate revocation lists loaded", zap.String("crl_file", f.path), zap.Int("lists", rev.Len()))
	if none := rev.Unmatched(f.cas); len(none) > 0 {
		f.log.Warn("TLS CRL file holds lists that no configured CA signs: they revoke nothing "+
			"(a re-keyed CA, a separate CRL signer, a CA without the cRLSign key usage?)",
			zap.String("crl_file", f.path), zap.String("issuers", strings.Join(none, "; ")))
	}
}

// noteStale logs, once each time the set changes, the lists past their
// next update (under mu, or before f is shared): still applied, but their
// issuers have published newer ones that may revoke more.
func (f *crlFile) noteStale(now time.Time) {
	stale := strings.Join(f.rev.Stale(now), "; ")
	if stale != "" && stale != f.stale {
		f.log.Warn("TLS CRL file holds lists past their next update; publish the issuers' newer lists",
			zap.String("crl_file", f.path), zap.String("issuers", stale))
	}
	f.stale = stale
}

// current returns the lists in use, reading the file again first if it
// changed (by one caller, outside the lock; the others go on with the
// lists in force).
func (f *crlFile) current() *x509cert.Revocation {
	f.mu.Lock()
	now := time.Now()
	if now.Sub(f.checked) < f.every || f.reading {
		defer f.mu.Unlock()
		return f.rev
	}
	f.checked = now
	f.noteStale(now)
	fi, err := os.Stat(f.path)
	if err != nil {
		defer f.mu.Unlock()
		if !f.unreadable {
			f.unreadable = true
			f.log.Warn("TLS CRL file unreadable; the previous lists stay in force", zap.Error(err))
		}
		return f.rev
	}
	f.unreadable = false
	if (fileStamp{mod: fi.ModTime(), size: fi.Size()}) == f.stamp {
		defer f.mu.Unlock()
		return f.rev
	}
	f.reading = true
	f.mu.Unlock()

	st, rev, err := f.read()

	f.mu.Lock()
	defer f.mu.Unlock()
	f.reading = false
	if err != nil {
		if st != f.failed {
			f.failed = st
			f.log.Warn("TLS CRL file changed but does not parse; the previous lists stay in force until it does",
				zap.String("crl_file", f.path), zap.Error(err))
		}
		return f.rev
	}
	f.rev, f.stamp = rev, st
	f.logLoaded(rev)
	f.noteStale(now)
	return f.rev
}

// verifyConnection is a tls.Config VerifyConnection: it refuses a
// connection whose verified client chain the lists revoke. It runs on every
// connection, resumed ones included (a session resumed from a ticket
// carries the chains verified when it began, and VerifyPeerCertificate
// would not run again: a certificate revoked since would go on). Without
// verified chains (no certificate, or an edge that verifies in code:
// verifyPeers asks check then) it has nothing to judge. A connection
// already open is not judged again (a gRPC connection lives at most
// grpc.max_connection_age; the HTTPS edge asks on every request).
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

// RevocationFile reads the revocation lists of path (tls.crl_file) for a
// component that checks people's certificates itself (identity's
// certificate sign-in by challenge): the function returns the lists in
// force, reading the file again when it changes (as the edge's handshakes
// do). cas are the CAs whose lists are expected (lists none of them signs
// are logged). An error when path does not hold CRLs.
func RevocationFile(path string, cas []*x509.Certificate, log *zap.Logger) (func() *x509cert.Revocation, error) {
	return RevocationFileChecked(path, cas, nil, log)
}

// RevocationFileChecked is RevocationFile with the lists' signatures
// verified by check (nil: crypto/x509's; identity passes gmsm's, which
// verifies SM2 lists too), and fails closed: a file holding a list that
// names a CA of cas (its distinguished name) but that none of them
// verifies is an error at start, and when the file changes to such lists
// the previous ones stay in force (logged).
func RevocationFileChecked(path string, cas []*x509.Certificate, check x509cert.SignatureCheck, log *zap.Logger) (func() *x509cert.Revocation, error) {
	f := &crlFile{path: path, cas: cas, sigCheck: check, strict: true, log: log, every: certCheckInterval}
	if err := f.load(); err != nil {
		return nil, err
	}
	return f.current, nil
}
