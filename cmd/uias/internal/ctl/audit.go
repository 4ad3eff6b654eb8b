package ctl

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	"github.com/uias/uias/services/audit"
)

// auditCommands are the "audit" noun: the tamper-evident audit log.
func auditCommands() map[string]command {
	return map[string]command{
		"checkpoint":     auditCheckpointCmd(),
		"prove":          auditProveCmd(),
		"consistency":    auditConsistencyCmd(),
		"verify":         auditVerifyCmd(),
		"query":          auditQueryCmd(),
		"counts":         auditCountsCmd(),
		"export":         auditExportCmd(),
		"backup":         auditBackupCmd(),
		"archive-status": auditArchiveStatusCmd(),
	}
}

// verifierFlag collects --verifier-key values: the keys this command trusts
// for checkpoints. Without any, the keys the server names are used, and
// the command says so.
type verifierFlag []string

func (v *verifierFlag) String() string     { return strings.Join(*v, ",") }
func (v *verifierFlag) Set(s string) error { *v = append(*v, s); return nil }

// trusted returns the verifiers to check checkpoints with.
func (a *app) trusted(pinned verifierFlag, served []string) (note.Verifiers, error) {
	keys := []string(pinned)
	if len(keys) == 0 {
		keys = served
		if a.g.output != "json" {
			fmt.Fprintln(a.stderr, "note: checking against the verifier keys the server sent; pin them with --verifier-key")
		}
	}
	return audit.VerifiersFromKeys(keys)
}

// openCP checks the signature of a checkpoint message and that it states
// what the message says.
func openCP(cp *auditv1.Checkpoint, known note.Verifiers) (audit.Checkpoint, error) {
	origin, _, _ := strings.Cut(cp.GetNote(), "\n")
	c, err := audit.OpenCheckpoint([]byte(cp.GetNote()), origin, known)
	if err != nil {
		return c, err
	}
	if c.Size != cp.GetSize() || string(c.Root[:]) != string(cp.GetRootHash()) {
		return c, errors.New("the checkpoint's size or root differs from its signed note")
	}
	return c, nil
}

// signedBy is " (signed this checkpoint)" when the verifier key k checks
// the signed note, else "" (the log lists its older keys too, for the
// checkpoints they signed: pin them all).
func signedBy(signed, k string) string {
	v, err := note.NewVerifier(k)
	if err != nil {
		return ""
	}
	if _, err := note.Open([]byte(signed), note.VerifierList(v)); err != nil {
		return ""
	}
	return " (signed this checkpoint)"
}

func auditCheckpointCmd() command {
	return command{
		usage: "[--size N] [--verifier-key KEY]...",
		help:  "Shows the latest signed checkpoint of the audit log (or the one of --size) and checks its signature.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			size := fs.Int64("size", 0, "tree size of the checkpoint (0: the latest)")
			var pinned verifierFlag
			fs.Var(&pinned, "verifier-key", "trusted verifier key (repeatable)")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				return a.withSession(func(s *session) error {
					cp, err := auditv1.NewAuditLogServiceClient(s.conn).GetCheckpoint(s.ctx, &auditv1.GetCheckpointRequest{Size: *size})
					if err != nil {
						return err
					}
					known, err := a.trusted(pinned, cp.GetVerifierKeys())
					if err != nil {
						return err
					}
					if _, err := openCP(cp, known); err != nil {
						return fmt.Errorf("checkpoint of size %d does not verify: %w", cp.GetSize(), err)
					}
					return a.output(cp, func(tw *tabwriter.Writer) {
						fields(tw, "size", strconv.FormatInt(cp.GetSize(), 10), "root", tlog.Hash(cp.GetRootHash()).String(),
							"time", cp.GetTime().AsTime().Format(time.RFC3339), "signature", "ok")
						for _, k := range cp.GetVerifierKeys() {
							fields(tw, "verifier key", k+signedBy(cp.GetNote(), k))
						}
					})
				})
			}
		},
	}
}

