package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Origins are the logs a centre holds (ADR 0029): its own and, at level
// 1, those of the level-2 centres it receives (audit.peers), each with
// the keys that verify its checkpoints (parsed once, by NewOrigins).
type Origins struct {
	// Own is this centre's audit.origin.
	Own   string
	Store PeerStore
	peers []PeerKeys
	known map[string]note.Verifiers // by origin; nil: no keys configured
}

// PeerKeys are a peer log's origin and verifier keys.
type PeerKeys struct {
	Origin       string
	VerifierKeys []string
}

// NewOrigins holds the own log own and the peer logs of store, verified
// with the keys of peers.
func NewOrigins(own string, store PeerStore, peers []PeerKeys) (*Origins, error) {
	o := &Origins{Own: own, Store: store, peers: peers, known: map[string]note.Verifiers{}}
	for _, pk := range peers {
		if len(pk.VerifierKeys) == 0 {
			continue
		}
		v, err := VerifiersFromKeys(pk.VerifierKeys)
		if err != nil {
			return nil, fmt.Errorf("verifier keys of %q: %w", pk.Origin, err)
		}
		o.known[pk.Origin] = v
	}
	return o, nil
}

// Held returns the peer logs held or configured, by origin (one
// configured but not heard from yet has nothing held).
func (o *Origins) Held(ctx context.Context) ([]Peer, error) {
	if o == nil || o.Store == nil {
		return nil, nil
	}
	held, err := o.Store.Peers(ctx)
	if err != nil {
		return nil, err
	}
	for _, pk := range o.peers {
		if !slices.ContainsFunc(held, func(p Peer) bool { return p.Origin == pk.Origin }) {
			held = append(held, Peer{Origin: pk.Origin})
		}
	}
	slices.SortFunc(held, func(a, b Peer) int { return strings.Compare(a.Origin, b.Origin) })
	return held, nil
}

// OriginReport is the outcome of verifying one peer log.
type OriginReport struct {
	Peer Peer
	*Report
}

// VerifyPeers verifies the peer logs held, or only origin's (""), each
// against its own tree and checkpoints with its configured keys
// (VerifyPeer: a log without keys is not verified).
func (o *Origins) VerifyPeers(ctx context.Context, origin string) ([]OriginReport, error) {
	peers, err := o.Held(ctx)
	if err != nil {
		return nil, err
	}
	var out []OriginReport
	for _, p := range peers {
		if origin != "" && p.Origin != origin {
			continue
		}
		rep, err := VerifyPeer(ctx, o.Store, p, o.known[p.Origin])
		if err != nil {
			return nil, err
		}
		out = append(out, OriginReport{Peer: p, Report: rep})
	}
	return out, nil
}

// ApplyRetention applies r to every peer log held (Log.ApplyPeerRetention,
// each recorded in l), oldest records first. A log that cannot be pruned
// (it does not verify, or its keys are not configured) keeps its records
// and is named in the error; the others are pruned all the same.
func (o *Origins) ApplyRetention(ctx context.Context, l *Log, r Retention, now time.Time) ([]ArchiveResult, error) {
	peers, err := o.Held(ctx)
	if err != nil {
		return nil, err
	}
	var out []ArchiveResult
	var errs []error
	for _, p := range peers {
		if p.Size == p.First {
			continue // nothing held
		}
		for ctx.Err() == nil {
			a, err := l.ApplyPeerRetention(ctx, o.Store, PeerRetention{Peer: p, Known: o.known[p.Origin], Keys: o.keys(p.Origin)}, r, now)
			if err != nil {
				errs = append(errs, err)
				break
			}
			if a == nil {
				break
			}
			out = append(out, *a)
			// the next archive starts where this one ended: read again
			held, err := o.Store.Peers(ctx)
			if err != nil {
				errs = append(errs, err)
				break
			}
			i := slices.IndexFunc(held, func(h Peer) bool { return h.Origin == p.Origin })
			if i < 0 {
				break
			}
			p = held[i]
		}
	}
	return out, errors.Join(append(errs, ctx.Err())...)
}

func (o *Origins) keys(origin string) []string {
	for _, pk := range o.peers {
		if pk.Origin == origin {
			return pk.VerifierKeys
		}
	}
	return nil
}
