package ctl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	"github.com/uias/uias/services/audit"
)

// The client's witness: "audit verify" and "audit consistency" keep the
// latest checkpoint they verified in a file beside the token, and require
// the log's latest checkpoint to extend it the next time (as the clients
// of Certificate Transparency and of Go's checksum database keep the
// latest signed tree head). The end of the log cut off in the database,
// with the checkpoints that covered it, then no longer passes unnoticed.

// witnessPath is the file in which this client keeps the latest checkpoint
// of log origin it verified at the server address (--addr): one per log
// and address, so that two servers of the same origin (the default
// uias.audit of a test and a production centre) never meet.
func (a *app) witnessPath(origin string) (string, error) {
	dir, err := a.configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "audit-witness-"+fileSafe(origin)+"@"+fileSafe(a.g.addr)+".note"), nil
}

// witnessFiles are the checkpoints kept for the server address, any log.
func (a *app) witnessFiles() ([]string, error) {
	dir, err := a.configDir()
	if err != nil {
		return nil, err
	}
	return filepath.Glob(filepath.Join(dir, "audit-witness-*@"+fileSafe(a.g.addr)+".note"))
}

// fileSafe replaces what a file name should not hold by '_'.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// witnessed is what checkWitness found.
type witnessed struct {
	path    string
	kept    *audit.Checkpoint // the checkpoint verified before (nil: none)
	problem *audit.Problem    // the latest checkpoint does not extend kept
}

// describe says it for the table output.
func (w *witnessed) describe(latest int64) string {
	switch {
	case w == nil:
		return ""
	case w.problem != nil:
		return "FAILED (" + w.path + ")"
	case w.kept == nil:
		return fmt.Sprintf("first check here: checkpoint %d remembered in %s", latest, w.path)
	default:
		return fmt.Sprintf("checkpoint %d extends checkpoint %d verified before (%s)", latest, w.kept.Size, w.path)
	}
}

// checkWitness checks that latest (the log's latest checkpoint, its
// signature checked with known) extends the checkpoint this client kept,
// asking the server for the consistency proof, and then keeps latest. A
// log that does not extend it is a problem (and the file is left as it
// is); errors are failures to read the file or to ask the server.
func (a *app) checkWitness(s *session, known note.Verifiers, latest audit.Checkpoint) (*witnessed, error) {
	origin, _, _ := strings.Cut(string(latest.Note), "\n")
	path, err := a.witnessPath(origin)
	if err != nil {
		return nil, err
	}
	w := &witnessed{path: path}
	kept, err := audit.ReadWitnessFile(path, origin, known)
	if err != nil {
		return nil, fmt.Errorf("%w; if the log's keys were replaced on purpose, forget it: uias ctl audit verify --forget", err)
	}
	w.kept = kept
	var proof tlog.TreeProof
	if kept != nil && latest.Size > kept.Size {
		var perr error
		if proof, w.problem, perr = a.proveFrom(s, *kept, latest); perr != nil {
			return nil, perr
		}
	}
	if kept != nil && w.problem == nil {
		w.problem = audit.CheckExtends(*kept, latest, proof)
	}
	if w.problem != nil {
		w.problem.What += fmt.Sprintf(" [the checkpoint verified before is kept in %s; if the log was restored from a backup on purpose, "+
			"accept it with uias ctl audit verify --forget]", path)
		return w, nil //nolint:nilerr // the problem found is the result (w.problem), not a failure to check
	}
	if kept == nil || latest.Size > kept.Size {
		if err := audit.WriteWitnessFile(path, latest); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// proveFrom asks the server for the consistency proof from kept to
// latest; a server that has no checkpoint of kept's size any more is a
// problem (the log was cut off below it and grew again, or rewritten).
func (a *app) proveFrom(s *session, kept, latest audit.Checkpoint) (tlog.TreeProof, *audit.Problem, error) {
	p, err := auditv1.NewAuditLogServiceClient(s.conn).ProveConsistency(s.ctx,
		&auditv1.ProveConsistencyRequest{OldSize: kept.Size, NewSize: latest.Size})
	if status.Code(err) == codes.FailedPrecondition {
		return nil, &audit.Problem{Seq: -1, Checkpoint: kept.Size, What: fmt.Sprintf(
			"the log's latest checkpoint (size %d) does not extend the checkpoint of size %d verified before: the log holds "+
				"no checkpoint of size %d any more (%s): it was cut off and grew again, or was rewritten", latest.Size, kept.Size, kept.Size,
			status.Convert(err).Message())}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var proof tlog.TreeProof
	for _, h := range p.GetProof() {
		proof = append(proof, tlog.Hash(h))
	}
	return proof, nil, nil
}

// latestChecked fetches the log's latest checkpoint and checks its
// signature (nil, nil: the log has none yet).
func (a *app) latestChecked(s *session, pinned verifierFlag) (*audit.Checkpoint, note.Verifiers, error) {
	cp, err := auditv1.NewAuditLogServiceClient(s.conn).GetCheckpoint(s.ctx, &auditv1.GetCheckpointRequest{})
	if status.Code(err) == codes.FailedPrecondition {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	known, err := a.trusted(pinned, cp.GetVerifierKeys())
	if err != nil {
		return nil, nil, err
	}
	c, err := openCP(cp, known)
	if err != nil {
		return nil, nil, fmt.Errorf("the latest checkpoint (size %d) does not verify: %w", cp.GetSize(), err)
	}
	return &c, known, nil
}

// noCheckpoint is the problem of a log without a checkpoint when this
// client kept one of the server (nil: it kept none).
func (a *app) noCheckpoint() (*audit.Problem, error) {
	files, err := a.witnessFiles()
	if err != nil || len(files) == 0 {
		return nil, err
	}
	return &audit.Problem{Seq: 0, What: fmt.Sprintf("the log has no signed checkpoint, but this client verified one before (kept in %s): "+
		"the log was emptied; if it was replaced on purpose, accept it with uias ctl audit verify --forget", files[0])}, nil
}

// forgetWitnesses removes the checkpoints this client kept of the server.
func (a *app) forgetWitnesses() error {
	files, err := a.witnessFiles()
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("forgetting the kept checkpoint: %w", err)
		}
		fmt.Fprintf(a.stderr, "forgot the checkpoint kept in %s; verifying from scratch\n", f)
	}
	return nil
}