func auditProveCmd() command {
	return command{
		usage: "SEQ [--size N] [--verifier-key KEY]...",
		help: "Fetches audit record SEQ with the proof that it is in the tree of a signed checkpoint\n" +
			"(the latest, or --size), and checks the proof and the signature here.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			size := fs.Int64("size", 0, "tree size of the checkpoint (0: the latest)")
			var pinned verifierFlag
			fs.Var(&pinned, "verifier-key", "trusted verifier key (repeatable)")
			return func(args []string) error {
				if err := wantArgs(args, "SEQ"); err != nil {
					return err
				}
				seq, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil || seq < 0 {
					return usagef("SEQ must be a record number (0 or more), got %q", args[0])
				}
				return a.withSession(func(s *session) error {
					p, err := auditv1.NewAuditLogServiceClient(s.conn).ProveInclusion(s.ctx, &auditv1.ProveInclusionRequest{Seq: seq, Size: *size})
					if err != nil {
						return err
					}
					known, err := a.trusted(pinned, p.GetCheckpoint().GetVerifierKeys())
					if err != nil {
						return err
					}
					cp, err := openCP(p.GetCheckpoint(), known)
					if err != nil {
						return fmt.Errorf("checkpoint does not verify: %w", err)
					}
					leaf := tlog.RecordHash(p.GetRecord().GetLeafData())
					var proof tlog.RecordProof
					for _, h := range p.GetProof() {
						proof = append(proof, tlog.Hash(h))
					}
					if err := tlog.CheckRecord(proof, cp.Size, cp.Root, seq, leaf); err != nil {
						return fmt.Errorf("record %d: the inclusion proof does not check: %w", seq, err)
					}
					r := p.GetRecord()
					return a.output(p, func(tw *tabwriter.Writer) {
						fields(tw, "record", strconv.FormatInt(seq, 10), "event", r.GetEventId(), "time", r.GetTime().AsTime().Format(time.RFC3339Nano),
							"component", r.GetComponent(), "api", r.GetApi(), "actor", actorShown(r), "subject", r.GetSubject(),
							"result", r.GetResult(), "reason", r.GetReason(), "client ip", r.GetClientIp(),
							"leaf hash", leaf.String(), "in checkpoint", strconv.FormatInt(cp.Size, 10), "proof", "ok")
					})
				})
			}
		},
	}
}

func auditConsistencyCmd() command {
	return command{
		usage: "--old N [--new N] [--verifier-key KEY]...",
		help: "Proves that the checkpoint of --new (default: the latest) extends the one of --old:\n" +
			"nothing in the first N records was changed, removed or reordered. Checked here.\n" +
			"Without --new the latest must also extend the checkpoint verified the time before\n" +
			"(see audit verify), and is kept. Both sizes are those of signed checkpoints (one\n" +
			"every audit.checkpoint_interval): one you kept, or that audit checkpoint showed.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			oldSize := fs.Int64("old", 0, "tree size of the earlier checkpoint (the size audit checkpoint showed then)")
			newSize := fs.Int64("new", 0, "tree size of the later checkpoint (0: the latest)")
			var pinned verifierFlag
			fs.Var(&pinned, "verifier-key", "trusted verifier key (repeatable)")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if *oldSize <= 0 {
					return usagef("--old must be a checkpoint size (1 or more)")
				}
				return a.withSession(func(s *session) error {
					p, err := auditv1.NewAuditLogServiceClient(s.conn).ProveConsistency(s.ctx,
						&auditv1.ProveConsistencyRequest{OldSize: *oldSize, NewSize: *newSize})
					if err != nil {
						return err
					}
					known, err := a.trusted(pinned, p.GetNew().GetVerifierKeys())
					if err != nil {
						return err
					}
					o, err := openCP(p.GetOld(), known)
					if err != nil {
						return fmt.Errorf("checkpoint of size %d does not verify: %w", p.GetOld().GetSize(), err)
					}
					n, err := openCP(p.GetNew(), known)
					if err != nil {
						return fmt.Errorf("checkpoint of size %d does not verify: %w", p.GetNew().GetSize(), err)
					}
					var proof tlog.TreeProof
					for _, h := range p.GetProof() {
						proof = append(proof, tlog.Hash(h))
					}
					if err := tlog.CheckTree(proof, n.Size, n.Root, o.Size, o.Root); err != nil {
						return fmt.Errorf("the tree of size %d does not extend the tree of size %d: %w", n.Size, o.Size, err)
					}
					// the latest checkpoint must also extend the one this
					// client verified before (verify's witness), and is kept
					var wit *witnessed
					if *newSize == 0 {
						if wit, err = a.checkWitness(s, known, n); err != nil {
							return err
						}
						if wit.problem != nil {
							return fmt.Errorf("the audit log does not verify: %s", wit.problem.What)
						}
					}
					return a.output(p, func(tw *tabwriter.Writer) {
						fields(tw, "old", strconv.FormatInt(o.Size, 10), "new", strconv.FormatInt(n.Size, 10), "consistent", "yes")
						if wit != nil {
							fields(tw, "witness", wit.describe(n.Size))
						}
					})
				})
			}
		},
	}
}

