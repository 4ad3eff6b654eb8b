package server

import (
	"context"

	"github.com/uias/uias/pkg/apierr"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	"github.com/uias/uias/services/audit"
)

// originsStatus says how complete each log of o is: the own one first.
func originsStatus(ctx context.Context, o *audit.Origins) ([]*auditv1.OriginStatus, error) {
	if o == nil {
		return nil, nil
	}
	out := []*auditv1.OriginStatus{{Origin: o.Own, Own: true}}
	peers, err := o.Held(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range peers {
		out = append(out, &auditv1.OriginStatus{Origin: p.Origin, CompleteUntil: ts(p.LastRecord), ReceivedTime: ts(p.LastReceived),
			Records: p.Size - p.First})
	}
	return out, nil
}

// WithOrigins makes VerifyLog verify the peer logs held too, each against
// its own tree and checkpoints.
func (s *Server) WithOrigins(o *audit.Origins) *Server {
	s.origins = o
	return s
}

// WithOrigins makes the login reports say how complete each log is.
func (s *AnalyticsServer) WithOrigins(o *audit.Origins) *AnalyticsServer {
	s.origins = o
	return s
}

// originStatus is s.origins' Status ("" when there is one log only).
func (s *AnalyticsServer) originStatus(ctx context.Context) ([]*auditv1.OriginStatus, error) {
	if s.origins == nil || s.origins.Store == nil {
		return nil, nil
	}
	return originsStatus(ctx, s.origins)
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
	reps, err := s.origins.VerifyPeers(ctx, origin)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range reps {
		out = append(out, originVerification(r.Peer.Origin, false, r.Report, r.Peer))
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
