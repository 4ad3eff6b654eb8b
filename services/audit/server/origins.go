package server

import (
	"context"
	"slices"

	"github.com/uias/uias/pkg/apierr"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	"github.com/uias/uias/services/audit"
)

// Origins are the logs a centre holds (ADR 0029): its own and, at level
// 1, those of the level-2 centres it receives (audit.peers).
type Origins struct {
	// Own is this centre's audit.origin.
	Own   string
	Store audit.PeerStore
	// Peers are the configured peers with the keys that verify their
	// checkpoints.
	Peers []PeerKeys
}

// PeerKeys are a peer log's origin and verifier keys.
type PeerKeys struct {
	Origin       string
	VerifierKeys []string
}

// peers returns the peer logs held or configured, by origin (one
// configured but not heard from yet has nothing held).
func (o *Origins) peers(ctx context.Context) ([]audit.Peer, error) {
	if o == nil || o.Store == nil {
		return nil, nil
	}
	held, err := o.Store.Peers(ctx)
	if err != nil {
		return nil, err
	}
	for _, pk := range o.Peers {
		if !slices.ContainsFunc(held, func(p audit.Peer) bool { return p.Origin == pk.Origin }) {
			held = append(held, audit.Peer{Origin: pk.Origin})
		}
	}
	slices.SortFunc(held, func(a, b audit.Peer) int {
		switch {
		case a.Origin < b.Origin:
			return -1
		case a.Origin > b.Origin:
			return 1
		}
		return 0
	})
	return held, nil
}

// Status says how complete each log held is: the own one first.
func (o *Origins) Status(ctx context.Context) ([]*auditv1.OriginStatus, error) {
	if o == nil {
		return nil, nil
	}
	out := []*auditv1.OriginStatus{{Origin: o.Own, Own: true}}
	peers, err := o.peers(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range peers {
		out = append(out, &auditv1.OriginStatus{Origin: p.Origin, CompleteUntil: ts(p.LastRecord), ReceivedTime: ts(p.LastReceived),
			Records: p.Size - p.First})
	}
	return out, nil
}

func (o *Origins) keys(origin string) []string {
	for _, pk := range o.Peers {
		if pk.Origin == origin {
			return pk.VerifierKeys
		}
	}
	return nil
}

// WithOrigins makes VerifyLog verify the peer logs held too, each against
// its own tree and checkpoints.
func (s *Server) WithOrigins(o *Origins) *Server {
	s.origins = o
	return s
}

// WithOrigins makes the login reports say how complete each log is.
func (s *AnalyticsServer) WithOrigins(o *Origins) *AnalyticsServer {
	s.origins = o
	return s
}

// originStatus is s.origins' Status ("" when there is one log only).
func (s *AnalyticsServer) originStatus(ctx context.Context) ([]*auditv1.OriginStatus, error) {
	if s.origins == nil || s.origins.Store == nil {
		return nil, nil
	}
	return s.origins.Status(ctx)
}

// verifyOrigins verifies the logs held: origin ("": all) and returns one
// outcome each, the own log first.
func (s *Server) verifyOrigins(ctx context.Context, origin string) ([]*auditv1.OriginVerification, *audit.Report, error) {
	own := s.log.Signer().Origin()
	var out []*auditv1.OriginVerification
	var ownRep *audit.Report
	if origin == "" || origin == own {
		rep, err := s.log.Verify(ctx)
		if err != nil {
			return nil, nil, err
		}
		ownRep = rep
		out = append(out, originVerification(own, true, rep, audit.Peer{}))
	}
	if origin == own {
		return out, ownRep, nil
	}
	peers, err := s.origins.peers(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range peers {
		if origin != "" && p.Origin != origin {
			continue
		}
		var rep *audit.Report
		known, err := audit.VerifiersFromKeys(s.origins.keys(p.Origin))
		if err != nil {
			return nil, nil, err
		}
		if len(s.origins.keys(p.Origin)) == 0 {
			known = nil
		}
		if rep, err = audit.VerifyPeer(ctx, s.origins.Store, p, known); err != nil {
			return nil, nil, err
		}
		out = append(out, originVerification(p.Origin, false, rep, p))
	}
	if len(out) == 0 {
		return nil, nil, apierr.New(apierr.NotFound, "NOT_FOUND", "no audit log of origin "+origin+
			" is held here (this centre's own is "+own+"; a level-2 centre's log is held at level 1 once audit.peers names it)")
	}
	return out, ownRep, nil
}

func originVerification(origin string, own bool, rep *audit.Report, p audit.Peer) *auditv1.OriginVerification {
	v := &auditv1.OriginVerification{Origin: origin, Own: own, Ok: rep.OK(), Records: rep.Records, Checkpoints: int32(rep.Checkpoints),
		SignedSize: rep.Signed, BadSeq: -1}
	if pr := rep.Problem; pr != nil {
		v.BadSeq, v.Problem, v.BadCheckpoint, v.Unverified = pr.Seq, pr.What, pr.Checkpoint, pr.Unverified
	}
	if !own {
		v.CompleteUntil, v.ReceivedTime = ts(p.LastRecord), ts(p.LastReceived)
	}
	return v
}