func auditVerifyCmd() command {
	return command{
		usage: "[--origin LOG] [--forget] [--verifier-key KEY]... | --archive FILE [--verifier-key KEY]...",
		help: "Has the audit component read its whole stored log, recompute the Merkle tree from the\n" +
			"records and check it against the stored hashes and every signed checkpoint. Reports the\n" +
			"first bad record (changed, deleted, inserted, moved or cut off); exit status 1 if any.\n" +
			"It also requires the log's latest checkpoint to extend the one it verified the time before\n" +
			"(kept beside the token: a log whose end was cut off in the database fails), then keeps the\n" +
			"latest; --forget drops the kept one first (accept a log restored from a backup).\n" +
			"With --archive it checks an archive file here, offline (no server): its signed checkpoint,\n" +
			"and that its records are, in order and unchanged, in that checkpoint's tree.\n" +
			"At level 1 it checks every level-2 centre's log it receives too, each against that centre's\n" +
			"own tree and signed checkpoints (one line per log); --origin LOG checks one log only.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			archive := fs.String("archive", "", "check this archive `FILE` offline")
			origin := fs.String("origin", "", "verify only the log `LOG` (a centre's audit.origin)")
			forget := fs.Bool("forget", false, "forget the checkpoint verified before and verify from scratch")
			var pinned verifierFlag
			fs.Var(&pinned, "verifier-key", "trusted verifier key (repeatable)")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if *archive != "" {
					if *forget {
						return usagef("--forget does not go with --archive")
					}
					return a.verifyArchive(*archive, pinned)
				}
				return a.withSession(func(s *session) error {
					v, err := auditv1.NewAuditLogServiceClient(s.conn).VerifyLog(s.ctx, &auditv1.VerifyLogRequest{Origin: *origin})
					if err != nil {
						return err
					}
					if *forget {
						if err := a.forgetWitnesses(); err != nil {
							return err
						}
					}
					var wit *witnessed
					var latest *audit.Checkpoint
					ownChecked := len(v.GetOrigins()) == 0 || v.GetOrigins()[0].GetOwn()
					if v.GetOk() && ownChecked {
						var problem *audit.Problem
						var known note.Verifiers
						latest, known, err = a.latestChecked(s, pinned)
						switch {
						case err != nil:
							return err
						case latest == nil:
							problem, err = a.noCheckpoint()
						default:
							wit, err = a.checkWitness(s, known, *latest)
							if wit != nil {
								problem = wit.problem
							}
						}
						if err != nil {
							return err
						}
						if problem != nil {
							v.Ok, v.Problem, v.BadSeq, v.BadCheckpoint = false, problem.What, problem.Seq, problem.Checkpoint
						}
					}
					if err := a.output(v, func(tw *tabwriter.Writer) {
						fields(tw, "records checked", strconv.FormatInt(v.GetRecords(), 10),
							"checkpoints matched", strconv.Itoa(int(v.GetCheckpoints())),
							"signed up to", strconv.FormatInt(v.GetSignedSize(), 10))
						if v.GetArchived() > 0 {
							fields(tw, "archived", strconv.FormatInt(v.GetArchived(), 10)+" (removed from the database; in the archive files)")
						}
						if latest != nil {
							fields(tw, "witness", wit.describe(latest.Size))
						}
						if len(v.GetOrigins()) > 1 || (len(v.GetOrigins()) == 1 && !v.GetOrigins()[0].GetOwn()) {
							for _, o := range v.GetOrigins() {
								fields(tw, "log "+o.GetOrigin(), originLine(o))
							}
						}
						if v.GetOk() {
							fields(tw, "result", "ok")
						} else {
							bad := v
							for _, o := range v.GetOrigins() {
								if !o.GetOk() && v.GetProblem() == "" {
									bad = &auditv1.VerifyLogResponse{BadSeq: o.GetBadSeq(), BadCheckpoint: o.GetBadCheckpoint(),
										Problem: o.GetOrigin() + ": " + o.GetProblem(), Unverified: o.GetUnverified()}
									break
								}
							}
							result := "TAMPERED"
							if bad.GetUnverified() {
								result = "NOT VERIFIED" // no key to check a signature with: nothing shown altered, nothing intact
							}
							verdict(tw, result, bad.GetBadSeq(), bad.GetBadCheckpoint(), bad.GetProblem())
						}
					}); err != nil {
						return err
					}
					if !v.GetOk() {
						return fmt.Errorf("the audit log does not verify: %s", verifyProblem(v))
					}
					return nil
				})
			}
		},
	}
}

func auditQueryCmd() command {
	return command{
		usage: "[--since D | --from T] [--to T] [--actor A] [--subject S] [--app ID] [--api API] [--result R]\n" +
			"              [--ip ADDR] [--text TEXT] [--org ID] [--origin LOG] [--lang en|zh-CN] [--page-size N] [--page-token T] [--all]",
		help: "Searches the audit log, newest first. Times are RFC 3339 (2026-12-01T08:00:00Z);\n" +
			"--since 24h (or 7d) means from 24 hours (7 days) ago. Filters combine (all must match).\n" +
			"At level 1 the records of the level-2 centres it receives are searched too (ORIGIN names\n" +
			"each record's log, SEQ its number there); --origin LOG keeps one log's.\n" +
			"Each record is described in a sentence (DESCRIPTION; --lang zh-CN: in Chinese, 操作描述).",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			since := sinceFlag(fs, "records")
			from := fs.String("from", "", "records at or after `TIME` (a date, midnight UTC, or RFC 3339)")
			to := fs.String("to", "", "records before `TIME` (a date, midnight UTC, or RFC 3339)")
			actor := fs.String("actor", "", "who acted (e.g. user:ID, app:APP_ID)")
			subject := fs.String("subject", "", "what it was done to (e.g. user:ID)")
			appID := fs.String("app", "", "App_ID of the calling application")
			api := fs.String("api", "", "event type: the API id (e.g. authenticate, admin.login)")
			result := fs.String("result", "", "success, failure, denied or incomplete (any case)")
			ip := fs.String("ip", "", "client IP address")
			text := fs.String("text", "", "substring of subject, actor, reason or detail")
			org := fs.String("org", "", "records of the org `ID` and of every org below it")
			lang := fs.String("lang", "", "language of the description column: en (default) or zh-CN")
			origin := fs.String("origin", "", "only the records of the log `LOG` (a centre's audit.origin)")
			lo := addListFlags(fs, audit.MaxPageSize)
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if err := lo.check(); err != nil {
					return err
				}
				req := &auditv1.QueryRecordsRequest{Actor: *actor, Subject: *subject, AppId: *appID, Api: *api, Result: *result,
					ClientIp: *ip, Text: *text, OrgId: *org, Language: *lang, Origin: *origin}
				switch {
				case *lang != "" && *lang != "en" && *lang != "zh-CN":
					return usagef("--lang must be en or zh-CN")
				case *since < 0:
					return usagef("--since must be positive")
				case *since > 0 && *from != "":
					return usagef("give --since or --from, not both")
				case *since > 0:
					req.StartTime = timestamppb.New(time.Now().Add(-*since))
				case *from != "":
					t, err := parseWhen("from", *from)
					if err != nil {
						return err
					}
					req.StartTime = timestamppb.New(t)
				}
				if *to != "" {
					t, err := parseWhen("to", *to)
					if err != nil {
						return err
					}
					req.EndTime = timestamppb.New(t)
				}
				return a.withSession(func(s *session) error {
					c := auditv1.NewAuditQueryServiceClient(s.conn)
					recs, next, err := paginate(lo, func(tok string) ([]*auditv1.Record, string, error) {
						req.PageSize, req.PageToken = int32(lo.pageSize), tok
						r, err := c.QueryRecords(s.ctx, req)
						return r.GetRecords(), r.GetNextPageToken(), err
					})
					if err != nil {
						return err
					}
					a.moreHint(next)
					return a.output(&auditv1.QueryRecordsResponse{Records: recs, NextPageToken: next}, func(tw *tabwriter.Writer) {
						row(tw, "TIME", "ORIGIN", "SEQ", "COMPONENT", "API", "ACTOR", "SUBJECT", "RESULT", "REASON", "CLIENT IP", "APP", "MS", "DESCRIPTION")
						for _, r := range recs {
							row(tw, r.GetTime().AsTime().Format(time.RFC3339Nano), r.GetOrigin(), strconv.FormatInt(r.GetSeq(), 10), r.GetComponent(),
								r.GetApi(), actorShown(r), r.GetSubject(), r.GetResult(), r.GetReason(), r.GetClientIp(), r.GetAppId(),
								strconv.FormatFloat(r.GetDurationMs(), 'f', -1, 64), r.GetDescription())
						}
					})
				})
			}
		},
	}
}

// verifyArchive checks an archive file offline.
func (a *app) verifyArchive(path string, pinned verifierFlag) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var known note.Verifiers
	if len(pinned) > 0 {
		if known, err = audit.VerifiersFromKeys(pinned); err != nil {
			return usagef("--verifier-key: %v", err)
		}
	} else if a.g.output != "json" {
		fmt.Fprintln(a.stderr, "note: checking against the verifier keys the archive names; pin them with --verifier-key")
	}
	rep, err := audit.VerifyArchive(f, known)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	h := rep.Header
	out := &auditv1.VerifyLogResponse{Ok: rep.Problem == nil, Records: rep.Records, BadSeq: -1}
	if rep.Problem == nil {
		out.Checkpoints = 1
	} else {
		out.BadSeq, out.Problem, out.BadCheckpoint, out.Unverified = rep.Problem.Seq, rep.Problem.What, rep.Problem.Checkpoint,
			rep.Problem.Unverified
	}
	if err := a.output(out, func(tw *tabwriter.Writer) {
		fields(tw, "archive", path, "log", h.Origin, "records", fmt.Sprintf("%d to %d", h.From, h.To-1),
			"records checked", strconv.FormatInt(rep.Records, 10))
		switch {
		case rep.Problem == nil:
			fields(tw, "result", "ok")
		case rep.Problem.Unverified:
			fields(tw, "result", "NOT VERIFIED", "problem", rep.Problem.What)
		default:
			verdict(tw, "TAMPERED", rep.Problem.Seq, rep.Problem.Checkpoint, rep.Problem.What)
		}
	}); err != nil {
		return err
	}
	if rep.Problem != nil {
		return fmt.Errorf("the archive does not verify: %s", rep.Problem.What)
	}
	return nil
}

// verdict prints a verification's failure: the first bad record when one
// is named (seq -1: none can be), else the checkpoint concerned.
func verdict(tw *tabwriter.Writer, result string, seq, checkpoint int64, problem string) {
	fields(tw, "result", result)
	switch {
	case seq >= 0:
		fields(tw, "first bad record", strconv.FormatInt(seq, 10))
	case checkpoint > 0:
		fields(tw, "checkpoint", "of size "+strconv.FormatInt(checkpoint, 10))
	}
	fields(tw, "problem", problem)
}

// actorShown is a record's actor for a person to read: the person's name
// as identity knows them ("login (Display Name)") when the actor is one,
// else the actor as recorded (-o json has both).
func actorShown(r *auditv1.Record) string {
	if n := r.GetActorName(); n != "" {
		return n
	}
	return r.GetActor()
}

// originLine sums up the verification of one log (audit verify at level 1).
func originLine(o *auditv1.OriginVerification) string {
	out := fmt.Sprintf("%d records, %d checkpoints matched, signed up to %d", o.GetRecords(), o.GetCheckpoints(), o.GetSignedSize())
	if t := o.GetCompleteUntil(); t != nil {
		out += ", complete until " + t.AsTime().Format(time.RFC3339)
	}
	switch {
	case o.GetOk():
		return out + ": ok"
	case o.GetUnverified():
		return out + ": NOT VERIFIED: " + o.GetProblem()
	}
	return out + ": TAMPERED: " + o.GetProblem()
}

// verifyProblem is the first problem of v: its own log's, else the first
// other log's that failed.
func verifyProblem(v *auditv1.VerifyLogResponse) string {
	if v.GetProblem() != "" {
		return v.GetProblem()
	}
	for _, o := range v.GetOrigins() {
		if !o.GetOk() {
			return "log " + o.GetOrigin() + ": " + o.GetProblem()
		}
	}
	return "unknown"
}
